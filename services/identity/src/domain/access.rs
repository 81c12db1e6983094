//! The plainest refusal, and the rights only platform admins hold: creating
//! organizations, rotating signing keys, creating and disabling service accounts.

use lyceum_platform::auth::Principal;

/// The caller lacks the right, and may know the thing exists: PERMISSION_DENIED with the
/// kit's generic message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAllowed;

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the caller is not allowed to do this")
    }
}

/// Platform admins only. Service accounts never pass, whatever their token carries: what
/// they may do is their scopes.
pub fn require_platform_admin(principal: &Principal) -> Result<(), NotAllowed> {
    if principal.has_platform_access() {
        Ok(())
    } else {
        Err(NotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use lyceum_platform::auth::{PrincipalKind, roles};

    #[test]
    fn only_platform_admins_pass() {
        assert_eq!(require_platform_admin(&platform_admin()), Ok(()));
        assert_eq!(require_platform_admin(&org_admin(org(1))), Err(NotAllowed));
        assert_eq!(require_platform_admin(&member(org(1))), Err(NotAllowed));
        assert_eq!(require_platform_admin(&service(&[])), Err(NotAllowed));
        // An admin role held in one organization is not platform-wide.
        assert_eq!(
            require_platform_admin(&with_roles(&[(roles::ADMIN, Some(org(1)))])),
            Err(NotAllowed)
        );
    }

    #[test]
    fn a_service_account_carrying_the_admin_role_is_no_platform_admin() {
        // `has_role(ADMIN, None)` let this through; platform access is for users only.
        let mut forged = platform_admin();
        forged.kind = PrincipalKind::Service;
        assert!(forged.has_role(roles::ADMIN, None));
        assert_eq!(require_platform_admin(&forged), Err(NotAllowed));
        assert_eq!(
            NotAllowed.to_string(),
            "the caller is not allowed to do this"
        );
    }
}
