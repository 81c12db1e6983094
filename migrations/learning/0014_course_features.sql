-- Course features part 1 left out: revenue on the course from payment events, deleting
-- drafts, and reordering modules and lessons.

-- What the course's payments brought in, in the course's currency, less refunds; kept by
-- the service from the payment events, like the other statistics.
ALTER TABLE courses ADD COLUMN total_revenue_minor bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION courses_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.enrolled_count <> 0 OR NEW.completed_count <> 0 OR NEW.rating_sum <> 0
       OR NEW.review_count <> 0 OR NEW.lesson_count <> 0
       OR NEW.counts_version <> 0 OR NEW.rating_version <> 0
       OR NEW.total_revenue_minor <> 0 THEN
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
     OR NEW.rating_version <> OLD.rating_version
     OR NEW.total_revenue_minor <> OLD.total_revenue_minor THEN
    RAISE EXCEPTION 'a course''s statistics are kept by the service'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- Every change by a caller is one version later, whatever the statement asked for.
  NEW.version := OLD.version + 1;
  RETURN NEW;
END
$$;

-- Drafts may be deleted by their owner or their organization's admins; a course that was
-- ever published stays (enrollments, reviews and revenue name it).
CREATE POLICY courses_owner_delete_draft ON courses FOR DELETE
  USING (status = 'draft' AND published_at IS NULL
         AND (instructor_id = current_user_id() OR administers(organization_id)));

-- Positions stay unique, checked at commit, so that a reorder may pass through
-- duplicates inside its transaction.
ALTER TABLE course_modules DROP CONSTRAINT course_modules_course_id_position_key,
  ADD CONSTRAINT course_modules_course_id_position_key UNIQUE (course_id, position)
  DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE course_lessons DROP CONSTRAINT course_lessons_module_id_position_key,
  ADD CONSTRAINT course_lessons_module_id_position_key UNIQUE (module_id, position)
  DEFERRABLE INITIALLY IMMEDIATE;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
