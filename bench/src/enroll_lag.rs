//! How long an enrollment takes from learning's commit to instructor's projection, at a
//! fixed rate, with the load generator (this process) apart from the services (the
//! `lyceum` process); and what each process spends in CPU per enrollment, so that the cost
//! of the event path is visible beside the write's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::learning::{EnrollRpc, Students};
use crate::load::{LoadConfig, Measurement, new_histogram};
use crate::service_process::{CpuPerRequest, CpuTimes};
use crate::stack::Stack;

#[derive(Debug, Serialize)]
pub struct EnrollLagReport {
    pub target_rate_per_sec: f64,
    pub produced: u64,
    pub applied: u64,
    /// `commit timestamps` (each side's commit, with track_commit_timestamp on) or `row
    /// timestamps` (the writing and the applying transaction's start: an approximation).
    pub measured_between: &'static str,
    pub lag: Measurement,
    pub cpu_ms_per_enrollment: CpuPerRequest,
}

/// Enrolls fresh students into `course` at `rate` per second for `duration`, then waits
/// until instructor has applied every enrollment and reports the lag of each.
pub async fn run(
    stack: &Arc<Stack>,
    admin: &mut PgConnection,
    course: Uuid,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<EnrollLagReport> {
    drain_event_path(admin).await?;
    let calls = (rate * duration.as_secs_f64()).ceil() as usize + 1;
    let operation = Arc::new(EnrollRpc {
        stack: stack.clone(),
        courses: Arc::new(vec![course]),
        students: Arc::new(Students::mint(stack, calls)),
    });
    let started_at = chrono::Utc::now();
    let cpu_before = CpuTimes::now(stack.learning_process.pid());
    let produced = crate::load::at_rate(operation, rate, duration, calls as u64)
        .await
        .map_err(|error| error.context("enrolling during enroll-lag"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = loop {
        let applied: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM instructor.enrollment_projection
             WHERE course_id = $1 AND enrolled_at >= $2",
        )
        .bind(course)
        .bind(started_at)
        .fetch_one(&mut *admin)
        .await?;
        if applied as u64 >= produced || Instant::now() > deadline {
            break applied as u64;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let cpu = CpuTimes::now(stack.learning_process.pid()).since(&cpu_before);

    let commit_timestamps: String = sqlx::query_scalar("SHOW track_commit_timestamp")
        .fetch_one(&mut *admin)
        .await?;
    let (measured_between, lags): (&'static str, Vec<i64>) = if commit_timestamps == "on" {
        let lags = sqlx::query_scalar(
            "SELECT (extract(epoch FROM pg_xact_commit_timestamp(p.xmin)
                                    - pg_xact_commit_timestamp(e.xmin)) * 1e6)::bigint
             FROM learning.enrollments e
             JOIN instructor.enrollment_projection p ON p.enrollment_id = e.id
             WHERE e.course_id = $1 AND e.enrolled_at >= $2",
        )
        .bind(course)
        .bind(started_at)
        .fetch_all(&mut *admin)
        .await?;
        ("commit timestamps", lags)
    } else {
        // An outbox row does not name its course: every enrollment event since the run
        // began, which on this scenario's own stack are the run's.
        let lags = sqlx::query_scalar(
            "SELECT (extract(epoch FROM i.processed_at - o.created_at) * 1e6)::bigint
             FROM learning.outbox o
             JOIN instructor.inbox i ON i.event_id = o.id AND i.consumer = 'instructor-learning'
             WHERE o.created_at >= $1 AND o.subject LIKE 'learning.enrollment.%'",
        )
        .bind(started_at)
        .fetch_all(&mut *admin)
        .await?;
        ("row timestamps", lags)
    };
    let mut histogram = new_histogram();
    for micros in lags {
        histogram.saturating_record(micros.max(1) as u64);
    }
    Ok(EnrollLagReport {
        target_rate_per_sec: rate,
        produced,
        applied,
        measured_between,
        lag: Measurement::from_histogram(&histogram, Default::default(), duration.as_secs_f64()),
        cpu_ms_per_enrollment: cpu.per_request(produced as f64),
    })
}

/// A free published course of a new instructor in learning.
pub async fn free_course(admin: &mut PgConnection) -> anyhow::Result<Uuid> {
    Ok(sqlx::query_scalar(
        "INSERT INTO learning.courses (id, instructor_id, title, status, published_at, lesson_count, price_minor)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'Lag course', 'published', now(), 10, 0)
         RETURNING id",
    )
    .fetch_one(admin)
    .await?)
}

/// Enroll's throughput into `course` with the configured callers: the maximum write rate.
pub async fn maximum_rate(stack: &Arc<Stack>, course: Uuid, config: LoadConfig) -> Measurement {
    let secs = (config.duration + config.warmup).as_secs().max(1) as usize;
    let operation = Arc::new(EnrollRpc {
        stack: stack.clone(),
        courses: Arc::new(vec![course]),
        students: Arc::new(Students::mint(
            stack,
            3_000 * secs + 100 * config.concurrency,
        )),
    });
    crate::load::run(operation, config).await
}

/// Waits until learning's outbox is published and instructor has applied every event of
/// it, so that a backlog of an earlier measurement neither slows nor bills the next one.
pub async fn drain_event_path(admin: &mut PgConnection) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let behind: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM learning.outbox)
                  - (SELECT count(*) FROM instructor.inbox WHERE consumer = 'instructor-learning')",
        )
        .fetch_one(&mut *admin)
        .await?;
        if behind <= 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "instructor is still {behind} events behind learning after five minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
