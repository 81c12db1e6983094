//! `Enroll` beside the best way PostgreSQL can do the same work: the two reference designs
//! of the team's baselines (`../shared/baselines`: the seeds' recount triggers, and the
//! same effects at O(1) in one INSERT with trigger bookkeeping) run by this tool, in the
//! same run, on the same database, at the same concurrency, in every cell of
//! {one course, ten courses of one instructor} × {callers} × {existing enrollments}.
//!
//! The replayed-statements baseline (the service's own statements through its store
//! functions) is measured too, labelled as what it is: it shows the cost of gRPC and auth
//! on top of the service's SQL, not what the database can do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use crate::enroll_lag::drain_event_path;
use crate::learning::{EnrollRpc, EnrollSql, Students};
use crate::load::{self, LoadConfig, Measurement, Operation};
use crate::service_process::{CpuPerRequest, CpuTimes};
use crate::stack::Stack;

/// The baselines' one hot instructor and the ids `load.sql` gives its ten courses.
const REFERENCE_COURSES: usize = 10;
fn reference_course(index: usize) -> Uuid {
    Uuid::parse_str(&format!("00000000-0000-0000-0001-{:012}", index + 1)).expect("valid uuid")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// The seeds' recount triggers (reference).
    SeedsRecount,
    /// The same effects at O(1) in one INSERT with trigger bookkeeping (reference).
    OneStatement,
}

impl Design {
    fn schema(self) -> &'static str {
        match self {
            Design::SeedsRecount => "seedstyle",
            Design::OneStatement => "incremental",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub courses: usize,
    pub callers: usize,
    pub existing_enrollments: i64,
    pub seeds_recount: Measurement,
    pub one_statement: Measurement,
    pub enroll_free: Measurement,
    pub enroll_paid: Measurement,
    /// The service's own statements replayed without gRPC: not a reference design.
    pub replayed_statements: Measurement,
    pub free_vs_one_statement: f64,
    pub paid_vs_one_statement: f64,
    /// CPU per enrollment of each process, Enroll (free) and the O(1) reference (whose
    /// service is PostgreSQL alone); warm-up and the event path's catching up included,
    /// divided by all calls made.
    pub enroll_free_cpu_ms: CpuPerRequest,
    pub one_statement_cpu_ms: CpuPerRequest,
}

pub struct MatrixSettings {
    pub baselines: PathBuf,
    pub sizes: Vec<i64>,
    pub callers: Vec<usize>,
    pub spreads: Vec<usize>,
    pub config: LoadConfig,
}

/// The reference SQL, read from the handbook folder so that there is one copy of it.
struct Baselines {
    seedstyle: String,
    incremental: String,
    load: String,
}

impl Baselines {
    fn read(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| {
                format!("reading {} (see --baselines-dir)", dir.join(name).display())
            })
        };
        Ok(Self {
            seedstyle: read("seedstyle.sql")?,
            incremental: read("incremental.sql")?,
            load: read("load.sql")?,
        })
    }

    fn schema_sql(&self, design: Design) -> &str {
        match design {
            Design::SeedsRecount => &self.seedstyle,
            Design::OneStatement => &self.incremental,
        }
    }

    /// `load.sql` with its psql variables filled in.
    fn load_sql(&self, design: Design, existing: i64) -> String {
        self.load
            .replace(
                "SET search_path = :schema;",
                &format!("SET search_path = {};", design.schema()),
            )
            .replace(
                "generate_series(1, :n)",
                &format!("generate_series(1, {existing})"),
            )
    }
}

/// Recreates a reference design's schema with `existing` enrollments, as `run.sh` does.
async fn load_reference(
    admin: &mut PgConnection,
    baselines: &Baselines,
    design: Design,
    existing: i64,
) -> anyhow::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(baselines.schema_sql(design).to_owned()))
        .execute(&mut *admin)
        .await
        .with_context(|| format!("creating the {} reference schema", design.schema()))?;
    sqlx::raw_sql(AssertSqlSafe(baselines.load_sql(design, existing)))
        .execute(&mut *admin)
        .await
        .with_context(|| format!("loading the {} reference schema", design.schema()))?;
    sqlx::raw_sql("RESET search_path; CHECKPOINT")
        .execute(&mut *admin)
        .await?;
    Ok(())
}

/// One enrollment per transaction into one of the first `courses` reference courses: the
/// statement of `enroll.pgbench`.
struct ReferenceEnroll {
    pool: PgPool,
    courses: usize,
}

#[async_trait]
impl Operation for ReferenceEnroll {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let course = reference_course((worker + sequence as usize) % self.courses);
        sqlx::query(
            "INSERT INTO course_enrollments (course_id, user_id, price_paid)
             VALUES ($1, gen_random_uuid(), 4999)",
        )
        .bind(course)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| format!("sql: {e}"))
    }
}

async fn reference_pool(url: &str, design: Design, callers: usize) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(callers as u32)
        .min_connections(callers as u32)
        .connect_with(options.options([("search_path", design.schema())]))
        .await?)
}

/// One instructor with ten free and ten paid published courses in learning.
async fn lyceum_courses(admin: &mut PgConnection) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    let instructor = Uuid::now_v7();
    let mut make = async |price: i64| -> anyhow::Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO learning.courses (id, instructor_id, title, status, published_at, lesson_count, price_minor)
             SELECT gen_random_uuid(), $1, 'Matrix course ' || g, 'published', now(), 10, $2
             FROM generate_series(1, $3) g RETURNING id",
        )
        .bind(instructor)
        .bind(price)
        .bind(REFERENCE_COURSES as i64)
        .fetch_all(&mut *admin)
        .await?)
    };
    let free = make(0).await?;
    let paid = make(4999).await?;
    Ok((free, paid))
}

/// Brings learning to at least `target` enrollments spread over `courses` (set-based, with
/// their progress rows and counts), then lets the load settle.
async fn grow_lyceum(
    admin: &mut PgConnection,
    courses: &[Uuid],
    target: i64,
) -> anyhow::Result<()> {
    let existing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM learning.enrollments WHERE course_id = ANY($1)")
            .bind(courses)
            .fetch_one(&mut *admin)
            .await?;
    let missing = (target - existing).max(0);
    if missing > 0 {
        sqlx::query(
            "WITH picked AS (
               SELECT ($1::uuid[])[1 + g % cardinality($1::uuid[])] AS course_id FROM generate_series(1, $2) g),
             new AS (
               INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, status, activated_at)
               SELECT gen_random_uuid(), c.id, gen_random_uuid(), c.instructor_id, 'active', now()
               FROM picked p JOIN learning.courses c ON c.id = p.course_id
               RETURNING id, course_id, student_id, instructor_id)
             INSERT INTO learning.student_progress (enrollment_id, course_id, student_id, instructor_id, total_lessons)
             SELECT id, course_id, student_id, instructor_id, 10 FROM new",
        )
        .bind(courses)
        .bind(missing)
        .execute(&mut *admin)
        .await?;
        sqlx::query(
            "UPDATE learning.courses c SET enrolled_count = (SELECT count(*) FROM learning.enrollments e
                 WHERE e.course_id = c.id AND e.status IN ('active', 'completed'))
                 - (SELECT coalesce(sum(s.enrolled_count), 0)::bigint FROM learning.course_count_slots s
                    WHERE s.course_id = c.id)
             WHERE c.id = ANY($1)",
        )
        .bind(courses)
        .execute(&mut *admin)
        .await?;
    }
    for table in [
        "learning.enrollments",
        "learning.student_progress",
        "learning.courses",
    ] {
        sqlx::query(AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&mut *admin)
            .await?;
    }
    sqlx::query("CHECKPOINT").execute(&mut *admin).await?;
    Ok(())
}

fn ratio(a: &Measurement, b: &Measurement) -> f64 {
    a.throughput_per_sec / b.throughput_per_sec.max(1e-9)
}

/// Runs every cell and prints one table row per cell.
pub async fn run(
    stack: &Arc<Stack>,
    admin: &mut PgConnection,
    settings: &MatrixSettings,
) -> anyhow::Result<Vec<Cell>> {
    let baselines = Baselines::read(&settings.baselines)?;
    let (free, paid) = lyceum_courses(admin).await?;
    let mut sizes = settings.sizes.clone();
    sizes.sort_unstable();
    let calls_per_run = |callers: usize| {
        // Fresh students for every call: generous for ~2,500 calls/s at the given length.
        let secs = (settings.config.duration + settings.config.warmup)
            .as_secs()
            .max(1) as usize;
        2_500 * secs + 100 * callers
    };
    println!(
        "| courses | callers | existing | seeds' recount (ref) | O(1) one statement (ref) | Enroll free | Enroll paid | replayed statements | free / O(1) | paid / O(1) | CPU ms per Enroll: service, PostgreSQL, NATS | CPU ms per O(1): PostgreSQL |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    let service_pid = stack.learning_process.pid();
    let mut cells = Vec::new();
    for &existing in &sizes {
        grow_lyceum(admin, &free, existing).await?;
        grow_lyceum(admin, &paid, existing).await?;
        for &spread in &settings.spreads {
            anyhow::ensure!(
                (1..=REFERENCE_COURSES).contains(&spread),
                "--matrix-courses takes numbers from 1 to {REFERENCE_COURSES}"
            );
            for &callers in &settings.callers {
                let config = LoadConfig {
                    concurrency: callers,
                    ..settings.config
                };
                let mut reference = Vec::new();
                let mut reference_cpu = Vec::new();
                for design in [Design::SeedsRecount, Design::OneStatement] {
                    load_reference(admin, &baselines, design, existing).await?;
                    let pool = reference_pool(&stack.database.url, design, callers).await?;
                    let operation = Arc::new(ReferenceEnroll {
                        pool: pool.clone(),
                        courses: spread,
                    });
                    let before = CpuTimes::now(service_pid);
                    let measured = load::run(operation, config).await;
                    reference_cpu.push(CpuTimes::now(service_pid).since(&before));
                    reference.push(measured);
                    pool.close().await;
                }
                let courses = |ids: &[Uuid]| Arc::new(ids[..spread].to_vec());
                let calls = calls_per_run(callers);
                let before = CpuTimes::now(service_pid);
                let enroll_free = load::run(
                    Arc::new(EnrollRpc {
                        stack: stack.clone(),
                        courses: courses(&free),
                        students: Arc::new(Students::mint(stack, calls)),
                    }),
                    config,
                )
                .await;
                // The events' publishing and application are part of each enrollment's
                // cost, and must not run into the next measurement.
                drain_event_path(admin).await?;
                let enroll_free_cpu = CpuTimes::now(service_pid).since(&before);
                let enroll_paid = load::run(
                    Arc::new(EnrollRpc {
                        stack: stack.clone(),
                        courses: courses(&paid),
                        students: Arc::new(Students::mint(stack, calls)),
                    }),
                    config,
                )
                .await;
                drain_event_path(admin).await?;
                let replayed = load::run(
                    Arc::new(EnrollSql::new(
                        stack.clone(),
                        courses(&free),
                        Arc::new(Students::mint(stack, calls)),
                    )),
                    config,
                )
                .await;
                drain_event_path(admin).await?;
                let [seeds_recount, one_statement] = [reference[0].clone(), reference[1].clone()];
                let all_calls = |m: &Measurement| {
                    m.throughput_per_sec * (config.duration + config.warmup).as_secs_f64()
                };
                let cell = Cell {
                    courses: spread,
                    callers,
                    existing_enrollments: existing,
                    free_vs_one_statement: ratio(&enroll_free, &one_statement),
                    paid_vs_one_statement: ratio(&enroll_paid, &one_statement),
                    enroll_free_cpu_ms: enroll_free_cpu.per_request(all_calls(&enroll_free)),
                    one_statement_cpu_ms: reference_cpu[1].per_request(all_calls(&one_statement)),
                    seeds_recount,
                    one_statement,
                    enroll_free,
                    enroll_paid,
                    replayed_statements: replayed,
                };
                let errors = |m: &Measurement| -> u64 { m.errors.values().sum() };
                println!(
                    "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2}, {:.2}, {:.2} | {:.2} |",
                    cell.courses,
                    cell.callers,
                    cell.existing_enrollments,
                    cell.seeds_recount.throughput_per_sec,
                    cell.one_statement.throughput_per_sec,
                    cell.enroll_free.throughput_per_sec,
                    cell.enroll_paid.throughput_per_sec,
                    cell.replayed_statements.throughput_per_sec,
                    cell.free_vs_one_statement,
                    cell.paid_vs_one_statement,
                    cell.enroll_free_cpu_ms.service,
                    cell.enroll_free_cpu_ms.postgres,
                    cell.enroll_free_cpu_ms.nats,
                    cell.one_statement_cpu_ms.postgres,
                );
                for (name, m) in [
                    ("seeds' recount", &cell.seeds_recount),
                    ("O(1) one statement", &cell.one_statement),
                    ("Enroll free", &cell.enroll_free),
                    ("Enroll paid", &cell.enroll_paid),
                    ("replayed statements", &cell.replayed_statements),
                ] {
                    if errors(m) > 0 {
                        eprintln!("  {name}: errors {:?}", m.errors);
                    }
                }
                cells.push(cell);
            }
        }
    }
    for design in [Design::SeedsRecount, Design::OneStatement] {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            design.schema()
        )))
        .execute(&mut *admin)
        .await?;
    }
    Ok(cells)
}
