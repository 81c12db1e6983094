//! The kit's capacity primitive under contention, against the real database: never
//! more taken than there is, every request taken at most once, every claim given back at
//! most once, and the remainder always equal to the capacity less the live claims.

use std::sync::Arc;

use chrono::{Duration, Utc};
use lyceum_platform::capacity::{
    self, CapacityError, Claim, ClaimOutcome, PoolKind, ReleaseOutcome,
};
use lyceum_platform::db::{Database, TenantContext};
use lyceum_testkit::TestDatabase;
use uuid::Uuid;

const SEATS: PoolKind = PoolKind::new("test_seats");

/// A service database (learning's schema carries the kit's tables like every service's)
/// and a caller's context: the primitive works inside an ordinary caller's transaction.
async fn setup() -> (TestDatabase, Database, TenantContext) {
    let test_db = TestDatabase::create().await;
    test_db.migrate(&lyceum_learning::SCHEMA).await;
    let db = test_db.service_database(&lyceum_learning::SCHEMA).await;
    let caller = TenantContext {
        user_id: Some(Uuid::now_v7()),
        org_id: None,
        roles: vec!["user".into()],
    };
    (test_db, db, caller)
}

async fn open_pool(db: &Database, caller: &TenantContext, seats: i64) -> Uuid {
    let pool_id = Uuid::now_v7();
    let mut tx = db.begin(caller).await.unwrap();
    capacity::create_pool(&mut tx, pool_id, SEATS, seats)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool_id
}

async fn take(
    db: &Database,
    caller: &TenantContext,
    pool_id: Uuid,
    request: &str,
    holder: Uuid,
) -> Result<ClaimOutcome, CapacityError> {
    let mut tx = db.begin(caller).await?;
    let outcome = capacity::claim(
        &mut tx,
        Claim {
            pool_id,
            request_id: request,
            holder_id: holder,
            amount: 1,
            hold_until: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

async fn give_back(db: &Database, caller: &TenantContext, pool_id: Uuid, holder: Uuid) -> bool {
    let mut tx = db.begin(caller).await.unwrap();
    let outcome = capacity::release(&mut tx, pool_id, holder, "cancelled")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    matches!(outcome, ReleaseOutcome::Released(_))
}

async fn remaining(db: &Database, pool_id: Uuid) -> i64 {
    let mut tx = db.begin_system("test").await.unwrap();
    let pool = capacity::pool(&mut tx, pool_id).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    pool.remaining
}

async fn live_claims(db: &Database, pool_id: Uuid) -> i64 {
    let mut tx = db.begin_system("test").await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM capacity_claims WHERE pool_id = $1 AND released_at IS NULL",
    )
    .bind(pool_id)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    n
}

#[tokio::test]
async fn five_hundred_concurrent_callers_take_exactly_twenty_seats() {
    let (_test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 20).await;
    let db = Arc::new(db);
    let mut tasks = Vec::new();
    for i in 0..500 {
        let (db, caller) = (db.clone(), caller.clone());
        tasks.push(tokio::spawn(async move {
            take(
                &db,
                &caller,
                pool_id,
                &format!("request-{i}"),
                Uuid::now_v7(),
            )
            .await
        }));
    }
    let (mut claimed, mut exhausted) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(ClaimOutcome::Claimed(_)) => claimed += 1,
            Err(CapacityError::Exhausted { remaining: 0 }) => exhausted += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((claimed, exhausted), (20, 480));
    assert_eq!(remaining(&db, pool_id).await, 0);
    assert_eq!(live_claims(&db, pool_id).await, 20);
    assert!(capacity::drift(&db).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_request_retried_concurrently_takes_one_seat() {
    let (_test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 5).await;
    let holder = Uuid::now_v7();
    let db = Arc::new(db);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (db, caller) = (db.clone(), caller.clone());
        tasks.push(tokio::spawn(async move {
            take(&db, &caller, pool_id, "the-same-request", holder).await
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(ClaimOutcome::Claimed(_)) => claimed += 1,
            Ok(ClaimOutcome::Replayed(state)) => assert_eq!(state.remaining, 4),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
    assert_eq!(remaining(&db, pool_id).await, 4);
    // The same id with another holder is a client bug, not a retry.
    assert!(matches!(
        take(&db, &caller, pool_id, "the-same-request", Uuid::now_v7()).await,
        Err(CapacityError::RequestReused)
    ));
    // A holder with a live claim cannot take a second one under a new request id.
    assert!(matches!(
        take(&db, &caller, pool_id, "another-request", holder).await,
        Err(CapacityError::AlreadyHeld)
    ));
}

#[tokio::test]
async fn concurrent_takes_cancels_and_retakes_never_drift_and_a_double_cancel_returns_one_seat() {
    let (_test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 20).await;
    let db = Arc::new(db);
    let holders: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    let mut tasks = Vec::new();
    for (i, holder) in holders.iter().copied().enumerate() {
        let (db, caller) = (db.clone(), caller.clone());
        tasks.push(tokio::spawn(async move {
            // Take, cancel twice at once, take again under a new request id.
            if take(&db, &caller, pool_id, &format!("{i}-first"), holder)
                .await
                .is_err()
            {
                return 0;
            }
            let (a, b) = tokio::join!(
                give_back(&db, &caller, pool_id, holder),
                give_back(&db, &caller, pool_id, holder)
            );
            assert!(
                a ^ b,
                "exactly one of two concurrent cancels gives the seat back"
            );
            i32::from(
                take(&db, &caller, pool_id, &format!("{i}-again"), holder)
                    .await
                    .is_ok(),
            )
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let left = remaining(&db, pool_id).await;
    assert!((0..=20).contains(&left));
    assert_eq!(left, 20 - live_claims(&db, pool_id).await);
    assert!(capacity::drift(&db).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_database_keeps_the_remainder_within_bounds() {
    let (test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 3).await;
    let mut admin = test_db.admin_connection().await;
    for value in ["-1", "4"] {
        let error = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "UPDATE learning.capacity_pools SET remaining = {value} WHERE id = '{pool_id}'"
        )))
        .execute(&mut admin)
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("capacity_pools_remaining_within_bounds"),
            "{error}"
        );
    }
    // A caller's context cannot reach the tables except through the kit's functions.
    let mut tx = db.begin(&caller).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM capacity_pools")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(seen, 0);
    tx.rollback().await.unwrap();
    // Shrinking below what is taken is refused; growing keeps what is taken.
    take(&db, &caller, pool_id, "r1", Uuid::now_v7())
        .await
        .unwrap();
    take(&db, &caller, pool_id, "r2", Uuid::now_v7())
        .await
        .unwrap();
    let mut tx = db.begin(&caller).await.unwrap();
    assert!(matches!(
        capacity::resize(&mut tx, pool_id, 1).await,
        Err(CapacityError::BelowTaken { taken: 2 })
    ));
    tx.rollback().await.unwrap();
    let mut tx = db.begin(&caller).await.unwrap();
    let grown = capacity::resize(&mut tx, pool_id, 10).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(grown.remaining, 8);
    // Bad input never reaches the database.
    let mut tx = db.begin(&caller).await.unwrap();
    let bad = Claim {
        pool_id,
        request_id: "r3",
        holder_id: Uuid::now_v7(),
        amount: 0,
        hold_until: None,
    };
    assert!(matches!(
        capacity::claim(&mut tx, bad).await,
        Err(CapacityError::Invalid(_))
    ));
    assert!(matches!(
        capacity::create_pool(&mut tx, Uuid::now_v7(), SEATS, -1).await,
        Err(CapacityError::Invalid(_))
    ));
    let missing = Claim {
        pool_id: Uuid::now_v7(),
        request_id: "r4",
        holder_id: Uuid::now_v7(),
        amount: 1,
        hold_until: None,
    };
    assert!(matches!(
        capacity::claim(&mut tx, missing).await,
        Err(CapacityError::NoSuchPool)
    ));
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn lapsed_holds_are_given_back_once_and_confirmed_ones_stay() {
    let (_test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 2).await;
    let (lapsing, confirmed) = (Uuid::now_v7(), Uuid::now_v7());
    let mut tx = db.begin(&caller).await.unwrap();
    for (request, holder) in [("lapsing", lapsing), ("confirmed", confirmed)] {
        capacity::claim(
            &mut tx,
            Claim {
                pool_id,
                request_id: request,
                holder_id: holder,
                amount: 1,
                hold_until: Some(Utc::now() + Duration::minutes(15)),
            },
        )
        .await
        .unwrap();
    }
    assert!(
        capacity::confirm(&mut tx, pool_id, confirmed)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(remaining(&db, pool_id).await, 0);

    // Two expiry jobs at once, after the hold lapsed: one seat comes back, once.
    let later = Utc::now() + Duration::minutes(16);
    let run = |db: Database| async move {
        let mut tx = db.begin_system("test").await.unwrap();
        let released = capacity::release_expired(&mut tx, later, 100)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        released.len()
    };
    let (a, b) = tokio::join!(run(db.clone()), run(db.clone()));
    assert_eq!(a + b, 1);
    assert_eq!(remaining(&db, pool_id).await, 1);
    // The lapsed holder's late confirmation finds nothing to confirm.
    let mut tx = db.begin(&caller).await.unwrap();
    assert!(!capacity::confirm(&mut tx, pool_id, lapsing).await.unwrap());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn deleting_a_pool_deletes_its_claims_and_a_claim_on_a_missing_pool_writes_nothing() {
    let (test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 3).await;
    for _ in 0..2 {
        take(
            &db,
            &caller,
            pool_id,
            &Uuid::now_v7().to_string(),
            Uuid::now_v7(),
        )
        .await
        .unwrap();
    }
    let mut admin = test_db.admin_connection().await;
    assert_eq!(claims_of(&mut admin, pool_id).await, 2);
    sqlx::query("DELETE FROM learning.capacity_pools WHERE id = $1")
        .bind(pool_id)
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(claims_of(&mut admin, pool_id).await, 0);

    // Without the foreign key, the function itself refuses a pool that does not exist.
    let missing = Uuid::now_v7();
    let outcome = take(&db, &caller, missing, "request", Uuid::now_v7()).await;
    assert!(
        !matches!(outcome, Ok(ClaimOutcome::Claimed(_))),
        "{outcome:?}"
    );
    assert_eq!(claims_of(&mut admin, missing).await, 0);
}

/// Every claim row of the pool, live or given back.
async fn claims_of(admin: &mut sqlx::PgConnection, pool_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM learning.capacity_claims WHERE pool_id = $1")
        .bind(pool_id)
        .fetch_one(admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_claim_is_bookkeeping_for_its_own_statement_only() {
    let (_test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 2).await;
    let mut tx = db.begin(&caller).await.unwrap();
    let holder = Uuid::now_v7();
    capacity::claim(
        &mut tx,
        Claim {
            pool_id,
            request_id: "only-this-statement",
            holder_id: holder,
            amount: 1,
            hold_until: None,
        },
    )
    .await
    .unwrap();
    // The caller's transaction goes on as the caller: its role, and no sight of the
    // pools, which only the system role reads.
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(role, "lyceum_learning");
    let pools_seen: i64 = sqlx::query_scalar("SELECT count(*) FROM capacity_pools")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(pools_seen, 0);
    tx.commit().await.unwrap();
    assert_eq!(remaining(&db, pool_id).await, 1);
}

#[tokio::test]
async fn verify_reports_a_pool_whose_remainder_drifted_from_its_claims() {
    let (test_db, db, caller) = setup().await;
    let pool_id = open_pool(&db, &caller, 5).await;
    assert!(matches!(
        take(&db, &caller, pool_id, "first", Uuid::now_v7()).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
    // A write outside the primitive (an operator's hand edit) loses one seat.
    let mut admin = test_db.admin_connection().await;
    sqlx::query("UPDATE learning.capacity_pools SET remaining = remaining - 1 WHERE id = $1")
        .bind(pool_id)
        .execute(&mut admin)
        .await
        .unwrap();
    let drift = capacity::drift(&db).await.unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(
        drift[0].subject,
        format!("test_seats pool {pool_id} remaining")
    );
    assert_eq!(
        (drift[0].stored.as_str(), drift[0].expected.as_str()),
        ("3", "4")
    );
}
