use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::domain::{Money, PaymentStatus, PaymentType, Provider};

#[derive(Debug, Clone)]
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
    pub provider: Provider,
    pub provider_transaction_id: Option<String>,
    pub status: PaymentStatus,
    pub payment_type: PaymentType,
    pub related_entity_id: Option<Uuid>,
    pub invoice_number: String,
    pub fee_bps: Option<i32>,
    pub fee_minor: Option<i64>,
    pub fee_refunded_minor: i64,
    pub created_at: DateTime<Utc>,
    pub succeeded_at: Option<DateTime<Utc>>,
}

pub struct NewPayment {
    pub request_id: String,
    pub fingerprint: String,
    pub payer_id: Uuid,
    pub instructor_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub amount: Money,
    pub provider: Provider,
    pub payment_type: PaymentType,
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
    let created = sqlx::query_as!(
        PaymentRow,
        "INSERT INTO payments (id, request_id, request_fingerprint, payer_id, instructor_id, organization_id,
            amount_minor, currency, provider, payment_type, related_entity_id, invoice_number)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 'INV-' || to_char(now(), 'YYYYMMDD') || '-' || lpad(nextval('invoice_numbers')::text, 8, '0'))
         ON CONFLICT (request_id) DO NOTHING
         RETURNING id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at",
        Uuid::now_v7(),
        &new.request_id,
        &new.fingerprint,
        new.payer_id,
        new.instructor_id,
        new.organization_id,
        new.amount.minor,
        new.amount.currency.as_str(),
        new.provider as _,
        new.payment_type as _,
        new.related_entity_id
    )
    .fetch_optional(tx.conn())
    .await?;
    if created.is_some() {
        return Ok((created, true));
    }
    let existing = sqlx::query_as!(
        PaymentRow,
        "SELECT id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at FROM payments WHERE request_id = $1",
        &new.request_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok((existing, false))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "SELECT id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at FROM payments WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "SELECT id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at FROM payments WHERE id = $1 FOR UPDATE",
        id
    )
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
    sqlx::query_as!(
        PaymentRow,
        "UPDATE payments SET status = 'succeeded', succeeded_at = now(), fee_bps = $3, fee_minor = $4,
            provider_transaction_id = coalesce($2, provider_transaction_id), updated_at = now()
         WHERE id = $1 RETURNING id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at",
        id,
        provider_transaction_id,
        fee_bps,
        fee_minor
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn mark_failed(tx: &mut Tx, id: Uuid, reason: &str) -> Result<PaymentRow, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        "UPDATE payments SET status = 'failed', failed_at = now(), failure_reason = $2, updated_at = now()
         WHERE id = $1 RETURNING id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at",
        id,
        reason
    )
    .fetch_one(tx.conn())
    .await
}

#[derive(Debug, Clone)]
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
    sqlx::query_as!(
        RefundRow,
        "SELECT id, payment_id, amount_minor, fee_minor FROM payment_refunds WHERE payment_id = $1 AND request_id = $2",
        payment_id,
        request_id
    )
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
    let refund = sqlx::query_as!(
        RefundRow,
        "INSERT INTO payment_refunds (id, payment_id, request_id, amount_minor, fee_minor, reason)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, payment_id, amount_minor, fee_minor",
        Uuid::now_v7(),
        payment.id,
        request_id,
        amount_minor,
        fee_refund_minor,
        reason
    )
    .fetch_one(tx.conn())
    .await?;
    let updated = sqlx::query_as!(
        PaymentRow,
        "UPDATE payments SET refunded_minor = refunded_minor + $2, fee_refunded_minor = fee_refunded_minor + $3,
            status = CASE WHEN refunded_minor + $2 = amount_minor THEN 'refunded' ELSE 'partially_refunded' END,
            updated_at = now()
         WHERE id = $1 RETURNING id, request_id, request_fingerprint, payer_id, instructor_id,
                organization_id, amount_minor, currency, refunded_minor, provider,
                provider_transaction_id, status, payment_type, related_entity_id,
                invoice_number, fee_bps, fee_minor, fee_refunded_minor, created_at,
                succeeded_at",
        payment.id,
        amount_minor,
        fee_refund_minor
    )
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
    sqlx::query_as!(
        RefundRow,
        "SELECT r.id, r.payment_id, r.amount_minor, r.fee_minor FROM payment_refunds r
         WHERE r.payment_id = $1
           AND NOT EXISTS (SELECT 1 FROM revenue_transactions t WHERE t.refund_id = r.id)
         ORDER BY r.created_at, r.id",
        payment_id
    )
    .fetch_all(tx.conn())
    .await
}

/// The fee in force for an instructor: their own, or the platform's.
pub async fn fee_bps_for(tx: &mut Tx, instructor_id: Option<Uuid>) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT coalesce((SELECT fee_bps FROM instructor_fees WHERE instructor_id = $1),
                         (SELECT fee_bps FROM platform_fee)) AS \"fee_bps!\"",
        instructor_id
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn set_platform_fee(tx: &mut Tx, fee_bps: i32) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE platform_fee SET fee_bps = $1, updated_at = now()",
        fee_bps
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn set_instructor_fee(
    tx: &mut Tx,
    instructor_id: Uuid,
    fee_bps: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO instructor_fees (instructor_id, fee_bps) VALUES ($1, $2)
         ON CONFLICT (instructor_id) DO UPDATE SET fee_bps = EXCLUDED.fee_bps, updated_at = now()",
        instructor_id,
        fee_bps
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
