use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::{OrganizationId, UserId, UserScope, UserStatus};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub email: String,
    pub full_name: String,
    pub avatar_url: String,
    pub company_name: String,
    pub metadata: serde_json::Value,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserRow {
    /// What the rules read of the user.
    pub fn scope(&self) -> UserScope {
        UserScope {
            id: self.id,
            organization_id: self.organization_id,
            status: self.status,
        }
    }
}

pub struct NewUser {
    pub organization_id: Option<Uuid>,
    pub email: String,
    pub full_name: String,
    pub avatar_url: String,
    pub company_name: String,
    pub metadata: serde_json::Value,
}

#[derive(Default)]
pub struct UserChanges {
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub company_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub status: Option<UserStatus>,
}

pub async fn insert(tx: &mut Tx, new: NewUser) -> Result<UserRow, ApiError> {
    sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, organization_id, email, full_name, avatar_url, company_name, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, organization_id, email, full_name, avatar_url, company_name, metadata,
                   status, created_at, updated_at", Uuid::now_v7(), new.organization_id, new.email, new.full_name, new.avatar_url, new.company_name, new.metadata
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "organization"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, organization_id, email, full_name, avatar_url, company_name, metadata,
                status, created_at, updated_at
         FROM users WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Looks a user up by email, ignoring letter case (served by `users_email_key`).
pub async fn find_by_email(tx: &mut Tx, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, organization_id, email, full_name, avatar_url, company_name, metadata,
                status, created_at, updated_at
         FROM users WHERE lower(email) = lower($1)",
        email
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn list(
    tx: &mut Tx,
    organization_id: Option<OrganizationId>,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, organization_id, email, full_name, avatar_url, company_name, metadata,
                status, created_at, updated_at
         FROM users
         WHERE ($1::uuid IS NULL OR organization_id = $1) AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
        organization_id.map(OrganizationId::get),
        after.map(UserId::get),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn batch_get(tx: &mut Tx, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, organization_id, email, full_name, avatar_url, company_name, metadata,
                status, created_at, updated_at
         FROM users WHERE id = ANY($1) ORDER BY id",
        ids
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    changes: UserChanges,
) -> Result<Option<UserRow>, ApiError> {
    sqlx::query_as!(
        UserRow,
        "UPDATE users SET
           full_name = coalesce($2, full_name),
           avatar_url = coalesce($3, avatar_url),
           company_name = coalesce($4, company_name),
           metadata = coalesce($5, metadata),
           status = coalesce($6, status),
           updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
         WHERE id = $1
         RETURNING id, organization_id, email, full_name, avatar_url, company_name, metadata,
                   status, created_at, updated_at",
        id,
        changes.full_name,
        changes.avatar_url,
        changes.company_name,
        changes.metadata,
        changes.status as _
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "organization"))
}

/// Serialises bootstrap commands until the transaction ends: two at once would both see
/// no platform admin and both create one.
pub async fn lock_bootstrap(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('lyceum.identity.bootstrap'))")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Whether any user holds an unexpired platform admin grant (for the bootstrap command).
pub async fn platform_admin_exists(tx: &mut Tx) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM role_grants
                        WHERE role = 'admin' AND organization_id IS NULL
                          AND (expires_at IS NULL OR expires_at > now())) AS \"exists!\""
    )
    .fetch_one(tx.conn())
    .await
}
