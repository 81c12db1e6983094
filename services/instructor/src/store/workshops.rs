//! The projections of learning's workshop events: workshops (owner, title, schedule,
//! status) and their registrations (registrant, status, price). Each change applies only
//! when its version is newer than the one stored, so redelivered or reordered events change
//! nothing; what counts once (a workshop first published, a registrant first seen) is
//! decided under the row's lock.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// A workshop's state, as one of its status events carries it.
pub struct WorkshopState<'a> {
    pub workshop_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub title: &'a str,
    /// "published", "archived" or "cancelled".
    pub status: &'a str,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub version: i64,
}

/// Applies a workshop's status event. Returns whether the workshop now counts among its
/// instructor's workshops for the first time: the first published event applied, whatever
/// its version (an older one still proves the workshop was published).
pub async fn apply_workshop_status(
    tx: &mut Tx,
    state: &WorkshopState<'_>,
) -> Result<bool, sqlx::Error> {
    // Created empty if need be and locked, so that concurrent consumers (replicas) apply
    // the workshop's events one after the other.
    sqlx::query!(
        "INSERT INTO workshop_projection (workshop_id, instructor_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        state.workshop_id,
        state.instructor_id
    )
    .execute(tx.conn())
    .await?;
    let counted_before = sqlx::query_scalar!(
        "SELECT ever_published FROM workshop_projection WHERE workshop_id = $1 FOR UPDATE",
        state.workshop_id
    )
    .fetch_one(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE workshop_projection w SET
            instructor_id = CASE WHEN w.version < $8 THEN $2 ELSE w.instructor_id END,
            organization_id = coalesce(CASE WHEN w.version < $8 THEN $3::uuid END, w.organization_id),
            title = CASE WHEN w.version < $8 THEN $4 ELSE w.title END,
            status = CASE WHEN w.version < $8 THEN $5 ELSE w.status END,
            start_time = CASE WHEN w.version < $8 THEN $6 ELSE w.start_time END,
            end_time = CASE WHEN w.version < $8 THEN $7 ELSE w.end_time END,
            version = greatest(w.version, $8),
            ever_published = w.ever_published OR $5 = 'published'
         WHERE w.workshop_id = $1",
        state.workshop_id,
        state.instructor_id,
        state.organization_id,
        state.title,
        state.status,
        state.start_time,
        state.end_time,
        state.version
    )
    .execute(tx.conn())
    .await?;
    Ok(state.status == "published" && !counted_before)
}

/// A registration's state, as one of its events carries it.
pub struct RegistrationState<'a> {
    pub registration_id: Uuid,
    pub workshop_id: Uuid,
    pub user_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: &'a str,
    pub price_minor: i64,
    pub currency: &'a str,
    /// When the user registered (the same in every event of the registration).
    pub registered_at: DateTime<Utc>,
    pub version: i64,
    /// What the event says of its workshop: they make its row when none of the workshop's
    /// own events has arrived yet, so the timeline can name it meanwhile.
    pub workshop_title: &'a str,
    pub workshop_start_time: Option<DateTime<Utc>>,
}

/// Whether a registration in `status` makes its registrant one of the instructor's
/// students (the dashboard's count reads the same statuses).
fn counts_as_student(status: &str) -> bool {
    matches!(status, "registered" | "completed")
}

/// Applies a registration's event: its state (status, price and currency with a newer
/// version only), a workshop row if its workshop has none yet, and the registrant among the
/// instructor's distinct students (`instructor_students`, and the profile's
/// `total_students` once per student) when the event shows them registered or attended.
pub async fn apply_registration(
    tx: &mut Tx,
    state: &RegistrationState<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO workshop_projection (workshop_id, instructor_id, organization_id, title, start_time)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        state.workshop_id,
        state.instructor_id,
        state.organization_id,
        state.workshop_title,
        state.workshop_start_time
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "INSERT INTO registration_projection AS r (registration_id, workshop_id, user_id, instructor_id,
            organization_id, status, price_minor, currency, registered_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (registration_id) DO UPDATE SET
            status = CASE WHEN r.version < EXCLUDED.version THEN EXCLUDED.status ELSE r.status END,
            price_minor = CASE WHEN r.version < EXCLUDED.version
                               THEN EXCLUDED.price_minor ELSE r.price_minor END,
            currency = CASE WHEN r.version < EXCLUDED.version
                            THEN EXCLUDED.currency ELSE r.currency END,
            version = greatest(r.version, EXCLUDED.version),
            organization_id = coalesce(r.organization_id, EXCLUDED.organization_id),
            registered_at = least(r.registered_at, EXCLUDED.registered_at)",
        state.registration_id,
        state.workshop_id,
        state.user_id,
        state.instructor_id,
        state.organization_id,
        state.status,
        state.price_minor,
        state.currency,
        state.registered_at,
        state.version
    )
    .execute(tx.conn())
    .await?;
    // Any event that shows the registrant registered counts them, older or not, so the
    // count does not depend on arrival order; the student's row makes it once.
    if counts_as_student(state.status) {
        sqlx::query!(
            "WITH added AS (
               INSERT INTO instructor_students (instructor_id, student_id) VALUES ($1, $2)
               ON CONFLICT DO NOTHING
               RETURNING instructor_id)
             INSERT INTO instructor_stats AS s (instructor_id, total_students)
             SELECT instructor_id, 1 FROM added
             ON CONFLICT (instructor_id) DO UPDATE SET total_students = s.total_students + 1",
            state.instructor_id,
            state.user_id
        )
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// Counts a workshop among its instructor's workshops (the profile's `total_workshops`).
pub async fn count_workshop(tx: &mut Tx, instructor_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO instructor_stats AS s (instructor_id, total_workshops) VALUES ($1, 1)
         ON CONFLICT (instructor_id) DO UPDATE SET total_workshops = s.total_workshops + 1",
        instructor_id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The instructor of a registration (its workshop's owner), as learning's events told it.
pub async fn registration_instructor(
    tx: &mut Tx,
    registration_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT instructor_id FROM registration_projection WHERE registration_id = $1",
        registration_id
    )
    .fetch_optional(tx.conn())
    .await
}
