//! `lyceum verify` for assessments: recomputes every assessment's dimension sums and scores
//! from its stored answers, and every organization's monthly rollup from its completed
//! assessments, exactly (decimal text compared); repair rewrites them from those truths.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};

use crate::store::assessments;

pub struct AssessmentScores;

#[async_trait]
impl Reconciliation for AssessmentScores {
    fn name(&self) -> &'static str {
        "learning.assessment_scores"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("assessment scores job").await?;
        let rows = assessments::score_drift(&mut tx).await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|row| Drift {
                subject: row.subject,
                stored: row.stored,
                expected: row.expected,
            })
            .collect())
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("assessment scores job").await?;
        let repaired = assessments::repair_scores(&mut tx).await?;
        tx.commit().await?;
        Ok(repaired)
    }
}
