//! The outbox relay: moves committed events from a service's outbox to JetStream.
//!
//! Each round claims up to `batch_size` unpublished rows with `FOR UPDATE SKIP LOCKED`
//! (so replicas never claim the same row), publishes them all with `Nats-Msg-Id` = event
//! id keeping every ack in flight at once, and marks the acknowledged ones sent in the
//! same transaction. A crash after publishing but before the commit republishes the
//! batch: JetStream drops the duplicates within its window, and consumers' inboxes drop
//! any that get through. The relay sleeps until a commit of its own process wakes it
//! ([`Database::wake_relay`]), or for the polling interval at most, which is how it finds
//! what other processes committed. It is not woken with `NOTIFY`: PostgreSQL serialises
//! the commits of notifying transactions on one lock, flush included, which cost the
//! writes about 15 % at four concurrent writers.

use std::time::{Duration, Instant};

use futures::future::join_all;
use uuid::Uuid;

use super::metrics::EventMetrics;
use super::{EventBus, Shutdown, retry_with_backoff, stopped};
use crate::db::Database;

#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    pub batch_size: i64,
    pub poll_interval: Duration,
    /// Sent rows older than this are deleted.
    pub keep_sent: Duration,
    /// An event unpublished for longer than this turns the event path's health to
    /// NOT_SERVING: the relay is stuck or far behind.
    pub max_unpublished_age: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 512,
            // Only events committed by other processes (operators' commands, another
            // replica's writes when its relay is busy) wait for it.
            poll_interval: Duration::from_millis(250),
            keep_sent: Duration::from_secs(3600),
            max_unpublished_age: Duration::from_secs(60),
        }
    }
}

struct OutboxRow {
    id: Uuid,
    subject: String,
    envelope: Vec<u8>,
}

pub struct Relay {
    db: Database,
    bus: EventBus,
    settings: RelaySettings,
    metrics: EventMetrics,
}

impl Relay {
    pub fn new(db: Database, bus: EventBus, settings: RelaySettings) -> Self {
        let metrics = EventMetrics::new(db.service());
        Self {
            db,
            bus,
            settings,
            metrics,
        }
    }

    /// Runs until shutdown, finishing the batch in hand first. While NATS is unreachable
    /// the events wait in the outbox and the relay keeps trying.
    pub async fn run(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let service = self.db.service();
        let stream = retry_with_backoff(&format!("{service} outbox relay"), &mut shutdown, || {
            self.bus.ensure_stream(service)
        })
        .await;
        if stream.is_none() {
            return Ok(()); // Shutdown came first.
        }
        let mut failures: u32 = 0;
        // Maintenance (and the backlog gauges) first runs on the first idle round.
        let mut last_cleanup: Option<Instant> = None;
        tracing::info!(service = self.db.service(), "outbox relay started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.publish_batch().await {
                Ok(published) => {
                    failures = 0;
                    if published as i64 == self.settings.batch_size {
                        continue; // More is waiting: no sleep.
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    self.metrics.publish_failures.add(1, &self.metrics.labels);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "publishing the outbox failed; retrying"
                    );
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(&mut shutdown) => break,
                    }
                    continue;
                }
            }
            if last_cleanup.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                if let Err(error) = self.maintain().await {
                    tracing::warn!(error = format!("{error:#}"), "outbox maintenance failed");
                }
                last_cleanup = Some(Instant::now());
            }
            tokio::select! {
                _ = self.db.relay_woken() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = stopped(&mut shutdown) => break,
            }
        }
        tracing::info!(service = self.db.service(), "outbox relay stopped");
        Ok(())
    }

    /// Makes sure the stream exists and publishes one batch: the relay driven step by
    /// step, without its loop (tools and tests).
    pub async fn publish_once(&self) -> anyhow::Result<usize> {
        self.bus.ensure_stream(self.db.service()).await?;
        self.publish_batch().await
    }

    /// Publishes one batch; returns how many rows were published.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        // Losing this commit in a crash only means publishing the batch again, which
        // JetStream and the inboxes de-duplicate: no need to wait for the WAL flush.
        let mut tx = self.db.begin_system_unflushed("relay claim").await?;
        let rows = sqlx::query_as!(
            OutboxRow,
            "SELECT id, subject, envelope FROM outbox
             WHERE published_at IS NULL
             ORDER BY id
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
            self.settings.batch_size
        )
        .fetch_all(tx.conn())
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }

        // Send every message first, then await the acks together: one round trip's
        // latency per batch instead of per message.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let publish = async_nats::jetstream::message::PublishMessage::build()
                .message_id(row.id.to_string())
                .payload(row.envelope.clone().into());
            let ack = self
                .bus
                .jetstream()
                .send_publish(self.bus.subject(&row.subject), publish)
                .await;
            pending.push((row.id, ack));
        }
        crate::failpoint::hit("relay-after-send");
        let acks = join_all(pending.into_iter().map(|(id, sent)| async move {
            match sent {
                Ok(ack) => ack.await.map(|_| id).map_err(anyhow::Error::from),
                Err(error) => Err(anyhow::Error::from(error)),
            }
        }))
        .await;
        let mut sent = Vec::with_capacity(acks.len());
        let mut first_error = None;
        for ack in acks {
            match ack {
                Ok(id) => sent.push(id),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        crate::failpoint::hit("relay-before-mark-sent");
        sqlx::query!(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
            &sent
        )
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.metrics
            .published
            .add(sent.len() as u64, &self.metrics.labels);
        match first_error {
            Some(error) if sent.is_empty() => Err(error),
            Some(error) => {
                self.metrics.publish_failures.add(1, &self.metrics.labels);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "part of a batch was not acknowledged"
                );
                Ok(sent.len())
            }
            None => Ok(sent.len()),
        }
    }

    /// Deletes old sent rows and old inbox entries, and records the backlog.
    async fn maintain(&self) -> anyhow::Result<()> {
        let mut tx = self.db.begin_system("outbox cleanup").await?;
        let keep = self.settings.keep_sent.as_secs_f64();
        sqlx::query!(
            "DELETE FROM outbox WHERE published_at IS NOT NULL
               AND published_at < now() - make_interval(secs => $1)",
            keep
        )
        .execute(tx.conn())
        .await?;
        // The inbox only needs to outlive redeliveries and replays of the stream.
        sqlx::query!("DELETE FROM inbox WHERE processed_at < now() - interval '30 days'")
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        let (backlog, oldest_age) = outbox_backlog(&self.db).await?;
        self.metrics
            .outbox_backlog
            .record(backlog, &self.metrics.labels);
        self.metrics
            .outbox_oldest_age
            .record(oldest_age, &self.metrics.labels);
        Ok(())
    }
}

/// The number of unpublished events and the age of the oldest, in seconds.
pub async fn outbox_backlog(db: &Database) -> anyhow::Result<(i64, f64)> {
    let mut tx = db.begin_system("outbox backlog").await?;
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!", extract(epoch FROM now() - min(created_at))::float8 AS age
           FROM outbox WHERE published_at IS NULL"#
    )
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok((row.count, row.age.unwrap_or(0.0)))
}

/// How long the oldest unpublished event has waited; zero when none waits. Cheap enough
/// for a health check: one row from the index of unpublished rows, whose ids (UUID v7)
/// are in creation order.
pub async fn oldest_unpublished_age(db: &Database) -> anyhow::Result<Duration> {
    let mut tx = db.begin_system("outbox health").await?;
    let age: Option<f64> = sqlx::query_scalar!(
        "SELECT extract(epoch FROM now() - created_at)::float8 AS \"age!\" FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT 1"
    )
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(Duration::from_secs_f64(age.unwrap_or(0.0).max(0.0)))
}
