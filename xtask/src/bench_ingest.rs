//! `bench ingest`: signed pushes verified and persisted per second at 64 concurrent clients (release gateway,
//! real PostgreSQL), next to `pgbench` running one single-row INSERT per transaction at the same concurrency on the
//! same machine in the same run.
//!
//! The load comes from `wrk` (a C client, as light as pgbench's): xtask signs every push before the run and wrk's
//! Lua script sends each once, so the cores go to the gateway and PostgreSQL, not to signing or to an HTTP client
//! in Rust. Without `wrk` (and when `apt-get install` is not possible) the in-process reqwest clients of [`load`]
//! stand in, and the section says so.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shopee_client::sign::{PushSignatureMode, sign_push};

use crate::bench::{Section, percentile, release_bin, rss_kb};
use crate::sh;

const CLIENTS: usize = 64;
const DURATION: Duration = Duration::from_secs(15);
const DB: &str = "sb_bench_ingest";
const KEY: &str = "bench-partner-key";
const CALLBACK: &str = "http://bench.local/webhooks/shopee";
const ADDR: &str = "127.0.0.1:18080";

pub fn run() -> anyhow::Result<Section> {
    sh(Command::new("cargo").args(["build", "--release", "-p", "webhook-gateway"]))?;
    let generator = LoadGenerator::choose();
    let url = crate::bench::fresh_database(DB)?;
    let gateway = release_bin("webhook-gateway");
    sh(Command::new(&gateway)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn"))?;
    let wrk_input = match &generator {
        LoadGenerator::Wrk { .. } => Some(WrkInput::write(ADDR, KEY, CALLBACK)?),
        LoadGenerator::Reqwest { .. } => None,
    };

    let mut child: Child = Command::new(&gateway)
        .env("HTTP_ADDR", ADDR)
        .env("DATABASE_URL", &url)
        .env("SHOPEE_PARTNER_ID", "1")
        .env("SHOPEE_PARTNER_KEY", KEY)
        .env("SHOPEE_PUSH_CALLBACK_URL", CALLBACK)
        .env(
            "TOKEN_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let ready =
            crate::bench::wait_ready(&format!("http://{ADDR}/health/ready"), Duration::from_secs(20)).await?;
        let idle_rss = rss_kb(child.id());
        let rejections = bad_pushes(1000).await?;
        let measured = match &wrk_input {
            Some(input) => {
                let input = input.clone();
                tokio::task::spawn_blocking(move || wrk_load(&input, ADDR, CLIENTS, DURATION)).await??
            }
            None => Measured::from_reqwest(load(ADDR, KEY, CALLBACK, CLIENTS, DURATION).await?),
        };
        let loaded_rss = rss_kb(child.id());
        anyhow::Ok((ready, idle_rss, loaded_rss, measured, rejections))
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    if let Some(input) = &wrk_input {
        input.remove();
    }
    let (ready, idle_rss, loaded_rss, load, (rejections, rejected_p99, by_status)) = result?;

    let stored: u64 = crate::bench::psql(DB, "SELECT count(*) FROM push_inbox")?.parse()?;
    let repeated: u64 =
        crate::bench::psql(DB, "SELECT count(*) FROM push_inbox WHERE seen_count > 1")?.parse()?;
    let pg_tps = pgbench(CLIENTS, DURATION)?;
    let ratio = load.per_second / pg_tps;
    let mut s = Section::new("ingest: signed pushes verified + persisted");
    s.line(format!(
        "clients: {CLIENTS}, duration: {} s, release webhook-gateway, PostgreSQL on loopback",
        DURATION.as_secs()
    ));
    s.line(format!("load generator: {}", generator.describe()));
    s.line(format!(
        "pushes answered 2xx: {}; non-2xx: {}; socket errors: {}; rows in push_inbox: {stored} (sent but \
         unanswered when the run stopped: {}; rows seen more than once: {repeated})",
        load.ok, load.non_2xx, load.socket_errors, load.unanswered
    ));
    s.line(format!(
        "throughput: {:.0} pushes/s; latency p50 {:.2} ms, p99 {:.2} ms (target p99 < 20 ms)",
        load.per_second, load.p50_ms, load.p99_ms
    ));
    s.line(format!(
        "anchor: pgbench single-row INSERT per transaction, {CLIENTS} clients: {pg_tps:.0} tps"
    ));
    s.line(format!("ratio ingest / pgbench: {ratio:.2} (target >= 1.0)"));
    s.line(format!(
        "R3: {rejections} bad pushes (wrong key, flipped byte, no header, re-serialized JSON, invalid JSON, > 1 MiB): answers {by_status}; rejection p99 {rejected_p99:.2} ms (target < 5 ms); rows stored before the load: 0 checked"
    ));
    s.line(format!("webhook-gateway: start to ready {} ms; RSS idle {} KiB, loaded {} KiB (targets < 1 s, < 50 MB, < 150 MB)", ready.as_millis(), idle_rss, loaded_rss));
    // Every 2xx is a committed row (persist before 2xx), and every push sent was a new one: a row can only be
    // missing if a 2xx lied, and rows beyond the 2xx count are pushes still in flight when the client stopped.
    anyhow::ensure!(
        stored >= load.ok,
        "{} pushes answered 2xx but only {stored} rows are in push_inbox",
        load.ok
    );
    anyhow::ensure!(
        stored <= load.ok + load.unanswered,
        "{stored} rows in push_inbox, more than the {} answered 2xx plus the {} unanswered",
        load.ok,
        load.unanswered
    );
    anyhow::ensure!(
        repeated == 0,
        "{repeated} pushes were sent more than once: the load must be distinct pushes"
    );
    Ok(s)
}

/// What drives the load: `wrk` when it is installed (or can be), else the in-process reqwest clients.
enum LoadGenerator {
    Wrk { version: String, note: String },
    Reqwest { why: String },
}

impl LoadGenerator {
    /// Finds `wrk`; when it is missing and we are root, tries `apt-get install -y wrk` (saying so).
    fn choose() -> Self {
        if let Some(version) = wrk_version() {
            return Self::Wrk {
                version,
                note: String::new(),
            };
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            let why = "wrk is not installed (and we are not root to apt-get install it)".to_owned();
            println!("  {why}: falling back to the reqwest load generator");
            return Self::Reqwest { why };
        }
        println!("  wrk is not installed: running `apt-get install -y wrk`");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "wrk"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            println!("  apt-get install failed: running `apt-get update` and trying again");
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            install();
        }
        match wrk_version() {
            Some(version) => {
                println!("  installed {version}");
                Self::Wrk {
                    version,
                    note: " (installed by this run with apt-get)".to_owned(),
                }
            }
            None => {
                let why = "wrk is not installed and `apt-get install -y wrk` did not install it".to_owned();
                println!("  {why}: falling back to the reqwest load generator");
                Self::Reqwest { why }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Wrk { version, note } => format!(
                "{version}{note}, -t{WRK_THREADS} -c{CLIENTS} -d{}s, keep-alive; its Lua script sends {} \
                 distinct pushes signed before the run ({PER_THREAD} per thread, each sent once)",
                DURATION.as_secs(),
                PER_THREAD * WRK_THREADS
            ),
            Self::Reqwest { why } => format!(
                "{CLIENTS} reqwest tasks inside xtask, signing each push as they go (FALLBACK: {why}; they share the \
                 cores with the gateway and cost more than wrk, so the ratio is understated{})",
                if cfg!(debug_assertions) {
                    ", the more so as this xtask is a debug build: `make bench` builds it in release"
                } else {
                    ""
                }
            ),
        }
    }
}

/// `wrk`'s version line (`wrk debian/4.1.0-3+b2`), if it runs.
fn wrk_version() -> Option<String> {
    // `wrk -v` prints its version and usage and exits with 1.
    let out = Command::new("wrk").arg("-v").output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text.lines().find(|l| l.starts_with("wrk "))?;
    Some(line.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

const WRK_THREADS: usize = 2;
/// Pushes signed before the run for each wrk thread: every request of the run is a distinct push (a real INSERT,
/// never a duplicate). 350,000 per thread covers 46,000 pushes/s over 15 s; running out fails the benchmark.
const PER_THREAD: usize = 350_000;

/// The Lua script: each thread reads its own file of complete HTTP requests (NUL-separated) on its first request,
/// then sends them in order, once each. Reading on the first request (not in `init`) keeps the threads' start
/// together: wrk starts a thread as soon as the next one is initialised.
const WRK_SCRIPT: &str = r#"-- written by `cargo xtask bench ingest`
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  data = nil
  pos = 1
  sent = 0
  exhausted = 0
  last = nil
end

function request()
  if data == nil then
    local f = assert(io.open(prefix .. "." .. id, "rb"))
    data = f:read("*a")
    f:close()
  end
  local stop = data:find("\0", pos, true)
  if stop == nil then
    -- Out of distinct pushes: the benchmark fails rather than send a duplicate unnoticed.
    exhausted = 1
    wrk.thread:stop()
    return last
  end
  last = data:sub(pos, stop - 1)
  pos = stop + 1
  sent = sent + 1
  return last
end

function done(summary, latency, requests)
  local sent, exhausted = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("sent")
    exhausted = exhausted + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    "xtask requests=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d sent=%d exhausted=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)), sent, exhausted))
end
"#;

/// The files the wrk run reads: the script and one file of pre-signed requests per thread.
#[derive(Clone)]
struct WrkInput {
    script: PathBuf,
    prefix: PathBuf,
}

impl WrkInput {
    /// Signs `PER_THREAD * WRK_THREADS` distinct READY_TO_SHIP pushes (each a new order) for `callback` with `key`,
    /// as complete HTTP requests to `addr`.
    fn write(addr: &str, key: &str, callback: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir();
        let input = Self {
            script: dir.join("seller-backend-bench-ingest.lua"),
            prefix: dir.join("seller-backend-bench-ingest.requests"),
        };
        std::fs::write(&input.script, WRK_SCRIPT)?;
        let started = Instant::now();
        std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..WRK_THREADS)
                .map(|thread| {
                    let path = input.thread_file(thread);
                    scope.spawn(move || -> anyhow::Result<()> {
                        let mut out = Vec::with_capacity(PER_THREAD * 360);
                        for i in 0..PER_THREAD {
                            let n = i * WRK_THREADS + thread;
                            let body = ready_to_ship_push(&format!("W{n:013}"));
                            let auth = sign_push(PushSignatureMode::UrlAndBody, key, callback, body.as_bytes());
                            write!(
                                out,
                                "POST /webhooks/shopee HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                                 Authorization: {auth}\r\nContent-Length: {}\r\n\r\n{body}\0",
                                body.len()
                            )?;
                        }
                        std::fs::write(path, out)?;
                        Ok(())
                    })
                })
                .collect();
            jobs.into_iter()
                .try_for_each(|j| j.join().map_err(|_| anyhow::anyhow!("signing thread panicked"))?)
        })?;
        println!(
            "  signed {} distinct pushes for wrk in {:.1} s",
            PER_THREAD * WRK_THREADS,
            started.elapsed().as_secs_f64()
        );
        Ok(input)
    }

    fn thread_file(&self, thread: usize) -> PathBuf {
        let mut name = self.prefix.clone().into_os_string();
        name.push(format!(".{thread}"));
        PathBuf::from(name)
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.script);
        for thread in 0..WRK_THREADS {
            let _ = std::fs::remove_file(self.thread_file(thread));
        }
    }
}

/// The load's figures, whichever generator made it.
struct Measured {
    ok: u64,
    non_2xx: u64,
    socket_errors: String,
    /// Requests sent but not answered when the run stopped (they may still have been stored).
    unanswered: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Measured {
    fn from_reqwest(load: Load) -> Self {
        Self {
            ok: load.ok,
            non_2xx: load.errors,
            socket_errors: "counted with non-2xx".to_owned(),
            // Each client waits for its answer before the deadline check; a transport error may still have been
            // stored, so errors are the upper bound here.
            unanswered: load.errors,
            per_second: load.per_second,
            p50_ms: load.p50_ms,
            p99_ms: load.p99_ms,
        }
    }
}

/// Runs wrk against the gateway at `addr` with the pre-signed requests; fails if it ran out of them.
fn wrk_load(input: &WrkInput, addr: &str, clients: usize, duration: Duration) -> anyhow::Result<Measured> {
    let out = Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{clients}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("--latency")
        .arg("-s")
        .arg(&input.script)
        .arg(format!("http://{addr}/webhooks/shopee"))
        .arg("--")
        .arg(&input.prefix)
        .stdin(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        println!("  | {line}");
    }
    anyhow::ensure!(
        out.status.success(),
        "wrk failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: std::collections::HashMap<&str, u64> = text
        .lines()
        .find_map(|l| l.strip_prefix("xtask "))
        .ok_or_else(|| anyhow::anyhow!("no figures from the wrk script in: {text}"))?
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let get = |k: &str| {
        figures
            .get(k)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("wrk script did not report {k}"))
    };
    anyhow::ensure!(
        get("exhausted")? == 0,
        "wrk ran out of distinct pushes ({} sent): raise PER_THREAD",
        get("sent")?
    );
    let requests = get("requests")?;
    // wrk counts answers >= 400 as status errors; the gateway answers nothing in 1xx or 3xx, so the rest are 2xx.
    let non_2xx = get("status")?;
    let ok = requests - non_2xx;
    Ok(Measured {
        ok,
        non_2xx,
        socket_errors: format!(
            "connect {}, read {}, write {}, timeout {}",
            get("connect")?,
            get("read")?,
            get("write")?,
            get("timeout")?
        ),
        unanswered: get("sent")?.saturating_sub(requests),
        per_second: ok as f64 / (get("duration_us")? as f64 / 1e6),
        p50_ms: get("p50_us")? as f64 / 1000.0,
        p99_ms: get("p99_us")? as f64 / 1000.0,
    })
}

/// R3's mix of bad pushes, sent one at a time; returns (count, p99 ms, answers by status). Fails if any was stored.
async fn bad_pushes(n: usize) -> anyhow::Result<(usize, f64, String)> {
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(n);
    let mut statuses: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    let huge = format!("{{\"code\":3,\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 1));
    for i in 0..n {
        let body = format!(
            r#"{{"shop_id":900001,"code":3,"timestamp":1764072000,"data":{{"ordersn":"BAD{i:09}","status":"READY_TO_SHIP","update_time":1}}}}"#
        );
        let good = sign_push(PushSignatureMode::UrlAndBody, KEY, CALLBACK, body.as_bytes());
        let (payload, auth): (String, Option<String>) = match i % 6 {
            0 => (
                body.clone(),
                Some(sign_push(
                    PushSignatureMode::UrlAndBody,
                    "wrong-key",
                    CALLBACK,
                    body.as_bytes(),
                )),
            ),
            1 => (body.replacen("READY", "READZ", 1), Some(good)),
            2 => (body.clone(), None),
            3 => (body.replace(',', ", "), Some(good)),
            4 => {
                let invalid = format!("{}{{", &body[..body.len() - 1]);
                let auth = sign_push(PushSignatureMode::UrlAndBody, KEY, CALLBACK, invalid.as_bytes());
                (invalid, Some(auth))
            }
            _ => (
                huge.clone(),
                Some(sign_push(
                    PushSignatureMode::UrlAndBody,
                    KEY,
                    CALLBACK,
                    huge.as_bytes(),
                )),
            ),
        };
        let mut req = http.post(format!("http://{ADDR}/webhooks/shopee")).body(payload);
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let t = Instant::now();
        let status = req.send().await?.status().as_u16();
        latencies.push(t.elapsed());
        *statuses.entry(status).or_default() += 1;
    }
    latencies.sort();
    let stored: i64 = crate::bench::psql(DB, "SELECT count(*) FROM push_inbox")?.parse()?;
    anyhow::ensure!(stored == 0, "{stored} bad pushes were stored");
    let by_status = statuses
        .iter()
        .map(|(s, c)| format!("{s} x {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((n, percentile(&latencies, 0.99), by_status))
}

pub struct Load {
    pub ok: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `clients` concurrent clients sending signed READY_TO_SHIP pushes (each a new order) to the gateway at `addr`,
/// signed with `key` for `callback`, one after the other for `duration`.
pub async fn load(
    addr: &str,
    key: &str,
    callback: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let url: Arc<str> = format!("http://{addr}/webhooks/shopee").into();
    let key: Arc<str> = key.into();
    let callback: Arc<str> = callback.into();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (http, ok, errors) = (http.clone(), ok.clone(), errors.clone());
        let (url, key, callback) = (url.clone(), key.clone(), callback.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut seq: u64 = 0;
            while Instant::now() < deadline {
                seq += 1;
                let body = ready_to_ship_push(&format!("B{worker:03}X{seq:09}"));
                let auth = sign_push(PushSignatureMode::UrlAndBody, &key, &callback, body.as_bytes());
                let t = Instant::now();
                let resp = http
                    .post(&*url)
                    .header("Authorization", auth)
                    .body(body)
                    .send()
                    .await;
                latencies.push(t.elapsed());
                match resp {
                    Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let ok = ok.load(Ordering::Relaxed);
    Ok(Load {
        ok,
        errors: errors.load(Ordering::Relaxed),
        per_second: ok as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
}

/// pgbench: one single-row INSERT per transaction at `clients` concurrency; returns tps.
fn pgbench(clients: usize, duration: Duration) -> anyhow::Result<f64> {
    crate::bench::psql(
        DB,
        "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let script = std::env::temp_dir().join("seller-backend-pgbench-insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_insert (payload) VALUES ('{\"shop_id\":900001,\"code\":3}');\n",
    )?;
    let out = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-n", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(duration.as_secs().to_string())
        .arg("-f")
        .arg(&script)
        .arg(DB)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {text}"))
}

/// The body of a READY_TO_SHIP order push (code 3) for `order_sn`, as both load generators send it.
fn ready_to_ship_push(order_sn: &str) -> String {
    format!(
        r#"{{"shop_id":900001,"code":3,"timestamp":1764072000,"data":{{"ordersn":"{order_sn}","status":"READY_TO_SHIP","update_time":1764072000}}}}"#
    )
}
