-- Applying one of learning's enrollment events in one statement: the enrollment's state
-- (newer versions only), the course's counts by the change of status it makes, the
-- activity timeline and the instructor's distinct students, in one round trip instead of
-- one per step. The consumer calls it as the system role, inside its batch transaction.
--
-- Counting follows the statuses this projection holds, so the counts are exact whatever
-- order the events come in: an enrollment counts as enrolled while active or completed,
-- and as completed while completed. A row made by progress that arrived before any of the
-- enrollment's own events (status version 0) counted nothing yet.
CREATE FUNCTION apply_enrollment_change(
  enrollment uuid, course uuid, instructor uuid, organization uuid, student uuid,
  new_status text, new_price_minor bigint, new_currency text, enrolled timestamptz,
  version bigint, course_title text,
  -- The timeline entry this change makes, if any (activity_type NULL: none).
  activity_id uuid, activity_type text, activity_at timestamptz,
  -- Whether the change is an activation, which counts the student once per instructor.
  activation boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = instructor, pg_temp AS $$
DECLARE
  previous_status text;
  previous_version bigint;
  enrolled_change bigint := 0;
  completed_change bigint := 0;
BEGIN
  INSERT INTO enrollment_projection (enrollment_id, course_id, instructor_id, organization_id,
      student_id, status, price_minor, currency, enrolled_at, last_activity_at, status_version)
  VALUES (enrollment, course, instructor, organization, student, new_status, new_price_minor,
          new_currency, enrolled, enrolled, version)
  ON CONFLICT (enrollment_id) DO NOTHING;
  IF FOUND THEN
    previous_version := 0;
  ELSE
    -- Locked: concurrent appliers of one enrollment's events wait for each other here.
    SELECT p.status, p.status_version INTO previous_status, previous_version
      FROM enrollment_projection p WHERE p.enrollment_id = enrollment FOR UPDATE;
    UPDATE enrollment_projection p SET
        status = CASE WHEN p.status_version < version THEN new_status ELSE p.status END,
        price_minor = CASE WHEN p.status_version < version THEN new_price_minor ELSE p.price_minor END,
        currency = CASE WHEN p.status_version < version THEN new_currency ELSE p.currency END,
        status_version = greatest(p.status_version, version),
        organization_id = coalesce(p.organization_id, organization),
        enrolled_at = least(p.enrolled_at, enrolled),
        last_activity_at = greatest(p.last_activity_at, enrolled)
     WHERE p.enrollment_id = enrollment;
    IF previous_version >= version THEN
      -- An older or repeated event: the state it carries is already superseded.
      previous_status := new_status;
    ELSIF previous_version = 0 THEN
      previous_status := NULL;
    END IF;
  END IF;

  enrolled_change := (new_status IN ('active', 'completed'))::int
                   - coalesce(previous_status IN ('active', 'completed'), false)::int;
  completed_change := (new_status = 'completed')::int
                    - coalesce(previous_status = 'completed', false)::int;
  IF enrolled_change <> 0 OR completed_change <> 0 THEN
    INSERT INTO course_projection AS k (course_id, instructor_id, title, enrolled_count,
                                        completed_count)
    VALUES (course, instructor, course_title, enrolled_change, completed_change)
    ON CONFLICT (course_id) DO UPDATE SET
        enrolled_count = k.enrolled_count + EXCLUDED.enrolled_count,
        completed_count = k.completed_count + EXCLUDED.completed_count,
        title = CASE WHEN k.title = '' THEN EXCLUDED.title ELSE k.title END;
  END IF;

  IF activity_type IS NOT NULL THEN
    INSERT INTO student_activity (id, instructor_id, organization_id, student_id, activity_type,
                                  course_id, occurred_at)
    VALUES (activity_id, instructor, organization, student, activity_type, course, activity_at);
  END IF;

  IF activation THEN
    INSERT INTO instructor_students (instructor_id, student_id) VALUES (instructor, student)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
      INSERT INTO instructor_stats AS s (instructor_id, total_students) VALUES (instructor, 1)
      ON CONFLICT (instructor_id) DO UPDATE SET total_students = s.total_students + 1;
    END IF;
  END IF;
END
$$;
