//! Learning's workshop events: the workshop and registration projections (the dashboard's
//! workshops and students, the timeline's titles), the profile's `total_workshops`, an
//! attendance on the timeline, the sale of a paid registration when it is activated, and
//! the refund learning asks for when a paid registration will not take place.
//!
//! Feedback (`workshop_feedback.submitted`) changes no figure of this context.

use chrono::{DateTime, Utc};
use lyceum_platform::convert::from_timestamp;
use lyceum_platform::db::Tx;
use lyceum_proto::events::v1 as pb;
use prost_types::Timestamp;
use uuid::Uuid;

use super::learning::{id, optional_id};
use super::revenue::{RefundError, RefundRequest, Sale, record_sale, refund_payment};
use crate::domain::{ActivityType, PaymentType, SaleItem};
use crate::store::projections::{self, NewActivity};
use crate::store::{payments, workshops};

fn time(t: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| from_timestamp(t).ok())
}

pub(super) async fn apply_workshop_status(
    tx: &mut Tx,
    workshop: &pb::WorkshopStatusChanged,
) -> anyhow::Result<()> {
    let instructor_id = id(&workshop.instructor_id)?;
    let first_published = workshops::apply_workshop_status(
        tx,
        &workshops::WorkshopState {
            workshop_id: id(&workshop.workshop_id)?,
            instructor_id,
            organization_id: optional_id(&workshop.organization_id),
            title: &workshop.title,
            status: &workshop.status,
            start_time: time(workshop.start_time.as_ref()),
            end_time: time(workshop.end_time.as_ref()),
            version: workshop.version,
        },
    )
    .await?;
    if first_published {
        workshops::count_workshop(tx, instructor_id).await?;
    }
    Ok(())
}

pub(super) async fn apply_registration(
    tx: &mut Tx,
    registration: &pb::WorkshopRegistrationChanged,
    verb: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let registration_id = id(&registration.registration_id)?;
    let workshop_id = id(&registration.workshop_id)?;
    let instructor_id = id(&registration.instructor_id)?;
    let user_id = id(&registration.user_id)?;
    let organization_id = optional_id(&registration.organization_id);
    workshops::apply_registration(
        tx,
        &workshops::RegistrationState {
            registration_id,
            workshop_id,
            user_id,
            instructor_id,
            organization_id,
            status: &registration.status,
            price_minor: registration.price_minor,
            currency: &registration.currency,
            // The event's own time when it carries none: the earliest of which wins.
            registered_at: time(registration.registered_time.as_ref()).unwrap_or(at),
            version: registration.version,
            workshop_title: &registration.workshop_title,
            workshop_start_time: time(registration.workshop_start_time.as_ref()),
        },
    )
    .await?;
    if verb == "attended" {
        projections::add_activity(
            tx,
            NewActivity {
                instructor_id,
                organization_id,
                student_id: user_id,
                activity_type: ActivityType::WorkshopAttended.as_str(),
                course_id: None,
                lesson_id: None,
                workshop_id: Some(workshop_id),
                at,
            },
        )
        .await?;
    }
    if verb == "activated" && registration.price_minor > 0 {
        record_sale(
            tx,
            Sale {
                payment_id: optional_id(&registration.payment_id),
                instructor_id,
                organization_id,
                student_id: user_id,
                item: SaleItem::WorkshopRegistration {
                    workshop_id,
                    registration_id,
                },
            },
        )
        .await?;
    }
    if registration.refund_due {
        refund_registration(tx, registration, registration_id, verb).await?;
    }
    Ok(())
}

/// Gives a registration's payment back in full, as learning asks when a paid registration
/// will not take place (cancelled by staff or with its workshop, or paid for with no seat
/// left). It goes through the path `RefundPayment` takes, as the system, under one request
/// id per registration: however many events ask for it, and whatever order they arrive in,
/// the payment is refunded once, and its booked sale reversed (now, or when it is booked).
async fn refund_registration(
    tx: &mut Tx,
    registration: &pb::WorkshopRegistrationChanged,
    registration_id: Uuid,
    verb: &str,
) -> anyhow::Result<()> {
    let Some(payment_id) = optional_id(&registration.payment_id) else {
        tracing::warn!(registration = %registration_id, "a refund is due but the registration names no payment");
        return Ok(());
    };
    // Only the registration's own payment is given back.
    let pays_for_it = payments::get(tx, payment_id).await?.is_some_and(|p| {
        p.payment_type == PaymentType::WorkshopRegistration
            && p.related_entity_id == Some(registration_id)
    });
    if !pays_for_it {
        tracing::warn!(
            registration = %registration_id,
            payment = %payment_id,
            "a refund is due but the payment is not this registration's; not refunding"
        );
        return Ok(());
    }
    let request_id = format!("registration-refund:{registration_id}");
    let cancel_reason: String = registration.cancel_reason.chars().take(100).collect();
    let reason = if cancel_reason.is_empty() {
        format!("workshop registration {verb}")
    } else {
        format!("workshop registration {verb} ({cancel_reason})")
    };
    let refunded = refund_payment(
        tx,
        RefundRequest {
            payment_id,
            request_id: &request_id,
            amount_minor: 0,
            reason: &reason,
        },
    )
    .await;
    match refunded {
        Ok(_) => Ok(()),
        // Nothing left to give back: an operator refunded it already.
        Err(RefundError::Refused(refusal)) => {
            tracing::info!(registration = %registration_id, payment = %payment_id, %refusal, "refund due, none made");
            Ok(())
        }
        Err(RefundError::UnknownPayment) => {
            tracing::warn!(registration = %registration_id, payment = %payment_id, "refund due for an unknown payment");
            Ok(())
        }
        Err(RefundError::Database(error)) => Err(error.into()),
    }
}
