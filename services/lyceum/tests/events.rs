//! The event backbone in one process against the real PostgreSQL and NATS: duplicate
//! deliveries, poison messages and dead letters, competing relays, identity's events.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use lyceum_platform::db::{Database, connect_service_pool, service_connect_options};
use lyceum_platform::events::consumer::{Consumer, ConsumerHealth, ConsumerSpec};
use lyceum_platform::events::relay::{Relay, RelaySettings};
use lyceum_platform::events::{EventBus, dlq};
use lyceum_proto::events::v1 as pb;
use lyceum_testkit::{TestDatabase, eventually, eventually_within, test_bus};
use prost::Message;
use uuid::Uuid;

async fn sink() -> (TestDatabase, Database, EventBus) {
    let db = TestDatabase::create().await;
    db.migrate(&SINK).await;
    let sink_db = db.service_database(&SINK).await;
    let bus = test_bus().await;
    bus.ensure_stream("sink").await.unwrap();
    (db, sink_db, bus)
}

fn envelope(id: Uuid) -> pb::EventEnvelope {
    pb::EventEnvelope {
        event_id: id.to_string(),
        event_type: "lyceum.sink.thing.happened".into(),
        source_service: "sink".into(),
        payload: Some(
            prost_types::Any::from_msg(&pb::RoleRevoked {
                grant_id: id.to_string(),
                ..Default::default()
            })
            .unwrap(),
        ),
        ..Default::default()
    }
}

/// Publishes an envelope under an explicit message id (bypassing JetStream's
/// de-duplication, as a redelivery would).
async fn publish_raw(bus: &EventBus, envelope: &pb::EventEnvelope, message_id: &str) {
    let message = async_nats::jetstream::message::PublishMessage::build()
        .message_id(message_id)
        .payload(envelope.encode_to_vec().into());
    bus.jetstream()
        .send_publish(bus.subject("sink.thing.happened"), message)
        .await
        .unwrap()
        .await
        .unwrap();
}

fn fast_spec(name: &str) -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(name, "sink", "sink.>");
    spec.max_deliveries = 3;
    spec.backoff = vec![Duration::from_millis(50)];
    spec
}

#[tokio::test]
async fn the_same_message_delivered_twice_is_applied_once() {
    let (_db, sink_db, bus) = sink().await;
    let event = envelope(Uuid::now_v7());
    publish_raw(&bus, &event, "first").await;
    publish_raw(&bus, &event, "second").await;
    let marker = envelope(Uuid::now_v7());
    publish_raw(&bus, &marker, "marker").await;

    let (_stop, _task) = spawn_sink(
        sink_db.clone(),
        bus,
        fast_spec("sink-twice"),
        Arc::default(),
    );
    // Messages are applied in order: once the marker is in, both copies were seen.
    eventually("the marker", || async {
        sink_counts(&sink_db, None).await.1 == 2
    })
    .await;
    assert_eq!(sink_counts(&sink_db, None).await, (2, 2));
}

#[tokio::test]
async fn a_failing_handler_dead_letters_after_n_tries_while_later_messages_flow_and_replay_applies_it()
 {
    let (_db, sink_db, bus) = sink().await;
    let poison = envelope(Uuid::now_v7());
    let handler = Arc::new(SinkHandler::default());
    handler
        .failing
        .lock()
        .unwrap()
        .insert(poison.event_id.clone());
    publish_raw(&bus, &poison, &poison.event_id).await;
    for _ in 0..5 {
        let good = envelope(Uuid::now_v7());
        publish_raw(&bus, &good, &good.event_id).await;
    }

    let (_stop, _task) = spawn_sink(
        sink_db.clone(),
        bus.clone(),
        fast_spec("sink-poison"),
        handler.clone(),
    );
    eventually("the later messages", || async {
        sink_counts(&sink_db, None).await.1 == 5
    })
    .await;
    eventually("the dead letter", || async {
        !dlq::list(&sink_db, false).await.unwrap().is_empty()
    })
    .await;

    let letters = dlq::list(&sink_db, false).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.event_id, poison.event_id);
    assert_eq!(letter.consumer, "sink-poison");
    assert_eq!(letter.deliveries, 3);
    assert!(letter.error.contains("refuses"), "{}", letter.error);
    let mut dlq_stream = bus
        .jetstream()
        .get_stream(bus.stream_name("dlq"))
        .await
        .unwrap();
    assert_eq!(dlq_stream.info().await.unwrap().state.messages, 1);

    // The cause is fixed; the operator replays.
    handler.failing.lock().unwrap().clear();
    assert!(dlq::replay(&sink_db, &bus, letter.id).await.unwrap());
    eventually("the replayed message", || async {
        sink_counts(&sink_db, None).await.1 == 6
    })
    .await;
    assert_eq!(sink_counts(&sink_db, None).await, (6, 6));
    assert!(dlq::list(&sink_db, false).await.unwrap().is_empty());
    assert!(!dlq::replay(&sink_db, &bus, Uuid::now_v7()).await.unwrap());
}

#[tokio::test]
async fn a_replayed_dead_letter_reaches_only_the_consumer_that_failed_it() {
    let (_db, sink_db, bus) = sink().await;
    let poison = envelope(Uuid::now_v7());
    let failing = Arc::new(SinkHandler::default());
    failing
        .failing
        .lock()
        .unwrap()
        .insert(poison.event_id.clone());
    publish_raw(&bus, &poison, &poison.event_id).await;
    let (_stop_failing, _failing_task) = spawn_sink(
        sink_db.clone(),
        bus.clone(),
        fast_spec("sink-failing"),
        failing.clone(),
    );
    let (_stop_bystander, _bystander_task) = spawn_sink(
        sink_db.clone(),
        bus.clone(),
        fast_spec("sink-bystander"),
        Arc::default(),
    );
    eventually("the dead letter", || async {
        !dlq::list(&sink_db, false).await.unwrap().is_empty()
    })
    .await;
    eventually("the bystander's copy", || async {
        sink_counts(&sink_db, None).await.0 == 1
    })
    .await;

    // Long after, the bystander's inbox has forgotten the event: only the replay's
    // address keeps the bystander from applying it a second time.
    let mut tx = sink_db.begin_system("test").await.unwrap();
    sqlx::query("DELETE FROM inbox WHERE consumer = 'sink-bystander'")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    failing.failing.lock().unwrap().clear();
    let letter = dlq::list(&sink_db, false).await.unwrap().remove(0);
    assert_eq!(letter.consumer, "sink-failing");
    assert!(dlq::replay(&sink_db, &bus, letter.id).await.unwrap());
    // Both consumers read in stream order: once each has the marker, each has seen the
    // replay before it.
    let mut marker = envelope(Uuid::now_v7());
    marker.event_type = "lyceum.sink.marker".into();
    publish_raw(&bus, &marker, &marker.event_id).await;
    eventually("the marker at both consumers", || async {
        sink_counts(&sink_db, Some("lyceum.sink.marker")).await.0 == 2
    })
    .await;
    assert_eq!(
        sink_counts(&sink_db, Some(&poison.event_type)).await,
        (2, 1),
        "the bystander's first copy and the failing consumer's replay, nothing more"
    );
}

/// Publishes batches until writing is over and the outbox stayed empty for a while;
/// returns how many events this relay published.
async fn drain(relay: &Relay, writing_done: &AtomicBool) -> usize {
    let mut published = 0;
    let mut idle_rounds = 0;
    while !(writing_done.load(Ordering::SeqCst) && idle_rounds >= 5) {
        match relay.publish_batch().await.unwrap() {
            0 => {
                idle_rounds += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            n => {
                idle_rounds = 0;
                published += n;
            }
        }
    }
    published
}

async fn write_events(db: &Database, count: usize) {
    for chunk in 0..count / 100 {
        let mut tx = db.begin_system("test").await.unwrap();
        for i in 0..100 {
            let payload = pb::RoleRevoked {
                grant_id: format!("{chunk}-{i}"),
                ..Default::default()
            };
            tx.publish(lyceum_platform::events::Event::new(
                "sink.thing.happened",
                None,
                &payload,
            ))
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn two_relays_at_once_publish_every_event_exactly_once() {
    let (_db, sink_db, bus) = sink().await;
    write_events(&sink_db, 1500).await;
    let settings = RelaySettings {
        batch_size: 64,
        ..RelaySettings::default()
    };
    let relays = [
        Relay::new(sink_db.clone(), bus.clone(), settings),
        Relay::new(sink_db.clone(), bus.clone(), settings),
    ];
    // Both relays drain the outbox while more events are committed.
    let writing_done = AtomicBool::new(false);
    let write = async {
        write_events(&sink_db, 1500).await;
        writing_done.store(true, Ordering::SeqCst);
    };
    let (a, b, ()) = tokio::join!(
        drain(&relays[0], &writing_done),
        drain(&relays[1], &writing_done),
        write
    );
    assert_eq!(a + b, 3000, "published {a} + {b}");
    assert!(a > 0 && b > 0, "both relays took part: {a} + {b}");

    let mut stream = bus
        .jetstream()
        .get_stream(bus.stream_name("sink"))
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3000);
    let (_stop, _task) = spawn_sink(
        sink_db.clone(),
        bus,
        fast_spec("sink-relays"),
        Arc::default(),
    );
    eventually_within("all 3000 events", Duration::from_secs(60), || async {
        sink_counts(&sink_db, None).await.1 == 3000
    })
    .await;
    assert_eq!(sink_counts(&sink_db, None).await, (3000, 3000));
}

#[tokio::test]
async fn a_batch_that_outlasts_the_ack_wait_keeps_its_messages_with_progress_acks() {
    let (_db, sink_db, bus) = sink().await;
    let event = envelope(Uuid::now_v7());
    publish_raw(&bus, &event, &event.event_id).await;

    let mut spec = fast_spec("sink-slow");
    spec.ack_wait = Duration::from_secs(1);
    let handler = Arc::new(SinkHandler::default());
    *handler.pause.lock().unwrap() = Duration::from_secs(3);
    let (_stop, _task) = spawn_sink(sink_db.clone(), bus.clone(), spec, handler);
    eventually("the slow event", || async {
        sink_counts(&sink_db, None).await == (1, 1)
    })
    .await;

    // Without progress acks the server would have sent it again after one second.
    let info = bus
        .jetstream()
        .get_stream(bus.stream_name("sink"))
        .await
        .unwrap()
        .consumer_info("sink-slow")
        .await
        .unwrap()
        .clone();
    assert_eq!(info.delivered.consumer_sequence, 1, "{info:?}");
}

#[tokio::test]
async fn messages_waiting_behind_a_slow_batch_are_kept_with_progress_acks() {
    let (_db, sink_db, bus) = sink().await;
    for _ in 0..3 {
        let event = envelope(Uuid::now_v7());
        publish_raw(&bus, &event, &event.event_id).await;
    }
    // One message per batch, each longer than the ack wait: the second and third wait
    // behind the first, the third for two ack waits.
    let mut spec = fast_spec("sink-queued");
    spec.ack_wait = Duration::from_secs(1);
    spec.batch_size = 1;
    let handler = Arc::new(SinkHandler::default());
    *handler.pause.lock().unwrap() = Duration::from_millis(1500);
    let (_stop, _task) = spawn_sink(sink_db.clone(), bus.clone(), spec, handler);
    eventually("the three slow events", || async {
        sink_counts(&sink_db, None).await == (3, 3)
    })
    .await;
    let info = bus
        .jetstream()
        .get_stream(bus.stream_name("sink"))
        .await
        .unwrap()
        .consumer_info("sink-queued")
        .await
        .unwrap()
        .clone();
    // Each message was delivered once: none was redelivered while it waited.
    assert_eq!(info.delivered.consumer_sequence, 3, "{info:?}");
}

#[tokio::test]
async fn a_consumer_whose_durable_consumer_is_deleted_pulls_again_and_applies_new_events() {
    let (_db, sink_db, bus) = sink().await;
    let first = envelope(Uuid::now_v7());
    publish_raw(&bus, &first, &first.event_id).await;
    let (_stop, _task) = spawn_sink(
        sink_db.clone(),
        bus.clone(),
        fast_spec("sink-lost"),
        Arc::default(),
    );
    eventually("the first event", || async {
        sink_counts(&sink_db, None).await == (1, 1)
    })
    .await;

    let stream = bus
        .jetstream()
        .get_stream(bus.stream_name("sink"))
        .await
        .unwrap();
    stream.delete_consumer("sink-lost").await.unwrap();
    let second = envelope(Uuid::now_v7());
    publish_raw(&bus, &second, &second.event_id).await;
    // The consumer is set up again from the start of the stream: the first event comes
    // back and is skipped, the second is applied.
    eventually_within(
        "the event published after the deletion",
        Duration::from_secs(10),
        || async { sink_counts(&sink_db, None).await == (2, 2) },
    )
    .await;
}

#[tokio::test]
async fn a_consumer_that_cannot_pull_reports_it_until_its_stream_is_back() {
    let (_db, sink_db, bus) = sink().await;
    let health = ConsumerHealth::default();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let consumer = Consumer::new(
        sink_db.clone(),
        bus.clone(),
        fast_spec("sink-stalled"),
        Arc::new(SinkHandler::default()),
    )
    .with_health(health.clone());
    let task = tokio::spawn(consumer.run(stopping));
    let first = envelope(Uuid::now_v7());
    publish_raw(&bus, &first, &first.event_id).await;
    eventually("the first event", || async {
        sink_counts(&sink_db, None).await == (1, 1)
    })
    .await;
    assert!(health.stalled().is_empty());

    // Another stream takes the dead letters' subjects, then the consumer's stream is lost:
    // its stream comes back, but setting the consumer up needs the dead-letter stream too.
    let jetstream = bus.jetstream();
    jetstream
        .delete_stream(bus.stream_name("dlq"))
        .await
        .unwrap();
    let squatter = bus.stream_name("squatter");
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: squatter.clone(),
            subjects: vec![bus.subject("dlq.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    jetstream
        .delete_stream(bus.stream_name("sink"))
        .await
        .unwrap();
    eventually_within(
        "the consumer reported stalled",
        Duration::from_secs(15),
        || async { health.stalled() == ["sink-stalled"] },
    )
    .await;

    jetstream.delete_stream(&squatter).await.unwrap();
    eventually_within(
        "the consumer pulling again",
        Duration::from_secs(15),
        || async { health.stalled().is_empty() },
    )
    .await;
    let event = envelope(Uuid::now_v7());
    publish_raw(&bus, &event, &event.event_id).await;
    eventually_within(
        "the event after the recovery",
        Duration::from_secs(10),
        || async { sink_counts(&sink_db, None).await == (2, 2) },
    )
    .await;

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert!(
        health.stalled().is_empty(),
        "a stopped consumer is not reported stalled"
    );
}

#[tokio::test]
async fn the_relay_publishes_on_its_own_connections_while_requests_hold_every_other() {
    let (db, _sink_db, bus) = sink().await;
    // A service whose requests have one connection, and whose event path has its own.
    let options = service_connect_options(&db.url, None, &SINK).unwrap();
    let requests = connect_service_pool(options.clone(), 1).await.unwrap();
    let event_path = connect_service_pool(options, 1).await.unwrap();
    let service = Database::new(requests, SINK.name).with_event_path_pool(event_path);
    write_events(&service, 100).await;

    // A long request holds the only request connection.
    let held = service.begin_system("a long request").await.unwrap();
    let relay = Relay::new(
        service.for_event_path(),
        bus.clone(),
        RelaySettings::default(),
    );
    let published = tokio::time::timeout(Duration::from_secs(3), relay.publish_once())
        .await
        .expect("the relay was not kept waiting for a request connection")
        .unwrap();
    assert_eq!(published, 100);
    held.rollback().await.unwrap();
}

#[tokio::test]
async fn a_commit_that_published_wakes_its_processs_relay_at_once() {
    let (_db, sink_db, bus) = sink().await;
    // Polling would take a minute: only the wake-up can publish the event in time.
    let settings = RelaySettings {
        poll_interval: Duration::from_secs(60),
        ..RelaySettings::default()
    };
    let relay = Relay::new(sink_db.for_event_path(), bus.clone(), settings);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(relay.run(stopping));
    // The relay's first round (an empty outbox) and its first wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    write_events(&sink_db, 100).await;
    eventually_within(
        "the woken relay's publishing",
        Duration::from_secs(10),
        || async {
            lyceum_platform::events::relay::outbox_backlog(&sink_db)
                .await
                .unwrap()
                .0
                == 0
        },
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}
