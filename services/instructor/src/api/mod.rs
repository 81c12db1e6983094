//! The gRPC handlers of instructor revenue.

mod dashboard;
mod payments;
mod payouts;
mod profiles;
mod wire;

use lyceum_platform::auth::Principal;
use lyceum_platform::convert::{TimePosition, decode_time_position, page_size};
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
use lyceum_platform::{ApiError, Violations};
use uuid::Uuid;

#[derive(Clone)]
pub struct InstructorApi {
    db: Database,
    /// Seals instructors' payment details.
    sealer: SecretBox,
}

impl InstructorApi {
    pub fn new(db: Database, sealer: SecretBox) -> Self {
        Self { db, sealer }
    }
}

/// An instructor's own figures are theirs and the platform's; a student or another
/// instructor is refused.
pub(crate) fn may_read_instructor(
    principal: &Principal,
    instructor_id: Uuid,
) -> Result<(), ApiError> {
    if principal.is_user(instructor_id) || principal.has_platform_access() {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(
            "only the instructor and platform admins see these figures".into(),
        ))
    }
}

/// The page a list request asks for, validated: its size and where it starts. The
/// instructor the list is about is checked before it (see `InstructorApi::instructor_of`).
struct Page {
    limit: i64,
    after: Option<TimePosition>,
}

impl Page {
    fn parse(requested_size: i32, token: &str) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let limit = page_size(&mut v, requested_size);
        let after = decode_time_position(&mut v, token);
        v.into_result()?;
        Ok(Self { limit, after })
    }
}

/// A refused refund: nothing left to give back is the payment's state, more than is left
/// is the caller's amount.
impl From<crate::domain::RefundRefusal> for ApiError {
    fn from(refusal: crate::domain::RefundRefusal) -> Self {
        match refusal {
            crate::domain::RefundRefusal::NotPaid(_) => {
                ApiError::FailedPrecondition(refusal.to_string())
            }
            crate::domain::RefundRefusal::ExceedsRemaining { .. } => {
                ApiError::invalid("amount_minor", refusal.to_string())
            }
        }
    }
}

impl From<crate::events::revenue::RefundError> for ApiError {
    fn from(error: crate::events::revenue::RefundError) -> Self {
        use crate::events::revenue::RefundError;
        match error {
            RefundError::UnknownPayment => ApiError::not_found("payment"),
            RefundError::Refused(refusal) => refusal.into(),
            RefundError::Database(error) => error.into(),
        }
    }
}
