//! `lyceum verify` for instructor revenue: each payment's refunded amount and refunded
//! fee against its refund rows, and each booked refund against its refund row.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};
use uuid::Uuid;

pub struct PaymentTotals;

const DRIFT: &str = "
    SELECT p.id, p.refunded_minor, coalesce(r.total, 0)::bigint, p.fee_refunded_minor, coalesce(r.fees, 0)::bigint
    FROM payments p
    LEFT JOIN (SELECT payment_id, sum(amount_minor) AS total, sum(fee_minor) AS fees FROM payment_refunds
               GROUP BY payment_id) r ON r.payment_id = p.id
    WHERE p.refunded_minor <> coalesce(r.total, 0)
       OR p.fee_refunded_minor <> coalesce(r.fees, 0)";

/// Refund transactions that do not reverse exactly their refund.
const BOOKED_DRIFT: &str = "
    SELECT t.id, -t.amount_minor, r.amount_minor, -t.platform_fee_minor, r.fee_minor
    FROM revenue_transactions t JOIN payment_refunds r ON r.id = t.refund_id
    WHERE -t.amount_minor <> r.amount_minor OR -t.platform_fee_minor <> r.fee_minor";

#[async_trait]
impl Reconciliation for PaymentTotals {
    fn name(&self) -> &'static str {
        "instructor.payment_totals"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("payment totals job").await?;
        let rows: Vec<(Uuid, i64, i64, i64, i64)> =
            sqlx::query_as(DRIFT).fetch_all(tx.conn()).await?;
        let booked: Vec<(Uuid, i64, i64, i64, i64)> =
            sqlx::query_as(BOOKED_DRIFT).fetch_all(tx.conn()).await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for (id, refunded, true_refunded, fee_refunded, true_fee_refunded) in rows {
            if refunded != true_refunded {
                drift.push(Drift {
                    subject: format!("payment {id} refunded_minor"),
                    stored: refunded.to_string(),
                    expected: true_refunded.to_string(),
                });
            }
            if fee_refunded != true_fee_refunded {
                drift.push(Drift {
                    subject: format!("payment {id} fee_refunded_minor"),
                    stored: fee_refunded.to_string(),
                    expected: true_fee_refunded.to_string(),
                });
            }
        }
        for (id, amount, refund_amount, fee, refund_fee) in booked {
            drift.push(Drift {
                subject: format!("refund transaction {id} (amount, fee)"),
                stored: format!("({amount}, {fee})"),
                expected: format!("({refund_amount}, {refund_fee})"),
            });
        }
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("payment totals job").await?;
        let repaired = sqlx::query(
            "UPDATE payments p SET
               refunded_minor = coalesce((SELECT sum(amount_minor) FROM payment_refunds r WHERE r.payment_id = p.id), 0),
               fee_refunded_minor = coalesce((SELECT sum(fee_minor) FROM payment_refunds r WHERE r.payment_id = p.id), 0)
             WHERE p.refunded_minor <> coalesce((SELECT sum(amount_minor) FROM payment_refunds r WHERE r.payment_id = p.id), 0)
                OR p.fee_refunded_minor <> coalesce((SELECT sum(fee_minor) FROM payment_refunds r
                                                     WHERE r.payment_id = p.id), 0)",
        )
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(repaired)
    }
}
