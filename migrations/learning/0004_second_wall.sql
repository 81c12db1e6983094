-- Row-level security as a second wall that holds when a handler forgets a check.
--
-- * The tenant context no longer names a 'system' caller: the service's own work runs as
--   lyceum_learning_system, a role reached only by an explicit SET ROLE.
-- * SECURITY DEFINER functions pin search_path with pg_temp last (otherwise a temporary
--   table named like one of ours shadows it inside the function) and only our roles may
--   execute them.
-- * Rules about columns hold in the database: who may change an enrollment's status,
--   price and payment, a course's owner and statistics, a review's counters and answer.
-- * Review votes are visible only where their course is.

CREATE OR REPLACE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') OR has_session_role('service')
$$;

-- Whether a statement acts for a caller: the system role, the owner (inside SECURITY
-- DEFINER functions) and superusers are not restrained by the column rules.
CREATE FUNCTION acting_for_caller() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT current_user::text NOT IN ('lyceum_learning_system', 'lyceum_learning_owner')
     AND current_setting('is_superuser') = 'off'
$$;

ALTER FUNCTION teaches(uuid, text) SET search_path = learning, pg_temp;
ALTER FUNCTION can_view_course(uuid) SET search_path = learning, pg_temp;

-- Functions created from here on are not executable by PUBLIC; the grants at the end of
-- every migration run (the kit's) give the service's own roles what they need.
ALTER DEFAULT PRIVILEGES FOR ROLE lyceum_learning_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;

-- A student may see the courses they are enrolled in, even once archived or no longer
-- public: their enrollment's events and progress name it.
CREATE FUNCTION is_enrolled(course uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM enrollments e
                 WHERE e.course_id = course AND e.student_id = current_user_id())
$$;
REVOKE EXECUTE ON FUNCTION is_enrolled(uuid) FROM PUBLIC;
CREATE POLICY courses_student_read ON courses FOR SELECT USING (is_enrolled(id));

-- The course's price as the enrollment rules need it, whatever the caller may see.
CREATE FUNCTION course_terms(course uuid, OUT price_minor bigint, OUT currency text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT c.price_minor, c.currency FROM courses c WHERE c.id = course
$$;
REVOKE EXECUTE ON FUNCTION course_terms(uuid) FROM PUBLIC;

CREATE FUNCTION progress_complete(enrollment uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM student_progress p
                 WHERE p.enrollment_id = enrollment
                   AND p.total_lessons > 0 AND p.completed_lessons >= p.total_lessons)
$$;
REVOKE EXECUTE ON FUNCTION progress_complete(uuid) FROM PUBLIC;

-- Staff who manage students may cancel their enrollments (the column rules below keep
-- that the only change they can make).
CREATE POLICY enrollments_staff_cancel ON enrollments FOR UPDATE
  USING (teaches(course_id, 'manage_students') OR instructor_id = current_user_id()
         OR administers(organization_id))
  WITH CHECK (teaches(course_id, 'manage_students') OR instructor_id = current_user_id()
              OR administers(organization_id));

-- Enrollments: a caller never sets a price, a currency or a payment; the status moves
-- only the ways a caller's own actions move it. Activation by payment and refunds come
-- from the payment events, handled as the service.
CREATE FUNCTION enrollments_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
DECLARE
  terms record;
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  SELECT * INTO terms FROM course_terms(NEW.course_id);
  IF TG_OP = 'INSERT' THEN
    IF NEW.price_minor IS DISTINCT FROM terms.price_minor
       OR NEW.currency IS DISTINCT FROM terms.currency
       OR NEW.payment_id IS NOT NULL
       OR NEW.status <> (CASE WHEN terms.price_minor = 0 THEN 'active' ELSE 'pending_payment' END) THEN
      RAISE EXCEPTION 'an enrollment starts at the course''s terms, unpaid'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.course_id <> OLD.course_id OR NEW.student_id <> OLD.student_id
     OR NEW.instructor_id <> OLD.instructor_id
     OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
     OR NEW.cohort_id IS DISTINCT FROM OLD.cohort_id THEN
    RAISE EXCEPTION 'an enrollment''s parties are fixed' USING ERRCODE = 'insufficient_privilege';
  END IF;
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
    -- Enrolling again after a cancellation: the course's current terms, no payment.
    IF OLD.status = 'cancelled'
       AND NEW.status = (CASE WHEN terms.price_minor = 0 THEN 'active' ELSE 'pending_payment' END)
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
CREATE TRIGGER enrollments_column_rules BEFORE INSERT OR UPDATE ON enrollments
  FOR EACH ROW EXECUTE FUNCTION enrollments_column_rules();

-- Courses: the owner changes only through platform or organization admins; statistics
-- only through the service's bookkeeping.
CREATE FUNCTION courses_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.enrolled_count <> 0 OR NEW.completed_count <> 0 OR NEW.rating_sum <> 0
       OR NEW.review_count <> 0 OR NEW.lesson_count <> 0 THEN
      RAISE EXCEPTION 'a new course has no statistics yet' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
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
  RETURN NEW;
END
$$;
CREATE TRIGGER courses_column_rules BEFORE INSERT OR UPDATE ON courses
  FOR EACH ROW EXECUTE FUNCTION courses_column_rules();

-- Reviews: the author writes the review, the teaching team the answer, the service the
-- helpful count.
CREATE FUNCTION course_reviews_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.helpful_count <> 0 OR NEW.instructor_response IS NOT NULL THEN
      RAISE EXCEPTION 'a new review has no votes or answer' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.helpful_count <> OLD.helpful_count OR NEW.course_id <> OLD.course_id
     OR NEW.student_id <> OLD.student_id OR NEW.enrollment_id <> OLD.enrollment_id
     OR NEW.instructor_id <> OLD.instructor_id THEN
    RAISE EXCEPTION 'a review''s parties and counts are fixed' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.instructor_response IS DISTINCT FROM OLD.instructor_response
      OR NEW.responded_at IS DISTINCT FROM OLD.responded_at)
     AND NOT (teaches(OLD.course_id, 'respond_to_reviews') OR OLD.instructor_id = current_user_id()
              OR EXISTS (SELECT 1 FROM courses c WHERE c.id = OLD.course_id
                         AND administers(c.organization_id))) THEN
    RAISE EXCEPTION 'only the teaching team answers a review' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.rating <> OLD.rating OR NEW.title <> OLD.title OR NEW.review_text <> OLD.review_text
      OR NEW.content_quality_rating IS DISTINCT FROM OLD.content_quality_rating
      OR NEW.instructor_rating IS DISTINCT FROM OLD.instructor_rating
      OR NEW.value_rating IS DISTINCT FROM OLD.value_rating)
     AND OLD.student_id IS DISTINCT FROM current_user_id() THEN
    RAISE EXCEPTION 'only its author edits a review' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER course_reviews_column_rules BEFORE INSERT OR UPDATE ON course_reviews
  FOR EACH ROW EXECUTE FUNCTION course_reviews_column_rules();

-- Votes show only where their review (and so its course) does.
DROP POLICY review_votes_read ON review_votes;
CREATE POLICY review_votes_read ON review_votes FOR SELECT
  USING (EXISTS (SELECT 1 FROM course_reviews r WHERE r.id = review_id));

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
