use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::domain::{TransactionType, UserId};

#[derive(Debug, Clone)]
pub struct TransactionRow {
    pub id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub transaction_type: TransactionType,
    pub course_id: Option<Uuid>,
    pub enrollment_id: Option<Uuid>,
    pub workshop_id: Option<Uuid>,
    pub registration_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    pub student_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub fee_bps: i32,
    pub platform_fee_minor: i64,
    pub instructor_earnings_minor: i64,
    pub payout_status: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewTransaction {
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub transaction_type: TransactionType,
    pub course_id: Option<Uuid>,
    pub enrollment_id: Option<Uuid>,
    pub workshop_id: Option<Uuid>,
    pub registration_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    pub refund_id: Option<Uuid>,
    pub student_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub fee_bps: i32,
    pub platform_fee_minor: i64,
}

/// The transaction that reverses `refund` of the payment of `sale`: the sale's
/// instructor and what it sold, the refund's amount and fee.
pub fn refund_of(sale: &TransactionRow, refund: &super::payments::RefundRow) -> NewTransaction {
    NewTransaction {
        instructor_id: sale.instructor_id,
        organization_id: sale.organization_id,
        transaction_type: TransactionType::Refund,
        course_id: sale.course_id,
        enrollment_id: sale.enrollment_id,
        workshop_id: sale.workshop_id,
        registration_id: sale.registration_id,
        payment_id: sale.payment_id,
        refund_id: Some(refund.id),
        student_id: sale.student_id,
        amount_minor: -refund.amount_minor,
        currency: sale.currency.clone(),
        fee_bps: sale.fee_bps,
        platform_fee_minor: -refund.fee_minor,
    }
}

/// Records a transaction; a sale for a payment that already has one, or a second booking
/// of a refund, is skipped (`None`), so redelivered events never count twice.
pub async fn insert(
    tx: &mut Tx,
    new: NewTransaction,
) -> Result<Option<TransactionRow>, sqlx::Error> {
    sqlx::query_as!(
        TransactionRow,
        "INSERT INTO revenue_transactions (id, instructor_id, organization_id, transaction_type, course_id,
            enrollment_id, workshop_id, registration_id, payment_id, refund_id, student_id,
            amount_minor, currency, fee_bps, platform_fee_minor, instructor_earnings_minor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $12::bigint - $15::bigint)
         ON CONFLICT DO NOTHING
         RETURNING id, instructor_id, organization_id, transaction_type, course_id,
                enrollment_id, workshop_id, registration_id, payment_id, student_id,
                amount_minor, currency, fee_bps,
                platform_fee_minor, instructor_earnings_minor, payout_status,
                created_at",
        Uuid::now_v7(),
        new.instructor_id,
        new.organization_id,
        new.transaction_type as _,
        new.course_id,
        new.enrollment_id,
        new.workshop_id,
        new.registration_id,
        new.payment_id,
        new.refund_id,
        new.student_id,
        new.amount_minor,
        new.currency,
        new.fee_bps,
        new.platform_fee_minor
    )
    .fetch_optional(tx.conn())
    .await
}

/// The sale a payment paid for (an enrollment or a registration), if it was recorded.
pub async fn sale_of_payment(
    tx: &mut Tx,
    payment_id: Uuid,
) -> Result<Option<TransactionRow>, sqlx::Error> {
    sqlx::query_as!(
        TransactionRow,
        "SELECT id, instructor_id, organization_id, transaction_type, course_id,
                enrollment_id, workshop_id, registration_id, payment_id, student_id,
                amount_minor, currency, fee_bps,
                platform_fee_minor, instructor_earnings_minor, payout_status,
                created_at FROM revenue_transactions
         WHERE payment_id = $1 AND transaction_type <> 'refund'",
        payment_id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn by_refund(
    tx: &mut Tx,
    refund_id: Uuid,
) -> Result<Option<TransactionRow>, sqlx::Error> {
    sqlx::query_as!(
        TransactionRow,
        "SELECT id, instructor_id, organization_id, transaction_type, course_id,
                enrollment_id, workshop_id, registration_id, payment_id, student_id,
                amount_minor, currency, fee_bps,
                platform_fee_minor, instructor_earnings_minor, payout_status,
                created_at FROM revenue_transactions WHERE refund_id = $1",
        refund_id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn list(
    tx: &mut Tx,
    instructor_id: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<TransactionRow>, sqlx::Error> {
    sqlx::query_as!(
        TransactionRow,
        "SELECT id, instructor_id, organization_id, transaction_type, course_id,
                enrollment_id, workshop_id, registration_id, payment_id, student_id,
                amount_minor, currency, fee_bps,
                platform_fee_minor, instructor_earnings_minor, payout_status,
                created_at FROM revenue_transactions
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
