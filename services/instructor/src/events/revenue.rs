//! Revenue booked on the payment path, written once for every way in: the sale of what a
//! succeeded payment bought (a course enrollment or a workshop registration), booked when
//! learning's events activate it, and refunds, whether an operator asks for one
//! (`RefundPayment`) or learning's events do (a paid workshop registration cancelled).

use lyceum_platform::db::Tx;
use uuid::Uuid;

use crate::domain::{RefundRefusal, SaleItem, fee_refund, refund_amount};
use crate::events;
use crate::store::payments::{self, PaymentRow};
use crate::store::revenue::{self, TransactionRow};

/// A sale to book: who sold what to whom, paid by which payment.
pub struct Sale {
    /// The payment the activation names, if any.
    pub payment_id: Option<Uuid>,
    /// The instructor of the enrollment or registration (never the one the payer named).
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub student_id: Uuid,
    pub item: SaleItem,
}

/// Books the revenue of a paid activation: the activated item's instructor and the fee
/// fixed when its payment succeeded (never the settings of the moment the event is
/// consumed), so that refunds reverse exactly what was booked. One sale per payment, so a
/// redelivered activation books nothing more.
pub async fn record_sale(tx: &mut Tx, sale: Sale) -> anyhow::Result<()> {
    // Revenue is what a succeeded payment brought in; an activation without one (an
    // enrollment made free meanwhile) earns nothing.
    let Some(payment_id) = sale.payment_id else {
        return Ok(());
    };
    // Locked, as refunds lock it: a refund either sees this sale or is seen below.
    let Some(payment) = payments::lock(tx, payment_id)
        .await?
        .filter(|p| p.succeeded_at.is_some())
    else {
        tracing::warn!(payment = %payment_id, "activation names a payment that has not succeeded here");
        return Ok(());
    };
    let (Some(fee_bps), Some(fee_minor)) = (payment.fee_bps, payment.fee_minor) else {
        anyhow::bail!("payment {payment_id} succeeded without a fixed fee");
    };
    let (course_id, enrollment_id, workshop_id, registration_id) = match sale.item {
        SaleItem::CourseEnrollment {
            course_id,
            enrollment_id,
        } => (Some(course_id), Some(enrollment_id), None, None),
        SaleItem::WorkshopRegistration {
            workshop_id,
            registration_id,
        } => (None, None, Some(workshop_id), Some(registration_id)),
    };
    let booked = revenue::insert(
        tx,
        revenue::NewTransaction {
            instructor_id: sale.instructor_id,
            organization_id: sale.organization_id,
            transaction_type: sale.item.transaction_type(),
            course_id,
            enrollment_id,
            workshop_id,
            registration_id,
            payment_id: Some(payment.id),
            refund_id: None,
            student_id: Some(sale.student_id),
            amount_minor: payment.amount_minor,
            currency: payment.currency.clone(),
            fee_bps,
            platform_fee_minor: fee_minor,
        },
    )
    .await?;
    // Refunds made before the sale was booked reverse it now.
    if let Some(booked) = booked {
        for refund in payments::unbooked_refunds(tx, payment.id).await? {
            revenue::insert(tx, revenue::refund_of(&booked, &refund)).await?;
        }
    }
    Ok(())
}

/// A refund to make.
pub struct RefundRequest<'a> {
    pub payment_id: Uuid,
    /// The idempotency key, within the payment: a repeated request refunds nothing more.
    pub request_id: &'a str,
    /// The amount to refund; 0 for all that is left.
    pub amount_minor: i64,
    pub reason: &'a str,
}

/// A refund made, or found made by an earlier request with the same id.
pub struct Refunded {
    pub payment: PaymentRow,
    /// The revenue it reversed: none when the payment's sale is not booked (yet).
    pub transaction: Option<TransactionRow>,
}

#[derive(Debug)]
pub enum RefundError {
    UnknownPayment,
    Refused(RefundRefusal),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for RefundError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<RefundRefusal> for RefundError {
    fn from(refusal: RefundRefusal) -> Self {
        Self::Refused(refusal)
    }
}

/// Refunds a payment in the caller's transaction, under the caller's database context
/// (a payment operator's, or the system's for learning's events): the refund row, the
/// payment's totals and status, the reversal of its booked sale, and the
/// `payment.refunded` event.
pub async fn refund_payment(
    tx: &mut Tx,
    request: RefundRequest<'_>,
) -> Result<Refunded, RefundError> {
    let id = request.payment_id;
    // Concurrent refunds of one payment queue on its row: their sum cannot pass it.
    let payment = payments::lock(tx, id)
        .await?
        .ok_or(RefundError::UnknownPayment)?;
    if let Some(done) = payments::find_refund(tx, id, request.request_id).await? {
        let transaction = revenue::by_refund(tx, done.id).await?;
        return Ok(Refunded {
            payment,
            transaction,
        });
    }
    let amount = refund_amount(
        payment.status,
        payment.amount_minor,
        payment.refunded_minor,
        request.amount_minor,
    )?;
    // The fee returned is in proportion to the fee fixed at success (the booked sale's,
    // should an older sale differ). Revenue is reversed only where it was booked: a
    // refund books against the sale of the payment, with the sale's instructor (the
    // enrollment's or registration's, never the one the payer named); a refund made before
    // the sale was booked is booked together with the sale.
    let sale = revenue::sale_of_payment(tx, id).await?;
    let fee_minor = match &sale {
        Some(sale) => sale.platform_fee_minor,
        None => payment.fee_minor.unwrap_or(0),
    };
    let fee_back = fee_refund(
        payment.amount_minor,
        fee_minor,
        payment.refunded_minor,
        amount,
    );
    let (refund, updated) = payments::apply_refund(
        tx,
        &payment,
        request.request_id,
        amount,
        fee_back,
        request.reason,
    )
    .await?;
    let transaction = match &sale {
        Some(sale) => revenue::insert(tx, revenue::refund_of(sale, &refund)).await?,
        None => None,
    };
    tx.publish(events::payment_refunded(&updated, amount))
        .await?;
    Ok(Refunded {
        payment: updated,
        transaction,
    })
}
