//! Configuration shared by every command: flags with environment fallbacks.
//!
//! With nothing set, everything points at a local PostgreSQL and NATS so that
//! `lyceum serve all` works on a developer machine.

use crate::crypto::SecretBox;
use crate::telemetry::LogFormat;

/// A data key for development only; `serve` warns when it is in use.
pub const DEVELOPMENT_DATA_KEY: &str = "bHljZXVtLWRldi1rZXktbm90LXNlY3JldC0tLS0tLUw=";

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. Migrations connect with it as given (it must be allowed to create
    /// roles and schemas); each service connects with the same URL as its own role
    /// `lyceum_<service>`, unless `LYCEUM_<SERVICE>_DATABASE_URL` names another URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/lyceum",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Connections per service pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    /// The explicit URL of one service's role, from `LYCEUM_<SERVICE>_DATABASE_URL`.
    pub fn service_url(&self, service: &str) -> Option<String> {
        std::env::var(format!("LYCEUM_{}_DATABASE_URL", service.to_uppercase())).ok()
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL (JetStream enabled).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// First token of every event subject and stream name (`lyceum.identity.user.created`,
    /// `LYCEUM_IDENTITY`); lets several deployments share one NATS server.
    #[arg(long, env = "LYCEUM_EVENT_PREFIX", default_value = "lyceum")]
    pub event_prefix: String,
}

impl NatsArgs {
    /// Connects and returns the bus, naming the URL when the server cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<crate::events::EventBus> {
        let client = crate::nats::connect(&self.nats_url).await?;
        Ok(crate::events::EventBus::new(
            client,
            self.event_prefix.clone(),
        ))
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log format on stderr.
    #[arg(long, env = "LYCEUM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SecretArgs {
    /// Base64 of 32 random bytes; encrypts secrets at rest (signing keys, payment
    /// details). Generate one with `openssl rand -base64 32`.
    #[arg(long, env = "LYCEUM_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<String>,
}

impl SecretArgs {
    pub fn secret_box(&self) -> anyhow::Result<SecretBox> {
        match &self.data_key {
            Some(key) => SecretBox::from_base64(key),
            None => {
                tracing::warn!(
                    "LYCEUM_DATA_KEY is not set: using the development key, not fit for production"
                );
                SecretBox::from_base64(DEVELOPMENT_DATA_KEY)
            }
        }
    }
}
