use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::access::CourseScope;
use crate::domain::enrollment::EnrollmentTerms;
use crate::domain::{CourseStatus, EnrollmentType, OrganizationId, UserId, Visibility};

#[derive(Debug, Clone)]
pub struct CourseRow {
    pub id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub what_you_will_learn: Vec<String>,
    pub target_audience: Vec<String>,
    pub price_minor: i64,
    pub currency: String,
    pub status: CourseStatus,
    pub visibility: Visibility,
    pub certificate_enabled: bool,
    pub certificate_template_url: String,
    pub allow_comments: bool,
    pub allow_questions: bool,
    pub drip_content: bool,
    pub drip_schedule: serde_json::Value,
    pub cohort_based: bool,
    pub default_duration_weeks: Option<i32>,
    pub enrollment_type: EnrollmentType,
    pub enrolled_count: i64,
    pub completed_count: i64,
    pub rating_sum: i64,
    pub review_count: i64,
    pub average_rating: f64,
    pub lesson_count: i32,
    pub counts_version: i64,
    /// Bumped by every change of the row, under its lock: the version of status events.
    pub version: i64,
    /// What the course's payments brought in, less refunds, in its currency.
    pub total_revenue_minor: i64,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CourseRow {
    /// What the access matrix reads of the course.
    pub fn scope(&self) -> CourseScope {
        CourseScope {
            instructor_id: self.instructor_id,
            organization_id: self.organization_id,
            status: self.status,
            visibility: self.visibility,
        }
    }

    /// What enrolling reads of the course.
    pub fn enrollment_terms(&self) -> EnrollmentTerms {
        EnrollmentTerms {
            status: self.status,
            enrollment_type: self.enrollment_type,
            price_minor: self.price_minor,
        }
    }
}

/// Every editable field of a course, fully validated.
#[derive(Debug, Clone)]
pub struct CourseFields {
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    pub what_you_will_learn: Vec<String>,
    pub target_audience: Vec<String>,
    pub price_minor: i64,
    pub currency: String,
    pub visibility: Visibility,
    pub certificate_enabled: bool,
    pub certificate_template_url: String,
    pub allow_comments: bool,
    pub allow_questions: bool,
    pub drip_content: bool,
    pub drip_schedule: serde_json::Value,
    pub cohort_based: bool,
    pub default_duration_weeks: Option<i32>,
    pub enrollment_type: EnrollmentType,
}

pub async fn insert(
    tx: &mut Tx,
    instructor_id: UserId,
    organization_id: Option<OrganizationId>,
    fields: CourseFields,
) -> Result<CourseRow, ApiError> {
    sqlx::query_as!(
        CourseRow,
        "INSERT INTO courses (id, instructor_id, organization_id, title, description, category, tags,
            what_you_will_learn, target_audience, price_minor, currency, visibility,
            certificate_enabled, certificate_template_url, allow_comments, allow_questions,
            drip_content, drip_schedule, cohort_based, default_duration_weeks, enrollment_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
         RETURNING id, instructor_id, organization_id, title, description, category, tags,
                what_you_will_learn, target_audience, price_minor, currency, status,
                visibility, certificate_enabled, certificate_template_url,
                allow_comments, allow_questions, drip_content, drip_schedule,
                cohort_based, default_duration_weeks, enrollment_type,
                enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"enrolled_count!\",
                completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                   FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"completed_count!\",
                rating_sum, review_count, average_rating::float8 AS \"average_rating!\",
                lesson_count, counts_version, version, total_revenue_minor, published_at, created_at,
                updated_at",
        Uuid::now_v7(),
        instructor_id.get(),
        organization_id.map(OrganizationId::get),
        fields.title,
        fields.description,
        fields.category,
        &fields.tags,
        &fields.what_you_will_learn,
        &fields.target_audience,
        fields.price_minor,
        fields.currency,
        fields.visibility as _,
        fields.certificate_enabled,
        fields.certificate_template_url,
        fields.allow_comments,
        fields.allow_questions,
        fields.drip_content,
        fields.drip_schedule,
        fields.cohort_based,
        fields.default_duration_weeks,
        fields.enrollment_type as _
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<CourseRow>, sqlx::Error> {
    sqlx::query_as!(
        CourseRow,
        "SELECT id, instructor_id, organization_id, title, description, category, tags,
                what_you_will_learn, target_audience, price_minor, currency, status,
                visibility, certificate_enabled, certificate_template_url,
                allow_comments, allow_questions, drip_content, drip_schedule,
                cohort_based, default_duration_weeks, enrollment_type,
                enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"enrolled_count!\",
                completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                   FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"completed_count!\",
                rating_sum, review_count, average_rating::float8 AS \"average_rating!\",
                lesson_count, counts_version, version, total_revenue_minor, published_at, created_at,
                updated_at FROM courses WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The course, locked until the end of the transaction (content positions, statistics).
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<CourseRow>, sqlx::Error> {
    sqlx::query_as!(
        CourseRow,
        "SELECT id, instructor_id, organization_id, title, description, category, tags,
                what_you_will_learn, target_audience, price_minor, currency, status,
                visibility, certificate_enabled, certificate_template_url,
                allow_comments, allow_questions, drip_content, drip_schedule,
                cohort_based, default_duration_weeks, enrollment_type,
                enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"enrolled_count!\",
                completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                   FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"completed_count!\",
                rating_sum, review_count, average_rating::float8 AS \"average_rating!\",
                lesson_count, counts_version, version, total_revenue_minor, published_at, created_at,
                updated_at FROM courses WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Replaces every editable field (the API merges the update mask into the stored course).
pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    fields: CourseFields,
) -> Result<Option<CourseRow>, ApiError> {
    sqlx::query_as!(
        CourseRow,
        "UPDATE courses SET title = $2, description = $3, category = $4, tags = $5,
            what_you_will_learn = $6, target_audience = $7, price_minor = $8, currency = $9,
            visibility = $10, certificate_enabled = $11, certificate_template_url = $12,
            allow_comments = $13, allow_questions = $14, drip_content = $15, drip_schedule = $16,
            cohort_based = $17, default_duration_weeks = $18, enrollment_type = $19, version = version + 1,
            updated_at = now()
         WHERE id = $1
         RETURNING id, instructor_id, organization_id, title, description, category, tags,
                what_you_will_learn, target_audience, price_minor, currency, status,
                visibility, certificate_enabled, certificate_template_url,
                allow_comments, allow_questions, drip_content, drip_schedule,
                cohort_based, default_duration_weeks, enrollment_type,
                enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"enrolled_count!\",
                completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                   FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"completed_count!\",
                rating_sum, review_count, average_rating::float8 AS \"average_rating!\",
                lesson_count, counts_version, version, total_revenue_minor, published_at, created_at,
                updated_at",
        id,
        fields.title,
        fields.description,
        fields.category,
        &fields.tags,
        &fields.what_you_will_learn,
        &fields.target_audience,
        fields.price_minor,
        fields.currency,
        fields.visibility as _,
        fields.certificate_enabled,
        fields.certificate_template_url,
        fields.allow_comments,
        fields.allow_questions,
        fields.drip_content,
        fields.drip_schedule,
        fields.cohort_based,
        fields.default_duration_weeks,
        fields.enrollment_type as _
    )
    .fetch_optional(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))
}

pub async fn set_status(
    tx: &mut Tx,
    id: Uuid,
    status: CourseStatus,
) -> Result<CourseRow, sqlx::Error> {
    sqlx::query_as!(
        CourseRow,
        "UPDATE courses SET status = $2,
            published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END,
            archived_at = CASE WHEN $2 = 'archived' THEN now() ELSE archived_at END,
            version = version + 1, updated_at = now()
         WHERE id = $1
         RETURNING id, instructor_id, organization_id, title, description, category, tags,
                what_you_will_learn, target_audience, price_minor, currency, status,
                visibility, certificate_enabled, certificate_template_url,
                allow_comments, allow_questions, drip_content, drip_schedule,
                cohort_based, default_duration_weeks, enrollment_type,
                enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"enrolled_count!\",
                completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                   FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"completed_count!\",
                rating_sum, review_count, average_rating::float8 AS \"average_rating!\",
                lesson_count, counts_version, version, total_revenue_minor, published_at, created_at,
                updated_at",
        id,
        status as _
    )
    .fetch_one(tx.conn())
    .await
}

/// Catalogue filters; `None` leaves a dimension open.
#[derive(Debug)]
pub struct CatalogueFilter {
    pub status: CourseStatus,
    pub query: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub instructor_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub min_price_minor: Option<i64>,
    pub max_price_minor: Option<i64>,
}

impl Default for CatalogueFilter {
    /// The public catalogue: published courses, every other dimension open.
    fn default() -> Self {
        Self {
            status: CourseStatus::Published,
            query: None,
            category: None,
            tags: Vec::new(),
            instructor_id: None,
            organization_id: None,
            min_price_minor: None,
            max_price_minor: None,
        }
    }
}

/// A page in (created_at, id) descending order after the given position; row-level
/// security narrows it to the courses the caller may see.
pub async fn list(
    tx: &mut Tx,
    filter: &CatalogueFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CourseRow>, sqlx::Error> {
    sqlx::query_as!(
        CourseRow,
        "SELECT id, instructor_id, organization_id, title, description, category, tags,
                what_you_will_learn, target_audience, price_minor, currency, status,
                visibility, certificate_enabled, certificate_template_url,
                allow_comments, allow_questions, drip_content, drip_schedule,
                cohort_based, default_duration_weeks, enrollment_type,
                enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"enrolled_count!\",
                completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                   FROM course_count_slots s WHERE s.course_id = courses.id)
                  AS \"completed_count!\",
                rating_sum, review_count, average_rating::float8 AS \"average_rating!\",
                lesson_count, counts_version, version, total_revenue_minor, published_at, created_at,
                updated_at FROM courses
         WHERE status = $1
           AND ($2::text IS NULL OR search_vector @@ websearch_to_tsquery('english', $2))
           AND ($3::text IS NULL OR category = $3)
           AND (cardinality($4::text[]) = 0 OR tags @> $4)
           AND ($5::uuid IS NULL OR instructor_id = $5)
           AND ($6::uuid IS NULL OR organization_id = $6)
           AND ($7::bigint IS NULL OR price_minor >= $7)
           AND ($8::bigint IS NULL OR price_minor <= $8)
           AND ($9::timestamptz IS NULL OR (created_at, id) < ($9, $10))
         ORDER BY created_at DESC, id DESC
         LIMIT $11",
        filter.status as _,
        filter.query.as_deref(),
        filter.category.as_deref(),
        &filter.tags,
        filter.instructor_id,
        filter.organization_id,
        filter.min_price_minor,
        filter.max_price_minor,
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// Changes the enrollment statistics by the given deltas, in one of the course's count
/// slots (learning migration 0009): the course row itself is not locked.
pub async fn add_to_enrollment_counts(
    tx: &mut Tx,
    id: Uuid,
    enrolled: i64,
    completed: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "SELECT add_to_course_counts($1, $2, $3)",
        id,
        enrolled,
        completed
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A course's rating statistics after a change.
#[derive(Debug, Clone, Copy)]
pub struct Ratings {
    pub average: f64,
    pub count: i64,
    pub sum: i64,
    /// Orders the rating events of the course.
    pub version: i64,
}

/// Changes the rating statistics and returns them with their new version.
pub async fn add_to_ratings(
    tx: &mut Tx,
    id: Uuid,
    sum: i64,
    count: i64,
) -> Result<Ratings, sqlx::Error> {
    sqlx::query_as!(
        Ratings,
        r#"UPDATE courses SET rating_sum = rating_sum + $2, review_count = review_count + $3,
              rating_version = rating_version + 1
           WHERE id = $1
           RETURNING average_rating::float8 AS "average!", review_count AS count,
                     rating_sum AS sum, rating_version AS version"#,
        id,
        sum,
        count
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn add_lesson(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE courses SET lesson_count = lesson_count + 1, version = version + 1, updated_at = now()
         WHERE id = $1",
        id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Takes `count` deleted lessons off the course's lesson count (bookkeeping).
pub async fn remove_lessons(tx: &mut Tx, id: Uuid, count: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE courses SET lesson_count = lesson_count - $2::int, version = version + 1,
                updated_at = now()
         WHERE id = $1",
        id,
        i32::try_from(count).unwrap_or(i32::MAX)
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Deletes a draft that was never published; false when row security or its state keeps
/// it (see migration 0014).
pub async fn delete_draft(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM courses WHERE id = $1 AND status = 'draft' AND published_at IS NULL",
        id
    )
    .execute(tx.conn())
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Adds a payment (or, negative, a refund) to the course's revenue (bookkeeping), only
/// when it is in the course's currency: amounts in two currencies are never added.
pub async fn add_revenue(
    tx: &mut Tx,
    id: Uuid,
    delta_minor: i64,
    currency: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE courses SET total_revenue_minor = total_revenue_minor + $2
         WHERE id = $1 AND currency = $3",
        id,
        delta_minor,
        currency
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
