//! Principals for the rules' unit tests, built from the kit's plain struct.

use lyceum_platform::auth::{GrantedRole, Principal, PrincipalKind, roles};
use uuid::Uuid;

use super::{UserScope, UserStatus};

pub fn org(n: u128) -> Uuid {
    Uuid::from_u128(1_000 + n)
}

pub fn user_id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A user (subject 99, no home organization) holding `roles`.
pub fn with_roles(granted: &[(&str, Option<Uuid>)]) -> Principal {
    Principal {
        subject: user_id(99),
        kind: PrincipalKind::User,
        organization_id: None,
        roles: granted
            .iter()
            .map(|(role, org)| GrantedRole {
                role: (*role).to_owned(),
                org: *org,
            })
            .collect(),
        session_id: None,
        scopes: Vec::new(),
    }
}

pub fn platform_admin() -> Principal {
    with_roles(&[(roles::USER, None), (roles::ADMIN, None)])
}

/// An admin of `home`, which is also their own organization.
pub fn org_admin(home: Uuid) -> Principal {
    Principal {
        organization_id: Some(home),
        ..with_roles(&[
            (roles::USER, None),
            (roles::MEMBER, Some(home)),
            (roles::ORG_ADMIN, Some(home)),
        ])
    }
}

pub fn member(home: Uuid) -> Principal {
    Principal {
        organization_id: Some(home),
        ..with_roles(&[(roles::USER, None), (roles::MEMBER, Some(home))])
    }
}

/// A signed-in user of no organization.
pub fn loner() -> Principal {
    with_roles(&[(roles::USER, None)])
}

pub fn service(scopes: &[&str]) -> Principal {
    Principal {
        subject: user_id(77),
        kind: PrincipalKind::Service,
        organization_id: None,
        roles: Vec::new(),
        session_id: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// An active user of `organization_id`.
pub fn user_in(id: Uuid, organization_id: Option<Uuid>) -> UserScope {
    UserScope {
        id,
        organization_id,
        status: UserStatus::Active,
    }
}
