//! `bench ingest`: signed pushes verified and persisted per second at 64 concurrent clients (release gateway,
//! real PostgreSQL), next to `pgbench` running one single-row INSERT per transaction at the same concurrency on the
//! same machine in the same run.

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
    let url = crate::bench::fresh_database(DB)?;
    let gateway = release_bin("webhook-gateway");
    sh(Command::new(&gateway)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn"))?;

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
        let load = load(ADDR, KEY, CALLBACK, CLIENTS, DURATION).await?;
        let loaded_rss = rss_kb(child.id());
        anyhow::Ok((ready, idle_rss, loaded_rss, load, rejections))
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let (ready, idle_rss, loaded_rss, load, (rejections, rejected_p99, by_status)) = result?;

    let stored: i64 = crate::bench::psql(DB, "SELECT count(*) FROM push_inbox")?.parse()?;
    let pg_tps = pgbench(CLIENTS, DURATION)?;
    let ratio = load.per_second / pg_tps;
    let mut s = Section::new("ingest: signed pushes verified + persisted");
    s.line(format!(
        "clients: {CLIENTS}, duration: {} s, release webhook-gateway, PostgreSQL on loopback",
        DURATION.as_secs()
    ));
    s.line(format!(
        "pushes answered 200: {} ({} errors); rows in push_inbox: {stored}",
        load.ok, load.errors
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
    Ok(s)
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
                let body = format!(
                    r#"{{"shop_id":900001,"code":3,"timestamp":1764072000,"data":{{"ordersn":"B{worker:03}X{seq:09}","status":"READY_TO_SHIP","update_time":1764072000}}}}"#
                );
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
