//! `lyceum verify` for instructor profiles' statistics: distinct students, published
//! courses, workshops ever published and ratings recomputed from the projections they are
//! kept from.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};

use crate::store::statistics;

pub struct InstructorStats;

#[async_trait]
impl Reconciliation for InstructorStats {
    fn name(&self) -> &'static str {
        "instructor.profile_statistics"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("instructor stats job").await?;
        let rows = statistics::instructor_stats_drift(&mut tx).await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for row in rows {
            for (what, stored, expected) in [
                ("total_students", row.students, row.true_students),
                ("total_courses", row.courses, row.true_courses),
                ("total_workshops", row.workshops, row.true_workshops),
                ("rating_sum", row.rating_sum, row.true_rating_sum),
                ("review_count", row.reviews, row.true_reviews),
            ] {
                if stored != expected {
                    drift.push(Drift {
                        subject: format!("instructor {} {what}", row.instructor_id),
                        stored: stored.to_string(),
                        expected: expected.to_string(),
                    });
                }
            }
        }
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("instructor stats job").await?;
        let repaired = statistics::repair_instructor_stats(&mut tx).await?;
        tx.commit().await?;
        Ok(repaired)
    }
}
