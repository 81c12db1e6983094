SELECT e.enrollment_id, e.student_id,
       coalesce(d.full_name, '') AS "full_name!",
       coalesce(d.email, '') AS "email!",
       coalesce(d.avatar_url, '') AS "avatar_url!",
       e.course_id,
       coalesce(c.title, '') AS "course_title!",
       e.status,
       e.progress_percentage::float8 AS "progress_percentage!",
       e.completed_lessons, e.total_lessons, e.last_activity_at, e.enrolled_at
FROM (SELECT * FROM enrollment_projection
      WHERE instructor_id = $1 AND ($2::uuid IS NULL OR course_id = $2)
        AND ($3::timestamptz IS NULL OR (last_activity_at, enrollment_id) < ($3, $4))
      ORDER BY last_activity_at DESC, enrollment_id DESC
      LIMIT $5) e
LEFT JOIN student_directory d ON d.user_id = e.student_id
LEFT JOIN course_projection c ON c.course_id = e.course_id
ORDER BY e.last_activity_at DESC, e.enrollment_id DESC
