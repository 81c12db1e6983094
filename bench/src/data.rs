//! Generators that load realistic volumes quickly, with set-based SQL as the superuser
//! (bypassing the API the way a bulk import would).

use std::time::Instant;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Brings the identity schema to `users` users spread over `users / 100` organizations
/// (at least one), counting what is already there. Returns the seconds it took.
pub async fn grow_identity(conn: &mut PgConnection, users: i64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    let existing_users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM identity.users WHERE email LIKE 'bench-%'")
            .fetch_one(&mut *tx)
            .await?;
    let existing_orgs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.organizations WHERE slug LIKE 'bench-org-%'",
    )
    .fetch_one(&mut *tx)
    .await?;
    let target_orgs = (users / 100).max(1);
    sqlx::query(
        "INSERT INTO identity.organizations (id, name, slug)
         SELECT gen_random_uuid(), 'Bench organization ' || g, 'bench-org-' || g
         FROM generate_series($1 + 1, $2) g",
    )
    .bind(existing_orgs)
    .bind(target_orgs)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH orgs AS (SELECT id, row_number() OVER (ORDER BY slug) - 1 AS n, count(*) OVER () AS total
                       FROM identity.organizations WHERE slug LIKE 'bench-org-%')
         INSERT INTO identity.users (id, organization_id, email, full_name, company_name)
         SELECT gen_random_uuid(), orgs.id, 'bench-' || g || '@bench.test', 'Bench User ' || g, 'Bench Inc'
         FROM generate_series($1 + 1, $2) g
         JOIN orgs ON orgs.n = g % orgs.total",
    )
    .bind(existing_users)
    .bind(users.max(existing_users))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE identity.users")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ANALYZE identity.organizations")
        .execute(&mut *conn)
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A sample of bench user ids to read.
pub async fn sample_user_ids(conn: &mut PgConnection, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM identity.users WHERE email LIKE 'bench-%' ORDER BY random() LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Fills the projection schema's outbox with `count` events at once, for the relay's
/// throughput (the envelope is a realistic ~250-byte one).
pub async fn fill_outbox(
    conn: &mut PgConnection,
    schema: &str,
    count: i64,
    envelope: &[u8],
) -> anyhow::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.outbox (id, subject, envelope)
         SELECT gen_random_uuid(), '{schema}.bench.happened', $1 FROM generate_series(1, $2)"
    )))
    .bind(envelope)
    .bind(count)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Brings the number of organizations to at least `target` (bench ones and others).
pub async fn grow_organizations(conn: &mut PgConnection, target: i64) -> anyhow::Result<()> {
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.organizations")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO identity.organizations (id, name, slug)
         SELECT gen_random_uuid(), 'Scaling organization ' || g, 'scale-' || g || '-' || md5(random()::text)
         FROM generate_series(1, $1) g",
    )
    .bind((target - existing).max(0))
    .execute(&mut *conn)
    .await?;
    sqlx::query("ANALYZE identity.organizations")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
