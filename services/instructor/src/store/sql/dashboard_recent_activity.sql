SELECT a.id, a.student_id,
       coalesce(d.full_name, '') AS "full_name!",
       a.activity_type, a.course_id,
       coalesce(c.title, '') AS "course_title!",
       a.lesson_id, a.workshop_id,
       coalesce(w.title, '') AS "workshop_title!",
       a.occurred_at
FROM (SELECT * FROM student_activity
      WHERE instructor_id = $1 AND ($2::timestamptz IS NULL OR (occurred_at, id) < ($2, $3))
      ORDER BY occurred_at DESC, id DESC
      LIMIT $4) a
LEFT JOIN student_directory d ON d.user_id = a.student_id
LEFT JOIN course_projection c ON c.course_id = a.course_id
LEFT JOIN workshop_projection w ON w.workshop_id = a.workshop_id
ORDER BY a.occurred_at DESC, a.id DESC
