//! `lyceum-bench`: measures Lyceum's RPCs side by side with the raw SQL they run, and the
//! event path (relay throughput, commit-to-projection lag), on a stack it starts itself
//! against the local PostgreSQL and NATS. Reports as a table and as JSON.

mod capacity;
mod dashboard;
mod data;
mod enroll_lag;
mod enroll_matrix;
mod events;
mod learning;
mod load;
mod scenarios;
mod service_process;
mod stack;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;
use uuid::Uuid;

use load::{LoadConfig, Measurement, Operation};
use scenarios::*;
use stack::Stack;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    GetUser,
    ListUsers,
    CreateOrganization,
    GetCourse,
    ListCourses,
    Enroll,
    /// Enroll beside the baselines' reference designs in every cell of the matrix (not
    /// part of the default run: it loads up to a million enrollments several times).
    EnrollMatrix,
    Dashboard,
    RelayThroughput,
    EventLag,
    /// Enroll's commit-to-projection lag at half its maximum rate, and CPU per enrollment
    /// of each process.
    EnrollLag,
    /// The kit's capacity primitive on one contended pool, beside a bare conditional
    /// update of the pool's row, at each of `--matrix-callers`.
    Capacity,
}

/// Benchmarks Lyceum's RPCs against their raw SQL and measures the event path.
#[derive(Parser)]
#[command(name = "lyceum-bench", version)]
struct Args {
    /// Scenarios to run (repeat the flag); all when none is given.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Concurrent callers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Unmeasured seconds before each scenario.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Stop each scenario after this many measured requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Users loaded before the RPC scenarios (organizations: one per 100 users).
    #[arg(long, default_value_t = 100_000)]
    size: i64,
    /// Existing organizations at which to repeat create-organization, e.g. 0,100000,1000000.
    #[arg(long, value_delimiter = ',')]
    scaling_sizes: Vec<i64>,
    /// Published courses loaded before the learning scenarios.
    #[arg(long, default_value_t = 10_000)]
    courses: i64,
    /// Existing enrollments of the course at which to repeat enroll, e.g. 0,100000,1000000.
    #[arg(long, value_delimiter = ',')]
    enroll_scaling_sizes: Vec<i64>,
    /// Existing enrollments for enroll-matrix.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 100_000, 1_000_000])]
    matrix_sizes: Vec<i64>,
    /// Concurrent callers for enroll-matrix.
    #[arg(long, value_delimiter = ',', default_values_t = [4, 32])]
    matrix_callers: Vec<usize>,
    /// Courses of one instructor the enroll-matrix enrollments spread over (1 to 10).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10])]
    matrix_courses: Vec<usize>,
    /// The team's reference SQL for enroll-matrix (seedstyle.sql, incremental.sql, load.sql).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/baselines"))]
    baselines_dir: std::path::PathBuf,
    /// Dashboard volume: instructors, courses, enrollments, activity rows, students.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 1_000_000, 10_000_000, 200_000])]
    dashboard_volume: Vec<i64>,
    /// Write the dashboard statements' EXPLAIN (ANALYZE, BUFFERS) plans to this file.
    #[arg(long)]
    plans: Option<std::path::PathBuf>,
    /// Outbox rows for relay-throughput.
    #[arg(long, default_value_t = 100_000)]
    relay_events: i64,
    /// Writes per second for event-lag; half the measured create-organization rate when unset.
    #[arg(long)]
    event_rate: Option<f64>,
    /// Enrollments per second for enroll-lag; half the measured maximum when unset.
    #[arg(long)]
    enroll_rate: Option<f64>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// The `lyceum` binary that serves learning and instructor in a process of its own;
    /// the one built beside this tool when unset.
    #[arg(long, default_value_os_t = service_process::default_binary())]
    service_binary: std::path::PathBuf,
}

#[derive(Serialize)]
struct Comparison {
    scenario: Scenario,
    service: Measurement,
    raw_sql: Measurement,
    throughput_ratio: f64,
    p99_ratio: f64,
}

#[derive(Serialize)]
struct ScalingPoint {
    existing_organizations: i64,
    service: Measurement,
}

#[derive(Serialize)]
struct EnrollScalingPoint {
    existing_enrollments: i64,
    service: Measurement,
}

#[derive(Serialize, Default)]
struct Report {
    enroll_scaling: Vec<EnrollScalingPoint>,
    enroll_matrix: Vec<enroll_matrix::Cell>,
    dashboard: Vec<(dashboard::Query, Comparison)>,
    dashboard_volume: Option<dashboard::Volume>,
    date: String,
    machine: String,
    concurrency: usize,
    duration_secs: u64,
    size: i64,
    comparisons: Vec<Comparison>,
    scaling: Vec<ScalingPoint>,
    relay: Option<events::RelayReport>,
    relay_to_write_ratio: Option<f64>,
    event_lag: Option<events::LagReport>,
    enroll_lag: Option<enroll_lag::EnrollLagReport>,
    capacity: Vec<capacity::CapacityCell>,
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{} GiB", kb / 1024 / 1024))
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {memory}")
}

fn row(name: &str, m: &Measurement) -> String {
    let errors: u64 = m.errors.values().sum();
    format!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        m.throughput_per_sec, m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms, errors
    )
}

async fn compare(
    scenario: Scenario,
    service: Arc<dyn Operation>,
    raw: Arc<dyn Operation>,
    config: LoadConfig,
) -> Comparison {
    let service = load::run(service, config).await;
    let raw_sql = load::run(raw, config).await;
    Comparison {
        scenario,
        throughput_ratio: service.throughput_per_sec / raw_sql.throughput_per_sec.max(1e-9),
        p99_ratio: service.p99_ms / raw_sql.p99_ms.max(1e-9),
        service,
        raw_sql,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = [
        Scenario::GetUser,
        Scenario::ListUsers,
        Scenario::CreateOrganization,
        Scenario::GetCourse,
        Scenario::ListCourses,
        Scenario::Enroll,
        Scenario::RelayThroughput,
        Scenario::EventLag,
        Scenario::EnrollLag,
        Scenario::Capacity,
    ];
    let selected: Vec<Scenario> = if args.scenarios.is_empty() {
        all.to_vec()
    } else {
        args.scenarios.clone()
    };
    let config = LoadConfig {
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.duration_secs),
        warmup: Duration::from_secs(args.warmup_secs),
        requests: args.requests,
    };
    let mut report = Report {
        date: chrono::Utc::now().to_rfc3339(),
        machine: machine(),
        concurrency: args.concurrency,
        duration_secs: args.duration_secs,
        size: args.size,
        ..Default::default()
    };

    let stack = Arc::new(Stack::start(&args.service_binary).await?);
    let mut admin = stack.database.admin_connection().await;
    let load_seconds = data::grow_identity(&mut admin, args.size).await?;
    eprintln!("loaded {} users in {load_seconds:.1}s", args.size);
    let ids = Arc::new(data::sample_user_ids(&mut admin, 10_000).await?);
    let organizations: Arc<Vec<Uuid>> = Arc::new(
        sqlx::query_scalar(
            "SELECT id FROM identity.organizations WHERE slug LIKE 'bench-org-%' LIMIT 10000",
        )
        .fetch_all(&mut admin)
        .await?,
    );

    let course_ids = Arc::new(learning::grow_courses(&mut admin, args.courses).await?);
    let enroll_course = learning::enrollment_target(&mut admin).await?;
    // Enough fresh students for every call of the enroll scenarios.
    let enroll_calls = 4_000 * (config.duration + config.warmup).as_secs().max(1) as usize;
    let (viewer_token, viewer) = stack.student(Uuid::now_v7());

    println!("| scenario | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for scenario in &selected {
        let (service, raw): (Arc<dyn Operation>, Arc<dyn Operation>) = match scenario {
            Scenario::GetUser => (
                Arc::new(GetUserRpc {
                    stack: stack.clone(),
                    ids: ids.clone(),
                }),
                Arc::new(GetUserSql {
                    stack: stack.clone(),
                    ids: ids.clone(),
                }),
            ),
            Scenario::ListUsers => (
                Arc::new(ListUsersRpc {
                    stack: stack.clone(),
                    organizations: organizations.clone(),
                }),
                Arc::new(ListUsersSql {
                    stack: stack.clone(),
                    organizations: organizations.clone(),
                }),
            ),
            Scenario::CreateOrganization => (
                Arc::new(CreateOrganizationRpc {
                    stack: stack.clone(),
                    run: Uuid::new_v4(),
                }),
                Arc::new(CreateOrganizationSql {
                    stack: stack.clone(),
                    run: Uuid::new_v4(),
                }),
            ),
            Scenario::GetCourse => (
                Arc::new(learning::GetCourseRpc {
                    stack: stack.clone(),
                    ids: course_ids.clone(),
                    viewer: viewer_token.clone(),
                }),
                Arc::new(learning::GetCourseSql {
                    stack: stack.clone(),
                    ids: course_ids.clone(),
                    viewer: viewer.clone(),
                }),
            ),
            Scenario::ListCourses => (
                Arc::new(learning::ListCoursesRpc {
                    stack: stack.clone(),
                    viewer: viewer_token.clone(),
                }),
                Arc::new(learning::ListCoursesSql {
                    stack: stack.clone(),
                    viewer: viewer.clone(),
                }),
            ),
            Scenario::Enroll => (
                Arc::new(learning::EnrollRpc {
                    stack: stack.clone(),
                    courses: Arc::new(vec![enroll_course]),
                    students: Arc::new(learning::Students::mint(&stack, enroll_calls)),
                }),
                Arc::new(learning::EnrollSql::new(
                    stack.clone(),
                    Arc::new(vec![enroll_course]),
                    Arc::new(learning::Students::mint(&stack, enroll_calls)),
                )),
            ),
            _ => continue,
        };
        let comparison = compare(*scenario, service, raw, config).await;
        let name = format!("{scenario:?}");
        println!("{}", row(&format!("{name} (service)"), &comparison.service));
        println!("{}", row(&format!("{name} (raw SQL)"), &comparison.raw_sql));
        println!(
            "| {name}: service / raw SQL | {:.2} |  |  | {:.2} |  |  |",
            comparison.throughput_ratio, comparison.p99_ratio
        );
        report.comparisons.push(comparison);
    }

    let write_rate = report
        .comparisons
        .iter()
        .find(|c| c.scenario == Scenario::CreateOrganization)
        .map(|c| c.service.throughput_per_sec);

    for &existing in &args.scaling_sizes {
        data::grow_organizations(&mut admin, existing).await?;
        let operation = Arc::new(CreateOrganizationRpc {
            stack: stack.clone(),
            run: Uuid::new_v4(),
        });
        let service = load::run(operation, config).await;
        println!(
            "{}",
            row(
                &format!("CreateOrganization at {existing} organizations"),
                &service
            )
        );
        report.scaling.push(ScalingPoint {
            existing_organizations: existing,
            service,
        });
    }

    for &existing in &args.enroll_scaling_sizes {
        learning::grow_enrollments(&mut admin, enroll_course, existing).await?;
        let operation = Arc::new(learning::EnrollRpc {
            stack: stack.clone(),
            courses: Arc::new(vec![enroll_course]),
            students: Arc::new(learning::Students::mint(&stack, enroll_calls)),
        });
        let service = load::run(operation, config).await;
        println!(
            "{}",
            row(
                &format!("Enroll at {existing} enrollments of the course"),
                &service
            )
        );
        report.enroll_scaling.push(EnrollScalingPoint {
            existing_enrollments: existing,
            service,
        });
    }

    if selected.contains(&Scenario::EnrollMatrix) {
        println!();
        report.enroll_matrix = enroll_matrix::run(
            &stack,
            &mut admin,
            &enroll_matrix::MatrixSettings {
                baselines: args.baselines_dir.clone(),
                sizes: args.matrix_sizes.clone(),
                callers: args.matrix_callers.clone(),
                spreads: args.matrix_courses.clone(),
                config,
            },
        )
        .await?;
    }

    if selected.contains(&Scenario::Dashboard) {
        anyhow::ensure!(
            args.dashboard_volume.len() == 5,
            "--dashboard-volume takes five numbers"
        );
        let v = &args.dashboard_volume;
        let volume = dashboard::Volume {
            instructors: v[0],
            courses: v[1],
            enrollments: v[2],
            activity: v[3],
            students: v[4],
        };
        let (ids, seconds) = dashboard::load(&mut admin, volume).await?;
        eprintln!("loaded the dashboard volume {volume:?} in {seconds:.1}s");
        let instructors = Arc::new(dashboard::Instructors::new(&stack, ids));
        for query in dashboard::Query::ALL {
            let comparison = compare(
                Scenario::Dashboard,
                Arc::new(dashboard::DashboardRpc {
                    stack: stack.clone(),
                    instructors: instructors.clone(),
                    query,
                }),
                Arc::new(dashboard::DashboardSql {
                    stack: stack.clone(),
                    instructors: instructors.clone(),
                    query,
                }),
                config,
            )
            .await;
            let name = format!("Dashboard {query:?}");
            println!("{}", row(&format!("{name} (service)"), &comparison.service));
            println!("{}", row(&format!("{name} (raw SQL)"), &comparison.raw_sql));
            println!(
                "| {name}: service / raw SQL | {:.2} |  |  | {:.2} |  |  |",
                comparison.throughput_ratio, comparison.p99_ratio
            );
            report.dashboard.push((query, comparison));
        }
        let plans = dashboard::explain(&stack, &instructors.principals[0]).await?;
        let text: String = plans
            .iter()
            .map(|(q, plan)| format!("== {q:?}\n{plan}\n\n"))
            .collect();
        match &args.plans {
            Some(path) => std::fs::write(path, &text)?,
            None => println!("{text}"),
        }
        report.dashboard_volume = Some(volume);
    }

    if selected.contains(&Scenario::RelayThroughput) {
        let relay = events::relay_throughput(&stack, args.relay_events).await?;
        println!(
            "\nrelay: {} events in {:.2}s = {:.0} events/s (batch {})",
            relay.events, relay.seconds, relay.events_per_sec, relay.batch_size
        );
        if let Some(rate) = write_rate {
            let ratio = relay.events_per_sec / rate;
            println!("relay rate / create-organization commit rate = {ratio:.1}");
            report.relay_to_write_ratio = Some(ratio);
        }
        report.relay = Some(relay);
    }

    if selected.contains(&Scenario::EventLag) {
        // A stack of its own, so the projection starts with no backlog.
        let lag_stack = Arc::new(Stack::start(&args.service_binary).await?);
        let rate = args
            .event_rate
            .or(write_rate.map(|r| r / 2.0))
            .unwrap_or(200.0);
        let lag = events::event_lag(lag_stack, rate, config.duration).await?;
        println!(
            "\nevent lag at {:.0} writes/s: {} produced, {} applied; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lag.target_rate_per_sec,
            lag.produced,
            lag.applied,
            lag.lag.p50_ms,
            lag.lag.p90_ms,
            lag.lag.p99_ms,
            lag.lag.max_ms
        );
        report.event_lag = Some(lag);
    }

    if selected.contains(&Scenario::Capacity) {
        println!();
        report.capacity = capacity::run(&stack, &args.matrix_callers, config).await?;
    }

    if selected.contains(&Scenario::EnrollLag) {
        // A stack of its own, so that instructor starts with no backlog.
        let lag_stack = Arc::new(Stack::start(&args.service_binary).await?);
        let mut lag_admin = lag_stack.database.admin_connection().await;
        let course = enroll_lag::free_course(&mut lag_admin).await?;
        let rate = match args.enroll_rate {
            Some(rate) => rate,
            None => {
                let maximum = enroll_lag::maximum_rate(&lag_stack, course, config).await;
                println!(
                    "\nEnroll at most: {:.0}/s with {} callers",
                    maximum.throughput_per_sec, config.concurrency
                );
                (maximum.throughput_per_sec / 2.0).max(1.0)
            }
        };
        let lag =
            enroll_lag::run(&lag_stack, &mut lag_admin, course, rate, config.duration).await?;
        let cpu = &lag.cpu_ms_per_enrollment;
        println!(
            "enroll lag at {:.0}/s ({}): {} produced, {} applied; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lag.target_rate_per_sec,
            lag.measured_between,
            lag.produced,
            lag.applied,
            lag.lag.p50_ms,
            lag.lag.p90_ms,
            lag.lag.p99_ms,
            lag.lag.max_ms
        );
        println!(
            "CPU ms per enrollment: service {:.3}, PostgreSQL {:.3}, NATS {:.3}, load generator {:.3}",
            cpu.service, cpu.postgres, cpu.nats, cpu.load_generator
        );
        report.enroll_lag = Some(lag);
    }

    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
