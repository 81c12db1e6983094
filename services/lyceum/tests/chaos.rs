//! Chaos with an exactly-once proof. Mixed writes across every context (registrations,
//! courses, free and paid enrollments, payments, refunds, progress, reviews,
//! cancellations) run
//! against `lyceum serve all` as a child process while NATS is killed and restarted and
//! the server is killed with SIGKILL and restarted, several times. Afterwards, from the
//! database and the stream alone:
//!
//! - every committed event was published exactly once: each stream holds as many
//!   messages as its producer's outbox has rows, all marked sent;
//! - every consumer applied each event it subscribes to exactly once: its inbox holds as
//!   many entries as the producer's outbox has matching rows, nothing is pending on the
//!   stream and nothing went to the dead letters;
//! - every projection equals a recomputation from the source tables, and
//!   `lyceum verify all` finds no drift.
//!
//! Consumers are found on the broker, so a new service's consumers are checked without
//! changes here. `LYCEUM_CHAOS_ROUNDS` (default 2) sets how many kill-and-restart rounds
//! run; a soak sets it higher, for less than an hour: the relay deletes sent outbox rows
//! after an hour, and the proof counts them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::stack::{self, PASSWORD};
use common::*;
use futures::TryStreamExt;
use lyceum_platform::auth::scopes;
use lyceum_proto::identity::v1 as idpb;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::learning::v1 as lpb;
use lyceum_testkit::{TestDatabase, authed, service_account};
use tokio::sync::RwLock;
use tonic::transport::Channel;
use uuid::Uuid;

/// A signed-in caller: a real session, as the server checks tokens against them.
struct Caller {
    token: String,
}

/// Registers a user and signs them in.
async fn register(
    channel: &Channel,
    name: &str,
    tally: Option<&Tally>,
) -> Option<(String, Caller)> {
    let email = format!("{name}-{}@example.com", Uuid::now_v7());
    let outcome = idpb::user_service_client::UserServiceClient::new(channel.clone())
        .create_user(idpb::CreateUserRequest {
            email: email.clone(),
            password: PASSWORD.into(),
            full_name: name.into(),
            ..Default::default()
        })
        .await;
    if let Some(tally) = tally {
        tally.record(&outcome);
    }
    let user = outcome.ok()?.into_inner().user?;
    let caller = sign_in(channel, &email).await?;
    Some((user.id, caller))
}

async fn sign_in(channel: &Channel, email: &str) -> Option<Caller> {
    let token = stack::sign_in(channel, email).await.ok()?;
    Some(Caller { token })
}

/// Where the server listens now: a restart moves it to another port.
#[derive(Clone)]
struct Target(Arc<RwLock<String>>);

impl Target {
    async fn channel(&self) -> Channel {
        let addr = self.0.read().await.clone();
        Channel::from_shared(addr)
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .connect_lazy()
    }
}

/// A course the workers enroll in, with its first lesson.
#[derive(Clone)]
struct Course {
    id: String,
    lesson_id: String,
    price_minor: i64,
}

#[derive(Default)]
struct Tally {
    attempted: AtomicU64,
    acknowledged: AtomicU64,
}

impl Tally {
    fn record<T>(&self, outcome: &Result<T, tonic::Status>) {
        self.attempted.fetch_add(1, Ordering::Relaxed);
        if outcome.is_ok() {
            self.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One student's life: register, enroll, pay or learn, sometimes refund or cancel. Every
/// step may fail while the faults last; the proof reads what was committed, not what
/// was acknowledged.
async fn student_round(
    target: &Target,
    operator: &Caller,
    courses: &[Course],
    round: u64,
    tally: &Tally,
) {
    let channel = target.channel().await;
    let Some((_, student)) = register(&channel, &format!("student-{round}"), Some(tally)).await
    else {
        // The server or the broker is down: try again shortly, not in a tight loop.
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    };
    let course = &courses[round as usize % courses.len()];
    let mut enrollments =
        lpb::enrollment_service_client::EnrollmentServiceClient::new(channel.clone());
    let outcome = enrollments
        .enroll(authed(
            lpb::EnrollRequest {
                course_id: course.id.clone(),
            },
            &student.token,
        ))
        .await;
    tally.record(&outcome);
    let Some(enrollment) = outcome.ok().and_then(|r| r.into_inner().enrollment) else {
        return;
    };
    if course.price_minor == 0 {
        let completed = enrollments
            .record_lesson_progress(authed(
                lpb::RecordLessonProgressRequest {
                    enrollment_id: enrollment.id.clone(),
                    lesson_id: course.lesson_id.clone(),
                    status: lpb::LessonProgressStatus::Completed as i32,
                    progress_percent: 100,
                    watch_time_seconds: 60,
                    quiz_score: None,
                },
                &student.token,
            ))
            .await;
        tally.record(&completed);
        // The course has one lesson: completing it completes the enrollment, and the
        // student may review the course.
        if completed.is_ok() {
            let outcome = lpb::review_service_client::ReviewServiceClient::new(channel.clone())
                .create_review(authed(
                    lpb::CreateReviewRequest {
                        course_id: course.id.clone(),
                        rating: 1 + (round % 5) as i32,
                        title: format!("Round {round}"),
                        text: "Survived the chaos".into(),
                        ..Default::default()
                    },
                    &student.token,
                ))
                .await;
            tally.record(&outcome);
        }
    } else {
        let mut payments = ipb::payment_service_client::PaymentServiceClient::new(channel.clone());
        let outcome = payments
            .record_payment(authed(
                ipb::RecordPaymentRequest {
                    request_id: format!("checkout-{}", enrollment.id),
                    amount: Some(ipb::Money {
                        amount_minor: course.price_minor,
                        currency: "USD".into(),
                    }),
                    provider: ipb::PaymentProvider::Stripe as i32,
                    r#type: ipb::PaymentType::CourseEnrollment as i32,
                    related_entity_id: enrollment.id.clone(),
                    ..Default::default()
                },
                &student.token,
            ))
            .await;
        tally.record(&outcome);
        let Some(payment) = outcome.ok().and_then(|r| r.into_inner().payment) else {
            return;
        };
        let outcome = payments
            .succeed_payment(authed(
                ipb::SucceedPaymentRequest {
                    id: payment.id.clone(),
                    provider_transaction_id: format!("ch_{round}"),
                },
                &operator.token,
            ))
            .await;
        tally.record(&outcome);
        if round.is_multiple_of(3) {
            let outcome = payments
                .refund_payment(authed(
                    ipb::RefundPaymentRequest {
                        id: payment.id,
                        request_id: format!("refund-{round}"),
                        amount_minor: 0,
                        reason: "chaos".into(),
                    },
                    &operator.token,
                ))
                .await;
            tally.record(&outcome);
        }
    }
    if round.is_multiple_of(5) {
        let outcome = enrollments
            .cancel_enrollment(authed(
                lpb::CancelEnrollmentRequest { id: enrollment.id },
                &student.token,
            ))
            .await;
        tally.record(&outcome);
    }
}

async fn create_course(target: &Target, teacher: &Caller, price_minor: i64) -> Course {
    let made = stack::course_with_one_lesson(
        &target.channel().await,
        &teacher.token,
        stack::NewCourse {
            title: &format!("Chaos engineering at {price_minor}"),
            organization_id: "",
            visibility: lpb::CourseVisibility::Public,
            price_minor,
            publish: true,
        },
    )
    .await;
    Course {
        id: made.course_id,
        lesson_id: made.lesson_id,
        price_minor,
    }
}

fn rounds() -> usize {
    std::env::var("LYCEUM_CHAOS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}

#[tokio::test]
async fn writes_under_broker_and_server_kills_are_published_and_applied_exactly_once() {
    let db = TestDatabase::create().await;
    for schema in &lyceum_schema::ALL {
        db.migrate(schema).await;
    }
    let mut nats = NatsServer::start().await;
    let prefix = unique_prefix("x");
    let start = |nats_url: String, db_url: String, prefix: String| async move {
        ServiceProcess::start("all", &db_url, &nats_url, &prefix, None).await
    };
    let mut server = start(nats.url(), db.url.clone(), prefix.clone()).await;
    let target = Target(Arc::new(RwLock::new(server.addr())));

    // The first platform admin, as an operator makes one; a teacher it grants the
    // instructor role; the payment provider's handler as a scoped service account.
    let admin_email = format!("admin-{}@example.com", Uuid::now_v7());
    stack::bootstrap_platform_admin(&db.url, &admin_email);
    let channel = target.channel().await;
    let admin = sign_in(&channel, &admin_email)
        .await
        .expect("the admin signs in");
    let teacher_email = format!("teacher-{}@example.com", Uuid::now_v7());
    let teacher = idpb::user_service_client::UserServiceClient::new(channel.clone())
        .create_user(idpb::CreateUserRequest {
            email: teacher_email.clone(),
            password: PASSWORD.into(),
            full_name: "Chaos Teacher".into(),
            ..Default::default()
        })
        .await
        .expect("register the teacher")
        .into_inner()
        .user
        .unwrap();
    idpb::user_service_client::UserServiceClient::new(channel.clone())
        .grant_role(authed(
            idpb::GrantRoleRequest {
                user_id: teacher.id,
                role: idpb::Role::Instructor as i32,
                ..Default::default()
            },
            &admin.token,
        ))
        .await
        .expect("grant the instructor role");
    let teacher = sign_in(&channel, &teacher_email)
        .await
        .expect("the teacher signs in");
    let (_, operator_token) = service_account(
        &mut idpb::auth_service_client::AuthServiceClient::new(channel.clone()),
        &admin.token,
        "payments-chaos",
        &[scopes::PAYMENTS_WRITE],
    )
    .await;
    let operator = Arc::new(Caller {
        token: operator_token,
    });
    let mut courses = Vec::new();
    for price in [0, 0, 2_500, 9_900] {
        courses.push(create_course(&target, &teacher, price).await);
    }
    let courses = Arc::new(courses);

    let writing = Arc::new(AtomicBool::new(true));
    let tally = Arc::new(Tally::default());
    let next_round = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (target, operator, courses, writing, tally, next_round) = (
                target.clone(),
                operator.clone(),
                courses.clone(),
                writing.clone(),
                tally.clone(),
                next_round.clone(),
            );
            tokio::spawn(async move {
                while writing.load(Ordering::Relaxed) {
                    let round = next_round.fetch_add(1, Ordering::Relaxed);
                    student_round(&target, &operator, &courses, round, &tally).await;
                }
            })
        })
        .collect();

    let rounds = rounds();
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server = start(nats.url(), db.url.clone(), prefix.clone()).await;
        *target.0.write().await = server.addr();
        tokio::time::sleep(Duration::from_secs(2)).await;
        nats.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        nats.resume().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    writing.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    // Once more, with everything healthy: a crash right at the end is the hardest case.
    server.kill();
    let server = start(nats.url(), db.url.clone(), prefix.clone()).await;

    let bus = lyceum_platform::events::EventBus::new(
        lyceum_platform::nats::connect(&nats.url()).await.unwrap(),
        prefix.clone(),
    );
    let mut admin = db.admin_connection().await;
    let schemas: Vec<&str> = lyceum_schema::ALL.iter().map(|s| s.name).collect();

    // Every outbox row sent, and every consumer caught up with its inbox; if that never
    // happens, the counts below say where events went missing.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !settled(&db, &bus, &schemas).await && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let consumers = consumers_of(&bus, &schemas).await;

    // Published exactly once: each stream holds one message per outbox row.
    let mut events = 0;
    for schema in &schemas {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.outbox"
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        let mut stream = bus
            .jetstream()
            .get_stream(bus.stream_name(schema))
            .await
            .unwrap();
        let messages = stream.info().await.unwrap().state.messages;
        assert_eq!(
            messages, rows as u64,
            "{schema}: stream messages vs outbox rows"
        );
        events += rows;
        let dead: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.dead_letters"
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert_eq!(dead, 0, "{schema}: dead letters");
    }
    // Applied exactly once: one inbox entry per matching event, no more, no fewer.
    for consumer in &consumers {
        let expected = matching_outbox_rows(&mut admin, consumer).await;
        let applied = inbox_rows(&mut admin, consumer).await;
        assert_eq!(applied, expected, "{}: inbox vs events", consumer.name);
    }
    assert!(
        consumers.len() >= 3,
        "consumers found on the broker: {:?}",
        consumers.iter().map(|c| &c.name).collect::<Vec<_>>()
    );

    // The projections equal what the source tables say.
    let mismatches: Vec<String> = sqlx::query_scalar(
        "SELECT 'enrollment ' || e.id FROM learning.enrollments e
           LEFT JOIN instructor.enrollment_projection p ON p.enrollment_id = e.id
          WHERE p.status IS DISTINCT FROM e.status
         UNION ALL
         SELECT 'course ' || c.id FROM learning.courses c
           LEFT JOIN instructor.course_projection p ON p.course_id = c.id
          WHERE p.status IS DISTINCT FROM c.status
             OR p.enrolled_count IS DISTINCT FROM (SELECT count(*) FROM learning.enrollments e
                 WHERE e.course_id = c.id AND e.status IN ('active', 'completed'))
             OR p.completed_count IS DISTINCT FROM (SELECT count(*) FROM learning.enrollments e
                 WHERE e.course_id = c.id AND e.status = 'completed')
             OR p.review_count IS DISTINCT FROM (SELECT count(*) FROM learning.course_reviews r
                 WHERE r.course_id = c.id)
             OR p.rating_sum IS DISTINCT FROM (SELECT coalesce(sum(r.rating), 0)
                 FROM learning.course_reviews r WHERE r.course_id = c.id)
         UNION ALL
         SELECT 'progress ' || s.enrollment_id FROM learning.student_progress s
           LEFT JOIN instructor.enrollment_projection p ON p.enrollment_id = s.enrollment_id
          WHERE p.completed_lessons IS DISTINCT FROM s.completed_lessons
         UNION ALL
         SELECT 'user ' || u.id FROM identity.users u
           LEFT JOIN instructor.student_directory d ON d.user_id = u.id
          WHERE d.email IS DISTINCT FROM u.email",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(mismatches.is_empty(), "projections differ: {mismatches:?}");
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_lyceum"))
        .args(["verify", "all", "--database-url", &db.url])
        .env("LYCEUM_DEV_MODE", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "lyceum verify all: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // The proof must be about real work: writes went through while the faults lasted,
    // and every kind of write the workload makes is in the tables.
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    assert!(
        acknowledged >= 200,
        "only {acknowledged} writes were acknowledged"
    );
    let (refunds, reviews, cancelled, paid): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM instructor.payment_refunds),
                (SELECT count(*) FROM learning.course_reviews),
                (SELECT count(*) FROM learning.enrollments WHERE status = 'cancelled'),
                (SELECT count(*) FROM instructor.payments WHERE status <> 'pending')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        refunds > 0 && reviews > 0 && cancelled > 0 && paid > 0,
        "refunds {refunds}, reviews {reviews}, cancellations {cancelled}, settled payments {paid}"
    );
    report_size(&format!(
        "chaos: {} writes attempted, {} acknowledged; {events} events, {} consumers; \
         {rounds} server kills + 1 at the end, {rounds} NATS kills",
        tally.attempted.load(Ordering::Relaxed),
        tally.acknowledged.load(Ordering::Relaxed),
        consumers.len()
    ));
    drop(server);
}

/// Whether every outbox row is sent and every consumer has nothing pending and at least
/// as many inbox entries as matching events.
async fn settled(
    db: &TestDatabase,
    bus: &lyceum_platform::events::EventBus,
    schemas: &[&str],
) -> bool {
    let mut admin = db.admin_connection().await;
    for schema in schemas {
        let unsent: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if unsent > 0 {
            return false;
        }
    }
    for consumer in consumers_of(bus, schemas).await {
        if consumer.pending > 0
            || inbox_rows(&mut admin, &consumer).await
                < matching_outbox_rows(&mut admin, &consumer).await
        {
            return false;
        }
    }
    true
}

/// A durable consumer on one of our streams, as the broker describes it.
#[derive(Debug)]
struct Consumer {
    name: String,
    /// The producing service: the stream's schema.
    source: String,
    /// Relative to the prefix: `learning.>`.
    filter: String,
    /// Messages not yet delivered, or delivered and not acknowledged.
    pending: u64,
}

async fn consumers_of(bus: &lyceum_platform::events::EventBus, schemas: &[&str]) -> Vec<Consumer> {
    let mut found = Vec::new();
    for schema in schemas {
        let Ok(stream) = bus.jetstream().get_stream(bus.stream_name(schema)).await else {
            continue;
        };
        let infos: Vec<_> = stream.consumers().try_collect().await.unwrap();
        for info in infos {
            let filter = info
                .config
                .filter_subject
                .strip_prefix(&format!("{}.", bus.prefix()))
                .unwrap_or(&info.config.filter_subject)
                .to_owned();
            found.push(Consumer {
                name: info.name.clone(),
                source: (*schema).to_owned(),
                filter,
                pending: info.num_pending + info.num_ack_pending as u64,
            });
        }
    }
    found
}

/// Outbox rows of the consumer's source whose subject its filter matches.
async fn matching_outbox_rows(conn: &mut sqlx::PgConnection, consumer: &Consumer) -> i64 {
    // NATS wildcards as a regular expression: `*` one token, `>` one or more.
    let pattern = format!(
        "^{}$",
        consumer
            .filter
            .split('.')
            .map(|token| match token {
                "*" => "[^.]+".to_owned(),
                ">" => ".+".to_owned(),
                literal => regex_escape(literal),
            })
            .collect::<Vec<_>>()
            .join("\\.")
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.outbox WHERE subject ~ $1",
        consumer.source
    )))
    .bind(pattern)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Entries of the consumer's inbox, in the schema of the service that runs it.
async fn inbox_rows(conn: &mut sqlx::PgConnection, consumer: &Consumer) -> i64 {
    let owner = consumer.name.split('-').next().unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {owner}.inbox WHERE consumer = $1"
    )))
    .bind(&consumer.name)
    .fetch_one(conn)
    .await
    .unwrap()
}

fn regex_escape(literal: &str) -> String {
    literal
        .chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
