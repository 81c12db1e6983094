//! Reconciliation of derived statistics (`lyceum verify`): each service plugs in checks
//! that recompute a statistic from its source, report where the stored value drifted,
//! and repair it on request — the seeds' "rebuild stats" queries, made routine.

use async_trait::async_trait;

use crate::db::Database;

/// One stored value that differs from its recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// What drifted, e.g. `course 0191… enrolled_count`.
    pub subject: String,
    pub stored: String,
    pub expected: String,
}

#[async_trait]
pub trait Reconciliation: Send + Sync + 'static {
    /// e.g. `learning.course_statistics`.
    fn name(&self) -> &'static str;
    /// Recomputes from the source and lists every difference.
    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>>;
    /// Writes the recomputed values; returns how many were corrected.
    async fn repair(&self, db: &Database) -> anyhow::Result<u64>;
}

/// What one check found (and, when asked, repaired).
#[derive(Debug)]
pub struct CheckReport {
    pub name: &'static str,
    pub drift: Vec<Drift>,
    pub repaired: Option<u64>,
}

/// Runs every check; with `repair`, repairs those that drifted and checks them again.
pub async fn run(
    db: &Database,
    checks: &[Box<dyn Reconciliation>],
    repair: bool,
) -> anyhow::Result<Vec<CheckReport>> {
    let mut reports = Vec::with_capacity(checks.len());
    for check in checks {
        let drift = check.check(db).await?;
        let repaired = if repair && !drift.is_empty() {
            let fixed = check.repair(db).await?;
            let remaining = check.check(db).await?;
            anyhow::ensure!(
                remaining.is_empty(),
                "{} still drifts after repair: {:?}",
                check.name(),
                remaining.first()
            );
            Some(fixed)
        } else {
            None
        };
        reports.push(CheckReport {
            name: check.name(),
            drift,
            repaired,
        });
    }
    Ok(reports)
}
