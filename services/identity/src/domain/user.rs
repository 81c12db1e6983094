//! A user's rules: who may sign in, who sees and manages a user, who creates one and with
//! which default roles, what a profile or status change needs and implies, who lists
//! users, reads their roles, and changes their password.

use lyceum_platform::auth::{Principal, scopes};
use uuid::Uuid;

use super::{GrantScope, NotAllowed, Role, UserStatus};

/// What the rules read of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserScope {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: UserStatus,
}

/// Only active users sign in, or refresh their tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotActive(pub UserStatus);

impl std::fmt::Display for NotActive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the account is {}", self.0)
    }
}

pub fn may_sign_in(status: UserStatus) -> Result<(), NotActive> {
    match status {
        UserStatus::Active => Ok(()),
        other => Err(NotActive(other)),
    }
}

/// Platform admins, and service accounts with the `users:read` scope.
pub fn reads_every_user(principal: &Principal) -> bool {
    principal.has_platform_access() || principal.has_scope(scopes::USERS_READ)
}

/// Who may see a user: themselves, members of the same organization, its admins, and
/// whoever reads every user.
pub fn can_see_user(principal: &Principal, user: &UserScope) -> bool {
    principal.is_user(user.id)
        || reads_every_user(principal)
        || user
            .organization_id
            .is_some_and(|org| principal.organization_id == Some(org) || principal.administers(org))
}

/// Who manages a user: platform admins, and the admins of the user's organization.
pub fn can_manage_user(principal: &Principal, user: &UserScope) -> bool {
    principal.has_platform_access()
        || user
            .organization_id
            .is_some_and(|org| principal.administers(org))
}

/// Whether deciding an update needs the user's grants (see [`outranks`]): only for an org
/// admin who manages the user, as platform admins are outranked by nobody.
pub fn needs_held_grants(principal: &Principal, user: &UserScope) -> bool {
    can_manage_user(principal, user) && !principal.has_platform_access()
}

/// Whether a user holding `held` is beyond the caller's reach (a platform admin, or a role
/// in an organization the caller does not administer): org admins do not manage them.
pub fn outranks(principal: &Principal, held: &[GrantScope]) -> bool {
    !principal.has_platform_access()
        && held.iter().any(|g| {
            g.role == Role::Admin
                || g.organization_id
                    .is_some_and(|org| !principal.administers(org))
        })
}

/// What an allowed update of a user does besides writing it (it always publishes
/// `user_updated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserUpdate {
    /// Any status but active ends the user's sessions, even when it is the status they
    /// already had.
    pub end_sessions: bool,
    /// Publish `user_suspended`: only on a change into suspended.
    pub announce_suspension: bool,
}

/// Users edit their own profile; those who manage them (and are not outranked by them)
/// edit it too, and alone change their status. `held` are the user's grants, loaded when
/// [`needs_held_grants`] says so; without them an org admin does not manage.
pub fn decide_user_update(
    principal: &Principal,
    user: &UserScope,
    held: Option<&[GrantScope]>,
    new_status: Option<UserStatus>,
) -> Result<UserUpdate, NotAllowed> {
    let within_reach =
        principal.has_platform_access() || held.is_some_and(|held| !outranks(principal, held));
    let managing = can_manage_user(principal, user) && within_reach;
    let editing_self = principal.is_user(user.id) && new_status.is_none();
    if !managing && !editing_self {
        return Err(NotAllowed);
    }
    Ok(UserUpdate {
        end_sessions: new_status.is_some_and(|s| s != UserStatus::Active),
        announce_suspension: new_status == Some(UserStatus::Suspended)
            && user.status != UserStatus::Suspended,
    })
}

/// How a new user comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserCreation<'a> {
    /// Nobody is signed in: the account is the service's own work, and joins no
    /// organization.
    SelfRegistration,
    /// A signed-in caller creates it, under their own rights.
    ByCaller(&'a Principal),
}

/// Why a user may not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateUserRefusal {
    /// Joining an organization needs a signed-in caller.
    SignInRequired,
    NotAllowed,
    /// The caller is outside the organization: its existence does not leak.
    OrganizationNotFound,
}

impl std::fmt::Display for CreateUserRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignInRequired => f.write_str("a valid access token is required"),
            Self::NotAllowed => NotAllowed.fmt(f),
            Self::OrganizationNotFound => f.write_str("organization not found"),
        }
    }
}

/// Who may create a user, and where: anyone may register themselves (in no
/// organization); an organization's admins add its members; platform admins add users
/// of no organization too.
pub fn decide_user_creation(
    principal: Option<&Principal>,
    organization: Option<Uuid>,
) -> Result<UserCreation<'_>, CreateUserRefusal> {
    match (principal, organization) {
        (None, None) => Ok(UserCreation::SelfRegistration),
        (None, Some(_)) => Err(CreateUserRefusal::SignInRequired),
        (Some(p), Some(org)) if p.administers(org) => Ok(UserCreation::ByCaller(p)),
        (Some(p), None) if p.has_platform_access() => Ok(UserCreation::ByCaller(p)),
        (Some(p), Some(org)) if p.organization_id == Some(org) => {
            Err(CreateUserRefusal::NotAllowed)
        }
        (Some(_), Some(_)) => Err(CreateUserRefusal::OrganizationNotFound),
        (Some(_), None) => Err(CreateUserRefusal::NotAllowed),
    }
}

/// Everyone is a `user`; members of an organization are also its `member`s.
pub fn default_grants(organization: Option<Uuid>) -> Vec<GrantScope> {
    let mut grants = vec![GrantScope {
        role: Role::User,
        organization_id: None,
    }];
    if let Some(org) = organization {
        grants.push(GrantScope {
            role: Role::Member,
            organization_id: Some(org),
        });
    }
    grants
}

/// Why users may not be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListUsersRefusal {
    /// Only those who read every user list across organizations (a violation on
    /// `organization_id`).
    OrganizationRequired,
    /// The caller is outside the organization: its existence does not leak.
    OrganizationNotFound,
}

impl std::fmt::Display for ListUsersRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OrganizationRequired => "is required",
            Self::OrganizationNotFound => "organization not found",
        })
    }
}

/// Who lists users: an organization's members and admins list it; those who read every
/// user list any organization, or all of them.
pub fn decide_user_listing(
    principal: &Principal,
    organization: Option<Uuid>,
) -> Result<(), ListUsersRefusal> {
    match organization {
        None if !reads_every_user(principal) => Err(ListUsersRefusal::OrganizationRequired),
        Some(org)
            if principal.organization_id != Some(org)
                && !principal.administers(org)
                && !reads_every_user(principal) =>
        {
            Err(ListUsersRefusal::OrganizationNotFound)
        }
        _ => Ok(()),
    }
}

/// Who reads a user's roles: the user, and those who manage them.
pub fn may_read_roles(principal: &Principal, user: &UserScope) -> Result<(), NotAllowed> {
    if principal.is_user(user.id) || can_manage_user(principal, user) {
        Ok(())
    } else {
        Err(NotAllowed)
    }
}

/// How a password change is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    /// Users prove they know their current password ([`confirm_current_password`]).
    ProveCurrent,
    /// A platform admin resets it without.
    Reset,
}

/// Why a password may not be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefusal {
    /// The current password given was wrong (a violation on `current_password`).
    WrongCurrentPassword,
    /// Resetting another user's password is a takeover tool: platform admins only.
    NotUserOrPlatformAdmin,
}

impl std::fmt::Display for PasswordRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WrongCurrentPassword => "does not match",
            Self::NotUserOrPlatformAdmin => "only the user or a platform admin changes a password",
        })
    }
}

/// Who changes a user's password: the user (proving the current one), or a platform
/// admin.
pub fn decide_password_change(
    principal: &Principal,
    user: &UserScope,
) -> Result<PasswordChange, PasswordRefusal> {
    if principal.is_user(user.id) {
        Ok(PasswordChange::ProveCurrent)
    } else if principal.has_platform_access() {
        Ok(PasswordChange::Reset)
    } else {
        Err(PasswordRefusal::NotUserOrPlatformAdmin)
    }
}

/// Whether the current password the user gave matched the stored one.
pub fn confirm_current_password(matches: bool) -> Result<(), PasswordRefusal> {
    if matches {
        Ok(())
    } else {
        Err(PasswordRefusal::WrongCurrentPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::*;
    use UserStatus::*;

    fn grant(role: Role, organization_id: Option<Uuid>) -> GrantScope {
        GrantScope {
            role,
            organization_id,
        }
    }

    #[test]
    fn only_active_users_sign_in() {
        assert_eq!(may_sign_in(Active), Ok(()));
        assert_eq!(may_sign_in(Suspended), Err(NotActive(Suspended)));
        assert_eq!(
            may_sign_in(Inactive).unwrap_err().to_string(),
            "the account is inactive"
        );
        assert_eq!(NotActive(Suspended).to_string(), "the account is suspended");
    }

    #[test]
    fn users_are_seen_by_themselves_their_organization_and_readers_of_everyone() {
        let acme = org(1);
        let alice = user_in(user_id(1), Some(acme));
        let loner_user = user_in(user_id(2), None);
        assert!(can_see_user(&member(acme), &alice));
        assert!(can_see_user(&org_admin(acme), &alice));
        assert!(can_see_user(&platform_admin(), &loner_user));
        assert!(can_see_user(&service(&[scopes::USERS_READ]), &loner_user));
        assert!(!can_see_user(&service(&[scopes::PAYMENTS_WRITE]), &alice));
        assert!(!can_see_user(&member(org(2)), &alice));
        assert!(!can_see_user(&org_admin(acme), &loner_user));
        let mut me = loner();
        me.subject = loner_user.id;
        assert!(can_see_user(&me, &loner_user));
        assert!(!can_see_user(&loner(), &loner_user));
    }

    #[test]
    fn users_are_managed_by_their_organizations_admins_and_platform_admins() {
        let acme = org(1);
        let alice = user_in(user_id(1), Some(acme));
        assert!(can_manage_user(&org_admin(acme), &alice));
        assert!(can_manage_user(&platform_admin(), &alice));
        assert!(!can_manage_user(&member(acme), &alice));
        assert!(!can_manage_user(&org_admin(org(2)), &alice));
        assert!(!can_manage_user(&service(&[scopes::USERS_READ]), &alice));
        // Grants are needed only to tell whether an org admin is outranked.
        assert!(needs_held_grants(&org_admin(acme), &alice));
        assert!(!needs_held_grants(&platform_admin(), &alice));
        assert!(!needs_held_grants(&member(acme), &alice));
    }

    #[test]
    fn platform_admins_and_members_of_other_organizations_outrank_org_admins() {
        let acme = org(1);
        let admin = org_admin(acme);
        assert!(!outranks(&admin, &[grant(Role::User, None)]));
        assert!(!outranks(&admin, &[grant(Role::OrgAdmin, Some(acme))]));
        assert!(outranks(&admin, &[grant(Role::Admin, None)]));
        assert!(outranks(&admin, &[grant(Role::Member, Some(org(2)))]));
        assert!(!outranks(&platform_admin(), &[grant(Role::Admin, None)]));
    }

    #[test]
    fn status_changes_need_a_manager_within_reach() {
        let acme = org(1);
        let alice = user_in(user_id(1), Some(acme));
        let plain = [grant(Role::User, None), grant(Role::Member, Some(acme))];
        let admin = [grant(Role::Admin, None)];
        let suspend = Some(Suspended);
        let admin_of_acme = org_admin(acme);
        assert!(decide_user_update(&admin_of_acme, &alice, Some(&plain), suspend).is_ok());
        assert_eq!(
            decide_user_update(&admin_of_acme, &alice, Some(&admin), suspend),
            Err(NotAllowed)
        );
        // Without the user's grants an org admin is not known to be within reach.
        assert_eq!(
            decide_user_update(&admin_of_acme, &alice, None, suspend),
            Err(NotAllowed)
        );
        assert!(decide_user_update(&platform_admin(), &alice, None, suspend).is_ok());
        assert_eq!(
            decide_user_update(&member(acme), &alice, None, suspend),
            Err(NotAllowed)
        );
        // Users edit their own profile, but not their status.
        let mut herself = member(acme);
        herself.subject = alice.id;
        assert!(decide_user_update(&herself, &alice, None, None).is_ok());
        assert_eq!(
            decide_user_update(&herself, &alice, None, Some(Active)),
            Err(NotAllowed)
        );
        assert_eq!(
            decide_user_update(&member(acme), &alice, None, None),
            Err(NotAllowed)
        );
    }

    #[test]
    fn leaving_active_ends_sessions_and_only_a_new_suspension_is_announced() {
        let admin = platform_admin();
        let decide = |from: UserStatus, to: Option<UserStatus>| {
            let user = UserScope {
                status: from,
                ..user_in(user_id(1), None)
            };
            decide_user_update(&admin, &user, None, to).unwrap()
        };
        let update = |end_sessions, announce_suspension| UserUpdate {
            end_sessions,
            announce_suspension,
        };
        assert_eq!(decide(Active, Some(Suspended)), update(true, true));
        assert_eq!(decide(Inactive, Some(Suspended)), update(true, true));
        // Already suspended: the sessions end again, nothing new is announced.
        assert_eq!(decide(Suspended, Some(Suspended)), update(true, false));
        assert_eq!(decide(Active, Some(Inactive)), update(true, false));
        assert_eq!(decide(Inactive, Some(Inactive)), update(true, false));
        assert_eq!(decide(Suspended, Some(Active)), update(false, false));
        assert_eq!(decide(Active, None), update(false, false));
    }

    #[test]
    fn creating_users_follows_who_is_signed_in_and_where() {
        let acme = org(1);
        let cases = [
            (None, None, Ok(())),
            (None, Some(acme), Err(CreateUserRefusal::SignInRequired)),
            (Some(org_admin(acme)), Some(acme), Ok(())),
            (Some(platform_admin()), None, Ok(())),
            (Some(platform_admin()), Some(acme), Ok(())),
            (
                Some(member(acme)),
                Some(acme),
                Err(CreateUserRefusal::NotAllowed),
            ),
            (
                Some(member(org(2))),
                Some(acme),
                Err(CreateUserRefusal::OrganizationNotFound),
            ),
            (
                Some(org_admin(org(2))),
                Some(acme),
                Err(CreateUserRefusal::OrganizationNotFound),
            ),
            (
                Some(org_admin(acme)),
                None,
                Err(CreateUserRefusal::NotAllowed),
            ),
            (Some(loner()), None, Err(CreateUserRefusal::NotAllowed)),
        ];
        for (caller, organization, expected) in cases {
            let decided = decide_user_creation(caller.as_ref(), organization);
            assert_eq!(
                decided.map(|_| ()),
                expected,
                "{caller:?} in {organization:?}"
            );
            if let Ok(creation) = decided {
                let expected = match &caller {
                    None => UserCreation::SelfRegistration,
                    Some(p) => UserCreation::ByCaller(p),
                };
                assert_eq!(creation, expected);
            }
        }
        assert_eq!(
            CreateUserRefusal::SignInRequired.to_string(),
            "a valid access token is required"
        );
        assert_eq!(
            CreateUserRefusal::OrganizationNotFound.to_string(),
            "organization not found"
        );
    }

    #[test]
    fn new_users_are_users_and_members_of_their_organization() {
        assert_eq!(default_grants(None), vec![grant(Role::User, None)]);
        assert_eq!(
            default_grants(Some(org(1))),
            vec![grant(Role::User, None), grant(Role::Member, Some(org(1)))]
        );
    }

    #[test]
    fn listing_needs_an_organization_the_caller_belongs_to_unless_they_read_everyone() {
        let acme = org(1);
        assert_eq!(decide_user_listing(&member(acme), Some(acme)), Ok(()));
        assert_eq!(decide_user_listing(&org_admin(acme), Some(acme)), Ok(()));
        assert_eq!(decide_user_listing(&platform_admin(), None), Ok(()));
        assert_eq!(
            decide_user_listing(&service(&[scopes::USERS_READ]), Some(acme)),
            Ok(())
        );
        assert_eq!(
            decide_user_listing(&member(acme), None),
            Err(ListUsersRefusal::OrganizationRequired)
        );
        assert_eq!(
            decide_user_listing(&service(&[scopes::PAYMENTS_WRITE]), None),
            Err(ListUsersRefusal::OrganizationRequired)
        );
        assert_eq!(
            decide_user_listing(&member(org(2)), Some(acme)),
            Err(ListUsersRefusal::OrganizationNotFound)
        );
    }

    #[test]
    fn roles_are_read_by_the_user_and_their_managers() {
        let acme = org(1);
        let alice = user_in(user_id(1), Some(acme));
        let mut herself = member(acme);
        herself.subject = alice.id;
        assert_eq!(may_read_roles(&herself, &alice), Ok(()));
        assert_eq!(may_read_roles(&org_admin(acme), &alice), Ok(()));
        assert_eq!(may_read_roles(&platform_admin(), &alice), Ok(()));
        assert_eq!(may_read_roles(&member(acme), &alice), Err(NotAllowed));
        assert_eq!(
            may_read_roles(&service(&[scopes::USERS_READ]), &alice),
            Err(NotAllowed)
        );
    }

    #[test]
    fn passwords_are_changed_by_their_user_or_reset_by_platform_admins() {
        let acme = org(1);
        let alice = user_in(user_id(1), Some(acme));
        let mut herself = member(acme);
        herself.subject = alice.id;
        assert_eq!(
            decide_password_change(&herself, &alice),
            Ok(PasswordChange::ProveCurrent)
        );
        assert_eq!(
            decide_password_change(&platform_admin(), &alice),
            Ok(PasswordChange::Reset)
        );
        for other in [
            org_admin(acme),
            member(acme),
            service(&[scopes::USERS_READ]),
        ] {
            assert_eq!(
                decide_password_change(&other, &alice),
                Err(PasswordRefusal::NotUserOrPlatformAdmin)
            );
        }
        assert_eq!(confirm_current_password(true), Ok(()));
        assert_eq!(
            confirm_current_password(false),
            Err(PasswordRefusal::WrongCurrentPassword)
        );
        assert_eq!(
            PasswordRefusal::NotUserOrPlatformAdmin.to_string(),
            "only the user or a platform admin changes a password"
        );
    }
}
