//! The services tests and the local stack need: PostgreSQL and Redis (machine services, started if stopped) and
//! the Pub/Sub emulator (a child process, stopped when the task ends unless detached).

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PUBSUB_EMULATOR_HOST: &str = "127.0.0.1:8085";
pub const EMULATOR_LAUNCHER: &str =
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

pub fn is_listening(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

fn wait_listening(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if is_listening(addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A process this task started; stopped (its whole process group) when dropped.
pub struct Started {
    name: &'static str,
    child: Option<Child>,
}

impl Started {
    /// Leaves the process running after xtask exits.
    pub fn detach(mut self) {
        if let Some(child) = self.child.take() {
            eprintln!("    {} left running (pid {})", self.name, child.id());
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id();
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--"])
                .arg(format!("-{pgid}"))
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    eprintln!("    stopped {}", self.name);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{pgid}"))
                .status();
            let _ = child.wait();
            eprintln!("    killed {}", self.name);
        }
    }
}

/// Makes sure PostgreSQL, Redis and the Pub/Sub emulator answer. Returns what it started as a child.
pub fn ensure_all() -> anyhow::Result<Vec<Started>> {
    ensure_machine_services()?;
    let mut started = Vec::new();
    if let Some(emulator) = ensure_pubsub_emulator()? {
        started.push(emulator);
    }
    Ok(started)
}

/// PostgreSQL and Redis: machine services, started when stopped and left running.
pub fn ensure_machine_services() -> anyhow::Result<()> {
    ensure_postgres()?;
    ensure_redis()
}

fn ensure_postgres() -> anyhow::Result<()> {
    if is_listening("127.0.0.1:5432") {
        return Ok(());
    }
    eprintln!("==> PostgreSQL is not running: starting it");
    let versions = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| anyhow::anyhow!("PostgreSQL is not running and not installed (/etc/postgresql: {e})"))?;
    for version in versions.flatten() {
        let v = version.file_name().to_string_lossy().into_owned();
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &v, "main", "start"])
            .status();
    }
    anyhow::ensure!(
        wait_listening("127.0.0.1:5432", Duration::from_secs(20)),
        "PostgreSQL did not start on 5432"
    );
    Ok(())
}

fn ensure_redis() -> anyhow::Result<()> {
    if is_listening("127.0.0.1:6379") {
        return Ok(());
    }
    eprintln!("==> Redis is not running: starting it");
    let status = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .status()
        .map_err(|e| anyhow::anyhow!("Redis is not running and redis-server cannot be started: {e}"))?;
    anyhow::ensure!(status.success(), "redis-server failed to start");
    anyhow::ensure!(
        wait_listening("127.0.0.1:6379", Duration::from_secs(10)),
        "Redis did not start on 6379"
    );
    Ok(())
}

fn ensure_pubsub_emulator() -> anyhow::Result<Option<Started>> {
    if is_listening(PUBSUB_EMULATOR_HOST) {
        return Ok(None);
    }
    anyhow::ensure!(
        std::path::Path::new(EMULATOR_LAUNCHER).exists(),
        "the Pub/Sub emulator is not installed: `cargo xtask bootstrap` installs it \
         (Debian packages google-cloud-cli-pubsub-emulator, openjdk-17-jre-headless)"
    );
    eprintln!("==> starting the Pub/Sub emulator on {PUBSUB_EMULATOR_HOST}");
    let log_path = std::env::temp_dir().join("seller-backend-pubsub-emulator.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(EMULATOR_LAUNCHER)
        .args(["--host=127.0.0.1", "--port=8085"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start the Pub/Sub emulator: {e}"))?;
    let started = Started {
        name: "pubsub-emulator",
        child: Some(child),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("Server started") {
            eprintln!("    Pub/Sub emulator ready (log: {})", log_path.display());
            return Ok(Some(started));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!(
        "the Pub/Sub emulator did not log `Server started` within 60 s (see {})",
        log_path.display()
    )
}
