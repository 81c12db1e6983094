//! Metrics of the event path, exported through the global meter provider (OTLP when
//! configured): outbox backlog and oldest age, publish failures, consumer lag,
//! redeliveries and dead letters.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge};

#[derive(Clone)]
pub struct EventMetrics {
    pub labels: Vec<KeyValue>,
    pub published: Counter<u64>,
    pub publish_failures: Counter<u64>,
    pub outbox_backlog: Gauge<i64>,
    pub outbox_oldest_age: Gauge<f64>,
}

impl EventMetrics {
    pub fn new(service: &'static str) -> Self {
        let meter = opentelemetry::global::meter("lyceum");
        Self {
            labels: vec![KeyValue::new("service", service)],
            published: meter
                .u64_counter("lyceum.outbox.published")
                .with_description("Events published to JetStream and acknowledged")
                .build(),
            publish_failures: meter
                .u64_counter("lyceum.outbox.publish_failures")
                .with_description("Outbox batches, or parts of them, that failed to publish")
                .build(),
            outbox_backlog: meter
                .i64_gauge("lyceum.outbox.backlog")
                .with_description("Unpublished events in the outbox")
                .build(),
            outbox_oldest_age: meter
                .f64_gauge("lyceum.outbox.oldest_age")
                .with_unit("s")
                .with_description("Age of the oldest unpublished event")
                .build(),
        }
    }
}

#[derive(Clone)]
pub struct ConsumerMetrics {
    pub labels: Vec<KeyValue>,
    pub handled: Counter<u64>,
    pub duplicates: Counter<u64>,
    pub redeliveries: Counter<u64>,
    pub failures: Counter<u64>,
    pub dead_letters: Counter<u64>,
    pub lag: Gauge<u64>,
}

impl ConsumerMetrics {
    pub fn new(consumer: &str) -> Self {
        let meter = opentelemetry::global::meter("lyceum");
        Self {
            labels: vec![KeyValue::new("consumer", consumer.to_owned())],
            handled: meter
                .u64_counter("lyceum.consumer.handled")
                .with_description("Events applied")
                .build(),
            duplicates: meter
                .u64_counter("lyceum.consumer.duplicates")
                .with_description("Deliveries skipped because the inbox had the event")
                .build(),
            redeliveries: meter
                .u64_counter("lyceum.consumer.redeliveries")
                .with_description("Deliveries after the first of a message")
                .build(),
            failures: meter
                .u64_counter("lyceum.consumer.failures")
                .with_description("Handler failures (nak'ed for another try)")
                .build(),
            dead_letters: meter
                .u64_counter("lyceum.consumer.dead_letters")
                .with_description("Messages given up on after the maximum deliveries")
                .build(),
            lag: meter
                .u64_gauge("lyceum.consumer.lag")
                .with_description("Messages in the stream not yet delivered to the consumer")
                .build(),
        }
    }
}
