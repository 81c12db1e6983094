//! The projections of other contexts' events. Each update applies only when its version
//! is newer than the one stored, so redelivered or reordered events change nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::domain::{CourseId, UserId};

struct CourseState {
    status: String,
    status_version: i64,
    rating_sum: i64,
    review_count: i64,
    rating_version: i64,
}

/// The course's projection row, created empty if need be and locked, so that concurrent
/// consumers (replicas) apply their events to it one after the other.
async fn lock_course(
    tx: &mut Tx,
    course_id: CourseId,
    instructor_id: UserId,
) -> Result<CourseState, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO course_projection (course_id, instructor_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        course_id.get(),
        instructor_id.get()
    )
        .execute(tx.conn())
        .await?;
    sqlx::query_as!(
        CourseState,
        "SELECT status, status_version, rating_sum, review_count, rating_version
         FROM course_projection WHERE course_id = $1 FOR UPDATE",
        course_id.get()
    )
    .fetch_one(tx.conn())
    .await
}

/// Applies a course's new status; returns how the number of the instructor's published
/// courses changed (-1, 0 or +1).
pub async fn course_status(
    tx: &mut Tx,
    course_id: CourseId,
    instructor_id: UserId,
    title: &str,
    status: &str,
    version: i64,
) -> Result<i64, sqlx::Error> {
    let previous = lock_course(tx, course_id, instructor_id).await?;
    if previous.status_version >= version {
        return Ok(0);
    }
    sqlx::query!(
        "UPDATE course_projection SET title = $2, status = $3, status_version = $4 WHERE course_id = $1",
        course_id.get(),
        title,
        status,
        version
    )
        .execute(tx.conn())
        .await?;
    Ok(i64::from(status == "published") - i64::from(previous.status == "published"))
}

/// Applies a course's new rating totals; returns the change of (sum, count).
pub async fn course_rating(
    tx: &mut Tx,
    course_id: CourseId,
    instructor_id: UserId,
    rating: (i64, i64),
    version: i64,
) -> Result<(i64, i64), sqlx::Error> {
    let previous = lock_course(tx, course_id, instructor_id).await?;
    if previous.rating_version >= version {
        return Ok((0, 0));
    }
    sqlx::query!(
        "UPDATE course_projection SET rating_sum = $2, review_count = $3, rating_version = $4 WHERE course_id = $1",
        course_id.get(),
        rating.0,
        rating.1,
        version
    )
        .execute(tx.conn())
        .await?;
    Ok((
        rating.0 - previous.rating_sum,
        rating.1 - previous.review_count,
    ))
}

/// Adds to an instructor's statistics (creating the row on first use): O(1) per event.
pub async fn add_to_stats(
    tx: &mut Tx,
    instructor_id: Uuid,
    students: i64,
    courses: i64,
    rating: (i64, i64),
) -> Result<(), sqlx::Error> {
    if students == 0 && courses == 0 && rating == (0, 0) {
        return Ok(());
    }
    // Deltas can be negative (a course archived, a review deleted), and the CHECKs of a
    // row proposed by INSERT ... ON CONFLICT hold before the conflict is found: the row
    // is created empty, then changed.
    sqlx::query!(
        "INSERT INTO instructor_stats (instructor_id) VALUES ($1) ON CONFLICT DO NOTHING",
        instructor_id
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE instructor_stats SET total_students = total_students + $2,
           total_courses = total_courses + $3, rating_sum = rating_sum + $4,
           review_count = review_count + $5
         WHERE instructor_id = $1",
        instructor_id,
        students,
        courses,
        rating.0,
        rating.1
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The instructor of an enrollment, as learning's events told it.
pub async fn enrollment_instructor(
    tx: &mut Tx,
    enrollment_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT instructor_id FROM enrollment_projection WHERE enrollment_id = $1",
        enrollment_id
    )
    .fetch_optional(tx.conn())
    .await
}

pub struct EnrollmentState {
    pub enrollment_id: Uuid,
    pub course_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub student_id: Uuid,
    pub status: String,
    pub price_minor: i64,
    pub currency: String,
    /// When the student enrolled (the same in every event of the enrollment).
    pub enrolled_at: DateTime<Utc>,
    pub version: i64,
}

/// One of learning's enrollment events, as this projection applies it.
pub struct EnrollmentChange<'a> {
    pub state: EnrollmentState,
    /// Names the course while its projection has no title yet.
    pub course_title: &'a str,
    /// The timeline entry the change makes, and when.
    pub activity: Option<(&'static str, DateTime<Utc>)>,
    /// An activation counts the student once among the instructor's students.
    pub activation: bool,
}

/// Applies an enrollment's event in one statement (instructor migration 0008): its state
/// (status, price and currency with a newer version only; what never changes completes a
/// row that the enrollment's progress created before any of its own events arrived), the
/// course's counts by the change of status, the timeline and the distinct students.
pub async fn apply_enrollment_change(
    tx: &mut Tx,
    change: EnrollmentChange<'_>,
) -> Result<(), sqlx::Error> {
    let state = change.state;
    sqlx::query!(
        "SELECT apply_enrollment_change($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                        $14, $15)",
        state.enrollment_id,
        state.course_id,
        state.instructor_id,
        state.organization_id,
        state.student_id,
        &state.status,
        state.price_minor,
        &state.currency,
        state.enrolled_at,
        state.version,
        change.course_title,
        Uuid::now_v7(),
        change.activity.map(|(activity_type, _)| activity_type),
        change.activity.map(|(_, at)| at),
        change.activation
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub struct ProgressState {
    pub enrollment_id: Uuid,
    pub course_id: Uuid,
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub student_id: Uuid,
    pub progress_percentage: f64,
    pub completed_lessons: i32,
    pub total_lessons: i32,
    pub at: DateTime<Utc>,
    pub version: i64,
}

/// Applies a student's progress when its version is newer. Progress that arrives before
/// any event of its enrollment creates the row with what it knows; the enrollment's
/// events complete it (see [`enrollment_status`]).
pub async fn enrollment_progress(tx: &mut Tx, state: ProgressState) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO enrollment_projection AS p (enrollment_id, course_id, instructor_id, organization_id,
            student_id, status, progress_percentage, completed_lessons, total_lessons, enrolled_at,
            last_activity_at, progress_version)
         VALUES ($1, $2, $3, $4, $5, 'active', $6::float8, $7, $8, $9, $9, $10)
         ON CONFLICT (enrollment_id) DO UPDATE SET
            progress_percentage = CASE WHEN p.progress_version < EXCLUDED.progress_version
                                       THEN EXCLUDED.progress_percentage ELSE p.progress_percentage END,
            completed_lessons = CASE WHEN p.progress_version < EXCLUDED.progress_version
                                     THEN EXCLUDED.completed_lessons ELSE p.completed_lessons END,
            total_lessons = CASE WHEN p.progress_version < EXCLUDED.progress_version
                                 THEN EXCLUDED.total_lessons ELSE p.total_lessons END,
            progress_version = greatest(p.progress_version, EXCLUDED.progress_version),
            organization_id = coalesce(p.organization_id, EXCLUDED.organization_id),
            last_activity_at = greatest(p.last_activity_at, EXCLUDED.last_activity_at)",
        state.enrollment_id,
        state.course_id,
        state.instructor_id,
        state.organization_id,
        state.student_id,
        state.progress_percentage,
        state.completed_lessons,
        state.total_lessons,
        state.at,
        state.version
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub struct NewActivity {
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub student_id: Uuid,
    pub activity_type: &'static str,
    pub course_id: Option<Uuid>,
    pub lesson_id: Option<Uuid>,
    pub workshop_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

pub async fn add_activity(tx: &mut Tx, activity: NewActivity) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO student_activity (id, instructor_id, organization_id, student_id, activity_type, course_id,
            lesson_id, workshop_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Uuid::now_v7(),
        activity.instructor_id,
        activity.organization_id,
        activity.student_id,
        activity.activity_type,
        activity.course_id,
        activity.lesson_id,
        activity.workshop_id,
        activity.at
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn directory_entry(
    tx: &mut Tx,
    user_id: Uuid,
    full_name: &str,
    email: &str,
    avatar_url: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO student_directory (user_id, full_name, email, avatar_url, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id) DO UPDATE SET full_name = EXCLUDED.full_name, email = EXCLUDED.email,
            avatar_url = EXCLUDED.avatar_url, version = EXCLUDED.version
         WHERE student_directory.version < EXCLUDED.version",
        user_id,
        full_name,
        email,
        avatar_url,
        version
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
