WITH recent AS (SELECT student_id, activity_type FROM student_activity
                WHERE instructor_id = $1 AND occurred_at > now() - interval '7 days'),
     taught AS (SELECT status, progress_percentage FROM enrollment_projection
                WHERE instructor_id = $1 AND status IN ('active', 'completed'))
SELECT (SELECT count(DISTINCT student_id) FROM recent) AS "active_students_7d!",
       (SELECT count(*) FROM recent WHERE activity_type = 'lesson_completed')
         AS "lessons_completed_7d!",
       (SELECT count(*) FROM recent WHERE activity_type = 'quiz_passed') AS "quizzes_passed_7d!",
       (SELECT coalesce(round(avg(progress_percentage), 2), 0)::float8 FROM taught)
         AS "average_progress!",
       (SELECT coalesce(round(avg((status = 'completed')::int) * 100, 2), 0)::float8 FROM taught)
         AS "completion_rate!"
