//! Shared pieces of the event tests: a sink consumer with its own schema, a NATS server
//! of a test's own, and the `lyceum` binary as a child process.

#![allow(dead_code)]

pub mod reflection;
pub mod stack;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lyceum_platform::db::{Database, ServiceSchema, Tx};
use lyceum_platform::events::EventBus;
use lyceum_platform::events::consumer::{Consumer, ConsumerSpec, EventHandler};
use lyceum_proto::events::v1::EventEnvelope;
use lyceum_testkit::free_port;
use sqlx::migrate::Migrator;
use tokio::sync::watch;

static SINK_MIGRATOR: Migrator = sqlx::migrate!("tests/sink_migrations");

/// The schema of the test consumer.
pub const SINK: ServiceSchema = ServiceSchema {
    name: "sink",
    migrator: &SINK_MIGRATOR,
};

/// Records every event it applies; fails on purpose for the event ids it is told to, and
/// takes `pause` over each event when told to be slow.
#[derive(Default)]
pub struct SinkHandler {
    pub failing: Mutex<HashSet<String>>,
    pub pause: Mutex<Duration>,
}

#[async_trait]
impl EventHandler for SinkHandler {
    async fn handle(&self, tx: &mut Tx, event: &EventEnvelope) -> anyhow::Result<()> {
        if self.failing.lock().unwrap().contains(&event.event_id) {
            anyhow::bail!("the sink refuses {}", event.event_id);
        }
        let pause = *self.pause.lock().unwrap();
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        sqlx::query("INSERT INTO sink_events (event_id, event_type) VALUES ($1::uuid, $2)")
            .bind(&event.event_id)
            .bind(&event.event_type)
            .execute(tx.conn())
            .await?;
        Ok(())
    }
}

/// Runs a sink consumer until the returned sender is dropped or set.
pub fn spawn_sink(
    db: Database,
    bus: EventBus,
    spec: ConsumerSpec,
    handler: Arc<SinkHandler>,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, stopping) = watch::channel(false);
    let task = tokio::spawn(Consumer::new(db, bus, spec, handler).run(stopping));
    (stop, task)
}

/// (rows, distinct event ids) applied by the sink, optionally of one event type.
pub async fn sink_counts(db: &Database, event_type: Option<&str>) -> (i64, i64) {
    let mut tx = db.begin_system("test").await.unwrap();
    let counts = sqlx::query_as(
        "SELECT count(*), count(DISTINCT event_id) FROM sink_events
         WHERE $1::text IS NULL OR event_type = $1",
    )
    .bind(event_type)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    counts
}

pub fn unique_prefix(stem: &str) -> String {
    format!("{stem}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// A `nats-server` of the test's own (JetStream, free port, temporary store), so that
/// stopping it disturbs no other test. Stopped when dropped.
pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let store = std::env::temp_dir().join(unique_prefix("lyceum-nats-"));
        std::fs::create_dir_all(&store).unwrap();
        let mut server = Self {
            port: free_port(),
            store,
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn binary() -> String {
        if let Ok(path) = std::env::var("NATS_SERVER_BIN") {
            return path;
        }
        for candidate in [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ] {
            if std::path::Path::new(candidate).exists() {
                return candidate.to_owned();
            }
        }
        "nats-server".to_owned()
    }

    /// Starts (again) on the same port with the same store.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(Self::binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (install the nats-server package)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (SIGKILL: as abrupt as a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// `lyceum serve` as a child process.
pub struct ServiceProcess {
    pub port: u16,
    child: Child,
}

impl ServiceProcess {
    pub async fn start(
        services: &str,
        database_url: &str,
        nats_url: &str,
        prefix: &str,
        failpoint: Option<&str>,
    ) -> Self {
        Self::start_with_args(services, database_url, nats_url, prefix, failpoint, &[]).await
    }

    /// Like [`ServiceProcess::start`], with more arguments for `serve`; `services` may
    /// name several, separated by spaces.
    pub async fn start_with_args(
        services: &str,
        database_url: &str,
        nats_url: &str,
        prefix: &str,
        failpoint: Option<&str>,
        extra: &[&str],
    ) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lyceum"));
        command
            .arg("serve")
            .args(services.split_whitespace())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["--database-url", database_url, "--nats-url", nats_url])
            .env("LYCEUM_EVENT_PREFIX", prefix)
            .env("RUST_LOG", "warn")
            .env("LYCEUM_DEV_MODE", "1")
            .env_remove("LYCEUM_FAILPOINT")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if let Some(name) = failpoint {
            command.env("LYCEUM_FAILPOINT", name);
        }
        let child = command.spawn().expect("lyceum starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "lyceum serve did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { port, child }
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.addr())
            .unwrap()
            .connect()
            .await
            .expect("connect to lyceum serve")
    }

    /// What the server's health service says about `service` ("" for the server).
    pub async fn health(
        &self,
        service: &str,
    ) -> tonic_health::pb::health_check_response::ServingStatus {
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status()
    }

    /// Whether the process is still alive (it has not crashed or exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown, no flush, like a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own (a failpoint aborting it).
    pub async fn wait_for_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the process did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of `GET /metrics` from a Prometheus endpoint.
pub async fn scrape_metrics(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: lyceum\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).expect("metrics are text");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    body.to_owned()
}

/// The value of the one sample of `name` whose labels include every `labels` pair.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
        if metric != name {
            continue;
        }
        if labels
            .iter()
            .all(|(key, value)| label_text.contains(&format!("{key}=\"{value}\"")))
        {
            assert!(
                found.is_none(),
                "several {name} series match {labels:?}:\n{metrics}"
            );
            found = Some(value.parse().expect("a number"));
        }
    }
    found
}

/// Where the assurance suites leave their sizes for the test command to print
/// (`cargo test` shows no output of passing tests).
pub const ASSURANCE_REPORT: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/assurance-sizes.txt");

/// Prints one suite's size and appends it to [`ASSURANCE_REPORT`].
pub fn report_size(line: &str) {
    use std::io::Write;
    println!("{line}");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ASSURANCE_REPORT)
        .expect("open the assurance report");
    writeln!(file, "{line}").expect("write the assurance report");
}
