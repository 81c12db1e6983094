//! One error type for every service boundary, mapped once to canonical gRPC codes.
//!
//! Handlers return `Result<_, ApiError>`; the conversion to `tonic::Status` happens in one
//! place so that invalid input always carries `google.rpc.BadRequest` field violations and
//! nothing a caller did can surface as `INTERNAL`.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request, named by its path in the request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Accumulates every violation of a request so that the caller learns all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records the error of a fallible parse under `field`, returning the value when it parsed.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, otherwise the `INVALID_ARGUMENT` error.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    AlreadyExists { field: String, message: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// Too many attempts: `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` saying when
    /// to try again.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Aborted(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn already_exists(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::AlreadyExists {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn permission_denied() -> Self {
        Self::PermissionDenied("the caller is not allowed to do this".into())
    }

    pub fn unauthenticated() -> Self {
        Self::Unauthenticated("a valid access token is required".into())
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::ResourceExhausted(_) | Self::Throttled { .. } => Code::ResourceExhausted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Aborted(_) => Code::Aborted,
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable("the database is unavailable; retry later".into())
            }
            // A connection the database closed (a restart: 57P01-03) or lost (class 08):
            // the pool replaces it, and a retry gets another.
            _ if pg_error_code(&error)
                .is_some_and(|code| code.starts_with("57P0") || code.starts_with("08")) =>
            {
                Self::Unavailable("the database is unavailable; retry later".into())
            }
            // Row-level security refused the write: the service's own check let through
            // something the policies do not allow.
            _ if pg_error_code(&error).as_deref() == Some("42501") => {
                tracing::warn!(error = %error, "row-level security refused a write");
                Self::PermissionDenied("the caller is not allowed to do this".into())
            }
            // Text the database cannot store (NUL bytes, invalid encodings).
            _ if matches!(pg_error_code(&error).as_deref(), Some("22021" | "22P05")) => {
                Self::invalid("request", "contains characters that cannot be stored")
            }
            // A deadlock or serialization failure: nothing was written, a retry succeeds.
            _ if matches!(pg_error_code(&error).as_deref(), Some("40P01" | "40001")) => {
                Self::Aborted("the change collided with a concurrent one; retry it".into())
            }
            _ => Self::Internal(error.into()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        match error {
            ApiError::InvalidArgument(violations) => {
                // Status details travel in HTTP/2 trailers, which a client refuses past a
                // few kilobytes: a request with thousands of bad list items would turn its
                // own INVALID_ARGUMENT into a protocol error. The first ones are reported.
                let omitted = violations.len().saturating_sub(MAX_REPORTED_VIOLATIONS);
                let shown: Vec<FieldViolation> = violations
                    .into_iter()
                    .take(MAX_REPORTED_VIOLATIONS)
                    .map(|v| FieldViolation::new(bounded(&v.field), bounded(&v.description)))
                    .collect();
                let mut summary = shown
                    .iter()
                    .take(MAX_SUMMARIZED_VIOLATIONS)
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                let unsummarized = shown.len().saturating_sub(MAX_SUMMARIZED_VIOLATIONS) + omitted;
                if unsummarized > 0 {
                    summary.push_str(&format!("; and {unsummarized} more"));
                }
                let mut details = ErrorDetails::new();
                for violation in shown {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                Status::with_error_details(code, format!("invalid argument: {summary}"), details)
            }
            ApiError::AlreadyExists { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(bounded(&field), bounded(&message));
                Status::with_error_details(code, bounded(&message), details)
            }
            ApiError::Throttled {
                message,
                retry_after,
            } => {
                let details = ErrorDetails::with_retry_info(Some(retry_after));
                Status::with_error_details(code, message, details)
            }
            ApiError::Internal(error) => {
                // The cause goes to the log and the trace, never to the caller.
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
            other => Status::new(code, bounded(&other.to_string())),
        }
    }
}

/// Field violations carried in one status; the rest are counted in its message.
const MAX_REPORTED_VIOLATIONS: usize = 16;
/// Violations spelled out in the status message, which travels in a header.
const MAX_SUMMARIZED_VIOLATIONS: usize = 3;
/// Longest field path, description or message sent back, in bytes: some echo input.
const MAX_REPORTED_TEXT: usize = 160;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_REPORTED_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_REPORTED_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The PostgreSQL error code of a failed statement, if it was one.
pub fn pg_error_code(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

/// The name of the violated constraint, if the statement failed on one.
pub fn pg_constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|e| e.constraint())
}

/// A unique constraint, by its name in the schema, and the request field whose value it
/// keeps unique: a collision answers ALREADY_EXISTS on that field, whichever statement hit it.
#[derive(Debug, Clone, Copy)]
pub struct UniqueField {
    pub constraint: &'static str,
    pub field: &'static str,
    pub message: &'static str,
}

/// A write's constraint failure as what the caller did wrong: a unique violation as the
/// field of the constraint that failed (looked up by name in `uniques`), a missing
/// reference as NOT_FOUND of `missing`, a broken check as FAILED_PRECONDITION. Anything
/// else is the service's problem.
pub fn write_error(error: sqlx::Error, uniques: &[UniqueField], missing: &str) -> ApiError {
    match pg_error_code(&error).as_deref() {
        Some(UNIQUE_VIOLATION) => {
            let constraint = pg_constraint(&error).unwrap_or_default();
            match uniques.iter().find(|u| u.constraint == constraint) {
                Some(unique) => ApiError::already_exists(unique.field, unique.message),
                None => {
                    // Still the caller's conflict, but our table of constraints is missing
                    // one: say so in the log, not to the caller.
                    tracing::warn!(constraint, "unique violation of an unmapped constraint");
                    ApiError::already_exists("", "conflicts with an existing record")
                }
            }
        }
        Some(FOREIGN_KEY_VIOLATION) => ApiError::not_found(missing),
        Some(CHECK_VIOLATION) => ApiError::FailedPrecondition(format!(
            "the change breaks a rule of the {missing} ({})",
            pg_constraint(&error).unwrap_or("check")
        )),
        _ => error.into(),
    }
}

pub const UNIQUE_VIOLATION: &str = "23505";
pub const FOREIGN_KEY_VIOLATION: &str = "23503";
pub const CHECK_VIOLATION: &str = "23514";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_of_violations_fit_in_a_status_the_client_accepts() {
        let mut v = Violations::new();
        for i in 0..5000 {
            v.add(format!("ids[{i}]"), "x".repeat(10_000));
        }
        let status = Status::from(v.into_result().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().ends_with("; and 4997 more"),
            "{}",
            status.message()
        );
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), MAX_REPORTED_VIOLATIONS);
        assert_eq!(violations[0].field, "ids[0]");
        assert!(violations[0].description.len() <= MAX_REPORTED_TEXT + '…'.len_utf8());
        // Everything the status carries (base64 in a trailer) stays far below the 16 KiB
        // header list clients accept.
        let carried = status.details().len() * 4 / 3 + status.message().len();
        assert!(carried < 8 * 1024, "{carried} bytes");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_REPORTED_TEXT);
        let cut = bounded(&long);
        assert!(cut.ends_with('…') && cut.len() <= MAX_REPORTED_TEXT + '…'.len_utf8());
        assert_eq!(bounded("short"), "short");
    }
}
