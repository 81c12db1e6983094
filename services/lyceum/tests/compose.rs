//! The docker compose stack, driven from outside through its published ports: the
//! migrate step ran, every service answers SERVING and lists its services by reflection,
//! the main scenario goes through identity, learning and instructor and their events, its
//! trace reaches the collector (and Jaeger behind it), a service container stopped and
//! started again loses no event, and each service's metrics endpoint counted its RPCs.
//!
//! Needs the running stack, so it is ignored by a plain `cargo test`;
//! `scripts/compose-test.sh` brings the stack up and runs it with `--ignored`. The
//! command in `LYCEUM_COMPOSE` is `docker compose` with the stack's files.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lyceum_proto::identity::v1 as idpb;
use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
use lyceum_proto::identity::v1::organization_service_client::OrganizationServiceClient;
use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::instructor::v1::dashboard_service_client::DashboardServiceClient;
use lyceum_proto::instructor::v1::payment_service_client::PaymentServiceClient;
use lyceum_proto::learning::v1 as lpb;
use lyceum_proto::learning::v1::course_service_client::CourseServiceClient;
use lyceum_proto::learning::v1::enrollment_service_client::EnrollmentServiceClient;
use lyceum_testkit::{authed, eventually_within, service_account};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

const IDENTITY: &str = "http://127.0.0.1:50051";
const LEARNING: &str = "http://127.0.0.1:50052";
const INSTRUCTOR: &str = "http://127.0.0.1:50053";
const JAEGER: &str = "127.0.0.1:16686";
const PASSWORD: &str = "Compose-Stack-42";
const PRICE: i64 = 5000;
/// What the instructor keeps of one sale at the default platform fee (20 %).
const EARNED: i64 = 4000;

/// `docker compose ...` with the stack's files and project, as scripts/compose-test.sh
/// wrote it.
fn compose(args: &[&str]) -> String {
    let program = std::env::var("LYCEUM_COMPOSE")
        .expect("LYCEUM_COMPOSE names the compose command; run scripts/compose-test.sh");
    let output = Command::new(&program).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "compose {args:?} failed: {text}");
    text
}

async fn channel(addr: &'static str) -> Channel {
    Channel::from_static(addr).connect().await.unwrap()
}

/// GET on a published HTTP port; the body, when the status is 200.
async fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then_some(())
        .or_else(|| head.starts_with("HTTP/1.1 200").then_some(()))?;
    Some(body.to_owned())
}

async fn serving_with_reflection(addr: &'static str, expected: &[&str]) {
    let channel = channel(addr).await;
    let mut health = HealthClient::new(channel.clone());
    for service in std::iter::once("").chain(expected.iter().copied()) {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{addr} health of {service:?}: {e}"))
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{addr} {service:?}");
    }

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("{addr}: no reflection response")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{addr}: unexpected reflection response")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(
            names.iter().any(|n| n == service),
            "{addr}: {service} missing from {names:?}"
        );
    }
}

struct Person {
    id: String,
    token: String,
}

async fn sign_in(email: &str) -> Person {
    let response = AuthServiceClient::new(channel(IDENTITY).await)
        .authenticate(idpb::AuthenticateRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("signing in {email}: {e}"))
        .into_inner();
    Person {
        id: response.user.unwrap().id,
        token: response.tokens.unwrap().access_token,
    }
}

/// The payment provider's handler: a service account allowed to record payment outcomes.
async fn payment_handler(admin: &Person, run: &str) -> Person {
    let (id, token) = service_account(
        &mut AuthServiceClient::new(channel(IDENTITY).await),
        &admin.token,
        &format!("payments-{}", &run[20..]),
        &[lyceum_platform::auth::scopes::PAYMENTS_WRITE],
    )
    .await;
    Person { id, token }
}

/// A user of the organization, created by the administrator, with one more role there.
async fn member(admin: &Person, org: &str, email: &str, role: idpb::Role) -> Person {
    let mut users = UserServiceClient::new(channel(IDENTITY).await);
    let user = users
        .create_user(authed(
            idpb::CreateUserRequest {
                email: email.into(),
                password: PASSWORD.into(),
                full_name: email.split('@').next().unwrap().into(),
                organization_id: org.into(),
                ..Default::default()
            },
            &admin.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    users
        .grant_role(authed(
            idpb::GrantRoleRequest {
                user_id: user.id,
                role: role as i32,
                organization_id: org.into(),
                expire_time: None,
            },
            &admin.token,
        ))
        .await
        .unwrap();
    sign_in(email).await
}

async fn paid_course(teacher: &Person, org: &str) -> String {
    let mut courses = CourseServiceClient::new(channel(LEARNING).await);
    let course = courses
        .create_course(authed(
            lpb::CreateCourseRequest {
                course: Some(lpb::Course {
                    title: "Containers for real".into(),
                    organization_id: org.into(),
                    price: Some(lpb::Money {
                        amount_minor: PRICE,
                        currency: "USD".into(),
                    }),
                    ..Default::default()
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .course
        .unwrap();
    let module = courses
        .create_module(authed(
            lpb::CreateModuleRequest {
                course_id: course.id.clone(),
                title: "Compose".into(),
                description: String::new(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .module
        .unwrap();
    courses
        .create_lesson(authed(
            lpb::CreateLessonRequest {
                course_id: course.id.clone(),
                module_id: module.id,
                title: "Up".into(),
                r#type: lpb::LessonType::Video as i32,
                duration_seconds: 300,
                ..Default::default()
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    courses
        .publish_course(authed(
            lpb::PublishCourseRequest {
                id: course.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    course.id
}

async fn enroll(student: &Person, course: &str) -> lpb::Enrollment {
    let enrollment = EnrollmentServiceClient::new(channel(LEARNING).await)
        .enroll(authed(
            lpb::EnrollRequest {
                course_id: course.into(),
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .enrollment
        .unwrap();
    assert_eq!(
        enrollment.status,
        lpb::EnrollmentStatus::PendingPayment as i32
    );
    enrollment
}

/// The student pays; the provider's handler confirms it, in the trace `trace_id` when
/// given.
async fn pay(
    student: &Person,
    teacher: &Person,
    operator: &Person,
    enrollment: &lpb::Enrollment,
    trace_id: Option<&str>,
) {
    let mut payments = PaymentServiceClient::new(channel(INSTRUCTOR).await);
    let payment = payments
        .record_payment(authed(
            ipb::RecordPaymentRequest {
                request_id: format!("checkout-{}", enrollment.id),
                instructor_id: teacher.id.clone(),
                amount: Some(ipb::Money {
                    amount_minor: PRICE,
                    currency: "USD".into(),
                }),
                provider: ipb::PaymentProvider::Stripe as i32,
                r#type: ipb::PaymentType::CourseEnrollment as i32,
                related_entity_id: enrollment.id.clone(),
                ..Default::default()
            },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    let mut request = authed(
        ipb::SucceedPaymentRequest {
            id: payment.id,
            provider_transaction_id: format!("ch_{}", Uuid::now_v7().simple()),
        },
        &operator.token,
    );
    if let Some(trace_id) = trace_id {
        let traceparent = format!(
            "00-{trace_id}-{}-01",
            &Uuid::now_v7().simple().to_string()[..16]
        );
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse().unwrap());
    }
    payments.succeed_payment(request).await.unwrap();
}

async fn enrollment_status(student: &Person, id: &str) -> i32 {
    EnrollmentServiceClient::new(channel(LEARNING).await)
        .get_enrollment(authed(
            lpb::GetEnrollmentRequest { id: id.into() },
            &student.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .enrollment
        .unwrap()
        .status
}

async fn dashboard(teacher: &Person) -> ipb::GetDashboardStatsResponse {
    DashboardServiceClient::new(channel(INSTRUCTOR).await)
        .get_dashboard_stats(authed(
            ipb::GetDashboardStatsRequest {
                instructor_id: teacher.id.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The instructor's earnings in US dollars (the only currency of the scenario).
fn revenue(stats: &ipb::GetDashboardStatsResponse) -> i64 {
    assert!(
        stats.total_revenue.iter().all(|m| m.currency == "USD"),
        "{stats:?}"
    );
    stats.total_revenue.iter().map(|m| m.amount_minor).sum()
}

/// The span names of a trace, as Jaeger's query API returns it.
async fn trace_names(trace_id: &str) -> Vec<String> {
    let Some(body) = http_get(JAEGER, &format!("/api/traces/{trace_id}")).await else {
        return Vec::new();
    };
    body.split("\"operationName\":")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"'))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
#[ignore = "needs the compose stack: scripts/compose-test.sh runs it"]
async fn the_compose_stack_runs_the_main_scenario_traces_it_and_loses_no_event_across_a_restart() {
    // The compose file's migrate step ran to completion before the services started.
    let migrate = compose(&["logs", "--no-color", "migrate"]);
    for schema in ["identity", "learning", "instructor"] {
        assert!(
            migrate.contains(&format!("migrated {schema}")),
            "the migrate step did not migrate {schema}: {migrate}"
        );
    }
    let state = compose(&["ps", "-a", "migrate"]);
    assert!(
        state.contains("Exit 0") || state.contains("Exited (0)"),
        "{state}"
    );

    serving_with_reflection(IDENTITY, &lyceum_identity::GRPC_SERVICES).await;
    serving_with_reflection(LEARNING, &lyceum_learning::GRPC_SERVICES).await;
    serving_with_reflection(INSTRUCTOR, &lyceum_instructor::GRPC_SERVICES).await;

    // The first administrator, as an operator creates it: inside the identity container.
    let run = Uuid::now_v7().simple().to_string();
    let admin_email = format!("admin-{run}@compose.test");
    compose(&[
        "exec",
        "-T",
        "-e",
        &format!("LYCEUM_ADMIN_PASSWORD={PASSWORD}"),
        "identity",
        "lyceum",
        "admin",
        "bootstrap",
        "--email",
        &admin_email,
    ]);
    let admin = sign_in(&admin_email).await;

    let org = OrganizationServiceClient::new(channel(IDENTITY).await)
        .create_organization(authed(
            idpb::CreateOrganizationRequest {
                name: "Compose Academy".into(),
                slug: format!("compose-{}", &run[20..]),
                ..Default::default()
            },
            &admin.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
        .id;
    let teacher = member(
        &admin,
        &org,
        &format!("teacher-{run}@compose.test"),
        idpb::Role::Instructor,
    )
    .await;
    let first = member(
        &admin,
        &org,
        &format!("first-{run}@compose.test"),
        idpb::Role::Member,
    )
    .await;
    let second = member(
        &admin,
        &org,
        &format!("second-{run}@compose.test"),
        idpb::Role::Member,
    )
    .await;
    let course = paid_course(&teacher, &org).await;
    let provider = payment_handler(&admin, &run).await;

    // Payment -> (instructor's outbox, NATS) -> learning activates the enrollment ->
    // (learning's outbox, NATS) -> instructor's dashboard counts the sale.
    let trace_id = Uuid::now_v7().simple().to_string();
    let enrollment = enroll(&first, &course).await;
    pay(&first, &teacher, &provider, &enrollment, Some(&trace_id)).await;
    eventually_within(
        "the enrollment activated by the payment event",
        Duration::from_secs(60),
        || async {
            enrollment_status(&first, &enrollment.id).await == lpb::EnrollmentStatus::Active as i32
        },
    )
    .await;
    eventually_within(
        "the sale on the dashboard",
        Duration::from_secs(60),
        || async { revenue(&dashboard(&teacher).await) == EARNED },
    )
    .await;
    let stats = dashboard(&teacher).await;
    assert_eq!(stats.total_students, 1, "{stats:?}");
    assert_eq!(stats.active_enrollments, 1, "{stats:?}");
    assert_eq!(stats.total_courses, 1, "{stats:?}");

    // One trace from the RPC through the event to its consumer, exported by the services
    // to the collector and by the collector to Jaeger.
    let deadline = Instant::now() + Duration::from_secs(60);
    let names = loop {
        let names = trace_names(&trace_id).await;
        // The RPC's span comes from the instructor container, the payment event's
        // consumer span from the learning container, the activation's from instructor.
        if [
            "/lyceum.instructor.v1.PaymentService/SucceedPayment",
            "consume lyceum.instructor.payment.succeeded",
            "consume lyceum.learning.enrollment.activated",
        ]
        .iter()
        .all(|wanted| names.iter().any(|n| n == wanted))
        {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} in Jaeger has only {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("trace {trace_id}: {names:?}");

    // Learning stops; a payment is made meanwhile. Its event waits in JetStream (the
    // instructor's outbox relay published it), learning catches up when it starts, and
    // the activation it then publishes reaches the instructor's dashboard.
    let waiting = enroll(&second, &course).await;
    compose(&["stop", "learning"]);
    pay(&second, &teacher, &provider, &waiting, None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        revenue(&dashboard(&teacher).await),
        EARNED,
        "no activation can happen while learning is stopped"
    );
    compose(&["start", "learning"]);
    eventually_within(
        "learning serving again",
        Duration::from_secs(90),
        || async {
            match Channel::from_static(LEARNING).connect().await {
                Ok(channel) => HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving),
                Err(_) => false,
            }
        },
    )
    .await;
    eventually_within(
        "the payment made while learning was stopped",
        Duration::from_secs(90),
        || async {
            enrollment_status(&second, &waiting.id).await == lpb::EnrollmentStatus::Active as i32
        },
    )
    .await;
    eventually_within(
        "both sales on the dashboard",
        Duration::from_secs(60),
        || async { revenue(&dashboard(&teacher).await) == 2 * EARNED },
    )
    .await;
    let stats = dashboard(&teacher).await;
    assert_eq!(stats.total_students, 2, "{stats:?}");
    assert_eq!(stats.active_enrollments, 2, "{stats:?}");

    // Each service's own Prometheus endpoint, published beside its gRPC port, counted
    // the RPCs it served.
    for (addr, service) in [
        ("127.0.0.1:9464", "lyceum.identity.v1.AuthService"),
        ("127.0.0.1:9465", "lyceum.learning.v1.EnrollmentService"),
        ("127.0.0.1:9466", "lyceum.instructor.v1.PaymentService"),
    ] {
        let metrics = http_get(addr, "/metrics")
            .await
            .unwrap_or_else(|| panic!("no /metrics on {addr}"));
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("rpc_server_duration_milliseconds_count")
                    && l.contains(&format!("rpc_service=\"{service}\""))),
            "{addr}/metrics has no RPC of {service}"
        );
    }
}
