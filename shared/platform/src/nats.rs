//! The NATS connection every process opens at start.

use std::time::Duration;

use anyhow::Context as _;

/// Connects to NATS, failing at once with the URL in the message when it is unreachable:
/// for commands that need the broker now (`dlq replay`, tests).
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .name("lyceum")
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}

/// A client that connects in the background and reconnects for ever, with a growing
/// delay, for `serve`: RPCs need no broker (events wait in the outbox), so a process
/// started during a NATS outage serves instead of crash-looping. Only an invalid URL
/// fails here.
pub async fn connect_in_background(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .name("lyceum")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("disconnected from NATS; reconnecting in the background")
                }
                other => tracing::debug!(event = %other, "NATS connection event"),
            }
        })
        .connect(url)
        .await
        .with_context(|| format!("invalid NATS URL {url}"))
}
