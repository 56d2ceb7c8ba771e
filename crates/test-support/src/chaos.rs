//! What the chaos scenarios (`cargo xtask chaos`) share: the profile, the machine's PostgreSQL and Redis stopped and
//! started for real, and one report format.
//!
//! A scenario is an `#[ignore]`d test in a crate's `tests/chaos.rs` target, named `r<N>_...`; `cargo xtask chaos`
//! runs them one at a time (they stop shared servers) with `CHAOS_PROFILE=short|full`, and collects each
//! [`Report`] from the file named by `CHAOS_REPORT`. Run alone, a scenario prints its report and fails its test
//! when a check fails.

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// How big a run is: `short` (a few minutes for the whole set, in `make test`) or `full` (the sizes in
/// quality-bar.md, on demand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Short,
    Full,
}

impl Profile {
    /// From `CHAOS_PROFILE` (default `short`).
    pub fn from_env() -> Self {
        match std::env::var("CHAOS_PROFILE").as_deref() {
            Ok("full") => Self::Full,
            _ => Self::Short,
        }
    }

    /// `short` in the short profile, `full` in the full one.
    pub fn pick<T>(self, short: T, full: T) -> T {
        match self {
            Self::Short => short,
            Self::Full => full,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Full => "full",
        }
    }
}

/// One scenario's outcome: what was done, what was checked, the counts. PASS when every check holds.
#[derive(Debug)]
pub struct Report {
    id: String,
    title: String,
    started: Instant,
    done: Vec<String>,
    counts: Vec<(String, u64)>,
    checks: Vec<(String, bool)>,
}

impl Report {
    /// `id` is the quality-bar id ("R1"), `title` one line saying what the scenario does.
    pub fn new(id: &str, title: &str) -> Self {
        let profile = Profile::from_env();
        eprintln!("chaos {id} ({} profile): {title}", profile.name());
        Self {
            id: id.to_owned(),
            title: title.to_owned(),
            started: Instant::now(),
            done: Vec::new(),
            counts: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// Something the scenario did (printed as it happens, so a stuck run shows where it is).
    pub fn did(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("  {:>6.1}s  {what}", self.started.elapsed().as_secs_f64());
        self.done.push(what);
    }

    /// A figure: sent, acknowledged, published, duplicates, lost, stale overwrites, calls above the limit, ...
    pub fn count(&mut self, name: &str, value: u64) {
        self.counts.push((name.to_owned(), value));
    }

    /// A pass condition, described in words ("0 orders lost").
    pub fn check(&mut self, what: impl Into<String>, ok: bool) -> bool {
        self.checks.push((what.into(), ok));
        ok
    }

    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|(_, ok)| *ok)
    }

    /// Prints the report, appends it as one JSON line to `CHAOS_REPORT` when set, and panics when a check failed
    /// (so the scenario's test fails).
    pub fn finish(self) {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let secs = self.started.elapsed().as_secs_f64();
        let mut text = format!("{} {verdict} in {secs:.1} s: {}\n", self.id, self.title);
        for d in &self.done {
            text.push_str(&format!("  did:     {d}\n"));
        }
        let counts: Vec<String> = self.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        text.push_str(&format!("  counts:  {}\n", counts.join(", ")));
        for (c, ok) in &self.checks {
            text.push_str(&format!(
                "  checked: [{}] {c}\n",
                if *ok { "ok" } else { "FAILED" }
            ));
        }
        eprintln!("{text}");
        if let Ok(path) = std::env::var("CHAOS_REPORT") {
            let line = serde_json::json!({
                "id": self.id,
                "title": self.title,
                "profile": Profile::from_env().name(),
                "passed": self.passed(),
                "seconds": (secs * 10.0).round() / 10.0,
                "done": self.done,
                "counts": self.counts,
                "checks": self.checks,
            });
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
                let _ = writeln!(f, "{line}");
            }
        }
        assert!(self.passed(), "chaos {} FAILED", self.id);
    }
}

fn run(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

/// A command that starts a server daemon with no inherited file descriptors beyond stdio: a daemon must not
/// keep, say, a lock file that a developer's `flock` holds around the test run.
fn daemon(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args([
        "-c",
        r#"for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null; done; exec "$@""#,
        "daemon",
        program,
    ])
    .args(args);
    cmd
}

fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_millis(200)).is_ok()
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pg_cluster() -> String {
    std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .max()
        })
        .unwrap_or_else(|| "15".into())
}

/// Stops the machine's PostgreSQL server (fast shutdown: open connections are cut). Blocking.
pub fn stop_postgres() {
    let cluster = pg_cluster();
    assert!(
        run(Command::new("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            &cluster,
            "main",
            "stop",
            "-m",
            "fast"
        ])),
        "pg_ctlcluster {cluster} main stop failed"
    );
    wait_until("PostgreSQL stopped", Duration::from_secs(30), || {
        !listening("127.0.0.1:5432")
    });
}

/// Starts the machine's PostgreSQL server again and waits until it accepts connections. Blocking.
pub fn start_postgres() {
    let cluster = pg_cluster();
    let _ = run(&mut daemon(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &cluster, "main", "start"],
    ));
    wait_until(
        "PostgreSQL accepting connections",
        Duration::from_secs(30),
        || run(Command::new("pg_isready").args(["-q", "-h", "127.0.0.1", "-p", "5432"])),
    );
}

/// Stops the machine's Redis (`SHUTDOWN NOSAVE`: nothing survives, as after a crash of a cache without
/// persistence). Blocking.
pub fn stop_redis() {
    let _ = run(Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"]));
    wait_until("Redis stopped", Duration::from_secs(10), || {
        !listening("127.0.0.1:6379")
    });
}

/// Starts Redis on 127.0.0.1:6379 the way the machine runs it (no persistence). Blocking.
pub fn start_redis() {
    if !listening("127.0.0.1:6379") {
        assert!(
            run(&mut daemon(
                "redis-server",
                &[
                    "--daemonize",
                    "yes",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    "6379",
                    "--save",
                    "",
                    "--appendonly",
                    "no"
                ]
            )),
            "redis-server failed to start"
        );
    }
    wait_until("Redis answering PING", Duration::from_secs(10), || {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", "6379", "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
    });
}

/// Makes sure both servers run again when a scenario fails half-way (hold one as a guard: `let _servers = RestoreServers;`).
pub struct RestoreServers;

impl Drop for RestoreServers {
    fn drop(&mut self) {
        if !listening("127.0.0.1:5432") {
            start_postgres();
        }
        if !listening("127.0.0.1:6379") {
            start_redis();
        }
    }
}
