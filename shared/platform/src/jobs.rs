//! Scheduled jobs: work a module runs on an interval beside its relay and consumers (a
//! hold that lapses, a reminder that falls due). Each run is one unit the job commits
//! itself; a failed run is logged and tried again at the next tick, so a database that
//! is down for a moment does not stop the process.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::db::Database;

#[async_trait]
pub trait ScheduledJob: Send + Sync + 'static {
    /// e.g. `learning.workshop_holds`.
    fn name(&self) -> &'static str;
    fn interval(&self) -> Duration;
    /// One run: returns how many items it handled.
    async fn run_once(&self, db: &Database) -> anyhow::Result<u64>;
}

/// Runs `job` every interval until `stopping` turns true. Never fails: a run's error is
/// logged and the next tick tries again.
pub async fn run_every(
    job: Arc<dyn ScheduledJob>,
    db: Database,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(job.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopping.changed() => {}
        }
        if *stopping.borrow() {
            return Ok(());
        }
        match job.run_once(&db).await {
            Ok(0) => {}
            Ok(handled) => tracing::info!(job = job.name(), handled, "scheduled job ran"),
            Err(error) => {
                tracing::warn!(
                    job = job.name(),
                    error = format!("{error:#}"),
                    "scheduled job failed; retrying at the next tick"
                )
            }
        }
    }
}
