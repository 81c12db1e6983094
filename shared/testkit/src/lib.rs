//! Test support: a fresh database per test, migrated like production, and services
//! started in-process on `127.0.0.1:0` behind the same server assembly the binary uses.
//!
//! Each test is independent: its own database (dropped afterwards), its own port and its
//! own event subject prefix.
//! `TEST_LOG=1` shows the services' logs; otherwise tests are silent.
//!
//! Beside that, the helpers every suite needs: authenticated requests and status checks,
//! tokens signed with identity's key, and polling for what happens asynchronously.

mod rpc;
mod tokens;
mod wait;

pub use rpc::{assert_code, authed, service_account, violated_fields};
pub use tokens::{claims_of, fresh_claims};
pub use wait::{EVENTUALLY_TIMEOUT, eventually, eventually_within};

use std::sync::Arc;

use lyceum_platform::auth::TokenVerifier;
use lyceum_platform::db::{
    Database, ServiceSchema, connect_service_pool, migrate_service, service_connect_options,
};
use lyceum_platform::events::EventBus;
use lyceum_platform::events::relay::RelaySettings;
use lyceum_platform::runtime::Runtime;
use lyceum_platform::server::{GrpcServer, ServerLimits, ServiceModule};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The server every test database is created on; a maintenance database URL.
pub fn admin_url() -> String {
    std::env::var("LYCEUM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A port free on 127.0.0.1 now, for a process the test starts to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// A database of its own for one test, dropped when the value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        lyceum_platform::telemetry::init_for_tests();
        let admin = admin_url();
        let name = format!("lyceum_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin}: {e}"));
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = with_database(&admin, &name);
        Self { name, url }
    }

    /// Runs a service's migrations exactly as `lyceum migrate` does.
    pub async fn migrate(&self, schema: &ServiceSchema) {
        migrate_service(&self.url, schema)
            .await
            .unwrap_or_else(|e| panic!("migrating {}: {e:#}", schema.name));
    }

    /// A pool connected as the service's own runtime role, like the running service.
    pub async fn service_pool(&self, schema: &ServiceSchema) -> PgPool {
        let options = service_connect_options(&self.url, None, schema).expect("service options");
        connect_service_pool(options, 10)
            .await
            .expect("service pool")
    }

    /// The service's [`Database`], connected as its runtime role.
    pub async fn service_database(&self, schema: &ServiceSchema) -> Database {
        Database::new(self.service_pool(schema).await, schema.name)
    }

    /// A connection as the superuser that created the database.
    pub async fn admin_connection(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("admin connection")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = admin_url();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee; a short-lived one of its own does the work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            }
        })
        .join();
    }
}

fn with_database(url: &str, database: &str) -> String {
    use std::str::FromStr;
    let options = PgConnectOptions::from_str(url).expect("valid admin URL");
    let user = options.get_username();
    let host = options.get_host();
    let port = options.get_port();
    format!("postgres://{user}@{host}:{port}/{database}")
}

/// A bus of the test's own: a unique subject and stream prefix on the shared NATS server,
/// so tests running in parallel never see each other's events.
pub async fn test_bus() -> EventBus {
    let url = nats_url();
    let client = lyceum_platform::nats::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach NATS at {url}: {e:#}"));
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let bus = EventBus::new(client, prefix);
    remove_stale_test_streams(&bus).await;
    bus
}

/// Deletes the streams that earlier test runs left on the shared server (their names
/// carry a test prefix), once they are an hour old, so runs do not pile up streams.
async fn remove_stale_test_streams(bus: &EventBus) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        use futures::TryStreamExt;
        let Ok(streams) = bus.jetstream().streams().try_collect::<Vec<_>>().await else {
            return;
        };
        let cutoff = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        for info in streams {
            let name = &info.config.name;
            let from_tests = (name.starts_with('T') || name.starts_with("CLI"))
                && name.split('_').next().is_some_and(|p| p.len() > 3);
            if from_tests && info.created < cutoff {
                let _ = bus.jetstream().delete_stream(name).await;
            }
        }
    })
    .await;
}

/// Relay settings for tests: small polling interval so nothing waits for long.
pub fn test_relay_settings() -> RelaySettings {
    RelaySettings {
        poll_interval: std::time::Duration::from_millis(100),
        ..RelaySettings::default()
    }
}

/// A server running in this process until the value is dropped.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningServer {
    /// Starts the modules with their outbox relays and consumers on `bus`.
    pub async fn start(
        modules: Vec<Arc<dyn ServiceModule>>,
        verifier: Arc<TokenVerifier>,
        bus: EventBus,
    ) -> Self {
        let server = GrpcServer::bind(
            "127.0.0.1:0".parse().expect("address"),
            modules.clone(),
            verifier,
            ServerLimits::default(),
        )
        .await
        .expect("bind test server");
        let addr = server.local_addr();
        let runtime = Runtime {
            server,
            modules,
            bus,
            relay: test_relay_settings(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(runtime.run(async move {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to test server");
        Self {
            addr,
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server run");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
