//! Gives back the seats of paid registrations whose payment did not arrive in time: every
//! `pending_payment` registration whose hold lapsed is cancelled (`hold_expired`), its
//! claim released and its event published, in one transaction per batch. A payment that
//! arrives later is handled by `events::workshop_payments` (a free seat, or a refund).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lyceum_platform::db::Database;
use lyceum_platform::jobs::ScheduledJob;

use crate::domain::workshop::{CancelReason, RegistrationStatus};
use crate::events::workshops::{Move, change_registration};
use crate::store::{registrations, workshops};

pub struct WorkshopHolds;

/// Registrations handled per transaction.
const BATCH: i64 = 200;

#[async_trait]
impl ScheduledJob for WorkshopHolds {
    fn name(&self) -> &'static str {
        "learning.workshop_holds"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    async fn run_once(&self, db: &Database) -> anyhow::Result<u64> {
        expire_holds(db, Utc::now()).await
    }
}

/// Cancels the registrations whose hold lapsed before `now`; returns how many. The time
/// is the caller's, so that tests move it instead of waiting.
pub async fn expire_holds(db: &Database, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = db.begin_system("workshop holds").await?;
        let lapsed = registrations::lock_lapsed(&mut tx, now, BATCH).await?;
        let found = lapsed.len();
        for registration in lapsed {
            let Some(workshop) = workshops::get(&mut tx, registration.workshop_id).await? else {
                continue;
            };
            change_registration(
                &mut tx,
                &registration,
                &workshop,
                RegistrationStatus::Cancelled,
                Move {
                    cancel_reason: Some(CancelReason::HoldExpired),
                    ..Move::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        tx.commit().await?;
        total += found as u64;
        if (found as i64) < BATCH {
            return Ok(total);
        }
    }
}
