//! The subcommands. `main` parses, these do the work; errors carry the context a person
//! needs (which URL could not be reached, which service failed).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lyceum_platform::auth::{GrpcKeySource, TokenVerifier};
use lyceum_platform::config::{AuthArgs, DatabaseArgs, NatsArgs, SecretArgs, TelemetryArgs};
use lyceum_platform::db::{self, Database, ServiceSchema};
use lyceum_platform::events::EventBus;
use lyceum_platform::events::relay::RelaySettings;
use lyceum_platform::metrics::PrometheusEndpoint;
use lyceum_platform::runtime::Runtime;
use lyceum_platform::server::{GrpcServer, ServerLimits, ServiceModule, shutdown_signal};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

use crate::services::{ServiceName, ServiceSelector};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Services to run in this process: `identity`, `learning`, `instructor`, or `all`.
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
    /// Address of the Prometheus scrape endpoint (`GET /metrics`); none when unset.
    #[arg(long, env = "LYCEUM_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Seconds an event may wait unpublished in an outbox before the health name
    /// `lyceum.events` reports NOT_SERVING.
    #[arg(long, env = "LYCEUM_EVENTS_MAX_UNPUBLISHED_SECS", default_value_t = 60)]
    events_max_unpublished_secs: u64,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    secrets: SecretArgs,
    #[command(flatten)]
    auth: AuthArgs,
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
        ServiceName::Learning => lyceum_learning::SCHEMA,
        ServiceName::Instructor => lyceum_instructor::SCHEMA,
    }
}

/// Connections of a service's relay and consumers, beside `DATABASE_MAX_CONNECTIONS` for
/// its requests: one each for the relay and up to two consumers in a batch at once, one
/// for the relay's maintenance and the health check.
const EVENT_PATH_CONNECTIONS: u32 = 4;

async fn service_database(
    database: &DatabaseArgs,
    service: ServiceName,
) -> anyhow::Result<Database> {
    let schema = schema_of(service);
    let explicit = database.service_url(service.as_str());
    let options =
        db::service_connect_options(&database.database_url, explicit.as_deref(), &schema)?;
    let pool = db::connect_service_pool(options.clone(), database.database_max_connections)
        .await
        .with_context(|| format!("the {service} service (has `lyceum migrate` run?)"))?;
    let event_path_pool = db::connect_service_pool(options, EVENT_PATH_CONNECTIONS)
        .await
        .with_context(|| format!("the {service} service's event path"))?;
    Ok(Database::new(pool, schema.name).with_event_path_pool(event_path_pool))
}

/// Connects each selected service's database and builds its module.
async fn start_modules(
    services: &[ServiceName],
    database: &DatabaseArgs,
    secrets: &SecretArgs,
    identity_settings: lyceum_identity::IdentitySettings,
) -> anyhow::Result<(Vec<Arc<dyn ServiceModule>>, Option<TokenVerifier>)> {
    let mut modules: Vec<Arc<dyn ServiceModule>> = Vec::new();
    let mut verifier = None;
    for service in services {
        let db = service_database(database, *service).await?;
        match service {
            ServiceName::Identity => {
                let module = lyceum_identity::IdentityModule::start_with(
                    db,
                    secrets.secret_box()?,
                    identity_settings.clone(),
                )
                .await
                .context("starting the identity service")?;
                verifier = Some(module.token_verifier());
                modules.push(Arc::new(module));
            }
            ServiceName::Learning => {
                modules.push(Arc::new(lyceum_learning::LearningModule::new(db)))
            }
            ServiceName::Instructor => {
                let sealer = secrets.secret_box()?;
                modules.push(Arc::new(lyceum_instructor::InstructorModule::new(
                    db, sealer,
                )))
            }
        }
    }
    Ok((modules, verifier))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let telemetry = lyceum_platform::telemetry::init(
        "lyceum",
        args.telemetry.log_format,
        args.metrics_addr.is_some(),
    )?;
    let services = ServiceName::expand(&args.services);
    tracing::info!(services = ?services, "starting");

    // Bound before anything else, so that a taken port fails the start loudly.
    let metrics = match (args.metrics_addr, telemetry.prometheus_registry()) {
        (Some(addr), Some(registry)) => Some(PrometheusEndpoint::bind(addr, registry).await?),
        _ => None,
    };
    // RPCs need only the database (events wait in the outbox): the broker is connected to
    // in the background, and its absence shows in the health name `lyceum.events`.
    let client = lyceum_platform::nats::connect_in_background(&args.nats.nats_url).await?;
    let bus = EventBus::new(client, args.nats.event_prefix.clone());
    let identity_settings = lyceum_identity::IdentitySettings {
        lifetimes: lyceum_identity::TokenLifetimes {
            access: Duration::from_secs(args.access_token_ttl_secs),
            refresh: Duration::from_secs(args.refresh_token_ttl_secs),
        },
        audience: args.auth.token_audience.clone(),
        trusted_proxy_hops: args.auth.trusted_proxy_hops,
        ..Default::default()
    };
    let (modules, verifier) =
        start_modules(&services, &args.database, &args.secrets, identity_settings).await?;
    // Without identity in this process, keys come from identity over gRPC, and disabled
    // service accounts are learnt from identity's events (identity's own verifier reads
    // its table instead).
    let (stop_following, following) = tokio::sync::watch::channel(false);
    let verifier = match verifier {
        Some(verifier) => Arc::new(verifier),
        None => {
            let verifier = Arc::new(
                args.auth
                    .verifier(Arc::new(GrpcKeySource::new(&args.identity_addr)?)),
            );
            verifier.follow_disabled_service_accounts(bus.clone(), following);
            verifier
        }
    };

    let server = GrpcServer::bind(args.listen, modules.clone(), verifier, args.limits).await?;
    let runtime = Runtime {
        server,
        modules,
        bus,
        relay: RelaySettings {
            max_unpublished_age: Duration::from_secs(args.events_max_unpublished_secs),
            ..RelaySettings::default()
        },
    };
    let scrapes = metrics.map(|endpoint| tokio::spawn(endpoint.run()));
    let result = runtime.run(shutdown_signal()).await;
    let _ = stop_following.send(true);
    if let Some(scrapes) = scrapes {
        scrapes.abort();
    }
    result?;
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
            let db = service_database(&args.database, ServiceName::Identity).await?;
            let id = lyceum_identity::bootstrap_platform_admin(
                &db,
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

#[derive(clap::Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of one service's consumers, or of all.
    List(DlqListArgs),
    /// Republish a dead letter on its original subject, once its cause is fixed.
    Replay(DlqReplayArgs),
}

#[derive(clap::Args)]
pub struct DlqListArgs {
    #[arg(default_value = "all", value_name = "SERVICE")]
    service: ServiceSelector,
    /// Include dead letters that were already replayed.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(clap::Args)]
pub struct DlqReplayArgs {
    /// The dead letter's id, as `dlq list` shows it.
    id: Uuid,
    #[arg(long, default_value = "all", value_name = "SERVICE")]
    service: ServiceSelector,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
}

pub async fn dlq(command: DlqCommand) -> anyhow::Result<ExitCode> {
    use lyceum_platform::events::dlq;
    match command {
        DlqCommand::List(args) => {
            println!(
                "{:<36}  {:<24}  {:<36}  {:>5}  {:<20}  error",
                "id", "consumer", "subject", "tries", "failed at"
            );
            for service in ServiceName::expand(&[args.service]) {
                let db = service_database(&args.database, service).await?;
                for letter in dlq::list(&db, args.all).await? {
                    println!(
                        "{:<36}  {:<24}  {:<36}  {:>5}  {:<20}  {}{}",
                        letter.id,
                        letter.consumer,
                        letter.subject,
                        letter.deliveries,
                        letter.failed_at.format("%Y-%m-%d %H:%M:%S"),
                        letter.error,
                        if letter.replayed_at.is_some() {
                            " (replayed)"
                        } else {
                            ""
                        },
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay(args) => {
            let bus = args.nats.connect().await?;
            for service in ServiceName::expand(&[args.service]) {
                let db = service_database(&args.database, service).await?;
                if dlq::replay(&db, &bus, args.id).await? {
                    println!("replayed dead letter {} of {service}", args.id);
                    return Ok(ExitCode::SUCCESS);
                }
            }
            anyhow::bail!("no dead letter with id {}", args.id)
        }
    }
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[arg(default_value = "all", value_name = "SERVICE")]
    service: ServiceSelector,
    /// Write the recomputed values where they drifted.
    #[arg(long)]
    repair: bool,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    secrets: SecretArgs,
}

/// Recomputes every derived statistic from its source and reports drift; exits 1 when
/// drift was found and not repaired.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let services = ServiceName::expand(&[args.service]);
    let (modules, _) =
        start_modules(&services, &args.database, &args.secrets, Default::default()).await?;
    let mut drifted = false;
    for module in modules {
        let checks = module.reconciliations();
        if checks.is_empty() {
            println!("{}: no derived statistics", module.name());
            continue;
        }
        for report in lyceum_platform::verify::run(module.database(), &checks, args.repair).await? {
            match (report.drift.len(), report.repaired) {
                (0, _) => println!("{}: {} ok", module.name(), report.name),
                (n, Some(fixed)) => println!(
                    "{}: {} drifted in {n} places; repaired {fixed}",
                    module.name(),
                    report.name
                ),
                (n, None) => {
                    drifted = true;
                    println!("{}: {} drifted in {n} places:", module.name(), report.name);
                    for drift in report.drift.iter().take(20) {
                        println!(
                            "  {}: stored {}, expected {}",
                            drift.subject, drift.stored, drift.expected
                        );
                    }
                }
            }
        }
    }
    Ok(if drifted {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(clap::Subcommand)]
pub enum JobsCommand {
    /// Run one job now.
    Run(JobRunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JobName {
    /// Move instructor activity older than --older-than-days to the archive table.
    ArchiveActivity,
}

#[derive(clap::Args)]
pub struct JobRunArgs {
    #[arg(value_enum)]
    job: JobName,
    /// For archive-activity: the age in days after which activity is archived.
    #[arg(long, env = "LYCEUM_ACTIVITY_RETENTION_DAYS", default_value_t = 365)]
    older_than_days: i32,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs a job to completion in batches, so that it never holds long locks and several
/// runs at once only share the work.
pub async fn jobs(command: JobsCommand) -> anyhow::Result<ExitCode> {
    let JobsCommand::Run(args) = command;
    match args.job {
        JobName::ArchiveActivity => {
            anyhow::ensure!(
                args.older_than_days >= 1,
                "--older-than-days must be at least 1"
            );
            let db = service_database(&args.database, ServiceName::Instructor).await?;
            let mut moved = 0;
            loop {
                let mut tx = db.begin_system("archive activity").await?;
                let batch = lyceum_instructor::store::profiles::archive_activity(
                    &mut tx,
                    args.older_than_days,
                    10_000,
                )
                .await?;
                tx.commit().await?;
                moved += batch;
                if batch == 0 {
                    break;
                }
            }
            println!(
                "archived {moved} activity rows older than {} days",
                args.older_than_days
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
