//! SQL of the identity schema, one module per aggregate. Every function takes the
//! caller's transaction, which already carries the tenant context for RLS.

pub mod credentials;
pub mod grants;
pub mod organizations;
pub mod service_accounts;
pub mod sessions;
pub mod signing_keys;
pub mod teams;
pub mod users;

pub type Tx = lyceum_platform::db::Tx;

use lyceum_platform::ApiError;
use lyceum_platform::error::UniqueField;

/// Every unique constraint an identity write can hit, and the field it answers on.
pub const UNIQUE_FIELDS: &[UniqueField] = &[
    UniqueField {
        constraint: "organizations_slug_key",
        field: "slug",
        message: "an organization with this slug already exists",
    },
    UniqueField {
        constraint: "users_email_key",
        field: "email",
        message: "a user with this email already exists",
    },
    UniqueField {
        constraint: "teams_organization_name_key",
        field: "name",
        message: "a team with this name already exists in the organization",
    },
    UniqueField {
        constraint: "role_grants_user_role_scope_key",
        field: "role",
        message: "the role is already granted",
    },
    UniqueField {
        constraint: "service_accounts_name_key",
        field: "name",
        message: "a service account with this name already exists",
    },
];

/// A write's constraint failure as the caller's mistake (see the kit's `write_error`),
/// `missing` naming what a dangling reference points at.
pub(crate) fn write_error(error: sqlx::Error, missing: &str) -> ApiError {
    lyceum_platform::error::write_error(error, UNIQUE_FIELDS, missing)
}
