use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use lyceum_platform::error::{UNIQUE_VIOLATION, pg_error_code};
use uuid::Uuid;

use super::Tx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub subscription_tier: String,
    pub subscription_status: String,
    pub company_size: String,
    pub settings: serde_json::Value,
    pub branding: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub subscription_tier: &'static str,
    pub subscription_status: &'static str,
    pub company_size: String,
    pub settings: serde_json::Value,
    pub branding: serde_json::Value,
}

/// Fields to change; `None` keeps the stored value.
#[derive(Default)]
pub struct OrganizationChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub subscription_tier: Option<&'static str>,
    pub subscription_status: Option<&'static str>,
    pub company_size: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub branding: Option<serde_json::Value>,
}

fn slug_taken(error: sqlx::Error) -> ApiError {
    if pg_error_code(&error).as_deref() == Some(UNIQUE_VIOLATION) {
        ApiError::already_exists("slug", "an organization with this slug already exists")
    } else {
        error.into()
    }
}

pub async fn insert(tx: &mut Tx, new: NewOrganization) -> Result<OrganizationRow, ApiError> {
    sqlx::query_as::<_, OrganizationRow>(
        "INSERT INTO organizations (id, name, slug, subscription_tier, subscription_status,
                                    company_size, settings, branding)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, name, slug, subscription_tier, subscription_status, company_size,
                   settings, branding, created_at, updated_at",
    )
    .bind(Uuid::now_v7())
    .bind(new.name)
    .bind(new.slug)
    .bind(new.subscription_tier)
    .bind(new.subscription_status)
    .bind(new.company_size)
    .bind(new.settings)
    .bind(new.branding)
    .fetch_one(tx.conn())
    .await
    .map_err(slug_taken)
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<OrganizationRow>, sqlx::Error> {
    sqlx::query_as::<_, OrganizationRow>(
        "SELECT id, name, slug, subscription_tier, subscription_status, company_size,
                settings, branding, created_at, updated_at
         FROM organizations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await
}

/// A page of the organizations the caller may see, in id order after `after`.
pub async fn list(
    tx: &mut Tx,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OrganizationRow>, sqlx::Error> {
    sqlx::query_as::<_, OrganizationRow>(
        "SELECT id, name, slug, subscription_tier, subscription_status, company_size,
                settings, branding, created_at, updated_at
         FROM organizations WHERE $1::uuid IS NULL OR id > $1
         ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(tx.conn())
    .await
}

pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    changes: OrganizationChanges,
) -> Result<Option<OrganizationRow>, ApiError> {
    sqlx::query_as::<_, OrganizationRow>(
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
    )
    .bind(id)
    .bind(changes.name)
    .bind(changes.slug)
    .bind(changes.subscription_tier)
    .bind(changes.subscription_status)
    .bind(changes.company_size)
    .bind(changes.settings)
    .bind(changes.branding)
    .fetch_optional(tx.conn())
    .await
    .map_err(slug_taken)
}
