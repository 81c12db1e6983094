//! Issuing access and refresh tokens, and telling whether an access token still stands.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use lyceum_platform::ApiError;
use lyceum_platform::auth::{Claims, GrantedRole, ISSUER, PrincipalKind, RevocationCheck};
use lyceum_platform::convert::timestamp;
use lyceum_platform::db::Database;
use lyceum_proto::identity::v1 as pb;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::IdentityApi;
use crate::domain::token::access_token_expiry;
use crate::domain::{SessionId, UserId};
use crate::store::{Tx, grants, service_accounts, sessions};

/// A fresh opaque refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl IdentityApi {
    /// Signs an access token carrying the user's unexpired grants, ending no later than
    /// the first of them does.
    pub(super) async fn issue_user_access_token(
        &self,
        tx: &mut Tx,
        user_id: Uuid,
        organization_id: Option<Uuid>,
        session_id: Uuid,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let active = grants::active_grants(tx, user_id).await?;
        let now = Utc::now();
        let expires = access_token_expiry(
            now,
            self.lifetimes.access,
            active.iter().map(|g| g.expires_at),
        );
        let roles = active
            .into_iter()
            .map(|g| GrantedRole {
                role: g.role.to_string(),
                org: g.organization_id,
            })
            .collect();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: user_id,
            iat: now.timestamp(),
            exp: 0,
            jti: Uuid::now_v7(),
            kind: PrincipalKind::User,
            org: organization_id,
            roles,
            sid: Some(session_id),
            scopes: Vec::new(),
        };
        self.sign(tx, claims, expires).await
    }

    pub(super) async fn issue_service_access_token(
        &self,
        tx: &mut Tx,
        service_account_id: Uuid,
        scopes: Vec<String>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let now = Utc::now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: service_account_id,
            iat: now.timestamp(),
            exp: 0,
            jti: Uuid::now_v7(),
            kind: PrincipalKind::Service,
            org: None,
            roles: vec![],
            sid: None,
            scopes,
        };
        let expires = access_token_expiry(now, self.lifetimes.access, []);
        self.sign(tx, claims, expires).await
    }

    /// Signs the claims with the active key, expiring at `expires`.
    async fn sign(
        &self,
        tx: &mut Tx,
        mut claims: Claims,
        expires: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        claims.exp = expires.timestamp();
        let signer = self.keys.active_signer(tx).await?;
        Ok((signer.sign(&claims), expires))
    }

    /// Starts a session for the user and returns its first token pair.
    pub(super) async fn open_session(
        &self,
        tx: &mut Tx,
        user_id: Uuid,
        organization_id: Option<Uuid>,
    ) -> Result<pb::TokenPair, ApiError> {
        let refresh_expires = Utc::now() + self.lifetimes.refresh;
        let session_id = sessions::create_session(tx, user_id, refresh_expires).await?;
        self.next_token_pair(tx, user_id, organization_id, session_id, refresh_expires)
            .await
    }

    pub(super) async fn next_token_pair(
        &self,
        tx: &mut Tx,
        user_id: Uuid,
        organization_id: Option<Uuid>,
        session_id: Uuid,
        session_expires: DateTime<Utc>,
    ) -> Result<pb::TokenPair, ApiError> {
        let (refresh_token, hash) = new_refresh_token();
        sessions::insert_refresh_token(tx, SessionId::new(session_id), UserId::new(user_id), &hash)
            .await?;
        let (access_token, access_expires) = self
            .issue_user_access_token(tx, user_id, organization_id, session_id)
            .await?;
        Ok(pb::TokenPair {
            access_token,
            access_token_expire_time: Some(timestamp(access_expires)),
            refresh_token,
            refresh_token_expire_time: Some(timestamp(session_expires)),
        })
    }
}

/// Identity's own verifier asks this before accepting a token: the session must be live
/// and the user active (or the service account enabled), so a revoked session or a
/// suspended user is refused at once, not only when the access token expires.
pub struct SessionRevocationCheck {
    db: Database,
}

impl SessionRevocationCheck {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl RevocationCheck for SessionRevocationCheck {
    async fn is_revoked(&self, claims: &Claims) -> anyhow::Result<bool> {
        let mut tx = self.db.begin_system("session liveness").await?;
        let live = match (claims.kind, claims.sid) {
            (PrincipalKind::User, Some(sid)) => {
                sessions::session_is_live(&mut tx, SessionId::new(sid), UserId::new(claims.sub))
                    .await?
            }
            (PrincipalKind::User, None) => false,
            (PrincipalKind::Service, _) => {
                service_accounts::is_enabled(&mut tx, claims.sub).await?
            }
        };
        tx.commit().await?;
        Ok(!live)
    }
}
