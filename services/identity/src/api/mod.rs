//! The gRPC handlers: decode and validate, load through the store in a tenant
//! transaction, let `domain` decide, save, publish, encode. Each of the domain's refusals
//! becomes a gRPC error once, at the end of this file.

mod auth;
mod organizations;
mod throttle;
mod tokens;
mod users;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use lyceum_platform::ApiError;
use lyceum_platform::db::Database;

use crate::domain::grant::GrantRefusal;
use crate::domain::organization::{OrganizationRefusal, TeamRefusal};
use crate::domain::session::RefreshRefusal;
use crate::domain::user::{CreateUserRefusal, ListUsersRefusal, PasswordRefusal};
use crate::domain::{NotActive, NotAllowed};
use crate::store::signing_keys::KeyRing;

pub use throttle::{Limit, SignInLimits};
pub use tokens::SessionRevocationCheck;

use throttle::SignInThrottle;

/// Runs Argon2 work (19 MiB and tens of milliseconds per hash) off the async threads, a
/// few at a time: unauthenticated sign-ins and sign-ups cannot pile up unbounded memory
/// and CPU. A caller that waits too long for a turn gets RESOURCE_EXHAUSTED.
pub(crate) async fn run_hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
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

// How the domain's refusals answer: a right the caller lacks is PERMISSION_DENIED, unless
// the caller may not know the thing exists (NOT_FOUND); a bad token or an inactive account
// UNAUTHENTICATED; a request that cannot be right whoever sends it INVALID_ARGUMENT on its
// field.

impl From<NotAllowed> for ApiError {
    fn from(refusal: NotAllowed) -> Self {
        ApiError::PermissionDenied(refusal.to_string())
    }
}

impl From<NotActive> for ApiError {
    fn from(refusal: NotActive) -> Self {
        ApiError::Unauthenticated(refusal.to_string())
    }
}

impl From<RefreshRefusal> for ApiError {
    fn from(refusal: RefreshRefusal) -> Self {
        ApiError::Unauthenticated(refusal.to_string())
    }
}

impl From<CreateUserRefusal> for ApiError {
    fn from(refusal: CreateUserRefusal) -> Self {
        match refusal {
            CreateUserRefusal::SignInRequired => ApiError::unauthenticated(),
            CreateUserRefusal::NotAllowed => NotAllowed.into(),
            CreateUserRefusal::OrganizationNotFound => ApiError::not_found("organization"),
        }
    }
}

impl From<ListUsersRefusal> for ApiError {
    fn from(refusal: ListUsersRefusal) -> Self {
        match refusal {
            ListUsersRefusal::OrganizationRequired => {
                ApiError::invalid("organization_id", refusal.to_string())
            }
            ListUsersRefusal::OrganizationNotFound => ApiError::not_found("organization"),
        }
    }
}

impl From<PasswordRefusal> for ApiError {
    fn from(refusal: PasswordRefusal) -> Self {
        match refusal {
            PasswordRefusal::WrongCurrentPassword => {
                ApiError::invalid("current_password", refusal.to_string())
            }
            PasswordRefusal::NotUserOrPlatformAdmin => {
                ApiError::PermissionDenied(refusal.to_string())
            }
        }
    }
}

impl From<GrantRefusal> for ApiError {
    fn from(refusal: GrantRefusal) -> Self {
        match refusal {
            GrantRefusal::NotAllowed => NotAllowed.into(),
            GrantRefusal::UserNotFound => ApiError::not_found("user"),
            GrantRefusal::NotTheUsersOrganization => {
                ApiError::invalid("organization_id", refusal.to_string())
            }
        }
    }
}

impl From<OrganizationRefusal> for ApiError {
    fn from(refusal: OrganizationRefusal) -> Self {
        match refusal {
            OrganizationRefusal::NotFound => ApiError::not_found("organization"),
            OrganizationRefusal::NotAllowed => NotAllowed.into(),
        }
    }
}

impl From<TeamRefusal> for ApiError {
    fn from(refusal: TeamRefusal) -> Self {
        match refusal {
            TeamRefusal::NotFound => ApiError::not_found("team"),
            TeamRefusal::NotAllowed => NotAllowed.into(),
            TeamRefusal::UserNotFound => ApiError::not_found("user"),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::domain::UserStatus;

    /// The code and message a refusal answers with, as the caller sees them.
    fn answer(error: impl Into<ApiError>) -> (Code, String) {
        let error: ApiError = error.into();
        (error.code(), error.to_string())
    }

    #[test]
    fn refusals_answer_with_the_kits_codes_and_their_own_messages() {
        use Code::*;
        // The generic answers are the kit's own.
        assert_eq!(answer(NotAllowed), answer(ApiError::permission_denied()));
        assert_eq!(
            answer(CreateUserRefusal::SignInRequired),
            answer(ApiError::unauthenticated())
        );
        let cases: Vec<((Code, String), Code, String)> = vec![
            (answer(NotAllowed), PermissionDenied, NotAllowed.to_string()),
            (
                answer(NotActive(UserStatus::Suspended)),
                Unauthenticated,
                "the account is suspended".into(),
            ),
            (
                answer(RefreshRefusal::Invalid),
                Unauthenticated,
                RefreshRefusal::Invalid.to_string(),
            ),
            (
                answer(RefreshRefusal::Reused {
                    session_revoked: false,
                }),
                Unauthenticated,
                RefreshRefusal::Invalid.to_string(),
            ),
            (
                answer(RefreshRefusal::Account(NotActive(UserStatus::Inactive))),
                Unauthenticated,
                "the account is inactive".into(),
            ),
            (
                answer(CreateUserRefusal::NotAllowed),
                PermissionDenied,
                NotAllowed.to_string(),
            ),
            (
                answer(CreateUserRefusal::OrganizationNotFound),
                NotFound,
                "organization not found".into(),
            ),
            (
                answer(ListUsersRefusal::OrganizationNotFound),
                NotFound,
                "organization not found".into(),
            ),
            (
                answer(PasswordRefusal::NotUserOrPlatformAdmin),
                PermissionDenied,
                "only the user or a platform admin changes a password".into(),
            ),
            (
                answer(GrantRefusal::NotAllowed),
                PermissionDenied,
                NotAllowed.to_string(),
            ),
            (
                answer(GrantRefusal::UserNotFound),
                NotFound,
                "user not found".into(),
            ),
            (
                answer(OrganizationRefusal::NotFound),
                NotFound,
                "organization not found".into(),
            ),
            (
                answer(OrganizationRefusal::NotAllowed),
                PermissionDenied,
                NotAllowed.to_string(),
            ),
            (
                answer(TeamRefusal::NotFound),
                NotFound,
                "team not found".into(),
            ),
            (
                answer(TeamRefusal::NotAllowed),
                PermissionDenied,
                NotAllowed.to_string(),
            ),
            (
                answer(TeamRefusal::UserNotFound),
                NotFound,
                "user not found".into(),
            ),
        ];
        for (answered, code, message) in cases {
            assert_eq!(answered, (code, message));
        }
    }

    #[test]
    fn request_refusals_name_their_field() {
        let field_of = |error: ApiError| match error {
            ApiError::InvalidArgument(violations) => violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect::<Vec<_>>(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        };
        assert_eq!(
            field_of(ListUsersRefusal::OrganizationRequired.into()),
            vec![("organization_id".to_owned(), "is required".to_owned())]
        );
        assert_eq!(
            field_of(PasswordRefusal::WrongCurrentPassword.into()),
            vec![("current_password".to_owned(), "does not match".to_owned())]
        );
        assert_eq!(
            field_of(GrantRefusal::NotTheUsersOrganization.into()),
            vec![(
                "organization_id".to_owned(),
                "must be the user's own organization".to_owned()
            )]
        );
    }
}
