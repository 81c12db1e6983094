//! Payments for workshop registrations. A payment confirms the seat held for it; one that
//! arrives after its hold lapsed takes a free seat if the workshop still takes
//! registrations, and otherwise leaves the registration cancelled as "unplaced" with a
//! refund due (the instructor side refunds it), so a late payment never overbooks. A full
//! refund refunds the registration and gives its seat back.

use lyceum_platform::capacity;
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use super::workshops::{Move, Moved, SeatRequest, change_registration, registration_changed};
use crate::domain::workshop::{
    CancelReason, PaymentDecision, RegistrationStatus, decide_payment, may_place_late,
};
use crate::domain::{PaymentId, RegistrationId};
use crate::store::registrations::{self, StatusChange};
use crate::store::{Tx, enrollments, workshops};

pub async fn paid(tx: &mut Tx, payment: &pb::PaymentSucceeded) -> anyhow::Result<()> {
    let payment_id = Uuid::try_parse(&payment.payment_id)?;
    // A payment refunded in full before its success reached us places nobody.
    if enrollments::was_refunded(tx, payment_id).await? {
        return Ok(());
    }
    let Ok(registration_id) = Uuid::try_parse(&payment.related_entity_id) else {
        return Ok(());
    };
    let Some(registration) = registrations::lock(tx, registration_id).await? else {
        tracing::warn!(payment = %payment.payment_id, "payment for an unknown registration");
        return Ok(());
    };
    // The payment must be the registrant's, in the registration's currency, and cover
    // its price: anything else is left for an operator to refund.
    let covers = payment.payer_id == registration.user_id.to_string()
        && payment.currency == registration.currency
        && payment.amount_minor >= registration.price_minor;
    if !covers {
        tracing::warn!(
            payment = %payment.payment_id,
            registration = %registration.id,
            "payment does not cover the registration; not placing it"
        );
        return Ok(());
    }
    let Some(workshop) = workshops::get(tx, registration.workshop_id).await? else {
        return Ok(());
    };
    let paid_already = registration.payment_id == Some(payment_id);
    let how = Move {
        payment: Some(PaymentId::new(payment_id)),
        ..Move::default()
    };
    match decide_payment(registration.status, paid_already) {
        PaymentDecision::Ignore => {
            if !paid_already {
                tracing::warn!(
                    payment = %payment.payment_id,
                    registration = %registration.id,
                    status = %registration.status,
                    "payment for a registration that is not waiting for one; left for an operator"
                );
            }
            Ok(())
        }
        PaymentDecision::Confirm => {
            // The seat held for the payment becomes the registrant's, even when the hold
            // lapsed a moment ago and the expiry job has not run yet: nobody else has it.
            capacity::confirm(tx, workshop.id, registration.id).await?;
            change_registration(
                tx,
                &registration,
                &workshop,
                RegistrationStatus::Registered,
                how,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        }
        PaymentDecision::Reclaim => {
            let has_seat = capacity::pool(tx, workshop.id)
                .await?
                .is_some_and(|pool| pool.remaining > 0);
            if has_seat && may_place_late(workshop.status, workshop.start_time, chrono::Utc::now())
            {
                // A registration that takes the last seat meanwhile makes this fail, and the
                // redelivered event finds no seat: unplaced then.
                let moved = change_registration(
                    tx,
                    &registration,
                    &workshop,
                    RegistrationStatus::Registered,
                    Move {
                        seat: Some(SeatRequest {
                            request_id: format!("payment:{payment_id}"),
                            hold_until: None,
                        }),
                        ..how
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                if let Moved::SeatReleasedEarlier = moved {
                    anyhow::bail!("payment {payment_id} placed its registration before");
                }
                return Ok(());
            }
            // No seat for it: the registration stays cancelled, now with this payment, whose
            // refund the event asks for.
            let row = registrations::set_status(
                tx,
                RegistrationId::new(registration.id),
                StatusChange {
                    status: RegistrationStatus::Cancelled,
                    cancel_reason: Some(CancelReason::Unplaced),
                    payment: Some(PaymentId::new(payment_id)),
                    hold_until: None,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.publish(registration_changed(
                &row,
                &workshop,
                workshop.seats_remaining,
                true,
            ))
            .await?;
            Ok(())
        }
    }
}

pub async fn refunded(tx: &mut Tx, refund: &pb::PaymentRefunded) -> anyhow::Result<()> {
    let payment_id = Uuid::try_parse(&refund.payment_id)?;
    enrollments::record_refunded_payment(tx, payment_id).await?;
    let Ok(registration_id) = Uuid::try_parse(&refund.related_entity_id) else {
        return Ok(());
    };
    let Some(registration) = registrations::lock(tx, registration_id).await? else {
        return Ok(());
    };
    // Only the registration this payment paid for is refunded.
    if registration.payment_id != Some(payment_id)
        || !registration.status.can_become(RegistrationStatus::Refunded)
    {
        return Ok(());
    }
    let Some(workshop) = workshops::get(tx, registration.workshop_id).await? else {
        return Ok(());
    };
    change_registration(
        tx,
        &registration,
        &workshop,
        RegistrationStatus::Refunded,
        Move::default(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
