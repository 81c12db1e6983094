//! Role grants: who may grant or revoke which role where, and to whom.

use lyceum_platform::auth::Principal;
use uuid::Uuid;

use super::{NotAllowed, Role, UserScope};

/// A role, platform-wide or in one organization: what a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantScope {
    pub role: Role,
    pub organization_id: Option<Uuid>,
}

/// Why a role may not be granted (or revoked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    NotAllowed,
    /// Org admins grant to their own organization's members only; others' existence does
    /// not leak.
    UserNotFound,
    /// An organization's roles go to its own members (a violation on `organization_id`).
    NotTheUsersOrganization,
}

impl std::fmt::Display for GrantRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAllowed => NotAllowed.fmt(f),
            Self::UserNotFound => f.write_str("user not found"),
            Self::NotTheUsersOrganization => f.write_str("must be the user's own organization"),
        }
    }
}

/// Who may grant or revoke a role: platform admins anything; org admins the
/// organization-scoped roles of their own organization.
pub fn may_grant(principal: &Principal, grant: &GrantScope) -> Result<(), GrantRefusal> {
    let allowed = match grant.organization_id {
        _ if principal.has_platform_access() => true,
        Some(org) => !grant.role.is_platform_wide() && principal.administers(org),
        None => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(GrantRefusal::NotAllowed)
    }
}

/// Granting a role to a user: the caller may grant it ([`may_grant`]), org admins only to
/// their organization's members, and an organization's roles only to its own members:
/// tenancy (and its row-level security) follows the user's home organization.
pub fn decide_grant(
    principal: &Principal,
    user: &UserScope,
    grant: &GrantScope,
) -> Result<(), GrantRefusal> {
    may_grant(principal, grant)?;
    if !principal.has_platform_access() && user.organization_id != grant.organization_id {
        return Err(GrantRefusal::UserNotFound);
    }
    if grant.organization_id.is_some() && user.organization_id != grant.organization_id {
        return Err(GrantRefusal::NotTheUsersOrganization);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use lyceum_platform::auth::scopes;

    fn grant(role: Role, organization_id: Option<Uuid>) -> GrantScope {
        GrantScope {
            role,
            organization_id,
        }
    }

    #[test]
    fn org_admins_grant_their_organizations_roles_and_platform_admins_anything() {
        let acme = org(1);
        let admin = org_admin(acme);
        assert_eq!(
            may_grant(&admin, &grant(Role::TeamLead, Some(acme))),
            Ok(())
        );
        assert_eq!(
            may_grant(&admin, &grant(Role::OrgAdmin, Some(acme))),
            Ok(())
        );
        for refused in [
            grant(Role::TeamLead, Some(org(2))),
            grant(Role::Admin, Some(acme)),
            grant(Role::Admin, None),
            grant(Role::Instructor, None),
        ] {
            assert_eq!(
                may_grant(&admin, &refused),
                Err(GrantRefusal::NotAllowed),
                "{refused:?}"
            );
        }
        assert_eq!(
            may_grant(&platform_admin(), &grant(Role::Admin, None)),
            Ok(())
        );
        assert_eq!(
            may_grant(&member(acme), &grant(Role::Member, Some(acme))),
            Err(GrantRefusal::NotAllowed)
        );
        assert_eq!(
            may_grant(&service(&scopes::ALL), &grant(Role::OrgAdmin, Some(acme))),
            Err(GrantRefusal::NotAllowed)
        );
    }

    #[test]
    fn grants_go_to_the_organizations_own_members_checked_in_order() {
        let acme = org(1);
        let alice = user_in(user_id(1), Some(acme));
        let outsider = user_in(user_id(2), Some(org(2)));
        let loner_user = user_in(user_id(3), None);
        let lead = grant(Role::TeamLead, Some(acme));
        assert_eq!(decide_grant(&org_admin(acme), &alice, &lead), Ok(()));
        assert_eq!(
            decide_grant(&org_admin(acme), &outsider, &lead),
            Err(GrantRefusal::UserNotFound)
        );
        // The right to grant is checked before the user is.
        assert_eq!(
            decide_grant(&member(acme), &outsider, &lead),
            Err(GrantRefusal::NotAllowed)
        );
        // Platform admins see every user, and are told where the role belongs.
        assert_eq!(
            decide_grant(&platform_admin(), &outsider, &lead),
            Err(GrantRefusal::NotTheUsersOrganization)
        );
        assert_eq!(
            decide_grant(&platform_admin(), &loner_user, &lead),
            Err(GrantRefusal::NotTheUsersOrganization)
        );
        assert_eq!(
            decide_grant(&platform_admin(), &alice, &grant(Role::Instructor, None)),
            Ok(())
        );
        assert_eq!(
            GrantRefusal::NotTheUsersOrganization.to_string(),
            "must be the user's own organization"
        );
        assert_eq!(GrantRefusal::UserNotFound.to_string(), "user not found");
    }
}
