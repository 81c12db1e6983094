//! Instructor dashboard scenarios at volume: each dashboard RPC against the same
//! statements run directly (the store functions), for random instructors, plus the
//! EXPLAIN (ANALYZE, BUFFERS) plan of each statement as the service's role.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use lyceum_instructor::domain::UserId;
use lyceum_instructor::store::dashboard;
use lyceum_platform::auth::{Principal, with_bearer};
use lyceum_platform::db::TenantContext;
use lyceum_proto::instructor::v1 as pb;
use lyceum_proto::instructor::v1::dashboard_service_client::DashboardServiceClient;
use serde::Serialize;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use crate::load::Operation;
use crate::stack::Stack;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Volume {
    pub instructors: i64,
    pub courses: i64,
    pub enrollments: i64,
    pub activity: i64,
    pub students: i64,
}

/// Loads the projections the dashboards read, set-based, and returns the instructors and
/// the seconds it took. Instructor `i`, course `c` and student `s` have stable ids
/// (`md5('i' || i)::uuid`), course `c` belongs to instructor `c % instructors`.
pub async fn load(conn: &mut PgConnection, volume: Volume) -> anyhow::Result<(Vec<Uuid>, f64)> {
    let started = Instant::now();
    let statements = [
        "INSERT INTO instructor.course_projection (course_id, instructor_id, title, status, enrolled_count,
            completed_count, rating_sum, review_count)
         SELECT md5('c' || g)::uuid, md5('i' || (g % $1))::uuid, 'Course ' || g, 'published', 100, 10,
                (g % 5 + 1) * 10, 10
         FROM generate_series(0, $2 - 1) g",
        "INSERT INTO instructor.student_directory (user_id, full_name, email)
         SELECT md5('s' || g)::uuid, 'Student ' || g, 's' || g || '@bench.test' FROM generate_series(0, $5 - 1) g",
        "INSERT INTO instructor.enrollment_projection (enrollment_id, course_id, instructor_id, student_id, status,
            price_minor, progress_percentage, completed_lessons, total_lessons, last_activity_at, enrolled_at)
         SELECT gen_random_uuid(), md5('c' || (g % $2))::uuid, md5('i' || ((g % $2) % $1))::uuid,
                md5('s' || (g % $5))::uuid, CASE WHEN g % 10 = 0 THEN 'completed' ELSE 'active' END,
                CASE WHEN g % 3 = 0 THEN 4999 ELSE 0 END, g % 101, g % 11, 10,
                now() - make_interval(secs => g % 31536000), now() - make_interval(secs => g % 31536000 + 86400)
         FROM generate_series(0, $3 - 1) g",
        "INSERT INTO instructor.revenue_transactions (id, instructor_id, transaction_type, course_id, enrollment_id,
            student_id, amount_minor, currency, fee_bps, platform_fee_minor, instructor_earnings_minor, created_at)
         SELECT gen_random_uuid(), instructor_id, 'course_enrollment', course_id, enrollment_id, student_id, 4999,
                'USD', 2000, 1000, 3999, enrolled_at
         FROM instructor.enrollment_projection WHERE price_minor > 0",
        "INSERT INTO instructor.student_activity (id, instructor_id, student_id, activity_type, course_id, occurred_at)
         SELECT gen_random_uuid(), md5('i' || (g % $1))::uuid, md5('s' || (g % $5))::uuid,
                (ARRAY['enrolled', 'lesson_started', 'lesson_completed', 'quiz_passed'])[g % 4 + 1],
                md5('c' || (g % $2))::uuid, now() - make_interval(secs => (g * 7) % 31536000)
         FROM generate_series(0, $4 - 1) g",
    ];
    for statement in statements {
        sqlx::query(statement)
            .bind(volume.instructors)
            .bind(volume.courses)
            .bind(volume.enrollments)
            .bind(volume.activity)
            .bind(volume.students)
            .execute(&mut *conn)
            .await?;
    }
    for table in [
        "course_projection",
        "student_directory",
        "enrollment_projection",
        "revenue_transactions",
        "student_activity",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "VACUUM ANALYZE instructor.{table}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("CHECKPOINT").execute(&mut *conn).await?;
    let instructors =
        sqlx::query_scalar("SELECT md5('i' || g)::uuid FROM generate_series(0, $1 - 1) g")
            .bind(volume.instructors)
            .fetch_all(&mut *conn)
            .await?;
    Ok((instructors, started.elapsed().as_secs_f64()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Query {
    Stats,
    StudentProgress,
    RevenueBreakdown,
    RecentActivity,
    MonthlyRevenue,
    Engagement,
}

impl Query {
    pub const ALL: [Query; 6] = [
        Query::Stats,
        Query::StudentProgress,
        Query::RevenueBreakdown,
        Query::RecentActivity,
        Query::MonthlyRevenue,
        Query::Engagement,
    ];
}

/// Callers: each instructor's own token and principal.
pub struct Instructors {
    pub ids: Vec<Uuid>,
    pub tokens: Vec<String>,
    pub principals: Vec<Principal>,
}

impl Instructors {
    pub fn new(stack: &Stack, ids: Vec<Uuid>) -> Self {
        let (tokens, principals) = ids.iter().map(|id| stack.student(*id)).unzip();
        Self {
            ids,
            tokens,
            principals,
        }
    }
}

pub struct DashboardRpc {
    pub stack: Arc<Stack>,
    pub instructors: Arc<Instructors>,
    pub query: Query,
}

fn code(status: tonic::Status) -> String {
    format!("{:?}", status.code())
}

#[async_trait]
impl Operation for DashboardRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let n = sequence as usize % self.instructors.ids.len();
        let id = self.instructors.ids[n].to_string();
        let token = &self.instructors.tokens[n];
        let mut client = DashboardServiceClient::new(self.stack.learning_channel(worker));
        let result = match self.query {
            Query::Stats => client
                .get_dashboard_stats(with_bearer(
                    Request::new(pb::GetDashboardStatsRequest { instructor_id: id }),
                    token,
                ))
                .await
                .map(|_| ()),
            Query::StudentProgress => client
                .list_student_progress(with_bearer(
                    Request::new(pb::ListStudentProgressRequest {
                        instructor_id: id,
                        page_size: 20,
                        ..Default::default()
                    }),
                    token,
                ))
                .await
                .map(|_| ()),
            Query::RevenueBreakdown => client
                .get_revenue_breakdown(with_bearer(
                    Request::new(pb::GetRevenueBreakdownRequest {
                        instructor_id: id,
                        ..Default::default()
                    }),
                    token,
                ))
                .await
                .map(|_| ()),
            Query::RecentActivity => client
                .list_recent_activity(with_bearer(
                    Request::new(pb::ListRecentActivityRequest {
                        instructor_id: id,
                        page_size: 20,
                        ..Default::default()
                    }),
                    token,
                ))
                .await
                .map(|_| ()),
            Query::MonthlyRevenue => client
                .get_monthly_revenue(with_bearer(
                    Request::new(pb::GetMonthlyRevenueRequest {
                        instructor_id: id,
                        months: 12,
                    }),
                    token,
                ))
                .await
                .map(|_| ()),
            Query::Engagement => client
                .get_engagement_summary(with_bearer(
                    Request::new(pb::GetEngagementSummaryRequest { instructor_id: id }),
                    token,
                ))
                .await
                .map(|_| ()),
        };
        result.map_err(code)
    }
}

pub struct DashboardSql {
    pub stack: Arc<Stack>,
    pub instructors: Arc<Instructors>,
    pub query: Query,
}

#[async_trait]
impl Operation for DashboardSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let n = sequence as usize % self.instructors.ids.len();
        let id = self.instructors.ids[n];
        let principal = &self.instructors.principals[n];
        let sql = |e: sqlx::Error| format!("sql: {e}");
        let mut tx = self
            .stack
            .instructor
            .begin(&TenantContext::for_principal(principal))
            .await
            .map_err(sql)?;
        match self.query {
            Query::Stats => match dashboard::stats(&mut tx, id).await {
                Ok(_) => dashboard::earnings(&mut tx, id).await.map(|_| ()),
                Err(e) => Err(e),
            },
            Query::StudentProgress => {
                dashboard::student_progress(&mut tx, UserId::new(id), None, None, 21)
                    .await
                    .map(|_| ())
            }
            Query::RevenueBreakdown => {
                let end = Utc::now();
                dashboard::revenue_breakdown(&mut tx, id, end - chrono::Duration::days(30), end)
                    .await
                    .map(|_| ())
            }
            Query::RecentActivity => dashboard::recent_activity(&mut tx, UserId::new(id), None, 21)
                .await
                .map(|_| ()),
            Query::MonthlyRevenue => dashboard::monthly_revenue(&mut tx, id, 12)
                .await
                .map(|_| ()),
            Query::Engagement => dashboard::engagement(&mut tx, id).await.map(|_| ()),
        }
        .map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}

/// EXPLAIN (ANALYZE, BUFFERS) of each dashboard statement for one instructor, as the
/// service's role with the instructor's tenant context (row-level security included).
pub async fn explain(
    stack: &Stack,
    instructor: &Principal,
) -> anyhow::Result<Vec<(Query, String)>> {
    let mut plans = Vec::new();
    let id = instructor.subject;
    let end = Utc::now();
    for query in Query::ALL {
        let mut tx = stack
            .instructor
            .begin(&TenantContext::for_principal(instructor))
            .await?;
        let (statements, binds): (&[&str], u8) = match query {
            // The RPC runs both: the counts, and the earnings per currency.
            Query::Stats => (&[dashboard::STATS_SQL, dashboard::EARNINGS_SQL], 1),
            Query::StudentProgress => (&[dashboard::STUDENT_PROGRESS_SQL], 2),
            Query::RevenueBreakdown => (&[dashboard::REVENUE_BREAKDOWN_SQL], 3),
            Query::RecentActivity => (&[dashboard::RECENT_ACTIVITY_SQL], 4),
            Query::MonthlyRevenue => (&[dashboard::MONTHLY_REVENUE_SQL], 5),
            Query::Engagement => (&[dashboard::ENGAGEMENT_SQL], 1),
        };
        let mut lines = Vec::new();
        for statement in statements {
            let explained = sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {statement}"));
            let q = sqlx::query_scalar::<_, String>(explained).bind(id);
            let q = match binds {
                2 => q
                    .bind(None::<Uuid>)
                    .bind(None::<chrono::DateTime<Utc>>)
                    .bind(None::<Uuid>)
                    .bind(21_i64),
                3 => q.bind(end - chrono::Duration::days(30)).bind(end),
                4 => q
                    .bind(None::<chrono::DateTime<Utc>>)
                    .bind(None::<Uuid>)
                    .bind(21_i64),
                5 => q.bind(12_i32),
                _ => q,
            };
            lines.extend(q.fetch_all(tx.conn()).await?);
        }
        tx.rollback().await?;
        plans.push((query, lines.join("\n")));
    }
    Ok(plans)
}
