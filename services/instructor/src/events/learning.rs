//! Learning's events become this service's projections: course and enrollment state for
//! the dashboards, the student activity timeline, and a revenue transaction for every
//! paid enrollment that is activated. Workshops and their registrations are applied by
//! [`super::workshops`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lyceum_platform::convert::from_timestamp;
use lyceum_platform::db::Tx;
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::events::unpack;
use lyceum_proto::events::v1 as pb;
use uuid::Uuid;

use super::revenue::{Sale, record_sale};
use super::workshops;
use crate::domain::{ActivityType, CourseId, SaleItem, UserId};
use crate::store::projections::{
    self, EnrollmentChange, EnrollmentState, NewActivity, ProgressState,
};

pub fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec::new("instructor-learning", "learning", "learning.>")
}

pub struct LearningEvents;

pub(super) fn id(raw: &str) -> anyhow::Result<Uuid> {
    Ok(Uuid::try_parse(raw)?)
}

pub(super) fn optional_id(raw: &str) -> Option<Uuid> {
    Uuid::try_parse(raw).ok()
}

fn occurred_at(event: &pb::EventEnvelope) -> DateTime<Utc> {
    event
        .occurred_at
        .as_ref()
        .and_then(|t| from_timestamp(t).ok())
        .unwrap_or_else(Utc::now)
}

#[async_trait]
impl EventHandler for LearningEvents {
    async fn handle(&self, tx: &mut Tx, event: &pb::EventEnvelope) -> anyhow::Result<()> {
        let at = occurred_at(event);
        let verb = event.event_type.rsplit('.').next().unwrap_or_default();
        match event.event_type.as_str() {
            // `updated` carries the course's current status and title at the same version
            // counter: a newer title replaces the dashboards' copy.
            "lyceum.learning.course.published"
            | "lyceum.learning.course.archived"
            | "lyceum.learning.course.updated" => {
                let course: pb::CourseStatusChanged = unpack(event)?;
                let instructor_id = id(&course.instructor_id)?;
                let published = projections::course_status(
                    tx,
                    CourseId::new(id(&course.course_id)?),
                    UserId::new(instructor_id),
                    &course.title,
                    &course.status,
                    course.version,
                )
                .await?;
                projections::add_to_stats(tx, instructor_id, 0, published, (0, 0)).await?;
            }
            t if t.starts_with("lyceum.learning.enrollment.") => {
                let enrollment: pb::EnrollmentChanged = unpack(event)?;
                apply_enrollment(tx, &enrollment, verb, at).await?;
            }
            // `updated` carries the workshop's current status, title and schedule at the
            // same version counter as the status events.
            "lyceum.learning.workshop.published"
            | "lyceum.learning.workshop.archived"
            | "lyceum.learning.workshop.cancelled"
            | "lyceum.learning.workshop.updated" => {
                let workshop: pb::WorkshopStatusChanged = unpack(event)?;
                workshops::apply_workshop_status(tx, &workshop).await?;
            }
            t if t.starts_with("lyceum.learning.workshop_registration.") => {
                let registration: pb::WorkshopRegistrationChanged = unpack(event)?;
                workshops::apply_registration(tx, &registration, verb, at).await?;
            }
            "lyceum.learning.lesson_progress.recorded" => {
                let progress: pb::LessonProgressRecorded = unpack(event)?;
                apply_progress(tx, &progress, event, at).await?;
            }
            "lyceum.learning.review.created"
            | "lyceum.learning.review.updated"
            | "lyceum.learning.review.deleted" => {
                let review: pb::ReviewChanged = unpack(event)?;
                let course_id = id(&review.course_id)?;
                let instructor_id = id(&review.instructor_id)?;
                let rating = projections::course_rating(
                    tx,
                    CourseId::new(course_id),
                    UserId::new(instructor_id),
                    (review.course_rating_sum, review.course_review_count),
                    review.version,
                )
                .await?;
                projections::add_to_stats(tx, instructor_id, 0, 0, rating).await?;
                if verb == "created" {
                    projections::add_activity(
                        tx,
                        NewActivity {
                            instructor_id,
                            organization_id: optional_id(&event.organization_id),
                            student_id: id(&review.student_id)?,
                            activity_type: ActivityType::ReviewPosted.as_str(),
                            course_id: Some(course_id),
                            lesson_id: None,
                            workshop_id: None,
                            at,
                        },
                    )
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn apply_enrollment(
    tx: &mut Tx,
    enrollment: &pb::EnrollmentChanged,
    verb: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let enrollment_id = id(&enrollment.enrollment_id)?;
    let course_id = id(&enrollment.course_id)?;
    let instructor_id = id(&enrollment.instructor_id)?;
    let student_id = id(&enrollment.student_id)?;
    let organization_id = optional_id(&enrollment.organization_id);
    let activity = match verb {
        "activated" => Some(ActivityType::Enrolled),
        "completed" => Some(ActivityType::CourseCompleted),
        "cancelled" => Some(ActivityType::EnrollmentCancelled),
        _ => None,
    };
    // The state, the course's counts (which follow the statuses this projection holds:
    // exact whatever order the events come in, and learning's write need not carry them),
    // the timeline and the distinct students, in one round trip.
    projections::apply_enrollment_change(
        tx,
        EnrollmentChange {
            state: EnrollmentState {
                enrollment_id,
                course_id,
                instructor_id,
                organization_id,
                student_id,
                status: enrollment.status.clone(),
                price_minor: enrollment.price_minor,
                currency: enrollment.currency.clone(),
                // Events published before the field existed: their own time, the earliest
                // of which wins.
                enrolled_at: enrollment
                    .enroll_time
                    .as_ref()
                    .and_then(|t| from_timestamp(t).ok())
                    .unwrap_or(at),
                version: enrollment.version,
            },
            course_title: &enrollment.course_title,
            activity: activity.map(|activity| (activity.as_str(), at)),
            activation: verb == "activated",
        },
    )
    .await?;
    if verb == "activated" && enrollment.price_minor > 0 {
        record_sale(
            tx,
            Sale {
                payment_id: optional_id(&enrollment.payment_id),
                instructor_id,
                organization_id,
                student_id,
                item: SaleItem::CourseEnrollment {
                    course_id,
                    enrollment_id,
                },
            },
        )
        .await?;
    }
    Ok(())
}

async fn apply_progress(
    tx: &mut Tx,
    progress: &pb::LessonProgressRecorded,
    event: &pb::EventEnvelope,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let enrollment_id = id(&progress.enrollment_id)?;
    let course_id = id(&progress.course_id)?;
    let instructor_id = id(&progress.instructor_id)?;
    let student_id = id(&progress.student_id)?;
    projections::enrollment_progress(
        tx,
        ProgressState {
            enrollment_id,
            course_id,
            instructor_id,
            organization_id: optional_id(&event.organization_id),
            student_id,
            progress_percentage: progress.progress_percentage,
            completed_lessons: progress.completed_lessons,
            total_lessons: progress.total_lessons,
            at,
            version: progress.version,
        },
    )
    .await?;
    let lesson_id = optional_id(&progress.lesson_id);
    let mut activities = Vec::new();
    if progress.lesson_started_now {
        activities.push(ActivityType::LessonStarted);
    }
    if progress.lesson_completed_now {
        activities.push(ActivityType::LessonCompleted);
    }
    if progress.quiz_recorded && progress.quiz_passed {
        activities.push(ActivityType::QuizPassed);
    }
    for activity in activities {
        projections::add_activity(
            tx,
            NewActivity {
                instructor_id,
                organization_id: optional_id(&event.organization_id),
                student_id,
                activity_type: activity.as_str(),
                course_id: Some(course_id),
                lesson_id,
                workshop_id: None,
                at,
            },
        )
        .await?;
    }
    Ok(())
}
