//! The gRPC handlers: decode and validate, authorize, call the store in a tenant
//! transaction, encode. Rules that need no database live in `domain`.

mod auth;
mod organizations;
mod throttle;
mod tokens;
mod users;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use lyceum_platform::db::Database;

use crate::store::signing_keys::KeyRing;

pub use throttle::{Limit, SignInLimits};
pub use tokens::SessionRevocationCheck;

use throttle::SignInThrottle;

/// Runs Argon2 work (19 MiB and tens of milliseconds per hash) off the async threads, a
/// few at a time: unauthenticated sign-ins and sign-ups cannot pile up unbounded memory
/// and CPU. A caller that waits too long for a turn gets RESOURCE_EXHAUSTED.
pub(crate) async fn run_hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, lyceum_platform::ApiError> {
    use lyceum_platform::ApiError;
    static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cores * 2)
    });
    let _turn = tokio::time::timeout(Duration::from_secs(5), TURNS.acquire())
        .await
        .map_err(|_| {
            ApiError::ResourceExhausted("too many sign-ins at once; retry shortly".into())
        })?
        .map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

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

/// How identity issues tokens and guards sign-in; everything has a default.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub lifetimes: TokenLifetimes,
    /// The `aud` of issued tokens (see `lyceum_platform::config::AuthArgs`).
    pub audience: String,
    pub sign_in_limits: SignInLimits,
    /// Proxies whose `x-forwarded-for` entries name the client (0: the peer address).
    pub trusted_proxy_hops: usize,
    /// How long after a rotation the same refresh token still returns the pair that
    /// rotation produced, for clients that refresh twice at once.
    pub refresh_grace: Duration,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            lifetimes: TokenLifetimes::default(),
            audience: lyceum_platform::auth::DEFAULT_AUDIENCE.to_owned(),
            sign_in_limits: SignInLimits::default(),
            trusted_proxy_hops: 0,
            refresh_grace: Duration::from_secs(5),
        }
    }
}

/// The state every handler of the identity service shares.
#[derive(Clone)]
pub struct IdentityApi {
    db: Database,
    keys: Arc<KeyRing>,
    lifetimes: TokenLifetimes,
    throttle: Arc<SignInThrottle>,
    trusted_proxy_hops: usize,
    refresh_grace: Duration,
}

impl IdentityApi {
    pub fn new(db: Database, keys: Arc<KeyRing>, settings: &IdentitySettings) -> Self {
        Self {
            db,
            keys,
            lifetimes: settings.lifetimes,
            throttle: Arc::new(SignInThrottle::new(settings.sign_in_limits)),
            trusted_proxy_hops: settings.trusted_proxy_hops,
            refresh_grace: settings.refresh_grace,
        }
    }
}
