//! The NATS connection every process opens at start.

use std::time::Duration;

use anyhow::Context as _;

/// Connects to NATS, failing at once with the URL in the message when it is unreachable.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .name("lyceum")
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}
