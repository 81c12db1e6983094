-- A course's enrollment counts in slots beside the course row instead of on it. Every
-- enrollment of a course used to update the course row, so enrollments of one course
-- queued for its lock, held from the update through the commit's flush, and the wide,
-- indexed, trigger-checked row was rewritten each time. Now each writer adds to one of
-- sixteen narrow slot rows of the course (chosen by its connection, so concurrent writers
-- rarely meet), and a course's counts are its row's counts plus its slots' sums.
--
-- The course row's counts stay the base: verify repairs drift by setting the base to the
-- recount less the slots, read in one snapshot with them, so it never races a write.
CREATE TABLE course_count_slots (
  course_id       uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
  slot            smallint NOT NULL CHECK (slot >= 0 AND slot < 16),
  enrolled_count  bigint NOT NULL DEFAULT 0,
  completed_count bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (course_id, slot)
) WITH (fillfactor = 50);  -- room for the next version of a row on its own page (HOT)

ALTER TABLE course_count_slots ENABLE ROW LEVEL SECURITY;
-- Counts are shown with the course, which the caller's policies on courses already
-- narrow; only the service's bookkeeping (the system role) writes them.
CREATE POLICY course_count_slots_read ON course_count_slots FOR SELECT USING (true);

-- Adds to a course's counts (deltas may be negative: a cancellation, a refund).
CREATE FUNCTION add_to_course_counts(course uuid, enrolled bigint, completed bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = learning, pg_temp AS $$
BEGIN
  INSERT INTO course_count_slots AS s (course_id, slot, enrolled_count, completed_count)
  VALUES (course, pg_catalog.pg_backend_pid() % 16, enrolled, completed)
  ON CONFLICT (course_id, slot) DO UPDATE
    SET enrolled_count = s.enrolled_count + EXCLUDED.enrolled_count,
        completed_count = s.completed_count + EXCLUDED.completed_count;
END
$$;
REVOKE EXECUTE ON FUNCTION add_to_course_counts(uuid, bigint, bigint) FROM PUBLIC;

-- Enroll (migration 0007) adds its enrollment to a slot instead of the course row.
CREATE OR REPLACE FUNCTION enroll(
  caller_id uuid, caller_org uuid, caller_roles text,
  course uuid, enrollment_id uuid, enrolled_at timestamptz,
  -- The terms the event was encoded with; NULL to ask for them.
  expected_title text, expected_instructor uuid, expected_org uuid,
  expected_price bigint, expected_currency text,
  event_id uuid, event_subject text, event_envelope bytea,
  -- outcome: 'enrolled' | 'stale' | 'not_found' | 'not_published' | 'cohort_only' | 'exists'
  OUT outcome text,
  OUT title text, OUT instructor_id uuid, OUT organization_id uuid,
  OUT price_minor bigint, OUT currency text,
  OUT existing_status text, OUT enrollment_status text, OUT updated_at timestamptz)
LANGUAGE plpgsql VOLATILE SET search_path = learning, pg_temp AS $$
DECLARE
  c record;
  opening text;
BEGIN
  PERFORM set_tenant_context(caller_id::text, caller_org::text, caller_roles);
  -- Under the caller's policies: a course they may not see does not exist for them.
  SELECT k.title, k.instructor_id, k.organization_id, k.price_minor, k.currency, k.lesson_count,
         k.status, k.enrollment_type
    INTO c FROM courses k WHERE k.id = course;
  IF NOT FOUND THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  title := c.title; instructor_id := c.instructor_id; organization_id := c.organization_id;
  price_minor := c.price_minor; currency := c.currency;
  IF c.status <> 'published' THEN
    outcome := 'not_published';
    RETURN;
  END IF;
  IF c.enrollment_type = 'cohort_only' THEN
    outcome := 'cohort_only';
    RETURN;
  END IF;
  SELECT e.status INTO existing_status FROM enrollments e
   WHERE e.course_id = course AND e.student_id = caller_id;
  IF FOUND THEN
    outcome := 'exists';
    RETURN;
  END IF;
  IF expected_title IS DISTINCT FROM c.title
     OR expected_instructor IS DISTINCT FROM c.instructor_id
     OR expected_org IS DISTINCT FROM c.organization_id
     OR expected_price IS DISTINCT FROM c.price_minor
     OR expected_currency IS DISTINCT FROM c.currency
     OR event_envelope IS NULL THEN
    outcome := 'stale';
    RETURN;
  END IF;

  opening := CASE WHEN c.price_minor = 0 THEN 'active' ELSE 'pending_payment' END;
  -- The caller's own write: policies and the column rules' trigger check it.
  INSERT INTO enrollments AS e (id, course_id, student_id, instructor_id, organization_id,
                                status, price_minor, currency, enrolled_at, activated_at)
  VALUES (enrollment_id, course, caller_id, c.instructor_id, c.organization_id, opening,
          c.price_minor, c.currency, enroll.enrolled_at,
          CASE WHEN opening = 'active' THEN enroll.enrolled_at END)
  RETURNING e.status, e.updated_at INTO enrollment_status, updated_at;

  -- The service's bookkeeping, by name.
  SET LOCAL ROLE lyceum_learning_system;
  INSERT INTO student_progress (enrollment_id, course_id, student_id, instructor_id,
                                organization_id, total_lessons)
  VALUES (enrollment_id, course, caller_id, c.instructor_id, c.organization_id, c.lesson_count)
  ON CONFLICT DO NOTHING;
  PERFORM enqueue_event(event_id, event_subject, event_envelope);
  IF opening = 'active' THEN
    -- Last: the slot row's lock is held from here to the commit only.
    PERFORM add_to_course_counts(course, 1, 0);
  END IF;
  outcome := 'enrolled';
END
$$;
