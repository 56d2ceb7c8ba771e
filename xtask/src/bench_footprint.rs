//! `bench footprint`: each of the five deployables started as a release process with a complete environment (its
//! own fresh database migrated by itself, Redis, the Pub/Sub emulator, a tansu broker, the Shopee sandbox, a Hub
//! Config Service stand-in), then:
//!
//! - start to ready: from spawn until `/health/ready` first answers 200 (polled every 10 ms);
//! - RSS idle: VmRSS 3 s after ready, nothing to do;
//! - RSS loaded: the most VmRSS sampled every 10 ms (on a thread of its own) while the binary works through a real
//!   load of its kind, the loads of the other benchmarks: signed pushes from 64 clients (gateway), a burst of 10,000
//!   READY_TO_SHIP orders through the sandbox and a gateway (publisher), 100,000 price and stock events over 5,000
//!   SKUs on its subscriptions (catalog-sync-worker), 100,000 delivery events of which 10% Shopee on its Kafka topic
//!   (delivery consumer), 16 clients of authenticated GETs, POST /v1/campaigns (a Shopee discount each) and DELETE of
//!   them (campaign-api).
//!
//! Targets (quality-bar.md "Performance"): start to ready < 1 s, RSS < 50 MB idle and < 150 MB loaded (MB = 10^6
//! bytes). Every wait is bounded; a binary that exits, is not ready in time or does not finish its load fails the
//! benchmark (its figures are still printed).

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use domain::mapping::{MappingSource, ProductMapping};
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use product_mapping::{HubLocation, Hubs, Mappings};
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use service_runtime::config::{PubSubConfig, Secret};
use service_runtime::pubsub::google_cloud_pubsub::model::Message;
use shopee_sandbox::{Sandbox, SandboxConfig, SeedItem};

use crate::bench::{Killed, Section, release_bin, rss_kb, wait_ready};
use crate::sh;

const READY_TARGET: Duration = Duration::from_secs(1);
const IDLE_TARGET_BYTES: u64 = 50_000_000;
const LOADED_TARGET_BYTES: u64 = 150_000_000;
/// How long a binary sits idle after ready before its idle RSS is read.
const IDLE_AFTER: Duration = Duration::from_secs(3);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Every load ends (done or not) by its deadline; this much more and the benchmark gives up on it.
const GRACE: Duration = Duration::from_secs(30);
const REDIS_URL: &str = "redis://127.0.0.1:6379";
const PROJECT: &str = "bench-footprint";
/// The Shopee app of the catalog and campaign phases (the others use their benchmark's).
const PARTNER: u64 = 5_000_001;
const KEY: &str = "bench-footprint-partner-key";

/// The bench's entry in `BENCHES`.
pub fn section() -> anyhow::Result<Section> {
    let mut build = crate::cargo();
    build.args(["build", "--release"]);
    for bin in crate::DEPLOYABLES {
        build.args(["--bin", bin]);
    }
    sh(&mut build)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut s = Section::new("footprint: start to ready and RSS of every binary, idle and loaded");
    s.line(format!(
        "release binaries, RUST_LOG=warn; RSS = VmRSS: idle {} s after ready, loaded = max sampled every 10 ms during \
         the load; targets: start to ready < 1 s, RSS < 50 MB idle and < 150 MB loaded (MB = 10^6 bytes: {:.1} and \
         {:.1} MiB)",
        IDLE_AFTER.as_secs(),
        IDLE_TARGET_BYTES as f64 / 1024.0 / 1024.0,
        LOADED_TARGET_BYTES as f64 / 1024.0 / 1024.0,
    ));
    let mut failed = Vec::new();
    let mut not_met = Vec::new();
    let mut record = |name: &str, result: anyhow::Result<Figures>| match result {
        Ok(f) => {
            for miss in f.misses() {
                not_met.push(format!("{name} {miss}"));
            }
            if !f.complete {
                failed.push(format!("{name}: load not completed"));
            }
            s.line(f.line(name));
        }
        Err(e) => {
            s.line(format!("{name}: FAILED: {e:#}"));
            failed.push(format!("{name}: {e:#}"));
        }
    };
    record("webhook-gateway", runtime.block_on(gateway()));
    record("order-publisher", runtime.block_on(publisher()));
    record("catalog-sync-worker", runtime.block_on(catalog()));
    record("delivery-status-consumer", runtime.block_on(delivery()));
    record("campaign-api", runtime.block_on(campaign()));
    if not_met.is_empty() {
        s.line("every target met by every binary".into());
    } else {
        s.line(format!("targets NOT met: {}", not_met.join(", ")));
    }
    anyhow::ensure!(
        failed.is_empty(),
        "{}; figures: {}",
        failed.join("; "),
        s.lines().join(" | ")
    );
    Ok(s)
}

/// One binary's figures.
struct Figures {
    ready: Duration,
    idle_kb: u64,
    loaded_kb: u64,
    /// What the load was and what the binary did with it.
    load: String,
    /// The binary did all the load's work within its deadline.
    complete: bool,
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

impl Figures {
    fn ready_ok(&self) -> bool {
        self.ready < READY_TARGET
    }

    fn idle_ok(&self) -> bool {
        self.idle_kb * 1024 < IDLE_TARGET_BYTES
    }

    fn loaded_ok(&self) -> bool {
        self.loaded_kb * 1024 < LOADED_TARGET_BYTES
    }

    fn misses(&self) -> Vec<&'static str> {
        [
            (self.ready_ok(), "start to ready"),
            (self.idle_ok(), "RSS idle"),
            (self.loaded_ok(), "RSS loaded"),
        ]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect()
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: start to ready {} ms (< 1 s: {}); RSS idle {:.1} MiB (< 50 MB: {}); RSS loaded (max) {:.1} MiB \
             (< 150 MB: {}); load: {}",
            self.ready.as_millis(),
            met(self.ready_ok()),
            mib(self.idle_kb),
            met(self.idle_ok()),
            mib(self.loaded_kb),
            met(self.loaded_ok()),
            self.load
        )
    }
}

/// The most RSS of a process, sampled every 10 ms on a thread of its own (the load's tasks cannot delay it).
struct RssMax {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssMax {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(rss_kb(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            max.max(rss_kb(pid))
        });
        Self { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// A measured binary, running (stopped with SIGTERM when dropped).
struct Running {
    name: &'static str,
    child: Killed,
    ready: Duration,
    idle_kb: u64,
}

/// Spawns the release `name` on `addr` with `env`, waits until it is ready, lets it idle, reads its idle RSS.
async fn start(name: &'static str, addr: &str, env: &[(&str, String)]) -> anyhow::Result<Running> {
    let spawned = Instant::now();
    let child = Killed(crate::bench_orders::spawn(name, addr, env)?);
    wait_ready(&format!("http://{addr}/health/ready"), READY_TIMEOUT).await?;
    let ready = spawned.elapsed();
    tokio::time::sleep(IDLE_AFTER).await;
    let mut running = Running {
        name,
        child,
        ready,
        idle_kb: 0,
    };
    running.alive()?;
    running.idle_kb = rss_kb(running.child.0.id());
    Ok(running)
}

impl Running {
    fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.0.try_wait()? {
            anyhow::bail!("{} exited ({status})", self.name);
        }
        Ok(())
    }

    /// Runs `load` (which ends by `deadline`, done or not; GRACE more and it is abandoned) and samples the RSS all
    /// along; returns what `load` returned and the most RSS seen.
    async fn under<T>(
        &mut self,
        deadline: Duration,
        load: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, u64)> {
        let sampler = RssMax::start(self.child.0.id());
        let result = tokio::time::timeout(deadline + GRACE, load).await;
        let max = sampler.stop();
        self.alive()?;
        let result =
            result.map_err(|_| anyhow::anyhow!("the load did not end within {:?}", deadline + GRACE))?;
        Ok((result?, max))
    }

    fn figures(self, loaded_kb: u64, load: String, complete: bool) -> Figures {
        Figures {
            ready: self.ready,
            idle_kb: self.idle_kb,
            loaded_kb,
            load,
            complete,
        }
    }
}

/// A fresh database with the schema applied by `bin migrate`; its URL.
fn fresh_migrated(bin: &str, db: &str) -> anyhow::Result<String> {
    let url = crate::bench::fresh_database(db)?;
    sh(Command::new(release_bin(bin))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn"))?;
    Ok(url)
}

/// Polls `count` every 100 ms until `done` says so or `deadline` passes (measured from `since`); the last count.
async fn wait_for<F, Fut>(
    since: Instant,
    deadline: Duration,
    done: impl Fn(i64) -> bool,
    mut count: F,
) -> anyhow::Result<i64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<i64>>,
{
    loop {
        let n = count().await?;
        if done(n) || since.elapsed() >= deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(pool: &sqlx::PgPool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

// ---------------------------------------------------------------------------------------------------------------
// webhook-gateway: signed pushes from 64 clients (the ingest load).

const GATEWAY_ADDR: &str = "127.0.0.1:18280";
const PUSH_CLIENTS: usize = 64;
const PUSH_FOR: Duration = Duration::from_secs(10);

async fn gateway() -> anyhow::Result<Figures> {
    let url = fresh_migrated("webhook-gateway", "sb_bench_footprint_gateway")?;
    let stack = crate::bench_orders::order_stack(&url, PROJECT, GATEWAY_ADDR).await?;
    let mut gateway = start("webhook-gateway", GATEWAY_ADDR, &stack.env).await?;
    let callback = format!("http://{GATEWAY_ADDR}/webhooks/shopee");
    let (load, loaded) = gateway
        .under(
            PUSH_FOR,
            crate::bench_ingest::load(
                GATEWAY_ADDR,
                crate::bench_orders::KEY,
                &callback,
                PUSH_CLIENTS,
                PUSH_FOR,
            ),
        )
        .await?;
    let stored = count(&stack.pool, "SELECT count(*) FROM push_inbox").await?;
    Ok(gateway.figures(
        loaded,
        format!(
            "{PUSH_CLIENTS} clients sending signed READY_TO_SHIP pushes for {} s: {} answered 200 ({:.0}/s, p99 \
             {:.1} ms), {} errors; rows in push_inbox: {stored}",
            PUSH_FOR.as_secs(),
            load.ok,
            load.per_second,
            load.p99_ms,
            load.errors
        ),
        load.ok > 0 && load.errors == 0,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// order-publisher: a burst of 10,000 READY_TO_SHIP orders pushed by the sandbox to a gateway (the orders load).

const PUBLISHER_GATEWAY_ADDR: &str = "127.0.0.1:18281";
const PUBLISHER_ADDR: &str = "127.0.0.1:18282";
const ORDERS: usize = 10_000;
const ORDERS_DEADLINE: Duration = Duration::from_secs(300);

async fn publisher() -> anyhow::Result<Figures> {
    let url = fresh_migrated("order-publisher", "sb_bench_footprint_publisher")?;
    let stack = crate::bench_orders::order_stack(&url, PROJECT, PUBLISHER_GATEWAY_ADDR).await?;
    // The gateway receives the pushes; only the publisher is measured.
    let _gateway = Killed(crate::bench_orders::spawn(
        "webhook-gateway",
        PUBLISHER_GATEWAY_ADDR,
        &stack.env,
    )?);
    wait_ready(
        &format!("http://{PUBLISHER_GATEWAY_ADDR}/health/ready"),
        READY_TIMEOUT,
    )
    .await?;
    let mut publisher = start("order-publisher", PUBLISHER_ADDR, &stack.env).await?;
    let started = Instant::now();
    let ((pushed_in, published), loaded) = publisher
        .under(ORDERS_DEADLINE, async {
            stack
                .sandbox
                .seed_orders(crate::bench_orders::ready_to_ship(ORDERS, "FOOTPRINT"))
                .await?;
            let pushed_in = started.elapsed();
            let pool = &stack.pool;
            let published = wait_for(
                started,
                ORDERS_DEADLINE,
                |n| n >= ORDERS as i64,
                move || {
                    count(
                        pool,
                        "SELECT count(*) FROM orders WHERE intake_state = 'published'",
                    )
                },
            )
            .await?;
            anyhow::Ok((pushed_in, published))
        })
        .await?;
    Ok(publisher.figures(
        loaded,
        format!(
            "{ORDERS} READY_TO_SHIP orders pushed by the sandbox to a gateway one at a time in {:.1} s; {published} \
             published to the emulator {:.1} s after the first push",
            pushed_in.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ),
        published == ORDERS as i64,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// catalog-sync-worker: 100,000 price and stock events over 5,000 SKUs on its two subscriptions (the catalog load,
// half of it prices).

const CATALOG_ADDR: &str = "127.0.0.1:18283";
/// Versions of each SKU's price and of its stock: 5,000 SKUs x 10 x 2 = 100,000 events.
const CATALOG_VERSIONS: usize = 10;
const CATALOG_DEADLINE: Duration = Duration::from_secs(300);

fn price_event(n: usize, v: usize) -> serde_json::Value {
    serde_json::json!({
        "event_id": format!("fp-{n}-{v}"), "sku": format!("BC-{n}"), "hub_id": crate::bench_catalog::HUB,
        "price": format!("{}.{:02}", 2 + n % 50, v), "occurred_at": "2026-11-25T12:00:00Z", "version": v,
    })
}

async fn catalog() -> anyhow::Result<Figures> {
    use crate::bench_catalog::{ITEMS, MODELS, SHOP};
    let url = fresh_migrated("catalog-sync-worker", "sb_bench_footprint_catalog")?;
    let pool = sqlx::PgPool::connect(&url).await?;
    let redis = service_runtime::redis::pool(&Secret::new(REDIS_URL))?;
    let sandbox = Sandbox::start(SandboxConfig::new(PARTNER, KEY)).await?;
    crate::bench_catalog::seed_catalog(&sandbox, &pool, &Mappings::new(pool.clone(), Some(redis))).await?;
    crate::bench_orders::authorize_shop(&pool, &sandbox, PARTNER, KEY, SHOP).await?;
    let hub_config = crate::bench_quotation::hub_config_stub(Arc::new(AtomicUsize::new(0)))?;

    // The same topics each run; the subscriptions made anew, so nothing is left from an earlier run.
    let pubsub = PubSubConfig {
        project_id: PROJECT.into(),
        emulator_host: Some(crate::services::PUBSUB_EMULATOR_HOST.into()),
    };
    let topics = service_runtime::pubsub::topic_admin(&pubsub).await?;
    let subs = service_runtime::pubsub::subscription_admin(&pubsub).await?;
    let names = [
        ("footprint-price", "footprint-price-sub"),
        ("footprint-inventory", "footprint-inventory-sub"),
    ];
    for (topic, sub) in names {
        let (topic, sub) = (pubsub.topic_path(topic), pubsub.subscription_path(sub));
        let _ = subs
            .delete_subscription()
            .set_subscription(sub.clone())
            .send()
            .await;
        service_runtime::pubsub::ensure_topic(&topics, &topic).await?;
        service_runtime::pubsub::ensure_subscription(&subs, &sub, &topic, 60).await?;
    }
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", url.clone()),
        ("REDIS_URL", REDIS_URL.into()),
        ("SHOPEE_API_BASE_URL", sandbox.base_url()),
        ("SHOPEE_PARTNER_ID", PARTNER.to_string()),
        ("SHOPEE_PARTNER_KEY", KEY.into()),
        ("SHOPEE_RATE_LIMIT_PER_SHOP", "1000".into()),
        ("TOKEN_ENCRYPTION_KEY", crate::bench_orders::TOKEN_KEY.into()),
        ("PUBSUB_PROJECT_ID", PROJECT.into()),
        (
            "PUBSUB_EMULATOR_HOST",
            crate::services::PUBSUB_EMULATOR_HOST.into(),
        ),
        ("PRICE_UPDATE_TOPIC", names[0].0.into()),
        ("PRICE_UPDATE_SUBSCRIPTION", names[0].1.into()),
        ("INVENTORY_UPDATE_TOPIC", names[1].0.into()),
        ("INVENTORY_UPDATE_SUBSCRIPTION", names[1].1.into()),
        ("HUB_CONFIG_URL", hub_config),
        // No Catalog Service here: content sync on demand only.
        ("CATALOG_GRAPHQL_URL", "http://127.0.0.1:9/graphql".into()),
        ("CONTENT_SYNC_INTERVAL_SECS", "0".into()),
    ];
    let mut worker = start("catalog-sync-worker", CATALOG_ADDR, &env).await?;
    let skus = ITEMS * MODELS;
    let events = 2 * skus * CATALOG_VERSIONS;
    let started = Instant::now();
    let price = service_runtime::pubsub::publisher(&pubsub, &pubsub.topic_path(names[0].0)).await?;
    let stock = service_runtime::pubsub::publisher(&pubsub, &pubsub.topic_path(names[1].0)).await?;
    let ((published_in, consumed_in, newest, pending), loaded) = worker
        .under(CATALOG_DEADLINE, async {
            // Version by version, prices and stocks interleaved (so the last published are the newest).
            for v in 1..=CATALOG_VERSIONS {
                let mut pending = Vec::with_capacity(2 * skus);
                for n in 0..skus {
                    pending.push(price.publish(Message::new().set_data(price_event(n, v).to_string())));
                    pending.push(stock.publish(
                        Message::new().set_data(crate::bench_catalog::inventory_event(n, v).to_string()),
                    ));
                }
                for p in pending {
                    p.await?;
                }
            }
            let published_in = started.elapsed();
            // Consumed: every model's newest price and stock recorded; then drained: all of it sent to Shopee.
            let pool = &pool;
            let newest = wait_for(
                started,
                CATALOG_DEADLINE,
                |n| n >= 2 * skus as i64,
                move || async move {
                    Ok(sqlx::query_scalar(
                        "SELECT count(*) FROM catalog_sync_state WHERE newest_version = $1",
                    )
                    .bind(CATALOG_VERSIONS as i64)
                    .fetch_one(pool)
                    .await?)
                },
            )
            .await?;
            let consumed_in = started.elapsed();
            let pending = wait_for(
                started,
                CATALOG_DEADLINE,
                |n| n == 0,
                move || {
                    count(
                        pool,
                        "SELECT count(*) FROM catalog_sync_state WHERE state <> 'applied'",
                    )
                },
            )
            .await?;
            anyhow::Ok((published_in, consumed_in, newest, pending))
        })
        .await?;
    let calls = sandbox
        .journal()
        .iter()
        .filter(|e| e.api.ends_with("/product/update_price") || e.api.ends_with("/product/update_stock"))
        .count();
    Ok(worker.figures(
        loaded,
        format!(
            "{events} events ({} price + {} stock, {CATALOG_VERSIONS} versions of each of {skus} SKUs) published in \
             {:.1} s; newest versions recorded for {newest} of {} (model, kind) in {:.1} s; not yet applied after \
             {:.1} s: {pending}; Shopee update_price/update_stock calls: {calls}",
            events / 2,
            events / 2,
            published_in.as_secs_f64(),
            2 * skus,
            consumed_in.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ),
        newest == 2 * skus as i64 && pending == 0,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// delivery-status-consumer: 100,000 events on its Kafka topic, 10% of them Shopee orders' (the mixed delivery load).

const DELIVERY_ADDR: &str = "127.0.0.1:18284";
const DELIVERY_DB: &str = "sb_bench_footprint_delivery";
const DELIVERY_TOPIC: &str = "footprint.deliveries";
const DELIVERY_DEADLINE: Duration = Duration::from_secs(180);

async fn delivery() -> anyhow::Result<Figures> {
    use crate::bench_delivery::{EVENTS, SHOPEE_ORDERS};
    let broker = crate::bench_delivery::Tansu::start()?;
    let sandbox = Sandbox::start(SandboxConfig::new(
        crate::bench_delivery::PARTNER_ID,
        crate::bench_delivery::KEY,
    ))
    .await?;
    let url = fresh_migrated("delivery-status-consumer", DELIVERY_DB)?;
    crate::bench_delivery::seed(DELIVERY_DB, &sandbox.base_url()).await?;
    broker.create_topic(DELIVERY_TOPIC)?;
    let group = "footprint";
    let mut env = crate::bench_delivery::consumer_env(
        &url,
        &sandbox.base_url(),
        &broker.bootstrap(),
        DELIVERY_TOPIC,
        group,
    );
    env.push(("REDIS_URL", REDIS_URL.into()));
    let mut consumer = start("delivery-status-consumer", DELIVERY_ADDR, &env).await?;
    let admin = crate::bench_delivery::group_admin(&broker, group)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "60000")
        .create()?;
    let events = crate::bench_delivery::mixed_events();
    let started = Instant::now();
    let (committed, loaded) = consumer
        .under(DELIVERY_DEADLINE, async {
            crate::bench_delivery::produce(&producer, DELIVERY_TOPIC, &events).await?;
            let admin = &admin;
            wait_for(
                started,
                DELIVERY_DEADLINE,
                |n| n >= EVENTS as i64,
                move || async move {
                    let n = tokio::task::block_in_place(|| {
                        crate::bench_delivery::committed(admin, DELIVERY_TOPIC)
                    })?;
                    Ok(n as i64)
                },
            )
            .await
        })
        .await?;
    let took = started.elapsed();
    let delivered: i64 = crate::bench::psql(
        DELIVERY_DB,
        "SELECT count(*) FROM orders WHERE delivery_state = 'delivered'",
    )?
    .parse()?;
    Ok(consumer.figures(
        loaded,
        format!(
            "{EVENTS} events ({} Shopee, the rest other channels) produced to its topic while it ran; {committed} \
             committed {:.1} s after the first was produced; Shopee orders delivered: {delivered}/{SHOPEE_ORDERS}",
            SHOPEE_ORDERS * 4,
            took.as_secs_f64()
        ),
        committed == EVENTS as i64 && delivered == SHOPEE_ORDERS as i64,
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// campaign-api: concurrent authenticated GETs, POST /v1/campaigns (each one a Shopee discount of 10 items) and
// DELETE of them (Shopee allows 1,000 upcoming discounts per shop: each client keeps at most 2).

const CAMPAIGN_ADDR: &str = "127.0.0.1:18285";
const CAMPAIGN_SHOP: u64 = 950_001;
const CAMPAIGN_HUB: &str = "FOOTPRINT-01";
const CAMPAIGN_BATCH: usize = 10;
/// Upcoming campaigns a client keeps before it deletes its oldest.
const OUTSTANDING: usize = 2;
/// SKU batches of each client: two more than it keeps, so a batch lost to a failed write does not stop its writes.
const BATCHES_PER_CLIENT: usize = OUTSTANDING + 2;
const API_TOKEN: &str = "bench-footprint-token-0123456789";
const API_CLIENTS: usize = 16;
const CAMPAIGN_ITEMS: usize = API_CLIENTS * BATCHES_PER_CLIENT * CAMPAIGN_BATCH;
const API_FOR: Duration = Duration::from_secs(10);

fn campaign_sku(i: usize) -> String {
    format!("FP-{i:05}")
}

async fn campaign() -> anyhow::Result<Figures> {
    let url = fresh_migrated("campaign-api", "sb_bench_footprint_campaign")?;
    let pool = sqlx::PgPool::connect(&url).await?;
    let redis = service_runtime::redis::pool(&Secret::new(REDIS_URL))?;
    let sandbox = Sandbox::start(SandboxConfig::new(PARTNER, KEY)).await?;
    crate::bench_orders::authorize_shop(&pool, &sandbox, PARTNER, KEY, CAMPAIGN_SHOP).await?;
    let shop = ShopId::new(CAMPAIGN_SHOP)?;
    let mut maps = Vec::with_capacity(CAMPAIGN_ITEMS);
    let mut items = Vec::with_capacity(CAMPAIGN_ITEMS);
    for i in 0..CAMPAIGN_ITEMS {
        let item = 600_000 + i as u64;
        items.push(SeedItem::single(CAMPAIGN_SHOP, item, &campaign_sku(i), 20.0, 100));
        maps.push(ProductMapping {
            sku: Sku::parse(&campaign_sku(i))?,
            shop_id: shop,
            item_id: ItemId::new(item)?,
            model_id: ModelId::NONE,
            outlet_item_id: None,
        });
    }
    sandbox.seed_items(items)?;
    Mappings::new(pool.clone(), Some(redis))
        .upsert(&maps, MappingSource::Manual)
        .await?;
    Hubs::new(pool.clone())
        .upsert(&[HubLocation {
            hub_id: HubId::parse(CAMPAIGN_HUB)?,
            shop_id: shop,
            location_id: None,
            active: true,
        }])
        .await?;
    let hub_config = crate::bench_quotation::hub_config_stub(Arc::new(AtomicUsize::new(0)))?;
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", url.clone()),
        ("REDIS_URL", REDIS_URL.into()),
        ("SHOPEE_API_BASE_URL", sandbox.base_url()),
        ("SHOPEE_PARTNER_ID", PARTNER.to_string()),
        ("SHOPEE_PARTNER_KEY", KEY.into()),
        ("SHOPEE_RATE_LIMIT_PER_SHOP", "1000".into()),
        ("TOKEN_ENCRYPTION_KEY", crate::bench_orders::TOKEN_KEY.into()),
        ("CAMPAIGN_API_TOKENS", API_TOKEN.into()),
        ("HUB_CONFIG_URL", hub_config),
        (
            "SHOPEE_AUTH_REDIRECT_URL",
            format!("http://{GATEWAY_ADDR}/shopee/auth/callback"),
        ),
    ];
    let mut api = start("campaign-api", CAMPAIGN_ADDR, &env).await?;
    let (outcomes, loaded) = api.under(API_FOR, api_load()).await?;
    let discounts = sandbox.discounts(CAMPAIGN_SHOP).len();
    let total: u64 = outcomes.values().sum();
    let failed: u64 = outcomes
        .iter()
        .filter(|((_, status), _)| !(200..300).contains(status))
        .map(|(_, n)| n)
        .sum();
    let by_kind = outcomes
        .iter()
        .map(|((what, status), n)| format!("{what} {status} x {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(api.figures(
        loaded,
        format!(
            "{API_CLIENTS} clients for {} s with a bearer token; one request in 4 a write: POST /v1/campaigns of \
             {CAMPAIGN_BATCH} SKUs (a Shopee discount each) or, once the client has {OUTSTANDING} upcoming, DELETE \
             of its oldest (the discount deleted at Shopee); the others GET /v1/shops, /v1/shops/{{id}}, \
             /v1/mappings?limit=100, /v1/campaigns?limit=20 in turn: {total} requests ({:.0}/s): {by_kind}; \
             discounts at the sandbox after the load: {discounts}",
            API_FOR.as_secs(),
            total as f64 / API_FOR.as_secs_f64(),
        ),
        total > 0 && failed == 0,
    ))
}

/// A campaign-api write and the SKU batch it uses.
enum Write {
    Post(usize),
    Delete(usize),
}

/// Requests by (what, HTTP status; 0 for no answer).
type Outcomes = BTreeMap<(&'static str, u16), u64>;

/// The campaign-api load; its outcomes.
async fn api_load() -> anyhow::Result<Outcomes> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(API_CLIENTS)
        .timeout(Duration::from_secs(10))
        .build()?;
    let starts_at = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let ends_at = (chrono::Utc::now() + chrono::Duration::hours(48)).to_rfc3339();
    let deadline = Instant::now() + API_FOR;
    let base = format!("http://{CAMPAIGN_ADDR}");
    let gets: [(&'static str, String); 4] = [
        ("GET /v1/shops", "/v1/shops".into()),
        ("GET /v1/shops/{id}", format!("/v1/shops/{CAMPAIGN_SHOP}")),
        (
            "GET /v1/mappings",
            format!("/v1/mappings?shop_id={CAMPAIGN_SHOP}&limit=100"),
        ),
        ("GET /v1/campaigns", "/v1/campaigns?limit=20".into()),
    ];
    let mut tasks = Vec::with_capacity(API_CLIENTS);
    for client in 0..API_CLIENTS {
        let (http, base, gets) = (http.clone(), base.clone(), gets.clone());
        let (starts_at, ends_at) = (starts_at.clone(), ends_at.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Outcomes::new();
            // The client's own SKU batches: free ones, and (campaign id, batch) of its upcoming campaigns.
            let mut free: Vec<usize> =
                (client * BATCHES_PER_CLIENT..(client + 1) * BATCHES_PER_CLIENT).collect();
            let mut upcoming: std::collections::VecDeque<(i64, usize)> = Default::default();
            // Each client starts at another place of the mix.
            let (mut i, mut g, mut seq) = (client, client, 0);
            while Instant::now() < deadline {
                i += 1;
                let write = i % 4 == 0;
                let (what, req, write) = if write && upcoming.len() >= OUTSTANDING {
                    let (id, batch) = upcoming.pop_front().unwrap_or_default();
                    (
                        "DELETE /v1/campaigns/{id}",
                        http.delete(format!("{base}/v1/campaigns/{id}")),
                        Some(Write::Delete(batch)),
                    )
                } else if write && let Some(batch) = free.pop() {
                    seq += 1;
                    let items: Vec<serde_json::Value> = (batch * CAMPAIGN_BATCH..(batch + 1) * CAMPAIGN_BATCH)
                        .map(|n| serde_json::json!({"sku": campaign_sku(n), "promotion_price": "15.90", "purchase_limit": 2}))
                        .collect();
                    let body = serde_json::json!({
                        "name": format!("Footprint {client}-{seq}"), "starts_at": starts_at, "ends_at": ends_at,
                        "hub_ids": [CAMPAIGN_HUB], "items": items,
                    });
                    (
                        "POST /v1/campaigns",
                        http.post(format!("{base}/v1/campaigns"))
                            .header("idempotency-key", format!("footprint-{client}-{seq}"))
                            .json(&body),
                        Some(Write::Post(batch)),
                    )
                } else {
                    g += 1;
                    let (what, path) = &gets[g % gets.len()];
                    (*what, http.get(format!("{base}{path}")), None)
                };
                // A batch whose write failed (or whose answer was lost) is not used again.
                let status = match req.bearer_auth(API_TOKEN).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.bytes().await.unwrap_or_default();
                        match write {
                            Some(Write::Post(batch)) if status == 201 => {
                                let id = serde_json::from_slice::<serde_json::Value>(&body)
                                    .ok()
                                    .and_then(|v| v["id"].as_i64());
                                if let Some(id) = id {
                                    upcoming.push_back((id, batch));
                                }
                            }
                            Some(Write::Delete(batch)) if status == 200 => free.push(batch),
                            _ => {}
                        }
                        status
                    }
                    Err(_) => 0,
                };
                *outcomes.entry((what, status)).or_default() += 1;
            }
            outcomes
        }));
    }
    let mut all = Outcomes::new();
    for t in tasks {
        for (k, n) in t.await? {
            *all.entry(k).or_default() += n;
        }
    }
    Ok(all)
}
