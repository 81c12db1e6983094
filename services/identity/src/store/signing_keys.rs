//! Signing keys: Ed25519 key pairs whose private halves are sealed with the data key.
//! The newest unretired key signs; every unretired key verifies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use lyceum_platform::auth::{KeySource, PublicKey, TokenSigner};
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
use rand::RngCore;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::Tx;

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key_encrypted: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// Keys that still verify, newest (the signing one) first.
pub async fn unretired(tx: &mut Tx) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as!(
        KeyRow,
        "SELECT kid, public_key, private_key_encrypted, created_at FROM signing_keys
         WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC"
    )
    .fetch_all(tx.conn())
    .await
}

/// Serialises rotations (and the creation of the first key) until the transaction ends,
/// so that two at once cannot retire each other's new key or both create a first one.
pub async fn lock_rotation(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('lyceum.identity.signing_keys'))")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Generates a key pair, stores it as the newest key and retires all but the previous
/// one, which keeps verifying the tokens it signed until they expire.
pub async fn rotate(tx: &mut Tx, sealer: &SecretBox) -> Result<KeyRow, sqlx::Error> {
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let public_key = key.verifying_key();
    let row = sqlx::query_as!(
        KeyRow,
        "INSERT INTO signing_keys (kid, public_key, private_key_encrypted) VALUES ($1, $2, $3)
         RETURNING kid, public_key, private_key_encrypted, created_at",
        Uuid::now_v7().simple().to_string(),
        public_key.as_bytes().as_slice(),
        sealer.encrypt(&seed)
    )
    .fetch_one(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE signing_keys SET retired_at = now()
         WHERE retired_at IS NULL
           AND kid NOT IN (SELECT kid FROM signing_keys WHERE retired_at IS NULL
                           ORDER BY created_at DESC, kid DESC LIMIT 2)"
    )
    .execute(tx.conn())
    .await?;
    Ok(row)
}

/// Creates the first key if there is none. Replicas starting together serialize on an
/// advisory lock so that exactly one creates it.
pub async fn ensure_signing_key(db: &Database, sealer: &SecretBox) -> anyhow::Result<()> {
    let mut tx = db.begin_system("signing keys").await?;
    lock_rotation(&mut tx).await?;
    if unretired(&mut tx).await?.is_empty() {
        rotate(&mut tx, sealer).await?;
        tracing::info!("created the first signing key");
    }
    tx.commit().await?;
    Ok(())
}

/// Hands out the signer of the newest key, decrypting a key once per process.
pub struct KeyRing {
    sealer: SecretBox,
    audience: String,
    cached: Mutex<Option<TokenSigner>>,
}

impl KeyRing {
    /// Signs tokens for `audience`, the deployment's `aud`.
    pub fn new(sealer: SecretBox, audience: String) -> Self {
        Self {
            sealer,
            audience,
            cached: Mutex::new(None),
        }
    }

    pub fn sealer(&self) -> &SecretBox {
        &self.sealer
    }

    pub async fn active_signer(&self, tx: &mut Tx) -> anyhow::Result<TokenSigner> {
        let newest = unretired(tx)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no signing key exists"))?;
        let mut cached = self.cached.lock().await;
        if let Some(signer) = cached.as_ref().filter(|s| s.kid() == newest.kid) {
            return Ok(signer.clone());
        }
        let seed: [u8; 32] = self
            .sealer
            .decrypt(&newest.private_key_encrypted)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("sealed signing key has the wrong length"))?;
        let signer = TokenSigner::new(newest.kid, SigningKey::from_bytes(&seed))
            .with_audience(self.audience.clone());
        *cached = Some(signer.clone());
        Ok(signer)
    }
}

/// The key source of identity's own verifier: its table, no network hop.
pub struct DbKeySource {
    db: Database,
}

impl DbKeySource {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl KeySource for DbKeySource {
    async fn fetch_keys(&self) -> anyhow::Result<Vec<PublicKey>> {
        let mut tx = self.db.begin_system("signing keys").await?;
        let rows = unretired(&mut tx).await?;
        tx.commit().await?;
        rows.into_iter().map(public_key).collect()
    }
}

pub fn public_key(row: KeyRow) -> anyhow::Result<PublicKey> {
    let bytes: [u8; 32] = row
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("public key {} has the wrong length", row.kid))?;
    Ok(PublicKey {
        kid: row.kid,
        key: VerifyingKey::from_bytes(&bytes)?,
    })
}
