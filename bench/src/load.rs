//! The load generator: N workers call one operation in a loop, first for a warm-up that
//! is not recorded, then for the measured duration (or request count). Latencies go to
//! one HDR histogram per worker, merged at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use serde::Serialize;

/// One unit of load: an RPC, or the SQL of an RPC run directly.
#[async_trait]
pub trait Operation: Send + Sync + 'static {
    /// `worker` and `sequence` make generated values unique without coordination.
    /// An error is named by its kind (a gRPC code, or `sql`), for the report.
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Stop after this many measured requests, if reached before the duration.
    pub requests: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub requests: u64,
    pub errors: BTreeMap<String, u64>,
    pub seconds: f64,
    pub throughput_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Measurement {
    pub fn from_histogram(
        histogram: &Histogram<u64>,
        errors: BTreeMap<String, u64>,
        seconds: f64,
    ) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let requests = histogram.len();
        Self {
            requests,
            errors,
            seconds,
            throughput_per_sec: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub async fn run(operation: Arc<dyn Operation>, config: LoadConfig) -> Measurement {
    let started = Instant::now();
    let measure_from = started + config.warmup;
    let stop_at = measure_from + config.duration;
    let measured = Arc::new(AtomicU64::new(0));
    let sequence = Arc::new(AtomicU64::new(0));
    let workers = (0..config.concurrency).map(|worker| {
        let operation = operation.clone();
        let measured = measured.clone();
        let sequence = sequence.clone();
        tokio::spawn(async move {
            let mut histogram = new_histogram();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let now = Instant::now();
                if now >= stop_at
                    || config
                        .requests
                        .is_some_and(|limit| measured.load(Ordering::Relaxed) >= limit)
                {
                    break;
                }
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let result = operation.call(worker, n).await;
                if now < measure_from {
                    continue;
                }
                measured.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok(()) => {
                        let micros = now.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                        let _ = histogram.record(micros);
                    }
                    Err(kind) => *errors.entry(kind).or_default() += 1,
                }
            }
            (histogram, errors)
        })
    });
    let mut histogram = new_histogram();
    let mut errors = BTreeMap::new();
    for result in futures::future::join_all(workers).await {
        let (worker_histogram, worker_errors) = result.expect("a load worker panicked");
        histogram
            .add(&worker_histogram)
            .expect("histograms with the same bounds");
        for (kind, count) in worker_errors {
            *errors.entry(kind).or_default() += count;
        }
    }
    let seconds = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    Measurement::from_histogram(&histogram, errors, seconds)
}

/// Calls `operation` at `rate` per second (each call in a task of its own, at most 512 in
/// flight) for `duration` or `limit` calls, whichever ends first; returns how many calls
/// were made once all have answered, or an error naming how many failed.
pub async fn at_rate(
    operation: Arc<dyn Operation>,
    rate: f64,
    duration: Duration,
    limit: u64,
) -> anyhow::Result<u64> {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut made = 0u64;
    let mut calls = Vec::new();
    while started.elapsed() < duration && made < limit {
        ticks.tick().await;
        let permit = in_flight.clone().acquire_owned().await?;
        let operation = operation.clone();
        let sequence = made;
        calls.push(tokio::spawn(async move {
            let _permit = permit;
            operation.call(sequence as usize, sequence).await
        }));
        made += 1;
    }
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for answer in futures::future::join_all(calls).await {
        match answer {
            Ok(Ok(())) => {}
            Ok(Err(kind)) => *failures.entry(kind).or_default() += 1,
            Err(join) => *failures.entry(format!("task: {join}")).or_default() += 1,
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {made} calls failed: {failures:?}",
        failures.values().sum::<u64>()
    );
    Ok(made)
}
