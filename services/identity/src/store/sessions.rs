//! Sessions (refresh-token families) and their refresh tokens.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Tx;
use crate::domain::session::{RefreshState, SessionEnd};
use crate::domain::{SessionId, UserId};

#[derive(Debug, Clone)]
pub struct PresentedToken {
    pub token_id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The pair the rotation produced, sealed; see [`mark_rotated`].
    pub successor_sealed: Option<Vec<u8>>,
    pub session_expires_at: DateTime<Utc>,
    pub session_revoked_at: Option<DateTime<Utc>>,
    /// The database's clock when the row was read, for the grace window: the same clock
    /// that stamped `rotated_at`.
    pub checked_at: DateTime<Utc>,
}

impl PresentedToken {
    /// What refreshing reads of the token and its session.
    pub fn refresh_state(&self) -> RefreshState<'_> {
        RefreshState {
            rotated_at: self.rotated_at,
            successor_sealed: self.successor_sealed.as_deref(),
            session_expires_at: self.session_expires_at,
            session_revoked: self.session_revoked_at.is_some(),
        }
    }
}

pub async fn create_session(
    tx: &mut Tx,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, $3)",
        id,
        user_id,
        expires_at
    )
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn insert_refresh_token(
    tx: &mut Tx,
    session_id: SessionId,
    user_id: UserId,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash) VALUES ($1, $2, $3, $4)",
        Uuid::now_v7(),
        session_id.get(),
        user_id.get(),
        token_hash
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Finds a presented refresh token and locks it, so that two concurrent refreshes with
/// the same token cannot both rotate it.
pub async fn find_and_lock(
    tx: &mut Tx,
    token_hash: &[u8],
) -> Result<Option<PresentedToken>, sqlx::Error> {
    sqlx::query_as!(
        PresentedToken,
        "SELECT t.id AS token_id, t.session_id, t.user_id, t.rotated_at, t.successor_sealed,
                s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at,
                clock_timestamp() AS \"checked_at!\"
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
         WHERE t.token_hash = $1
         FOR UPDATE OF t, s",
        token_hash
    )
    .fetch_optional(tx.conn())
    .await
}

/// Whether the token exists and has not been rotated, locking it so that it cannot be
/// rotated before the caller's transaction ends.
pub async fn lock_unrotated(tx: &mut Tx, token_hash: &[u8]) -> Result<bool, sqlx::Error> {
    let rotated_at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar!(
        "SELECT rotated_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        token_hash
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(matches!(rotated_at, Some(None)))
}

/// Marks the token rotated, keeping the sealed pair that replaced it for the grace window.
pub async fn mark_rotated(
    tx: &mut Tx,
    token_id: Uuid,
    successor_sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refresh_tokens SET rotated_at = now(), successor_sealed = $2 WHERE id = $1",
        token_id,
        successor_sealed
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn revoke_session(
    tx: &mut Tx,
    session_id: Uuid,
    reason: SessionEnd,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
         WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        reason.as_str()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn revoke_user_sessions(
    tx: &mut Tx,
    user_id: Uuid,
    reason: SessionEnd,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        reason.as_str()
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether an access token's session and user still stand: the session is neither
/// revoked nor expired and the user is active.
pub async fn session_is_live(
    tx: &mut Tx,
    session_id: SessionId,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT EXISTS (
           SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL
             AND s.expires_at > now() AND u.status = 'active') AS \"exists!\"",
        session_id.get(),
        user_id.get()
    )
    .fetch_one(tx.conn())
    .await
}
