use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};

#[derive(Debug, Clone)]
pub struct ServiceAccountRow {
    pub id: Uuid,
    pub name: String,
    pub client_secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

pub async fn insert(
    tx: &mut Tx,
    name: &str,
    secret_hash: &str,
    scopes: &[String],
    created_by: Uuid,
) -> Result<ServiceAccountRow, ApiError> {
    sqlx::query_as!(
        ServiceAccountRow,
        "INSERT INTO service_accounts (id, name, client_secret_hash, created_by, scopes)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, client_secret_hash, created_at, disabled_at, scopes",
        Uuid::now_v7(),
        name,
        secret_hash,
        created_by,
        scopes
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "service account"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<ServiceAccountRow>, sqlx::Error> {
    sqlx::query_as!(
        ServiceAccountRow,
        "SELECT id, name, client_secret_hash, created_at, disabled_at, scopes FROM service_accounts WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Marks the account disabled, keeping the first disable time. `None` when there is no
/// such account; the flag tells whether this call disabled it (false when it already was).
pub async fn disable(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Option<(ServiceAccountRow, bool)>, sqlx::Error> {
    // The row lock makes two concurrent disables agree on which one did it.
    let was_disabled: Option<bool> = sqlx::query_scalar!(
        "SELECT disabled_at IS NOT NULL AS \"disabled!\" FROM service_accounts WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(was_disabled) = was_disabled else {
        return Ok(None);
    };
    let row = sqlx::query_as!(
        ServiceAccountRow,
        "UPDATE service_accounts SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1
         RETURNING id, name, client_secret_hash, created_at, disabled_at, scopes",
        id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(Some((row, !was_disabled)))
}

pub async fn is_enabled(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM service_accounts WHERE id = $1 AND disabled_at IS NULL) AS \"exists!\"",
        id
    )
    .fetch_one(tx.conn())
    .await
}
