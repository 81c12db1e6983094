//! Database access bound to one service's schema and role.
//!
//! Each bounded context owns one PostgreSQL schema. Migrations run as the schema's owner
//! role (`lyceum_<schema>_owner`, which cannot log in); the running service connects as
//! `lyceum_<schema>`, a role that owns nothing, is not a superuser, has no BYPASSRLS and is
//! granted data privileges on its own schema only. Every request runs in a transaction that
//! first sets the tenant context read by the row-level security policies.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::auth::Principal;

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
}

/// The connection URL of a service: the explicit one when given, otherwise the shared
/// `DATABASE_URL` with the user replaced by the service's runtime role.
pub fn service_connect_options(
    database_url: &str,
    explicit_service_url: Option<&str>,
    schema: &ServiceSchema,
) -> anyhow::Result<PgConnectOptions> {
    let options = match explicit_service_url {
        Some(url) => PgConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL for the {} service", schema.name))?,
        None => PgConnectOptions::from_str(database_url)
            .context("invalid DATABASE_URL")?
            .username(&schema.runtime_role()),
    };
    Ok(options
        .options([("search_path", schema.name)])
        .application_name(&format!("lyceum-{}", schema.name)))
}

/// Opens the service's pool and checks that the database answers, naming the URL when not.
pub async fn connect_service_pool(
    options: PgConnectOptions,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let target = describe(&options);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {target}"))
}

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
    let name = schema.name;
    // Identifiers come from compile-time constants, never from input.
    let provision = format!(
        r#"
        DO $$ BEGIN CREATE ROLE {owner} NOLOGIN;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        DO $$ BEGIN CREATE ROLE {runtime} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        ALTER ROLE {runtime} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
        CREATE SCHEMA IF NOT EXISTS {name} AUTHORIZATION {owner};
        GRANT USAGE ON SCHEMA {name} TO {runtime};
        "#
    );
    // Two migrators racing on CREATE SCHEMA can still collide; a retry sees the winner's work.
    for attempt in 0.. {
        match sqlx::raw_sql(AssertSqlSafe(provision.clone()))
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            Err(error) if attempt < 3 && crate::error::pg_error_code(&error).is_some() => {
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
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {name} TO {runtime};
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {name} TO {runtime};
        REVOKE ALL ON TABLE {name}._sqlx_migrations FROM {runtime};
        REVOKE ALL ON TABLE {name}._lyceum_kit_migrations FROM {runtime};
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

/// Who is acting, as the row-level security policies see it.
#[derive(Debug, Clone, Default)]
pub struct TenantContext {
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    /// Role names that apply in `org_id` (platform-wide grants and grants in that org).
    pub roles: Vec<String>,
}

impl TenantContext {
    /// The context of an authenticated caller.
    pub fn for_principal(principal: &Principal) -> Self {
        Self {
            user_id: Some(principal.subject),
            org_id: principal.organization_id,
            roles: principal.roles_in_home_organization(),
        }
    }

    /// The service acting on its own behalf (sign-in, event handlers, jobs): the policies'
    /// equivalent of Supabase's service role. Only code paths that authenticate by other
    /// means may use it.
    pub fn system() -> Self {
        Self {
            user_id: None,
            org_id: None,
            roles: vec!["system".to_owned()],
        }
    }

    /// An anonymous caller: sees only what policies make public.
    pub fn anonymous() -> Self {
        Self::default()
    }
}

/// A service's pool, bound to its schema and role.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
    service: &'static str,
}

impl Database {
    pub fn new(pool: PgPool, service: &'static str) -> Self {
        Self { pool, service }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The service name, which is also its schema name and event subject stem.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Begins a transaction and sets the tenant context for its duration only
    /// (`set_config(..., true)`), so a pooled connection never carries one caller's
    /// identity into another's transaction.
    pub async fn begin(&self, context: &TenantContext) -> Result<Tx, sqlx::Error> {
        let mut tx = Tx {
            inner: self.pool.begin().await?,
            service: self.service,
            context: TenantContext::default(),
            notify_relay: false,
        };
        tx.set_context(context).await?;
        Ok(tx)
    }
}

/// A transaction with its tenant context: the only way services reach their tables, and
/// the only way they publish events ([`Tx::publish`] writes to the outbox in the same
/// transaction, so an event exists exactly when its state change does).
pub struct Tx {
    inner: Transaction<'static, Postgres>,
    service: &'static str,
    context: TenantContext,
    notify_relay: bool,
}

impl Tx {
    /// The connection, for queries.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.inner
    }

    pub fn context(&self) -> &TenantContext {
        &self.context
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Replaces the tenant context for the rest of the transaction. Used after the
    /// caller's own writes have passed the policies, for bookkeeping rows the caller could
    /// not write directly (the credentials and default grants of a user an org admin
    /// creates).
    pub async fn set_context(&mut self, context: &TenantContext) -> Result<(), sqlx::Error> {
        sqlx::query(
            "SELECT set_config('lyceum.user_id', $1, true),
                    set_config('lyceum.org_id', $2, true),
                    set_config('lyceum.roles', $3, true)",
        )
        .bind(context.user_id.map(|id| id.to_string()).unwrap_or_default())
        .bind(context.org_id.map(|id| id.to_string()).unwrap_or_default())
        .bind(context.roles.join(","))
        .execute(&mut *self.inner)
        .await?;
        self.context = context.clone();
        Ok(())
    }

    /// Records an event in the outbox, in this transaction.
    pub async fn publish(&mut self, event: crate::events::Event) -> Result<(), sqlx::Error> {
        let (id, subject, envelope) = event.into_outbox_row(self.service, &self.context);
        sqlx::query("INSERT INTO outbox (id, subject, envelope) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(subject)
            .bind(envelope)
            .execute(&mut *self.inner)
            .await?;
        if !self.notify_relay {
            // Delivered at commit, and not at all on rollback.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(crate::events::outbox_channel(self.service))
                .execute(&mut *self.inner)
                .await?;
            self.notify_relay = true;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}
