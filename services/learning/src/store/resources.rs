//! The resource library. Every read returns, beside the row, how the caller stands towards
//! the resource's course (from the same SECURITY DEFINER helpers the policies use), so the
//! API decides access with the domain's rule on exactly what the database sees.

use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::resource::{
    AccessLevel, CourseStanding, ResourceScope, ResourceStatus, ResourceType,
};
use crate::domain::{CourseId, OrganizationId, ResourceId, UserId};

#[derive(Debug, Clone)]
pub struct ResourceRow {
    pub id: Uuid,
    pub author_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub course_id: Option<Uuid>,
    pub resource_type: ResourceType,
    pub title: String,
    pub description: String,
    pub body: String,
    pub content_url: String,
    pub tags: Vec<String>,
    pub access_level: AccessLevel,
    pub status: ResourceStatus,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The caller has an active or completed enrollment in the resource's course.
    pub learns: bool,
    /// The caller is on the course's teaching team.
    pub teaches: bool,
    /// The caller is on the team with edit_content (or owns the course).
    pub edits: bool,
}

impl ResourceRow {
    pub fn scope(&self) -> ResourceScope {
        ResourceScope {
            author_id: self.author_id,
            organization_id: self.organization_id,
            course_id: self.course_id,
            access_level: self.access_level,
            status: self.status,
        }
    }

    pub fn course_standing(&self) -> CourseStanding {
        CourseStanding {
            learns: self.learns,
            teaches: self.teaches,
            edits: self.edits,
        }
    }
}

/// Every editable field of a resource, fully validated.
#[derive(Debug, Clone)]
pub struct ResourceFields {
    pub resource_type: ResourceType,
    pub title: String,
    pub description: String,
    pub body: String,
    pub content_url: String,
    pub tags: Vec<String>,
    pub access_level: AccessLevel,
    pub status: ResourceStatus,
}

impl From<&ResourceRow> for ResourceFields {
    fn from(row: &ResourceRow) -> Self {
        Self {
            resource_type: row.resource_type,
            title: row.title.clone(),
            description: row.description.clone(),
            body: row.body.clone(),
            content_url: row.content_url.clone(),
            tags: row.tags.clone(),
            access_level: row.access_level,
            status: row.status,
        }
    }
}

/// How the caller stands towards a course (for creating its resources).
pub async fn course_standing(tx: &mut Tx, course: CourseId) -> Result<CourseStanding, sqlx::Error> {
    sqlx::query_as!(
        CourseStanding,
        r#"SELECT learns_in($1::uuid) AS "learns!", teaches($1::uuid) AS "teaches!",
                  teaches($1::uuid, 'edit_content') AS "edits!""#,
        course.get()
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn insert(
    tx: &mut Tx,
    id: ResourceId,
    author_id: UserId,
    organization_id: Option<OrganizationId>,
    course_id: Option<CourseId>,
    fields: &ResourceFields,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO resources (id, author_id, organization_id, course_id, type, title,
            description, body, content_url, tags, access_level, status, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 CASE WHEN $12 = 'published' THEN now() END)",
        id.get(),
        author_id.get(),
        organization_id.map(OrganizationId::get),
        course_id.map(CourseId::get),
        fields.resource_type as _,
        fields.title,
        fields.description,
        fields.body,
        fields.content_url,
        &fields.tags,
        fields.access_level as _,
        fields.status as _,
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<ResourceRow>, sqlx::Error> {
    sqlx::query_as!(
        ResourceRow,
        r#"SELECT id, author_id, organization_id, course_id, type AS "resource_type: ResourceType",
                  title, description, body, content_url, tags, access_level, status,
                  published_at, created_at, updated_at,
                  coalesce(course_id IS NOT NULL AND learns_in(course_id), false) AS "learns!",
                  coalesce(course_id IS NOT NULL AND teaches(course_id), false) AS "teaches!",
                  coalesce(course_id IS NOT NULL AND teaches(course_id, 'edit_content'), false)
                    AS "edits!"
           FROM resources WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The resource, locked until the end of the transaction.
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<ResourceRow>, sqlx::Error> {
    sqlx::query_as!(
        ResourceRow,
        r#"SELECT id, author_id, organization_id, course_id, type AS "resource_type: ResourceType",
                  title, description, body, content_url, tags, access_level, status,
                  published_at, created_at, updated_at,
                  coalesce(course_id IS NOT NULL AND learns_in(course_id), false) AS "learns!",
                  coalesce(course_id IS NOT NULL AND teaches(course_id), false) AS "teaches!",
                  coalesce(course_id IS NOT NULL AND teaches(course_id, 'edit_content'), false)
                    AS "edits!"
           FROM resources WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Replaces every editable field; publishing stamps the time, unpublishing clears it.
pub async fn update(tx: &mut Tx, id: Uuid, fields: &ResourceFields) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE resources SET type = $2, title = $3, description = $4, body = $5,
            content_url = $6, tags = $7, access_level = $8, status = $9,
            published_at = CASE WHEN $9 = 'published' THEN coalesce(published_at, now()) END,
            updated_at = now()
         WHERE id = $1",
        id,
        fields.resource_type as _,
        fields.title,
        fields.description,
        fields.body,
        fields.content_url,
        &fields.tags,
        fields.access_level as _,
        fields.status as _,
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "resource"))?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("DELETE FROM resources WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// What a listing is filtered by.
#[derive(Debug, Clone, Default)]
pub struct ResourceFilter {
    pub status: Option<ResourceStatus>,
    pub query: Option<String>,
    pub resource_type: Option<ResourceType>,
    pub tags: Vec<String>,
    pub course_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
}

/// Newest first, after the page position `after` (created_at, id). Row security leaves out
/// what the caller may not see; the API checks each row with the domain's rule again.
/// A search or a tag filter starts from the ids their GIN indexes find (see
/// `resources_matching` in migration 0013: under row-level security the planner would not
/// use those indexes for the caller's own conditions).
pub async fn list(
    tx: &mut Tx,
    filter: &ResourceFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ResourceRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    if filter.query.is_none() && filter.tags.is_empty() {
        return sqlx::query_as!(
            ResourceRow,
            r#"SELECT id, author_id, organization_id, course_id,
                      type AS "resource_type: ResourceType",
                      title, description, body, content_url, tags, access_level, status,
                      published_at, created_at, updated_at,
                      coalesce(course_id IS NOT NULL AND learns_in(course_id), false) AS "learns!",
                      coalesce(course_id IS NOT NULL AND teaches(course_id), false) AS "teaches!",
                      coalesce(course_id IS NOT NULL AND teaches(course_id, 'edit_content'), false)
                        AS "edits!"
               FROM resources
               WHERE ($1::text IS NULL OR status = $1)
                 AND ($2::text IS NULL OR type = $2)
                 AND ($3::uuid IS NULL OR course_id = $3)
                 AND ($4::uuid IS NULL OR organization_id = $4)
                 AND ($5::uuid IS NULL OR author_id = $5)
                 AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
               ORDER BY created_at DESC, id DESC
               LIMIT $8"#,
            filter.status.map(ResourceStatus::as_str),
            filter.resource_type.map(ResourceType::as_str),
            filter.course_id,
            filter.organization_id,
            filter.author_id,
            after_time,
            after_id,
            limit
        )
        .fetch_all(tx.conn())
        .await;
    }
    sqlx::query_as!(
        ResourceRow,
        r#"SELECT id, author_id, organization_id, course_id, type AS "resource_type: ResourceType",
                  title, description, body, content_url, tags, access_level, status,
                  published_at, created_at, updated_at,
                  coalesce(course_id IS NOT NULL AND learns_in(course_id), false) AS "learns!",
                  coalesce(course_id IS NOT NULL AND teaches(course_id), false) AS "teaches!",
                  coalesce(course_id IS NOT NULL AND teaches(course_id, 'edit_content'), false)
                    AS "edits!"
           FROM resources
           WHERE id IN (SELECT resources_matching($2, $4))
             AND ($1::text IS NULL OR status = $1)
             AND ($2::text IS NULL OR search_vector @@ websearch_to_tsquery('english', $2))
             AND ($3::text IS NULL OR type = $3)
             AND tags @> $4
             AND ($5::uuid IS NULL OR course_id = $5)
             AND ($6::uuid IS NULL OR organization_id = $6)
             AND ($7::uuid IS NULL OR author_id = $7)
             AND ($8::timestamptz IS NULL OR (created_at, id) < ($8, $9::uuid))
           ORDER BY created_at DESC, id DESC
           LIMIT $10"#,
        filter.status.map(ResourceStatus::as_str),
        filter.query,
        filter.resource_type.map(ResourceType::as_str),
        &filter.tags,
        filter.course_id,
        filter.organization_id,
        filter.author_id,
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}
