//! What instructor revenue publishes (payment events, which learning consumes to
//! activate and refund enrollments; payouts made), the projections it keeps of
//! learning's and identity's events, and the revenue booked on the payment path (sales
//! and refunds), which both the API and learning's events drive.

pub mod identity;
pub mod learning;
pub mod revenue;
mod workshops;

use lyceum_platform::convert::opt_id_to_string;
use lyceum_platform::events::Event;
use lyceum_proto::events::v1 as pb;

use crate::store::payments::PaymentRow;
use crate::store::payouts::PayoutRow;

pub fn payment_succeeded(payment: &PaymentRow) -> Event {
    let payload = pb::PaymentSucceeded {
        payment_id: payment.id.to_string(),
        payer_id: payment.payer_id.to_string(),
        organization_id: opt_id_to_string(payment.organization_id),
        amount_minor: payment.amount_minor,
        currency: payment.currency.clone(),
        related_entity_type: payment.payment_type.to_string(),
        related_entity_id: opt_id_to_string(payment.related_entity_id),
    };
    Event::new(
        "instructor.payment.succeeded",
        payment.organization_id,
        &payload,
    )
}

pub fn payment_refunded(payment: &PaymentRow, refunded_minor: i64) -> Event {
    let payload = pb::PaymentRefunded {
        payment_id: payment.id.to_string(),
        related_entity_type: payment.payment_type.to_string(),
        related_entity_id: opt_id_to_string(payment.related_entity_id),
        refunded_minor,
        total_refunded_minor: payment.refunded_minor,
        currency: payment.currency.clone(),
        fully_refunded: payment.refunded_minor == payment.amount_minor,
    };
    Event::new(
        "instructor.payment.refunded",
        payment.organization_id,
        &payload,
    )
}

pub fn payout_made(payout: &PayoutRow) -> Event {
    let payload = pb::PayoutMade {
        payout_id: payout.id.to_string(),
        instructor_id: payout.instructor_id.to_string(),
        request_id: payout.request_id.clone(),
        amount_minor: payout.amount_minor,
        currency: payout.currency.clone(),
        transaction_count: payout.transaction_count,
    };
    Event::new("instructor.payout.made", None, &payload)
}
