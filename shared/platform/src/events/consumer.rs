//! Durable pull consumers that apply each event exactly once.
//!
//! A message is applied in a database transaction that first records its event id in the
//! inbox: a redelivered message finds its row and is skipped. Messages that arrive
//! together are applied in one transaction and acked only after the commit; when one of
//! them fails, the batch is applied again with each message in a savepoint. A failing
//! handler's message is nak'ed with a growing delay, so later messages keep flowing; after
//! `max_deliveries` it is written to the dead letters (table and subject) and terminated.
//!
//! The ack wait is short, so that the messages a crashed consumer held come back within
//! seconds; a batch that takes longer sends progress acks to keep its messages, and to keep
//! the messages that arrive while it is applied.
//!
//! A consumer whose pull breaks (its durable consumer or stream deleted, the pull erroring
//! again and again, the message stream ending) goes back to creating the durable consumer
//! and pulling, with backoff, and meanwhile reports itself in [`ConsumerHealth`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_trait::async_trait;
use futures::{FutureExt as _, StreamExt};
use prost::Message as _;
use tracing::Instrument;
use uuid::Uuid;

use super::dlq::REPLAY_FOR_HEADER;
use super::metrics::ConsumerMetrics;
use super::{EventBus, Shutdown, retry_with_backoff, stopped};
use crate::db::{Database, Tx};
use lyceum_proto::events::v1::EventEnvelope;

/// Applies one event inside the consumer's transaction (the inbox row is already written
/// in it). An error rolls everything back and the message is tried again later.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, tx: &mut Tx, event: &EventEnvelope) -> anyhow::Result<()>;
}

#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, `<service>-<purpose>`: also the inbox and dead-letter key.
    pub name: String,
    /// The producing context whose stream is read.
    pub source_service: String,
    /// Subject filter relative to the bus prefix, e.g. `identity.user.*` or `learning.>`.
    pub filter: String,
    /// Deliveries before a message goes to the dead letters.
    pub max_deliveries: i64,
    /// Delay before the n-th redelivery (the last one repeats).
    pub backoff: Vec<Duration>,
    /// How long a delivered message may stay unacknowledged before redelivery: how long
    /// the messages of a consumer that crashed mid-batch wait. Batches in progress extend
    /// it with progress acks.
    pub ack_wait: Duration,
    /// Most messages applied in one transaction.
    pub batch_size: usize,
}

impl ConsumerSpec {
    pub fn new(
        name: impl Into<String>,
        source_service: impl Into<String>,
        filter: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            source_service: source_service.into(),
            filter: filter.into(),
            max_deliveries: 5,
            backoff: vec![
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            ack_wait: Duration::from_secs(5),
            batch_size: 256,
        }
    }

    fn delay_after(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.saturating_sub(1)).unwrap_or(0);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// How long one pull request waits on the server for messages before the client renews it.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
/// The server's idle heartbeat on a waiting pull: the client reports two missed ones as an
/// error, and the pull is set up again; that is how a consumer notices that the server
/// forgot it without saying so.
const PULL_HEARTBEAT: Duration = Duration::from_secs(2);
/// Errors in a row after which the pull is given up and set up again, for errors that do
/// not say by themselves that it is broken.
const ERRORS_BEFORE_RESUBSCRIBING: u32 = 2;

/// Which consumers of a process can pull right now, for the health of the event path.
#[derive(Clone, Default)]
pub struct ConsumerHealth {
    pulling: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl ConsumerHealth {
    fn set(&self, consumer: &str, pulling: bool) {
        self.lock().insert(consumer.to_owned(), pulling);
    }

    fn forget(&self, consumer: &str) {
        self.lock().remove(consumer);
    }

    /// The consumers that are running but cannot pull.
    pub fn stalled(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, pulling)| !**pulling)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        // A flag map cannot be left half-written: keep using it after a panic.
        self.pulling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub struct Consumer {
    db: Database,
    bus: EventBus,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
    metrics: ConsumerMetrics,
    health: ConsumerHealth,
}

enum Outcome {
    Applied,
    Duplicate,
}

/// The messages of one pull, and what has been received from it but not yet applied.
struct Incoming {
    messages: pull::Stream,
    buffered: Vec<async_nats::jetstream::Message>,
    errors: u32,
    /// Why the pull has to be set up again, once it has to.
    lost: Option<String>,
    /// When the messages in hand are next told to the server as in progress. Kept across
    /// batches, so that a message waiting behind several batches is never left longer
    /// than half the ack wait.
    progress_due: tokio::time::Instant,
}

impl Incoming {
    fn new(messages: pull::Stream) -> Self {
        Self {
            messages,
            buffered: Vec::new(),
            errors: 0,
            lost: None,
            progress_due: tokio::time::Instant::now(),
        }
    }

    /// Takes one item of the message stream; returns whether the pull still works.
    fn accept(
        &mut self,
        item: Option<Result<async_nats::jetstream::Message, pull::MessagesError>>,
    ) -> bool {
        use pull::MessagesErrorKind as Kind;
        match item {
            Some(Ok(message)) => {
                self.buffered.push(message);
                self.errors = 0;
                true
            }
            Some(Err(error)) => {
                self.errors += 1;
                let fatal = matches!(
                    error.kind(),
                    Kind::ConsumerDeleted
                        | Kind::MissingHeartbeat
                        | Kind::NoResponders
                        | Kind::PushBasedConsumer
                        | Kind::RequestLimitExceeded
                );
                if fatal || self.errors >= ERRORS_BEFORE_RESUBSCRIBING {
                    self.lost = Some(error.to_string());
                } else {
                    tracing::warn!(error = %error, "receiving messages failed");
                }
                false
            }
            None => {
                self.lost = Some("the message stream ended".to_owned());
                false
            }
        }
    }

    /// Whatever else has already arrived, up to `limit` buffered in all.
    fn gather_ready(&mut self, limit: usize) {
        while self.lost.is_none() && self.buffered.len() < limit {
            match self.messages.next().now_or_never() {
                Some(item) => {
                    if !self.accept(item) {
                        break;
                    }
                }
                None => break,
            }
        }
    }
}

impl Consumer {
    pub fn new(
        db: Database,
        bus: EventBus,
        spec: ConsumerSpec,
        handler: Arc<dyn EventHandler>,
    ) -> Self {
        let metrics = ConsumerMetrics::new(&spec.name);
        Self {
            db,
            bus,
            spec,
            handler,
            metrics,
            health: ConsumerHealth::default(),
        }
    }

    /// Reports whether this consumer can pull into `health`, shared with the health checks.
    pub fn with_health(mut self, health: ConsumerHealth) -> Self {
        self.health = health;
        self
    }

    async fn pull_consumer(&self) -> anyhow::Result<async_nats::jetstream::consumer::PullConsumer> {
        let stream = self.bus.ensure_stream(&self.spec.source_service).await?;
        self.bus.ensure_dead_letter_stream().await?;
        let config = pull::Config {
            durable_name: Some(self.spec.name.clone()),
            filter_subject: self.bus.subject(&self.spec.filter),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.spec.ack_wait,
            // Deliveries are counted here, not by the server, so that the last one
            // lands in the dead letters instead of silently stopping.
            max_deliver: -1,
            max_ack_pending: 1024,
            ..Default::default()
        };
        // Create or update: a durable consumer made by an older release takes the current
        // settings (a shorter ack wait) instead of keeping its own.
        stream
            .create_consumer(config)
            .await
            .with_context(|| format!("creating consumer {}", self.spec.name))
    }

    /// Runs until shutdown, finishing the batch in hand first. While NATS is unreachable,
    /// or the durable consumer or its stream is gone, it keeps setting them up again in
    /// the background.
    pub async fn run(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let name = format!("consumer {}", self.spec.name);
        self.health.set(&self.spec.name, false);
        let mut subscriptions = 0u32;
        loop {
            let subscribed = retry_with_backoff(&name, &mut shutdown, || async {
                let consumer = self.pull_consumer().await?;
                // Pulls no more than a batch at a time, so that little waits in the
                // client; what does wait there is kept with progress acks.
                let messages = consumer
                    .stream()
                    .max_messages_per_batch(self.spec.batch_size.max(1))
                    .expires(PULL_EXPIRES)
                    .heartbeat(PULL_HEARTBEAT)
                    .messages()
                    .await?;
                anyhow::Ok((consumer, messages))
            })
            .await;
            let Some((consumer, messages)) = subscribed else {
                break; // Shutdown came first.
            };
            self.health.set(&self.spec.name, true);
            subscriptions += 1;
            if subscriptions == 1 {
                tracing::info!(consumer = %self.spec.name, "consumer started");
            } else {
                tracing::info!(consumer = %self.spec.name, "consumer pulling again");
            }
            let Some(lost) = self
                .pull(&consumer, Incoming::new(messages), &mut shutdown)
                .await
            else {
                break;
            };
            self.health.set(&self.spec.name, false);
            tracing::warn!(consumer = %self.spec.name, reason = %lost, "the pull broke; setting the consumer up again");
            // A pull that breaks right after being set up must not spin.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stopped(&mut shutdown) => break,
            }
        }
        self.health.forget(&self.spec.name);
        tracing::info!(consumer = %self.spec.name, "consumer stopped");
        Ok(())
    }

    /// Applies what one pull brings until shutdown (`None`) or until the pull breaks
    /// (`Some(why)`), after applying what had already arrived.
    async fn pull(
        &self,
        consumer: &async_nats::jetstream::consumer::PullConsumer,
        mut incoming: Incoming,
        shutdown: &mut Shutdown,
    ) -> Option<String> {
        let batch_size = self.spec.batch_size.max(1);
        let mut lag_checked = std::time::Instant::now();
        loop {
            if incoming.buffered.is_empty() {
                if let Some(lost) = incoming.lost.take() {
                    return Some(lost);
                }
                // After a lone error, a quiet pull (heartbeats are not seen here) is a
                // working one again.
                let quiet = PULL_HEARTBEAT * 3;
                let item = tokio::select! {
                    item = incoming.messages.next() => item,
                    _ = tokio::time::sleep(quiet), if incoming.errors > 0 => {
                        incoming.errors = 0;
                        self.health.set(&self.spec.name, true);
                        continue;
                    }
                    _ = stopped(shutdown) => return None,
                };
                let working = incoming.accept(item);
                self.health.set(&self.spec.name, working);
                continue;
            }
            // Whatever has arrived is applied together, in one transaction: one commit per
            // batch instead of one per message.
            incoming.gather_ready(batch_size);
            let take = incoming.buffered.len().min(batch_size);
            let batch: Vec<_> = incoming.buffered.drain(..take).collect();
            self.process_batch(batch, &mut incoming).await;
            if lag_checked.elapsed() > Duration::from_secs(10) {
                if let Ok(info) = consumer.get_info().await {
                    self.metrics
                        .lag
                        .record(info.num_pending, &self.metrics.labels);
                }
                lag_checked = std::time::Instant::now();
            }
            if *shutdown.borrow() {
                return None;
            }
        }
    }

    async fn process_batch(
        &self,
        messages: Vec<async_nats::jetstream::Message>,
        incoming: &mut Incoming,
    ) {
        let mut decoded = Vec::with_capacity(messages.len());
        for message in messages {
            let replay_target = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(REPLAY_FOR_HEADER));
            if replay_target.is_some_and(|target| target.as_str() != self.spec.name) {
                // A replay meant for another consumer of this subject: not ours to apply.
                if let Err(error) = message.ack().await {
                    tracing::warn!(error = %error, "ack of another consumer's replay failed");
                }
                continue;
            }
            let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
            if delivered > 1 {
                self.metrics.redeliveries.add(1, &self.metrics.labels);
            }
            match EventEnvelope::decode(message.payload.as_ref()) {
                Ok(envelope) => decoded.push((message, envelope, delivered)),
                // Undecodable bytes will never decode: no point retrying.
                Err(error) => {
                    let reason = format!("undecodable envelope: {error}");
                    self.dead_letter(&message, "", &reason, delivered).await;
                }
            }
        }
        if decoded.is_empty() {
            return;
        }
        let outcomes = match self.apply_batch_keeping_messages(&decoded, incoming).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // The transaction itself failed (database unavailable, commit refused):
                // nothing was applied, everything comes back later.
                tracing::warn!(consumer = %self.spec.name, error = format!("{error:#}"), "applying a batch failed");
                for (message, _, delivered) in &decoded {
                    let delay = self.spec.delay_after(*delivered);
                    let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                }
                return;
            }
        };
        for ((message, envelope, delivered), outcome) in decoded.iter().zip(outcomes) {
            match outcome {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Applied => self.metrics.handled.add(1, &self.metrics.labels),
                        Outcome::Duplicate => self.metrics.duplicates.add(1, &self.metrics.labels),
                    }
                    // An ack lost here means one redelivery, which the inbox absorbs.
                    if let Err(error) = message.ack().await {
                        tracing::warn!(error = %error, "ack failed; the message will be redelivered and skipped");
                    }
                }
                Err(reason) => {
                    self.metrics.failures.add(1, &self.metrics.labels);
                    if *delivered >= self.spec.max_deliveries {
                        tracing::error!(event_id = %envelope.event_id, error = %reason, "handler failed for the last time; dead-lettering");
                        self.dead_letter(message, &envelope.event_id, &reason, *delivered)
                            .await;
                    } else {
                        let delay = self.spec.delay_after(*delivered);
                        tracing::warn!(event_id = %envelope.event_id, error = %reason, ?delay, "handler failed; will retry");
                        if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
                            tracing::warn!(error = %error, "nak failed; the ack wait will redeliver");
                        }
                    }
                }
            }
        }
    }

    /// Applies a batch while telling the server, every half ack wait, that its messages
    /// are still in hand, so that a long batch is not redelivered under it. Messages that
    /// arrive meanwhile are taken out of the client and kept the same way: left waiting,
    /// they would be redelivered and use up their deliveries without ever being tried.
    async fn apply_batch_keeping_messages(
        &self,
        batch: &[(async_nats::jetstream::Message, EventEnvelope, i64)],
        incoming: &mut Incoming,
    ) -> anyhow::Result<Vec<Result<Outcome, String>>> {
        let period = (self.spec.ack_wait / 2).max(Duration::from_millis(100));
        let applying = self.apply_batch(batch);
        tokio::pin!(applying);
        loop {
            tokio::select! {
                outcomes = &mut applying => return outcomes,
                item = incoming.messages.next(), if incoming.lost.is_none() => {
                    let working = incoming.accept(item);
                    self.health.set(&self.spec.name, working);
                }
                _ = tokio::time::sleep_until(incoming.progress_due) => {
                    let in_hand = batch.iter().map(|(message, _, _)| message);
                    for message in in_hand.chain(&incoming.buffered) {
                        if let Err(error) = message.ack_with(AckKind::Progress).await {
                            tracing::debug!(error = %error, "progress ack failed");
                        }
                    }
                    incoming.progress_due = tokio::time::Instant::now() + period;
                }
            }
        }
    }

    /// Applies a batch in one transaction and returns each event's outcome once committed.
    /// The usual batch, whose handlers all succeed, takes one statement per batch for the
    /// inbox and no savepoints; a batch in which a handler fails is rolled back and applied
    /// again with each event inside a savepoint, so that a failing handler undoes only its
    /// own event.
    async fn apply_batch(
        &self,
        batch: &[(async_nats::jetstream::Message, EventEnvelope, i64)],
    ) -> anyhow::Result<Vec<Result<Outcome, String>>> {
        if let Some(outcomes) = self.apply_together(batch).await? {
            return Ok(outcomes);
        }
        self.apply_one_by_one(batch).await
    }

    /// The batch without savepoints; `None` when a handler failed (nothing is kept).
    async fn apply_together(
        &self,
        batch: &[(async_nats::jetstream::Message, EventEnvelope, i64)],
    ) -> anyhow::Result<Option<Vec<Result<Outcome, String>>>> {
        let Ok(event_ids) = batch
            .iter()
            .map(|(_, envelope, _)| Uuid::try_parse(&envelope.event_id))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Ok(None); // The one-by-one path reports the malformed id as that event's.
        };
        let mut tx = self.db.begin_system("consumer batch").await?;
        // The inbox rows of the whole batch in one statement: the ids it returns are the
        // events seen for the first time (once each, even if the batch holds one twice).
        let mut first_time: std::collections::HashSet<Uuid> = sqlx::query_scalar!(
            "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])
             ON CONFLICT DO NOTHING RETURNING event_id",
            &self.spec.name,
            &event_ids
        )
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .collect();
        let mut outcomes = Vec::with_capacity(batch.len());
        for ((_, envelope, delivered), event_id) in batch.iter().zip(&event_ids) {
            if !first_time.remove(event_id) {
                outcomes.push(Ok(Outcome::Duplicate));
                continue;
            }
            let span = self.event_span(envelope, *delivered);
            if let Err(error) = self
                .handler
                .handle(&mut tx, envelope)
                .instrument(span)
                .await
            {
                tracing::debug!(event_id = %envelope.event_id, error = format!("{error:#}"), "a handler failed; applying the batch one event at a time");
                tx.rollback().await?;
                return Ok(None);
            }
            outcomes.push(Ok(Outcome::Applied));
        }
        crate::failpoint::hit("consumer-before-commit");
        tx.commit().await?;
        Ok(Some(outcomes))
    }

    /// The batch with each event inside a savepoint, so that a failing handler undoes only
    /// its own event.
    async fn apply_one_by_one(
        &self,
        batch: &[(async_nats::jetstream::Message, EventEnvelope, i64)],
    ) -> anyhow::Result<Vec<Result<Outcome, String>>> {
        let mut tx = self.db.begin_system("consumer batch").await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (_, envelope, delivered) in batch {
            let span = self.event_span(envelope, *delivered);
            sqlx::query!("SAVEPOINT lyceum_event")
                .execute(tx.conn())
                .await?;
            match self.apply(&mut tx, envelope).instrument(span).await {
                Ok(outcome) => {
                    sqlx::query!("RELEASE SAVEPOINT lyceum_event")
                        .execute(tx.conn())
                        .await?;
                    outcomes.push(Ok(outcome));
                }
                Err(error) => {
                    // If even this fails, the connection is gone and the batch with it.
                    sqlx::query!("ROLLBACK TO SAVEPOINT lyceum_event")
                        .execute(tx.conn())
                        .await?;
                    outcomes.push(Err(format!("{error:#}")));
                }
            }
        }
        crate::failpoint::hit("consumer-before-commit");
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The span of one event's application, continuing the trace of the write that
    /// published it.
    fn event_span(&self, envelope: &EventEnvelope, delivered: i64) -> tracing::Span {
        let span = tracing::info_span!(
            "event.consume",
            otel.name = %format!("consume {}", envelope.event_type),
            otel.kind = "consumer",
            consumer = %self.spec.name,
            event_id = %envelope.event_id,
            event_type = %envelope.event_type,
            delivered,
        );
        if let Some(context) = &envelope.trace_context {
            crate::telemetry::continue_trace(&span, context);
        }
        span
    }

    async fn apply(&self, tx: &mut Tx, envelope: &EventEnvelope) -> anyhow::Result<Outcome> {
        let event_id = Uuid::try_parse(&envelope.event_id)
            .with_context(|| format!("event id '{}' is not a UUID", envelope.event_id))?;
        let first_time = sqlx::query!(
            "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &self.spec.name,
            event_id
        )
        .execute(tx.conn())
        .await?
        .rows_affected()
            == 1;
        if !first_time {
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(tx, envelope).await?;
        Ok(Outcome::Applied)
    }

    /// Keeps the message in the dead-letter table and subject, then terminates it.
    async fn dead_letter(
        &self,
        message: &async_nats::jetstream::Message,
        event_id: &str,
        error: &str,
        delivered: i64,
    ) {
        self.metrics.dead_letters.add(1, &self.metrics.labels);
        let relative_subject = message
            .subject
            .as_str()
            .strip_prefix(&format!("{}.", self.bus.prefix()))
            .unwrap_or(message.subject.as_str())
            .to_owned();
        let stored = async {
            let mut tx = self.db.begin_system("dead letter").await?;
            sqlx::query!(
                "INSERT INTO dead_letters (id, consumer, subject, event_id, payload, error, deliveries)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                Uuid::now_v7(),
                &self.spec.name,
                &relative_subject,
                event_id,
                message.payload.as_ref(),
                error,
                delivered
            )
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(store_error) = stored {
            // Without the row the message must not be dropped: let it come back.
            tracing::error!(
                error = format!("{store_error:#}"),
                "storing a dead letter failed"
            );
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
            return;
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Lyceum-Consumer", self.spec.name.as_str());
        headers.insert("Lyceum-Original-Subject", message.subject.as_str());
        if let Err(error) = self
            .bus
            .jetstream()
            .publish_with_headers(
                self.bus.dead_letter_subject(&self.spec.name),
                headers,
                message.payload.clone(),
            )
            .await
        {
            tracing::warn!(error = %error, "publishing to the dead-letter subject failed; the table has it");
        }
        if let Err(error) = message.ack_with(AckKind::Term).await {
            tracing::warn!(error = %error, "terminating a dead-lettered message failed");
        }
    }
}
