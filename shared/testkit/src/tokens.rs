//! Access tokens minted in the test, signed with identity's own key, for callers that
//! need no account in identity.

use ed25519_dalek::SigningKey;
use lyceum_platform::auth::{Claims, GrantedRole, ISSUER, PrincipalKind, TokenSigner};
use lyceum_platform::crypto::SecretBox;
use uuid::Uuid;

use crate::TestDatabase;

impl TestDatabase {
    /// Identity's active signing key in this database, unsealed with `sealer` (the key
    /// identity was started with), so tests can sign tokens every service accepts.
    pub async fn identity_signer(&self, sealer: &SecretBox) -> TokenSigner {
        let mut conn = self.admin_connection().await;
        let (kid, sealed): (String, Vec<u8>) = sqlx::query_as(
            "SELECT kid, private_key_encrypted FROM identity.signing_keys
             WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_one(&mut conn)
        .await
        .expect("identity has a signing key (start identity first)");
        let seed: [u8; 32] = sealer
            .decrypt(&sealed)
            .expect("unseal the signing key")
            .try_into()
            .expect("an Ed25519 seed");
        TokenSigner::new(kid, SigningKey::from_bytes(&seed))
    }
}

/// Claims for a new principal (a fresh subject id), issued now and valid for an hour.
pub fn fresh_claims(
    kind: PrincipalKind,
    org: Option<Uuid>,
    roles: Vec<GrantedRole>,
    scopes: Vec<String>,
) -> Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Claims {
        iss: ISSUER.into(),
        sub: Uuid::now_v7(),
        iat: now,
        exp: now + 3600,
        jti: Uuid::now_v7(),
        kind,
        org,
        roles,
        sid: None,
        scopes,
    }
}

/// The claims a token carries, read without verifying it: what a test needs to mint a
/// variant of a real token (expired, or signed by another key).
pub fn claims_of(token: &str) -> Claims {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    serde_json::from_slice(&bytes).expect("the payload holds claims")
}
