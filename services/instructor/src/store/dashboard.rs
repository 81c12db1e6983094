//! The dashboard queries (the seeds' helper functions), each from this schema alone and
//! each served by an index on (instructor_id, ...).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::domain::{ActivityType, CourseId, TransactionType, UserId};

/// The statements, public so that the benchmark can EXPLAIN exactly what runs. Each lives
/// in a file of its own under `sql/`, which the functions below check at compile time.
pub const STATS_SQL: &str = include_str!("sql/dashboard_stats.sql");
pub const EARNINGS_SQL: &str = include_str!("sql/dashboard_earnings.sql");
pub const STUDENT_PROGRESS_SQL: &str = include_str!("sql/dashboard_student_progress.sql");
pub const REVENUE_BREAKDOWN_SQL: &str = include_str!("sql/dashboard_revenue_breakdown.sql");
pub const RECENT_ACTIVITY_SQL: &str = include_str!("sql/dashboard_recent_activity.sql");
pub const MONTHLY_REVENUE_SQL: &str = include_str!("sql/dashboard_monthly_revenue.sql");
pub const ENGAGEMENT_SQL: &str = include_str!("sql/dashboard_engagement.sql");

#[derive(Debug, Clone, Default)]
pub struct DashboardStats {
    pub total_students: i64,
    pub total_courses: i64,
    pub total_workshops: i64,
    pub upcoming_workshops: i64,
    pub rating_sum: i64,
    pub review_count: i64,
    pub active_enrollments: i64,
}

pub async fn stats(tx: &mut Tx, instructor_id: Uuid) -> Result<DashboardStats, sqlx::Error> {
    sqlx::query_file_as!(
        DashboardStats,
        "src/store/sql/dashboard_stats.sql",
        instructor_id
    )
    .fetch_one(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct EarningsRow {
    pub currency: String,
    pub total_minor: i64,
    pub pending_minor: i64,
}

/// The instructor's earnings and pending earnings, per currency in code order.
pub async fn earnings(tx: &mut Tx, instructor_id: Uuid) -> Result<Vec<EarningsRow>, sqlx::Error> {
    sqlx::query_file_as!(
        EarningsRow,
        "src/store/sql/dashboard_earnings.sql",
        instructor_id
    )
    .fetch_all(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct StudentProgressRow {
    pub enrollment_id: Uuid,
    pub student_id: Uuid,
    pub full_name: String,
    pub email: String,
    pub avatar_url: String,
    pub course_id: Uuid,
    pub course_title: String,
    pub status: String,
    pub progress_percentage: f64,
    pub completed_lessons: i32,
    pub total_lessons: i32,
    pub last_activity_at: DateTime<Utc>,
    pub enrolled_at: DateTime<Utc>,
}

pub async fn student_progress(
    tx: &mut Tx,
    instructor_id: UserId,
    course_id: Option<CourseId>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<StudentProgressRow>, sqlx::Error> {
    sqlx::query_file_as!(
        StudentProgressRow,
        "src/store/sql/dashboard_student_progress.sql",
        instructor_id.get(),
        course_id.map(CourseId::get),
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct RevenueByTypeRow {
    pub transaction_type: TransactionType,
    pub currency: String,
    pub transaction_count: i64,
    pub gross_minor: i64,
    pub fees_minor: i64,
    pub earnings_minor: i64,
}

pub async fn revenue_breakdown(
    tx: &mut Tx,
    instructor_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<RevenueByTypeRow>, sqlx::Error> {
    sqlx::query_file_as!(
        RevenueByTypeRow,
        "src/store/sql/dashboard_revenue_breakdown.sql",
        instructor_id,
        start,
        end
    )
    .fetch_all(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub id: Uuid,
    pub student_id: Uuid,
    pub full_name: String,
    pub activity_type: ActivityType,
    pub course_id: Option<Uuid>,
    pub course_title: String,
    pub lesson_id: Option<Uuid>,
    pub workshop_id: Option<Uuid>,
    pub workshop_title: String,
    pub occurred_at: DateTime<Utc>,
}

pub async fn recent_activity(
    tx: &mut Tx,
    instructor_id: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ActivityRow>, sqlx::Error> {
    sqlx::query_file_as!(
        ActivityRow,
        "src/store/sql/dashboard_recent_activity.sql",
        instructor_id.get(),
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit
    )
    .fetch_all(tx.conn())
    .await
}

#[derive(Debug, Clone)]
pub struct MonthRow {
    pub month: DateTime<Utc>,
    pub currency: String,
    pub gross_minor: i64,
    pub earnings_minor: i64,
    pub transaction_count: i64,
}

pub async fn monthly_revenue(
    tx: &mut Tx,
    instructor_id: Uuid,
    months: i32,
) -> Result<Vec<MonthRow>, sqlx::Error> {
    sqlx::query_file_as!(
        MonthRow,
        "src/store/sql/dashboard_monthly_revenue.sql",
        instructor_id,
        months
    )
    .fetch_all(tx.conn())
    .await
}

#[derive(Debug, Clone, Default)]
pub struct EngagementRow {
    pub active_students_7d: i64,
    pub lessons_completed_7d: i64,
    pub quizzes_passed_7d: i64,
    pub average_progress: f64,
    pub completion_rate: f64,
}

pub async fn engagement(tx: &mut Tx, instructor_id: Uuid) -> Result<EngagementRow, sqlx::Error> {
    sqlx::query_file_as!(
        EngagementRow,
        "src/store/sql/dashboard_engagement.sql",
        instructor_id
    )
    .fetch_one(tx.conn())
    .await
}
