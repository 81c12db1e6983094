//! Identity's types and pure rules: values that cannot be invalid once constructed, and
//! the decisions made from them, one module per aggregate: user, grant, organization
//! (with its teams), session and token, plus the plain refusal and the platform admin's
//! rights in access. Nothing here touches the database; the API loads, calls these to
//! decide, then saves.

pub mod access;
mod email;
pub mod grant;
mod ids;
pub mod organization;
mod password;
mod role;
pub mod session;
mod slug;
mod status;
#[cfg(test)]
mod testing;
mod text;
pub mod token;
pub mod user;

pub use access::{NotAllowed, require_platform_admin};
pub use email::Email;
pub use grant::GrantScope;
pub use ids::{OrganizationId, SessionId, TeamId, UserId};
pub use password::{Password, PasswordHash};
pub use role::{Role, RoleScopeError};
pub use slug::Slug;
pub use status::{SubscriptionStatus, SubscriptionTier, TeamMemberRole, UserStatus};
pub use text::{BoundedText, Name, OptionalName};
pub use user::{NotActive, UserScope, may_sign_in};
