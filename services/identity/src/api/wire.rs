//! Rows of the store as protobuf messages.

use lyceum_platform::convert::{json_to_struct, opt_id_to_string, opt_timestamp, timestamp};
use lyceum_proto::identity::v1 as pb;

use crate::store::grants::GrantRow;
use crate::store::organizations::OrganizationRow;
use crate::store::teams::{MemberRow, TeamRow};
use crate::store::users::UserRow;

pub fn organization(row: OrganizationRow) -> pb::Organization {
    pb::Organization {
        id: row.id.to_string(),
        name: row.name,
        slug: row.slug,
        subscription_tier: row.subscription_tier.to_proto(),
        subscription_status: row.subscription_status.to_proto(),
        company_size: row.company_size,
        settings: Some(json_to_struct(&row.settings)),
        branding: Some(json_to_struct(&row.branding)),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub fn team(row: TeamRow) -> pb::Team {
    pb::Team {
        id: row.id.to_string(),
        organization_id: row.organization_id.to_string(),
        name: row.name,
        description: row.description,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub fn member(row: MemberRow) -> pb::TeamMember {
    pb::TeamMember {
        team_id: row.team_id.to_string(),
        user_id: row.user_id.to_string(),
        role: row.role.to_proto(),
        join_time: Some(timestamp(row.joined_at)),
    }
}

pub fn user(row: UserRow) -> pb::User {
    pb::User {
        id: row.id.to_string(),
        organization_id: opt_id_to_string(row.organization_id),
        email: row.email,
        full_name: row.full_name,
        avatar_url: row.avatar_url,
        company_name: row.company_name,
        metadata: Some(json_to_struct(&row.metadata)),
        status: row.status.to_proto(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

pub fn grant(row: GrantRow) -> pb::RoleGrant {
    pb::RoleGrant {
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        role: row.role.to_proto(),
        organization_id: opt_id_to_string(row.organization_id),
        expire_time: opt_timestamp(row.expires_at),
        create_time: Some(timestamp(row.created_at)),
    }
}
