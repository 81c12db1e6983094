//! The events identity publishes. Each carries the resulting state with a version (the
//! row's `updated_at` in microseconds), so consumers can apply them idempotently and
//! ignore ones older than what they have.

use lyceum_platform::convert::{opt_id_to_string, opt_timestamp};
use lyceum_platform::events::Event;
use lyceum_proto::events::v1 as pb;

use crate::store::grants::GrantRow;
use crate::store::organizations::OrganizationRow;
use crate::store::service_accounts::ServiceAccountRow;
use crate::store::users::UserRow;

fn organization_snapshot(row: &OrganizationRow) -> pb::OrganizationSnapshot {
    pb::OrganizationSnapshot {
        id: row.id.to_string(),
        name: row.name.clone(),
        slug: row.slug.clone(),
        subscription_tier: row.subscription_tier.to_string(),
        subscription_status: row.subscription_status.to_string(),
        version: row.updated_at.timestamp_micros(),
    }
}

fn user_snapshot(row: &UserRow) -> pb::UserSnapshot {
    pb::UserSnapshot {
        id: row.id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        email: row.email.clone(),
        full_name: row.full_name.clone(),
        avatar_url: row.avatar_url.clone(),
        status: row.status.to_string(),
        version: row.updated_at.timestamp_micros(),
    }
}

pub fn organization_created(row: &OrganizationRow) -> Event {
    let payload = pb::OrganizationCreated {
        organization: Some(organization_snapshot(row)),
    };
    Event::new("identity.organization.created", Some(row.id), &payload)
}

pub fn organization_updated(row: &OrganizationRow) -> Event {
    let payload = pb::OrganizationUpdated {
        organization: Some(organization_snapshot(row)),
    };
    Event::new("identity.organization.updated", Some(row.id), &payload)
}

pub fn user_created(row: &UserRow) -> Event {
    let payload = pb::UserCreated {
        user: Some(user_snapshot(row)),
    };
    Event::new("identity.user.created", row.organization_id, &payload)
}

pub fn user_updated(row: &UserRow) -> Event {
    let payload = pb::UserUpdated {
        user: Some(user_snapshot(row)),
    };
    Event::new("identity.user.updated", row.organization_id, &payload)
}

pub fn user_suspended(row: &UserRow) -> Event {
    let payload = pb::UserSuspended {
        user: Some(user_snapshot(row)),
    };
    Event::new("identity.user.suspended", row.organization_id, &payload)
}

pub fn role_granted(row: &GrantRow) -> Event {
    let payload = pb::RoleGranted {
        grant_id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        role: row.role.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        expire_time: opt_timestamp(row.expires_at),
    };
    Event::new("identity.role.granted", row.organization_id, &payload)
}

pub fn role_revoked(row: &GrantRow) -> Event {
    let payload = pb::RoleRevoked {
        grant_id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        role: row.role.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
    };
    Event::new("identity.role.revoked", row.organization_id, &payload)
}

/// Every service's token verifier follows this event to refuse the account's tokens.
pub fn service_account_disabled(row: &ServiceAccountRow) -> Event {
    let payload = pb::ServiceAccountDisabled {
        service_account_id: row.id.to_string(),
        name: row.name.clone(),
        disable_time: opt_timestamp(row.disabled_at),
    };
    Event::new(
        lyceum_platform::auth::SERVICE_ACCOUNT_DISABLED,
        None,
        &payload,
    )
}
