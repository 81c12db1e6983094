//! Event path scenarios: how fast the relay publishes a backlog, and how long an event
//! takes from the producing commit to the projection applied by another service.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use lyceum_platform::db::Tx;
use lyceum_platform::events::consumer::{Consumer, ConsumerSpec, EventHandler};
use lyceum_platform::events::relay::{Relay, RelaySettings};
use lyceum_proto::events::v1 as pb;
use prost::Message;
use serde::Serialize;
use uuid::Uuid;

use crate::load::{Measurement, new_histogram};
use crate::scenarios::CreateOrganizationRpc;
use crate::stack::Stack;

#[derive(Debug, Serialize)]
pub struct RelayReport {
    pub events: i64,
    pub seconds: f64,
    pub events_per_sec: f64,
    pub batch_size: i64,
}

/// Publishes a backlog of `events` outbox rows and times the relay draining it.
pub async fn relay_throughput(stack: &Stack, events: i64) -> anyhow::Result<RelayReport> {
    let envelope = pb::EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: "lyceum.bench_projection.bench.happened".into(),
        source_service: "bench_projection".into(),
        occurred_at: Some(prost_types::Timestamp::default()),
        organization_id: Uuid::now_v7().to_string(),
        payload: Some(prost_types::Any::from_msg(&pb::RoleRevoked {
            grant_id: Uuid::now_v7().to_string(),
            user_id: Uuid::now_v7().to_string(),
            role: "instructor".into(),
            organization_id: Uuid::now_v7().to_string(),
        })?),
        ..Default::default()
    }
    .encode_to_vec();
    stack.bus.ensure_stream(stack.projection.service()).await?;
    let mut conn = stack.database.admin_connection().await;
    crate::data::fill_outbox(&mut conn, "bench_projection", events, &envelope).await?;
    let settings = RelaySettings::default();
    let relay = Relay::new(stack.projection.clone(), stack.bus.clone(), settings);
    let started = Instant::now();
    let mut published = 0;
    loop {
        match relay.publish_batch().await? {
            0 => break,
            n => published += n,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(RelayReport {
        events: published as i64,
        seconds,
        events_per_sec: published as f64 / seconds,
        batch_size: settings.batch_size,
    })
}

/// The projection of the lag scenario: records when each organization became visible.
struct LagRecorder {
    histogram: Mutex<Histogram<u64>>,
}

#[async_trait]
impl EventHandler for LagRecorder {
    async fn handle(&self, tx: &mut Tx, event: &pb::EventEnvelope) -> anyhow::Result<()> {
        let occurred = event
            .occurred_at
            .as_ref()
            .map(lyceum_platform::convert::from_timestamp);
        let Some(Ok(occurred)) = occurred else {
            anyhow::bail!("event without time")
        };
        sqlx::query("INSERT INTO applied_events (event_id, occurred_at) VALUES ($1::uuid, $2)")
            .bind(&event.event_id)
            .bind(occurred)
            .execute(tx.conn())
            .await?;
        let lag = (chrono::Utc::now() - occurred)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        let _ = self
            .histogram
            .lock()
            .expect("lag histogram")
            .record(lag.clamp(1, 60_000_000) as u64);
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct LagReport {
    pub target_rate_per_sec: f64,
    pub produced: u64,
    pub applied: u64,
    pub lag: Measurement,
}

/// Creates organizations at `rate` per second for `duration`; identity's relay publishes
/// them and a consumer of another schema applies each; reports commit-to-applied lag.
pub async fn event_lag(
    stack: Arc<Stack>,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<LagReport> {
    let recorder = Arc::new(LagRecorder {
        histogram: Mutex::new(new_histogram()),
    });
    let mut spec = ConsumerSpec::new(
        "bench_projection-organizations",
        "identity",
        "identity.organization.created",
    );
    spec.ack_wait = Duration::from_secs(10);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let consumer = Consumer::new(
        stack.projection.clone(),
        stack.bus.clone(),
        spec,
        recorder.clone(),
    );
    let consumer_task = tokio::spawn(consumer.run(stopping));

    let operation = Arc::new(CreateOrganizationRpc {
        stack: stack.clone(),
        run: Uuid::new_v4(),
    });
    let produced = crate::load::at_rate(operation, rate, duration, u64::MAX)
        .await
        .map_err(|error| error.context("writing during the lag scenario"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = loop {
        let applied = recorder.histogram.lock().expect("lag histogram").len();
        if applied >= produced || Instant::now() > deadline {
            break applied;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = stop.send(true);
    consumer_task.await??;
    let histogram = recorder.histogram.lock().expect("lag histogram").clone();
    Ok(LagReport {
        target_rate_per_sec: rate,
        produced,
        applied,
        lag: Measurement::from_histogram(&histogram, Default::default(), duration.as_secs_f64()),
    })
}
