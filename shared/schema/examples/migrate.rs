//! Builds every service's schema in a fresh database, as `lyceum migrate all` does, without
//! compiling any crate whose queries are checked: the first step of
//! `scripts/sqlx-data.sh`. The database is dropped first if it exists, so the check always
//! sees the migrations alone.
//!
//! `cargo run -p lyceum-schema --example migrate -- postgres://postgres@127.0.0.1:5432 lyceum_sqlx_data`

use anyhow::Context as _;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(database)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: migrate <server URL without a database> <database name>");
    };
    anyhow::ensure!(
        !database.is_empty() && database.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "the database name must be lowercase letters and underscores"
    );
    let server = server.trim_end_matches('/');
    let mut maintenance = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {server}"))?;
    // The name was checked above: only lowercase letters and underscores.
    for statement in [
        format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        format!("CREATE DATABASE {database}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut maintenance)
            .await?;
    }
    maintenance.close().await?;
    let admin_url = format!("{server}/{database}");
    for schema in lyceum_schema::ALL {
        lyceum_schema::migrate_service(&admin_url, &schema).await?;
    }
    Ok(())
}
