//! The gRPC handlers: decode and validate, authorize, call the store in a tenant
//! transaction, encode. Rules that need no database live in `domain`.

mod auth;
mod organizations;
mod tokens;
mod users;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use lyceum_platform::db::Database;

use crate::store::signing_keys::KeyRing;

pub use tokens::SessionRevocationCheck;

/// Lifetimes of issued tokens.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access: Duration,
    pub refresh: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(10 * 60),
            refresh: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The state every handler of the identity service shares.
#[derive(Clone)]
pub struct IdentityApi {
    db: Database,
    keys: Arc<KeyRing>,
    lifetimes: TokenLifetimes,
}

impl IdentityApi {
    pub fn new(db: Database, keys: Arc<KeyRing>, lifetimes: TokenLifetimes) -> Self {
        Self {
            db,
            keys,
            lifetimes,
        }
    }
}
