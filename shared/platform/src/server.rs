//! Assembles one gRPC server from the services a process runs: health and reflection for
//! exactly those services, authentication, deadlines, concurrency and message-size limits,
//! a span and RED metrics per RPC, and graceful shutdown that turns health to NOT_SERVING
//! first.
//!
//! Health names: the services' own names and `""` follow what RPCs need (each module's
//! database); [`EVENTS_SERVICE`] follows the event path (the broker connection, whether the
//! consumers can pull, and the age of the oldest unpublished event), so that a broker outage takes no pod out of rotation;
//! [`LIVENESS_SERVICE`] answers SERVING for as long as the process runs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::{AuthLayer, TokenVerifier};
use crate::events::consumer::{ConsumerSpec, EventHandler};
use crate::events::relay::oldest_unpublished_age;
use crate::metrics::RpcMetricsLayer;

/// The health name that answers SERVING for as long as the process runs, whatever its
/// dependencies: for liveness probes, which must not restart a pod because its database
/// is briefly away (readiness covers that).
pub const LIVENESS_SERVICE: &str = "lyceum.liveness";

/// The health name of the event path: NOT_SERVING while NATS is unreachable or an outbox
/// holds an event unpublished for longer than allowed. RPCs do not depend on it (writes go
/// to the outbox), so readiness probes must not ask for it; alerts and dashboards do.
pub const EVENTS_SERVICE: &str = "lyceum.events";

/// How often health follows the dependencies.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Limits applied to every RPC of the server.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ServerLimits {
    /// Longest time an RPC may run; a shorter client deadline (grpc-timeout) wins.
    #[arg(long, env = "LYCEUM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// RPCs handled at once on one client connection; further ones wait.
    #[arg(long, env = "LYCEUM_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "LYCEUM_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// How long health reports NOT_SERVING before the server stops accepting, so that
    /// load balancers stop sending work first.
    #[arg(long, env = "LYCEUM_SHUTDOWN_DRAIN_SECS", default_value_t = 0)]
    pub shutdown_drain_secs: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            request_timeout_secs: 30,
            max_concurrent_requests: 512,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_drain_secs: 0,
        }
    }
}

/// What a bounded context contributes to a server.
#[async_trait]
pub trait ServiceModule: Send + Sync + 'static {
    /// The module's name on the command line: `identity`, `learning`, ...
    fn name(&self) -> &'static str;
    /// Fully qualified gRPC service names, for health and reflection.
    fn grpc_service_names(&self) -> Vec<&'static str>;
    /// Adds the module's tonic services, configured with the limits.
    fn add_routes(&self, routes: &mut RoutesBuilder, limits: &ServerLimits);
    /// Whether the module's dependencies answer now: by default, its database.
    async fn is_ready(&self) -> bool {
        sqlx::query_scalar!("SELECT 1 AS alive")
            .fetch_one(self.database().pool())
            .await
            .is_ok()
    }
    /// The module's database: its outbox is relayed to the bus.
    fn database(&self) -> &crate::db::Database;
    /// The event consumers the module runs.
    fn consumers(&self) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
        Vec::new()
    }
    /// The reconciliations of the statistics the module derives (`lyceum verify`).
    fn reconciliations(&self) -> Vec<Box<dyn crate::verify::Reconciliation>> {
        Vec::new()
    }
    /// The jobs the module runs on an interval (`crate::jobs`).
    fn scheduled_jobs(&self) -> Vec<Arc<dyn crate::jobs::ScheduledJob>> {
        Vec::new()
    }
}

/// What the health of the event path follows.
#[derive(Clone)]
pub struct EventPathHealth {
    /// The connection the relays and consumers use.
    pub client: async_nats::Client,
    /// The age beyond which an unpublished event means the event path is stuck.
    pub max_unpublished_age: Duration,
    /// Whether the process's consumers can pull.
    pub consumers: crate::events::consumer::ConsumerHealth,
}

impl EventPathHealth {
    /// Why the event path is unhealthy, if it is.
    async fn problem(&self, modules: &[Arc<dyn ServiceModule>]) -> Option<String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Some("NATS is unreachable: events wait in the outboxes".to_owned());
        }
        let stalled = self.consumers.stalled();
        if !stalled.is_empty() {
            return Some(format!(
                "consumers cannot pull: {}; their events wait in the streams",
                stalled.join(", ")
            ));
        }
        for module in modules {
            match oldest_unpublished_age(module.database()).await {
                Ok(age) if age <= self.max_unpublished_age => {}
                Ok(age) => {
                    return Some(format!(
                        "an event of {} has waited {}s to be published",
                        module.name(),
                        age.as_secs()
                    ));
                }
                Err(error) => {
                    return Some(format!(
                        "cannot read the outbox of {}: {error:#}",
                        module.name()
                    ));
                }
            }
        }
        None
    }
}

/// A server bound to its port, ready to run.
pub struct GrpcServer {
    listener: TcpListener,
    modules: Vec<Arc<dyn ServiceModule>>,
    verifier: Arc<TokenVerifier>,
    limits: ServerLimits,
    event_path: Option<EventPathHealth>,
}

impl GrpcServer {
    /// Binds the listen address (port 0 picks a free port; see [`GrpcServer::local_addr`]).
    pub async fn bind(
        listen: SocketAddr,
        modules: Vec<Arc<dyn ServiceModule>>,
        verifier: Arc<TokenVerifier>,
        limits: ServerLimits,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(Self {
            listener,
            modules,
            verifier,
            limits,
            event_path: None,
        })
    }

    /// Reports the event path's health under [`EVENTS_SERVICE`].
    pub fn with_event_path(mut self, health: EventPathHealth) -> Self {
        self.event_path = Some(health);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, drains and finishes the
    /// RPCs in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let service_names: Vec<&'static str> = self
            .modules
            .iter()
            .flat_map(|m| m.grpc_service_names())
            .collect();

        // Both reflection versions: grpcurl 1.8 and Python's grpcio-reflection speak only
        // v1alpha, newer clients v1.
        let reflection_v1 = reflection(&service_names)
            .build_v1()
            .context("building reflection")?;
        let reflection_v1alpha = reflection(&service_names)
            .build_v1alpha()
            .context("building reflection")?;

        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        routes.add_service(reflection_v1);
        routes.add_service(reflection_v1alpha);
        for module in &self.modules {
            module.add_routes(&mut routes, &self.limits);
        }
        let rpc_metrics = RpcMetricsLayer::new(
            service_names
                .iter()
                .copied()
                .chain(["grpc.health.v1.Health"])
                .chain(REFLECTION_SERVICES),
        );

        // Health answers from the first request on: check once before serving.
        let ready = all_ready(&self.modules).await;
        set_all(&reporter, &service_names, status_of(ready)).await;
        reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let mut events = None;
        if let Some(event_path) = &self.event_path {
            let problem = event_path.problem(&self.modules).await;
            if let Some(problem) = &problem {
                tracing::warn!(problem = %problem, "event path unhealthy");
            }
            let status = status_of(problem.is_none());
            reporter.set_service_status(EVENTS_SERVICE, status).await;
            events = Some(status);
        }
        let watcher = tokio::spawn(watch_health(
            self.modules.clone(),
            self.event_path.clone(),
            service_names.clone(),
            reporter.clone(),
            ready,
            events,
        ));

        let stop_watching = watcher.abort_handle();
        let limits = self.limits;
        let drain_reporter = reporter.clone();
        let mut drain_names = service_names.clone();
        if self.event_path.is_some() {
            drain_names.push(EVENTS_SERVICE);
        }
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutdown requested: reporting NOT_SERVING and draining");
            // Stopped first, so that it cannot turn a name back to SERVING while draining.
            stop_watching.abort();
            set_all(&drain_reporter, &drain_names, ServingStatus::NotServing).await;
            tokio::time::sleep(Duration::from_secs(limits.shutdown_drain_secs)).await;
        };

        let addr = self.local_addr();
        tracing::info!(%addr, services = ?service_names, "serving gRPC");
        // Without TCP_NODELAY small responses wait for the peer's delayed ACK (~40 ms).
        let incoming = TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        let result = tonic::transport::Server::builder()
            .timeout(Duration::from_secs(limits.request_timeout_secs))
            .trace_fn(crate::telemetry::server_span)
            // Per connection, so that one busy client cannot starve the health probes,
            // which come on connections of their own.
            .concurrency_limit_per_connection(limits.max_concurrent_requests)
            // Outermost, so that refusals by the layers inside are measured too.
            .layer(rpc_metrics)
            .layer(AuthLayer::new(self.verifier.clone()))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, graceful)
            .await;
        watcher.abort();
        result.context("gRPC server failed")
    }
}

async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

/// The reflection services, listed like the others so that clients see them.
const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Reflection over every served service. Each version's builder registers only its own
/// descriptor, so both are registered explicitly: either version can describe the other.
fn reflection(service_names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(lyceum_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for name in service_names.iter().chain(REFLECTION_SERVICES.iter()) {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Keeps health in step with the dependencies: the services' names are NOT_SERVING while
/// any module's database does not answer (all that RPCs need: writes put their events in
/// the outbox); [`EVENTS_SERVICE`] is NOT_SERVING while the broker does not answer, a
/// consumer cannot pull, or an event waits too long to be published.
async fn watch_health(
    modules: Vec<Arc<dyn ServiceModule>>,
    event_path: Option<EventPathHealth>,
    names: Vec<&'static str>,
    reporter: HealthReporter,
    mut last_ready: bool,
    mut last_events: Option<ServingStatus>,
) {
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let ready = all_ready(&modules).await;
        if ready != last_ready {
            set_all(&reporter, &names, status_of(ready)).await;
            last_ready = ready;
        }
        if let Some(event_path) = &event_path {
            let problem = event_path.problem(&modules).await;
            let events = status_of(problem.is_none());
            if last_events != Some(events) {
                match &problem {
                    Some(problem) => tracing::warn!(problem = %problem, "event path unhealthy"),
                    None => tracing::info!("event path healthy again"),
                }
                reporter.set_service_status(EVENTS_SERVICE, events).await;
                last_events = Some(events);
            }
        }
    }
}

async fn all_ready(modules: &[Arc<dyn ServiceModule>]) -> bool {
    let mut ready = true;
    for module in modules {
        if !module.is_ready().await {
            tracing::warn!(module = module.name(), "dependencies unavailable");
            ready = false;
        }
    }
    ready
}

fn status_of(ready: bool) -> ServingStatus {
    if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
