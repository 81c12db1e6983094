use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use super::enrollments::EnrollmentRow;
use crate::domain::progress::LessonState;
use crate::domain::{EnrollmentId, LessonId};
use crate::domain::{LessonProgressStatus, ProgressTotals, engagement_score, progress_percentage};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StudentProgressRow {
    pub enrollment_id: Uuid,
    pub course_id: Uuid,
    pub student_id: Uuid,
    pub total_lessons: i32,
    pub completed_lessons: i32,
    pub progress_percentage: f64,
    pub total_watch_time_seconds: i64,
    pub quizzes_taken: i32,
    pub quizzes_passed: i32,
    pub quiz_score_sum: i64,
    pub engagement_score: i32,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub certificate_url: String,
    /// Bumped by every save, under the row's lock: the version of progress events.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LessonProgressRow {
    pub lesson_id: Uuid,
    pub status: LessonProgressStatus,
    pub progress_percent: i32,
    pub watch_time_seconds: i64,
    pub quiz_score: Option<i32>,
    pub quiz_passed: Option<bool>,
    pub updated_at: DateTime<Utc>,
}

impl StudentProgressRow {
    /// The running totals, against the course's current lessons and duration.
    pub fn totals(&self, total_lessons: i32, course_duration_seconds: i64) -> ProgressTotals {
        ProgressTotals {
            total_lessons,
            completed_lessons: self.completed_lessons,
            total_watch_time_seconds: self.total_watch_time_seconds,
            course_duration_seconds,
            quizzes_taken: self.quizzes_taken,
            quizzes_passed: self.quizzes_passed,
            quiz_score_sum: self.quiz_score_sum,
        }
    }

    /// Takes new totals, with the percentage and engagement score they make.
    pub fn set_totals(&mut self, totals: &ProgressTotals) {
        self.total_lessons = totals.total_lessons;
        self.completed_lessons = totals.completed_lessons;
        self.total_watch_time_seconds = totals.total_watch_time_seconds;
        self.quizzes_taken = totals.quizzes_taken;
        self.quizzes_passed = totals.quizzes_passed;
        self.quiz_score_sum = totals.quiz_score_sum;
        self.progress_percentage =
            progress_percentage(totals.completed_lessons, totals.total_lessons);
        self.engagement_score = engagement_score(totals);
    }
}

impl LessonProgressRow {
    pub fn state(&self) -> LessonState {
        LessonState {
            status: self.status,
            progress_percent: self.progress_percent,
            watch_time_seconds: self.watch_time_seconds,
            quiz_score: self.quiz_score,
            quiz_passed: self.quiz_passed,
        }
    }
}

/// Creates the student's progress with the enrollment (same transaction).
pub async fn create(
    tx: &mut Tx,
    enrollment: &EnrollmentRow,
    total_lessons: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO student_progress (enrollment_id, course_id, student_id, instructor_id, organization_id, total_lessons)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (enrollment_id) DO NOTHING",
        enrollment.id,
        enrollment.course_id,
        enrollment.student_id,
        enrollment.instructor_id,
        enrollment.organization_id,
        total_lessons
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn get(
    tx: &mut Tx,
    enrollment_id: Uuid,
) -> Result<Option<StudentProgressRow>, sqlx::Error> {
    sqlx::query_as!(
        StudentProgressRow,
        "SELECT enrollment_id, course_id, student_id, total_lessons, completed_lessons,
                progress_percentage::float8 AS \"progress_percentage!\",
                total_watch_time_seconds, quizzes_taken, quizzes_passed,
                quiz_score_sum, engagement_score, last_activity_at, certificate_url,
                version, updated_at FROM student_progress WHERE enrollment_id = $1",
        enrollment_id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn lock(
    tx: &mut Tx,
    enrollment_id: Uuid,
) -> Result<Option<StudentProgressRow>, sqlx::Error> {
    sqlx::query_as!(
        StudentProgressRow,
        "SELECT enrollment_id, course_id, student_id, total_lessons, completed_lessons,
                progress_percentage::float8 AS \"progress_percentage!\",
                total_watch_time_seconds, quizzes_taken, quizzes_passed,
                quiz_score_sum, engagement_score, last_activity_at, certificate_url,
                version, updated_at FROM student_progress WHERE enrollment_id = $1 FOR UPDATE",
        enrollment_id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Writes the recomputed totals.
pub async fn save(
    tx: &mut Tx,
    row: &StudentProgressRow,
) -> Result<StudentProgressRow, sqlx::Error> {
    sqlx::query_as!(
        StudentProgressRow,
        "UPDATE student_progress SET total_lessons = $2, completed_lessons = $3, progress_percentage = $4::float8,
            total_watch_time_seconds = $5, quizzes_taken = $6, quizzes_passed = $7, quiz_score_sum = $8,
            engagement_score = $9, last_activity_at = now(), version = version + 1, updated_at = now()
         WHERE enrollment_id = $1
         RETURNING enrollment_id, course_id, student_id, total_lessons, completed_lessons,
                progress_percentage::float8 AS \"progress_percentage!\",
                total_watch_time_seconds, quizzes_taken, quizzes_passed,
                quiz_score_sum, engagement_score, last_activity_at, certificate_url,
                version, updated_at",
        row.enrollment_id,
        row.total_lessons,
        row.completed_lessons,
        row.progress_percentage,
        row.total_watch_time_seconds,
        row.quizzes_taken,
        row.quizzes_passed,
        row.quiz_score_sum,
        row.engagement_score
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn get_lesson(
    tx: &mut Tx,
    enrollment_id: EnrollmentId,
    lesson_id: LessonId,
) -> Result<Option<LessonProgressRow>, sqlx::Error> {
    sqlx::query_as!(
        LessonProgressRow,
        "SELECT lesson_id, status, progress_percent, watch_time_seconds, quiz_score, quiz_passed, updated_at
         FROM lesson_progress WHERE enrollment_id = $1 AND lesson_id = $2 FOR UPDATE",
        enrollment_id.get(),
        lesson_id.get()
    )
    .fetch_optional(tx.conn())
    .await
}

pub struct LessonUpdate {
    pub enrollment_id: Uuid,
    pub lesson_id: Uuid,
    pub course_id: Uuid,
    pub student_id: Uuid,
    pub state: LessonState,
}

pub async fn upsert_lesson(
    tx: &mut Tx,
    update: LessonUpdate,
) -> Result<LessonProgressRow, sqlx::Error> {
    sqlx::query_as!(
        LessonProgressRow,
        "INSERT INTO lesson_progress (enrollment_id, lesson_id, course_id, student_id, status, progress_percent,
                                      watch_time_seconds, quiz_score, quiz_passed, completed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'completed' THEN now() END)
         ON CONFLICT (enrollment_id, lesson_id) DO UPDATE SET
            status = EXCLUDED.status, progress_percent = EXCLUDED.progress_percent,
            watch_time_seconds = EXCLUDED.watch_time_seconds, quiz_score = EXCLUDED.quiz_score,
            quiz_passed = EXCLUDED.quiz_passed,
            completed_at = coalesce(lesson_progress.completed_at, EXCLUDED.completed_at),
            updated_at = now()
         RETURNING lesson_id, status, progress_percent, watch_time_seconds, quiz_score, quiz_passed, updated_at",
        update.enrollment_id,
        update.lesson_id,
        update.course_id,
        update.student_id,
        update.state.status as _,
        update.state.progress_percent,
        update.state.watch_time_seconds,
        update.state.quiz_score,
        update.state.quiz_passed
    )
    .fetch_one(tx.conn())
    .await
}

pub async fn lessons(
    tx: &mut Tx,
    enrollment_id: Uuid,
) -> Result<Vec<LessonProgressRow>, sqlx::Error> {
    sqlx::query_as!(
        LessonProgressRow,
        "SELECT lesson_id, status, progress_percent, watch_time_seconds, quiz_score, quiz_passed, updated_at
         FROM lesson_progress WHERE enrollment_id = $1 ORDER BY started_at",
        enrollment_id
    )
    .fetch_all(tx.conn())
    .await
}
