//! `bench delivery`: the release delivery-status-consumer against a real Kafka-protocol broker (tansu, in-memory),
//! PostgreSQL and the release shopee-sandbox over HTTP.
//!
//! - skip path: 100,000 events of other sales channels (target >= 20,000 events/s);
//! - mixed: 100,000 events, 90% other channels and 10% Shopee (2,500 orders x ready, on_the_way, delivered and a
//!   late duplicate), events/s overall and Shopee events/s (each Shopee order costs 4 Shopee calls).
//!
//! Throughput is measured from the group's committed offsets (sampled every 20 ms), from the first commit to the
//! last, so the group join is not counted; the consumer commits every 200 ms, which bounds the error of each
//! figure (printed with it).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::json;
use shopee_client::TokenCipher;

use crate::bench::{Killed, Section, release_bin, rss_kb};
use crate::sh;

pub const EVENTS: usize = 100_000;
pub const SHOPEE_ORDERS: usize = 2_500;
const PARTITIONS: i32 = 6;
const DB: &str = "sb_bench_delivery";
pub const PARTNER_ID: u64 = 1_000_001;
pub const KEY: &str = "bench-partner-key";
const SHOP_ID: u64 = 900_777;
const TOKEN_KEY: [u8; 32] = [0; 32];
const TOKEN_KEY_B64: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SANDBOX_ADDR: &str = "127.0.0.1:18089";
const CONSUMER_ADDR: &str = "127.0.0.1:18084";

/// Runs the benchmark and prints its figures. (Two entry points: `run` as asked for, `section` for `BENCHES`;
/// whichever is wired, the other is unused.)
#[allow(dead_code)]
pub fn run() -> anyhow::Result<()> {
    section().map(|_| ())
}

/// The figures, for `docs/benchmarks.md`.
#[allow(dead_code)]
pub fn section() -> anyhow::Result<Section> {
    sh(Command::new("cargo").args([
        "build",
        "--release",
        "-p",
        "delivery-status-consumer",
        "-p",
        "shopee-sandbox",
    ]))?;
    let broker = Tansu::start()?;
    let sandbox = Killed(
        Command::new(release_bin("shopee-sandbox"))
            .env("SANDBOX_ADDR", SANDBOX_ADDR)
            .env("SHOPEE_PARTNER_ID", PARTNER_ID.to_string())
            .env("SHOPEE_PARTNER_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()?,
    );
    let url = crate::bench::fresh_database(DB)?;
    let consumer_bin = release_bin("delivery-status-consumer");
    sh(Command::new(&consumer_bin)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut s = Section::new("delivery: Kafka deliveries.out -> Shopee logistics");
    runtime.block_on(async {
        crate::bench::wait_ready(
            &format!("http://{SANDBOX_ADDR}/health/live"),
            Duration::from_secs(20),
        )
        .await?;
        seed(DB, &format!("http://{SANDBOX_ADDR}")).await?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "200000")
            .set("message.timeout.ms", "60000")
            .create()?;

        // 1. Skip path only.
        broker.create_topic("bench.skip")?;
        let skip: Vec<(String, Vec<u8>)> = (0..EVENTS).map(other_channel).collect();
        produce(&producer, "bench.skip", &skip).await?;
        let skip_run = consume(&consumer_bin, &url, &broker, "bench.skip", "bench-skip", EVENTS).await?;
        s.line(format!(
            "skip path: {EVENTS} other-channel events in {:.2} s = {:.0} events/s (target >= 20,000/s; \
             commit-interval error up to ±{:.0}%); consumer RSS {} MiB",
            skip_run.secs,
            skip_run.per_second(),
            skip_run.error_pct(),
            skip_run.rss_kb / 1024
        ));

        // 2. Mixed: 90% other channels, 10% Shopee.
        broker.create_topic("bench.mixed")?;
        let mixed = mixed_events();
        produce(&producer, "bench.mixed", &mixed).await?;
        let before = journal_count().await?;
        let mixed_run = consume(&consumer_bin, &url, &broker, "bench.mixed", "bench-mixed", EVENTS).await?;
        let calls = journal_count().await? - before;
        let shopee_events = SHOPEE_ORDERS * 4;
        let delivered: i64 = crate::bench::psql(
            DB,
            "SELECT count(*) FROM orders WHERE delivery_state = 'delivered'",
        )?
        .parse()?;
        s.line(format!(
            "mixed: {EVENTS} events ({shopee_events} Shopee, {} other) in {:.2} s = {:.0} events/s overall, \
             {:.0} Shopee events/s ({calls} Shopee calls = {:.0} calls/s against the sandbox over HTTP); \
             orders delivered: {delivered}/{SHOPEE_ORDERS}; consumer RSS {} MiB",
            EVENTS - shopee_events,
            mixed_run.secs,
            mixed_run.per_second(),
            shopee_events as f64 / mixed_run.secs,
            calls as f64 / mixed_run.secs,
            mixed_run.rss_kb / 1024
        ));
        anyhow::ensure!(
            delivered as usize == SHOPEE_ORDERS,
            "not every Shopee order was delivered"
        );
        anyhow::Ok(())
    })?;
    drop(sandbox);
    drop(broker);
    Ok(s)
}

fn other_channel(i: usize) -> (String, Vec<u8>) {
    let ev = json!({
        "event_type": "delivery.on_the_way", "event_id": format!("o-{i}"), "order_id": format!("ORDR-X{i}"),
        "sales_channel": if i.is_multiple_of(3) { "ifood" } else { "app" }, "external_order_id": format!("ext-{i}"),
        "hub_id": "SAO-01", "occurred_at": "2026-11-25T12:00:00Z", "tracking_number": format!("T{i}"),
        "tracking_url": null, "reason": null
    });
    (format!("ORDR-X{i}"), ev.to_string().into_bytes())
}

fn shopee_event(event_type: &str, sn: &str, n: usize) -> (String, Vec<u8>) {
    let ev = json!({
        "event_type": event_type, "event_id": format!("s-{sn}-{n}"), "order_id": format!("ORDR-{sn}"),
        "sales_channel": "shopee", "external_order_id": sn, "hub_id": "SAO-01",
        "occurred_at": "2026-11-25T12:00:00Z",
        "tracking_number": (event_type == "delivery.on_the_way").then(|| format!("TRK{sn}")),
        "tracking_url": null, "reason": null
    });
    (format!("ORDR-{sn}"), ev.to_string().into_bytes())
}

fn order_sn(i: usize) -> String {
    format!("BENCH{i:07}")
}

/// 10% Shopee events (each order's four in order), spread evenly among 90% other-channel events.
pub fn mixed_events() -> Vec<(String, Vec<u8>)> {
    let mut shopee = Vec::with_capacity(SHOPEE_ORDERS * 4);
    for step in 0..4 {
        for i in 0..SHOPEE_ORDERS {
            let sn = order_sn(i);
            let t = [
                "delivery.ready",
                "delivery.on_the_way",
                "delivery.delivered",
                "delivery.ready",
            ][step];
            shopee.push(shopee_event(t, &sn, step));
        }
    }
    let mut out = Vec::with_capacity(EVENTS);
    let mut shopee = shopee.into_iter();
    for i in 0..EVENTS {
        if i % 10 == 9
            && let Some(e) = shopee.next()
        {
            out.push(e);
            continue;
        }
        out.push(other_channel(i));
    }
    out.extend(shopee);
    out
}

pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    events: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let started = Instant::now();
    // Enqueue everything at once (`send_result`), then wait for the delivery reports.
    let mut pending = Vec::with_capacity(events.len());
    for (k, v) in events {
        let mut record = FutureRecord::to(topic).key(k).payload(v);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((e, back)) => {
                    anyhow::ensure!(
                        e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        "produce failed: {e}"
                    );
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for d in pending {
        d.await
            .map_err(|_| anyhow::anyhow!("producer dropped a message"))?
            .map_err(|(e, _)| anyhow::anyhow!("produce failed: {e}"))?;
    }
    println!(
        "  produced {} events to {topic} in {:.2} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Shop tokens (the sandbox at `sandbox_url` + database `db`, encrypted), the Shopee orders at the sandbox and in
/// `orders`.
pub async fn seed(db: &str, sandbox_url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = format!("{sandbox_url}/_sandbox");
    let tokens: serde_json::Value = http
        .post(format!("{base}/shops/{SHOP_ID}/tokens"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let access = tokens["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no access_token: {tokens}"))?;
    let refresh = tokens["refresh_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no refresh_token: {tokens}"))?;
    let cipher = TokenCipher::new(TOKEN_KEY);
    // `domain::ShopId` through inference (xtask does not depend on `domain`).
    let a = hex(&cipher.encrypt(serde_json::from_value(json!(SHOP_ID))?, "access_token", access)?);
    let r = hex(&cipher.encrypt(serde_json::from_value(json!(SHOP_ID))?, "refresh_token", refresh)?);
    crate::bench::psql(
        db,
        &format!(
            "INSERT INTO shops (shop_id, authorized_at) VALUES ({SHOP_ID}, now()); \
             INSERT INTO shop_tokens (shop_id, access_token_enc, refresh_token_enc, access_expires_at, refresh_expires_at) \
             VALUES ({SHOP_ID}, '\\x{a}', '\\x{r}', now() + interval '4 hours', now() + interval '30 days'); \
             INSERT INTO orders (shop_id, order_sn, intake_state, published_at) \
             SELECT {SHOP_ID}, 'BENCH' || lpad(i::text, 7, '0'), 'published', now() FROM generate_series(0, {}) AS i",
            SHOPEE_ORDERS - 1
        ),
    )?;
    for chunk in (0..SHOPEE_ORDERS).collect::<Vec<_>>().chunks(500) {
        let orders: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| json!({"shop_id": SHOP_ID, "order_sn": order_sn(*i), "order_status": "READY_TO_SHIP"}))
            .collect();
        http.post(format!("{base}/orders"))
            .json(&orders)
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn journal_count() -> anyhow::Result<usize> {
    let journal: serde_json::Value = reqwest::get(format!("http://{SANDBOX_ADDR}/_sandbox/journal"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(journal.as_array().map_or(0, Vec::len))
}

struct RunFigures {
    secs: f64,
    events: usize,
    /// The commit interval, relative to the measured time.
    resolution_secs: f64,
    rss_kb: u64,
}

impl RunFigures {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.secs
    }

    fn error_pct(&self) -> f64 {
        100.0 * self.resolution_secs / self.secs
    }
}

/// The consumer's environment (HTTP_ADDR and RUST_LOG aside): database, the sandbox as Shopee, the broker, `topic`
/// read by `group`.
pub fn consumer_env(
    db_url: &str,
    sandbox_url: &str,
    bootstrap: &str,
    topic: &str,
    group: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db_url.to_owned()),
        ("SHOPEE_API_BASE_URL", sandbox_url.to_owned()),
        ("SHOPEE_PARTNER_ID", PARTNER_ID.to_string()),
        ("SHOPEE_PARTNER_KEY", KEY.to_owned()),
        ("SHOPEE_RATE_LIMIT_PER_SHOP", "100000".to_owned()),
        ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY_B64.to_owned()),
        ("KAFKA_BROKERS", bootstrap.to_owned()),
        ("KAFKA_DELIVERY_TOPIC", topic.to_owned()),
        ("KAFKA_GROUP_ID", group.to_owned()),
    ]
}

/// A client that reads `group`'s committed offsets (never joins the group).
pub fn group_admin(broker: &Tansu, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?)
}

/// The offsets committed on `topic` by `admin`'s group, summed over the partitions (blocking, up to 5 s).
pub fn committed(admin: &BaseConsumer, topic: &str) -> anyhow::Result<usize> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let c = admin.committed_offsets(tpl, Duration::from_secs(5))?;
    Ok(c.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) if o > 0 => o as usize,
            _ => 0,
        })
        .sum())
}

/// Starts the release consumer on `topic` with a fresh group, and measures until every event is committed.
async fn consume(
    bin: &PathBuf,
    db_url: &str,
    broker: &Tansu,
    topic: &str,
    group: &str,
    events: usize,
) -> anyhow::Result<RunFigures> {
    let child = Killed(
        Command::new(bin)
            .env("HTTP_ADDR", CONSUMER_ADDR)
            .envs(consumer_env(
                db_url,
                &format!("http://{SANDBOX_ADDR}"),
                &broker.bootstrap(),
                topic,
                group,
            ))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()?,
    );
    let admin = group_admin(broker, group)?;
    let committed_now = || committed(&admin, topic);
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut first, mut first_count) = (None, 0);
    let mut rss = 0;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic}: not consumed within 10 minutes"
        );
        let n = tokio::task::block_in_place(committed_now)?;
        if first.is_none() && n > 0 {
            first = Some(Instant::now());
            first_count = n;
        }
        rss = rss.max(rss_kb(child.0.id()));
        if n >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end = Instant::now();
    let start = first.unwrap_or(end);
    // The first sample already holds what was committed in the first commit interval: count it with that interval.
    let secs = (end - start).as_secs_f64() + 0.2 * (first_count as f64 / events as f64).clamp(0.0, 1.0);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status();
    drop(child);
    Ok(RunFigures {
        secs: secs.max(0.001),
        events,
        resolution_secs: 0.2,
        rss_kb: rss,
    })
}

/// tansu on a free port with in-memory storage.
pub struct Tansu {
    child: Killed,
    port: u16,
    bin: PathBuf,
}

impl Tansu {
    pub fn start() -> anyhow::Result<Self> {
        let bin = std::env::var_os("TANSU_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
                home.join(".cargo/bin/tansu")
            });
        anyhow::ensure!(
            bin.is_file(),
            "tansu is not installed ({}): run `cargo xtask bootstrap --for bench`",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(20), "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child: Killed(child),
            port,
            bin,
        })
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str) -> anyhow::Result<()> {
        sh(Command::new(&self.bin)
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .args(["--partitions", &PARTITIONS.to_string(), name]))
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.0.kill();
    }
}
