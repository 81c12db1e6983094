-- The SECURITY DEFINER helpers of the policies and column rules in PL/pgSQL. A SQL
-- function with SECURITY DEFINER or a SET clause is never inlined, and PostgreSQL 15
-- parses and plans its body again on every call; a PL/pgSQL function keeps its plans for
-- the session. Enrolling calls these several times (the enrollment's policy and column
-- rules), so their parsing was most of the write's CPU. Same signatures, same answers.

CREATE OR REPLACE FUNCTION teaches(course uuid, permission text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM courses c WHERE c.id = course AND c.instructor_id = current_user_id())
      OR EXISTS (SELECT 1 FROM course_instructors ci
                 WHERE ci.course_id = course AND ci.instructor_id = current_user_id()
                   AND (permission IS NULL OR permission = ANY (ci.permissions)));
END
$$;

CREATE OR REPLACE FUNCTION is_enrolled(course uuid)
RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM enrollments e
                 WHERE e.course_id = course AND e.student_id = current_user_id());
END
$$;

CREATE OR REPLACE FUNCTION can_view_course(course uuid)
RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM courses c
    WHERE c.id = course
      AND (is_privileged()
           OR (c.status = 'published' AND (c.visibility = 'public' OR c.organization_id = current_org_id()))
           OR administers(c.organization_id)
           OR teaches(c.id)));
END
$$;

CREATE OR REPLACE FUNCTION course_terms(course uuid, OUT price_minor bigint, OUT currency text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  SELECT c.price_minor, c.currency INTO price_minor, currency FROM courses c WHERE c.id = course;
END
$$;

CREATE OR REPLACE FUNCTION course_enrollment_terms(course uuid, OUT price_minor bigint,
    OUT currency text, OUT instructor_id uuid, OUT organization_id uuid, OUT enrollable boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  SELECT c.price_minor, c.currency, c.instructor_id, c.organization_id,
         c.status = 'published' AND c.enrollment_type <> 'cohort_only'
           AND (c.visibility = 'public' OR c.organization_id = current_org_id())
    INTO price_minor, currency, instructor_id, organization_id, enrollable
    FROM courses c WHERE c.id = course;
END
$$;

CREATE OR REPLACE FUNCTION progress_complete(enrollment uuid)
RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM student_progress p
                 WHERE p.enrollment_id = enrollment
                   AND p.total_lessons > 0 AND p.completed_lessons >= p.total_lessons);
END
$$;
