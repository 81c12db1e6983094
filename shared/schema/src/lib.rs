//! The schemas of the Lyceum services and how they are built: role names, the platform
//! kit's tables and every service's migrations, embedded at compile time.
//!
//! A crate of its own, without a single checked query, so that the database the query
//! macros check against can always be built first, also while a new query has no offline
//! data yet (`scripts/sqlx-data.sh` migrates with `examples/migrate.rs`).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// What the kit needs to know of a service's schema.
#[derive(Clone, Copy)]
pub struct ServiceSchema {
    /// Schema name, also the stem of the role names: `identity`, `learning`, ...
    pub name: &'static str,
    pub migrator: &'static Migrator,
}

impl ServiceSchema {
    pub fn runtime_role(&self) -> String {
        format!("lyceum_{}", self.name)
    }

    pub fn owner_role(&self) -> String {
        format!("lyceum_{}_owner", self.name)
    }

    /// The role the service switches to, explicitly, for work outside any caller's context.
    pub fn system_role(&self) -> String {
        system_role_of(self.name)
    }
}

pub fn system_role_of(service: &str) -> String {
    format!("lyceum_{service}_system")
}

static IDENTITY_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/identity");
static LEARNING_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/learning");
static INSTRUCTOR_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/instructor");

/// Identity and tenancy.
pub const IDENTITY: ServiceSchema = ServiceSchema {
    name: "identity",
    migrator: &IDENTITY_MIGRATIONS,
};

/// Courses, enrollments, progress and reviews.
pub const LEARNING: ServiceSchema = ServiceSchema {
    name: "learning",
    migrator: &LEARNING_MIGRATIONS,
};

/// Instructor revenue, payouts and dashboards.
pub const INSTRUCTOR: ServiceSchema = ServiceSchema {
    name: "instructor",
    migrator: &INSTRUCTOR_MIGRATIONS,
};

/// Every served schema, in the order `lyceum migrate all` builds them.
pub const ALL: [ServiceSchema; 3] = [IDENTITY, LEARNING, INSTRUCTOR];

/// `host:port/database as user`, without the password.
pub fn describe(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// Creates the roles and the schema of a service (if missing), runs its migrations as the
/// owner role and grants the runtime role what it needs. Idempotent and safe to run from
/// several processes at once.
pub async fn migrate_service(admin_url: &str, schema: &ServiceSchema) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(admin_url).context("invalid admin database URL")?;
    let target = describe(&options);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {target}"))?;

    let owner = schema.owner_role();
    let runtime = schema.runtime_role();
    let system = schema.system_role();
    let name = schema.name;
    // Identifiers come from compile-time constants, never from input. The runtime role does
    // not inherit the system role's privileges: it must switch to it by name.
    let provision = format!(
        r#"
        DO $$ BEGIN CREATE ROLE {owner} NOLOGIN;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        DO $$ BEGIN CREATE ROLE {runtime} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        DO $$ BEGIN CREATE ROLE {system} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        ALTER ROLE {runtime} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
        ALTER ROLE {system} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
        GRANT {system} TO {runtime};
        CREATE SCHEMA IF NOT EXISTS {name} AUTHORIZATION {owner};
        GRANT USAGE ON SCHEMA {name} TO {runtime}, {system};
        "#
    );
    // Two migrators racing on CREATE SCHEMA can still collide; a retry sees the winner's work.
    for attempt in 0.. {
        match sqlx::raw_sql(AssertSqlSafe(provision.clone()))
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            Err(error) if attempt < 3 && error.as_database_error().is_some() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error).context("provisioning schema and roles"),
        }
    }

    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET ROLE {owner}; SET search_path TO {name};"
    )))
    .execute(&mut conn)
    .await?;
    kit_migrator()
        .run(&mut conn)
        .await
        .with_context(|| format!("running the platform kit migrations in {name}"))?;
    schema
        .migrator
        .run(&mut conn)
        .await
        .with_context(|| format!("running the {name} migrations"))?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        r#"
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {name} TO {runtime}, {system};
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {name} TO {runtime}, {system};
        REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {name} FROM PUBLIC;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {name} TO {runtime}, {system};
        REVOKE ALL ON TABLE {name}._sqlx_migrations FROM {runtime}, {system};
        REVOKE ALL ON TABLE {name}._lyceum_kit_migrations FROM {runtime}, {system};
        RESET ROLE;
        RESET search_path;
        "#
    )))
    .execute(&mut conn)
    .await
    .context("granting the runtime role its privileges")?;
    conn.close().await?;
    Ok(())
}

static KIT_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/platform");

/// The kit's own tables (outbox, inbox, dead letters), tracked apart from the service's
/// migrations so that both can evolve independently.
fn kit_migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(KIT_MIGRATIONS.migrations.to_vec());
    migrator.dangerous_set_table_name("_lyceum_kit_migrations");
    migrator
}
