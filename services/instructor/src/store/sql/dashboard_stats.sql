-- Students are distinct across courses and workshops: an active or completed enrollment,
-- or a registered or completed (attended) workshop registration. Workshops count once
-- published, whatever became of them since (archived, cancelled); drafts never count.
-- Upcoming workshops are published ones that have not started.
SELECT
  (SELECT count(*) FROM (SELECT student_id FROM enrollment_projection
                         WHERE instructor_id = $1 AND status IN ('active', 'completed')
                         UNION
                         SELECT user_id FROM registration_projection
                         WHERE instructor_id = $1 AND status IN ('registered', 'completed')) s)
    AS "total_students!",
  (SELECT count(*) FROM course_projection
   WHERE instructor_id = $1 AND status = 'published') AS "total_courses!",
  (SELECT count(*) FROM workshop_projection
   WHERE instructor_id = $1 AND ever_published) AS "total_workshops!",
  (SELECT count(*) FROM workshop_projection
   WHERE instructor_id = $1 AND status = 'published' AND start_time > now())
    AS "upcoming_workshops!",
  (SELECT coalesce(sum(rating_sum), 0)::bigint FROM course_projection
   WHERE instructor_id = $1) AS "rating_sum!",
  (SELECT coalesce(sum(review_count), 0)::bigint FROM course_projection
   WHERE instructor_id = $1) AS "review_count!",
  (SELECT count(*) FROM enrollment_projection
   WHERE instructor_id = $1 AND status = 'active') AS "active_enrollments!"
