//! Access tokens: Ed25519-signed JWTs issued by identity and verified locally by every
//! service, and the `Principal` a verified token becomes.
//!
//! Verification keys come from a [`KeySource`] (identity's `GetSigningKeys` over gRPC, or
//! identity's own table) and are fetched again when a token names an unknown `kid`, so key
//! rotation needs no restart anywhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::error::ApiError;

pub const ISSUER: &str = "lyceum-identity";
pub const ALGORITHM: &str = "EdDSA";
/// Clock skew tolerated between the issuer and a verifier.
const LEEWAY_SECONDS: i64 = 30;
/// An unknown `kid` triggers at most one key fetch in this interval, so garbage tokens
/// cannot turn into a flood of calls to identity.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

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

/// The claims of an access token.
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
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

/// The verified caller of a request, placed in the request extensions by [`AuthLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: Uuid,
    pub kind: PrincipalKind,
    pub organization_id: Option<Uuid>,
    pub roles: Vec<GrantedRole>,
    pub session_id: Option<Uuid>,
}

impl Principal {
    pub fn from_claims(claims: Claims) -> Self {
        Self {
            subject: claims.sub,
            kind: claims.kind,
            organization_id: claims.org,
            roles: claims.roles,
            session_id: claims.sid,
        }
    }

    /// Holds `role` platform-wide, or in `org` when one is given.
    pub fn has_role(&self, role: &str, org: Option<Uuid>) -> bool {
        self.roles
            .iter()
            .any(|g| g.role == role && (g.org.is_none() || g.org == org))
    }

    /// Platform admins and service accounts may act on every tenant.
    pub fn has_platform_access(&self) -> bool {
        self.kind == PrincipalKind::Service || self.has_role(roles::ADMIN, None)
    }

    /// May administer `org`: its org admins and anyone with platform access.
    pub fn administers(&self, org: Uuid) -> bool {
        self.has_platform_access()
            || self
                .roles
                .iter()
                .any(|g| g.role == roles::ORG_ADMIN && g.org == Some(org))
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

/// Signs access tokens with one Ed25519 key.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    key: SigningKey,
}

impl TokenSigner {
    pub fn new(kid: impl Into<String>, key: SigningKey) -> Self {
        Self {
            kid: kid.into(),
            key,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: ALGORITHM.to_owned(),
            typ: Some("JWT".to_owned()),
            kid: self.kid.clone(),
        };
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serializes"));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
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
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("signing keys are unavailable")]
    KeysUnavailable,
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::KeysUnavailable => ApiError::Unavailable(error.to_string()),
            other => ApiError::Unauthenticated(other.to_string()),
        }
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

/// Verifies access tokens against a cache of keys, refreshed on an unknown `kid`.
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    revocation: Option<Arc<dyn RevocationCheck>>,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    /// When keys were last fetched, and whether that fetch succeeded.
    last_refresh: Mutex<Option<(Instant, bool)>>,
    /// Tokens whose signature already checked out: a client sends the same token with
    /// every call for minutes, and an Ed25519 verification per call is the largest CPU
    /// cost of a cheap RPC. Cleared whenever the key set changes.
    verified: std::sync::Mutex<HashMap<String, Claims>>,
}

/// Bound on remembered tokens; past it the memory is cleared and refilled.
const VERIFIED_CACHE_CAPACITY: usize = 10_000;

impl TokenVerifier {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            revocation: None,
            keys: RwLock::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn with_revocation_check(mut self, check: Arc<dyn RevocationCheck>) -> Self {
        self.revocation = Some(check);
        self
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
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
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(header_b64)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let key = self.key_for(&header.kid).await?;
        let signature_bytes = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let signature =
            Signature::from_slice(&signature_bytes).map_err(|_| TokenError::Malformed)?;
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        key.verify_strict(&token.as_bytes()[..signing_input_len], &signature)
            .map_err(|_| TokenError::BadSignature)?;

        let claims: Claims = decode_json(payload_b64)?;
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if claims.exp + LEEWAY_SECONDS <= now || claims.iat - LEEWAY_SECONDS > now {
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
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(*key);
        }
        self.refresh().await?;
        self.keys
            .read()
            .await
            .get(kid)
            .copied()
            .ok_or(TokenError::UnknownKey)
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
        *self.keys.write().await = fetched.into_iter().map(|k| (k.kid, k.key)).collect();
        // A retired key must stop vouching for the tokens it signed.
        self.verified.lock().expect("token cache").clear();
        Ok(())
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

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

    struct FixedKeys(Vec<PublicKey>);

    #[async_trait]
    impl KeySource for FixedKeys {
        async fn fetch_keys(&self) -> anyhow::Result<Vec<PublicKey>> {
            Ok(self.0.clone())
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
        }
    }

    fn verifier_for(signers: &[&TokenSigner]) -> TokenVerifier {
        TokenVerifier::new(Arc::new(FixedKeys(
            signers
                .iter()
                .map(|s| PublicKey {
                    kid: s.kid.clone(),
                    key: s.key.verifying_key(),
                })
                .collect(),
        )))
    }

    #[tokio::test]
    async fn a_signed_token_verifies_and_round_trips_its_claims() {
        let s = signer("k1", 1);
        let c = claims(300);
        assert_eq!(verifier_for(&[&s]).verify(&s.sign(&c)).await, Ok(c));
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
        let mut forged = claims(300);
        forged.roles.push(GrantedRole {
            role: "admin".into(),
            org: None,
        });
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
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

    #[test]
    fn org_admins_administer_only_their_organization() {
        let org = Uuid::now_v7();
        let p = Principal {
            subject: Uuid::now_v7(),
            kind: PrincipalKind::User,
            organization_id: Some(org),
            roles: vec![GrantedRole {
                role: roles::ORG_ADMIN.into(),
                org: Some(org),
            }],
            session_id: None,
        };
        assert!(p.administers(org));
        assert!(!p.administers(Uuid::now_v7()));
        assert!(!p.has_platform_access());
        assert_eq!(
            p.roles_in_home_organization(),
            vec!["org_admin".to_string()]
        );
    }
}
