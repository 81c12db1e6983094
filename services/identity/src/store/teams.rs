use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::{OrganizationId, TeamId, TeamMemberRole, UserId};

#[derive(Debug, Clone)]
pub struct TeamRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub team_id: Uuid,
    pub user_id: Uuid,
    pub role: TeamMemberRole,
    pub joined_at: DateTime<Utc>,
}

pub async fn insert(
    tx: &mut Tx,
    organization_id: Uuid,
    name: String,
    description: String,
) -> Result<TeamRow, ApiError> {
    sqlx::query_as!(
        TeamRow,
        "INSERT INTO teams (id, organization_id, name, description) VALUES ($1, $2, $3, $4)
         RETURNING id, organization_id, name, description, created_at, updated_at",
        Uuid::now_v7(),
        organization_id,
        name,
        description
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "organization"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<TeamRow>, sqlx::Error> {
    sqlx::query_as!(
        TeamRow,
        "SELECT id, organization_id, name, description, created_at, updated_at
         FROM teams WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn list(
    tx: &mut Tx,
    organization_id: OrganizationId,
    after: Option<TeamId>,
    limit: i64,
) -> Result<Vec<TeamRow>, sqlx::Error> {
    sqlx::query_as!(
        TeamRow,
        "SELECT id, organization_id, name, description, created_at, updated_at
         FROM teams WHERE organization_id = $1 AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
        organization_id.get(),
        after.map(TeamId::get),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    name: Option<String>,
    description: Option<String>,
) -> Result<Option<TeamRow>, ApiError> {
    sqlx::query_as!(
        TeamRow,
        "UPDATE teams SET name = coalesce($2, name), description = coalesce($3, description),
                          updated_at = now()
         WHERE id = $1
         RETURNING id, organization_id, name, description, created_at, updated_at",
        id,
        name,
        description
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "organization"))
}

pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!("DELETE FROM teams WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Adds a member, or changes the role of one already in the team.
pub async fn upsert_member(
    tx: &mut Tx,
    team: &TeamRow,
    user_id: Uuid,
    role: TeamMemberRole,
) -> Result<MemberRow, ApiError> {
    sqlx::query_as!(
        MemberRow,
        "INSERT INTO team_members (team_id, user_id, organization_id, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role
         RETURNING team_id, user_id, role, joined_at",
        team.id,
        user_id,
        team.organization_id,
        role as _
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "user"))
}

pub async fn remove_member(
    tx: &mut Tx,
    team_id: TeamId,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2",
        team_id.get(),
        user_id.get()
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn list_members(
    tx: &mut Tx,
    team_id: TeamId,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as!(
        MemberRow,
        "SELECT team_id, user_id, role, joined_at FROM team_members
         WHERE team_id = $1 AND ($2::uuid IS NULL OR user_id > $2)
         ORDER BY user_id LIMIT $3",
        team_id.get(),
        after.map(UserId::get),
        limit
    )
    .fetch_all(tx.conn())
    .await
}
