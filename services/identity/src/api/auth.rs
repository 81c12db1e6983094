use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lyceum_platform::auth::{require_principal, scopes};
use lyceum_platform::convert::{parse_id, timestamp};
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::TenantContext;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::identity::v1 as pb;
use lyceum_proto::identity::v1::auth_service_server::AuthService;
use prost::Message as _;
use rand::RngCore;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::tokens::hash_refresh_token;
use super::{IdentityApi, wire};
use crate::domain::session::{
    RefreshRefusal, RefreshStep, SessionEnd, decide_refresh, decide_refresh_account, decide_replay,
};
use crate::domain::{Email, PasswordHash, Slug, may_sign_in, require_platform_admin};
use crate::events;
use crate::store::{Tx, credentials, service_accounts, sessions, signing_keys, users};

const BAD_CREDENTIALS: &str = "invalid email or password";

async fn verify_off_thread(hash: PasswordHash, candidate: String) -> Result<bool, ApiError> {
    super::run_hashing(move || hash.matches(&candidate)).await
}

fn key_message(row: signing_keys::KeyRow, active: bool) -> pb::SigningKey {
    pb::SigningKey {
        kid: row.kid,
        algorithm: lyceum_platform::auth::ALGORITHM.to_owned(),
        public_key: row.public_key,
        create_time: Some(timestamp(row.created_at)),
        active,
    }
}

/// An Authenticate request, validated.
struct SignIn {
    email: Email,
    /// The candidate password, checked against the stored hash.
    password: String,
}

impl TryFrom<pb::AuthenticateRequest> for SignIn {
    type Error = ApiError;

    fn try_from(req: pb::AuthenticateRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let email = v.check("email", Email::parse(&req.email));
        if req.password.is_empty() {
            v.add("password", "is required");
        }
        v.into_result()?;
        let email = email.expect("parsed when there are no violations");
        Ok(Self {
            email,
            password: req.password,
        })
    }
}

/// A CreateServiceAccount request, validated.
struct CreateServiceAccount {
    name: Slug,
    scopes: Vec<String>,
}

impl TryFrom<pb::CreateServiceAccountRequest> for CreateServiceAccount {
    type Error = ApiError;

    fn try_from(req: pb::CreateServiceAccountRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let name = v.check("name", Slug::parse(&req.name));
        let scopes = service_account_scopes(&mut v, req.scopes);
        v.into_result()?;
        let name = name.expect("parsed when there are no violations");
        Ok(Self { name, scopes })
    }
}

impl IdentityApi {
    async fn authenticate_(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<pb::AuthenticateResponse, ApiError> {
        let address = super::throttle::client_address(&request, self.trusted_proxy_hops);
        let SignIn { email, password } = request.into_inner().try_into()?;
        // Emails match whatever their case, so their throttle does too.
        let account = email.as_str().to_lowercase();
        // Refused before any hashing, so a throttled guesser costs next to nothing.
        let attempt = self
            .throttle
            .reserve(&account, &address)
            .map_err(|retry_after| ApiError::Throttled {
                message: "too many failed sign-ins; retry later".into(),
                retry_after,
            })?;

        // Sign-in happens before there is a principal: the service acts for itself.
        let mut tx = self.db.begin_system("sign-in").await?;
        let user = users::find_by_email(&mut tx, email.as_str()).await?;
        let stored = match &user {
            Some(u) => credentials::password_hash(&mut tx, u.id).await?,
            None => None,
        };
        // Unknown emails cost the same hashing time as wrong passwords.
        let hash = stored
            .clone()
            .unwrap_or_else(|| PasswordHash::dummy().clone());
        let matches = verify_off_thread(hash, password).await? && stored.is_some();
        let Some(user) = user.filter(|_| matches) else {
            attempt.failed();
            return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()));
        };
        may_sign_in(user.status)?;
        let tokens = self
            .open_session(&mut tx, user.id, user.organization_id)
            .await?;
        tx.commit().await?;
        Ok(pb::AuthenticateResponse {
            tokens: Some(tokens),
            user: Some(wire::user(user)),
        })
    }

    async fn refresh_token_(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<pb::RefreshTokenResponse, ApiError> {
        let token = request.into_inner().refresh_token;
        if token.is_empty() {
            return Err(ApiError::invalid("refresh_token", "is required"));
        }
        let mut tx = self.db.begin_system("token refresh").await?;
        let presented = sessions::find_and_lock(&mut tx, &hash_refresh_token(&token))
            .await?
            .ok_or(RefreshRefusal::Invalid)?;
        let state = presented.refresh_state();
        let grace = chrono::Duration::from_std(self.refresh_grace).unwrap_or_default();
        let session = presented.session_id;
        // One clock for the grace window and the session's expiry: the database's, which
        // stamped `rotated_at`.
        let step = match decide_refresh(&state, presented.checked_at, grace) {
            Ok(step) => step,
            Err(refusal) => return Err(refuse_refresh(tx, session, refusal).await?),
        };
        if let RefreshStep::Replay(sealed) = step {
            // The same client refreshing twice at once (two tabs, a retry after a lost
            // answer) gets the pair the first refresh produced.
            let pair = open_token_pair(self.keys.sealer(), sealed)?;
            let successor = hash_refresh_token(&pair.refresh_token);
            let unrotated = sessions::lock_unrotated(&mut tx, &successor).await?;
            if let Err(refusal) = decide_replay(&state, unrotated) {
                return Err(refuse_refresh(tx, session, refusal).await?);
            }
            tx.commit().await?;
            return Ok(pb::RefreshTokenResponse { tokens: Some(pair) });
        }
        // A token whose user is gone is as invalid as an unknown one.
        let user = users::get(&mut tx, presented.user_id)
            .await?
            .ok_or(RefreshRefusal::Invalid)?;
        if let Err(refusal) = decide_refresh_account(user.status) {
            return Err(refuse_refresh(tx, session, refusal).await?);
        }
        let tokens = self
            .next_token_pair(
                &mut tx,
                user.id,
                user.organization_id,
                session,
                presented.session_expires_at,
            )
            .await?;
        let sealed = self.keys.sealer().encrypt(&tokens.encode_to_vec());
        sessions::mark_rotated(&mut tx, presented.token_id, &sealed).await?;
        tx.commit().await?;
        Ok(pb::RefreshTokenResponse {
            tokens: Some(tokens),
        })
    }

    async fn revoke_token_(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<pb::RevokeTokenResponse, ApiError> {
        let token = request.into_inner().refresh_token;
        if token.is_empty() {
            return Err(ApiError::invalid("refresh_token", "is required"));
        }
        let mut tx = self.db.begin_system("token revocation").await?;
        // Like OAuth token revocation (RFC 7009), an unknown token is not an error.
        if let Some(presented) =
            sessions::find_and_lock(&mut tx, &hash_refresh_token(&token)).await?
        {
            sessions::revoke_session(&mut tx, presented.session_id, SessionEnd::Logout).await?;
        }
        tx.commit().await?;
        Ok(pb::RevokeTokenResponse {})
    }

    async fn get_signing_keys_(&self) -> Result<pb::GetSigningKeysResponse, ApiError> {
        let mut tx = self.db.begin_system("signing keys").await?;
        let rows = signing_keys::unretired(&mut tx).await?;
        tx.commit().await?;
        Ok(pb::GetSigningKeysResponse {
            keys: rows
                .into_iter()
                .enumerate()
                .map(|(i, row)| key_message(row, i == 0))
                .collect(),
        })
    }

    async fn rotate_signing_key_(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<pb::RotateSigningKeyResponse, ApiError> {
        let principal = require_principal(&request)?;
        require_platform_admin(&principal)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        signing_keys::lock_rotation(&mut tx).await?;
        let row = signing_keys::rotate(&mut tx, self.keys.sealer()).await?;
        tx.commit().await?;
        Ok(pb::RotateSigningKeyResponse {
            key: Some(key_message(row, true)),
        })
    }

    async fn create_service_account_(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<pb::CreateServiceAccountResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreateServiceAccount { name, scopes } = request.into_inner().try_into()?;
        require_platform_admin(&principal)?;
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let to_hash = secret.clone();
        let hash = super::run_hashing(move || PasswordHash::of_secret(&to_hash)).await?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let row =
            service_accounts::insert(&mut tx, name.as_str(), &hash.0, &scopes, principal.subject)
                .await?;
        tx.commit().await?;
        Ok(pb::CreateServiceAccountResponse {
            service_account: Some(service_account_message(row)),
            client_secret: secret,
        })
    }

    async fn disable_service_account_(
        &self,
        request: Request<pb::DisableServiceAccountRequest>,
    ) -> Result<pb::DisableServiceAccountResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id(
            "service_account_id",
            &request.into_inner().service_account_id,
        )?;
        require_platform_admin(&principal)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let (row, newly_disabled) = service_accounts::disable(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("service account"))?;
        if newly_disabled {
            tx.publish(events::service_account_disabled(&row)).await?;
        }
        tx.commit().await?;
        Ok(pb::DisableServiceAccountResponse {
            service_account: Some(service_account_message(row)),
        })
    }

    async fn authenticate_service_account_(
        &self,
        request: Request<pb::AuthenticateServiceAccountRequest>,
    ) -> Result<pb::AuthenticateServiceAccountResponse, ApiError> {
        let req = request.into_inner();
        let id = parse_id("service_account_id", &req.service_account_id)?;
        let mut tx = self.db.begin_system("service account sign-in").await?;
        let account = service_accounts::get(&mut tx, id).await?;
        let hash = account
            .as_ref()
            .map(|a| PasswordHash(a.client_secret_hash.clone()))
            .unwrap_or_else(|| PasswordHash::dummy().clone());
        let matches = verify_off_thread(hash, req.client_secret).await?;
        let Some(account) = account.filter(|a| matches && a.disabled_at.is_none()) else {
            return Err(ApiError::Unauthenticated(
                "invalid service account credentials".into(),
            ));
        };
        let (access_token, expires) = self
            .issue_service_access_token(&mut tx, account.id, account.scopes)
            .await?;
        tx.commit().await?;
        Ok(pb::AuthenticateServiceAccountResponse {
            tokens: Some(pb::TokenPair {
                access_token,
                access_token_expire_time: Some(timestamp(expires)),
                refresh_token: String::new(),
                refresh_token_expire_time: None,
            }),
        })
    }
}

#[tonic::async_trait]
impl AuthService for IdentityApi {
    async fn authenticate(
        &self,
        r: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        Ok(Response::new(self.authenticate_(r).await?))
    }
    async fn refresh_token(
        &self,
        r: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        Ok(Response::new(self.refresh_token_(r).await?))
    }
    async fn revoke_token(
        &self,
        r: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        Ok(Response::new(self.revoke_token_(r).await?))
    }
    async fn get_signing_keys(
        &self,
        _: Request<pb::GetSigningKeysRequest>,
    ) -> Result<Response<pb::GetSigningKeysResponse>, Status> {
        Ok(Response::new(self.get_signing_keys_().await?))
    }
    async fn rotate_signing_key(
        &self,
        r: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        Ok(Response::new(self.rotate_signing_key_(r).await?))
    }
    async fn create_service_account(
        &self,
        r: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<Response<pb::CreateServiceAccountResponse>, Status> {
        Ok(Response::new(self.create_service_account_(r).await?))
    }
    async fn authenticate_service_account(
        &self,
        r: Request<pb::AuthenticateServiceAccountRequest>,
    ) -> Result<Response<pb::AuthenticateServiceAccountResponse>, Status> {
        Ok(Response::new(self.authenticate_service_account_(r).await?))
    }
    async fn disable_service_account(
        &self,
        r: Request<pb::DisableServiceAccountRequest>,
    ) -> Result<Response<pb::DisableServiceAccountResponse>, Status> {
        Ok(Response::new(self.disable_service_account_(r).await?))
    }
}

fn service_account_message(row: service_accounts::ServiceAccountRow) -> pb::ServiceAccount {
    pb::ServiceAccount {
        id: row.id.to_string(),
        name: row.name,
        create_time: Some(timestamp(row.created_at)),
        disable_time: row.disabled_at.map(timestamp),
        scopes: row.scopes,
    }
}

/// The requested scopes: at least one, each known, none twice.
fn service_account_scopes(v: &mut Violations, requested: Vec<String>) -> Vec<String> {
    if requested.is_empty() {
        v.add(
            "scopes",
            format!("at least one is required, of: {}", scopes::ALL.join(", ")),
        );
    }
    let mut accepted: Vec<String> = Vec::new();
    for (i, scope) in requested.into_iter().enumerate() {
        if !scopes::is_known(&scope) {
            v.add(
                format!("scopes[{i}]"),
                format!("must be one of: {}", scopes::ALL.join(", ")),
            );
        } else if accepted.contains(&scope) {
            v.add(format!("scopes[{i}]"), "is given twice");
        } else {
            accepted.push(scope);
        }
    }
    accepted
}

fn open_token_pair(sealer: &SecretBox, sealed: &[u8]) -> Result<pb::TokenPair, ApiError> {
    let bytes = sealer.decrypt(sealed)?;
    pb::TokenPair::decode(bytes.as_slice())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("sealed token pair: {e}")))
}

/// The error a refused refresh answers with, once the session it ends (if any) is ended
/// and committed: the refusal must not undo the revocation.
async fn refuse_refresh(
    mut tx: Tx,
    session: Uuid,
    refusal: RefreshRefusal,
) -> Result<ApiError, ApiError> {
    if let Some(reason) = refusal.revocation() {
        if reason == SessionEnd::ReuseDetected {
            tracing::warn!(%session, "refresh token reuse detected; revoking the session");
        }
        sessions::revoke_session(&mut tx, session, reason).await?;
        tx.commit().await?;
    }
    Ok(refusal.into())
}
