//! `lyceum verify` for instructor revenue: each payment's refunded amount and refunded
//! fee against its refund rows, and each booked refund against its refund row.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};

use crate::store::statistics;

pub struct PaymentTotals;

#[async_trait]
impl Reconciliation for PaymentTotals {
    fn name(&self) -> &'static str {
        "instructor.payment_totals"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("payment totals job").await?;
        let rows = statistics::payment_drift(&mut tx).await?;
        let booked = statistics::booked_refund_drift(&mut tx).await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for row in rows {
            let id = row.id;
            if row.refunded != row.true_refunded {
                drift.push(Drift {
                    subject: format!("payment {id} refunded_minor"),
                    stored: row.refunded.to_string(),
                    expected: row.true_refunded.to_string(),
                });
            }
            if row.fee_refunded != row.true_fee_refunded {
                drift.push(Drift {
                    subject: format!("payment {id} fee_refunded_minor"),
                    stored: row.fee_refunded.to_string(),
                    expected: row.true_fee_refunded.to_string(),
                });
            }
        }
        for row in booked {
            drift.push(Drift {
                subject: format!("refund transaction {} (amount, fee)", row.id),
                stored: format!("({}, {})", row.amount, row.fee),
                expected: format!("({}, {})", row.refund_amount, row.refund_fee),
            });
        }
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("payment totals job").await?;
        let repaired = statistics::repair_payments(&mut tx).await?;
        tx.commit().await?;
        Ok(repaired)
    }
}
