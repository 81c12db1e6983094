//! Capacity: seats, caps, hour budgets and credits as one primitive.
//!
//! A pool (one per workshop, cohort, engagement, ...) has a capacity and a remainder that
//! the database keeps between 0 and the capacity (a CHECK). Taking from it is a
//! conditional update in the caller's transaction, keyed by the caller's request id so
//! that a retried request takes nothing twice; giving back is keyed by the holder (the
//! registration, the booking) and happens at most once, because a holder has at most one
//! live claim per pool. A claim may be provisional (`hold_until`, e.g. while a payment is
//! pending): [`release_expired`] gives such holds back when they lapse, and [`confirm`]
//! makes one permanent.
//!
//! The pool's row is the hot spot under contention: [`claim`] updates it as its last
//! statement, so call it as late as possible before the commit, after the caller's other
//! writes, to hold that row's lock for the shortest time.
//!
//! The tables are the service's bookkeeping: every function here switches the
//! transaction to the service's system role for its own statements and back.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Database, Tx};
use crate::verify::Drift;

/// What a pool counts, e.g. `workshop_seats`: lower-case letters, digits and `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolKind(&'static str);

impl PoolKind {
    /// Panics on a name that does not fit the database's CHECK: kinds are constants.
    pub const fn new(name: &'static str) -> Self {
        let bytes = name.as_bytes();
        assert!(!bytes.is_empty() && bytes.len() <= 63, "pool kind length");
        assert!(
            bytes[0].is_ascii_lowercase(),
            "pool kind starts with a letter"
        );
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
                "pool kind characters"
            );
            i += 1;
        }
        Self(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// A pool's state after a change, with the version that orders its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub remaining: i64,
    pub version: i64,
}

/// A request to take `amount` from a pool.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub pool_id: Uuid,
    /// The caller's idempotency key (1–200 characters).
    pub request_id: &'a str,
    pub holder_id: Uuid,
    pub amount: i64,
    /// A provisional claim lapses at this time unless confirmed.
    pub hold_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Taken now.
    Claimed(Remaining),
    /// This request took it before; nothing changed.
    Replayed(Remaining),
    /// This request took it before and it was given back since; nothing changed.
    ReleasedEarlier(Remaining),
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("not enough capacity left ({remaining} remaining)")]
    Exhausted { remaining: i64 },
    #[error("the holder already has a claim on this pool")]
    AlreadyHeld,
    #[error("the request id was used with another holder or amount")]
    RequestReused,
    #[error("no such capacity pool")]
    NoSuchPool,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the capacity is below what is already taken ({taken})")]
    BelowTaken { taken: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<CapacityError> for crate::ApiError {
    fn from(error: CapacityError) -> Self {
        use crate::ApiError;
        match error {
            CapacityError::Exhausted { .. } => ApiError::FailedPrecondition(error.to_string()),
            CapacityError::AlreadyHeld => ApiError::FailedPrecondition(error.to_string()),
            CapacityError::RequestReused => ApiError::invalid("request_id", error.to_string()),
            CapacityError::NoSuchPool => ApiError::not_found("capacity pool"),
            CapacityError::Invalid(message) => ApiError::FailedPrecondition(message.into()),
            CapacityError::BelowTaken { .. } => ApiError::FailedPrecondition(error.to_string()),
            CapacityError::Database(e) => ApiError::from(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released(Remaining),
    /// The holder had no live claim: never taken, or given back already.
    NotHeld,
}

/// Runs `work` as the service's bookkeeping and returns to the caller's state after.
async fn as_bookkeeping<T, F>(tx: &mut Tx, work: F) -> Result<T, sqlx::Error>
where
    F: AsyncFnOnce(&mut Tx) -> Result<T, sqlx::Error>,
{
    let nested = tx.bookkeeping().is_some();
    if !nested {
        tx.begin_bookkeeping("capacity").await?;
    }
    let outcome = work(tx).await;
    if !nested && outcome.is_ok() {
        tx.end_bookkeeping().await?;
    }
    outcome
}

/// Opens a pool with all of its capacity remaining.
pub async fn create_pool(
    tx: &mut Tx,
    pool_id: Uuid,
    kind: PoolKind,
    capacity: i64,
) -> Result<(), CapacityError> {
    if capacity < 0 {
        return Err(CapacityError::Invalid("a capacity cannot be negative"));
    }
    as_bookkeeping(tx, async |tx| {
        sqlx::query!(
            "INSERT INTO capacity_pools (id, kind, capacity, remaining) VALUES ($1, $2, $3, $3)",
            pool_id,
            kind.as_str(),
            capacity
        )
        .execute(tx.conn())
        .await
        .map(|_| ())
    })
    .await?;
    Ok(())
}

/// Changes a pool's capacity, keeping what is taken: refused below that.
pub async fn resize(tx: &mut Tx, pool_id: Uuid, capacity: i64) -> Result<Remaining, CapacityError> {
    if capacity < 0 {
        return Err(CapacityError::Invalid("a capacity cannot be negative"));
    }
    let row = as_bookkeeping(tx, async |tx| {
        sqlx::query_as!(
            Remaining,
            "WITH old AS (SELECT capacity - remaining AS taken FROM capacity_pools WHERE id = $1 FOR UPDATE)
             UPDATE capacity_pools p SET capacity = $2, remaining = $2 - old.taken,
                    version = p.version + 1, updated_at = now()
             FROM old WHERE p.id = $1 AND $2 >= old.taken
             RETURNING p.remaining, p.version",
            pool_id,
            capacity
        )
        .fetch_optional(tx.conn())
        .await
    })
    .await?;
    match row {
        Some(remaining) => Ok(remaining),
        None => match pool(tx, pool_id).await? {
            None => Err(CapacityError::NoSuchPool),
            Some(p) => Err(CapacityError::BelowTaken {
                taken: p.capacity - p.remaining,
            }),
        },
    }
}

/// Takes `claim.amount` from the pool, once per request id.
pub async fn claim(tx: &mut Tx, claim: Claim<'_>) -> Result<ClaimOutcome, CapacityError> {
    if claim.amount <= 0 {
        return Err(CapacityError::Invalid("a claim takes a positive amount"));
    }
    if claim.request_id.is_empty() || claim.request_id.len() > 200 {
        return Err(CapacityError::Invalid(
            "a request id has 1 to 200 characters",
        ));
    }
    // The function is the service's bookkeeping by itself (platform migration 0008): one
    // round trip in the caller's transaction.
    let row = sqlx::query!(
        r#"SELECT outcome AS "outcome!", remaining, version
           FROM capacity_claim($1, $2, $3, $4, $5)"#,
        claim.pool_id,
        claim.request_id,
        claim.holder_id,
        claim.amount,
        claim.hold_until
    )
    .fetch_one(tx.conn())
    .await?;
    let state = Remaining {
        remaining: row.remaining.unwrap_or_default(),
        version: row.version.unwrap_or_default(),
    };
    match row.outcome.as_str() {
        "claimed" => Ok(ClaimOutcome::Claimed(state)),
        "replayed" => Ok(ClaimOutcome::Replayed(state)),
        "released" => Ok(ClaimOutcome::ReleasedEarlier(state)),
        "exhausted" => Err(CapacityError::Exhausted {
            remaining: state.remaining,
        }),
        "held" => Err(CapacityError::AlreadyHeld),
        "conflict" => Err(CapacityError::RequestReused),
        "no_pool" => Err(CapacityError::NoSuchPool),
        other => Err(CapacityError::Database(sqlx::Error::Protocol(format!(
            "unknown capacity outcome {other}"
        )))),
    }
}

/// Gives back the holder's live claim, exactly once.
pub async fn release(
    tx: &mut Tx,
    pool_id: Uuid,
    holder_id: Uuid,
    reason: &'static str,
) -> Result<ReleaseOutcome, CapacityError> {
    // Bookkeeping by itself, as capacity_claim().
    let row = sqlx::query!(
        r#"SELECT outcome AS "outcome!", remaining, version
           FROM capacity_release($1, $2, $3)"#,
        pool_id,
        holder_id,
        reason
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(match row.outcome.as_str() {
        "released" => ReleaseOutcome::Released(Remaining {
            remaining: row.remaining.unwrap_or_default(),
            version: row.version.unwrap_or_default(),
        }),
        _ => ReleaseOutcome::NotHeld,
    })
}

/// Makes the holder's provisional claim permanent (its payment arrived). Returns false
/// when the holder has no live claim: the hold lapsed and was given back.
pub async fn confirm(tx: &mut Tx, pool_id: Uuid, holder_id: Uuid) -> Result<bool, CapacityError> {
    let updated = as_bookkeeping(tx, async |tx| {
        sqlx::query!(
            "UPDATE capacity_claims SET hold_until = NULL
             WHERE pool_id = $1 AND holder_id = $2 AND released_at IS NULL",
            pool_id,
            holder_id
        )
        .execute(tx.conn())
        .await
    })
    .await?;
    Ok(updated.rows_affected() == 1)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pool {
    pub id: Uuid,
    pub kind: String,
    pub capacity: i64,
    pub remaining: i64,
    pub version: i64,
}

pub async fn pool(tx: &mut Tx, pool_id: Uuid) -> Result<Option<Pool>, sqlx::Error> {
    as_bookkeeping(tx, async |tx| {
        sqlx::query_as!(
            Pool,
            "SELECT id, kind, capacity, remaining, version FROM capacity_pools WHERE id = $1",
            pool_id
        )
        .fetch_optional(tx.conn())
        .await
    })
    .await
}

/// A provisional claim that lapsed and was given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapsedHold {
    pub pool_id: Uuid,
    pub holder_id: Uuid,
    pub remaining: Remaining,
}

/// Gives back up to `limit` holds that lapsed before `now`, each exactly once (a hold
/// confirmed or released meanwhile is skipped). Run by the services' hold-expiry jobs,
/// which tell the holders' owners (an event per lapsed hold) in the same transaction.
pub async fn release_expired(
    tx: &mut Tx,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<LapsedHold>, CapacityError> {
    let lapsed = as_bookkeeping(tx, async |tx| {
        sqlx::query!(
            "SELECT pool_id, holder_id FROM capacity_claims
             WHERE released_at IS NULL AND hold_until < $1
             ORDER BY hold_until LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit
        )
        .fetch_all(tx.conn())
        .await
    })
    .await?;
    let mut released = Vec::with_capacity(lapsed.len());
    for lapsed in lapsed {
        let (pool_id, holder_id) = (lapsed.pool_id, lapsed.holder_id);
        if let ReleaseOutcome::Released(remaining) =
            release(tx, pool_id, holder_id, "hold_expired").await?
        {
            released.push(LapsedHold {
                pool_id,
                holder_id,
                remaining,
            });
        }
    }
    Ok(released)
}

/// Pools whose remainder differs from their capacity less their live claims, for
/// `lyceum verify` in every service that uses capacity.
pub async fn drift(db: &Database) -> anyhow::Result<Vec<Drift>> {
    let mut tx = db.begin_system("capacity verify").await?;
    let rows = sqlx::query!(
        r#"SELECT p.id, p.kind, p.remaining,
                  (p.capacity - coalesce(sum(c.amount), 0))::bigint AS "expected!"
           FROM capacity_pools p
           LEFT JOIN capacity_claims c ON c.pool_id = p.id AND c.released_at IS NULL
           GROUP BY p.id
           HAVING p.remaining <> p.capacity - coalesce(sum(c.amount), 0)"#
    )
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| Drift {
            subject: format!("{} pool {} remaining", row.kind, row.id),
            stored: row.remaining.to_string(),
            expected: row.expected.to_string(),
        })
        .collect())
}
