//! `lyceum verify` for workshops: recomputes each workshop's attended count, feedback
//! count and satisfaction from the registrations and feedback, and checks its seats both
//! ways — every registration that holds a seat has a live claim on the workshop's pool,
//! every live claim belongs to such a registration, and the pool's capacity is the
//! workshop's — beside the kit's check that each pool's remainder is its capacity less its
//! live claims.

use async_trait::async_trait;
use lyceum_platform::capacity;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};

use crate::store::statistics;

pub struct WorkshopStatistics;

#[async_trait]
impl Reconciliation for WorkshopStatistics {
    fn name(&self) -> &'static str {
        "learning.workshop_statistics"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("workshop statistics job").await?;
        let rows = statistics::workshop_drift(&mut tx).await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for row in rows {
            let mut note = |what: &str, stored: i64, expected: i64| {
                if stored != expected {
                    drift.push(Drift {
                        subject: format!("workshop {} {what}", row.id),
                        stored: stored.to_string(),
                        expected: expected.to_string(),
                    });
                }
            };
            note("attended_count", row.attended, row.true_attended);
            note("feedback_count", row.feedback, row.true_feedback);
            note(
                "satisfaction_sum",
                row.satisfaction_sum,
                row.true_satisfaction_sum,
            );
            note("seat pool capacity", row.pool_capacity, row.capacity);
            note("seats taken", row.claims, row.holding);
            note(
                "registrations holding a seat without a claim",
                row.unclaimed,
                0,
            );
            note(
                "claims without a registration holding the seat",
                row.orphaned,
                0,
            );
        }
        drift.extend(capacity::drift(db).await?);
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("workshop statistics job").await?;
        let repaired = statistics::repair_workshops(&mut tx).await?;
        tx.commit().await?;
        Ok(repaired)
    }
}
