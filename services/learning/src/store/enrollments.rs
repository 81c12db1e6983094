use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use lyceum_platform::db::{Database, TenantContext};
use lyceum_platform::events::OutboxRow;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::enrollment::{EnrollRefusal, opening_status};
use crate::domain::{CourseId, EnrollmentId, EnrollmentStatus, PaymentId, UserId};

#[derive(Debug, Clone)]
pub struct EnrollmentRow {
    pub id: Uuid,
    pub course_id: Uuid,
    pub student_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: EnrollmentStatus,
    pub price_minor: i64,
    pub currency: String,
    pub payment_id: Option<Uuid>,
    pub cohort_id: Option<Uuid>,
    pub enrolled_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewEnrollment {
    pub course_id: Uuid,
    pub student_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: EnrollmentStatus,
    pub price_minor: i64,
    pub currency: String,
}

pub async fn insert(tx: &mut Tx, new: NewEnrollment) -> Result<EnrollmentRow, ApiError> {
    sqlx::query_as!(
        EnrollmentRow,
        "INSERT INTO enrollments (id, course_id, student_id, instructor_id, organization_id, status,
                                  price_minor, currency, activated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $6 = 'active' THEN now() END)
         RETURNING id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at",
        Uuid::now_v7(),
        new.course_id,
        new.student_id,
        new.instructor_id,
        new.organization_id,
        new.status as _,
        new.price_minor,
        new.currency
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<EnrollmentRow>, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "SELECT id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at FROM enrollments WHERE id = $1",
        id
    )
        .fetch_optional(tx.conn())
        .await
}

/// The enrollment, locked for a status change.
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<EnrollmentRow>, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "SELECT id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at FROM enrollments WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn get_by_student(
    tx: &mut Tx,
    course_id: CourseId,
    student_id: UserId,
) -> Result<Option<EnrollmentRow>, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "SELECT id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at FROM enrollments WHERE course_id = $1 AND student_id = $2",
        course_id.get(),
        student_id.get()
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn lock_by_student(
    tx: &mut Tx,
    course_id: CourseId,
    student_id: UserId,
) -> Result<Option<EnrollmentRow>, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "SELECT id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at FROM enrollments WHERE course_id = $1 AND student_id = $2 FOR UPDATE",
        course_id.get(),
        student_id.get()
    )
    .fetch_optional(tx.conn())
    .await
}

/// Moves an enrollment to `status`, stamping the matching time; a payment id is kept
/// when given (the price stays the enrollment's own).
pub async fn set_status(
    tx: &mut Tx,
    id: EnrollmentId,
    status: EnrollmentStatus,
    payment: Option<PaymentId>,
) -> Result<EnrollmentRow, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "UPDATE enrollments SET status = $2,
            activated_at = CASE WHEN $2 = 'active' THEN now() ELSE activated_at END,
            completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE completed_at END,
            cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END,
            refunded_at = CASE WHEN $2 = 'refunded' THEN now() ELSE refunded_at END,
            payment_id = coalesce($3, payment_id),
            -- Strictly increasing, even for two changes in one transaction: it is the
            -- version consumers compare.
            updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
         WHERE id = $1
         RETURNING id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at",
        id.get(),
        status as _,
        payment.map(PaymentId::get)
    )
    .fetch_one(tx.conn())
    .await
}

/// Reopens a cancelled enrollment at the course's current price, forgetting the payment
/// of its earlier life.
pub async fn reopen(
    tx: &mut Tx,
    id: Uuid,
    status: EnrollmentStatus,
    price_minor: i64,
    currency: &str,
) -> Result<EnrollmentRow, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "UPDATE enrollments SET status = $2, price_minor = $3, currency = $4, payment_id = NULL,
            activated_at = CASE WHEN $2 = 'active' THEN now() ELSE NULL END, cancelled_at = NULL,
            updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
         WHERE id = $1
         RETURNING id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at",
        id,
        status as _,
        price_minor,
        currency
    )
    .fetch_one(tx.conn())
    .await
}

/// A page of enrollments, newest first: of a student, or of a course.
pub async fn list(
    tx: &mut Tx,
    student_id: Option<UserId>,
    course_id: Option<CourseId>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<EnrollmentRow>, sqlx::Error> {
    sqlx::query_as!(
        EnrollmentRow,
        "SELECT id, course_id, student_id, instructor_id, organization_id, status,
                price_minor, currency, payment_id, cohort_id, enrolled_at,
                activated_at, completed_at, cancelled_at, refunded_at, updated_at FROM enrollments
         WHERE ($1::uuid IS NULL OR student_id = $1) AND ($2::uuid IS NULL OR course_id = $2)
           AND ($3::timestamptz IS NULL OR (enrolled_at, id) < ($3, $4))
         ORDER BY enrolled_at DESC, id DESC LIMIT $5",
        student_id.map(UserId::get),
        course_id.map(CourseId::get),
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// What enrolling depends on of a course: the terms an enrollment and its event copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseTerms {
    pub title: String,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub price_minor: i64,
    pub currency: String,
}

impl EnrollmentRow {
    /// The row a new enrollment will be, from its course's terms: what its first event
    /// says, encoded before [`enroll`] writes it. Free courses open active, paid ones wait
    /// for their payment.
    pub fn opening(
        id: EnrollmentId,
        course_id: CourseId,
        student_id: UserId,
        enrolled_at: DateTime<Utc>,
        terms: &CourseTerms,
    ) -> Self {
        let status = opening_status(terms.price_minor);
        let free = status == EnrollmentStatus::Active;
        Self {
            id: id.get(),
            course_id: course_id.get(),
            student_id: student_id.get(),
            instructor_id: terms.instructor_id,
            organization_id: terms.organization_id,
            status,
            price_minor: terms.price_minor,
            currency: terms.currency.clone(),
            payment_id: None,
            cohort_id: None,
            enrolled_at,
            activated_at: free.then_some(enrolled_at),
            completed_at: None,
            cancelled_at: None,
            refunded_at: None,
            updated_at: enrolled_at,
        }
    }
}

/// A new enrollment written by [`enroll`], with the event encoded from the terms it expects.
pub struct Enrolling<'a> {
    pub context: &'a TenantContext,
    pub course_id: Uuid,
    pub enrollment_id: Uuid,
    pub enrolled_at: DateTime<Utc>,
    /// The terms and the event encoded from them; `None` to learn the terms first.
    pub expected: Option<(&'a CourseTerms, OutboxRow)>,
}

/// What [`enroll`] did.
#[derive(Debug)]
pub enum EnrollOutcome {
    /// Written, with the enrollment's status and version as the database set them.
    Enrolled {
        status: EnrollmentStatus,
        updated_at: DateTime<Utc>,
    },
    /// Nothing written: the course's terms are not the expected ones (or none were given).
    Stale(CourseTerms),
    /// The caller may not see the course, or it does not exist.
    NotFound,
    /// The course's own terms refuse the student (`domain::enrollment::decide_enroll`, as
    /// the statement applies it).
    Refused(EnrollRefusal),
    /// The student has an enrollment in the course already, with this status.
    Exists(EnrollmentStatus),
}

struct EnrollResult {
    outcome: String,
    title: Option<String>,
    instructor_id: Option<Uuid>,
    organization_id: Option<Uuid>,
    price_minor: Option<i64>,
    currency: Option<String>,
    existing_status: Option<EnrollmentStatus>,
    enrollment_status: Option<EnrollmentStatus>,
    updated_at: Option<DateTime<Utc>>,
}

/// The Enroll RPC's whole write in one statement and one round trip (migration 0007): the
/// caller's context, the course as the caller may see it, the enrollment under the caller's
/// policies, then progress, outbox and counts as bookkeeping, with the count slot (the
/// row other enrollments of the course may share, migration 0009) updated last. Runs in
/// its own implicit transaction, not in a [`Tx`], so it wakes the relay itself.
pub async fn enroll(db: &Database, new: Enrolling<'_>) -> Result<EnrollOutcome, ApiError> {
    let (terms, event) = new
        .expected
        .map_or((None, None), |(t, e)| (Some(t), Some(e)));
    let row = sqlx::query_as!(
        EnrollResult,
        r#"SELECT outcome AS "outcome!", title, instructor_id, organization_id, price_minor,
                  currency, existing_status AS "existing_status: EnrollmentStatus",
                  enrollment_status AS "enrollment_status: EnrollmentStatus", updated_at
           FROM enroll($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#,
        new.context.user_id,
        new.context.org_id,
        new.context.roles.join(","),
        new.course_id,
        new.enrollment_id,
        new.enrolled_at,
        terms.map(|t| t.title.as_str()),
        terms.map(|t| t.instructor_id),
        terms.and_then(|t| t.organization_id),
        terms.map(|t| t.price_minor),
        terms.map(|t| t.currency.as_str()),
        event.as_ref().map(|e| e.id),
        event.as_ref().map(|e| e.subject.as_str()),
        event.as_ref().map(|e| e.envelope.as_slice())
    )
    .fetch_one(db.pool())
    .await
    .map_err(|e| write_error(e, "course"))?;
    let terms = || -> Result<CourseTerms, ApiError> {
        let missing = || ApiError::Internal(anyhow::anyhow!("enroll() returned no course terms"));
        Ok(CourseTerms {
            title: row.title.clone().ok_or_else(missing)?,
            instructor_id: row.instructor_id.ok_or_else(missing)?,
            organization_id: row.organization_id,
            price_minor: row.price_minor.ok_or_else(missing)?,
            currency: row.currency.clone().ok_or_else(missing)?,
        })
    };
    let status = |status: Option<EnrollmentStatus>| {
        status.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("enroll() returned no status")))
    };
    Ok(match row.outcome.as_str() {
        "enrolled" => {
            // Committed with its event: the relay can publish it now.
            db.wake_relay();
            EnrollOutcome::Enrolled {
                status: status(row.enrollment_status)?,
                updated_at: row.updated_at.unwrap_or(new.enrolled_at),
            }
        }
        "stale" => EnrollOutcome::Stale(terms()?),
        "not_found" => EnrollOutcome::NotFound,
        "not_published" => EnrollOutcome::Refused(EnrollRefusal::NotPublished),
        "cohort_only" => EnrollOutcome::Refused(EnrollRefusal::CohortOnly),
        "exists" => EnrollOutcome::Exists(status(row.existing_status)?),
        other => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "enroll() returned an unknown outcome {other:?}"
            )));
        }
    })
}

/// Remembers a fully refunded payment, so that its success arriving late (events of two
/// subjects are not ordered) does not activate the enrollment again.
pub async fn record_refunded_payment(tx: &mut Tx, payment_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO refunded_payments (payment_id) VALUES ($1) ON CONFLICT DO NOTHING",
        payment_id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn was_refunded(tx: &mut Tx, payment_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM refunded_payments WHERE payment_id = $1) AS "refunded!""#,
        payment_id
    )
    .fetch_one(tx.conn())
    .await
}
