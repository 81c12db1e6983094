//! Stored totals recomputed from the rows they are kept from, for `lyceum verify`.

use uuid::Uuid;

use super::Tx;

/// A payment whose refunded amount or refunded fee differs from its refund rows.
pub struct PaymentDrift {
    pub id: Uuid,
    pub refunded: i64,
    pub true_refunded: i64,
    pub fee_refunded: i64,
    pub true_fee_refunded: i64,
}

pub async fn payment_drift(tx: &mut Tx) -> Result<Vec<PaymentDrift>, sqlx::Error> {
    sqlx::query_as!(
        PaymentDrift,
        r#"SELECT p.id, p.refunded_minor AS refunded,
                  coalesce(r.total, 0)::bigint AS "true_refunded!",
                  p.fee_refunded_minor AS fee_refunded,
                  coalesce(r.fees, 0)::bigint AS "true_fee_refunded!"
           FROM payments p
           LEFT JOIN (SELECT payment_id, sum(amount_minor) AS total, sum(fee_minor) AS fees
                      FROM payment_refunds GROUP BY payment_id) r ON r.payment_id = p.id
           WHERE p.refunded_minor <> coalesce(r.total, 0)
              OR p.fee_refunded_minor <> coalesce(r.fees, 0)"#
    )
    .fetch_all(tx.conn())
    .await
}

/// A refund transaction that does not reverse exactly its refund.
pub struct BookedRefundDrift {
    pub id: Uuid,
    pub amount: i64,
    pub refund_amount: i64,
    pub fee: i64,
    pub refund_fee: i64,
}

pub async fn booked_refund_drift(tx: &mut Tx) -> Result<Vec<BookedRefundDrift>, sqlx::Error> {
    sqlx::query_as!(
        BookedRefundDrift,
        r#"SELECT t.id, -t.amount_minor AS "amount!", r.amount_minor AS refund_amount,
                  -t.platform_fee_minor AS "fee!", r.fee_minor AS refund_fee
           FROM revenue_transactions t JOIN payment_refunds r ON r.id = t.refund_id
           WHERE -t.amount_minor <> r.amount_minor OR -t.platform_fee_minor <> r.fee_minor"#
    )
    .fetch_all(tx.conn())
    .await
}

/// Sets each payment's refunded amount and fee to the sums of its refunds; returns how
/// many changed.
pub async fn repair_payments(tx: &mut Tx) -> Result<u64, sqlx::Error> {
    let result = sqlx::query!(
        "WITH truth AS (
           SELECT p.id,
                  coalesce((SELECT sum(amount_minor) FROM payment_refunds r
                            WHERE r.payment_id = p.id), 0) AS refunded,
                  coalesce((SELECT sum(fee_minor) FROM payment_refunds r
                            WHERE r.payment_id = p.id), 0) AS fee_refunded
           FROM payments p)
         UPDATE payments p SET refunded_minor = t.refunded, fee_refunded_minor = t.fee_refunded
         FROM truth t
         WHERE t.id = p.id
           AND (p.refunded_minor <> t.refunded OR p.fee_refunded_minor <> t.fee_refunded)"
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected())
}

/// An instructor whose stored statistics differ from the recount.
pub struct InstructorStatsDrift {
    pub instructor_id: Uuid,
    pub students: i64,
    pub true_students: i64,
    pub courses: i64,
    pub true_courses: i64,
    pub workshops: i64,
    pub true_workshops: i64,
    pub rating_sum: i64,
    pub true_rating_sum: i64,
    pub reviews: i64,
    pub true_reviews: i64,
}

pub async fn instructor_stats_drift(tx: &mut Tx) -> Result<Vec<InstructorStatsDrift>, sqlx::Error> {
    sqlx::query_as!(
        InstructorStatsDrift,
        r#"SELECT t.instructor_id AS "instructor_id!",
                  coalesce(s.total_students, 0) AS "students!", t.students AS "true_students!",
                  coalesce(s.total_courses, 0) AS "courses!", t.courses AS "true_courses!",
                  coalesce(s.total_workshops, 0) AS "workshops!",
                  t.workshops AS "true_workshops!",
                  coalesce(s.rating_sum, 0) AS "rating_sum!", t.rating_sum AS "true_rating_sum!",
                  coalesce(s.review_count, 0) AS "reviews!", t.reviews AS "true_reviews!"
           FROM instructor_stats_truth() t
           LEFT JOIN instructor_stats s ON s.instructor_id = t.instructor_id
           WHERE (coalesce(s.total_students, 0), coalesce(s.total_courses, 0),
                  coalesce(s.total_workshops, 0), coalesce(s.rating_sum, 0),
                  coalesce(s.review_count, 0))
                 IS DISTINCT FROM (t.students, t.courses, t.workshops, t.rating_sum, t.reviews)"#
    )
    .fetch_all(tx.conn())
    .await
}

/// Sets every drifting instructor's statistics to the recount; returns how many changed.
pub async fn repair_instructor_stats(tx: &mut Tx) -> Result<u64, sqlx::Error> {
    let result = sqlx::query!(
        "INSERT INTO instructor_stats (instructor_id, total_students, total_courses,
                                       total_workshops, rating_sum, review_count)
         SELECT instructor_id, students, courses, workshops, rating_sum, reviews
         FROM instructor_stats_truth()
         ON CONFLICT (instructor_id) DO UPDATE SET total_students = EXCLUDED.total_students,
           total_courses = EXCLUDED.total_courses, total_workshops = EXCLUDED.total_workshops,
           rating_sum = EXCLUDED.rating_sum, review_count = EXCLUDED.review_count
         WHERE (instructor_stats.total_students, instructor_stats.total_courses,
                instructor_stats.total_workshops, instructor_stats.rating_sum,
                instructor_stats.review_count)
               IS DISTINCT FROM (EXCLUDED.total_students, EXCLUDED.total_courses,
                                 EXCLUDED.total_workshops, EXCLUDED.rating_sum,
                                 EXCLUDED.review_count)"
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected())
}
