//! Payouts: an instructor's pending earnings in one currency, marked paid together.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::domain::{PayoutId, UserId};

#[derive(Debug, Clone)]
pub struct PayoutRow {
    pub id: Uuid,
    pub request_id: String,
    pub instructor_id: Uuid,
    pub currency: String,
    pub amount_minor: i64,
    pub transaction_count: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn by_request(tx: &mut Tx, request_id: &str) -> Result<Option<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, request_id, instructor_id, currency, amount_minor,
                transaction_count, created_at FROM payouts WHERE request_id = $1",
        request_id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Marks the instructor's pending transactions in `currency` paid by `payout_id`;
/// returns their (net earnings, count). Concurrent payouts queue on the rows' locks and
/// the later one finds them no longer pending.
pub async fn settle_pending(
    tx: &mut Tx,
    payout_id: PayoutId,
    instructor_id: UserId,
    currency: &str,
) -> Result<(i64, i64), sqlx::Error> {
    let settled = sqlx::query!(
        r#"WITH paid AS (
             UPDATE revenue_transactions SET payout_status = 'paid', payout_id = $3
             WHERE instructor_id = $1 AND currency = $2 AND payout_status = 'pending'
             RETURNING instructor_earnings_minor)
           SELECT coalesce(sum(instructor_earnings_minor), 0)::bigint AS "amount!",
                  count(*) AS "count!"
           FROM paid"#,
        instructor_id.get(),
        currency,
        payout_id.get()
    )
    .fetch_one(tx.conn())
    .await?;
    Ok((settled.amount, settled.count))
}

pub struct NewPayout {
    pub id: Uuid,
    pub request_id: String,
    pub instructor_id: Uuid,
    pub currency: String,
    pub amount_minor: i64,
    pub transaction_count: i64,
}

/// Records the payout; `None` when its request id was taken meanwhile by a concurrent
/// call (which then holds the payout of this request).
pub async fn insert(tx: &mut Tx, new: NewPayout) -> Result<Option<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "INSERT INTO payouts (id, request_id, instructor_id, currency, amount_minor, transaction_count)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (request_id) DO NOTHING
         RETURNING id, request_id, instructor_id, currency, amount_minor,
                transaction_count, created_at",
        new.id,
        new.request_id,
        new.instructor_id,
        new.currency,
        new.amount_minor,
        new.transaction_count
    )
    .fetch_optional(tx.conn())
    .await
}

/// A page of an instructor's payouts, newest first.
pub async fn list(
    tx: &mut Tx,
    instructor_id: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<PayoutRow>, sqlx::Error> {
    sqlx::query_as!(
        PayoutRow,
        "SELECT id, request_id, instructor_id, currency, amount_minor,
                transaction_count, created_at FROM payouts
         WHERE instructor_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
        instructor_id.get(),
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit
    )
    .fetch_all(tx.conn())
    .await
}
