use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::{CourseId, EnrollmentId, ReviewId, UserId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    pub id: Uuid,
    pub course_id: Uuid,
    pub student_id: Uuid,
    pub instructor_id: Uuid,
    pub rating: i32,
    pub content_quality_rating: Option<i32>,
    pub instructor_rating: Option<i32>,
    pub value_rating: Option<i32>,
    pub title: String,
    pub review_text: String,
    pub instructor_response: Option<String>,
    pub responded_at: Option<DateTime<Utc>>,
    pub helpful_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The content of a review, validated.
#[derive(Debug, Clone)]
pub struct ReviewContent {
    pub rating: i32,
    pub content_quality_rating: Option<i32>,
    pub instructor_rating: Option<i32>,
    pub value_rating: Option<i32>,
    pub title: String,
    pub text: String,
}

pub async fn insert(
    tx: &mut Tx,
    course_id: CourseId,
    student_id: UserId,
    enrollment_id: EnrollmentId,
    instructor_id: UserId,
    content: ReviewContent,
) -> Result<ReviewRow, ApiError> {
    sqlx::query_as!(
        ReviewRow,
        "INSERT INTO course_reviews (id, course_id, student_id, enrollment_id, instructor_id, rating,
            content_quality_rating, instructor_rating, value_rating, title, review_text)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at",
        Uuid::now_v7(),
        course_id.get(),
        student_id.get(),
        enrollment_id.get(),
        instructor_id.get(),
        content.rating,
        content.content_quality_rating,
        content.instructor_rating,
        content.value_rating,
        content.title,
        content.text
    )
    .fetch_one(tx.conn())
    .await
    .map_err(|e| write_error(e, "course"))
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        "SELECT id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at FROM course_reviews WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        "SELECT id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at FROM course_reviews WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn update_content(
    tx: &mut Tx,
    id: Uuid,
    content: ReviewContent,
) -> Result<ReviewRow, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        "UPDATE course_reviews SET rating = $2, content_quality_rating = $3, instructor_rating = $4,
            value_rating = $5, title = $6, review_text = $7, updated_at = now()
         WHERE id = $1 RETURNING id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at",
        id,
        content.rating,
        content.content_quality_rating,
        content.instructor_rating,
        content.value_rating,
        content.title,
        content.text
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn respond(tx: &mut Tx, id: Uuid, response: String) -> Result<ReviewRow, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        "UPDATE course_reviews SET instructor_response = $2, responded_at = now() WHERE id = $1 RETURNING id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at",
        id,
        response
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM course_reviews WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn list(
    tx: &mut Tx,
    course_id: CourseId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        "SELECT id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at FROM course_reviews
         WHERE course_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
        course_id.get(),
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

/// Adds the voter's helpful vote, or withdraws it when it exists; returns whether the
/// vote stands now.
pub async fn toggle_vote(
    tx: &mut Tx,
    review_id: ReviewId,
    voter_id: UserId,
) -> Result<bool, ApiError> {
    let added = sqlx::query!(
        "INSERT INTO review_votes (review_id, voter_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        review_id.get(),
        voter_id.get()
    )
    .execute(tx.conn())
    .await
    // The review was deleted meanwhile.
    .map_err(|e| write_error(e, "review"))?
    .rows_affected()
        == 1;
    if !added {
        sqlx::query!(
            "DELETE FROM review_votes WHERE review_id = $1 AND voter_id = $2",
            review_id.get(),
            voter_id.get()
        )
        .execute(tx.conn())
        .await?;
    }
    Ok(added)
}

pub async fn add_to_helpful_count(
    tx: &mut Tx,
    review_id: Uuid,
    delta: i64,
) -> Result<ReviewRow, ApiError> {
    sqlx::query_as!(
        ReviewRow,
        "UPDATE course_reviews SET helpful_count = helpful_count + $2 WHERE id = $1 RETURNING id, course_id, student_id, instructor_id, rating,
                content_quality_rating, instructor_rating, value_rating, title,
                review_text, instructor_response, responded_at, helpful_count,
                created_at, updated_at",
        review_id,
        delta
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| ApiError::not_found("review"))
}
