//! `lyceum verify` for learning: recomputes each course's enrolled, completed, rating and
//! lesson statistics from the enrollments, reviews and lessons, and repairs drift.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};

use crate::store::statistics;

pub struct CourseStatistics;

#[async_trait]
impl Reconciliation for CourseStatistics {
    fn name(&self) -> &'static str {
        "learning.course_statistics"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("course statistics job").await?;
        let rows = statistics::drift(&mut tx).await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for row in rows {
            let mut note = |what: &str, stored: i64, expected: i64| {
                if stored != expected {
                    drift.push(Drift {
                        subject: format!("course {} {what}", row.id),
                        stored: stored.to_string(),
                        expected: expected.to_string(),
                    });
                }
            };
            note("enrolled_count", row.enrolled, row.true_enrolled);
            note("completed_count", row.completed, row.true_completed);
            note("rating_sum", row.rating_sum, row.true_rating_sum);
            note("review_count", row.reviews, row.true_reviews);
            note("lesson_count", row.lessons.into(), row.true_lessons.into());
        }
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("course statistics job").await?;
        let repaired = statistics::repair(&mut tx).await?;
        tx.commit().await?;
        Ok(repaired)
    }
}
