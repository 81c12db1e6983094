-- What instructor_stats should hold, recomputed from the projections it is kept from:
-- defined once for `lyceum verify`'s check and for its repair, which the query macros
-- can then check as two fixed statements. Plain SQL, so the planner inlines it.
CREATE FUNCTION instructor_stats_truth()
RETURNS TABLE (instructor_id uuid, students bigint, courses bigint, rating_sum bigint,
               reviews bigint)
LANGUAGE sql STABLE AS $$
  WITH instructors AS (
         SELECT st.instructor_id FROM instructor_stats st
         UNION SELECT s.instructor_id FROM instructor_students s
         UNION SELECT c.instructor_id FROM course_projection c)
  SELECT i.instructor_id,
         (SELECT count(*) FROM instructor_students s WHERE s.instructor_id = i.instructor_id),
         (SELECT count(*) FROM course_projection c
          WHERE c.instructor_id = i.instructor_id AND c.status = 'published'),
         (SELECT coalesce(sum(c.rating_sum), 0)::bigint FROM course_projection c
          WHERE c.instructor_id = i.instructor_id),
         (SELECT coalesce(sum(c.review_count), 0)::bigint FROM course_projection c
          WHERE c.instructor_id = i.instructor_id)
  FROM instructors i
$$;
