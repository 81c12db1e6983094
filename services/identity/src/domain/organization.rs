//! Organizations and their teams: who sees them, who administers them, and which fields
//! only the platform changes. Outsiders are told an organization or team does not exist;
//! its members, that they may not.

use lyceum_platform::auth::Principal;
use uuid::Uuid;

/// A member of the organization, one of its admins, or anyone with platform access.
pub fn can_see_organization(principal: &Principal, org: Uuid) -> bool {
    principal.organization_id == Some(org) || principal.administers(org)
}

/// Why a caller may not act on an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationRefusal {
    /// The caller is outside the organization: its existence does not leak.
    NotFound,
    /// The caller sees the organization but lacks the right.
    NotAllowed,
}

impl std::fmt::Display for OrganizationRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("organization not found"),
            Self::NotAllowed => super::NotAllowed.fmt(f),
        }
    }
}

/// Not found for outsiders, not allowed for those who see the organization.
pub fn refusal_for(principal: &Principal, org: Uuid) -> OrganizationRefusal {
    if can_see_organization(principal, org) {
        OrganizationRefusal::NotAllowed
    } else {
        OrganizationRefusal::NotFound
    }
}

/// Reading an organization, or listing its teams: those who see it.
pub fn may_see_organization(principal: &Principal, org: Uuid) -> Result<(), OrganizationRefusal> {
    if can_see_organization(principal, org) {
        Ok(())
    } else {
        Err(OrganizationRefusal::NotFound)
    }
}

/// Administering an organization (creating its teams): its admins and platform admins.
pub fn may_administer(principal: &Principal, org: Uuid) -> Result<(), OrganizationRefusal> {
    if principal.administers(org) {
        Ok(())
    } else {
        Err(refusal_for(principal, org))
    }
}

/// The subscription: billing, which belongs to the platform, not to the organization's
/// own admins.
pub const BILLING_FIELDS: [&str; 2] = ["subscription_tier", "subscription_status"];

/// Whether an update touching `paths` changes billing.
pub fn touches_billing<'a>(mut paths: impl Iterator<Item = &'a str>) -> bool {
    paths.any(|path| BILLING_FIELDS.contains(&path))
}

/// Updating an organization: its admins, and platform admins alone for billing.
pub fn decide_organization_update(
    principal: &Principal,
    org: Uuid,
    touches_billing: bool,
) -> Result<(), OrganizationRefusal> {
    if !principal.administers(org) || (touches_billing && !principal.has_platform_access()) {
        return Err(refusal_for(principal, org));
    }
    Ok(())
}

/// Why a caller may not act on a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamRefusal {
    /// The caller is outside the team's organization: its existence does not leak.
    NotFound,
    /// The caller sees the team but does not administer its organization.
    NotAllowed,
    /// Teams hold their own organization's members; others are not found.
    UserNotFound,
}

impl std::fmt::Display for TeamRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("team not found"),
            Self::NotAllowed => super::NotAllowed.fmt(f),
            Self::UserNotFound => f.write_str("user not found"),
        }
    }
}

/// Reading a team or its members: those who see its organization.
pub fn may_see_team(principal: &Principal, team_organization: Uuid) -> Result<(), TeamRefusal> {
    if can_see_organization(principal, team_organization) {
        Ok(())
    } else {
        Err(TeamRefusal::NotFound)
    }
}

/// Changing, deleting or staffing a team: the admins of its organization.
pub fn decide_team_admin(
    principal: &Principal,
    team_organization: Uuid,
) -> Result<(), TeamRefusal> {
    if principal.administers(team_organization) {
        Ok(())
    } else if can_see_organization(principal, team_organization) {
        Err(TeamRefusal::NotAllowed)
    } else {
        Err(TeamRefusal::NotFound)
    }
}

/// A team's members come from the team's own organization.
pub fn decide_team_member(
    team_organization: Uuid,
    user_organization: Option<Uuid>,
) -> Result<(), TeamRefusal> {
    if user_organization == Some(team_organization) {
        Ok(())
    } else {
        Err(TeamRefusal::UserNotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use lyceum_platform::auth::scopes;

    #[test]
    fn organizations_are_seen_by_members_admins_and_the_platform() {
        let acme = org(1);
        assert!(can_see_organization(&member(acme), acme));
        assert!(can_see_organization(&org_admin(acme), acme));
        assert!(can_see_organization(&platform_admin(), acme));
        assert!(!can_see_organization(&member(org(2)), acme));
        assert!(!can_see_organization(&service(&scopes::ALL), acme));
        assert_eq!(may_see_organization(&member(acme), acme), Ok(()));
        assert_eq!(
            may_see_organization(&loner(), acme),
            Err(OrganizationRefusal::NotFound)
        );
    }

    #[test]
    fn outsiders_are_told_not_found_and_members_not_allowed() {
        let acme = org(1);
        assert_eq!(may_administer(&org_admin(acme), acme), Ok(()));
        assert_eq!(may_administer(&platform_admin(), acme), Ok(()));
        assert_eq!(
            may_administer(&member(acme), acme),
            Err(OrganizationRefusal::NotAllowed)
        );
        assert_eq!(
            may_administer(&org_admin(org(2)), acme),
            Err(OrganizationRefusal::NotFound)
        );
        assert_eq!(
            OrganizationRefusal::NotFound.to_string(),
            "organization not found"
        );
    }

    #[test]
    fn billing_is_changed_by_the_platform_only() {
        let acme = org(1);
        assert!(touches_billing(["name", "subscription_tier"].into_iter()));
        assert!(touches_billing(["subscription_status"].into_iter()));
        assert!(!touches_billing(["name", "slug", "settings"].into_iter()));
        assert_eq!(
            decide_organization_update(&org_admin(acme), acme, false),
            Ok(())
        );
        assert_eq!(
            decide_organization_update(&org_admin(acme), acme, true),
            Err(OrganizationRefusal::NotAllowed)
        );
        assert_eq!(
            decide_organization_update(&platform_admin(), acme, true),
            Ok(())
        );
        assert_eq!(
            decide_organization_update(&member(acme), acme, false),
            Err(OrganizationRefusal::NotAllowed)
        );
        assert_eq!(
            decide_organization_update(&member(org(2)), acme, true),
            Err(OrganizationRefusal::NotFound)
        );
    }

    #[test]
    fn teams_are_administered_by_their_organizations_admins() {
        let acme = org(1);
        assert_eq!(decide_team_admin(&org_admin(acme), acme), Ok(()));
        assert_eq!(decide_team_admin(&platform_admin(), acme), Ok(()));
        assert_eq!(
            decide_team_admin(&member(acme), acme),
            Err(TeamRefusal::NotAllowed)
        );
        assert_eq!(
            decide_team_admin(&org_admin(org(2)), acme),
            Err(TeamRefusal::NotFound)
        );
        assert_eq!(may_see_team(&member(acme), acme), Ok(()));
        assert_eq!(
            may_see_team(&member(org(2)), acme),
            Err(TeamRefusal::NotFound)
        );
        assert_eq!(TeamRefusal::NotFound.to_string(), "team not found");
    }

    #[test]
    fn teams_hold_their_own_organizations_members() {
        let acme = org(1);
        assert_eq!(decide_team_member(acme, Some(acme)), Ok(()));
        assert_eq!(
            decide_team_member(acme, Some(org(2))),
            Err(TeamRefusal::UserNotFound)
        );
        assert_eq!(
            decide_team_member(acme, None),
            Err(TeamRefusal::UserNotFound)
        );
        assert_eq!(TeamRefusal::UserNotFound.to_string(), "user not found");
    }
}
