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
    /// details). Generate one with `openssl rand -base64 32`. Required unless `--dev`.
    #[arg(long, env = "LYCEUM_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<String>,
    /// Development mode: without `LYCEUM_DATA_KEY`, use a fixed data key that is public
    /// (in this repository), so secrets at rest are not secret. Never in production.
    #[arg(
        long = "dev",
        env = "LYCEUM_DEV_MODE",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub dev_mode: bool,
}

impl SecretArgs {
    /// The data key's sealer. Without a key this fails, so a deployment that forgot its
    /// key stops at start instead of sealing secrets with a key anyone can read; only
    /// development mode falls back to [`DEVELOPMENT_DATA_KEY`], loudly.
    pub fn secret_box(&self) -> anyhow::Result<SecretBox> {
        // An empty variable (compose's `${LYCEUM_DATA_KEY:-}`) is no key.
        match self.data_key.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(key) => SecretBox::from_base64(key),
            None if self.dev_mode => {
                tracing::warn!(
                    "development mode: LYCEUM_DATA_KEY is not set, secrets at rest use the public development key"
                );
                SecretBox::from_base64(DEVELOPMENT_DATA_KEY)
            }
            None => anyhow::bail!(
                "LYCEUM_DATA_KEY is not set: give the data key (generate one with \
                 `openssl rand -base64 32`), or pass --dev (LYCEUM_DEV_MODE=1) to run with \
                 the public development key"
            ),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// The `aud` of access tokens: identity issues tokens for it and every service accepts
    /// only it. Give each deployment its own (e.g. `lyceum-staging`), so that a token of
    /// one is refused by another even if they share signing keys.
    #[arg(long, env = "LYCEUM_TOKEN_AUDIENCE", default_value = crate::auth::DEFAULT_AUDIENCE)]
    pub token_audience: String,
    /// Seconds after which a service fetches identity's signing keys again, so that a
    /// retired key stops verifying.
    #[arg(long, env = "LYCEUM_KEY_REFRESH_SECS", default_value_t = 60)]
    pub key_refresh_secs: u64,
    /// Proxies in front of identity whose `x-forwarded-for` entries are trusted, for the
    /// per-address sign-in throttle. 0 (the default) uses the connection's peer address
    /// and ignores the header, which any client can forge.
    #[arg(long, env = "LYCEUM_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,
}

impl AuthArgs {
    /// The verifier of a service whose keys come from `source`, with this deployment's
    /// audience and key refresh interval.
    pub fn verifier(
        &self,
        source: std::sync::Arc<dyn crate::auth::KeySource>,
    ) -> crate::auth::TokenVerifier {
        self.configure(crate::auth::TokenVerifier::new(source))
    }

    /// Applies the audience and key refresh interval to a verifier built elsewhere.
    pub fn configure(&self, verifier: crate::auth::TokenVerifier) -> crate::auth::TokenVerifier {
        verifier
            .with_audience(&self.token_audience)
            .with_key_refresh_interval(std::time::Duration::from_secs(self.key_refresh_secs.max(1)))
    }
}
