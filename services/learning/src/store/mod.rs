//! SQL of the learning schema, one module per aggregate. Every function takes the
//! caller's transaction, which carries the tenant context for RLS.

pub mod assessments;
pub mod certificates;
pub mod content;
pub mod courses;
pub mod enrollments;
pub mod instructors;
pub mod progress;
pub mod registrations;
pub mod resources;
pub mod reviews;
pub mod statistics;
pub mod workshops;

pub type Tx = lyceum_platform::db::Tx;

use lyceum_platform::ApiError;
use lyceum_platform::error::UniqueField;

/// Every unique constraint a learning write can hit, and the field it answers on.
pub const UNIQUE_FIELDS: &[UniqueField] = &[
    UniqueField {
        constraint: "course_modules_course_id_position_key",
        field: "position",
        message: "a module already has this position",
    },
    UniqueField {
        constraint: "course_lessons_module_id_position_key",
        field: "position",
        message: "a lesson already has this position",
    },
    UniqueField {
        constraint: "course_instructors_pkey",
        field: "instructor_id",
        message: "already on the teaching team",
    },
    UniqueField {
        constraint: "enrollments_course_id_student_id_key",
        field: "course_id",
        message: "the student is already enrolled in this course",
    },
    UniqueField {
        constraint: "course_reviews_course_id_student_id_key",
        field: "course_id",
        message: "the student has already reviewed this course",
    },
    UniqueField {
        constraint: "workshop_registrations_workshop_id_user_id_key",
        field: "workshop_id",
        message: "the user is already registered for this workshop",
    },
    UniqueField {
        constraint: "workshop_feedback_workshop_id_user_id_key",
        field: "workshop_id",
        message: "the attendee has already given feedback on this workshop",
    },
    UniqueField {
        constraint: "certificates_live_course_key",
        field: "course_id",
        message: "the user already holds a certificate for this course",
    },
    UniqueField {
        constraint: "certificates_live_workshop_key",
        field: "workshop_id",
        message: "the user already holds a certificate for this workshop",
    },
    UniqueField {
        constraint: "workshop_facilitators_pkey",
        field: "facilitator_id",
        message: "already facilitates this workshop",
    },
    UniqueField {
        constraint: "assessment_questions_template_id_position_key",
        field: "template.questions",
        message: "two questions share a position",
    },
    UniqueField {
        constraint: "assessment_answers_assessment_id_question_id_key",
        field: "question_id",
        message: "the question is already answered",
    },
];

/// A write's constraint failure as the caller's mistake (see the kit's `write_error`),
/// `missing` naming what a dangling reference points at.
pub(crate) fn write_error(error: sqlx::Error, missing: &str) -> ApiError {
    lyceum_platform::error::write_error(error, UNIQUE_FIELDS, missing)
}
