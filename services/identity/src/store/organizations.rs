use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::{SubscriptionStatus, SubscriptionTier};

#[derive(Debug, Clone)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub subscription_tier: SubscriptionTier,
    pub subscription_status: SubscriptionStatus,
    pub company_size: String,
    pub settings: serde_json::Value,
    pub branding: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub subscription_tier: SubscriptionTier,
    pub subscription_status: SubscriptionStatus,
    pub company_size: String,
    pub settings: serde_json::Value,
    pub branding: serde_json::Value,
}

/// Fields to change; `None` keeps the stored value.
#[derive(Default)]
pub struct OrganizationChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub subscription_tier: Option<SubscriptionTier>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub company_size: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub branding: Option<serde_json::Value>,
}

pub async fn insert(tx: &mut Tx, new: NewOrganization) -> Result<OrganizationRow, ApiError> {
    sqlx::query_as!(
        OrganizationRow,
        "INSERT INTO organizations (id, name, slug, subscription_tier, subscription_status,
                                    company_size, settings, branding)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, name, slug, subscription_tier, subscription_status, company_size,
                   settings, branding, created_at, updated_at",
        Uuid::now_v7(),
        new.name,
        new.slug,
        new.subscription_tier as _,
        new.subscription_status as _,
        new.company_size,
        new.settings,
        new.branding
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "organization"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<OrganizationRow>, sqlx::Error> {
    sqlx::query_as!(
        OrganizationRow,
        "SELECT id, name, slug, subscription_tier, subscription_status, company_size,
                settings, branding, created_at, updated_at
         FROM organizations WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// A page of the organizations the caller may see, in id order after `after`.
pub async fn list(
    tx: &mut Tx,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OrganizationRow>, sqlx::Error> {
    sqlx::query_as!(
        OrganizationRow,
        "SELECT id, name, slug, subscription_tier, subscription_status, company_size,
                settings, branding, created_at, updated_at
         FROM organizations WHERE $1::uuid IS NULL OR id > $1
         ORDER BY id LIMIT $2",
        after,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    changes: OrganizationChanges,
) -> Result<Option<OrganizationRow>, ApiError> {
    sqlx::query_as!(
        OrganizationRow,
        "UPDATE organizations SET
           name = coalesce($2, name),
           slug = coalesce($3, slug),
           subscription_tier = coalesce($4, subscription_tier),
           subscription_status = coalesce($5, subscription_status),
           company_size = coalesce($6, company_size),
           settings = coalesce($7, settings),
           branding = coalesce($8, branding),
           updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
         WHERE id = $1
         RETURNING id, name, slug, subscription_tier, subscription_status, company_size,
                   settings, branding, created_at, updated_at",
        id,
        changes.name,
        changes.slug,
        changes.subscription_tier as _,
        changes.subscription_status as _,
        changes.company_size,
        changes.settings,
        changes.branding
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "organization"))
}
