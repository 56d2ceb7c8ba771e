//! `cargo xtask bench [name...]`: runs benchmarks on this machine, prints their figures with the anchor each is
//! compared to (measured in the same run), and writes docs/benchmarks.md.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// One benchmark's figures.
pub struct Section {
    title: String,
    lines: Vec<String>,
}

impl Section {
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            lines: Vec::new(),
        }
    }

    pub fn line(&mut self, line: String) {
        println!("  {line}");
        self.lines.push(line);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

type Bench = fn() -> anyhow::Result<Section>;

const BENCHES: &[(&str, Bench)] = &[
    ("ingest", crate::bench_ingest::run),
    ("orders", crate::bench_orders::run),
    ("catalog", catalog),
    ("delivery", crate::bench_delivery::section),
    ("quotation", crate::bench_quotation::section),
    ("footprint", crate::bench_footprint::section),
];

fn catalog() -> anyhow::Result<Section> {
    let mut s = Section::new("catalog: 100,000 inventory events over 5,000 SKUs to Shopee update_stock");
    for line in crate::bench_catalog::lines()? {
        s.lines.push(line);
    }
    Ok(s)
}

pub fn run(names: &[String]) -> anyhow::Result<()> {
    let known: Vec<&str> = BENCHES.iter().map(|(n, _)| *n).collect();
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        anyhow::bail!("no benchmark named `{unknown}` (known: {})", known.join(", "));
    }
    let _services = crate::services::ensure_all()?;
    // Before the benchmarks run: the load average they would leave behind is their own.
    let machine = machine();
    let mut sections = Vec::new();
    let mut failed = Vec::new();
    for (name, bench) in BENCHES {
        if names.is_empty() || names.iter().any(|n| n == name) {
            println!("==> bench {name}");
            match bench() {
                Ok(section) => sections.push((*name, section)),
                Err(e) => {
                    eprintln!("bench {name} failed: {e:#}");
                    let mut section = Section::new(&format!("{name}: FAILED"));
                    section.line(format!("the benchmark did not complete: {e:#}"));
                    sections.push((*name, section));
                    failed.push(*name);
                }
            }
        }
    }
    write_report(&machine, &sections)?;
    anyhow::ensure!(failed.is_empty(), "benchmarks failed: {}", failed.join(", "));
    Ok(())
}

/// Writes docs/benchmarks.md: the sections run now, and the earlier sections of benchmarks not run this time
/// (each keeps the date of the run that measured it).
fn write_report(machine: &str, sections: &[(&str, Section)]) -> anyhow::Result<()> {
    let path = PathBuf::from("docs/benchmarks.md");
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    let mut md = String::from(
        "# Benchmarks\n\nWritten by `make bench` (`cargo xtask bench [name...]`, release builds); every figure comes with \
         its anchor or target measured in the same run. Sections not re-run keep the machine line of their own run.\n\n",
    );
    for (name, _) in BENCHES {
        if let Some((_, s)) = sections.iter().find(|(n, _)| n == name) {
            md.push_str(&format!("## {}\n\n- machine: {machine}\n", s.title));
            for l in &s.lines {
                md.push_str(&format!("- {l}\n"));
            }
            md.push('\n');
        } else if let Some(old) = previous_section(&previous, name) {
            md.push_str(&old);
        }
    }
    std::fs::write(&path, md)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The `## {name}: ...` section of an earlier report, if any.
fn previous_section(report: &str, name: &str) -> Option<String> {
    let start = report.find(&format!("\n## {name}:"))? + 1;
    let rest = &report[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    Some(rest[..end].trim_end().to_owned() + "\n\n")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let pg = Command::new("psql")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    format!(
        "{cpu}, {cores} cores, {:.1} GiB RAM; {pg}; load average at start {load} (the client, the services and \
         PostgreSQL share these cores); run at {}",
        mem as f64 / 1024.0 / 1024.0,
        Command::new("date")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    )
}

pub fn release_bin(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("release")
        .join(name)
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// VmRSS of a process, in KiB.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-tAc", sql, db])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Drops and recreates a database for a benchmark; returns its URL.
pub fn fresh_database(name: &str) -> anyhow::Result<String> {
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    psql("postgres", &format!("CREATE DATABASE {name}"))?;
    Ok(format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

/// Polls a readiness URL; returns how long it took.
pub async fn wait_ready(url: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    while started.elapsed() < timeout {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("{url} not ready within {timeout:?}")
}

/// A child process stopped when dropped: SIGTERM, then SIGKILL if it is still running 5 s later.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.0.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
