use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::{GrantScope, OrganizationId, Role, UserId};

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub organization_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl GrantRow {
    /// The role and where it applies.
    pub fn scope(&self) -> GrantScope {
        GrantScope {
            role: self.role,
            organization_id: self.organization_id,
        }
    }
}

pub struct NewGrant {
    pub user_id: Uuid,
    pub role: Role,
    pub organization_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_by: Option<Uuid>,
}

/// Grants a role. Granting a role the user already holds in that scope replaces the
/// earlier grant's expiry, so that re-granting an expired role renews it.
pub async fn grant(tx: &mut Tx, new: NewGrant) -> Result<GrantRow, ApiError> {
    sqlx::query_as!(
        GrantRow,
        "INSERT INTO role_grants (id, user_id, role, organization_id, expires_at, granted_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, role, coalesce(organization_id, '00000000-0000-0000-0000-000000000000'))
         DO UPDATE SET expires_at = EXCLUDED.expires_at, granted_by = EXCLUDED.granted_by
         RETURNING id, user_id, role, organization_id, expires_at, created_at",
        Uuid::now_v7(),
        new.user_id,
        new.role as _,
        new.organization_id,
        new.expires_at,
        new.granted_by
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "user or organization"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<GrantRow>, sqlx::Error> {
    sqlx::query_as!(
        GrantRow,
        "SELECT id, user_id, role, organization_id, expires_at, created_at
         FROM role_grants WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn revoke(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!("DELETE FROM role_grants WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The seeds' `get_user_roles`: grants that have not expired.
pub async fn active_grants(tx: &mut Tx, user_id: Uuid) -> Result<Vec<GrantRow>, sqlx::Error> {
    sqlx::query_as!(
        GrantRow,
        "SELECT id, user_id, role, organization_id, expires_at, created_at
         FROM role_grants
         WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > now())
         ORDER BY role, organization_id NULLS FIRST",
        user_id
    )
    .fetch_all(tx.conn())
    .await
}

/// The seeds' `has_role`: an unexpired grant, platform-wide or in `organization_id`.
pub async fn has_role(
    tx: &mut Tx,
    user_id: UserId,
    role: Role,
    organization_id: Option<OrganizationId>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT EXISTS (
           SELECT 1 FROM role_grants
           WHERE user_id = $1 AND role = $2
             AND (organization_id IS NULL OR $3::uuid IS NULL OR organization_id = $3)
             AND (expires_at IS NULL OR expires_at > now())) AS \"exists!\"",
        user_id.get(),
        role as _,
        organization_id.map(OrganizationId::get)
    )
    .fetch_one(tx.conn())
    .await
}
