//! One trace follows an event from the producing transaction to the consumer's handler.
//! In a binary of its own because it installs a global tracing subscriber.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use lyceum_platform::db::Tx;
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::events::relay::{Relay, RelaySettings};
use lyceum_proto::events::v1 as pb;
use lyceum_testkit::{TestDatabase, eventually, test_bus};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Remembers the trace id its handler ran under.
#[derive(Default)]
struct TraceRecorder {
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl EventHandler for TraceRecorder {
    async fn handle(&self, _tx: &mut Tx, _event: &pb::EventEnvelope) -> anyhow::Result<()> {
        let context = tracing::Span::current().context();
        self.seen
            .lock()
            .unwrap()
            .push(context.span().span_context().trace_id().to_string());
        Ok(())
    }
}

#[tokio::test]
async fn the_consumer_span_continues_the_producer_trace() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let db = TestDatabase::create().await;
    db.migrate(&SINK).await;
    let sink_db = db.service_database(&SINK).await;
    let bus = test_bus().await;

    let producer = tracing::info_span!("producer");
    let producer_trace = producer
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    async {
        let mut tx = sink_db.begin_system("test").await.unwrap();
        let payload = pb::RoleRevoked::default();
        tx.publish(lyceum_platform::events::Event::new(
            "sink.thing.happened",
            None,
            &payload,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    .instrument(producer)
    .await;

    Relay::new(sink_db.clone(), bus.clone(), RelaySettings::default())
        .publish_once()
        .await
        .unwrap();
    let recorder = Arc::new(TraceRecorder::default());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let consumer = lyceum_platform::events::consumer::Consumer::new(
        sink_db.clone(),
        bus,
        ConsumerSpec::new("sink-trace", "sink", "sink.>"),
        recorder.clone(),
    );
    let task = tokio::spawn(consumer.run(stopping));
    eventually("the handler", || async {
        !recorder.seen.lock().unwrap().is_empty()
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_ne!(producer_trace, "00000000000000000000000000000000");
    assert_eq!(recorder.seen.lock().unwrap().clone(), vec![producer_trace]);
}
