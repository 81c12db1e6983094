-- Enrolling in one statement: the Enroll RPC's whole write (the caller's context, the
-- course as the caller may see it, the enrollment under the caller's policies and column
-- rules, then the service's bookkeeping: progress row, outbox event, relay wake-up and the
-- course's counts) in one function call, one round trip and one implicit transaction.
--
-- The event is encoded by the service before the call, from the course terms it expects;
-- the function compares those terms with the course's current ones and writes nothing when
-- they differ ('stale'), returning the current terms so that the service encodes again.
-- The course row, the one every concurrent enrollment of the course contends for, is
-- updated by the function's last statement: its lock is held only until the commit that
-- follows at once.
--
-- The context and the event go through the kit's set_tenant_context() and enqueue_event()
-- (platform migration 0004), as Tx::set_context and Tx::publish do.
--
-- SECURITY INVOKER: everything up to the enrollment runs as the runtime role under the
-- caller's policies; the bookkeeping switches to the system role by name, as
-- Tx::begin_bookkeeping does, which a SECURITY DEFINER function could not.
CREATE FUNCTION enroll(
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
    -- Last: the hot row's lock is held from here to the commit only.
    UPDATE courses k SET enrolled_count = k.enrolled_count + 1,
                         counts_version = k.counts_version + 1
     WHERE k.id = course;
  END IF;
  outcome := 'enrolled';
END
$$;
REVOKE EXECUTE ON FUNCTION enroll(uuid, uuid, text, uuid, uuid, timestamptz, text, uuid, uuid,
                                  bigint, text, uuid, text, bytea) FROM PUBLIC;
