use uuid::Uuid;

use super::Tx;
use crate::domain::PasswordHash;

pub async fn set_password(
    tx: &mut Tx,
    user_id: Uuid,
    hash: &PasswordHash,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO password_credentials (user_id, password_hash) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
        user_id,
        &hash.0
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn password_hash(
    tx: &mut Tx,
    user_id: Uuid,
) -> Result<Option<PasswordHash>, sqlx::Error> {
    let hash: Option<String> = sqlx::query_scalar!(
        "SELECT password_hash FROM password_credentials WHERE user_id = $1",
        user_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(hash.map(PasswordHash))
}
