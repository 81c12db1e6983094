//! The gRPC handlers: decode and validate, authorize, call the store in a tenant
//! transaction, encode. Rules that need no database live in `domain`.

mod auth;
mod organizations;
mod tokens;
mod users;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

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
    pool: PgPool,
    keys: Arc<KeyRing>,
    lifetimes: TokenLifetimes,
}

impl IdentityApi {
    pub fn new(pool: PgPool, keys: Arc<KeyRing>, lifetimes: TokenLifetimes) -> Self {
        Self {
            pool,
            keys,
            lifetimes,
        }
    }
}
