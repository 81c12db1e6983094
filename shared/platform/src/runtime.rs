//! Runs a process's modules: the gRPC server plus, for each module, its outbox relay, its
//! event consumers and its scheduled jobs. If any part stops unexpectedly the whole
//! process stops with the part's name, rather than living on half alive. NATS being unreachable is not such a
//! stop: relays and consumers wait for it in the background while RPCs are served, and
//! the health name `lyceum.events` tells operators.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::events::EventBus;
use crate::events::consumer::{Consumer, ConsumerHealth};
use crate::events::relay::{Relay, RelaySettings};
use crate::server::{EventPathHealth, GrpcServer, ServiceModule};

/// How long background work may take to finish after shutdown was requested.
const BACKGROUND_GRACE: Duration = Duration::from_secs(15);

pub struct Runtime {
    pub server: GrpcServer,
    pub modules: Vec<Arc<dyn ServiceModule>>,
    pub bus: EventBus,
    pub relay: RelaySettings,
}

impl Runtime {
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let mut background = JoinSet::new();
        let consumers = ConsumerHealth::default();
        for module in &self.modules {
            let event_path = module.database().for_event_path();
            let relay = Relay::new(event_path.clone(), self.bus.clone(), self.relay);
            let name = format!("{} outbox relay", module.name());
            let signal = stopping.clone();
            background.spawn(async move { (name, relay.run(signal).await) });
            for (spec, handler) in module.consumers() {
                let name = format!("consumer {}", spec.name);
                let consumer = Consumer::new(event_path.clone(), self.bus.clone(), spec, handler)
                    .with_health(consumers.clone());
                let signal = stopping.clone();
                background.spawn(async move { (name, consumer.run(signal).await) });
            }
            for job in module.scheduled_jobs() {
                let name = format!("job {}", job.name());
                let db = module.database().clone();
                let signal = stopping.clone();
                background
                    .spawn(async move { (name, crate::jobs::run_every(job, db, signal).await) });
            }
        }

        // Relays and consumers keep running while the server drains, so events written
        // by the last in-flight requests are still published before the process exits.
        let event_path = EventPathHealth {
            client: self.bus.jetstream().client(),
            max_unpublished_age: self.relay.max_unpublished_age,
            consumers,
        };
        let server = self
            .server
            .with_event_path(event_path)
            .run_until_stopped(shutdown);
        tokio::pin!(server);
        let served = loop {
            tokio::select! {
                result = &mut server => break result,
                Some(joined) = background.join_next() => {
                    let (name, result) = joined.context("a background task panicked")?;
                    if *stopping.borrow() {
                        // Finished because shutdown was requested: expected.
                        if let Err(error) = result {
                            tracing::warn!(task = %name, error = format!("{error:#}"), "stopped with an error");
                        }
                        continue;
                    }
                    result.with_context(|| format!("{name} failed"))?;
                    anyhow::bail!("{name} stopped unexpectedly");
                }
            }
        };
        let _ = stop.send(true);
        // The server has drained; give relays and consumers time to finish their unit.
        let drained = tokio::time::timeout(BACKGROUND_GRACE, async {
            while let Some(joined) = background.join_next().await {
                if let Ok((name, Err(error))) = joined {
                    tracing::warn!(task = %name, error = format!("{error:#}"), "stopped with an error");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("background work did not finish in time; abandoning it");
        }
        served
    }
}
