//! Operators' view of dead letters: list them, and replay one once its cause is fixed.
//!
//! Replaying republishes the original envelope on its original subject under a fresh
//! message id, addressed to the consumer that failed it through the [`REPLAY_FOR_HEADER`]
//! header. Other consumers of the subject acknowledge it unread, so a replay can't apply an
//! event twice at a consumer whose inbox has since forgotten it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::EventBus;
use crate::db::Database;

/// Names the one consumer a replayed message is meant for.
pub const REPLAY_FOR_HEADER: &str = "Lyceum-Replay-For";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: Uuid,
    pub consumer: String,
    pub subject: String,
    pub event_id: String,
    pub error: String,
    pub deliveries: i64,
    pub failed_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
}

/// Dead letters of a service's consumers, newest first.
pub async fn list(db: &Database, include_replayed: bool) -> anyhow::Result<Vec<DeadLetter>> {
    let mut tx = db.begin_system("dead letters").await?;
    let rows = sqlx::query_as!(
        DeadLetter,
        "SELECT id, consumer, subject, event_id, error, deliveries, failed_at, replayed_at
         FROM dead_letters WHERE $1 OR replayed_at IS NULL
         ORDER BY failed_at DESC LIMIT 1000",
        include_replayed
    )
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Republishes a dead letter and marks it replayed. Returns false when there is no such
/// dead letter in this service.
pub async fn replay(db: &Database, bus: &EventBus, id: Uuid) -> anyhow::Result<bool> {
    let mut tx = db.begin_system("dead letters").await?;
    let row = sqlx::query!(
        "SELECT consumer, subject, payload FROM dead_letters WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(false);
    };
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .message_id(format!("replay-{id}-{}", Uuid::now_v7()))
        .header(REPLAY_FOR_HEADER, row.consumer.as_str())
        .payload(row.payload.into());
    bus.jetstream()
        .send_publish(bus.subject(&row.subject), publish)
        .await?
        .await?;
    sqlx::query!(
        "UPDATE dead_letters SET replayed_at = now() WHERE id = $1",
        id
    )
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(true)
}
