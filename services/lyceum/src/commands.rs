//! The subcommands. `main` parses, these do the work; errors carry the context a person
//! needs (which URL could not be reached, which service failed).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lyceum_platform::auth::{GrpcKeySource, TokenVerifier};
use lyceum_platform::config::{DatabaseArgs, NatsArgs, SecretArgs, TelemetryArgs};
use lyceum_platform::db::{self, ServiceSchema};
use lyceum_platform::server::{GrpcServer, ServerLimits, ServiceModule, shutdown_signal};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::services::{ServiceName, ServiceSelector};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Services to run in this process: `identity`, or `all`.
    #[arg(required = true, value_name = "SERVICE")]
    services: Vec<ServiceSelector>,
    /// Address the gRPC server listens on (all services share it).
    #[arg(long, env = "LYCEUM_LISTEN", default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    /// Where the identity service answers, for signing keys when it runs elsewhere.
    #[arg(
        long,
        env = "LYCEUM_IDENTITY_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    identity_addr: String,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "LYCEUM_ACCESS_TOKEN_TTL_SECS", default_value_t = 600)]
    access_token_ttl_secs: u64,
    /// Lifetime of a session (refresh-token family), in seconds.
    #[arg(long, env = "LYCEUM_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    refresh_token_ttl_secs: u64,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    secrets: SecretArgs,
    #[command(flatten)]
    limits: ServerLimits,
}

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The service to migrate, or `all`.
    #[arg(default_value = "all", value_name = "SERVICE")]
    service: ServiceSelector,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(clap::Args)]
pub struct HealthcheckArgs {
    /// The server to ask.
    #[arg(
        long,
        env = "LYCEUM_HEALTHCHECK_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    addr: String,
    /// A fully qualified gRPC service name; empty asks about the whole server.
    #[arg(long, default_value = "")]
    service: String,
}

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Create the first platform admin (refused once one exists).
    Bootstrap(BootstrapArgs),
}

#[derive(clap::Args)]
pub struct BootstrapArgs {
    #[arg(long, env = "LYCEUM_ADMIN_EMAIL")]
    email: String,
    /// At least 12 characters mixing three of: lowercase, uppercase, digits, symbols.
    #[arg(long, env = "LYCEUM_ADMIN_PASSWORD", hide_env_values = true)]
    password: String,
    #[arg(long, env = "LYCEUM_ADMIN_NAME", default_value = "Platform Admin")]
    full_name: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

fn schema_of(service: ServiceName) -> ServiceSchema {
    match service {
        ServiceName::Identity => lyceum_identity::SCHEMA,
    }
}

async fn service_pool(database: &DatabaseArgs, service: ServiceName) -> anyhow::Result<PgPool> {
    let schema = schema_of(service);
    let explicit = database.service_url(service.as_str());
    let options =
        db::service_connect_options(&database.database_url, explicit.as_deref(), &schema)?;
    db::connect_service_pool(options, database.database_max_connections)
        .await
        .with_context(|| format!("the {service} service (has `lyceum migrate` run?)"))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = lyceum_platform::telemetry::init("lyceum", args.telemetry.log_format)?;
    let services = ServiceName::expand(&args.services);
    tracing::info!(services = ?services, "starting");

    // Fail fast and loudly when a dependency is missing: no half-alive process.
    let _nats = lyceum_platform::nats::connect(&args.nats.nats_url).await?;

    let mut modules: Vec<Arc<dyn ServiceModule>> = Vec::new();
    let mut verifier = None;
    for service in &services {
        match service {
            ServiceName::Identity => {
                let pool = service_pool(&args.database, *service).await?;
                let lifetimes = lyceum_identity::TokenLifetimes {
                    access: Duration::from_secs(args.access_token_ttl_secs),
                    refresh: Duration::from_secs(args.refresh_token_ttl_secs),
                };
                let module = lyceum_identity::IdentityModule::start(
                    pool,
                    args.secrets.secret_box()?,
                    lifetimes,
                )
                .await
                .context("starting the identity service")?;
                verifier = Some(module.token_verifier());
                modules.push(Arc::new(module));
            }
        }
    }
    // Without identity in this process, keys come from identity over gRPC.
    let verifier = match verifier {
        Some(verifier) => verifier,
        None => TokenVerifier::new(Arc::new(GrpcKeySource::new(&args.identity_addr)?)),
    };

    let server = GrpcServer::bind(args.listen, modules, Arc::new(verifier), args.limits).await?;
    server.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    ensure_database_exists(&args.database.database_url).await?;
    for service in ServiceName::expand(&[args.service]) {
        db::migrate_service(&args.database.database_url, &schema_of(service))
            .await
            .with_context(|| format!("migrating {service}"))?;
        println!("migrated {service}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the database named in the URL when it does not exist yet, so that a fresh
/// PostgreSQL needs no manual step.
async fn ensure_database_exists(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url).context("invalid DATABASE_URL")?;
    let Some(database) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    anyhow::ensure!(
        database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name '{database}' must be letters, digits and underscores"
    );
    let maintenance = options.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&maintenance)
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {}",
                db::describe(&maintenance)
            )
        })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {database}"))?;
        println!("created database {database}");
    }
    Ok(())
}

pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let channel = tonic::transport::Endpoint::from_shared(args.addr.clone())
        .with_context(|| format!("invalid address {}", args.addr))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", args.addr))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service,
        })
        .await
        .with_context(|| format!("health check of {} failed", args.addr))?;
    let status = response.into_inner().status();
    println!("{}", status.as_str_name());
    Ok(
        if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

pub async fn admin(command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Bootstrap(args) => {
            let pool = service_pool(&args.database, ServiceName::Identity).await?;
            let id = lyceum_identity::bootstrap_platform_admin(
                &pool,
                &args.email,
                &args.password,
                &args.full_name,
            )
            .await?;
            println!("platform admin {} created with id {id}", args.email);
            Ok(ExitCode::SUCCESS)
        }
    }
}
