//! Assembles one gRPC server from the services a process runs: health and reflection for
//! exactly those services, authentication, deadlines, concurrency and message-size limits,
//! a span per RPC, and graceful shutdown that turns health to NOT_SERVING first.

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

/// The health name that answers SERVING for as long as the process runs, whatever its
/// dependencies: for liveness probes, which must not restart a pod because its database
/// is briefly away (readiness covers that).
pub const LIVENESS_SERVICE: &str = "lyceum.liveness";

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
        sqlx::query("SELECT 1")
            .execute(self.database().pool())
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
}

/// A server bound to its port, ready to run.
pub struct GrpcServer {
    listener: TcpListener,
    modules: Vec<Arc<dyn ServiceModule>>,
    verifier: Arc<TokenVerifier>,
    limits: ServerLimits,
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
        })
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

        let mut reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(lyceum_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in &service_names {
            reflection = reflection.with_service_name(*name);
        }
        let reflection = reflection.build_v1().context("building reflection")?;

        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        routes.add_service(reflection);
        for module in &self.modules {
            module.add_routes(&mut routes, &self.limits);
        }

        // Health answers from the first request on: check once before serving.
        let ready = all_ready(&self.modules).await;
        set_all(&reporter, &service_names, status_of(ready)).await;
        reporter
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let readiness = tokio::spawn(watch_readiness(
            self.modules.clone(),
            service_names.clone(),
            reporter.clone(),
            ready,
        ));

        let limits = self.limits;
        let drain_reporter = reporter.clone();
        let drain_names = service_names.clone();
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutdown requested: reporting NOT_SERVING and draining");
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
            .layer(AuthLayer::new(self.verifier.clone()))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, graceful)
            .await;
        readiness.abort();
        result.context("gRPC server failed")
    }
}

async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

/// Keeps health in step with the dependencies: NOT_SERVING while any module's database or
/// broker does not answer.
async fn watch_readiness(
    modules: Vec<Arc<dyn ServiceModule>>,
    names: Vec<&'static str>,
    reporter: HealthReporter,
    mut last: bool,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ready = all_ready(&modules).await;
        if ready != last {
            set_all(&reporter, &names, status_of(ready)).await;
            last = ready;
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
