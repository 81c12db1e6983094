//! Rows of the store as protobuf messages.

use lyceum_platform::convert::{json_to_struct, opt_id_to_string, opt_timestamp, timestamp};
use lyceum_platform::money;
use lyceum_proto::learning::v1 as pb;

use crate::domain::Permission;
use crate::domain::assessment::{Dimension, Weight, as_points};
use crate::domain::certificate::CertificateStatus;
use crate::store::assessments::{AnswerRow, AssessmentRow, QuestionRow, TemplateRow};
use crate::store::certificates::{CertificateRow, Verification};
use crate::store::content::{LessonRow, ModuleRow};
use crate::store::courses::CourseRow;
use crate::store::enrollments::EnrollmentRow;
use crate::store::instructors::InstructorRow;
use crate::store::progress::{LessonProgressRow, StudentProgressRow};
use crate::store::registrations::RegistrationRow;
use crate::store::resources::ResourceRow;
use crate::store::reviews::ReviewRow;
use crate::store::workshops::{FacilitatorRow, FeedbackRow, WorkshopRow};

pub fn course(row: CourseRow) -> pb::Course {
    pb::Course {
        id: row.id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        title: row.title,
        description: row.description,
        category: row.category,
        tags: row.tags,
        what_you_will_learn: row.what_you_will_learn,
        target_audience: row.target_audience,
        price: Some(money::proto(row.price_minor, &row.currency)),
        status: row.status.to_proto(),
        visibility: row.visibility.to_proto(),
        certificate: Some(pb::CertificateSettings {
            enabled: row.certificate_enabled,
            template_url: row.certificate_template_url,
        }),
        allow_comments: Some(row.allow_comments),
        allow_questions: Some(row.allow_questions),
        drip_content: row.drip_content,
        drip_schedule: Some(json_to_struct(&row.drip_schedule)),
        cohort_based: row.cohort_based,
        default_duration_weeks: row.default_duration_weeks.unwrap_or_default(),
        enrollment_type: row.enrollment_type.to_proto(),
        statistics: Some(pb::CourseStatistics {
            enrolled_count: row.enrolled_count,
            completed_count: row.completed_count,
            average_rating: row.average_rating,
            review_count: row.review_count,
            lesson_count: i64::from(row.lesson_count),
        }),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        publish_time: opt_timestamp(row.published_at),
        total_revenue: Some(money::proto(row.total_revenue_minor, &row.currency)),
    }
}

pub fn module(row: ModuleRow, lessons: Vec<pb::Lesson>) -> pb::Module {
    pb::Module {
        id: row.id.to_string(),
        course_id: row.course_id.to_string(),
        title: row.title,
        description: row.description,
        position: row.position,
        lessons,
    }
}

pub fn lesson(row: LessonRow) -> pb::Lesson {
    pb::Lesson {
        id: row.id.to_string(),
        module_id: row.module_id.to_string(),
        course_id: row.course_id.to_string(),
        title: row.title,
        r#type: row.lesson_type.to_proto(),
        content_url: row.content_url,
        body: row.body,
        duration_seconds: row.duration_seconds,
        position: row.position,
        preview: row.preview,
        release_time: None,
        withheld: false,
    }
}

pub fn instructor(row: InstructorRow) -> pb::CourseInstructor {
    pb::CourseInstructor {
        course_id: row.course_id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        role: row.role.to_proto(),
        permissions: row
            .permissions
            .into_iter()
            .map(Permission::to_proto)
            .collect(),
        add_time: Some(timestamp(row.added_at)),
    }
}

pub fn enrollment(row: EnrollmentRow) -> pb::Enrollment {
    pb::Enrollment {
        id: row.id.to_string(),
        course_id: row.course_id.to_string(),
        student_id: row.student_id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        status: row.status.to_proto(),
        price_paid: Some(money::proto(row.price_minor, &row.currency)),
        payment_id: opt_id_to_string(row.payment_id),
        cohort_id: opt_id_to_string(row.cohort_id),
        enroll_time: Some(timestamp(row.enrolled_at)),
        activate_time: opt_timestamp(row.activated_at),
        complete_time: opt_timestamp(row.completed_at),
        cancel_time: opt_timestamp(row.cancelled_at),
        refund_time: opt_timestamp(row.refunded_at),
    }
}

pub fn student_progress(row: StudentProgressRow) -> pb::StudentProgress {
    let average_quiz_score = if row.quizzes_taken > 0 {
        (row.quiz_score_sum as f64 / f64::from(row.quizzes_taken) * 100.0).round() / 100.0
    } else {
        0.0
    };
    pb::StudentProgress {
        enrollment_id: row.enrollment_id.to_string(),
        course_id: row.course_id.to_string(),
        student_id: row.student_id.to_string(),
        total_lessons: row.total_lessons,
        completed_lessons: row.completed_lessons,
        progress_percentage: row.progress_percentage,
        total_watch_time_seconds: row.total_watch_time_seconds,
        quizzes_taken: row.quizzes_taken,
        quizzes_passed: row.quizzes_passed,
        average_quiz_score,
        engagement_score: row.engagement_score,
        last_activity_time: opt_timestamp(row.last_activity_at),
        certificate_url: row.certificate_url,
    }
}

pub fn lesson_progress(row: LessonProgressRow) -> pb::LessonProgress {
    pb::LessonProgress {
        lesson_id: row.lesson_id.to_string(),
        status: row.status.to_proto(),
        progress_percent: row.progress_percent,
        watch_time_seconds: row.watch_time_seconds,
        quiz_score: row.quiz_score,
        quiz_passed: row.quiz_passed,
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub fn review(row: ReviewRow) -> pb::Review {
    pb::Review {
        id: row.id.to_string(),
        course_id: row.course_id.to_string(),
        student_id: row.student_id.to_string(),
        rating: row.rating,
        content_quality_rating: row.content_quality_rating.unwrap_or_default(),
        instructor_rating: row.instructor_rating.unwrap_or_default(),
        value_rating: row.value_rating.unwrap_or_default(),
        title: row.title,
        text: row.review_text,
        instructor_response: row.instructor_response.unwrap_or_default(),
        response_time: opt_timestamp(row.responded_at),
        helpful_count: row.helpful_count,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub fn workshop(row: WorkshopRow) -> pb::Workshop {
    let registered_count = row.seats_taken();
    pb::Workshop {
        id: row.id.to_string(),
        instructor_id: row.instructor_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        title: row.title,
        description: row.description,
        pillar: row.pillar.to_proto(),
        level: row.level.to_proto(),
        format: row.format.to_proto(),
        start_time: Some(timestamp(row.start_time)),
        end_time: Some(timestamp(row.end_time)),
        time_zone: row.time_zone,
        location: row.location,
        meeting_url: row.meeting_url,
        capacity: row.capacity,
        seats_remaining: row.seats_remaining,
        price: Some(money::proto(row.price_minor, &row.currency)),
        early_bird_price_minor: row.early_bird_price_minor.unwrap_or_default(),
        early_bird_end_time: opt_timestamp(row.early_bird_ends_at),
        outcomes: row.outcomes,
        tags: row.tags,
        prerequisites: row.prerequisites,
        status: row.status.to_proto(),
        visibility: row.visibility.to_proto(),
        featured: row.featured,
        certificate: Some(pb::CertificateSettings {
            enabled: row.certificate_enabled,
            template_url: row.certificate_template_url,
        }),
        statistics: Some(pb::WorkshopStatistics {
            registered_count,
            attended_count: row.attended_count,
            feedback_count: row.feedback_count,
            average_satisfaction: row.average_satisfaction,
        }),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        publish_time: opt_timestamp(row.published_at),
        cancel_time: opt_timestamp(row.cancelled_at),
        cancel_reason: row.cancel_reason,
    }
}

pub fn facilitator(row: FacilitatorRow) -> pb::Facilitator {
    pb::Facilitator {
        workshop_id: row.workshop_id.to_string(),
        facilitator_id: row.facilitator_id.to_string(),
        role: row.role.to_proto(),
        add_time: Some(timestamp(row.added_at)),
    }
}

pub fn registration(row: RegistrationRow) -> pb::Registration {
    pb::Registration {
        id: row.id.to_string(),
        workshop_id: row.workshop_id.to_string(),
        user_id: row.user_id.to_string(),
        status: row.status.to_proto(),
        price: Some(money::proto(row.price_minor, &row.currency)),
        payment_id: opt_id_to_string(row.payment_id),
        hold_until: opt_timestamp(row.hold_until),
        register_time: Some(timestamp(row.registered_at)),
        attend_time: opt_timestamp(row.attended_at),
        cancel_time: opt_timestamp(row.cancelled_at),
        cancel_reason: row.cancel_reason,
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub fn feedback(row: FeedbackRow) -> pb::Feedback {
    pb::Feedback {
        id: row.id.to_string(),
        workshop_id: row.workshop_id.to_string(),
        user_id: row.user_id.to_string(),
        overall_satisfaction: row.overall_satisfaction,
        content_rating: row.content_rating.unwrap_or_default(),
        delivery_rating: row.delivery_rating.unwrap_or_default(),
        interaction_rating: row.interaction_rating.unwrap_or_default(),
        nps_score: row.nps_score,
        would_recommend: row.would_recommend,
        what_went_well: row.what_went_well,
        what_could_improve: row.what_could_improve,
        create_time: Some(timestamp(row.created_at)),
    }
}

pub fn certificate(row: CertificateRow, now: chrono::DateTime<chrono::Utc>) -> pb::Certificate {
    let status = CertificateStatus::at(row.revoked_at, row.expires_at, now);
    pb::Certificate {
        id: row.id.to_string(),
        number: row.number,
        user_id: row.user_id.to_string(),
        r#type: row.certificate_type.to_proto(),
        course_id: opt_id_to_string(row.course_id),
        workshop_id: opt_id_to_string(row.workshop_id),
        title: row.title,
        skills: row.skills,
        issue_time: Some(timestamp(row.issued_at)),
        expire_time: opt_timestamp(row.expires_at),
        issued_by: opt_id_to_string(row.issued_by),
        status: status.to_proto(),
        revoke_time: opt_timestamp(row.revoked_at),
        revoke_reason: row.revoke_reason.unwrap_or_default(),
    }
}

/// What a certificate shows to anyone who verifies it: never an email or an id.
pub fn verification(
    found: Verification,
    now: chrono::DateTime<chrono::Utc>,
) -> pb::VerifyCertificateResponse {
    let status = CertificateStatus::at(found.revoked_at, found.expires_at, now);
    pb::VerifyCertificateResponse {
        number: found.number,
        recipient_name: found.recipient_name,
        r#type: found.certificate_type.to_proto(),
        title: found.title,
        skills: found.skills,
        issue_time: Some(timestamp(found.issued_at)),
        expire_time: opt_timestamp(found.expires_at),
        status: status.to_proto(),
        revoke_time: opt_timestamp(found.revoked_at),
    }
}

pub fn resource(row: ResourceRow) -> pb::Resource {
    pb::Resource {
        id: row.id.to_string(),
        author_id: row.author_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        course_id: opt_id_to_string(row.course_id),
        r#type: row.resource_type.to_proto(),
        title: row.title,
        description: row.description,
        body: row.body,
        content_url: row.content_url,
        tags: row.tags,
        access_level: row.access_level.to_proto(),
        status: row.status.to_proto(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        publish_time: opt_timestamp(row.published_at),
    }
}

pub fn question(row: QuestionRow) -> pb::Question {
    pb::Question {
        id: row.id.to_string(),
        dimension: row.dimension.to_proto(),
        answer_type: row.answer_type.to_proto(),
        prompt: row.prompt,
        options: row.options,
        weight: Weight::from_milli(row.weight_milli).as_f64(),
        position: row.position,
    }
}

pub fn template(row: TemplateRow, questions: Vec<QuestionRow>) -> pb::Template {
    pb::Template {
        id: row.id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        created_by: row.created_by.to_string(),
        name: row.name,
        description: row.description,
        questions: questions.into_iter().map(question).collect(),
        create_time: Some(timestamp(row.created_at)),
    }
}

pub fn answer(row: AnswerRow) -> pb::Answer {
    pb::Answer {
        question_id: row.question_id.to_string(),
        dimension: row.dimension.to_proto(),
        value: row.value.map(i32::from),
        text: row.text_answer.unwrap_or_default(),
        answer_time: Some(timestamp(row.answered_at)),
    }
}

/// The recommendations a completion stored (see `api::assessments::recommendations_json`).
fn recommendations(stored: Option<&serde_json::Value>) -> Vec<pb::Recommendation> {
    let Some(serde_json::Value::Array(items)) = stored else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let dimension = Dimension::from_db(item.get("dimension")?.as_str()?).ok()?;
            Some(pb::Recommendation {
                dimension: dimension.to_proto(),
                score: as_points(item.get("score_hundredths")?.as_i64()?),
                text: item.get("text")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

pub fn assessment(row: AssessmentRow, answers: Vec<AnswerRow>) -> pb::Assessment {
    pb::Assessment {
        id: row.id.to_string(),
        template_id: row.template_id.to_string(),
        user_id: row.user_id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        r#type: row.assessment_type.to_proto(),
        status: row.status.to_proto(),
        scores: Some(pb::DimensionScores {
            individual: row.individual.map(as_points),
            leadership: row.leadership.map(as_points),
            cultural: row.cultural.map(as_points),
            embedding: row.embedding.map(as_points),
            velocity: row.velocity.map(as_points),
        }),
        overall_score: row.overall.map(as_points),
        answer_count: row.answer_count,
        recommendations: recommendations(row.recommendations.as_ref()),
        start_time: Some(timestamp(row.started_at)),
        complete_time: opt_timestamp(row.completed_at),
        abandon_time: opt_timestamp(row.abandoned_at),
        version: row.version,
        answers: answers.into_iter().map(answer).collect(),
    }
}
