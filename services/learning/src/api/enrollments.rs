use chrono::{DateTime, Utc};
use lyceum_platform::auth::{PrincipalKind, require_principal};
use lyceum_platform::convert::{optional_id, page_size, parse_id, required_id};
use lyceum_platform::db::TenantContext;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::enrollment_service_server::EnrollmentService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, course_access, decode_position, paginate, visible_course, wire};
use crate::domain::enrollment::{
    EnrollDecision, EnrollRefusal, decide_enroll, may_record_progress,
};
use crate::domain::progress::{LessonReport, merge_lesson};
use crate::domain::{
    CourseId, EnrollmentId, EnrollmentStatus, LessonId, LessonProgressStatus, UserId,
};
use crate::events::{self, LessonChange, transition_enrollment};
use crate::store::enrollments::{EnrollOutcome, Enrolling, EnrollmentRow};
use crate::store::progress::LessonUpdate;
use crate::store::{Tx, content, courses, enrollments, progress};

/// A RecordLessonProgress request, validated.
struct RecordProgress {
    enrollment_id: Uuid,
    lesson_id: Uuid,
    report: LessonReport,
}

impl TryFrom<pb::RecordLessonProgressRequest> for RecordProgress {
    type Error = ApiError;

    fn try_from(req: pb::RecordLessonProgressRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let enrollment_id = required_id(&mut v, "enrollment_id", &req.enrollment_id);
        let lesson_id = required_id(&mut v, "lesson_id", &req.lesson_id);
        let status = v.check("status", LessonProgressStatus::from_proto(req.status));
        if !(0..=100).contains(&req.progress_percent) {
            v.add("progress_percent", "must be from 0 to 100");
        }
        if !(0..=LessonReport::MAX_WATCH_TIME_SECONDS).contains(&req.watch_time_seconds) {
            v.add(
                "watch_time_seconds",
                format!(
                    "must be from 0 to {} seconds",
                    LessonReport::MAX_WATCH_TIME_SECONDS
                ),
            );
        }
        if req.quiz_score.is_some_and(|s| !(0..=100).contains(&s)) {
            v.add("quiz_score", "must be from 0 to 100");
        }
        v.into_result()?;
        let (Some(enrollment_id), Some(lesson_id), Some(status)) =
            (enrollment_id, lesson_id, status)
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            enrollment_id,
            lesson_id,
            report: LessonReport {
                status,
                progress_percent: req.progress_percent,
                watch_time_seconds: req.watch_time_seconds,
                quiz_score: req.quiz_score,
            },
        })
    }
}

/// A ListEnrollments request, validated: one course's enrollments, or the caller's own.
struct ListEnrollments {
    course_id: Option<Uuid>,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
}

impl TryFrom<pb::ListEnrollmentsRequest> for ListEnrollments {
    type Error = ApiError;

    fn try_from(req: pb::ListEnrollmentsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let course_id = optional_id(&mut v, "course_id", &req.course_id);
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let course_id = course_id.expect("parsed when there are no violations");
        Ok(Self {
            course_id,
            limit,
            after,
        })
    }
}

impl LearningApi {
    /// The enrollment, if the caller is its student or may manage the course's students.
    async fn enrollment_for(
        &self,
        tx: &mut Tx,
        principal: &lyceum_platform::auth::Principal,
        id: uuid::Uuid,
    ) -> Result<EnrollmentRow, ApiError> {
        let enrollment = enrollments::get(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("enrollment"))?;
        if principal.is_user(enrollment.student_id) {
            return Ok(enrollment);
        }
        let course = courses::get(tx, enrollment.course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("enrollment"))?;
        if course_access(tx, Some(principal), &course)
            .await?
            .manage_students
        {
            Ok(enrollment)
        } else {
            Err(ApiError::not_found("enrollment"))
        }
    }

    async fn enroll_(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<pb::EnrollResponse, ApiError> {
        let principal = require_principal(&request)?;
        let course_id = parse_id("course_id", &request.get_ref().course_id)?;
        if principal.kind != PrincipalKind::User {
            return Err(ApiError::PermissionDenied(
                "only users enroll in courses".into(),
            ));
        }
        let context = TenantContext::for_principal(&principal);
        // Microseconds, as the database keeps it: the row and its event agree.
        let enrolled_at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .expect("the current time is representable");
        let enrollment_id = Uuid::now_v7();
        // One round trip when the course's terms are known (the event is encoded from
        // them); when they are not, or changed, the first call returns them and writes
        // nothing. A course changing on every attempt is a conflict the caller retries.
        let mut terms = self.course_terms.get(course_id);
        for _ in 0..3 {
            let opened = terms.as_ref().map(|terms| {
                EnrollmentRow::opening(
                    EnrollmentId::new(enrollment_id),
                    CourseId::new(course_id),
                    UserId::new(principal.subject),
                    enrolled_at,
                    terms,
                )
            });
            let expected = terms.as_ref().zip(opened.as_ref()).map(|(terms, row)| {
                let event = events::enrollment_opened(row, &terms.title);
                (terms, event.into_outbox_row(self.db.service(), &context))
            });
            let outcome = enrollments::enroll(
                &self.db,
                Enrolling {
                    context: &context,
                    course_id,
                    enrollment_id,
                    enrolled_at,
                    expected,
                },
            )
            .await?;
            match outcome {
                EnrollOutcome::Enrolled { status, updated_at } => {
                    let mut row = opened.expect("enrolled only with the expected terms");
                    row.status = status;
                    row.updated_at = updated_at;
                    return Ok(pb::EnrollResponse {
                        enrollment: Some(wire::enrollment(row)),
                    });
                }
                EnrollOutcome::Stale(current) => {
                    self.course_terms.put(course_id, current.clone());
                    terms = Some(current);
                }
                EnrollOutcome::NotFound => {
                    self.course_terms.forget(course_id);
                    return Err(ApiError::not_found("course"));
                }
                EnrollOutcome::Refused(refusal) => return Err(refusal.into()),
                // A cancelled enrollment comes back, deciding again on the locked row; any
                // other is the one enrollment the student may have.
                EnrollOutcome::Exists(EnrollmentStatus::Cancelled) => {
                    return self.reopen(&principal, course_id).await;
                }
                EnrollOutcome::Exists(_) => return Err(EnrollRefusal::AlreadyEnrolled.into()),
            }
        }
        Err(ApiError::Aborted(
            "the course's terms changed while enrolling; try again".into(),
        ))
    }

    /// Enrolling again after a cancellation: one enrollment per student per course.
    async fn reopen(
        &self,
        principal: &lyceum_platform::auth::Principal,
        course_id: Uuid,
    ) -> Result<pb::EnrollResponse, ApiError> {
        let mut tx = self.tx_for(Some(principal)).await?;
        let (course, _) = visible_course(&mut tx, Some(principal), course_id).await?;
        let existing = enrollments::lock_by_student(
            &mut tx,
            CourseId::new(course_id),
            UserId::new(principal.subject),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("enrollment"))?;
        let (EnrollDecision::Open(target) | EnrollDecision::Reopen(target)) =
            decide_enroll(&course.enrollment_terms(), Some(existing.status))?;
        let reopened = transition_enrollment(&mut tx, &existing, target, None).await?;
        tx.commit().await?;
        Ok(pb::EnrollResponse {
            enrollment: Some(wire::enrollment(reopened)),
        })
    }

    async fn get_enrollment_(
        &self,
        request: Request<pb::GetEnrollmentRequest>,
    ) -> Result<pb::GetEnrollmentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let enrollment = self.enrollment_for(&mut tx, &principal, id).await?;
        tx.commit().await?;
        Ok(pb::GetEnrollmentResponse {
            enrollment: Some(wire::enrollment(enrollment)),
        })
    }

    async fn list_enrollments_(
        &self,
        request: Request<pb::ListEnrollmentsRequest>,
    ) -> Result<pb::ListEnrollmentsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let ListEnrollments {
            course_id,
            limit,
            after,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let student = match course_id {
            Some(course_id) => {
                let (_, access) = visible_course(&mut tx, Some(&principal), course_id).await?;
                if !access.manage_students {
                    return Err(ApiError::permission_denied());
                }
                None
            }
            None => Some(principal.subject),
        };
        let rows = enrollments::list(
            &mut tx,
            student.map(UserId::new),
            course_id.map(CourseId::new),
            after,
            limit + 1,
        )
        .await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |e| (e.enrolled_at, e.id));
        Ok(pb::ListEnrollmentsResponse {
            enrollments: rows.into_iter().map(wire::enrollment).collect(),
            next_page_token,
        })
    }

    async fn cancel_enrollment_(
        &self,
        request: Request<pb::CancelEnrollmentRequest>,
    ) -> Result<pb::CancelEnrollmentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.enrollment_for(&mut tx, &principal, id).await?;
        // Locked under the caller's own policies: the student, or staff who manage students.
        let enrollment = enrollments::lock(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("enrollment"))?;
        let cancelled =
            transition_enrollment(&mut tx, &enrollment, EnrollmentStatus::Cancelled, None).await?;
        tx.commit().await?;
        Ok(pb::CancelEnrollmentResponse {
            enrollment: Some(wire::enrollment(cancelled)),
        })
    }

    async fn record_lesson_progress_(
        &self,
        request: Request<pb::RecordLessonProgressRequest>,
    ) -> Result<pb::RecordLessonProgressResponse, ApiError> {
        let principal = require_principal(&request)?;
        let RecordProgress {
            enrollment_id,
            lesson_id,
            report,
        } = request.into_inner().try_into()?;

        let mut tx = self.tx_for(Some(&principal)).await?;
        let enrollment = enrollments::lock(&mut tx, enrollment_id)
            .await?
            .filter(|e| principal.is_user(e.student_id))
            .ok_or_else(|| ApiError::not_found("enrollment"))?;
        may_record_progress(enrollment.status)?;
        let lesson = content::get_lesson(&mut tx, lesson_id)
            .await?
            .ok_or_else(|| ApiError::not_found("lesson"))?;
        if lesson.course_id != enrollment.course_id {
            return Err(ApiError::invalid("lesson_id", "belongs to another course"));
        }
        // Drip content: a lesson not yet released to this student takes no progress.
        let course = crate::store::courses::get(&mut tx, enrollment.course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))?;
        if course.drip_content {
            let release = crate::domain::drip::release_of(
                true,
                &crate::domain::drip::DripSchedule::parse(&course.drip_schedule)
                    .unwrap_or_default(),
                lesson_id,
                enrollment.activated_at.unwrap_or(enrollment.enrolled_at),
                self.now(),
            );
            if let (false, Some(at)) = (release.released, release.at) {
                return Err(ApiError::FailedPrecondition(format!(
                    "the lesson is released to this student at {}",
                    at.to_rfc3339()
                )));
            }
        }
        report
            .fits(lesson.lesson_type)
            .map_err(|message| ApiError::invalid("quiz_score", message))?;

        let previous = progress::get_lesson(
            &mut tx,
            EnrollmentId::new(enrollment_id),
            LessonId::new(lesson_id),
        )
        .await?;
        let merge = merge_lesson(previous.as_ref().map(|p| p.state()).as_ref(), &report);
        let lesson_row = progress::upsert_lesson(
            &mut tx,
            LessonUpdate {
                enrollment_id,
                lesson_id,
                course_id: enrollment.course_id,
                student_id: enrollment.student_id,
                state: merge.state,
            },
        )
        .await?;

        // The student's course progress is the service's bookkeeping, updated in the same
        // transaction by the difference this call made.
        tx.begin_bookkeeping("student progress totals").await?;
        let course = courses::get(&mut tx, enrollment.course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))?;
        let mut row = progress::lock(&mut tx, enrollment_id)
            .await?
            .ok_or_else(|| ApiError::not_found("progress"))?;
        let mut totals = row.totals(
            course.lesson_count,
            content::course_duration(&mut tx, enrollment.course_id).await?,
        );
        totals.apply(&merge);
        row.set_totals(&totals);
        let saved = progress::save(&mut tx, &row).await?;
        let change = LessonChange {
            lesson_id,
            lesson_status: lesson_row.status.to_string(),
            started_now: merge.started_now,
            completed_now: merge.completed_now,
            quiz: merge.quiz,
        };
        tx.publish(events::lesson_progress_recorded(
            &enrollment,
            &change,
            &saved,
        ))
        .await?;
        // Completing the enrollment is the student's own change again.
        tx.end_bookkeeping().await?;

        let enrollment = if totals.completes(enrollment.status) {
            transition_enrollment(&mut tx, &enrollment, EnrollmentStatus::Completed, None).await?
        } else {
            enrollment
        };
        tx.commit().await?;
        Ok(pb::RecordLessonProgressResponse {
            lesson: Some(wire::lesson_progress(lesson_row)),
            progress: Some(wire::student_progress(saved)),
            enrollment: Some(wire::enrollment(enrollment)),
        })
    }

    async fn get_student_progress_(
        &self,
        request: Request<pb::GetStudentProgressRequest>,
    ) -> Result<pb::GetStudentProgressResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("enrollment_id", &request.get_ref().enrollment_id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.enrollment_for(&mut tx, &principal, id).await?;
        let row = progress::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("progress"))?;
        let lessons = progress::lessons(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::GetStudentProgressResponse {
            progress: Some(wire::student_progress(row)),
            lessons: lessons.into_iter().map(wire::lesson_progress).collect(),
        })
    }
}

#[tonic::async_trait]
impl EnrollmentService for LearningApi {
    async fn enroll(
        &self,
        r: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        Ok(Response::new(self.enroll_(r).await?))
    }
    async fn get_enrollment(
        &self,
        r: Request<pb::GetEnrollmentRequest>,
    ) -> Result<Response<pb::GetEnrollmentResponse>, Status> {
        Ok(Response::new(self.get_enrollment_(r).await?))
    }
    async fn list_enrollments(
        &self,
        r: Request<pb::ListEnrollmentsRequest>,
    ) -> Result<Response<pb::ListEnrollmentsResponse>, Status> {
        Ok(Response::new(self.list_enrollments_(r).await?))
    }
    async fn cancel_enrollment(
        &self,
        r: Request<pb::CancelEnrollmentRequest>,
    ) -> Result<Response<pb::CancelEnrollmentResponse>, Status> {
        Ok(Response::new(self.cancel_enrollment_(r).await?))
    }
    async fn record_lesson_progress(
        &self,
        r: Request<pb::RecordLessonProgressRequest>,
    ) -> Result<Response<pb::RecordLessonProgressResponse>, Status> {
        Ok(Response::new(self.record_lesson_progress_(r).await?))
    }
    async fn get_student_progress(
        &self,
        r: Request<pb::GetStudentProgressRequest>,
    ) -> Result<Response<pb::GetStudentProgressResponse>, Status> {
        Ok(Response::new(self.get_student_progress_(r).await?))
    }
}
