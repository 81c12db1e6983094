//! What clients and operators see of `lyceum serve` from outside: reflection in both
//! versions that tools speak, and RED metrics of RPCs and of the event path on the
//! Prometheus endpoint.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use lyceum_proto::identity::v1 as identity;
use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
use lyceum_testkit::{TestDatabase, free_port};
use tonic::Code;

async fn migrated(services: &[&lyceum_platform::db::ServiceSchema]) -> TestDatabase {
    let db = TestDatabase::create().await;
    for schema in services {
        db.migrate(schema).await;
    }
    db
}

#[tokio::test]
async fn a_v1alpha_reflection_client_lists_and_describes_every_service_of_serve_all() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

    let db = migrated(&[
        &lyceum_identity::SCHEMA,
        &lyceum_learning::SCHEMA,
        &lyceum_instructor::SCHEMA,
    ])
    .await;
    let nats = NatsServer::start().await;
    let service =
        ServiceProcess::start("all", &db.url, &nats.url(), &unique_prefix("r"), None).await;

    // grpcurl 1.8 and Python's grpcio-reflection ask exactly this, in v1alpha.
    let channel = service.channel().await;
    let ask = |request: MessageRequest| {
        let mut client = ServerReflectionClient::new(channel.clone());
        async move {
            let mut responses = client
                .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                }]))
                .await
                .expect("v1alpha reflection is served")
                .into_inner();
            let response: ServerReflectionResponse = responses.next().await.unwrap().unwrap();
            response.message_response.expect("a response")
        }
    };

    let MessageResponse::ListServicesResponse(list) =
        ask(MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list")
    };
    let listed: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    let expected = lyceum_identity::GRPC_SERVICES
        .into_iter()
        .chain(lyceum_learning::GRPC_SERVICES)
        .chain(lyceum_instructor::GRPC_SERVICES)
        .chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
    for name in expected {
        assert!(
            listed.contains(&name.to_string()),
            "{name} missing from {listed:?}"
        );
    }

    // `grpcurl describe` asks for the file of a symbol: each must resolve.
    for symbol in [
        "lyceum.learning.v1.CourseService",
        "lyceum.instructor.v1.RevenueService",
        "grpc.reflection.v1.ServerReflection",
    ] {
        let MessageResponse::FileDescriptorResponse(files) =
            ask(MessageRequest::FileContainingSymbol(symbol.into())).await
        else {
            panic!("no file for {symbol}")
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{symbol}");
    }
}

#[tokio::test]
async fn the_metrics_endpoint_counts_rpcs_by_method_and_status_code_next_to_event_metrics() {
    let db = migrated(&[&lyceum_identity::SCHEMA]).await;
    let nats = NatsServer::start().await;
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let service = ServiceProcess::start_with_args(
        "identity",
        &db.url,
        &nats.url(),
        &unique_prefix("m"),
        None,
        &["--metrics-addr", &metrics_addr],
    )
    .await;

    let mut users = UserServiceClient::connect(service.addr()).await.unwrap();
    for email in ["one@example.org", "two@example.org"] {
        users
            .create_user(identity::CreateUserRequest {
                email: email.into(),
                password: "Correct-Horse-42".into(),
                ..Default::default()
            })
            .await
            .expect("a valid registration");
    }
    let invalid = users
        .create_user(identity::CreateUserRequest {
            email: "not-an-email".into(),
            password: "weak".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let anonymous = users
        .get_user(identity::GetUserRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let count = |metrics: &str, method: &str, code: &str| {
        sample(
            metrics,
            "rpc_server_duration_milliseconds_count",
            &[
                ("rpc_system", "grpc"),
                ("rpc_service", "lyceum.identity.v1.UserService"),
                ("rpc_method", method),
                ("rpc_grpc_status_code", code),
            ],
        )
    };
    let metrics = scrape_metrics(&metrics_addr).await;
    assert_eq!(count(&metrics, "CreateUser", "0"), Some(2.0), "{metrics}");
    assert_eq!(count(&metrics, "CreateUser", "3"), Some(1.0), "{metrics}");
    assert_eq!(count(&metrics, "GetUser", "16"), Some(1.0), "{metrics}");
    assert_eq!(count(&metrics, "GetUser", "0"), None, "{metrics}");
    assert!(
        metrics.contains("# TYPE rpc_server_duration_milliseconds histogram"),
        "{metrics}"
    );

    // The event path's own metrics come through the same endpoint: the relay published
    // the two registrations' events (user.created and role.granted each).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = scrape_metrics(&metrics_addr).await;
        let published = sample(
            &metrics,
            "lyceum_outbox_published_total",
            &[("service", "identity")],
        );
        let backlog = sample(
            &metrics,
            "lyceum_outbox_backlog",
            &[("service", "identity")],
        );
        if published == Some(4.0) && backlog.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event path's metrics are missing:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_pooled_connection_the_database_closed_fails_one_use_as_unavailable_and_is_replaced() {
    use lyceum_platform::ApiError;
    use lyceum_platform::db::{
        Database, TenantContext, connect_service_pool, service_connect_options,
    };

    let test_db = TestDatabase::create().await;
    test_db.migrate(&lyceum_learning::SCHEMA).await;
    let options = service_connect_options(&test_db.url, None, &lyceum_learning::SCHEMA).unwrap();
    let db = Database::new(
        connect_service_pool(options, 1).await.unwrap(),
        lyceum_learning::SCHEMA.name,
    );
    let use_once = || async {
        let mut tx = db.begin(&TenantContext::anonymous()).await?;
        sqlx::query("SELECT 1").execute(tx.conn()).await?;
        tx.commit().await
    };
    use_once().await.unwrap();

    // The database ends the pooled connection (as a restart does).
    let mut admin = test_db.admin_connection().await;
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND usename = 'lyceum_learning') t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(ended, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Its next use fails as retryable, never as an internal error; the one after works.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        outcomes.push(use_once().await.map_err(|e| ApiError::from(e).code()));
    }
    assert!(
        matches!(outcomes[0], Ok(()) | Err(Code::Unavailable)),
        "{outcomes:?}"
    );
    assert!(outcomes[1].is_ok(), "{outcomes:?}");
}
