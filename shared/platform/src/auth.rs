//! Access tokens: Ed25519-signed JWTs issued by identity and verified locally by every
//! service, and the `Principal` a verified token becomes.
//!
//! Encoding, parsing and the claim checks (algorithm, issuer, audience, expiry) are
//! `jsonwebtoken`'s; the Ed25519 arithmetic is the workspace's `ed25519-dalek`, plugged in
//! as that library's crypto provider (see [`eddsa`]).
//!
//! Verification keys come from a [`KeySource`] (identity's `GetSigningKeys` over gRPC, or
//! identity's own table). They are fetched again when a token names an unknown `kid` and
//! at least every [`DEFAULT_KEY_REFRESH_INTERVAL`], so a rotation needs no restart and a
//! retired key stops verifying everywhere within that interval.
//!
//! Service accounts are refused everywhere within seconds of being disabled: the verifier
//! keeps a deny set that [`TokenVerifier::follow_disabled_service_accounts`] fills from the
//! `identity.service_account.disabled` events (replayed from the stream at start, then
//! followed live).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::error::ApiError;

pub use ed25519_dalek::SigningKey;

pub const ISSUER: &str = "lyceum-identity";
/// The `aud` of tokens when a deployment names none (`LYCEUM_TOKEN_AUDIENCE`).
pub const DEFAULT_AUDIENCE: &str = "lyceum";
pub const ALGORITHM: &str = "EdDSA";
/// Clock skew tolerated between the issuer and a verifier.
const LEEWAY_SECONDS: i64 = 30;
/// An unknown `kid` triggers at most one key fetch in this interval, so garbage tokens
/// cannot turn into a flood of calls to identity.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Keys older than this are fetched again before a token is accepted, so that a key
/// identity retired stops verifying here too.
pub const DEFAULT_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Well-known role names, as stored and as carried in tokens.
pub mod roles {
    pub const ADMIN: &str = "admin";
    pub const ORG_ADMIN: &str = "org_admin";
    pub const TEAM_LEAD: &str = "team_lead";
    pub const MEMBER: &str = "member";
    pub const INSTRUCTOR: &str = "instructor";
    pub const EXPERT: &str = "expert";
    pub const CLIENT: &str = "client";
    pub const USER: &str = "user";
    /// Carried by service-account tokens; never granted to a user.
    pub const SERVICE: &str = "service";
}

/// What a service account may do. A service account holds no role: each RPC open to
/// service accounts names the scope it needs, and nothing else is open to them (granting
/// roles, changing passwords, administering organizations stay with people).
pub mod scopes {
    /// Record payments for a payer and report their outcome (succeeded, failed,
    /// refunded): the payment provider's webhook handler.
    pub const PAYMENTS_WRITE: &str = "payments:write";
    /// Pay instructors their pending earnings (CreatePayout): the payout job.
    pub const PAYOUTS_WRITE: &str = "payouts:write";
    /// Read users' profiles (GetUser, BatchGetUsers, ListUsers).
    pub const USERS_READ: &str = "users:read";

    /// Every scope identity may grant.
    pub const ALL: [&str; 3] = [PAYMENTS_WRITE, PAYOUTS_WRITE, USERS_READ];

    pub fn is_known(scope: &str) -> bool {
        ALL.contains(&scope)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Service,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedRole {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
}

/// The claims of an access token. `aud` is not among them: it belongs to the deployment,
/// so [`TokenSigner`] adds it and [`TokenVerifier`] checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub kind: PrincipalKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
    #[serde(default)]
    pub roles: Vec<GrantedRole>,
    /// The session (refresh-token family) the token was issued in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// A service account's scopes, space-separated on the wire as OAuth's `scope` claim.
    #[serde(
        default,
        rename = "scope",
        skip_serializing_if = "Vec::is_empty",
        with = "space_separated"
    )]
    pub scopes: Vec<String>,
}

mod space_separated {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(scopes: &[String], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&scopes.join(" "))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        let joined = String::deserialize(deserializer)?;
        Ok(joined.split_whitespace().map(str::to_owned).collect())
    }
}

/// The claims as signed: the caller's claims plus the deployment's audience.
#[derive(Serialize)]
struct SignedClaims<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    aud: &'a str,
}

/// The verified caller of a request, placed in the request extensions by [`AuthLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: Uuid,
    pub kind: PrincipalKind,
    pub organization_id: Option<Uuid>,
    pub roles: Vec<GrantedRole>,
    pub session_id: Option<Uuid>,
    /// Scopes of a service account; always empty for users.
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn from_claims(claims: Claims) -> Self {
        let scopes = match claims.kind {
            PrincipalKind::Service => claims.scopes,
            // Users' rights are their roles; a scope in a user's token means nothing.
            PrincipalKind::User => Vec::new(),
        };
        Self {
            subject: claims.sub,
            kind: claims.kind,
            organization_id: claims.org,
            roles: claims.roles,
            session_id: claims.sid,
            scopes,
        }
    }

    /// Holds `role` platform-wide, or in `org` when one is given.
    pub fn has_role(&self, role: &str, org: Option<Uuid>) -> bool {
        self.roles
            .iter()
            .any(|g| g.role == role && (g.org.is_none() || g.org == org))
    }

    /// Platform admins may act on every tenant. Service accounts never do: what they may
    /// do is their scopes (see [`Principal::has_scope`]).
    pub fn has_platform_access(&self) -> bool {
        self.kind == PrincipalKind::User && self.has_role(roles::ADMIN, None)
    }

    /// A service account holding `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.kind == PrincipalKind::Service && self.scopes.iter().any(|s| s == scope)
    }

    /// `PERMISSION_DENIED` naming the missing scope, unless the caller is a service
    /// account holding it.
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "requires a service account with the scope {scope}"
            )))
        }
    }

    /// May administer `org`: its org admins and platform admins.
    pub fn administers(&self, org: Uuid) -> bool {
        self.has_platform_access()
            || (self.kind == PrincipalKind::User
                && self
                    .roles
                    .iter()
                    .any(|g| g.role == roles::ORG_ADMIN && g.org == Some(org)))
    }

    pub fn is_user(&self, user_id: Uuid) -> bool {
        self.kind == PrincipalKind::User && self.subject == user_id
    }

    /// Role names that apply in the caller's home organization, for the RLS context.
    pub fn roles_in_home_organization(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .roles
            .iter()
            .filter(|g| g.org.is_none() || g.org == self.organization_id)
            .map(|g| g.role.clone())
            .collect();
        if self.kind == PrincipalKind::Service {
            names.push(roles::SERVICE.to_owned());
        }
        names.sort();
        names.dedup();
        names
    }
}

/// The principal of a request, or `UNAUTHENTICATED` when it carried no valid token.
pub fn require_principal<T>(request: &tonic::Request<T>) -> Result<Principal, ApiError> {
    optional_principal(request).ok_or_else(ApiError::unauthenticated)
}

pub fn optional_principal<T>(request: &tonic::Request<T>) -> Option<Principal> {
    request.extensions().get::<Principal>().cloned()
}

/// `jsonwebtoken`'s cryptography, restricted to EdDSA over Ed25519 and backed by the
/// `ed25519-dalek` the workspace already builds. Any other algorithm is refused here as
/// well as by the validation's algorithm pin. Verification is `verify_strict`, which
/// also rejects small-order keys and non-canonical signatures.
mod eddsa {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

    struct Ed25519Signer(SigningKey);

    impl signature::Signer<Vec<u8>> for Ed25519Signer {
        fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
            Ok(ed25519_dalek::Signer::sign(&self.0, message)
                .to_bytes()
                .to_vec())
        }
    }

    impl JwtSigner for Ed25519Signer {
        fn algorithm(&self) -> Algorithm {
            Algorithm::EdDSA
        }
    }

    struct Ed25519Verifier(VerifyingKey);

    impl signature::Verifier<Vec<u8>> for Ed25519Verifier {
        fn verify(
            &self,
            message: &[u8],
            signature: &Vec<u8>,
        ) -> std::result::Result<(), signature::Error> {
            let signature =
                Signature::from_slice(signature).map_err(|_| signature::Error::new())?;
            self.0
                .verify_strict(message, &signature)
                .map_err(|_| signature::Error::new())
        }
    }

    impl JwtVerifier for Ed25519Verifier {
        fn algorithm(&self) -> Algorithm {
            Algorithm::EdDSA
        }
    }

    fn signer_factory(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        if *algorithm != Algorithm::EdDSA {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        let key =
            SigningKey::from_pkcs8_der(key.as_bytes()).map_err(|_| ErrorKind::InvalidEddsaKey)?;
        Ok(Box::new(Ed25519Signer(key)))
    }

    fn verifier_factory(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        if *algorithm != Algorithm::EdDSA {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        let bytes: &[u8; 32] = key
            .try_get_as_bytes()?
            .try_into()
            .map_err(|_| ErrorKind::InvalidEddsaKey)?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| ErrorKind::InvalidEddsaKey)?;
        Ok(Box::new(Ed25519Verifier(key)))
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory,
        verifier_factory,
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Installs the provider for the process; every signer and verifier calls this first.
    pub(super) fn install() {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            // Nothing else in the process installs one: the library's own backends are
            // not compiled in.
            let _ = PROVIDER.install_default();
        });
    }
}

/// Signs access tokens with one Ed25519 key, for one audience.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    verifying_key: VerifyingKey,
    encoding_key: EncodingKey,
    audience: String,
}

impl TokenSigner {
    pub fn new(kid: impl Into<String>, key: SigningKey) -> Self {
        eddsa::install();
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        Self {
            kid: kid.into(),
            verifying_key: key.verifying_key(),
            encoding_key: EncodingKey::from_ed_der(der.as_bytes()),
            audience: DEFAULT_AUDIENCE.to_owned(),
        }
    }

    /// Signs for `audience` instead of [`DEFAULT_AUDIENCE`].
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            key: self.verifying_key,
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            &SignedClaims {
                claims,
                aud: &self.audience,
            },
            &self.encoding_key,
        )
        .expect("signing serializable claims with a valid Ed25519 key cannot fail")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with an unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token was not issued by identity")]
    WrongIssuer,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("signing keys are unavailable")]
    KeysUnavailable,
    #[error("disabled service accounts are not known yet; retry shortly")]
    RevocationsUnavailable,
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::KeysUnavailable | TokenError::RevocationsUnavailable => {
                ApiError::Unavailable(error.to_string())
            }
            other => ApiError::Unauthenticated(other.to_string()),
        }
    }
}

fn token_error(error: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => TokenError::Expired,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => TokenError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenError::UnsupportedAlgorithm
        }
        _ => TokenError::Malformed,
    }
}

/// A public key that verifies tokens carrying its `kid`.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    pub key: VerifyingKey,
}

/// Where verification keys come from.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn fetch_keys(&self) -> anyhow::Result<Vec<PublicKey>>;
}

/// A check beyond the signature, for services that can tell whether a session is still
/// alive (identity checks its own session and user tables).
#[async_trait]
pub trait RevocationCheck: Send + Sync + 'static {
    async fn is_revoked(&self, claims: &Claims) -> anyhow::Result<bool>;
}

struct KeyCache {
    keys: HashMap<String, VerifyingKey>,
    /// When the last successful fetch happened; `None` before the first.
    fetched_at: Option<Instant>,
}

/// Verifies access tokens against a cache of keys, refreshed on an unknown `kid` and on
/// an interval.
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    revocation: Option<Arc<dyn RevocationCheck>>,
    validation: Validation,
    key_refresh_interval: Duration,
    keys: RwLock<KeyCache>,
    /// When keys were last fetched, and whether that fetch succeeded.
    last_refresh: Mutex<Option<(Instant, bool)>>,
    /// Tokens whose signature already checked out: a client sends the same token with
    /// every call for minutes, and an Ed25519 verification per call is the largest CPU
    /// cost of a cheap RPC. Cleared whenever the key set changes.
    verified: std::sync::Mutex<HashMap<String, Claims>>,
    /// Service accounts known to be disabled.
    disabled_accounts: std::sync::RwLock<HashSet<Uuid>>,
    /// False while a followed feed of disabled accounts has not caught up; service-account
    /// tokens wait for it (users' do not). True when no feed is followed.
    disabled_accounts_known: AtomicBool,
}

/// Bound on remembered tokens; past it the memory is cleared and refilled.
const VERIFIED_CACHE_CAPACITY: usize = 10_000;

impl TokenVerifier {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        eddsa::install();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECONDS as u64;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[DEFAULT_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            source,
            revocation: None,
            validation,
            key_refresh_interval: DEFAULT_KEY_REFRESH_INTERVAL,
            keys: RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            last_refresh: Mutex::new(None),
            verified: std::sync::Mutex::new(HashMap::new()),
            disabled_accounts: std::sync::RwLock::new(HashSet::new()),
            disabled_accounts_known: AtomicBool::new(true),
        }
    }

    pub fn with_revocation_check(mut self, check: Arc<dyn RevocationCheck>) -> Self {
        self.revocation = Some(check);
        self
    }

    /// Accepts only tokens issued for `audience` instead of [`DEFAULT_AUDIENCE`].
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self
    }

    /// Fetches the keys again when they are older than `interval`.
    pub fn with_key_refresh_interval(mut self, interval: Duration) -> Self {
        self.key_refresh_interval = interval;
        self
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.refresh_stale_keys().await;
        let now = chrono::Utc::now().timestamp();
        let remembered = self
            .verified
            .lock()
            .expect("token cache")
            .get(token)
            .cloned();
        let claims = match remembered {
            Some(claims) if claims.exp + LEEWAY_SECONDS > now => claims,
            _ => self.verify_signature(token, now).await?,
        };
        if claims.kind == PrincipalKind::Service {
            if !self.disabled_accounts_known.load(Ordering::Acquire) {
                return Err(TokenError::RevocationsUnavailable);
            }
            if self
                .disabled_accounts
                .read()
                .expect("deny set")
                .contains(&claims.sub)
            {
                return Err(TokenError::Revoked);
            }
        }
        if let Some(check) = &self.revocation {
            match check.is_revoked(&claims).await {
                Ok(false) => {}
                Ok(true) => return Err(TokenError::Revoked),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "revocation check failed");
                    return Err(TokenError::KeysUnavailable);
                }
            }
        }
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.key_for(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_ed_der(key.as_bytes()),
            &self.validation,
        )
        .map_err(token_error)?
        .claims;
        // The library checks `exp`; a token dated in the future is ours to refuse.
        if claims.iat - LEEWAY_SECONDS > now {
            return Err(TokenError::Expired);
        }
        let mut verified = self.verified.lock().expect("token cache");
        if verified.len() >= VERIFIED_CACHE_CAPACITY {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    async fn key_for(&self, kid: &str) -> Result<VerifyingKey, TokenError> {
        if let Some(key) = self.keys.read().await.keys.get(kid) {
            return Ok(*key);
        }
        self.refresh().await?;
        self.keys
            .read()
            .await
            .keys
            .get(kid)
            .copied()
            .ok_or(TokenError::UnknownKey)
    }

    /// Refreshes keys older than the refresh interval. A failure keeps the keys there
    /// are: identity being down must not lock every caller out.
    async fn refresh_stale_keys(&self) {
        let stale = match self.keys.read().await.fetched_at {
            Some(at) => at.elapsed() >= self.key_refresh_interval,
            // Never fetched: the first token's `kid` lookup fetches.
            None => false,
        };
        if stale {
            let _ = self.refresh().await;
        }
    }

    /// Fetches the key set again, unless that was done moments ago.
    pub async fn refresh(&self) -> Result<(), TokenError> {
        let mut last = self.last_refresh.lock().await;
        if let Some((at, succeeded)) = *last
            && at.elapsed() < MIN_REFRESH_INTERVAL
        {
            // A failure is remembered too, so a key source that is down is asked at most
            // once per interval however many tokens with unknown key ids arrive meanwhile.
            return if succeeded {
                Ok(())
            } else {
                Err(TokenError::KeysUnavailable)
            };
        }
        let fetched = self.source.fetch_keys().await;
        *last = Some((Instant::now(), fetched.is_ok()));
        let fetched = fetched.map_err(|error| {
            tracing::warn!(error = format!("{error:#}"), "fetching signing keys failed");
            TokenError::KeysUnavailable
        })?;
        let fetched: HashMap<String, VerifyingKey> =
            fetched.into_iter().map(|k| (k.kid, k.key)).collect();
        let mut cache = self.keys.write().await;
        cache.fetched_at = Some(Instant::now());
        if cache.keys != fetched {
            cache.keys = fetched;
            // A retired key must stop vouching for the tokens it signed.
            self.verified.lock().expect("token cache").clear();
        }
        Ok(())
    }

    /// Refuses every token of the service account from now on.
    pub fn deny_service_account(&self, id: Uuid) {
        self.disabled_accounts.write().expect("deny set").insert(id);
    }

    /// Keeps the deny set of disabled service accounts current from identity's
    /// `service_account.disabled` events, until `shutdown`.
    ///
    /// The events are read from the start of identity's stream, so a restarted service
    /// knows every account disabled within the stream's retention (days); an account
    /// disabled before that holds no live token, since access tokens live minutes and a
    /// disabled account gets no new ones. Until the replay has caught up, service-account
    /// tokens are answered `UNAVAILABLE` rather than accepted unchecked; users' tokens are
    /// unaffected. The subscription is re-established with backoff when NATS or the
    /// stream is not there yet.
    pub fn follow_disabled_service_accounts(
        self: &Arc<Self>,
        bus: crate::events::EventBus,
        mut shutdown: crate::events::Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        self.disabled_accounts_known.store(false, Ordering::Release);
        let verifier = self.clone();
        tokio::spawn(async move {
            const FIRST_BACKOFF: Duration = Duration::from_millis(100);
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = Instant::now();
                tokio::select! {
                    result = verifier.read_disabled_service_accounts(&bus) => {
                        if let Err(error) = result {
                            tracing::warn!(error = format!("{error:#}"), "following disabled service accounts failed; retrying");
                        }
                    }
                    _ = crate::events::stopped(&mut shutdown) => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = crate::events::stopped(&mut shutdown) => return,
                }
                // A subscription that held for a while failed for a new reason: retry soon.
                backoff = if started.elapsed() > Duration::from_secs(30) {
                    FIRST_BACKOFF
                } else {
                    (backoff * 2).min(Duration::from_secs(5))
                };
            }
        })
    }

    async fn read_disabled_service_accounts(
        &self,
        bus: &crate::events::EventBus,
    ) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use async_nats::jetstream::consumer::{DeliverPolicy, pull};
        use futures::StreamExt;
        use prost::Message as _;

        // Like every consumer of identity's events, create the stream if identity has not
        // yet: an empty stream means no account was disabled.
        let stream = bus
            .ensure_stream("identity")
            .await
            .context("opening identity's stream")?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: bus.subject(SERVICE_ACCOUNT_DISABLED),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .context("creating the consumer of disabled service accounts")?;
        if consumer.cached_info().num_pending == 0 {
            self.disabled_accounts_known.store(true, Ordering::Release);
        }
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            // An event this verifier cannot read is logged and passed over: stopping on
            // it would replay the stream and stop there again, forever.
            let disabled =
                lyceum_proto::events::v1::EventEnvelope::decode(message.payload.as_ref())
                    .context("decoding an event envelope")
                    .and_then(|envelope| {
                        crate::events::unpack::<lyceum_proto::events::v1::ServiceAccountDisabled>(
                            &envelope,
                        )
                    })
                    .and_then(|event| {
                        event
                            .service_account_id
                            .parse::<Uuid>()
                            .context("service_account_id is not a UUID")
                    });
            match disabled {
                Ok(id) => self.deny_service_account(id),
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "skipping an unreadable service_account.disabled event"
                ),
            }
            if message
                .info()
                .map(|info| info.pending == 0)
                .unwrap_or(false)
            {
                self.disabled_accounts_known.store(true, Ordering::Release);
            }
        }
        anyhow::bail!("the stream of disabled service accounts ended")
    }
}

/// The subject, relative to the bus prefix, of identity's event that a service account
/// was disabled.
pub const SERVICE_ACCOUNT_DISABLED: &str = "identity.service_account.disabled";

/// Tower layer that verifies a bearer token, when one is present, and puts the
/// [`Principal`] into the request extensions. A request without a token passes through
/// without a principal (handlers that need one answer `UNAUTHENTICATED`); a request with
/// an invalid token is answered `UNAUTHENTICATED` here.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self { verifier }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthMiddleware<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthMiddleware {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthMiddleware<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthMiddleware<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone is the one that was polled ready; keep it, leave a fresh one behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token,
                Err(status) => return Ok(status.into_http()),
            };
            if let Some(token) = token {
                match verifier.verify(&token).await {
                    Ok(claims) => {
                        request
                            .extensions_mut()
                            .insert(Principal::from_claims(claims));
                    }
                    // Signing in, refreshing and health need no token: a stale one that a
                    // client attaches out of habit must not lock it out of refreshing.
                    Err(_) if is_public_method(request.uri().path()) => {}
                    Err(error) => {
                        let status: tonic::Status = ApiError::from(error).into();
                        return Ok(status.into_http());
                    }
                }
            }
            inner.call(request).await
        })
    }
}

/// Methods that work without a principal whatever token comes with them.
fn is_public_method(path: &str) -> bool {
    const PUBLIC: [&str; 4] = [
        "/lyceum.identity.v1.AuthService/",
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    ];
    PUBLIC.iter().any(|prefix| path.starts_with(prefix))
}

fn bearer_token(headers: &http::HeaderMap) -> Result<Option<String>, tonic::Status> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| tonic::Status::unauthenticated("the authorization header is malformed"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(tonic::Status::unauthenticated(
            "the authorization header must be 'Bearer <token>'",
        )),
    }
}

/// Adds `authorization: Bearer <token>` to an outgoing request.
pub fn with_bearer<T>(mut request: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Keys fetched from identity's `GetSigningKeys` over gRPC.
pub struct GrpcKeySource {
    client: lyceum_proto::identity::v1::auth_service_client::AuthServiceClient<
        tonic::transport::Channel,
    >,
}

impl GrpcKeySource {
    /// Connects lazily: a service can start before identity is reachable.
    pub fn new(identity_addr: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(identity_addr.to_owned())?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            client: lyceum_proto::identity::v1::auth_service_client::AuthServiceClient::new(
                channel,
            ),
        })
    }
}

#[async_trait]
impl KeySource for GrpcKeySource {
    async fn fetch_keys(&self) -> anyhow::Result<Vec<PublicKey>> {
        let response = self
            .client
            .clone()
            .get_signing_keys(lyceum_proto::identity::v1::GetSigningKeysRequest {})
            .await?
            .into_inner();
        response
            .keys
            .into_iter()
            .map(|k| {
                let bytes: [u8; 32] = k
                    .public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("key {} is not 32 bytes", k.kid))?;
                Ok(PublicKey {
                    kid: k.kid,
                    key: VerifyingKey::from_bytes(&bytes)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    struct FixedKeys(std::sync::Mutex<Vec<PublicKey>>);

    #[async_trait]
    impl KeySource for FixedKeys {
        async fn fetch_keys(&self) -> anyhow::Result<Vec<PublicKey>> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    fn signer(kid: &str, seed: u8) -> TokenSigner {
        TokenSigner::new(kid, SigningKey::from_bytes(&[seed; 32]))
    }

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            sub: Uuid::now_v7(),
            iat: now,
            exp: now + exp_in,
            jti: Uuid::now_v7(),
            kind: PrincipalKind::User,
            org: None,
            roles: vec![],
            sid: None,
            scopes: vec![],
        }
    }

    fn keys_of(signers: &[&TokenSigner]) -> Arc<FixedKeys> {
        Arc::new(FixedKeys(std::sync::Mutex::new(
            signers.iter().map(|s| s.public_key()).collect(),
        )))
    }

    fn verifier_for(signers: &[&TokenSigner]) -> TokenVerifier {
        TokenVerifier::new(keys_of(signers))
    }

    fn segment(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    #[tokio::test]
    async fn a_signed_token_verifies_and_round_trips_its_claims() {
        let s = signer("k1", 1);
        let mut c = claims(300);
        c.kind = PrincipalKind::Service;
        c.scopes = vec![scopes::PAYMENTS_WRITE.into(), scopes::USERS_READ.into()];
        let token = s.sign(&c);
        assert_eq!(verifier_for(&[&s]).verify(&token).await, Ok(c));
        let payload: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["aud"], DEFAULT_AUDIENCE);
        assert_eq!(payload["scope"], "payments:write users:read");
    }

    #[tokio::test]
    async fn expired_tampered_and_unknown_key_tokens_are_rejected() {
        let s = signer("k1", 1);
        let v = verifier_for(&[&s]);
        assert_eq!(
            v.verify(&s.sign(&claims(-120))).await,
            Err(TokenError::Expired)
        );

        let token = s.sign(&claims(300));
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged = serde_json::to_value(claims(300)).unwrap();
        forged["aud"] = DEFAULT_AUDIENCE.into();
        forged["roles"] = serde_json::json!([{"role": "admin"}]);
        let forged_payload = segment(&forged);
        parts[1] = &forged_payload;
        assert_eq!(
            v.verify(&parts.join(".")).await,
            Err(TokenError::BadSignature)
        );

        let stranger = signer("k2", 2);
        assert_eq!(
            v.verify(&stranger.sign(&claims(300))).await,
            Err(TokenError::UnknownKey)
        );
        assert_eq!(v.verify("a.b").await, Err(TokenError::Malformed));
    }

    #[tokio::test]
    async fn only_eddsa_tokens_of_identity_for_this_audience_verify() {
        let s = signer("k1", 1);
        let v = verifier_for(&[&s]);
        // Another deployment's token, signed by a key this one trusts, is still refused.
        let elsewhere = signer("k1", 1).with_audience("staging");
        assert_eq!(
            v.verify(&elsewhere.sign(&claims(300))).await,
            Err(TokenError::WrongAudience)
        );
        let for_staging = verifier_for(&[&s]).with_audience("staging");
        assert!(
            for_staging
                .verify(&elsewhere.sign(&claims(300)))
                .await
                .is_ok()
        );

        let mut foreign = claims(300);
        foreign.iss = "someone-else".into();
        assert_eq!(
            v.verify(&s.sign(&foreign)).await,
            Err(TokenError::WrongIssuer)
        );

        // `alg: none` and HMAC headers over a valid payload are refused before any key.
        let token = s.sign(&claims(300));
        let parts: Vec<&str> = token.split('.').collect();
        for alg in ["none", "HS256"] {
            let header = segment(&serde_json::json!({"alg": alg, "kid": "k1", "typ": "JWT"}));
            let result = v
                .verify(&format!("{header}.{}.{}", parts[1], parts[2]))
                .await;
            assert!(
                matches!(
                    result,
                    Err(TokenError::UnsupportedAlgorithm | TokenError::Malformed)
                ),
                "{alg}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_retired_key_stops_verifying_after_the_refresh_interval() {
        let old = signer("old", 1);
        let new = signer("new", 2);
        let keys = keys_of(&[&old, &new]);
        let v = TokenVerifier::new(keys.clone())
            .with_key_refresh_interval(Duration::from_millis(1_100));
        let token = old.sign(&claims(300));
        assert!(v.verify(&token).await.is_ok());
        *keys.0.lock().unwrap() = vec![new.public_key()];
        // Within the interval the remembered key still answers...
        assert!(v.verify(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        // ...after it, the key set is fetched again and the retired key is gone.
        assert_eq!(v.verify(&token).await, Err(TokenError::UnknownKey));
        assert!(v.verify(&new.sign(&claims(300))).await.is_ok());
    }

    #[tokio::test]
    async fn a_denied_service_account_is_refused_and_users_are_not() {
        let s = signer("k1", 1);
        let v = verifier_for(&[&s]);
        let mut service = claims(300);
        service.kind = PrincipalKind::Service;
        let token = s.sign(&service);
        assert!(v.verify(&token).await.is_ok());
        v.deny_service_account(service.sub);
        assert_eq!(v.verify(&token).await, Err(TokenError::Revoked));
        // The same id as a user's subject is not a service account.
        let mut user = claims(300);
        user.sub = service.sub;
        assert!(v.verify(&s.sign(&user)).await.is_ok());
    }

    struct UnreachableKeys(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl KeySource for UnreachableKeys {
        async fn fetch_keys(&self) -> anyhow::Result<Vec<PublicKey>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            anyhow::bail!("identity is down")
        }
    }

    #[tokio::test]
    async fn a_failing_key_source_is_asked_once_per_interval() {
        let source = Arc::new(UnreachableKeys(Default::default()));
        let verifier = TokenVerifier::new(source.clone());
        let s = signer("k1", 1);
        for _ in 0..20 {
            assert_eq!(
                verifier.verify(&s.sign(&claims(300))).await,
                Err(TokenError::KeysUnavailable)
            );
        }
        assert_eq!(source.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    fn principal(kind: PrincipalKind, roles: Vec<GrantedRole>, scopes: Vec<String>) -> Principal {
        Principal {
            subject: Uuid::now_v7(),
            kind,
            organization_id: None,
            roles,
            session_id: None,
            scopes,
        }
    }

    #[test]
    fn org_admins_administer_only_their_organization() {
        let org = Uuid::now_v7();
        let mut p = principal(
            PrincipalKind::User,
            vec![GrantedRole {
                role: roles::ORG_ADMIN.into(),
                org: Some(org),
            }],
            vec![],
        );
        p.organization_id = Some(org);
        assert!(p.administers(org));
        assert!(!p.administers(Uuid::now_v7()));
        assert!(!p.has_platform_access());
        assert_eq!(
            p.roles_in_home_organization(),
            vec!["org_admin".to_string()]
        );
    }

    #[test]
    fn service_accounts_act_through_scopes_never_as_admins() {
        let service = principal(
            PrincipalKind::Service,
            // Even a token that somehow carried the admin role.
            vec![GrantedRole {
                role: roles::ADMIN.into(),
                org: None,
            }],
            vec![scopes::PAYMENTS_WRITE.into()],
        );
        assert!(!service.has_platform_access());
        assert!(!service.administers(Uuid::now_v7()));
        assert!(service.require_scope(scopes::PAYMENTS_WRITE).is_ok());
        assert!(matches!(
            service.require_scope(scopes::USERS_READ),
            Err(ApiError::PermissionDenied(_))
        ));
        // A scope in a user's token grants nothing.
        let mut c = claims(300);
        c.scopes = vec![scopes::PAYMENTS_WRITE.into()];
        let user = Principal::from_claims(c);
        assert!(!user.has_scope(scopes::PAYMENTS_WRITE));
    }
}
