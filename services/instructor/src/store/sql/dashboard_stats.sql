SELECT
  (SELECT count(DISTINCT student_id) FROM enrollment_projection
   WHERE instructor_id = $1 AND status IN ('active', 'completed')) AS "total_students!",
  (SELECT count(*) FROM course_projection
   WHERE instructor_id = $1 AND status = 'published') AS "total_courses!",
  (SELECT coalesce(sum(rating_sum), 0)::bigint FROM course_projection
   WHERE instructor_id = $1) AS "rating_sum!",
  (SELECT coalesce(sum(review_count), 0)::bigint FROM course_projection
   WHERE instructor_id = $1) AS "review_count!",
  (SELECT count(*) FROM enrollment_projection
   WHERE instructor_id = $1 AND status = 'active') AS "active_enrollments!"
