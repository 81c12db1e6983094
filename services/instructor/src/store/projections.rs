//! The projections of other contexts' events. Each update applies only when its version
//! is newer than the one stored, so redelivered or reordered events change nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// Applies a course's new status; returns how the number of the instructor's published
/// courses changed (-1, 0 or +1).
pub async fn course_status(
    tx: &mut Tx,
    course_id: Uuid,
    instructor_id: Uuid,
    title: &str,
    status: &str,
    version: i64,
) -> Result<i64, sqlx::Error> {
    let previous: Option<(String, i64)> = sqlx::query_as(
        "SELECT status, status_version FROM course_projection WHERE course_id = $1 FOR UPDATE",
    )
    .bind(course_id)
    .fetch_optional(tx.conn())
    .await?;
    if previous.as_ref().is_some_and(|p| p.1 >= version) {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO course_projection (course_id, instructor_id, title, status, status_version)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (course_id) DO UPDATE SET title = EXCLUDED.title, status = EXCLUDED.status,
            status_version = EXCLUDED.status_version",
    )
    .bind(course_id)
    .bind(instructor_id)
    .bind(title)
    .bind(status)
    .bind(version)
    .execute(tx.conn())
    .await?;
    let was_published = previous.is_some_and(|p| p.0 == "published");
    Ok(i64::from(status == "published") - i64::from(was_published))
}

pub async fn course_counts(
    tx: &mut Tx,
    course_id: Uuid,
    instructor_id: Uuid,
    title: &str,
    counts: (i64, i64),
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO course_projection (course_id, instructor_id, title, enrolled_count, completed_count, counts_version)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (course_id) DO UPDATE SET enrolled_count = EXCLUDED.enrolled_count,
            completed_count = EXCLUDED.completed_count, counts_version = EXCLUDED.counts_version,
            title = CASE WHEN course_projection.title = '' THEN EXCLUDED.title ELSE course_projection.title END
         WHERE course_projection.counts_version < EXCLUDED.counts_version",
    )
    .bind(course_id)
    .bind(instructor_id)
    .bind(title)
    .bind(counts.0)
    .bind(counts.1)
    .bind(version)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Applies a course's new rating totals; returns the change of (sum, count).
pub async fn course_rating(
    tx: &mut Tx,
    course_id: Uuid,
    instructor_id: Uuid,
    rating: (i64, i64),
    version: i64,
) -> Result<(i64, i64), sqlx::Error> {
    let previous: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT rating_sum, review_count, rating_version FROM course_projection WHERE course_id = $1 FOR UPDATE",
    )
    .bind(course_id)
    .fetch_optional(tx.conn())
    .await?;
    if previous.is_some_and(|p| p.2 >= version) {
        return Ok((0, 0));
    }
    sqlx::query(
        "INSERT INTO course_projection (course_id, instructor_id, rating_sum, review_count, rating_version)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (course_id) DO UPDATE SET rating_sum = EXCLUDED.rating_sum,
            review_count = EXCLUDED.review_count, rating_version = EXCLUDED.rating_version",
    )
    .bind(course_id)
    .bind(instructor_id)
    .bind(rating.0)
    .bind(rating.1)
    .bind(version)
    .execute(tx.conn())
    .await?;
    let (old_sum, old_count) = previous.map(|p| (p.0, p.1)).unwrap_or((0, 0));
    Ok((rating.0 - old_sum, rating.1 - old_count))
}

/// Counts a student once per instructor; returns whether they are new.
pub async fn add_student(
    tx: &mut Tx,
    instructor_id: Uuid,
    student_id: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO instructor_students (instructor_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(instructor_id)
    .bind(student_id)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1)
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
    sqlx::query(
        "INSERT INTO instructor_stats (instructor_id, total_students, total_courses, rating_sum, review_count)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (instructor_id) DO UPDATE SET
           total_students = instructor_stats.total_students + EXCLUDED.total_students,
           total_courses = instructor_stats.total_courses + EXCLUDED.total_courses,
           rating_sum = instructor_stats.rating_sum + EXCLUDED.rating_sum,
           review_count = instructor_stats.review_count + EXCLUDED.review_count",
    )
    .bind(instructor_id)
    .bind(students)
    .bind(courses)
    .bind(rating.0)
    .bind(rating.1)
    .execute(tx.conn())
    .await?;
    Ok(())
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
    pub at: DateTime<Utc>,
    pub version: i64,
}

pub async fn enrollment_status(tx: &mut Tx, state: EnrollmentState) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO enrollment_projection (enrollment_id, course_id, instructor_id, organization_id, student_id,
            status, price_minor, currency, enrolled_at, last_activity_at, status_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
         ON CONFLICT (enrollment_id) DO UPDATE SET status = EXCLUDED.status, price_minor = EXCLUDED.price_minor,
            status_version = EXCLUDED.status_version
         WHERE enrollment_projection.status_version < EXCLUDED.status_version",
    )
    .bind(state.enrollment_id)
    .bind(state.course_id)
    .bind(state.instructor_id)
    .bind(state.organization_id)
    .bind(state.student_id)
    .bind(&state.status)
    .bind(state.price_minor)
    .bind(&state.currency)
    .bind(state.at)
    .bind(state.version)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub struct ProgressState {
    pub enrollment_id: Uuid,
    pub course_id: Uuid,
    pub instructor_id: Uuid,
    pub student_id: Uuid,
    pub progress_percentage: f64,
    pub completed_lessons: i32,
    pub total_lessons: i32,
    pub at: DateTime<Utc>,
    pub version: i64,
}

pub async fn enrollment_progress(tx: &mut Tx, state: ProgressState) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO enrollment_projection (enrollment_id, course_id, instructor_id, student_id, status,
            progress_percentage, completed_lessons, total_lessons, enrolled_at, last_activity_at, progress_version)
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $8, $9)
         ON CONFLICT (enrollment_id) DO UPDATE SET progress_percentage = EXCLUDED.progress_percentage,
            completed_lessons = EXCLUDED.completed_lessons, total_lessons = EXCLUDED.total_lessons,
            last_activity_at = greatest(enrollment_projection.last_activity_at, EXCLUDED.last_activity_at),
            progress_version = EXCLUDED.progress_version
         WHERE enrollment_projection.progress_version < EXCLUDED.progress_version",
    )
    .bind(state.enrollment_id)
    .bind(state.course_id)
    .bind(state.instructor_id)
    .bind(state.student_id)
    .bind(state.progress_percentage)
    .bind(state.completed_lessons)
    .bind(state.total_lessons)
    .bind(state.at)
    .bind(state.version)
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
    pub at: DateTime<Utc>,
}

pub async fn add_activity(tx: &mut Tx, activity: NewActivity) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO student_activity (id, instructor_id, organization_id, student_id, activity_type, course_id,
            lesson_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(activity.instructor_id)
    .bind(activity.organization_id)
    .bind(activity.student_id)
    .bind(activity.activity_type)
    .bind(activity.course_id)
    .bind(activity.lesson_id)
    .bind(activity.at)
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
    sqlx::query(
        "INSERT INTO student_directory (user_id, full_name, email, avatar_url, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id) DO UPDATE SET full_name = EXCLUDED.full_name, email = EXCLUDED.email,
            avatar_url = EXCLUDED.avatar_url, version = EXCLUDED.version
         WHERE student_directory.version < EXCLUDED.version",
    )
    .bind(user_id)
    .bind(full_name)
    .bind(email)
    .bind(avatar_url)
    .bind(version)
    .execute(tx.conn())
    .await?;
    Ok(())
}
