//! What workshops publish, and the one place that moves a registration between statuses
//! with its seat: the claim on the workshop's capacity pool is taken and given back by
//! the same moves that cross [`RegistrationStatus::holds_seat`], in the transaction that
//! changes the status, so the seats taken never drift from the registrations holding one.

use lyceum_platform::ApiError;
use lyceum_platform::capacity::{self, Claim, ClaimOutcome, PoolKind, ReleaseOutcome};
use lyceum_platform::convert::{opt_id_to_string, timestamp};
use lyceum_platform::events::Event;
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::workshop::{
    CancelReason, RegistrationStatus, SeatEffect, decide_registration_change, registration_verb,
};
use crate::domain::{PaymentId, RegistrationId};
use crate::store::Tx;
use crate::store::registrations::{self, RegistrationRow, StatusChange};
use crate::store::workshops::{self, Satisfaction, WorkshopRow};

/// The kind of the workshops' capacity pools (the pool's id is the workshop's).
pub const WORKSHOP_SEATS: PoolKind = PoolKind::new("workshop_seats");

/// `learning.workshop.updated`: a listed workshop's title, schedule or terms changed, with
/// its current status at the status events' version counter, so that other contexts'
/// copies (instructor's upcoming workshops) do not go stale.
pub fn workshop_updated(row: &WorkshopRow) -> Event {
    workshop_event(row, "learning.workshop.updated")
}

pub fn workshop_status_changed(row: &WorkshopRow) -> Event {
    workshop_event(row, &format!("learning.workshop.{}", row.status))
}

fn workshop_event(row: &WorkshopRow, subject: &str) -> Event {
    let payload = pb::WorkshopStatusChanged {
        workshop_id: row.id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        title: row.title.clone(),
        status: row.status.to_string(),
        start_time: Some(timestamp(row.start_time)),
        end_time: Some(timestamp(row.end_time)),
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        capacity: row.capacity,
        version: row.version,
    };
    Event::new(subject, row.organization_id, &payload)
}

/// A registration's event after a change; its version is the row's `updated_at`, which
/// the database moves forward with every change, in commit order.
pub fn registration_changed(
    row: &RegistrationRow,
    workshop: &WorkshopRow,
    seats_remaining: i64,
    refund_due: bool,
) -> Event {
    let payload = pb::WorkshopRegistrationChanged {
        registration_id: row.id.to_string(),
        workshop_id: row.workshop_id.to_string(),
        workshop_title: workshop.title.clone(),
        user_id: row.user_id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        status: row.status.to_string(),
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        payment_id: opt_id_to_string(row.payment_id),
        seats_remaining,
        cancel_reason: if row.status == RegistrationStatus::Cancelled {
            row.cancel_reason.clone()
        } else {
            String::new()
        },
        refund_due,
        version: row.updated_at.timestamp_micros(),
        registered_time: Some(timestamp(row.registered_at)),
        workshop_start_time: Some(timestamp(workshop.start_time)),
    };
    Event::new(
        &format!(
            "learning.workshop_registration.{}",
            registration_verb(row.status)
        ),
        row.organization_id,
        &payload,
    )
}

pub fn feedback_submitted(
    feedback: &workshops::FeedbackRow,
    workshop: &WorkshopRow,
    satisfaction: Satisfaction,
) -> Event {
    let payload = pb::WorkshopFeedbackSubmitted {
        feedback_id: feedback.id.to_string(),
        workshop_id: feedback.workshop_id.to_string(),
        user_id: feedback.user_id.to_string(),
        instructor_id: workshop.instructor_id.to_string(),
        satisfaction: feedback.overall_satisfaction,
        workshop_average_satisfaction: satisfaction.average,
        workshop_feedback_count: satisfaction.count,
        workshop_satisfaction_sum: satisfaction.sum,
        version: satisfaction.version,
    };
    Event::new(
        "learning.workshop_feedback.submitted",
        workshop.organization_id,
        &payload,
    )
}

/// How a seat is taken when a move needs one.
#[derive(Debug, Clone)]
pub struct SeatRequest {
    /// The caller's idempotency key for the claim.
    pub request_id: String,
    pub hold_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// A registration's move, beyond its new status.
#[derive(Debug, Clone, Default)]
pub struct Move {
    pub cancel_reason: Option<CancelReason>,
    pub payment: Option<PaymentId>,
    pub hold_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Needed when the move takes a seat.
    pub seat: Option<SeatRequest>,
}

/// What a move did.
#[derive(Debug, Clone)]
pub enum Moved {
    Done(Box<RegistrationRow>),
    /// The seat request was this request's before and was given back since: nothing was
    /// changed (the caller rolls back).
    SeatReleasedEarlier,
}

/// Moves a registration to `next`, taking or giving back its seat and keeping the
/// workshop's attended count, and publishes the event. The caller has locked the
/// registration and checked who may do this. A seat that cannot be taken fails the move
/// (FAILED_PRECONDITION): nothing was written that the caller does not roll back.
pub async fn change_registration(
    tx: &mut Tx,
    registration: &RegistrationRow,
    workshop: &WorkshopRow,
    next: RegistrationStatus,
    how: Move,
) -> Result<Moved, ApiError> {
    let change = decide_registration_change(registration.status, next)
        .map_err(|refused| ApiError::FailedPrecondition(refused.to_string()))?;
    let row = registrations::set_status(
        tx,
        RegistrationId::new(registration.id),
        StatusChange {
            status: next,
            cancel_reason: how.cancel_reason,
            payment: how.payment,
            hold_until: how.hold_until,
        },
    )
    .await?;
    let refund_due = next == RegistrationStatus::Cancelled
        && row.payment_id.is_some()
        && matches!(
            how.cancel_reason,
            Some(CancelReason::Staff | CancelReason::WorkshopCancelled | CancelReason::Unplaced)
        );
    if change.attended_delta != 0 {
        let caller_bookkeeping = tx.bookkeeping().is_some();
        if !caller_bookkeeping {
            tx.begin_bookkeeping("workshop attendance").await?;
        }
        workshops::add_attended(tx, workshop.id, change.attended_delta).await?;
        if !caller_bookkeeping {
            tx.end_bookkeeping().await?;
        }
    }
    let seats_remaining = match change.seat {
        SeatEffect::Take => {
            let seat = how.seat.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "a move that takes a seat came without a request"
                ))
            })?;
            match take_seat(tx, workshop.id, row.id, &seat).await? {
                Some(remaining) => remaining,
                None => return Ok(Moved::SeatReleasedEarlier),
            }
        }
        SeatEffect::Release => {
            let reason = match how.cancel_reason {
                Some(reason) => reason.as_str(),
                None => registration_verb(next),
            };
            match capacity::release(tx, workshop.id, row.id, reason).await? {
                ReleaseOutcome::Released(remaining) => remaining.remaining,
                // Given back already (a lapsed hold): nothing more to return.
                ReleaseOutcome::NotHeld => seats_left(tx, workshop.id).await?,
            }
        }
        SeatEffect::Keep => seats_left(tx, workshop.id).await?,
    };
    tx.publish(registration_changed(
        &row,
        workshop,
        seats_remaining,
        refund_due,
    ))
    .await?;
    Ok(Moved::Done(Box::new(row)))
}

/// Takes one seat for the registration; `None` when the request took one before that was
/// given back since.
pub async fn take_seat(
    tx: &mut Tx,
    workshop_id: Uuid,
    registration_id: Uuid,
    seat: &SeatRequest,
) -> Result<Option<i64>, ApiError> {
    let outcome = capacity::claim(
        tx,
        Claim {
            pool_id: workshop_id,
            request_id: &seat.request_id,
            holder_id: registration_id,
            amount: 1,
            hold_until: seat.hold_until,
        },
    )
    .await
    .map_err(|error| match error {
        capacity::CapacityError::Exhausted { .. } => {
            ApiError::FailedPrecondition("the workshop is full: no seats left".into())
        }
        capacity::CapacityError::AlreadyHeld => ApiError::already_exists(
            "workshop_id",
            "the user is already registered for this workshop",
        ),
        other => other.into(),
    })?;
    Ok(match outcome {
        ClaimOutcome::Claimed(state) | ClaimOutcome::Replayed(state) => Some(state.remaining),
        ClaimOutcome::ReleasedEarlier(_) => None,
    })
}

async fn seats_left(tx: &mut Tx, workshop_id: Uuid) -> Result<i64, ApiError> {
    Ok(capacity::pool(tx, workshop_id)
        .await?
        .map(|pool| pool.remaining)
        .unwrap_or_default())
}

/// Cancels every open registration of a workshop being cancelled, returning their seats;
/// paid ones are refunded through the payment path (the event says `refund_due`).
pub async fn cancel_registrations_of(tx: &mut Tx, workshop: &WorkshopRow) -> Result<i64, ApiError> {
    let open =
        registrations::lock_open_of_workshop(tx, crate::domain::WorkshopId::new(workshop.id))
            .await?;
    let cancelled = open.len() as i64;
    for registration in open {
        change_registration(
            tx,
            &registration,
            workshop,
            RegistrationStatus::Cancelled,
            Move {
                cancel_reason: Some(CancelReason::WorkshopCancelled),
                ..Move::default()
            },
        )
        .await?;
    }
    Ok(cancelled)
}
