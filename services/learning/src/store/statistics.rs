//! Each course's statistics recomputed from the enrollments, reviews and lessons, for
//! `lyceum verify`.

use uuid::Uuid;

use super::Tx;

/// Stored and recomputed values of a course where any of them differ.
pub struct StatisticsDrift {
    pub id: Uuid,
    pub enrolled: i64,
    pub true_enrolled: i64,
    pub completed: i64,
    pub true_completed: i64,
    pub rating_sum: i64,
    pub true_rating_sum: i64,
    pub reviews: i64,
    pub true_reviews: i64,
    pub lessons: i32,
    pub true_lessons: i32,
}

pub async fn drift(tx: &mut Tx) -> Result<Vec<StatisticsDrift>, sqlx::Error> {
    sqlx::query_as!(
        StatisticsDrift,
        r#"WITH truth AS (
             SELECT c.id,
                    (SELECT count(*) FROM enrollments e
                     WHERE e.course_id = c.id AND e.status IN ('active', 'completed'))
                      AS enrolled,
                    (SELECT count(*) FROM enrollments e
                     WHERE e.course_id = c.id AND e.status = 'completed') AS completed,
                    (SELECT coalesce(sum(r.rating), 0) FROM course_reviews r
                     WHERE r.course_id = c.id) AS rating_sum,
                    (SELECT count(*) FROM course_reviews r WHERE r.course_id = c.id) AS reviews,
                    (SELECT count(*) FROM course_lessons l WHERE l.course_id = c.id)::int
                      AS lessons
             FROM courses c),
           stored AS (
             SELECT c.id,
                    c.enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                        FROM course_count_slots s WHERE s.course_id = c.id)
                      AS enrolled,
                    c.completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                         FROM course_count_slots s WHERE s.course_id = c.id)
                      AS completed,
                    c.rating_sum, c.review_count, c.lesson_count
             FROM courses c)
           SELECT c.id AS "id!", c.enrolled AS "enrolled!", t.enrolled AS "true_enrolled!",
                  c.completed AS "completed!", t.completed AS "true_completed!",
                  c.rating_sum AS "rating_sum!", t.rating_sum AS "true_rating_sum!",
                  c.review_count AS "reviews!", t.reviews AS "true_reviews!",
                  c.lesson_count AS "lessons!", t.lessons AS "true_lessons!"
           FROM stored c JOIN truth t ON t.id = c.id
           WHERE (c.enrolled, c.completed, c.rating_sum, c.review_count, c.lesson_count)
                 IS DISTINCT FROM (t.enrolled, t.completed, t.rating_sum, t.reviews, t.lessons)"#
    )
    .fetch_all(tx.conn())
    .await
}

/// Sets every drifting course's statistics to the recount; returns how many changed.
/// The counts' base is set to the recount less the slots, both read in this statement's
/// snapshot, in which every enrollment and its slot increment are either both visible or
/// both not: exact even while enrollments go on.
pub async fn repair(tx: &mut Tx) -> Result<u64, sqlx::Error> {
    let result = sqlx::query!(
        "WITH truth AS (
           SELECT c.id,
                  (SELECT count(*) FROM enrollments e
                   WHERE e.course_id = c.id AND e.status IN ('active', 'completed'))
                    - (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                       FROM course_count_slots s WHERE s.course_id = c.id) AS enrolled_base,
                  (SELECT count(*) FROM enrollments e
                   WHERE e.course_id = c.id AND e.status = 'completed')
                    - (SELECT coalesce(sum(s.completed_count), 0)::bigint
                       FROM course_count_slots s WHERE s.course_id = c.id) AS completed_base,
                  (SELECT coalesce(sum(r.rating), 0) FROM course_reviews r
                   WHERE r.course_id = c.id) AS rating_sum,
                  (SELECT count(*) FROM course_reviews r WHERE r.course_id = c.id) AS reviews,
                  (SELECT count(*) FROM course_lessons l WHERE l.course_id = c.id)::int
                    AS lessons
           FROM courses c)
         UPDATE courses c SET enrolled_count = t.enrolled_base,
                completed_count = t.completed_base, rating_sum = t.rating_sum,
                review_count = t.reviews, lesson_count = t.lessons
         FROM truth t
         WHERE t.id = c.id
           AND (c.enrolled_count, c.completed_count, c.rating_sum, c.review_count,
                c.lesson_count)
               IS DISTINCT FROM (t.enrolled_base, t.completed_base, t.rating_sum, t.reviews,
                                 t.lessons)"
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected())
}
