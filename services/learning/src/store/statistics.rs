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

/// A workshop's stored statistics where they differ from the recount, or its seats where
/// the capacity pool disagrees with the registrations.
pub struct WorkshopDrift {
    pub id: Uuid,
    pub attended: i64,
    pub true_attended: i64,
    pub feedback: i64,
    pub true_feedback: i64,
    pub satisfaction_sum: i64,
    pub true_satisfaction_sum: i64,
    /// The pool's capacity and the workshop's (-1 when the pool is missing).
    pub pool_capacity: i64,
    pub capacity: i64,
    /// Live claims, and registrations that hold a seat.
    pub claims: i64,
    pub holding: i64,
    /// Holding registrations without a live claim, and live claims without one.
    pub unclaimed: i64,
    pub orphaned: i64,
}

pub async fn workshop_drift(tx: &mut Tx) -> Result<Vec<WorkshopDrift>, sqlx::Error> {
    sqlx::query_as!(
        WorkshopDrift,
        r#"WITH holding AS (
             SELECT r.workshop_id, r.id FROM workshop_registrations r
             WHERE r.status IN ('pending_payment', 'registered', 'completed', 'no_show')),
           live AS (
             SELECT c.pool_id, c.holder_id FROM capacity_claims c
             JOIN capacity_pools p ON p.id = c.pool_id AND p.kind = 'workshop_seats'
             WHERE c.released_at IS NULL),
           figures AS (
             SELECT w.id, w.attended_count, w.feedback_count, w.satisfaction_sum,
                    w.capacity::bigint AS capacity,
                    coalesce((SELECT p.capacity FROM capacity_pools p WHERE p.id = w.id), -1)
                      AS pool_capacity,
                    (SELECT count(*) FROM workshop_registrations r
                     WHERE r.workshop_id = w.id AND r.status = 'completed') AS true_attended,
                    (SELECT count(*) FROM workshop_feedback f WHERE f.workshop_id = w.id)
                      AS true_feedback,
                    (SELECT coalesce(sum(f.overall_satisfaction), 0) FROM workshop_feedback f
                     WHERE f.workshop_id = w.id) AS true_satisfaction_sum,
                    (SELECT count(*) FROM live l WHERE l.pool_id = w.id) AS claims,
                    (SELECT count(*) FROM holding h WHERE h.workshop_id = w.id) AS holding,
                    (SELECT count(*) FROM holding h WHERE h.workshop_id = w.id
                       AND NOT EXISTS (SELECT 1 FROM live l
                                       WHERE l.pool_id = w.id AND l.holder_id = h.id))
                      AS unclaimed,
                    (SELECT count(*) FROM live l WHERE l.pool_id = w.id
                       AND NOT EXISTS (SELECT 1 FROM holding h
                                       WHERE h.workshop_id = w.id AND h.id = l.holder_id))
                      AS orphaned
             FROM workshops w)
           SELECT id AS "id!", attended_count AS "attended!", true_attended AS "true_attended!",
                  feedback_count AS "feedback!", true_feedback AS "true_feedback!",
                  satisfaction_sum AS "satisfaction_sum!",
                  true_satisfaction_sum AS "true_satisfaction_sum!",
                  pool_capacity AS "pool_capacity!", capacity AS "capacity!",
                  claims AS "claims!", holding AS "holding!", unclaimed AS "unclaimed!",
                  orphaned AS "orphaned!"
           FROM figures
           WHERE (attended_count, feedback_count, satisfaction_sum, pool_capacity, claims)
                 IS DISTINCT FROM (true_attended, true_feedback, true_satisfaction_sum, capacity,
                                   holding)
              OR unclaimed > 0 OR orphaned > 0"#
    )
    .fetch_all(tx.conn())
    .await
}

/// Sets every drifting workshop's statistics to the recount (seats are not repaired
/// here: the kit's pool drift repair and an operator's look are). Returns how many
/// changed.
pub async fn repair_workshops(tx: &mut Tx) -> Result<u64, sqlx::Error> {
    let result = sqlx::query!(
        "WITH truth AS (
           SELECT w.id,
                  (SELECT count(*) FROM workshop_registrations r
                   WHERE r.workshop_id = w.id AND r.status = 'completed') AS attended,
                  (SELECT count(*) FROM workshop_feedback f WHERE f.workshop_id = w.id) AS feedback,
                  (SELECT coalesce(sum(f.overall_satisfaction), 0) FROM workshop_feedback f
                   WHERE f.workshop_id = w.id) AS satisfaction_sum
           FROM workshops w)
         UPDATE workshops w SET attended_count = t.attended, feedback_count = t.feedback,
                satisfaction_sum = t.satisfaction_sum, stats_version = w.stats_version + 1
         FROM truth t
         WHERE t.id = w.id
           AND (w.attended_count, w.feedback_count, w.satisfaction_sum)
               IS DISTINCT FROM (t.attended, t.feedback, t.satisfaction_sum)"
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected())
}
