//! SQL of the learning schema, one module per aggregate. Every function takes the
//! caller's transaction, which carries the tenant context for RLS.

pub mod content;
pub mod courses;
pub mod enrollments;
pub mod instructors;
pub mod progress;
pub mod reviews;
pub mod statistics;

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
];

/// A write's constraint failure as the caller's mistake (see the kit's `write_error`),
/// `missing` naming what a dangling reference points at.
pub(crate) fn write_error(error: sqlx::Error, missing: &str) -> ApiError {
    lyceum_platform::error::write_error(error, UNIQUE_FIELDS, missing)
}
