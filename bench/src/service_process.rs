//! Learning and instructor as they are deployed: the `lyceum` binary in a process of its
//! own, so that the load generator does not share the services' runtime and the CPU time
//! of each process (service, PostgreSQL, NATS) can be told apart.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::process::{Child, Command};

/// Database connections of each service in the process: the most callers the matrix runs
/// (32); the relay and consumers have connections of their own.
const SERVICE_MAX_CONNECTIONS: u32 = 32;

pub struct ServiceProcess {
    child: Child,
    pub addr: SocketAddr,
}

/// The `lyceum` binary cargo built beside this one, unless `--service-binary` names another.
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("lyceum")))
        .unwrap_or_else(|| PathBuf::from("lyceum"))
}

impl ServiceProcess {
    /// Starts `lyceum serve learning instructor` against the benchmark's database and
    /// event prefix, verifying tokens with the keys of the identity server at
    /// `identity_addr`, and waits until it reports SERVING.
    pub async fn start(
        binary: &Path,
        database_url: &str,
        nats_url: &str,
        event_prefix: &str,
        identity_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            binary.exists(),
            "the service binary {} does not exist: build it with `cargo build --release -p lyceum` \
             (or name another with --service-binary)",
            binary.display()
        );
        let addr: SocketAddr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(binary)
            .args(["serve", "learning", "instructor"])
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--identity-addr")
            .arg(format!("http://{identity_addr}"))
            .env("DATABASE_URL", database_url)
            .env(
                "DATABASE_MAX_CONNECTIONS",
                SERVICE_MAX_CONNECTIONS.to_string(),
            )
            .env("NATS_URL", nats_url)
            .env("LYCEUM_EVENT_PREFIX", event_prefix)
            .env("LYCEUM_DEV_MODE", "1")
            .env("RUST_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut process = Self { child, addr };
        process.wait_until_serving(binary).await?;
        Ok(process)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn wait_until_serving(&mut self, binary: &Path) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the service process exited while starting: {status}");
            }
            let healthy = Command::new(binary)
                .args(["healthcheck", "--addr"])
                .arg(format!("http://{}", self.addr))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await?
                .success();
            if healthy {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the service process did not report SERVING within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// CPU time (user + system) consumed so far by processes, read from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub service: Duration,
    pub postgres: Duration,
    pub nats: Duration,
    pub bench: Duration,
}

impl CpuTimes {
    /// The service process's, this process's, NATS's, and PostgreSQL's: every live
    /// `postgres` process plus what the postmaster has collected from its exited children.
    pub fn now(service_pid: Option<u32>) -> Self {
        let mut times = Self {
            service: service_pid.map(process_cpu).unwrap_or_default(),
            bench: process_cpu(std::process::id()),
            ..Self::default()
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return times;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(stat) = read_stat(pid) else { continue };
            match stat.command.as_str() {
                "postgres" => {
                    times.postgres += stat.own;
                    if stat.parent_is_init_or_not_postgres {
                        times.postgres += stat.children;
                    }
                }
                "nats-server" => times.nats += stat.own,
                _ => {}
            }
        }
        times
    }

    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            service: self.service.saturating_sub(earlier.service),
            postgres: self.postgres.saturating_sub(earlier.postgres),
            nats: self.nats.saturating_sub(earlier.nats),
            bench: self.bench.saturating_sub(earlier.bench),
        }
    }
}

struct Stat {
    command: String,
    own: Duration,
    children: Duration,
    /// The postmaster: a postgres process whose parent is not one.
    parent_is_init_or_not_postgres: bool,
}

fn process_cpu(pid: u32) -> Duration {
    read_stat(pid).map(|stat| stat.own).unwrap_or_default()
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command is in parentheses and may hold spaces; the fields follow the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let command = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    let parent: u32 = fields.get(1)?.parse().ok()?;
    let own = ticks(11)? + ticks(12)?;
    let children = ticks(13)? + ticks(14)?;
    let parent_command =
        std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    Some(Stat {
        command,
        own: from_ticks(own),
        children: from_ticks(children),
        parent_is_init_or_not_postgres: parent_command.trim() != "postgres",
    })
}

/// Clock ticks are 1/100 s on Linux (USER_HZ), whatever the kernel's own frequency.
fn from_ticks(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 10)
}

/// CPU milliseconds per request of each process.
#[derive(Debug, Clone, Serialize)]
pub struct CpuPerRequest {
    /// The `lyceum` process: learning's RPC and write, its relay, instructor's consumer.
    pub service: f64,
    pub postgres: f64,
    pub nats: f64,
    /// This tool, calling the RPC.
    pub load_generator: f64,
}

impl CpuTimes {
    pub fn per_request(&self, requests: f64) -> CpuPerRequest {
        let ms = |spent: Duration| spent.as_secs_f64() * 1000.0 / requests.max(1.0);
        CpuPerRequest {
            service: ms(self.service),
            postgres: ms(self.postgres),
            nats: ms(self.nats),
            load_generator: ms(self.bench),
        }
    }
}
