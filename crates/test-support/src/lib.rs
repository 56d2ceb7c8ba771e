//! Shared by the integration tests: real PostgreSQL databases (one per test), real Redis, the Pub/Sub emulator,
//! binaries run as child processes, and a TCP proxy that can cut a dependency off and bring it back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub mod chaos;
pub mod contract;
pub mod kafka;

/// The server tests create their databases on. `TEST_PG_URL` overrides.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `TEST_REDIS_URL` or the local Redis.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `PUBSUB_EMULATOR_HOST` or the emulator `make test` starts.
pub fn pubsub_emulator_host() -> String {
    std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_else(|_| "127.0.0.1:8085".into())
}

/// A new, migrated database named `sbt_<random>`; dropped when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: sqlx::PgPool,
}

impl TestDb {
    /// A new database with the schema applied.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        service_runtime::db::MIGRATOR
            .run(&db.pool)
            .await
            .expect("migrate");
        db
    }

    /// A new database with nothing in it (no schema: `new` applies the migrations once).
    pub async fn empty() -> Self {
        let admin = pg_admin_url();
        let name = format!("sbt_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("connect to PostgreSQL");
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let url = with_database(&admin, &name);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .expect("connect");
        Self { name, url, pool }
    }

    /// The URL of this database reached through `proxy` instead of directly.
    pub fn url_via(&self, proxy: SocketAddr) -> String {
        format!("postgres://postgres@{proxy}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = pg_admin_url();
        let name = self.name.clone();
        // Best effort, on its own thread so it works inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

fn with_database(url: &str, name: &str) -> String {
    match url.rfind('/') {
        Some(i) if url[..i].contains("://") && i > url.find("://").unwrap() + 2 => {
            format!("{}/{name}", &url[..i])
        }
        _ => format!("{url}/{name}"),
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) when dropped, unless it already exited.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// Starts `exe` with exactly `env` (plus PATH), stdout/stderr inherited so test output shows its logs.
    pub fn spawn(exe: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        Self {
            child,
            name: exe.rsplit('/').next().unwrap_or(exe).to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. "TERM", "KILL") with the system's `kill`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or None if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `url` until it answers `expected` status, or panics after `timeout`. Returns the time it took.
pub async fn wait_for_status(url: &str, expected: u16, timeout: Duration) -> Duration {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < timeout {
        match client.get(url).send().await {
            Ok(resp) if resp.status().as_u16() == expected => return started.elapsed(),
            Ok(resp) => last = format!("{} {}", resp.status(), resp.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not answer {expected} within {timeout:?}; last: {last}");
}

/// A TCP proxy in front of a real dependency. `cut()` closes every connection and refuses new ones (the
/// dependency looks down); `restore()` brings it back. The dependency itself is never touched.
#[derive(Clone)]
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let cut3 = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut3.notified() => {}
                    }
                });
            }
        });
        Self { addr, up, cut }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
