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
