-- The second wall, tightened after review: an enrollment's parties and its course's
-- availability are checked on insert, versions and event times are the database's to set,
-- a course keeps its organization unless administrators of both move it, callers delete
-- neither enrollments nor progress, and a review belongs to the course of its enrollment.

-- What enrolling in a course depends on, whatever the caller may see of it.
CREATE FUNCTION course_enrollment_terms(
  course uuid, OUT price_minor bigint, OUT currency text, OUT instructor_id uuid,
  OUT organization_id uuid, OUT enrollable boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT c.price_minor, c.currency, c.instructor_id, c.organization_id,
         c.status = 'published' AND c.enrollment_type <> 'cohort_only'
           AND (c.visibility = 'public' OR c.organization_id = current_org_id())
  FROM courses c WHERE c.id = course
$$;
REVOKE EXECUTE ON FUNCTION course_enrollment_terms(uuid) FROM PUBLIC;

CREATE OR REPLACE FUNCTION enrollments_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
DECLARE
  terms record;
  opening_status text;
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  SELECT * INTO terms FROM course_enrollment_terms(NEW.course_id);
  opening_status := (CASE WHEN terms.price_minor = 0 THEN 'active' ELSE 'pending_payment' END);
  IF TG_OP = 'INSERT' THEN
    IF NOT coalesce(terms.enrollable, false)
       OR NEW.instructor_id IS DISTINCT FROM terms.instructor_id
       OR NEW.organization_id IS DISTINCT FROM terms.organization_id
       OR NEW.cohort_id IS NOT NULL THEN
      RAISE EXCEPTION 'an enrollment is taken in a published course open to the caller, with its parties'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.price_minor IS DISTINCT FROM terms.price_minor
       OR NEW.currency IS DISTINCT FROM terms.currency
       OR NEW.payment_id IS NOT NULL
       OR NEW.status <> opening_status THEN
      RAISE EXCEPTION 'an enrollment starts at the course''s terms, unpaid'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The version of the enrollment's events is the database's to set.
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
  END IF;
  IF NEW.course_id <> OLD.course_id OR NEW.student_id <> OLD.student_id
     OR NEW.instructor_id <> OLD.instructor_id
     OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
     OR NEW.cohort_id IS DISTINCT FROM OLD.cohort_id
     OR NEW.enrolled_at <> OLD.enrolled_at THEN
    RAISE EXCEPTION 'an enrollment''s parties are fixed' USING ERRCODE = 'insufficient_privilege';
  END IF;
  NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
  IF NEW.status = OLD.status THEN
    IF NEW.price_minor <> OLD.price_minor OR NEW.currency <> OLD.currency
       OR NEW.payment_id IS DISTINCT FROM OLD.payment_id THEN
      RAISE EXCEPTION 'a caller cannot change an enrollment''s price or payment'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.status = 'cancelled' AND OLD.status IN ('pending_payment', 'active')
     AND NEW.price_minor = OLD.price_minor AND NEW.currency = OLD.currency
     AND NEW.payment_id IS NOT DISTINCT FROM OLD.payment_id THEN
    RETURN NEW;  -- the student, or staff who manage students
  END IF;
  IF OLD.student_id = current_user_id() THEN
    -- Enrolling again after a cancellation: an open course, its current terms, no payment.
    IF OLD.status = 'cancelled' AND coalesce(terms.enrollable, false)
       AND NEW.status = opening_status
       AND NEW.price_minor = terms.price_minor AND NEW.currency = terms.currency
       AND NEW.payment_id IS NULL THEN
      RETURN NEW;
    END IF;
    -- Completing the course: every lesson done.
    IF OLD.status = 'active' AND NEW.status = 'completed' AND progress_complete(OLD.id)
       AND NEW.price_minor = OLD.price_minor AND NEW.currency = OLD.currency
       AND NEW.payment_id IS NOT DISTINCT FROM OLD.payment_id THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'a caller cannot move an enrollment from % to %', OLD.status, NEW.status
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION courses_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.enrolled_count <> 0 OR NEW.completed_count <> 0 OR NEW.rating_sum <> 0
       OR NEW.review_count <> 0 OR NEW.lesson_count <> 0
       OR NEW.counts_version <> 0 OR NEW.rating_version <> 0 THEN
      RAISE EXCEPTION 'a new course has no statistics yet' USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.version := 0;
    RETURN NEW;
  END IF;
  -- Moving a course between organizations takes administrators of both.
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id
     AND NOT (administers(OLD.organization_id) AND administers(NEW.organization_id)) THEN
    RAISE EXCEPTION 'only administrators of both organizations move a course'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.instructor_id <> OLD.instructor_id AND NOT administers(OLD.organization_id) THEN
    RAISE EXCEPTION 'only an administrator changes a course''s owner'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.enrolled_count <> OLD.enrolled_count OR NEW.completed_count <> OLD.completed_count
     OR NEW.rating_sum <> OLD.rating_sum OR NEW.review_count <> OLD.review_count
     OR NEW.lesson_count <> OLD.lesson_count OR NEW.counts_version <> OLD.counts_version
     OR NEW.rating_version <> OLD.rating_version THEN
    RAISE EXCEPTION 'a course''s statistics are kept by the service'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- Every change by a caller is one version later, whatever the statement asked for.
  NEW.version := OLD.version + 1;
  RETURN NEW;
END
$$;

-- Callers never delete enrollments or lesson progress (statistics would drift).
DROP POLICY enrollments_student ON enrollments;
CREATE POLICY enrollments_student_read ON enrollments FOR SELECT USING (student_id = current_user_id());
CREATE POLICY enrollments_student_insert ON enrollments FOR INSERT WITH CHECK (student_id = current_user_id());
CREATE POLICY enrollments_student_update ON enrollments FOR UPDATE
  USING (student_id = current_user_id()) WITH CHECK (student_id = current_user_id());
DROP POLICY lesson_progress_student ON lesson_progress;
CREATE POLICY lesson_progress_student_read ON lesson_progress FOR SELECT USING (student_id = current_user_id());
CREATE POLICY lesson_progress_student_insert ON lesson_progress FOR INSERT WITH CHECK (student_id = current_user_id());
CREATE POLICY lesson_progress_student_update ON lesson_progress FOR UPDATE
  USING (student_id = current_user_id()) WITH CHECK (student_id = current_user_id());

-- A review is written on the course of the author's completed enrollment, to its instructor.
DROP POLICY course_reviews_author_insert ON course_reviews;
CREATE POLICY course_reviews_author_insert ON course_reviews FOR INSERT
  WITH CHECK (student_id = current_user_id()
              AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = enrollment_id
                          AND e.student_id = current_user_id() AND e.status = 'completed'
                          AND e.course_id = course_reviews.course_id
                          AND e.instructor_id = course_reviews.instructor_id));

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
