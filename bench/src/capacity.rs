//! The kit's capacity primitive under contention for one pool (a workshop's seats), beside
//! the database's limit for the same work: one conditional update of the pool's row.
//!
//! - `conditional update`: `UPDATE ... SET remaining = remaining - 1 WHERE ... AND
//!   remaining >= 1`, one statement per transaction (the reference);
//! - `capacity_claim()`: the kit's SQL function alone, one statement per transaction (the
//!   claim row, its idempotency, then the same update);
//! - `kit claim in a caller's transaction`: what a registration does through
//!   `capacity::claim`, with the caller's context, the switch to the system role and the
//!   commit;
//! - `Register RPC`: `WorkshopService.Register` of fresh users into one published
//!   workshop through gRPC — the workshop's share lock, the registration row under the
//!   caller's policies and column rules, the claim, the event and the commit.

use std::sync::Arc;

use async_trait::async_trait;
use lyceum_platform::auth::with_bearer;
use lyceum_platform::capacity::{self, Claim, PoolKind};
use lyceum_platform::db::{Database, TenantContext};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::workshop_service_client::WorkshopServiceClient;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use tonic::Request;

use crate::learning::Students;
use crate::load::{self, LoadConfig, Measurement, Operation};
use crate::stack::Stack;

const SEATS: PoolKind = PoolKind::new("bench_seats");
/// More seats than any run takes: the measurement is of contention, not of running out.
const PLENTY: i64 = 1_000_000_000;

#[derive(Debug, Serialize)]
pub struct CapacityCell {
    pub callers: usize,
    pub conditional_update: Measurement,
    pub capacity_claim: Measurement,
    pub kit_claim_in_caller_transaction: Measurement,
    pub register_rpc: Measurement,
    pub claim_vs_update: f64,
    pub kit_vs_update: f64,
    pub register_vs_update: f64,
}

struct ConditionalUpdate {
    pool: PgPool,
    pool_id: Uuid,
}

#[async_trait]
impl Operation for ConditionalUpdate {
    async fn call(&self, _worker: usize, _sequence: u64) -> Result<(), String> {
        let taken = sqlx::query(
            "UPDATE capacity_pools SET remaining = remaining - 1, version = version + 1, updated_at = now()
             WHERE id = $1 AND remaining >= 1",
        )
        .bind(self.pool_id)
        .execute(&self.pool)
        .await
        .map_err(|e| format!("sql: {e}"))?
        .rows_affected();
        if taken == 1 {
            Ok(())
        } else {
            Err("exhausted".into())
        }
    }
}

struct ClaimFunction {
    pool: PgPool,
    pool_id: Uuid,
}

#[async_trait]
impl Operation for ClaimFunction {
    async fn call(&self, _worker: usize, _sequence: u64) -> Result<(), String> {
        let outcome: String = sqlx::query_scalar(
            "SELECT outcome FROM capacity_claim($1, gen_random_uuid()::text, gen_random_uuid(), 1, NULL)",
        )
        .bind(self.pool_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| format!("sql: {e}"))?;
        if outcome == "claimed" {
            Ok(())
        } else {
            Err(outcome)
        }
    }
}

struct KitClaim {
    db: Database,
    pool_id: Uuid,
}

#[async_trait]
impl Operation for KitClaim {
    async fn call(&self, _worker: usize, _sequence: u64) -> Result<(), String> {
        let holder = Uuid::now_v7();
        let caller = TenantContext {
            user_id: Some(holder),
            org_id: None,
            roles: vec!["user".into()],
        };
        let mut tx = self
            .db
            .begin(&caller)
            .await
            .map_err(|e| format!("sql: {e}"))?;
        let request = holder.to_string();
        capacity::claim(
            &mut tx,
            Claim {
                pool_id: self.pool_id,
                request_id: &request,
                holder_id: holder,
                amount: 1,
                hold_until: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| format!("sql: {e}"))
    }
}

struct RegisterRpc {
    stack: Arc<Stack>,
    workshop_id: Uuid,
    students: Students,
}

#[async_trait]
impl Operation for RegisterRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let token = self
            .students
            .tokens
            .get(sequence as usize)
            .ok_or("ran out of students")?;
        let mut client = WorkshopServiceClient::new(self.stack.learning_channel(worker));
        let request = with_bearer(
            Request::new(pb::RegisterRequest {
                workshop_id: self.workshop_id.to_string(),
                request_id: format!("bench-{sequence}"),
            }),
            token,
        );
        client
            .register(request)
            .await
            .map(|_| ())
            .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
    }
}

/// The largest workshop: the seats one Register measurement can take.
const WORKSHOP_SEATS: i64 = 100_000;

/// A free published workshop of the largest capacity, with its seat pool, loaded directly.
async fn open_workshop(stack: &Stack) -> anyhow::Result<Uuid> {
    let mut admin = stack.database.admin_connection().await;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO learning.workshops (id, instructor_id, title, pillar, level, format,
             start_time, end_time, time_zone, capacity, status, published_at)
         VALUES ($1, gen_random_uuid(), 'The popular workshop', 'coaching', 'beginner',
                 'online', now() + interval '7 days', now() + interval '8 days', 'UTC', $2,
                 'published', now())",
    )
    .bind(id)
    .bind(WORKSHOP_SEATS as i32)
    .execute(&mut admin)
    .await?;
    sqlx::query(
        "INSERT INTO learning.capacity_pools (id, kind, capacity, remaining)
         VALUES ($1, 'workshop_seats', $2, $2)",
    )
    .bind(id)
    .bind(WORKSHOP_SEATS)
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(id)
}

async fn open_pool(db: &Database) -> anyhow::Result<Uuid> {
    let pool_id = Uuid::now_v7();
    let mut tx = db.begin_system("bench pool").await?;
    capacity::create_pool(&mut tx, pool_id, SEATS, PLENTY).await?;
    tx.commit().await?;
    Ok(pool_id)
}

/// Each caller count with a fresh pool per measurement, so that none inherits another's
/// dead row versions.
pub async fn run(
    stack: &Arc<Stack>,
    callers: &[usize],
    config: LoadConfig,
) -> anyhow::Result<Vec<CapacityCell>> {
    let options: PgConnectOptions = stack.database.url.parse()?;
    // As the schema's superuser sees it (no row-level security), as the system role would.
    let direct = PgPoolOptions::new()
        .max_connections(callers.iter().copied().max().unwrap_or(4) as u32)
        .connect_with(options.options([("search_path", "learning")]))
        .await?;
    println!(
        "| callers | conditional update (ref) | capacity_claim() | kit claim in a caller's transaction | Register RPC | claim / update | kit / update | Register / update |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut cells = Vec::new();
    for &callers in callers {
        let config = LoadConfig {
            concurrency: callers,
            ..config
        };
        let conditional_update = load::run(
            Arc::new(ConditionalUpdate {
                pool: direct.clone(),
                pool_id: open_pool(&stack.learning).await?,
            }),
            config,
        )
        .await;
        let capacity_claim = load::run(
            Arc::new(ClaimFunction {
                pool: direct.clone(),
                pool_id: open_pool(&stack.learning).await?,
            }),
            config,
        )
        .await;
        let kit = load::run(
            Arc::new(KitClaim {
                db: stack.learning.clone(),
                pool_id: open_pool(&stack.learning).await?,
            }),
            config,
        )
        .await;
        // Fresh users for every call, never more than the workshop's seats.
        let calls = (4_000 * (config.duration + config.warmup).as_secs().max(1) as usize)
            .min(WORKSHOP_SEATS as usize);
        let register = load::run(
            Arc::new(RegisterRpc {
                stack: stack.clone(),
                workshop_id: open_workshop(stack).await?,
                students: Students::mint(stack, calls),
            }),
            config,
        )
        .await;
        let ratio = |m: &Measurement| {
            m.throughput_per_sec / conditional_update.throughput_per_sec.max(1e-9)
        };
        let cell = CapacityCell {
            callers,
            claim_vs_update: ratio(&capacity_claim),
            kit_vs_update: ratio(&kit),
            register_vs_update: ratio(&register),
            conditional_update,
            capacity_claim,
            kit_claim_in_caller_transaction: kit,
            register_rpc: register,
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
            cell.callers,
            cell.conditional_update.throughput_per_sec,
            cell.capacity_claim.throughput_per_sec,
            cell.kit_claim_in_caller_transaction.throughput_per_sec,
            cell.register_rpc.throughput_per_sec,
            cell.claim_vs_update,
            cell.kit_vs_update,
            cell.register_vs_update
        );
        println!(
            "  p50 / p99 ms: update {:.2} / {:.2}; kit claim {:.2} / {:.2}; Register {:.2} / {:.2}",
            cell.conditional_update.p50_ms,
            cell.conditional_update.p99_ms,
            cell.kit_claim_in_caller_transaction.p50_ms,
            cell.kit_claim_in_caller_transaction.p99_ms,
            cell.register_rpc.p50_ms,
            cell.register_rpc.p99_ms
        );
        for (name, m) in [
            ("conditional update", &cell.conditional_update),
            ("capacity_claim()", &cell.capacity_claim),
            ("kit claim", &cell.kit_claim_in_caller_transaction),
            ("Register RPC", &cell.register_rpc),
        ] {
            if !m.errors.is_empty() {
                eprintln!("  {name}: errors {:?}", m.errors);
            }
        }
        cells.push(cell);
    }
    direct.close().await;
    Ok(cells)
}
