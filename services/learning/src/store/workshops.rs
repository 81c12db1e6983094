//! Workshops, their facilitators and feedback. The full row is read in one place each
//! for a plain read, a locked read and the catalogue; writes return the id and the caller
//! reads the row back.

use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::Visibility;
use crate::domain::workshop::{
    FacilitatorRole, Pillar, WorkshopFormat, WorkshopLevel, WorkshopScope, WorkshopStatus,
    WorkshopTerms,
};
use crate::domain::{OrganizationId, UserId, WorkshopId};

#[derive(Debug, Clone)]
pub struct WorkshopRow {
    pub id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub pillar: Pillar,
    pub level: WorkshopLevel,
    pub format: WorkshopFormat,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub time_zone: String,
    pub location: String,
    pub meeting_url: String,
    pub capacity: i32,
    pub seats_remaining: i64,
    pub price_minor: i64,
    pub currency: String,
    pub early_bird_price_minor: Option<i64>,
    pub early_bird_ends_at: Option<DateTime<Utc>>,
    pub outcomes: Vec<String>,
    pub tags: Vec<String>,
    pub prerequisites: Vec<String>,
    pub status: WorkshopStatus,
    pub visibility: Visibility,
    pub featured: bool,
    pub certificate_enabled: bool,
    pub certificate_template_url: String,
    pub attended_count: i64,
    pub feedback_count: i64,
    pub satisfaction_sum: i64,
    pub average_satisfaction: f64,
    pub stats_version: i64,
    pub version: i64,
    pub cancel_reason: String,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WorkshopRow {
    pub fn scope(&self) -> WorkshopScope {
        WorkshopScope {
            instructor_id: self.instructor_id,
            organization_id: self.organization_id,
            status: self.status,
            visibility: self.visibility,
        }
    }

    pub fn terms(&self) -> WorkshopTerms {
        WorkshopTerms {
            start_time: self.start_time,
            end_time: self.end_time,
            capacity: self.capacity,
            price_minor: self.price_minor,
            early_bird: self
                .early_bird_price_minor
                .zip(self.early_bird_ends_at)
                .map(
                    |(price_minor, ends_at)| crate::domain::workshop::EarlyBird {
                        price_minor,
                        ends_at,
                    },
                ),
        }
    }

    /// Seats taken: registrations pending payment, registered, attended or absent.
    pub fn seats_taken(&self) -> i64 {
        i64::from(self.capacity) - self.seats_remaining
    }
}

/// Every editable field of a workshop, fully validated.
#[derive(Debug, Clone)]
pub struct WorkshopFields {
    pub title: String,
    pub description: String,
    pub pillar: Pillar,
    pub level: WorkshopLevel,
    pub format: WorkshopFormat,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub time_zone: String,
    pub location: String,
    pub meeting_url: String,
    pub capacity: i32,
    pub price_minor: i64,
    pub currency: String,
    pub early_bird_price_minor: Option<i64>,
    pub early_bird_ends_at: Option<DateTime<Utc>>,
    pub outcomes: Vec<String>,
    pub tags: Vec<String>,
    pub prerequisites: Vec<String>,
    pub visibility: Visibility,
    pub featured: bool,
    pub certificate_enabled: bool,
    pub certificate_template_url: String,
}

impl WorkshopFields {
    pub fn terms(&self) -> WorkshopTerms {
        WorkshopTerms {
            start_time: self.start_time,
            end_time: self.end_time,
            capacity: self.capacity,
            price_minor: self.price_minor,
            early_bird: self
                .early_bird_price_minor
                .zip(self.early_bird_ends_at)
                .map(
                    |(price_minor, ends_at)| crate::domain::workshop::EarlyBird {
                        price_minor,
                        ends_at,
                    },
                ),
        }
    }
}

impl From<&WorkshopRow> for WorkshopFields {
    fn from(row: &WorkshopRow) -> Self {
        Self {
            title: row.title.clone(),
            description: row.description.clone(),
            pillar: row.pillar,
            level: row.level,
            format: row.format,
            start_time: row.start_time,
            end_time: row.end_time,
            time_zone: row.time_zone.clone(),
            location: row.location.clone(),
            meeting_url: row.meeting_url.clone(),
            capacity: row.capacity,
            price_minor: row.price_minor,
            currency: row.currency.clone(),
            early_bird_price_minor: row.early_bird_price_minor,
            early_bird_ends_at: row.early_bird_ends_at,
            outcomes: row.outcomes.clone(),
            tags: row.tags.clone(),
            prerequisites: row.prerequisites.clone(),
            visibility: row.visibility,
            featured: row.featured,
            certificate_enabled: row.certificate_enabled,
            certificate_template_url: row.certificate_template_url.clone(),
        }
    }
}

/// Whether PostgreSQL knows the time zone (the table's CHECK asks the same).
pub async fn is_time_zone(tx: &mut Tx, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT is_time_zone($1) AS "known!""#, name)
        .fetch_one(tx.conn())
        .await
}

pub async fn insert(
    tx: &mut Tx,
    id: WorkshopId,
    instructor_id: UserId,
    organization_id: Option<OrganizationId>,
    fields: &WorkshopFields,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO workshops (id, instructor_id, organization_id, title, description, pillar,
            level, format, start_time, end_time, time_zone, location, meeting_url, capacity,
            price_minor, currency, early_bird_price_minor, early_bird_ends_at, outcomes, tags,
            prerequisites, visibility, featured, certificate_enabled, certificate_template_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23, $24, $25)",
        id.get(),
        instructor_id.get(),
        organization_id.map(OrganizationId::get),
        fields.title,
        fields.description,
        fields.pillar as _,
        fields.level as _,
        fields.format as _,
        fields.start_time,
        fields.end_time,
        fields.time_zone,
        fields.location,
        fields.meeting_url,
        fields.capacity,
        fields.price_minor,
        fields.currency,
        fields.early_bird_price_minor,
        fields.early_bird_ends_at,
        &fields.outcomes,
        &fields.tags,
        &fields.prerequisites,
        fields.visibility as _,
        fields.featured,
        fields.certificate_enabled,
        fields.certificate_template_url,
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "workshop"))?;
    Ok(())
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<WorkshopRow>, sqlx::Error> {
    sqlx::query_as!(
        WorkshopRow,
        r#"SELECT id, instructor_id, organization_id, title, description, pillar, level, format,
                start_time, end_time, time_zone, location, meeting_url, capacity,
                coalesce(workshop_seats_remaining(id), 0) AS "seats_remaining!",
                price_minor, currency, early_bird_price_minor, early_bird_ends_at, outcomes, tags,
                prerequisites, status, visibility, featured, certificate_enabled,
                certificate_template_url, attended_count, feedback_count, satisfaction_sum,
                average_satisfaction::float8 AS "average_satisfaction!", stats_version, version,
                cancel_reason, published_at, cancelled_at, created_at, updated_at
         FROM workshops WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The workshop, locked until the end of the transaction (status and statistics changes).
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<WorkshopRow>, sqlx::Error> {
    sqlx::query_as!(
        WorkshopRow,
        r#"SELECT id, instructor_id, organization_id, title, description, pillar, level, format,
                start_time, end_time, time_zone, location, meeting_url, capacity,
                coalesce(workshop_seats_remaining(id), 0) AS "seats_remaining!",
                price_minor, currency, early_bird_price_minor, early_bird_ends_at, outcomes, tags,
                prerequisites, status, visibility, featured, certificate_enabled,
                certificate_template_url, attended_count, feedback_count, satisfaction_sum,
                average_satisfaction::float8 AS "average_satisfaction!", stats_version, version,
                cancel_reason, published_at, cancelled_at, created_at, updated_at
         FROM workshops WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Replaces every editable field (the API merges the update mask into the stored row).
pub async fn update(tx: &mut Tx, id: Uuid, fields: &WorkshopFields) -> Result<bool, ApiError> {
    let updated = sqlx::query!(
        "UPDATE workshops SET title = $2, description = $3, pillar = $4, level = $5, format = $6,
            start_time = $7, end_time = $8, time_zone = $9, location = $10, meeting_url = $11,
            capacity = $12, price_minor = $13, currency = $14, early_bird_price_minor = $15,
            early_bird_ends_at = $16, outcomes = $17, tags = $18, prerequisites = $19,
            visibility = $20, featured = $21, certificate_enabled = $22,
            certificate_template_url = $23, version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        fields.title,
        fields.description,
        fields.pillar as _,
        fields.level as _,
        fields.format as _,
        fields.start_time,
        fields.end_time,
        fields.time_zone,
        fields.location,
        fields.meeting_url,
        fields.capacity,
        fields.price_minor,
        fields.currency,
        fields.early_bird_price_minor,
        fields.early_bird_ends_at,
        &fields.outcomes,
        &fields.tags,
        &fields.prerequisites,
        fields.visibility as _,
        fields.featured,
        fields.certificate_enabled,
        fields.certificate_template_url,
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "workshop"))?;
    Ok(updated.rows_affected() == 1)
}

pub async fn set_status(
    tx: &mut Tx,
    id: Uuid,
    status: WorkshopStatus,
    cancel_reason: &str,
) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE workshops SET status = $2,
            published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END,
            cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END,
            cancel_reason = CASE WHEN $2 = 'cancelled' THEN $3 ELSE cancel_reason END,
            version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        status as _,
        cancel_reason
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "workshop"))?;
    Ok(())
}

/// What the catalogue is filtered by.
#[derive(Debug, Clone, Default)]
pub struct WorkshopFilter {
    pub status: Option<WorkshopStatus>,
    pub query: Option<String>,
    pub pillar: Option<Pillar>,
    pub level: Option<WorkshopLevel>,
    pub format: Option<WorkshopFormat>,
    pub tags: Vec<String>,
    pub start_after: Option<DateTime<Utc>>,
    pub start_before: Option<DateTime<Utc>>,
    pub instructor_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub featured_only: bool,
}

/// The catalogue in start order, after the page position `after` (start time, id). Row
/// security leaves out what the caller may not see.
pub async fn list(
    tx: &mut Tx,
    filter: &WorkshopFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<WorkshopRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        WorkshopRow,
        r#"SELECT id, instructor_id, organization_id, title, description, pillar, level, format,
                start_time, end_time, time_zone, location, meeting_url, capacity,
                coalesce(workshop_seats_remaining(id), 0) AS "seats_remaining!",
                price_minor, currency, early_bird_price_minor, early_bird_ends_at, outcomes, tags,
                prerequisites, status, visibility, featured, certificate_enabled,
                certificate_template_url, attended_count, feedback_count, satisfaction_sum,
                average_satisfaction::float8 AS "average_satisfaction!", stats_version, version,
                cancel_reason, published_at, cancelled_at, created_at, updated_at
         FROM workshops
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::text IS NULL OR search_vector @@ plainto_tsquery('english', $2))
           AND ($3::text IS NULL OR pillar = $3)
           AND ($4::text IS NULL OR level = $4)
           AND ($5::text IS NULL OR format = $5)
           AND tags @> $6
           AND ($7::timestamptz IS NULL OR start_time >= $7)
           AND ($8::timestamptz IS NULL OR start_time < $8)
           AND ($9::uuid IS NULL OR instructor_id = $9)
           AND ($10::uuid IS NULL OR organization_id = $10)
           AND (NOT $11 OR featured)
           AND ($12::timestamptz IS NULL OR (start_time, id) > ($12, $13::uuid))
         ORDER BY start_time, id
         LIMIT $14"#,
        filter.status.map(WorkshopStatus::as_str),
        filter.query,
        filter.pillar.map(Pillar::as_str),
        filter.level.map(WorkshopLevel::as_str),
        filter.format.map(WorkshopFormat::as_str),
        &filter.tags,
        filter.start_after,
        filter.start_before,
        filter.instructor_id,
        filter.organization_id,
        filter.featured_only,
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// Adds to the workshop's attended count (bookkeeping, under the workshop's lock).
pub async fn add_attended(tx: &mut Tx, id: Uuid, delta: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE workshops SET attended_count = attended_count + $2,
            stats_version = stats_version + 1
         WHERE id = $1",
        id,
        delta
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The workshop's satisfaction after one more feedback (bookkeeping, O(1)).
#[derive(Debug, Clone, Copy)]
pub struct Satisfaction {
    pub sum: i64,
    pub count: i64,
    pub average: f64,
    pub version: i64,
}

pub async fn add_feedback(
    tx: &mut Tx,
    id: Uuid,
    satisfaction: i32,
) -> Result<Satisfaction, sqlx::Error> {
    sqlx::query_as!(
        Satisfaction,
        r#"UPDATE workshops SET satisfaction_sum = satisfaction_sum + $2,
            feedback_count = feedback_count + 1, stats_version = stats_version + 1
         WHERE id = $1
         RETURNING satisfaction_sum AS sum, feedback_count AS count,
                   average_satisfaction::float8 AS "average!", stats_version AS version"#,
        id,
        i64::from(satisfaction)
    )
    .fetch_one(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct FacilitatorRow {
    pub workshop_id: Uuid,
    pub facilitator_id: Uuid,
    pub role: FacilitatorRole,
    pub added_at: DateTime<Utc>,
}

pub async fn upsert_facilitator(
    tx: &mut Tx,
    workshop_id: WorkshopId,
    facilitator_id: UserId,
    role: FacilitatorRole,
) -> Result<FacilitatorRow, ApiError> {
    sqlx::query_as!(
        FacilitatorRow,
        "INSERT INTO workshop_facilitators (workshop_id, facilitator_id, role)
         VALUES ($1, $2, $3)
         ON CONFLICT (workshop_id, facilitator_id) DO UPDATE SET role = EXCLUDED.role
         RETURNING workshop_id, facilitator_id, role, added_at",
        workshop_id.get(),
        facilitator_id.get(),
        role as _
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "workshop"))
}

pub async fn remove_facilitator(
    tx: &mut Tx,
    workshop_id: WorkshopId,
    facilitator_id: UserId,
) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query!(
        "DELETE FROM workshop_facilitators WHERE workshop_id = $1 AND facilitator_id = $2",
        workshop_id.get(),
        facilitator_id.get()
    )
    .execute(tx.conn())
    .await?;
    Ok(removed.rows_affected() == 1)
}

pub async fn facilitators(
    tx: &mut Tx,
    workshop_id: WorkshopId,
) -> Result<Vec<FacilitatorRow>, sqlx::Error> {
    sqlx::query_as!(
        FacilitatorRow,
        "SELECT workshop_id, facilitator_id, role, added_at FROM workshop_facilitators
         WHERE workshop_id = $1 ORDER BY added_at, facilitator_id",
        workshop_id.get()
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn facilitates(
    tx: &mut Tx,
    workshop_id: WorkshopId,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM workshop_facilitators
                          WHERE workshop_id = $1 AND facilitator_id = $2) AS "facilitates!""#,
        workshop_id.get(),
        user_id.get()
    )
    .fetch_one(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct FeedbackRow {
    pub id: Uuid,
    pub workshop_id: Uuid,
    pub registration_id: Uuid,
    pub user_id: Uuid,
    pub overall_satisfaction: i32,
    pub content_rating: Option<i32>,
    pub delivery_rating: Option<i32>,
    pub interaction_rating: Option<i32>,
    pub nps_score: Option<i32>,
    pub would_recommend: bool,
    pub what_went_well: String,
    pub what_could_improve: String,
    pub created_at: DateTime<Utc>,
}

/// A feedback, validated, before it is stored.
#[derive(Debug, Clone)]
pub struct NewFeedback {
    pub overall_satisfaction: i32,
    pub content_rating: Option<i32>,
    pub delivery_rating: Option<i32>,
    pub interaction_rating: Option<i32>,
    pub nps_score: Option<i32>,
    pub would_recommend: bool,
    pub what_went_well: String,
    pub what_could_improve: String,
}

pub async fn insert_feedback(
    tx: &mut Tx,
    workshop_id: WorkshopId,
    registration_id: Uuid,
    user_id: UserId,
    feedback: NewFeedback,
) -> Result<FeedbackRow, ApiError> {
    sqlx::query_as!(
        FeedbackRow,
        "INSERT INTO workshop_feedback (id, workshop_id, registration_id, user_id,
            overall_satisfaction, content_rating, delivery_rating, interaction_rating, nps_score,
            would_recommend, what_went_well, what_could_improve)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING id, workshop_id, registration_id, user_id, overall_satisfaction,
                   content_rating, delivery_rating, interaction_rating, nps_score,
                   would_recommend, what_went_well, what_could_improve, created_at",
        Uuid::now_v7(),
        workshop_id.get(),
        registration_id,
        user_id.get(),
        feedback.overall_satisfaction,
        feedback.content_rating,
        feedback.delivery_rating,
        feedback.interaction_rating,
        feedback.nps_score,
        feedback.would_recommend,
        feedback.what_went_well,
        feedback.what_could_improve
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "workshop"))
}

pub async fn list_feedback(
    tx: &mut Tx,
    workshop_id: WorkshopId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<FeedbackRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        FeedbackRow,
        "SELECT id, workshop_id, registration_id, user_id, overall_satisfaction, content_rating,
                delivery_rating, interaction_rating, nps_score, would_recommend, what_went_well,
                what_could_improve, created_at
         FROM workshop_feedback
         WHERE workshop_id = $1
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
         ORDER BY created_at DESC, id DESC
         LIMIT $4",
        workshop_id.get(),
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// Share-locks the workshop for a registration: a cancellation (which locks it for
/// update) waits for registrations in flight and they for it, so none is left registered
/// in a cancelled workshop. Share locks do not queue behind each other.
pub async fn share_lock(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT share_lock_workshop($1)", id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// What a registration made in this transaction pays: the database's clock decides the
/// early bird, as the column rules that check the registration do.
pub async fn registration_price(tx: &mut Tx, id: Uuid) -> Result<(i64, String), sqlx::Error> {
    let terms = sqlx::query!(
        r#"SELECT price_minor AS "price_minor!", currency AS "currency!"
           FROM workshop_registration_terms($1)"#,
        id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok((terms.price_minor, terms.currency))
}
