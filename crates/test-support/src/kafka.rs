//! A real Kafka-protocol broker for tests: `tansu` (https://github.com/tansu-io/tansu) with in-memory storage,
//! started as a child process on a free loopback port and killed when dropped.
//!
//! `cargo xtask bootstrap` installs it (`make test` runs that first). `TANSU_BIN` overrides where the
//! binary is looked for (default: `tansu` on PATH, then `~/.cargo/bin/tansu`).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// A running tansu broker.
pub struct TansuBroker {
    child: Child,
    port: u16,
    bin: PathBuf,
    /// Where the broker's own log goes.
    pub log_path: PathBuf,
}

/// The tansu executable, or a panic that says how to install it.
pub fn tansu_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return p;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let cargo_bin = home.join(".cargo/bin/tansu");
    if cargo_bin.is_file() {
        return cargo_bin;
    }
    panic!(
        "the Kafka tests need the `tansu` broker and it is not installed: run \
         `cargo xtask bootstrap --for test` (or set TANSU_BIN to its path)"
    );
}

impl TansuBroker {
    /// Starts a broker on 127.0.0.1 (listener and advertised address), in-memory storage; waits until it accepts
    /// connections.
    pub fn start() -> Self {
        let bin = tansu_bin();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log_path = std::env::temp_dir().join(format!("tansu-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("create the tansu log file");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env(
                "RUST_LOG",
                std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut broker = Self {
            child,
            port,
            bin,
            log_path,
        };
        broker.wait_ready(Duration::from_secs(20));
        broker
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                panic!("tansu exited at start ({status}); its log:\n{log}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "tansu did not accept connections on {addr} within {timeout:?} (log: {})",
                self.log_path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers` / `KAFKA_BROKERS`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a topic with `tansu topic create` (no Kafka client needed here).
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                "--partitions",
                &partitions.to_string(),
                name,
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("cannot run tansu topic create: {e}"));
        assert!(
            out.status.success(),
            "tansu topic create {name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}
