//! Payment events of the instructor-revenue service: a succeeded payment activates the
//! pending enrollment or workshop registration it paid for; a full refund refunds it.
//! Both are idempotent: a redelivered or late event finds the enrollment or registration
//! already in its state and does nothing.

use async_trait::async_trait;
use lyceum_platform::db::Tx;
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::events::unpack;
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::EnrollmentStatus;
use crate::events::transition_enrollment;
use crate::store::{courses, enrollments};

/// Payments for course enrollments carry this entity type.
pub const COURSE_ENROLLMENT: &str = "course_enrollment";
/// Payments for workshop registrations carry this entity type.
pub const WORKSHOP_REGISTRATION: &str = "workshop_registration";

pub fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec::new("learning-payments", "instructor", "instructor.payment.*")
}

pub struct PaymentEvents;

#[async_trait]
impl EventHandler for PaymentEvents {
    async fn handle(&self, tx: &mut Tx, event: &pb::EventEnvelope) -> anyhow::Result<()> {
        match event.event_type.as_str() {
            "lyceum.instructor.payment.succeeded" => {
                let payment: pb::PaymentSucceeded = unpack(event)?;
                if payment.related_entity_type == WORKSHOP_REGISTRATION {
                    return super::workshop_payments::paid(tx, &payment).await;
                }
                if payment.related_entity_type != COURSE_ENROLLMENT {
                    return Ok(());
                }
                let payment_id = Uuid::try_parse(&payment.payment_id)?;
                // A payment refunded in full before its success reached us grants nothing.
                if enrollments::was_refunded(tx, payment_id).await? {
                    return Ok(());
                }
                let Some(enrollment) = locked_enrollment(tx, &payment.related_entity_id).await?
                else {
                    tracing::warn!(payment = %payment.payment_id, "payment for an unknown enrollment");
                    return Ok(());
                };
                // The payment must be the student's, in the course's currency, and cover
                // the price: anything else is left for an operator to refund.
                let covers = payment.payer_id == enrollment.student_id.to_string()
                    && payment.currency == enrollment.currency
                    && payment.amount_minor >= enrollment.price_minor;
                if !covers {
                    tracing::warn!(
                        payment = %payment.payment_id,
                        enrollment = %enrollment.id,
                        "payment does not cover the enrollment; not activating"
                    );
                    return Ok(());
                }
                let status = enrollment.status;
                if matches!(
                    status,
                    EnrollmentStatus::PendingPayment | EnrollmentStatus::Cancelled
                ) {
                    transition_enrollment(
                        tx,
                        &enrollment,
                        EnrollmentStatus::Active,
                        Some(payment_id),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    // The course's revenue: what the payment that activated it brought in.
                    courses::add_revenue(
                        tx,
                        enrollment.course_id,
                        payment.amount_minor,
                        &payment.currency,
                    )
                    .await?;
                }
                Ok(())
            }
            "lyceum.instructor.payment.refunded" => {
                let refund: pb::PaymentRefunded = unpack(event)?;
                if refund.related_entity_type == WORKSHOP_REGISTRATION && refund.fully_refunded {
                    return super::workshop_payments::refunded(tx, &refund).await;
                }
                if refund.related_entity_type != COURSE_ENROLLMENT {
                    return Ok(());
                }
                let payment_id = Uuid::try_parse(&refund.payment_id)?;
                if refund.fully_refunded {
                    enrollments::record_refunded_payment(tx, payment_id).await?;
                }
                let Some(enrollment) = locked_enrollment(tx, &refund.related_entity_id).await?
                else {
                    return Ok(());
                };
                // Only the enrollment this payment activated is refunded.
                if enrollment.payment_id != Some(payment_id) {
                    return Ok(());
                }
                // Every refund, in part or in full, comes off the course's revenue.
                courses::add_revenue(
                    tx,
                    enrollment.course_id,
                    -refund.refunded_minor,
                    &refund.currency,
                )
                .await?;
                let status = enrollment.status;
                if refund.fully_refunded && status.can_become(EnrollmentStatus::Refunded) {
                    transition_enrollment(tx, &enrollment, EnrollmentStatus::Refunded, None)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn locked_enrollment(
    tx: &mut Tx,
    raw_id: &str,
) -> anyhow::Result<Option<enrollments::EnrollmentRow>> {
    let Ok(id) = Uuid::try_parse(raw_id) else {
        return Ok(None);
    };
    Ok(enrollments::lock(tx, id).await?)
}
