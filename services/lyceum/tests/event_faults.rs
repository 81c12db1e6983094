//! Faults on the event path, with the service as a real child process and a NATS server
//! of each test's own: a crash between commit and publish, a crash between publish and
//! marking sent, NATS going away while RPCs write, NATS absent when the process starts,
//! a stuck outbox, and a consumer crashing mid-batch.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lyceum_platform::db::Database;
use lyceum_platform::events::EventBus;
use lyceum_platform::events::consumer::ConsumerSpec;
use lyceum_proto::identity::v1 as identity;
use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
use lyceum_testkit::{TestDatabase, eventually_within};

const PASSWORD: &str = "Correct-Horse-42";

struct Stage {
    db: TestDatabase,
    sink_db: Database,
    nats: NatsServer,
    prefix: String,
}

async fn stage() -> Stage {
    let db = TestDatabase::create().await;
    db.migrate(&lyceum_identity::SCHEMA).await;
    db.migrate(&SINK).await;
    let sink_db = db.service_database(&SINK).await;
    Stage {
        db,
        sink_db,
        nats: NatsServer::start().await,
        prefix: unique_prefix("f"),
    }
}

impl Stage {
    async fn serve(&self, failpoint: Option<&str>) -> ServiceProcess {
        ServiceProcess::start(
            "identity",
            &self.db.url,
            &self.nats.url(),
            &self.prefix,
            failpoint,
        )
        .await
    }

    async fn bus(&self) -> EventBus {
        let client = lyceum_platform::nats::connect(&self.nats.url())
            .await
            .unwrap();
        EventBus::new(client, self.prefix.clone())
    }

    async fn unpublished(&self) -> i64 {
        let mut conn = self.db.admin_connection().await;
        sqlx::query_scalar("SELECT count(*) FROM identity.outbox WHERE published_at IS NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    async fn users_created(&self) -> (i64, i64) {
        sink_counts(&self.sink_db, Some("lyceum.identity.user.created")).await
    }
}

async fn register(service: &ServiceProcess, email: &str) {
    let mut users = UserServiceClient::connect(service.addr()).await.unwrap();
    users
        .create_user(identity::CreateUserRequest {
            email: email.into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .expect("the RPC succeeds whatever NATS is doing");
}

fn user_events(name: &str) -> ConsumerSpec {
    ConsumerSpec::new(name, "identity", "identity.user.created")
}

#[tokio::test]
async fn an_event_committed_before_a_crash_is_published_after_restart_and_applied_once() {
    let mut stage = stage().await;
    let service = stage.serve(None).await;
    // With NATS gone the commit succeeds but the publish cannot; then the process dies.
    stage.nats.stop();
    register(&service, "crash@example.org").await;
    service.kill();
    assert_eq!(
        stage.unpublished().await,
        2,
        "user.created and role.granted wait in the outbox"
    );

    stage.nats.resume().await;
    let service = stage.serve(None).await;
    let (_stop, _task) = spawn_sink(
        stage.sink_db.clone(),
        stage.bus().await,
        user_events("sink-crash"),
        Arc::default(),
    );
    register(&service, "after@example.org").await;
    eventually_within(
        "both user.created events",
        Duration::from_secs(60),
        || async { stage.users_created().await.1 == 2 },
    )
    .await;
    assert_eq!(stage.users_created().await, (2, 2));
    eventually_within("an empty outbox", Duration::from_secs(10), || async {
        stage.unpublished().await == 0
    })
    .await;
}

#[tokio::test]
async fn a_crash_after_publishing_but_before_marking_sent_is_not_applied_twice() {
    let stage = stage().await;
    let service = stage.serve(Some("relay-before-mark-sent")).await;
    register(&service, "published@example.org").await;
    // The relay publishes, the acks arrive, and the process aborts before its commit.
    let status = service.wait_for_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert_eq!(stage.unpublished().await, 2);

    let service = stage.serve(None).await;
    let (_stop, _task) = spawn_sink(
        stage.sink_db.clone(),
        stage.bus().await,
        user_events("sink-republish"),
        Arc::default(),
    );
    register(&service, "marker@example.org").await;
    eventually_within("both users", Duration::from_secs(60), || async {
        stage.users_created().await.1 == 2
    })
    .await;
    assert_eq!(stage.users_created().await, (2, 2));
    eventually_within("an empty outbox", Duration::from_secs(10), || async {
        stage.unpublished().await == 0
    })
    .await;
}

#[tokio::test]
async fn rpcs_succeed_while_nats_is_down_and_every_event_arrives_when_it_returns() {
    let mut stage = stage().await;
    let service = stage.serve(None).await;
    stage.nats.stop();
    for i in 0..20 {
        register(&service, &format!("offline-{i}@example.org")).await;
    }
    assert_eq!(stage.unpublished().await, 40);

    stage.nats.resume().await;
    let (_stop, _task) = spawn_sink(
        stage.sink_db.clone(),
        stage.bus().await,
        user_events("sink-outage"),
        Arc::default(),
    );
    eventually_within("all 20 users", Duration::from_secs(60), || async {
        stage.users_created().await.1 == 20
    })
    .await;
    assert_eq!(stage.users_created().await, (20, 20));
    eventually_within("an empty outbox", Duration::from_secs(10), || async {
        stage.unpublished().await == 0
    })
    .await;
}

#[tokio::test]
async fn serve_starts_without_nats_serves_rpcs_and_its_event_path_turns_healthy_when_nats_arrives()
{
    use tonic_health::pb::health_check_response::ServingStatus;

    let mut stage = stage().await;
    // A pod restarted during a NATS outage: the broker is down before the process starts.
    stage.nats.stop();
    let service = stage.serve(None).await;
    register(&service, "outage@example.org").await;
    assert_eq!(service.health("").await, ServingStatus::Serving);
    assert_eq!(
        service.health("lyceum.identity.v1.UserService").await,
        ServingStatus::Serving,
        "RPC readiness follows the database only"
    );
    assert_eq!(
        service.health("lyceum.events").await,
        ServingStatus::NotServing
    );
    assert_eq!(stage.unpublished().await, 2);

    stage.nats.resume().await;
    eventually_within(
        "the event path to turn healthy",
        Duration::from_secs(30),
        || async { service.health("lyceum.events").await == ServingStatus::Serving },
    )
    .await;
    let (_stop, _task) = spawn_sink(
        stage.sink_db.clone(),
        stage.bus().await,
        user_events("sink-late-broker"),
        Arc::default(),
    );
    eventually_within(
        "the user.created event",
        Duration::from_secs(30),
        || async { stage.users_created().await.1 == 1 },
    )
    .await;
    assert_eq!(stage.unpublished().await, 0);
}

#[tokio::test]
async fn the_event_path_reports_an_event_left_unpublished_too_long() {
    use tonic_health::pb::health_check_response::ServingStatus;

    let stage = stage().await;
    let service = ServiceProcess::start_with_args(
        "identity",
        &stage.db.url,
        &stage.nats.url(),
        &stage.prefix,
        None,
        &["--events-max-unpublished-secs", "1"],
    )
    .await;
    eventually_within("a healthy event path", Duration::from_secs(30), || async {
        service.health("lyceum.events").await == ServingStatus::Serving
    })
    .await;
    // An event that no stream takes: every publish of it fails, so it stays unpublished
    // while NATS itself is fine (a relay stuck on one event).
    let mut conn = stage.db.admin_connection().await;
    sqlx::query(
        "INSERT INTO identity.outbox (id, subject, envelope)
         VALUES ($1, 'nowhere.thing.happened', '')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut conn)
    .await
    .unwrap();
    eventually_within(
        "the overdue event to show",
        Duration::from_secs(30),
        || async { service.health("lyceum.events").await == ServingStatus::NotServing },
    )
    .await;
    assert_eq!(service.health("").await, ServingStatus::Serving);
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_has_its_events_applied_within_seconds_of_restart() {
    let stage = stage().await;
    stage.db.migrate(&lyceum_instructor::SCHEMA).await;
    let nats_url = stage.nats.url();
    let serve = |failpoint| {
        ServiceProcess::start(
            "identity instructor",
            &stage.db.url,
            &nats_url,
            &stage.prefix,
            failpoint,
        )
    };
    let applied = || async {
        let mut conn = stage.db.admin_connection().await;
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM instructor.inbox WHERE consumer = 'instructor-directory'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };

    // The directory consumer receives user.created and the process dies before its commit.
    let service = serve(Some("consumer-before-commit")).await;
    register(&service, "crash-mid-batch@example.org").await;
    let status = service.wait_for_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert_eq!(applied().await, 0);

    let restarted = std::time::Instant::now();
    let _service = serve(None).await;
    eventually_within(
        "the event held by the crashed consumer",
        Duration::from_secs(40),
        || async { applied().await == 1 },
    )
    .await;
    let waited = restarted.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "applied {waited:?} after the restart: the ack wait held it"
    );
}
