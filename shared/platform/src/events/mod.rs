//! The event backbone: a transactional outbox per service, a relay to JetStream,
//! idempotent consumers with an inbox, dead letters, and the bus naming rules.
//!
//! - Producers call [`crate::db::Tx::publish`]; the event is a row of the service's
//!   outbox, committed with the state change or not at all.
//! - [`relay`] claims unpublished rows with `FOR UPDATE SKIP LOCKED`, publishes them with
//!   `Nats-Msg-Id` = event id, awaits the acks and marks them sent.
//! - [`consumer`] applies each message in a transaction that records the event id in the
//!   inbox, acks after commit, naks with backoff, and dead-letters after N deliveries.

pub mod consumer;
pub mod dlq;
pub mod metrics;
pub mod relay;

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use prost::Message as _;
use uuid::Uuid;

use crate::convert::timestamp;
use crate::db::TenantContext;
use lyceum_proto::events::v1 as pb;

/// An event a service is about to publish.
#[derive(Debug, Clone)]
pub struct Event {
    /// `<context>.<aggregate>.<verb>`, e.g. `identity.user.created`.
    pub relative_subject: String,
    pub organization_id: Option<Uuid>,
    pub payload: prost_types::Any,
}

impl Event {
    /// An event of the producing service's context; the subject is checked for shape.
    pub fn new<M: prost::Name>(
        relative_subject: &str,
        organization_id: Option<Uuid>,
        payload: &M,
    ) -> Self {
        debug_assert_eq!(
            relative_subject.split('.').count(),
            3,
            "context.aggregate.verb"
        );
        Self {
            relative_subject: relative_subject.to_owned(),
            organization_id,
            payload: prost_types::Any::from_msg(payload).expect("encoding into a Vec cannot fail"),
        }
    }

    /// The outbox row: event id, relative subject and the encoded envelope. For a write
    /// that inserts its outbox row itself, in one statement with the state change (see
    /// learning's `enroll`); everything else publishes through [`crate::db::Tx::publish`].
    pub fn into_outbox_row(self, service: &str, context: &TenantContext) -> OutboxRow {
        let id = Uuid::now_v7();
        let actor = if context
            .roles
            .iter()
            .any(|r| r == crate::auth::roles::SERVICE)
        {
            pb::Actor {
                id: context.user_id.map(|u| u.to_string()).unwrap_or_default(),
                kind: pb::ActorKind::ServiceAccount as i32,
            }
        } else if let Some(user) = context.user_id {
            pb::Actor {
                id: user.to_string(),
                kind: pb::ActorKind::User as i32,
            }
        } else {
            pb::Actor {
                id: String::new(),
                kind: pb::ActorKind::System as i32,
            }
        };
        let envelope = pb::EventEnvelope {
            event_id: id.to_string(),
            event_type: format!("lyceum.{}", self.relative_subject),
            source_service: service.to_owned(),
            occurred_at: Some(timestamp(chrono::Utc::now())),
            organization_id: self
                .organization_id
                .map(|o| o.to_string())
                .unwrap_or_default(),
            actor: Some(actor),
            trace_context: Some(crate::telemetry::current_trace_context()),
            payload: Some(self.payload),
        };
        OutboxRow {
            id,
            subject: self.relative_subject,
            envelope: envelope.encode_to_vec(),
        }
    }
}

/// An event encoded for the outbox table.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: Uuid,
    /// Relative to the bus prefix: `learning.enrollment.activated`.
    pub subject: String,
    /// The encoded `lyceum.events.v1.EventEnvelope`.
    pub envelope: Vec<u8>,
}

/// The JetStream connection and the naming of streams and subjects. The prefix is
/// `lyceum` in production; tests use one of their own so they can share a server.
#[derive(Clone)]
pub struct EventBus {
    jetstream: jetstream::Context,
    prefix: String,
    settings: StreamSettings,
}

/// Retention of the streams.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a republished duplicate.
    pub duplicate_window: Duration,
    /// How long events stay replayable.
    pub max_age: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl EventBus {
    pub fn new(client: async_nats::Client, prefix: impl Into<String>) -> Self {
        Self {
            jetstream: jetstream::new(client),
            prefix: prefix.into(),
            settings: StreamSettings::default(),
        }
    }

    pub fn with_settings(mut self, settings: StreamSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The NATS subject of a relative one: `identity.user.created` → `lyceum.identity.user.created`.
    pub fn subject(&self, relative: &str) -> String {
        format!("{}.{relative}", self.prefix)
    }

    /// The stream holding a producing context's events: `LYCEUM_IDENTITY`.
    pub fn stream_name(&self, service: &str) -> String {
        format!("{}_{}", self.prefix, service)
            .to_uppercase()
            .replace(['.', '-'], "_")
    }

    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!("{}.dlq.{consumer}", self.prefix)
    }

    /// Creates or updates the stream of a producing context (file storage, duplicate
    /// window, age limit). Safe to run from every replica at every start.
    pub async fn ensure_stream(&self, service: &str) -> anyhow::Result<jetstream::stream::Stream> {
        self.ensure_stream_named(
            self.stream_name(service),
            vec![format!("{}.{service}.>", self.prefix)],
        )
        .await
    }

    /// The stream that keeps dead letters for inspection.
    pub async fn ensure_dead_letter_stream(&self) -> anyhow::Result<jetstream::stream::Stream> {
        self.ensure_stream_named(
            self.stream_name("dlq"),
            vec![format!("{}.dlq.>", self.prefix)],
        )
        .await
    }

    async fn ensure_stream_named(
        &self,
        name: String,
        subjects: Vec<String>,
    ) -> anyhow::Result<jetstream::stream::Stream> {
        let config = jetstream::stream::Config {
            name: name.clone(),
            subjects,
            storage: jetstream::stream::StorageType::File,
            retention: jetstream::stream::RetentionPolicy::Limits,
            duplicate_window: self.settings.duplicate_window,
            max_age: self.settings.max_age,
            ..Default::default()
        };
        match self.jetstream.get_stream(&name).await {
            Ok(_) => {
                self.jetstream
                    .update_stream(config)
                    .await
                    .with_context(|| format!("updating stream {name}"))?;
            }
            Err(_) => {
                // Another replica may create it between the lookup and here.
                if let Err(error) = self.jetstream.create_stream(config.clone()).await {
                    self.jetstream
                        .update_stream(config)
                        .await
                        .with_context(|| format!("creating stream {name}: {error}"))?;
                }
            }
        }
        self.jetstream
            .get_stream(&name)
            .await
            .with_context(|| format!("opening stream {name}"))
    }
}

/// Decodes an envelope's payload as the expected message type.
pub fn unpack<M: prost::Name + Default>(envelope: &pb::EventEnvelope) -> anyhow::Result<M> {
    let any = envelope
        .payload
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("event {} has no payload", envelope.event_id))?;
    any.to_msg::<M>().with_context(|| {
        format!(
            "payload of {} is not a {}",
            envelope.event_id,
            M::full_name()
        )
    })
}

/// A signal that background loops watch to stop after their current unit of work.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// Resolves when shutdown has been requested.
pub async fn stopped(shutdown: &mut Shutdown) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            // The owner of the signal is gone: treat that as a request to stop.
            return;
        }
    }
}

/// Runs `attempt` until it succeeds, waiting longer after each failure (up to 5 s), so
/// that relays and consumers can start before NATS is reachable. `None` when shutdown was
/// requested first.
pub(crate) async fn retry_with_backoff<T, F, Fut>(
    what: &str,
    shutdown: &mut Shutdown,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut delay = Duration::from_millis(250);
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            result = attempt() => result,
            _ = stopped(shutdown) => return None,
        };
        match result {
            Ok(value) => return Some(value),
            // Once per outage is enough at warning level; the health name tells the rest.
            Err(error) if failures == 0 => tracing::warn!(
                task = what,
                error = format!("{error:#}"),
                "the event bus is not ready; retrying in the background"
            ),
            Err(error) => tracing::debug!(
                task = what,
                error = format!("{error:#}"),
                retry_in = ?delay,
                "the event bus is still not ready"
            ),
        }
        failures = failures.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(shutdown) => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
