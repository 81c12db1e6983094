use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub request_id: String,
    pub request_fingerprint: String,
    pub payer_id: Uuid,
    pub instructor_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub refunded_minor: i64,
    pub provider: String,
    pub provider_transaction_id: Option<String>,
    pub status: String,
    pub payment_type: String,
    pub related_entity_id: Option<Uuid>,
    pub invoice_number: String,
    pub fee_bps: Option<i32>,
    pub fee_minor: Option<i64>,
    pub fee_refunded_minor: i64,
    pub created_at: DateTime<Utc>,
    pub succeeded_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, request_id, request_fingerprint, payer_id, instructor_id, organization_id, amount_minor, \
    currency, refunded_minor, provider, provider_transaction_id, status, payment_type, related_entity_id, \
    invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at, succeeded_at";

fn sql(statement: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(statement.replace("{COLUMNS}", COLUMNS))
}

pub struct NewPayment {
    pub request_id: String,
    pub fingerprint: String,
    pub payer_id: Uuid,
    pub instructor_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub provider: &'static str,
    pub payment_type: &'static str,
    pub related_entity_id: Option<Uuid>,
}

/// Inserts the payment unless its request id exists; returns the row that holds the
/// request id either way (None when it belongs to a payment the caller may not see), and
/// whether this call created it. Concurrent retries wait on the unique index and then
/// find the first one's row.
pub async fn insert_once(
    tx: &mut Tx,
    new: NewPayment,
) -> Result<(Option<PaymentRow>, bool), sqlx::Error> {
    let created = sqlx::query_as::<_, PaymentRow>(sql(
        "INSERT INTO payments (id, request_id, request_fingerprint, payer_id, instructor_id, organization_id,
            amount_minor, currency, provider, payment_type, related_entity_id, invoice_number)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 'INV-' || to_char(now(), 'YYYYMMDD') || '-' || lpad(nextval('invoice_numbers')::text, 8, '0'))
         ON CONFLICT (request_id) DO NOTHING
         RETURNING {COLUMNS}",
    ))
    .bind(Uuid::now_v7())
    .bind(&new.request_id)
    .bind(&new.fingerprint)
    .bind(new.payer_id)
    .bind(new.instructor_id)
    .bind(new.organization_id)
    .bind(new.amount_minor)
    .bind(&new.currency)
    .bind(new.provider)
    .bind(new.payment_type)
    .bind(new.related_entity_id)
    .fetch_optional(tx.conn())
    .await?;
    if created.is_some() {
        return Ok((created, true));
    }
    let existing = sqlx::query_as::<_, PaymentRow>(sql(
        "SELECT {COLUMNS} FROM payments WHERE request_id = $1",
    ))
    .bind(&new.request_id)
    .fetch_optional(tx.conn())
    .await?;
    Ok((existing, false))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as::<_, PaymentRow>(sql("SELECT {COLUMNS} FROM payments WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
}

pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as::<_, PaymentRow>(sql(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 FOR UPDATE",
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await
}

pub async fn mark_succeeded(
    tx: &mut Tx,
    id: Uuid,
    provider_transaction_id: Option<String>,
    fee_bps: i32,
    fee_minor: i64,
) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as::<_, PaymentRow>(sql(
        "UPDATE payments SET status = 'succeeded', succeeded_at = now(), fee_bps = $3, fee_minor = $4,
            provider_transaction_id = coalesce($2, provider_transaction_id), updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}",
    ))
    .bind(id)
    .bind(provider_transaction_id)
    .bind(fee_bps)
    .bind(fee_minor)
    .fetch_one(tx.conn())
    .await
}

pub async fn mark_failed(tx: &mut Tx, id: Uuid, reason: &str) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as::<_, PaymentRow>(sql(
        "UPDATE payments SET status = 'failed', failed_at = now(), failure_reason = $2, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}",
    ))
    .bind(id)
    .bind(reason)
    .fetch_one(tx.conn())
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundRow {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount_minor: i64,
    /// The platform fee the refund returned.
    pub fee_minor: i64,
}

pub async fn find_refund(
    tx: &mut Tx,
    payment_id: Uuid,
    request_id: &str,
) -> Result<Option<RefundRow>, sqlx::Error> {
    sqlx::query_as::<_, RefundRow>(
        "SELECT id, payment_id, amount_minor, fee_minor FROM payment_refunds WHERE payment_id = $1 AND request_id = $2",
    )
    .bind(payment_id)
    .bind(request_id)
    .fetch_optional(tx.conn())
    .await
}

/// Records a refund and the payment's new totals and status.
pub async fn apply_refund(
    tx: &mut Tx,
    payment: &PaymentRow,
    request_id: &str,
    amount_minor: i64,
    fee_refund_minor: i64,
    reason: &str,
) -> Result<(RefundRow, PaymentRow), sqlx::Error> {
    let refund = sqlx::query_as::<_, RefundRow>(
        "INSERT INTO payment_refunds (id, payment_id, request_id, amount_minor, fee_minor, reason)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, payment_id, amount_minor, fee_minor",
    )
    .bind(Uuid::now_v7())
    .bind(payment.id)
    .bind(request_id)
    .bind(amount_minor)
    .bind(fee_refund_minor)
    .bind(reason)
    .fetch_one(tx.conn())
    .await?;
    let updated = sqlx::query_as::<_, PaymentRow>(sql(
        "UPDATE payments SET refunded_minor = refunded_minor + $2, fee_refunded_minor = fee_refunded_minor + $3,
            status = CASE WHEN refunded_minor + $2 = amount_minor THEN 'refunded' ELSE 'partially_refunded' END,
            updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}",
    ))
    .bind(payment.id)
    .bind(amount_minor)
    .bind(fee_refund_minor)
    .fetch_one(tx.conn())
    .await?;
    Ok((refund, updated))
}

/// Refunds of a payment that no revenue transaction reverses yet (made before its sale
/// was booked), oldest first.
pub async fn unbooked_refunds(
    tx: &mut Tx,
    payment_id: Uuid,
) -> Result<Vec<RefundRow>, sqlx::Error> {
    sqlx::query_as::<_, RefundRow>(
        "SELECT r.id, r.payment_id, r.amount_minor, r.fee_minor FROM payment_refunds r
         WHERE r.payment_id = $1
           AND NOT EXISTS (SELECT 1 FROM revenue_transactions t WHERE t.refund_id = r.id)
         ORDER BY r.created_at, r.id",
    )
    .bind(payment_id)
    .fetch_all(tx.conn())
    .await
}

/// The fee in force for an instructor: their own, or the platform's.
pub async fn fee_bps_for(tx: &mut Tx, instructor_id: Option<Uuid>) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce((SELECT fee_bps FROM instructor_fees WHERE instructor_id = $1),
                         (SELECT fee_bps FROM platform_fee))",
    )
    .bind(instructor_id)
    .fetch_one(tx.conn())
    .await
}

pub async fn set_platform_fee(tx: &mut Tx, fee_bps: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE platform_fee SET fee_bps = $1, updated_at = now()")
        .bind(fee_bps)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn set_instructor_fee(
    tx: &mut Tx,
    instructor_id: Uuid,
    fee_bps: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instructor_fees (instructor_id, fee_bps) VALUES ($1, $2)
         ON CONFLICT (instructor_id) DO UPDATE SET fee_bps = EXCLUDED.fee_bps, updated_at = now()",
    )
    .bind(instructor_id)
    .bind(fee_bps)
    .execute(tx.conn())
    .await?;
    Ok(())
}
