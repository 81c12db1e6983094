//! What learning publishes (events built from rows, with the statistics they changed),
//! the one place that moves an enrollment between statuses, and the handlers of the
//! events learning consumes.

pub mod assessments;
pub mod certificates;
pub mod payments;
pub mod resources;
pub mod workshop_payments;
pub mod workshops;

use lyceum_platform::ApiError;
use lyceum_platform::convert::{opt_id_to_string, timestamp};
use lyceum_platform::events::Event;
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::enrollment::{decide_transition, event_verb};
use crate::domain::{EnrollmentId, EnrollmentStatus, PaymentId};
use crate::store::courses::CourseRow;
use crate::store::enrollments::EnrollmentRow;
use crate::store::progress::StudentProgressRow;
use crate::store::reviews::ReviewRow;
use crate::store::{Tx, courses, enrollments};

/// `learning.course.updated`: a listed course's title, price or other fields changed, with
/// the course's current status (the payload of the status events, at the same version
/// counter), so that other contexts' copies do not go stale.
pub fn course_updated(row: &CourseRow) -> Event {
    course_event(row, "learning.course.updated")
}

pub fn course_status_changed(row: &CourseRow) -> Event {
    course_event(row, &format!("learning.course.{}", row.status))
}

fn course_event(row: &CourseRow, subject: &str) -> Event {
    let payload = pb::CourseStatusChanged {
        course_id: row.id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        title: row.title.clone(),
        status: row.status.to_string(),
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        version: row.version,
    };
    Event::new(subject, row.organization_id, &payload)
}

/// An enrollment's event after a change of status. Its version is the row's `updated_at`,
/// which the database moves forward with every change, in commit order.
pub fn enrollment_changed(row: &EnrollmentRow, course_title: &str, verb: &str) -> Event {
    enrollment_event(row, course_title, verb, row.updated_at.timestamp_micros())
}

/// The first event of a new enrollment: `activated` for a free course (created and active
/// in one change), `created` while a payment is pending. It is encoded before the row
/// exists (see `store::enrollments::enroll`), so it carries version 1, below the database
/// timestamp every later change of the enrollment carries.
pub fn enrollment_opened(row: &EnrollmentRow, course_title: &str) -> Event {
    enrollment_event(
        row,
        course_title,
        event_verb(row.status),
        FIRST_ENROLLMENT_VERSION,
    )
}

/// See [`enrollment_opened`].
pub const FIRST_ENROLLMENT_VERSION: i64 = 1;

fn enrollment_event(row: &EnrollmentRow, course_title: &str, verb: &str, version: i64) -> Event {
    let payload = pb::EnrollmentChanged {
        enrollment_id: row.id.to_string(),
        course_id: row.course_id.to_string(),
        course_title: course_title.to_owned(),
        student_id: row.student_id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        status: row.status.to_string(),
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        payment_id: opt_id_to_string(row.payment_id),
        cohort_id: opt_id_to_string(row.cohort_id),
        version,
        enroll_time: Some(timestamp(row.enrolled_at)),
    };
    let subject = format!("learning.enrollment.{verb}");
    Event::new(&subject, row.organization_id, &payload)
}

pub struct LessonChange {
    pub lesson_id: Uuid,
    pub lesson_status: String,
    pub started_now: bool,
    pub completed_now: bool,
    pub quiz: Option<(i32, bool)>,
}

pub fn lesson_progress_recorded(
    enrollment: &EnrollmentRow,
    change: &LessonChange,
    progress: &StudentProgressRow,
) -> Event {
    let payload = pb::LessonProgressRecorded {
        enrollment_id: enrollment.id.to_string(),
        course_id: enrollment.course_id.to_string(),
        lesson_id: change.lesson_id.to_string(),
        student_id: enrollment.student_id.to_string(),
        instructor_id: enrollment.instructor_id.to_string(),
        lesson_status: change.lesson_status.clone(),
        lesson_completed_now: change.completed_now,
        lesson_started_now: change.started_now,
        quiz_recorded: change.quiz.is_some(),
        quiz_passed: change.quiz.is_some_and(|q| q.1),
        quiz_score: change.quiz.map(|q| q.0).unwrap_or_default(),
        completed_lessons: progress.completed_lessons,
        total_lessons: progress.total_lessons,
        progress_percentage: progress.progress_percentage,
        total_watch_time_seconds: progress.total_watch_time_seconds,
        engagement_score: progress.engagement_score,
        version: progress.version,
    };
    Event::new(
        "learning.lesson_progress.recorded",
        enrollment.organization_id,
        &payload,
    )
}

/// `verb` is created, updated or deleted; `rating` the course's new rating statistics.
pub fn review_changed(
    verb: &str,
    review: &ReviewRow,
    rating: courses::Ratings,
    organization_id: Option<Uuid>,
) -> Event {
    let payload = pb::ReviewChanged {
        review_id: review.id.to_string(),
        course_id: review.course_id.to_string(),
        student_id: review.student_id.to_string(),
        instructor_id: review.instructor_id.to_string(),
        rating: review.rating,
        course_average_rating: rating.average,
        course_review_count: rating.count,
        course_rating_sum: rating.sum,
        version: rating.version,
    };
    Event::new(
        &format!("learning.review.{verb}"),
        organization_id,
        &payload,
    )
}

/// Moves an enrollment to `next`: keeps the course's statistics in the same transaction
/// (O(1) increments) and publishes the event. The caller has locked the enrollment and
/// checked who may do this; the statistics are the service's own bookkeeping.
pub async fn transition_enrollment(
    tx: &mut Tx,
    enrollment: &EnrollmentRow,
    next: EnrollmentStatus,
    payment: Option<Uuid>,
) -> Result<EnrollmentRow, ApiError> {
    let change = decide_transition(enrollment.status, next)?;
    // The status change runs under the caller's policies and column rules (as the system
    // role when the payment events drive it); the statistics are bookkeeping.
    let updated = if change.reopens {
        // A reopened enrollment starts afresh at the course's current price.
        let course = courses::get(tx, enrollment.course_id)
            .await?
            .ok_or_else(|| ApiError::not_found("course"))?;
        let reopened = enrollments::reopen(
            tx,
            enrollment.id,
            next,
            course.price_minor,
            &course.currency,
        )
        .await?;
        match payment {
            Some(_) => {
                enrollments::set_status(
                    tx,
                    EnrollmentId::new(enrollment.id),
                    next,
                    payment.map(PaymentId::new),
                )
                .await?
            }
            None => reopened,
        }
    } else {
        enrollments::set_status(
            tx,
            EnrollmentId::new(enrollment.id),
            next,
            payment.map(PaymentId::new),
        )
        .await?
    };
    let caller_bookkeeping = tx.bookkeeping().is_some();
    if !caller_bookkeeping {
        tx.begin_bookkeeping("enrollment counts").await?;
    }
    let course = courses::get(tx, enrollment.course_id)
        .await?
        .ok_or_else(|| ApiError::not_found("course"))?;
    tx.publish(enrollment_changed(&updated, &course.title, change.verb()))
        .await?;
    // Last, so that the count slot, which other enrollments of the course may share, stays
    // locked for the shortest time.
    if change.moves_counts() {
        courses::add_to_enrollment_counts(
            tx,
            enrollment.course_id,
            change.enrolled_delta,
            change.completed_delta,
        )
        .await?;
    }
    if !caller_bookkeeping {
        tx.end_bookkeeping().await?;
    }
    Ok(updated)
}
