//! Database access bound to one service's schema and role.
//!
//! Each bounded context owns one PostgreSQL schema. Migrations run as the schema's owner
//! role (`lyceum_<schema>_owner`, which cannot log in); the running service connects as
//! `lyceum_<schema>`, a role that owns nothing, is not a superuser, has no BYPASSRLS and is
//! granted data privileges on its own schema only. Every request runs in a transaction that
//! first sets the caller's tenant context, read by the row-level security policies.
//!
//! Work that no caller's context covers (relays, consumers, jobs, operators' commands,
//! sign-in before anyone is signed in, and named bookkeeping steps) runs as a third role,
//! `lyceum_<schema>_system`: it cannot log in, bypasses row-level security on its own
//! schema only, and is reached only by an explicit `SET LOCAL ROLE` through
//! [`Database::begin_system`] or [`Tx::begin_bookkeeping`]. No value of the tenant context
//! grants what that role has, so a handler that forgets a check still runs under the
//! caller's policies.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::auth::{Principal, PrincipalKind};

use lyceum_schema::system_role_of;
pub use lyceum_schema::{ServiceSchema, describe, migrate_service};

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
        // No ping before each use: it was a round trip more on every statement and
        // transaction (13 % of Enroll's replayed statement at 4 callers). A connection
        // that died (a database restart) fails its next statement instead, and the pool
        // replaces it.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {target}"))
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
    /// The context of an authenticated caller. A service account carries `service` and
    /// one `scope:<scope>` per scope it holds, which policies check with `has_scope()`:
    /// no role of a user's ever reaches the database for it.
    pub fn for_principal(principal: &Principal) -> Self {
        let roles = match principal.kind {
            PrincipalKind::User => principal.roles_in_home_organization(),
            PrincipalKind::Service => std::iter::once(crate::auth::roles::SERVICE.to_owned())
                .chain(
                    principal
                        .scopes
                        .iter()
                        .map(|scope| format!("scope:{scope}")),
                )
                .collect(),
        };
        Self {
            user_id: Some(principal.subject),
            org_id: principal.organization_id,
            roles,
        }
    }

    /// An anonymous caller: sees only what policies make public.
    pub fn anonymous() -> Self {
        Self::default()
    }
}

/// `text` as a PostgreSQL string literal (standard-conforming strings, on since
/// PostgreSQL 9.1: only the quote is special).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A service's pool, bound to its schema and role.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
    service: &'static str,
    /// Wakes this process's outbox relay when a transaction that wrote events commits.
    outbox_written: Arc<Notify>,
    /// Connections of the relay and consumers, apart from the requests' (see
    /// [`Database::with_event_path_pool`]).
    event_path_pool: Option<PgPool>,
}

impl Database {
    pub fn new(pool: PgPool, service: &'static str) -> Self {
        Self {
            pool,
            service,
            outbox_written: Arc::new(Notify::new()),
            event_path_pool: None,
        }
    }

    /// Gives the relay and the consumers connections of their own, so that a burst of
    /// requests holding every connection of the service's pool cannot stall the event path
    /// (nor the event path the requests).
    pub fn with_event_path_pool(mut self, pool: PgPool) -> Self {
        self.event_path_pool = Some(pool);
        self
    }

    /// The database as the relay and the consumers use it: their own pool when there is
    /// one, the same relay wake-ups.
    pub fn for_event_path(&self) -> Database {
        Database {
            pool: self
                .event_path_pool
                .clone()
                .unwrap_or_else(|| self.pool.clone()),
            service: self.service,
            outbox_written: self.outbox_written.clone(),
            event_path_pool: None,
        }
    }

    /// Tells this process's relay that events were committed to the outbox. [`Tx::commit`]
    /// does it for transactions that published; a write that commits events by other means
    /// (a one-statement SQL function) calls it after its commit. Without it the relay finds
    /// them on its next poll.
    pub fn wake_relay(&self) {
        // A stored permit when the relay is busy: it looks again as soon as it is done.
        self.outbox_written.notify_one();
    }

    /// Resolves when [`Database::wake_relay`] was called since the last time.
    pub(crate) async fn relay_woken(&self) {
        self.outbox_written.notified().await;
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
        // One round trip for both steps, as every request's transaction opens with them:
        // the context's values go in as SQL literals (ids are UUIDs; role names are
        // quoted). Role names with a backslash (special if a server does not conform to
        // standard strings) or a NUL (which text cannot hold) take the bound path instead.
        let roles = context.roles.join(",");
        let bound = roles.contains(['\0', '\\']);
        let inner = if bound {
            self.pool.begin().await?
        } else {
            let id = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
            let begin = format!(
                "BEGIN; SELECT set_tenant_context('{}', '{}', {})",
                id(context.user_id),
                id(context.org_id),
                quote_literal(&roles)
            );
            self.pool.begin_with(AssertSqlSafe(begin)).await?
        };
        let mut tx = Tx {
            inner,
            service: self.service,
            published: false,
            relay: self.outbox_written.clone(),
            context: context.clone(),
            bookkeeping: None,
        };
        if bound {
            tx.set_context(context).await?;
        }
        Ok(tx)
    }

    /// Begins a transaction as the service itself, under its system role: for work that
    /// acts for no caller (relays, consumers, jobs, operators' commands) or that must find
    /// a caller before there is one (sign-in). `purpose` names it in traces.
    pub async fn begin_system(&self, purpose: &'static str) -> Result<Tx, sqlx::Error> {
        self.begin_system_with(purpose, "").await
    }

    /// [`Database::begin_system`] for a transaction whose loss in a crash costs nothing
    /// but repeating it (the relay's: what it marks sent is published again, and
    /// de-duplicated): its commit does not wait for the WAL flush.
    pub async fn begin_system_unflushed(&self, purpose: &'static str) -> Result<Tx, sqlx::Error> {
        self.begin_system_with(purpose, "; SET LOCAL synchronous_commit = off")
            .await
    }

    async fn begin_system_with(
        &self,
        purpose: &'static str,
        settings: &'static str,
    ) -> Result<Tx, sqlx::Error> {
        // One round trip for every step, as this opens every batch of the event path:
        // the anonymous context (no caller's identity left from the connection's last
        // transaction) and the system role, both local to the transaction. The role name
        // comes from the service's compile-time name, never from input.
        let begin = format!(
            "BEGIN; SELECT set_tenant_context('', '', ''); SET LOCAL ROLE {}{settings}",
            system_role_of(self.service)
        );
        let tx = Tx {
            inner: self.pool.begin_with(AssertSqlSafe(begin)).await?,
            service: self.service,
            published: false,
            relay: self.outbox_written.clone(),
            context: TenantContext::anonymous(),
            bookkeeping: Some(purpose),
        };
        tracing::trace!(purpose, "bookkeeping as the system role");
        Ok(tx)
    }
}

/// A transaction with its tenant context: the only way services reach their tables, and
/// the only way they publish events ([`Tx::publish`] writes to the outbox in the same
/// transaction, so an event exists exactly when its state change does).
pub struct Tx {
    inner: Transaction<'static, Postgres>,
    service: &'static str,
    /// Set by [`Tx::publish`]: the relay is woken once this commits.
    published: bool,
    relay: Arc<Notify>,
    context: TenantContext,
    /// What the statements since [`Tx::begin_bookkeeping`] do as the system role, if any.
    bookkeeping: Option<&'static str>,
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

    /// Switches the following statements to the service's system role, which no policy
    /// restrains, until [`Tx::end_bookkeeping`]. Only for named bookkeeping that must touch
    /// rows the caller may not (a projection of the caller's own writes, the work of the
    /// event path); never for the caller's own reads and writes.
    pub async fn begin_bookkeeping(&mut self, purpose: &'static str) -> Result<(), sqlx::Error> {
        // The role name comes from the service's compile-time name, never from input.
        let statement = format!("SET LOCAL ROLE {}", system_role_of(self.service));
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut *self.inner)
            .await?;
        tracing::trace!(purpose, "bookkeeping as the system role");
        self.bookkeeping = Some(purpose);
        Ok(())
    }

    /// Returns to the caller's policies after [`Tx::begin_bookkeeping`].
    pub async fn end_bookkeeping(&mut self) -> Result<(), sqlx::Error> {
        if self.bookkeeping.take().is_some() {
            sqlx::raw_sql("SET LOCAL ROLE NONE")
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
    }

    /// Whether statements currently run as the system role, and for what.
    pub fn bookkeeping(&self) -> Option<&'static str> {
        self.bookkeeping
    }

    /// Replaces the tenant context for the rest of the transaction: sign-in continues as
    /// the user it has just authenticated. No context grants more than its own policies.
    pub async fn set_context(&mut self, context: &TenantContext) -> Result<(), sqlx::Error> {
        // The kit's function (platform migration 0004), shared with one-statement writes.
        sqlx::query!(
            "SELECT set_tenant_context($1, $2, $3)",
            context.user_id.map(|id| id.to_string()).unwrap_or_default(),
            context.org_id.map(|id| id.to_string()).unwrap_or_default(),
            context.roles.join(",")
        )
        .execute(&mut *self.inner)
        .await?;
        self.context = context.clone();
        Ok(())
    }

    /// Records an event in the outbox, in this transaction.
    pub async fn publish(&mut self, event: crate::events::Event) -> Result<(), sqlx::Error> {
        let row = event.into_outbox_row(self.service, &self.context);
        // The kit's function (platform migrations 0004, 0006), shared with one-statement
        // writes; the relay is woken once this commits, and not at all on rollback.
        sqlx::query!(
            "SELECT enqueue_event($1, $2, $3)",
            row.id,
            row.subject,
            row.envelope
        )
        .execute(&mut *self.inner)
        .await?;
        self.published = true;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await?;
        if self.published {
            self.relay.notify_one();
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}
