//! The dashboard queries (the seeds' helper functions), each from this schema alone and
//! each served by an index on (instructor_id, ...).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;

/// The statements, public so that the benchmark can EXPLAIN exactly what runs.
pub const STATS_SQL: &str = "SELECT
           (SELECT count(DISTINCT student_id) FROM enrollment_projection
             WHERE instructor_id = $1 AND status IN ('active', 'completed')) AS total_students,
           (SELECT count(*) FROM course_projection WHERE instructor_id = $1 AND status = 'published') AS total_courses,
           (SELECT coalesce(sum(rating_sum), 0)::bigint FROM course_projection WHERE instructor_id = $1) AS rating_sum,
           (SELECT coalesce(sum(review_count), 0)::bigint FROM course_projection WHERE instructor_id = $1) AS review_count,
           (SELECT count(*) FROM enrollment_projection
             WHERE instructor_id = $1 AND status = 'active') AS active_enrollments";

/// Earnings per currency: never one sum over several currencies.
pub const EARNINGS_SQL: &str = "SELECT currency, sum(instructor_earnings_minor)::bigint AS total_minor,
                coalesce(sum(instructor_earnings_minor) FILTER (WHERE payout_status = 'pending'), 0)::bigint
                  AS pending_minor
         FROM revenue_transactions
         WHERE instructor_id = $1
         GROUP BY currency ORDER BY currency";

pub const STUDENT_PROGRESS_SQL: &str = "SELECT e.enrollment_id, e.student_id, coalesce(d.full_name, '') AS full_name,
                coalesce(d.email, '') AS email, coalesce(d.avatar_url, '') AS avatar_url,
                e.course_id, coalesce(c.title, '') AS course_title, e.status,
                e.progress_percentage::float8 AS progress_percentage, e.completed_lessons, e.total_lessons,
                e.last_activity_at, e.enrolled_at
         FROM (SELECT * FROM enrollment_projection
               WHERE instructor_id = $1 AND ($2::uuid IS NULL OR course_id = $2)
                 AND ($3::timestamptz IS NULL OR (last_activity_at, enrollment_id) < ($3, $4))
               ORDER BY last_activity_at DESC, enrollment_id DESC
               LIMIT $5) e
         LEFT JOIN student_directory d ON d.user_id = e.student_id
         LEFT JOIN course_projection c ON c.course_id = e.course_id
         ORDER BY e.last_activity_at DESC, e.enrollment_id DESC";

pub const REVENUE_BREAKDOWN_SQL: &str = "SELECT transaction_type, currency, count(*) AS transaction_count,
                sum(amount_minor)::bigint AS gross_minor, sum(platform_fee_minor)::bigint AS fees_minor,
                sum(instructor_earnings_minor)::bigint AS earnings_minor
         FROM revenue_transactions
         WHERE instructor_id = $1 AND created_at >= $2 AND created_at < $3
         GROUP BY transaction_type, currency ORDER BY transaction_type, currency";

pub const RECENT_ACTIVITY_SQL: &str = "SELECT a.id, a.student_id, coalesce(d.full_name, '') AS full_name, a.activity_type, a.course_id,
                coalesce(c.title, '') AS course_title, a.lesson_id, a.occurred_at
         FROM (SELECT * FROM student_activity
               WHERE instructor_id = $1 AND ($2::timestamptz IS NULL OR (occurred_at, id) < ($2, $3))
               ORDER BY occurred_at DESC, id DESC LIMIT $4) a
         LEFT JOIN student_directory d ON d.user_id = a.student_id
         LEFT JOIN course_projection c ON c.course_id = a.course_id
         ORDER BY a.occurred_at DESC, a.id DESC";

pub const MONTHLY_REVENUE_SQL: &str = "SELECT date_trunc('month', created_at) AS month, currency,
                sum(amount_minor)::bigint AS gross_minor,
                sum(instructor_earnings_minor)::bigint AS earnings_minor, count(*) AS transaction_count
         FROM revenue_transactions
         WHERE instructor_id = $1
           AND created_at >= date_trunc('month', now()) - make_interval(months => $2 - 1)
         GROUP BY 1, currency ORDER BY 1, currency";

pub const ENGAGEMENT_SQL: &str = "WITH recent AS (SELECT student_id, activity_type FROM student_activity
                         WHERE instructor_id = $1 AND occurred_at > now() - interval '7 days'),
              taught AS (SELECT status, progress_percentage FROM enrollment_projection
                         WHERE instructor_id = $1 AND status IN ('active', 'completed'))
         SELECT (SELECT count(DISTINCT student_id) FROM recent) AS active_students_7d,
                (SELECT count(*) FROM recent WHERE activity_type = 'lesson_completed') AS lessons_completed_7d,
                (SELECT count(*) FROM recent WHERE activity_type = 'quiz_passed') AS quizzes_passed_7d,
                (SELECT coalesce(round(avg(progress_percentage), 2), 0)::float8 FROM taught) AS average_progress,
                (SELECT coalesce(round(avg((status = 'completed')::int) * 100, 2), 0)::float8 FROM taught)
                  AS completion_rate";

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DashboardStats {
    pub total_students: i64,
    pub total_courses: i64,
    pub rating_sum: i64,
    pub review_count: i64,
    pub active_enrollments: i64,
}

pub async fn stats(tx: &mut Tx, instructor_id: Uuid) -> Result<DashboardStats, sqlx::Error> {
    sqlx::query_as::<_, DashboardStats>(STATS_SQL)
        .bind(instructor_id)
        .fetch_one(tx.conn())
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EarningsRow {
    pub currency: String,
    pub total_minor: i64,
    pub pending_minor: i64,
}

/// The instructor's earnings and pending earnings, per currency in code order.
pub async fn earnings(tx: &mut Tx, instructor_id: Uuid) -> Result<Vec<EarningsRow>, sqlx::Error> {
    sqlx::query_as::<_, EarningsRow>(EARNINGS_SQL)
        .bind(instructor_id)
        .fetch_all(tx.conn())
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
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
    instructor_id: Uuid,
    course_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<StudentProgressRow>, sqlx::Error> {
    sqlx::query_as::<_, StudentProgressRow>(STUDENT_PROGRESS_SQL)
        .bind(instructor_id)
        .bind(course_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(tx.conn())
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevenueByTypeRow {
    pub transaction_type: String,
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
    sqlx::query_as::<_, RevenueByTypeRow>(REVENUE_BREAKDOWN_SQL)
        .bind(instructor_id)
        .bind(start)
        .bind(end)
        .fetch_all(tx.conn())
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: Uuid,
    pub student_id: Uuid,
    pub full_name: String,
    pub activity_type: String,
    pub course_id: Option<Uuid>,
    pub course_title: String,
    pub lesson_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
}

pub async fn recent_activity(
    tx: &mut Tx,
    instructor_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ActivityRow>, sqlx::Error> {
    sqlx::query_as::<_, ActivityRow>(RECENT_ACTIVITY_SQL)
        .bind(instructor_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(tx.conn())
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
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
    sqlx::query_as::<_, MonthRow>(MONTHLY_REVENUE_SQL)
        .bind(instructor_id)
        .bind(months)
        .fetch_all(tx.conn())
        .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct EngagementRow {
    pub active_students_7d: i64,
    pub lessons_completed_7d: i64,
    pub quizzes_passed_7d: i64,
    pub average_progress: f64,
    pub completion_rate: f64,
}

pub async fn engagement(tx: &mut Tx, instructor_id: Uuid) -> Result<EngagementRow, sqlx::Error> {
    sqlx::query_as::<_, EngagementRow>(ENGAGEMENT_SQL)
        .bind(instructor_id)
        .fetch_one(tx.conn())
        .await
}
