//! The ids of identity's entities, each its own type (see the kit's `typed_id!`): a store
//! function that takes a team and a user cannot be called with the two swapped.

use lyceum_platform::typed_id;

typed_id! {
    /// A user: a member, an administrator, the holder of a grant or a session.
    pub struct UserId;
    /// An organization (a tenant).
    pub struct OrganizationId;
    /// A team of an organization.
    pub struct TeamId;
    /// A session: a family of refresh tokens.
    pub struct SessionId;
}
