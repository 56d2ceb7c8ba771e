//! `bench quotation`: the release webhook-gateway answering signed `POST /shopee/quotation` calls at a fixed
//! 500 requests/s (open loop: each request is sent at its scheduled instant whatever the previous ones did, and its
//! latency is measured from that instant, so a stall is not hidden) with the hub config warm. A local Hub Config
//! Service stand-in counts its requests: the quotation path must not call it (refresh set to 1 h).
//!
//! Target (quality-bar.md): p99 < 5 ms. Figures: p50 / p99 / max client-side latency, the outcome mix, the
//! gateway's RSS, and the Hub Config requests made during the run.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::bench::{Section, percentile, release_bin, rss_kb};
use crate::sh;

const RATE: u64 = 500;
const SECONDS: u64 = 10;
const WARMUP: u64 = 200;
const DB: &str = "sb_bench_quotation";
const PARTNER_ID: u64 = 1_000_001;
const KEY: &str = "bench-partner-key";
const GATEWAY_ADDR: &str = "127.0.0.1:18086";
const SHOP: u64 = 900_001;

/// Runs the benchmark and prints its figures.
#[allow(dead_code)]
pub fn run() -> anyhow::Result<()> {
    section().map(|_| ())
}

/// A stand-in for the Hub Config Service on its own thread: answers every request with `hubs`, counts them.
pub fn hub_config_stub(requests: Arc<AtomicUsize>) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut hubs = Vec::new();
    for i in 0..20 {
        // 20 hubs of the shop on a line; the destination sits inside the first one's radius.
        hubs.push(json!({"hub_id": format!("SAO-{i:02}"), "active": true, "shopee_shop_id": SHOP,
            "location": {"zipcode": "01310100", "latitude": -23.5614 - 0.1 * f64::from(i), "longitude": -46.6559},
            "delivery": {"radius_km": 5.0, "base_fee": "4.90", "fee_per_km": "1.10", "free_above": "99.00",
                         "preparation_minutes": 8, "speed_kmh": 18,
                         "zip_ranges": [["01000000", "01599999"]], "zip_fee": "9.90"},
            "opening_hours": (1..=7).map(|d| json!({"weekday": d, "open": "00:00", "close": "24:00"})).collect::<Vec<_>>()}));
    }
    let body = serde_json::to_string(&hubs)?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            requests.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    Ok(url)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The figures, for `docs/benchmarks.md`.
#[allow(dead_code)]
pub fn section() -> anyhow::Result<Section> {
    sh(Command::new("cargo").args(["build", "--release", "-p", "webhook-gateway"]))?;
    let url = crate::bench::fresh_database(DB)?;
    let bin = release_bin("webhook-gateway");
    sh(Command::new(&bin)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn"))?;
    let hub_requests = Arc::new(AtomicUsize::new(0));
    let hub_url = hub_config_stub(hub_requests.clone())?;
    let mut gateway = Command::new(&bin)
        .env("HTTP_ADDR", GATEWAY_ADDR)
        .env("DATABASE_URL", &url)
        .env("SHOPEE_PARTNER_ID", PARTNER_ID.to_string())
        .env("SHOPEE_PARTNER_KEY", KEY)
        .env(
            "SHOPEE_PUSH_CALLBACK_URL",
            "https://seller.example.com/webhooks/shopee",
        )
        .env(
            "TOKEN_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("HUB_CONFIG_URL", &hub_url)
        .env("HUB_CONFIG_REFRESH_SECS", "3600")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()?;
    let pid = gateway.id();
    let result = measure(pid, &hub_requests);
    let _ = gateway.kill();
    let _ = gateway.wait();
    result
}

fn measure(pid: u32, hub_requests: &Arc<AtomicUsize>) -> anyhow::Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        crate::bench::wait_ready(&format!("http://{GATEWAY_ADDR}/health/live"), Duration::from_secs(20)).await?;
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
        // Channel 90026 (Entrega Expressa) in the shape of Shopee's Brazil guide (docs/quotation.md).
        let body = json!({"channel_id": 90026, "shop_id": SHOP, "origin_zip_code": "01310100",
            "destination_zip_code": "01311000", "destination_lat_long": {"latitude": -23.5861, "longitude": -46.6528},
            "items": [{"item_id": 100001, "sku": "789100000001", "model_id": 0, "model_sku": "", "category_id": 0,
                       "quantity": 2, "price": 12.9,
                       "dimensions": {"length": 10, "width": 10, "height": 10, "weight": 500}}]})
        .to_string();
        let target = format!("http://{GATEWAY_ADDR}/shopee/quotation");
        let send = |http: reqwest::Client, target: String, body: String| async move {
            let ts = now_secs();
            let sign = shopee_client::sign::sign_public(KEY, PARTNER_ID, "/shopee/quotation", ts);
            let resp = http
                .post(format!("{target}?partner_id={PARTNER_ID}&timestamp={ts}&sign={sign}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            }
        };
        // Warm: config loaded (a 200), connections open.
        let deadline = Instant::now() + Duration::from_secs(10);
        while send(http.clone(), target.clone(), body.clone()).await != 200 {
            anyhow::ensure!(Instant::now() < deadline, "the gateway never answered 200 (hub config not loaded?)");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..WARMUP {
            send(http.clone(), target.clone(), body.clone()).await;
        }
        let hub_before = hub_requests.load(Ordering::SeqCst);
        let total = RATE * SECONDS;
        let interval = Duration::from_micros(1_000_000 / RATE);
        let start = Instant::now() + Duration::from_millis(50);
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let at = start + interval * u32::try_from(i)?;
            tokio::time::sleep_until(at.into()).await;
            let (http, target, body) = (http.clone(), target.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let status = send(http, target, body).await;
                (status, at.elapsed())
            }));
        }
        let mut latencies = Vec::with_capacity(tasks.len());
        let mut ok = 0usize;
        let mut other = 0usize;
        for t in tasks {
            let (status, latency) = t.await?;
            if status == 200 {
                ok += 1;
            } else {
                other += 1;
            }
            latencies.push(latency);
        }
        let elapsed = start.elapsed();
        latencies.sort();
        let hub_during = hub_requests.load(Ordering::SeqCst) - hub_before;
        let p50 = percentile(&latencies, 0.50);
        let p99 = percentile(&latencies, 0.99);
        let max = latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let mut s = Section::new("quotation: POST /shopee/quotation at 500 requests/s, hub config warm");
        s.line(format!(
            "{total} signed quotations scheduled at {RATE}/s over {SECONDS} s (open loop; achieved {:.0}/s): {ok} x 200, {other} other",
            total as f64 / elapsed.as_secs_f64()
        ));
        s.line(format!(
            "latency from the scheduled send: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (target p99 < 5 ms: {})",
            if p99 < 5.0 { "met" } else { "NOT met" }
        ));
        s.line(format!("Hub Config Service requests during the run: {hub_during} (must be 0: requests never wait on it)"));
        s.line(format!("gateway RSS after the run: {:.1} MB", rss_kb(pid) as f64 / 1024.0));
        anyhow::ensure!(other == 0, "{other} quotations were not answered 200");
        anyhow::ensure!(hub_during == 0, "quotations called the Hub Config Service {hub_during} times");
        Ok(s)
    })
}
