use chrono::{DateTime, Utc};
use lyceum_platform::auth::require_principal;
use lyceum_platform::convert::{
    TimePosition, decode_time_position as decode_position, from_timestamp, optional_id, page_size,
    paginate_by_time as paginate, parse_id, timestamp,
};
use lyceum_platform::db::TenantContext;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::instructor::v1 as pb;
use lyceum_proto::instructor::v1::dashboard_service_server::DashboardService;
use lyceum_proto::instructor::v1::revenue_service_server::RevenueService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{InstructorApi, Page, may_read_instructor, wire};
use crate::domain::{CourseId, UserId, fee_bps_from_percent};
use crate::store::{dashboard, payments, revenue};

impl TryFrom<pb::ListRevenueTransactionsRequest> for Page {
    type Error = ApiError;

    fn try_from(req: pb::ListRevenueTransactionsRequest) -> Result<Self, ApiError> {
        Page::parse(req.page_size, &req.page_token)
    }
}

impl TryFrom<pb::ListRecentActivityRequest> for Page {
    type Error = ApiError;

    fn try_from(req: pb::ListRecentActivityRequest) -> Result<Self, ApiError> {
        Page::parse(req.page_size, &req.page_token)
    }
}

/// A SetFeePercentage request, validated: the platform's fee, or one instructor's.
struct SetFeePercentage {
    instructor: Option<Uuid>,
    bps: i32,
}

impl TryFrom<pb::SetFeePercentageRequest> for SetFeePercentage {
    type Error = ApiError;

    fn try_from(req: pb::SetFeePercentageRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let instructor = optional_id(&mut v, "instructor_id", &req.instructor_id);
        let bps = v.check("fee_percentage", fee_bps_from_percent(req.fee_percentage));
        v.into_result()?;
        let (Some(instructor), Some(bps)) = (instructor, bps) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self { instructor, bps })
    }
}

/// A ListStudentProgress request, validated (its instructor is checked before it, by
/// `instructor_of`).
struct ListStudentProgress {
    course: Option<Uuid>,
    limit: i64,
    after: Option<TimePosition>,
}

impl TryFrom<pb::ListStudentProgressRequest> for ListStudentProgress {
    type Error = ApiError;

    fn try_from(req: pb::ListStudentProgressRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course = optional_id(&mut v, "course_id", &req.course_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let course = course.expect("parsed when there are no violations");
        Ok(Self {
            course,
            limit,
            after,
        })
    }
}

/// A GetRevenueBreakdown request, validated: the period, by default the last 30 days
/// (its instructor is checked before it, by `instructor_of`).
struct RevenuePeriod {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<pb::GetRevenueBreakdownRequest> for RevenuePeriod {
    type Error = ApiError;

    fn try_from(req: pb::GetRevenueBreakdownRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let end = match &req.end_time {
            Some(t) => v.check("end_time", from_timestamp(t)),
            None => Some(Utc::now()),
        };
        let start = match &req.start_time {
            Some(t) => v.check("start_time", from_timestamp(t)),
            None => end.and_then(|e| e.checked_sub_signed(chrono::Duration::days(30))),
        };
        // PostgreSQL's timestamps end at year 294276; keep to a sane calendar range.
        let sane = |t: &Option<DateTime<Utc>>| {
            t.is_some_and(|t| (1970..=9999).contains(&chrono::Datelike::year(&t)))
        };
        if !sane(&start) {
            v.add("start_time", "must be between the years 1970 and 9999");
        }
        if !sane(&end) {
            v.add("end_time", "must be between the years 1970 and 9999");
        }
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            v.add("start_time", "must be before end_time");
        }
        v.into_result()?;
        let (Some(start), Some(end)) = (start, end) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self { start, end })
    }
}

impl InstructorApi {
    /// The instructor a dashboard request names, after checking the caller may see it.
    pub(super) fn instructor_of(
        principal: &lyceum_platform::auth::Principal,
        raw: &str,
    ) -> Result<Uuid, ApiError> {
        let instructor_id = if raw.is_empty() {
            principal.subject
        } else {
            parse_id("instructor_id", raw)?
        };
        may_read_instructor(principal, instructor_id)?;
        Ok(instructor_id)
    }

    async fn list_revenue_transactions_(
        &self,
        request: Request<pb::ListRevenueTransactionsRequest>,
    ) -> Result<pb::ListRevenueTransactionsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let instructor_id = Self::instructor_of(&principal, &req.instructor_id)?;
        let Page { limit, after } = req.try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = revenue::list(&mut tx, UserId::new(instructor_id), after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |r| (r.created_at, r.id));
        Ok(pb::ListRevenueTransactionsResponse {
            transactions: rows.into_iter().map(wire::transaction).collect(),
            next_page_token,
        })
    }

    async fn set_fee_percentage_(
        &self,
        request: Request<pb::SetFeePercentageRequest>,
    ) -> Result<pb::SetFeePercentageResponse, ApiError> {
        let principal = require_principal(&request)?;
        let SetFeePercentage { instructor, bps } = request.into_inner().try_into()?;
        if !principal.has_platform_access() {
            return Err(ApiError::PermissionDenied(
                "fees are set by platform admins".into(),
            ));
        }
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        match instructor {
            Some(id) => payments::set_instructor_fee(&mut tx, id, bps).await?,
            None => payments::set_platform_fee(&mut tx, bps).await?,
        }
        tx.commit().await?;
        Ok(pb::SetFeePercentageResponse {
            fee_percentage: f64::from(bps) / 100.0,
        })
    }

    async fn get_dashboard_stats_(
        &self,
        request: Request<pb::GetDashboardStatsRequest>,
    ) -> Result<pb::GetDashboardStatsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let instructor_id = Self::instructor_of(&principal, &request.get_ref().instructor_id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let stats = dashboard::stats(&mut tx, instructor_id).await?;
        let earnings = dashboard::earnings(&mut tx, instructor_id).await?;
        tx.commit().await?;
        let average_rating = if stats.review_count > 0 {
            (stats.rating_sum as f64 / stats.review_count as f64 * 100.0).round() / 100.0
        } else {
            0.0
        };
        Ok(pb::GetDashboardStatsResponse {
            total_students: stats.total_students,
            total_courses: stats.total_courses,
            total_workshops: stats.total_workshops,
            total_revenue: wire::amounts(
                earnings
                    .iter()
                    .map(|e| (e.currency.as_str(), e.total_minor)),
            ),
            pending_revenue: wire::amounts(
                earnings
                    .iter()
                    .map(|e| (e.currency.as_str(), e.pending_minor)),
            ),
            average_rating,
            total_reviews: stats.review_count,
            active_enrollments: stats.active_enrollments,
            upcoming_workshops: stats.upcoming_workshops,
        })
    }

    async fn list_student_progress_(
        &self,
        request: Request<pb::ListStudentProgressRequest>,
    ) -> Result<pb::ListStudentProgressResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let instructor_id = Self::instructor_of(&principal, &req.instructor_id)?;
        let ListStudentProgress {
            course,
            limit,
            after,
        } = req.try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = dashboard::student_progress(
            &mut tx,
            UserId::new(instructor_id),
            course.map(CourseId::new),
            after,
            limit + 1,
        )
        .await?;
        tx.commit().await?;
        let (rows, next_page_token) =
            paginate(rows, limit, |r| (r.last_activity_at, r.enrollment_id));
        Ok(pb::ListStudentProgressResponse {
            students: rows
                .into_iter()
                .map(|r| pb::StudentProgressRow {
                    student_id: r.student_id.to_string(),
                    student_name: r.full_name,
                    student_email: r.email,
                    student_avatar_url: r.avatar_url,
                    course_id: r.course_id.to_string(),
                    course_title: r.course_title,
                    enrollment_status: r.status,
                    progress_percentage: r.progress_percentage,
                    completed_lessons: r.completed_lessons,
                    total_lessons: r.total_lessons,
                    last_activity_time: Some(timestamp(r.last_activity_at)),
                    enroll_time: Some(timestamp(r.enrolled_at)),
                })
                .collect(),
            next_page_token,
        })
    }

    async fn get_revenue_breakdown_(
        &self,
        request: Request<pb::GetRevenueBreakdownRequest>,
    ) -> Result<pb::GetRevenueBreakdownResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let instructor_id = Self::instructor_of(&principal, &req.instructor_id)?;
        let RevenuePeriod { start, end } = req.try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = dashboard::revenue_breakdown(&mut tx, instructor_id, start, end).await?;
        tx.commit().await?;
        // Rows come per (type, currency) in that order: one message per type, its
        // amounts per currency.
        let by_type = rows.chunk_by(|a, b| a.transaction_type == b.transaction_type);
        Ok(pb::GetRevenueBreakdownResponse {
            rows: by_type
                .map(|rows| pb::RevenueByType {
                    r#type: rows[0].transaction_type.to_proto(),
                    transaction_count: rows.iter().map(|r| r.transaction_count).sum(),
                    gross: wire::amounts(rows.iter().map(|r| (r.currency.as_str(), r.gross_minor))),
                    platform_fees: wire::amounts(
                        rows.iter().map(|r| (r.currency.as_str(), r.fees_minor)),
                    ),
                    instructor_earnings: wire::amounts(
                        rows.iter().map(|r| (r.currency.as_str(), r.earnings_minor)),
                    ),
                })
                .collect(),
        })
    }

    async fn list_recent_activity_(
        &self,
        request: Request<pb::ListRecentActivityRequest>,
    ) -> Result<pb::ListRecentActivityResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let instructor_id = Self::instructor_of(&principal, &req.instructor_id)?;
        let Page { limit, after } = req.try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows =
            dashboard::recent_activity(&mut tx, UserId::new(instructor_id), after, limit + 1)
                .await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |r| (r.occurred_at, r.id));
        Ok(pb::ListRecentActivityResponse {
            activities: rows
                .into_iter()
                .map(|r| pb::Activity {
                    id: r.id.to_string(),
                    student_id: r.student_id.to_string(),
                    student_name: r.full_name,
                    r#type: r.activity_type.to_proto(),
                    course_id: lyceum_platform::convert::opt_id_to_string(r.course_id),
                    course_title: r.course_title,
                    lesson_id: lyceum_platform::convert::opt_id_to_string(r.lesson_id),
                    occur_time: Some(timestamp(r.occurred_at)),
                    workshop_id: lyceum_platform::convert::opt_id_to_string(r.workshop_id),
                    workshop_title: r.workshop_title,
                })
                .collect(),
            next_page_token,
        })
    }

    async fn get_monthly_revenue_(
        &self,
        request: Request<pb::GetMonthlyRevenueRequest>,
    ) -> Result<pb::GetMonthlyRevenueResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let instructor_id = Self::instructor_of(&principal, &req.instructor_id)?;
        let months = match req.months {
            0 => 12,
            n if (1..=36).contains(&n) => n,
            _ => return Err(ApiError::invalid("months", "must be from 1 to 36")),
        };
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = dashboard::monthly_revenue(&mut tx, instructor_id, months).await?;
        tx.commit().await?;
        // Rows come per (month, currency) in that order: one message per month.
        Ok(pb::GetMonthlyRevenueResponse {
            months: rows
                .chunk_by(|a, b| a.month == b.month)
                .map(|rows| pb::MonthlyRevenue {
                    month: Some(timestamp(rows[0].month)),
                    gross: wire::amounts(rows.iter().map(|r| (r.currency.as_str(), r.gross_minor))),
                    instructor_earnings: wire::amounts(
                        rows.iter().map(|r| (r.currency.as_str(), r.earnings_minor)),
                    ),
                    transaction_count: rows.iter().map(|r| r.transaction_count).sum(),
                })
                .collect(),
        })
    }

    async fn get_engagement_summary_(
        &self,
        request: Request<pb::GetEngagementSummaryRequest>,
    ) -> Result<pb::GetEngagementSummaryResponse, ApiError> {
        let principal = require_principal(&request)?;
        let instructor_id = Self::instructor_of(&principal, &request.get_ref().instructor_id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let row = dashboard::engagement(&mut tx, instructor_id).await?;
        tx.commit().await?;
        Ok(pb::GetEngagementSummaryResponse {
            active_students_7d: row.active_students_7d,
            lessons_completed_7d: row.lessons_completed_7d,
            quizzes_passed_7d: row.quizzes_passed_7d,
            average_progress_percentage: row.average_progress,
            completion_rate: row.completion_rate,
        })
    }
}

#[tonic::async_trait]
impl RevenueService for InstructorApi {
    async fn list_revenue_transactions(
        &self,
        r: Request<pb::ListRevenueTransactionsRequest>,
    ) -> Result<Response<pb::ListRevenueTransactionsResponse>, Status> {
        Ok(Response::new(self.list_revenue_transactions_(r).await?))
    }
    async fn set_fee_percentage(
        &self,
        r: Request<pb::SetFeePercentageRequest>,
    ) -> Result<Response<pb::SetFeePercentageResponse>, Status> {
        Ok(Response::new(self.set_fee_percentage_(r).await?))
    }
    async fn create_payout(
        &self,
        r: Request<pb::CreatePayoutRequest>,
    ) -> Result<Response<pb::CreatePayoutResponse>, Status> {
        Ok(Response::new(self.create_payout_(r).await?))
    }
    async fn list_payouts(
        &self,
        r: Request<pb::ListPayoutsRequest>,
    ) -> Result<Response<pb::ListPayoutsResponse>, Status> {
        Ok(Response::new(self.list_payouts_(r).await?))
    }
}

#[tonic::async_trait]
impl DashboardService for InstructorApi {
    async fn get_dashboard_stats(
        &self,
        r: Request<pb::GetDashboardStatsRequest>,
    ) -> Result<Response<pb::GetDashboardStatsResponse>, Status> {
        Ok(Response::new(self.get_dashboard_stats_(r).await?))
    }
    async fn list_student_progress(
        &self,
        r: Request<pb::ListStudentProgressRequest>,
    ) -> Result<Response<pb::ListStudentProgressResponse>, Status> {
        Ok(Response::new(self.list_student_progress_(r).await?))
    }
    async fn get_revenue_breakdown(
        &self,
        r: Request<pb::GetRevenueBreakdownRequest>,
    ) -> Result<Response<pb::GetRevenueBreakdownResponse>, Status> {
        Ok(Response::new(self.get_revenue_breakdown_(r).await?))
    }
    async fn list_recent_activity(
        &self,
        r: Request<pb::ListRecentActivityRequest>,
    ) -> Result<Response<pb::ListRecentActivityResponse>, Status> {
        Ok(Response::new(self.list_recent_activity_(r).await?))
    }
    async fn get_monthly_revenue(
        &self,
        r: Request<pb::GetMonthlyRevenueRequest>,
    ) -> Result<Response<pb::GetMonthlyRevenueResponse>, Status> {
        Ok(Response::new(self.get_monthly_revenue_(r).await?))
    }
    async fn get_engagement_summary(
        &self,
        r: Request<pb::GetEngagementSummaryRequest>,
    ) -> Result<Response<pb::GetEngagementSummaryResponse>, Status> {
        Ok(Response::new(self.get_engagement_summary_(r).await?))
    }
}
