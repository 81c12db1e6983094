//! The gRPC handlers of instructor revenue.

mod dashboard;
mod payments;
mod payouts;
mod profiles;
mod wire;

use lyceum_platform::ApiError;
use lyceum_platform::auth::Principal;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
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
