//! Workshop registrations. Seats are not here: they are the kit's capacity pool, which
//! `events::workshops` keeps in step with these rows' statuses.

use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::workshop::{CancelReason, RegistrationStatus};
use crate::domain::{PaymentId, RegistrationId, UserId, WorkshopId};

#[derive(Debug, Clone)]
pub struct RegistrationRow {
    pub id: Uuid,
    pub workshop_id: Uuid,
    pub user_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: RegistrationStatus,
    pub price_minor: i64,
    pub currency: String,
    pub payment_id: Option<Uuid>,
    pub hold_until: Option<DateTime<Utc>>,
    pub cancel_reason: String,
    pub registered_at: DateTime<Utc>,
    pub attended_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A registration about to be opened.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub id: RegistrationId,
    pub workshop_id: WorkshopId,
    pub user_id: UserId,
    pub instructor_id: UserId,
    pub organization_id: Option<Uuid>,
    pub status: RegistrationStatus,
    pub price_minor: i64,
    pub currency: String,
    pub hold_until: Option<DateTime<Utc>>,
}

pub async fn insert(tx: &mut Tx, new: NewRegistration) -> Result<RegistrationRow, ApiError> {
    sqlx::query_as!(
        RegistrationRow,
        "INSERT INTO workshop_registrations (id, workshop_id, user_id, instructor_id,
            organization_id, status, price_minor, currency, hold_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                   currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                   cancelled_at, updated_at",
        new.id.get(),
        new.workshop_id.get(),
        new.user_id.get(),
        new.instructor_id.get(),
        new.organization_id,
        new.status as _,
        new.price_minor,
        new.currency,
        new.hold_until
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "workshop"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<RegistrationRow>, sqlx::Error> {
    sqlx::query_as!(
        RegistrationRow,
        "SELECT id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                cancelled_at, updated_at
         FROM workshop_registrations WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The registration, locked until the end of the transaction.
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<RegistrationRow>, sqlx::Error> {
    sqlx::query_as!(
        RegistrationRow,
        "SELECT id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                cancelled_at, updated_at
         FROM workshop_registrations WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The user's registration for the workshop, locked.
pub async fn lock_of_user(
    tx: &mut Tx,
    workshop_id: WorkshopId,
    user_id: UserId,
) -> Result<Option<RegistrationRow>, sqlx::Error> {
    sqlx::query_as!(
        RegistrationRow,
        "SELECT id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                cancelled_at, updated_at
         FROM workshop_registrations WHERE workshop_id = $1 AND user_id = $2 FOR UPDATE",
        workshop_id.get(),
        user_id.get()
    )
    .fetch_optional(tx.conn())
    .await
}

/// A status change. `cancel_reason` applies to cancellations; `payment` is kept unless
/// given; the hold is set for pending payments and cleared otherwise.
pub struct StatusChange {
    pub status: RegistrationStatus,
    pub cancel_reason: Option<CancelReason>,
    pub payment: Option<PaymentId>,
    pub hold_until: Option<DateTime<Utc>>,
}

pub async fn set_status(
    tx: &mut Tx,
    id: RegistrationId,
    change: StatusChange,
) -> Result<RegistrationRow, ApiError> {
    sqlx::query_as!(
        RegistrationRow,
        "UPDATE workshop_registrations SET status = $2,
            cancel_reason = CASE WHEN $2 = 'cancelled' THEN coalesce($3, cancel_reason)
                                 WHEN $2 = 'refunded' THEN cancel_reason ELSE '' END,
            payment_id = coalesce($4, payment_id),
            hold_until = CASE WHEN $2 = 'pending_payment' THEN $5::timestamptz END,
            attended_at = CASE WHEN $2 = 'completed' THEN now()
                               WHEN $2 = 'no_show' THEN NULL ELSE attended_at END,
            cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END,
            -- Strictly increasing, even for two changes in one transaction: it is the
            -- version consumers compare.
            updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
         WHERE id = $1
         RETURNING id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                   currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                   cancelled_at, updated_at",
        id.get(),
        change.status as _,
        change.cancel_reason.map(CancelReason::as_str),
        change.payment.map(PaymentId::get),
        change.hold_until
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "registration"))
}

/// Registering again after a cancellation or refund: the workshop's current terms, a new
/// registration time, no payment of its earlier life.
pub async fn reopen(
    tx: &mut Tx,
    id: RegistrationId,
    status: RegistrationStatus,
    price_minor: i64,
    currency: &str,
    hold_until: Option<DateTime<Utc>>,
) -> Result<RegistrationRow, ApiError> {
    sqlx::query_as!(
        RegistrationRow,
        "UPDATE workshop_registrations SET status = $2, price_minor = $3, currency = $4,
            hold_until = $5, cancel_reason = '', payment_id = NULL, registered_at = now(),
            attended_at = NULL,
            updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
         WHERE id = $1
         RETURNING id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                   currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                   cancelled_at, updated_at",
        id.get(),
        status as _,
        price_minor,
        currency,
        hold_until
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "registration"))
}

/// A registrant's own registrations, or (`workshop`) a workshop's, newest first. Row
/// security narrows either to what the caller may see.
pub async fn list(
    tx: &mut Tx,
    user_id: Option<UserId>,
    workshop_id: Option<WorkshopId>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        RegistrationRow,
        "SELECT id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                cancelled_at, updated_at
         FROM workshop_registrations
         WHERE ($1::uuid IS NULL OR user_id = $1)
           AND ($2::uuid IS NULL OR workshop_id = $2)
           AND ($3::timestamptz IS NULL OR (registered_at, id) < ($3, $4::uuid))
         ORDER BY registered_at DESC, id DESC
         LIMIT $5",
        user_id.map(UserId::get),
        workshop_id.map(WorkshopId::get),
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// The workshop's registrations that still hold or wait for a seat, locked: what
/// cancelling the workshop cancels.
pub async fn lock_open_of_workshop(
    tx: &mut Tx,
    workshop_id: WorkshopId,
) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    sqlx::query_as!(
        RegistrationRow,
        "SELECT id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                cancelled_at, updated_at
         FROM workshop_registrations
         WHERE workshop_id = $1 AND status IN ('pending_payment', 'registered')
         ORDER BY id FOR UPDATE",
        workshop_id.get()
    )
    .fetch_all(tx.conn())
    .await
}

/// Registrations whose payment hold lapsed before `now`, locked (skipping those another
/// transaction holds: a payment being applied, say).
pub async fn lock_lapsed(
    tx: &mut Tx,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    sqlx::query_as!(
        RegistrationRow,
        "SELECT id, workshop_id, user_id, instructor_id, organization_id, status, price_minor,
                currency, payment_id, hold_until, cancel_reason, registered_at, attended_at,
                cancelled_at, updated_at
         FROM workshop_registrations
         WHERE status = 'pending_payment' AND hold_until < $1
         ORDER BY hold_until LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit
    )
    .fetch_all(tx.conn())
    .await
}
