//! Identity's types and rules: values that cannot be invalid once constructed.

mod email;
mod password;
mod role;
mod slug;
mod status;
mod text;

pub use email::Email;
pub use password::{Password, PasswordHash};
pub use role::Role;
pub use slug::Slug;
pub use status::{SubscriptionStatus, SubscriptionTier, TeamMemberRole, UserStatus};
pub use text::{BoundedText, Name, OptionalName};
