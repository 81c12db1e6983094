//! The projections of learning's workshop events: workshops (owner, title, schedule,
//! status) and their registrations (registrant, status, price).

use uuid::Uuid;

use super::Tx;

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
