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
use lyceum_platform::error::{
    CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, pg_error_code,
};

/// Maps the constraint errors a write can hit to what the caller did wrong; anything
/// else is the service's problem.
pub(crate) fn write_error(error: sqlx::Error, duplicate: (&str, &str), missing: &str) -> ApiError {
    match pg_error_code(&error).as_deref() {
        Some(UNIQUE_VIOLATION) => ApiError::already_exists(duplicate.0, duplicate.1),
        Some(FOREIGN_KEY_VIOLATION) => ApiError::not_found(missing),
        Some(CHECK_VIOLATION) => ApiError::FailedPrecondition(format!(
            "the change breaks a rule of the {} ({})",
            missing,
            lyceum_platform::error::pg_constraint(&error).unwrap_or("check")
        )),
        _ => error.into(),
    }
}
