//! Builds every service's schema in one database, as `lyceum migrate all` does, without
//! compiling any crate whose queries are checked: the first step of
//! `scripts/sqlx-data.sh`.
//!
//! `cargo run -p lyceum-schema --example migrate -- postgres://postgres@127.0.0.1/lyceum_sqlx`

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let Some(admin_url) = std::env::args().nth(1) else {
        anyhow::bail!("usage: migrate <admin database URL>");
    };
    for schema in lyceum_schema::ALL {
        lyceum_schema::migrate_service(&admin_url, &schema).await?;
    }
    Ok(())
}
