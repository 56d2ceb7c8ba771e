//! `bench orders`: a burst of 10,000 READY_TO_SHIP pushes, from the sandbox through the release gateway and
//! publisher to the Pub/Sub emulator. Reports get_order_detail calls against ceil(orders / 50), time to drain, and
//! the push-to-publish latency per order.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use service_runtime::config::{PubSubConfig, Secret, ShopeeConfig};
use shopee_sandbox::{Sandbox, SandboxConfig, SeedOrder, SeedShop};

use crate::bench::{Killed, Section, release_bin, rss_kb};
use crate::sh;

const ORDERS: usize = 10_000;
const DB: &str = "sb_bench_orders";
const PARTNER: u64 = 3_000_001;
pub const KEY: &str = "bench-orders-partner-key";
/// TOKEN_ENCRYPTION_KEY of the binaries the order benches start (32 zero bytes).
pub const TOKEN_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SHOP: u64 = 930_001;
const GATEWAY: &str = "127.0.0.1:18180";
const PUBLISHER: &str = "127.0.0.1:18181";
const PROJECT: &str = "bench-orders";

pub fn run() -> anyhow::Result<Section> {
    sh(Command::new("cargo").args([
        "build",
        "--release",
        "-p",
        "webhook-gateway",
        "-p",
        "order-publisher",
    ]))?;
    let url = crate::bench::fresh_database(DB)?;
    sh(Command::new(release_bin("webhook-gateway"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(&url))
}

/// Starts the release `bin` on `addr` with `env` (and RUST_LOG=warn, stdin closed).
pub fn spawn(bin: &str, addr: &str, env: &[(&str, String)]) -> anyhow::Result<Child> {
    let mut cmd = Command::new(release_bin(bin));
    cmd.env("HTTP_ADDR", addr)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd.spawn()?)
}

/// What the gateway and the publisher run against: the `ordr-input` topic of `project`, a sandbox pushing to
/// `gateway`'s webhook with the shop seeded and authorized (its tokens stored in `db_url`'s database), a Hub Config
/// Service of the bench's own with one hub of the shop, the product 789100000001 mapped. `env` is the complete
/// environment of both binaries (HTTP_ADDR aside).
pub struct OrderStack {
    pub sandbox: Sandbox,
    pub pool: sqlx::PgPool,
    pub env: Vec<(&'static str, String)>,
}

pub async fn order_stack(db_url: &str, project: &str, gateway: &str) -> anyhow::Result<OrderStack> {
    let pubsub = PubSubConfig {
        project_id: project.into(),
        emulator_host: Some(crate::services::PUBSUB_EMULATOR_HOST.into()),
    };
    let topics = service_runtime::pubsub::topic_admin(&pubsub).await?;
    service_runtime::pubsub::ensure_topic(&topics, &pubsub.topic_path("ordr-input")).await?;

    let mut config = SandboxConfig::new(PARTNER, KEY);
    config.push_callback_url = Some(format!("http://{gateway}/webhooks/shopee"));
    let sandbox = Sandbox::start(config).await?;
    sandbox.seed_shop(SeedShop {
        shop_id: SHOP,
        ..Default::default()
    })?;

    let pool = sqlx::PgPool::connect(db_url).await?;
    authorize_shop(&pool, &sandbox, PARTNER, KEY, SHOP).await?;
    // The hub comes from a Hub Config Service of the bench's own, as in production.
    let hubs = serde_json::json!([{
        "hub_id": "BENCH-01", "active": true, "shopee_shop_id": SHOP,
        "location": {"zipcode": "01310100", "latitude": -23.5614, "longitude": -46.6559},
        "delivery": {"radius_km": 5.0, "base_fee": "4.90", "fee_per_km": "1.10", "free_above": "99.00",
                     "preparation_minutes": 8, "speed_kmh": 18},
        "opening_hours": [{"weekday": 1, "open": "00:00", "close": "24:00"}]
    }]);
    let hub_config = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hub_config_url = format!("http://{}", hub_config.local_addr()?);
    let app = axum::Router::new().route(
        "/v1/hubs",
        axum::routing::get(move || async move { axum::Json(hubs.clone()) }),
    );
    tokio::spawn(async move { axum::serve(hub_config, app).await });
    product_mapping::Mappings::new(pool.clone(), None)
        .upsert(
            &[ProductMapping {
                sku: Sku::parse("789100000001")?,
                shop_id: ShopId::new(SHOP)?,
                item_id: ItemId::new(100_001)?,
                model_id: ModelId::NONE,
                outlet_item_id: None,
            }],
            MappingSource::Manual,
        )
        .await?;

    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", db_url.to_owned()),
        ("REDIS_URL", "redis://127.0.0.1:6379".into()),
        ("SHOPEE_API_BASE_URL", sandbox.base_url()),
        ("SHOPEE_PARTNER_ID", PARTNER.to_string()),
        ("SHOPEE_PARTNER_KEY", KEY.into()),
        (
            "SHOPEE_PUSH_CALLBACK_URL",
            format!("http://{gateway}/webhooks/shopee"),
        ),
        ("SHOPEE_RATE_LIMIT_PER_SHOP", "1000".into()),
        ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY.into()),
        ("PUBSUB_PROJECT_ID", project.into()),
        (
            "PUBSUB_EMULATOR_HOST",
            crate::services::PUBSUB_EMULATOR_HOST.into(),
        ),
        ("RECONCILE_INTERVAL_SECS", "3600".into()),
        ("HUB_CONFIG_URL", hub_config_url),
    ];
    Ok(OrderStack { sandbox, pool, env })
}

/// The shop authorized at the sandbox through Shopee's code exchange; its tokens stored in `pool`'s database,
/// encrypted with `TOKEN_KEY` (the binaries' TOKEN_ENCRYPTION_KEY).
pub async fn authorize_shop(
    pool: &sqlx::PgPool,
    sandbox: &Sandbox,
    partner: u64,
    key: &str,
    shop: u64,
) -> anyhow::Result<()> {
    let shopee = ShopeeConfig {
        api_base_url: sandbox.base_url(),
        partner_id: partner,
        partner_key: Secret::new(key),
        rate_limit_per_shop: 1000,
    };
    let token_key: service_runtime::config::EncryptionKey =
        TOKEN_KEY.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let client = service_runtime::shopee::client(&shopee, pool.clone(), None, &token_key)?;
    client
        .authorize_shop(ShopId::new(shop)?, &sandbox.authorize_shop(shop), None)
        .await?;
    Ok(())
}

/// `n` READY_TO_SHIP orders of the stack's shop (`{prefix}{i:08}`), each buying the mapped product.
pub fn ready_to_ship(n: usize, prefix: &str) -> Vec<SeedOrder> {
    (0..n)
        .map(|i| {
            let mut o = SeedOrder::example(SHOP, &format!("{prefix}{i:08}"), 100_001, "789100000001");
            o.order_status = "READY_TO_SHIP".into();
            o
        })
        .collect()
}

async fn measure(db_url: &str) -> anyhow::Result<Section> {
    let pubsub = PubSubConfig {
        project_id: PROJECT.into(),
        emulator_host: Some(crate::services::PUBSUB_EMULATOR_HOST.into()),
    };
    let topics = service_runtime::pubsub::topic_admin(&pubsub).await?;
    let subs = service_runtime::pubsub::subscription_admin(&pubsub).await?;
    let topic = pubsub.topic_path("ordr-input");
    service_runtime::pubsub::ensure_topic(&topics, &topic).await?;
    let tap = pubsub.subscription_path("bench-tap");
    // A fresh tap each run, so earlier runs' messages do not count.
    let _ = subs
        .delete_subscription()
        .set_subscription(tap.clone())
        .send()
        .await;
    service_runtime::pubsub::ensure_subscription(&subs, &tap, &topic, 60).await?;
    let OrderStack { sandbox, pool, env } = order_stack(db_url, PROJECT, GATEWAY).await?;

    // Stopped when dropped, on every path.
    let gateway = Killed(spawn("webhook-gateway", GATEWAY, &env)?);
    let publisher = Killed(spawn("order-publisher", PUBLISHER, &env)?);
    let ready = crate::bench::wait_ready(
        &format!("http://{PUBLISHER}/health/ready"),
        Duration::from_secs(20),
    )
    .await?;
    crate::bench::wait_ready(&format!("http://{GATEWAY}/health/ready"), Duration::from_secs(20)).await?;
    let idle_rss = rss_kb(publisher.0.id());
    sandbox.clear_journal();

    let burst = Instant::now();
    sandbox.seed_orders(ready_to_ship(ORDERS, "BENCH")).await?;
    let pushed_in = burst.elapsed();
    let mut loaded_rss = rss_kb(publisher.0.id());

    // Drain: every order's new_order pulled from the tap.
    let http = reqwest::Client::new();
    let mut seen = std::collections::HashSet::new();
    let pull_url = format!("http://{}/v1/{tap}", crate::services::PUBSUB_EMULATOR_HOST);
    while seen.len() < ORDERS && burst.elapsed() < Duration::from_secs(600) {
        let resp: serde_json::Value = http
            .post(format!("{pull_url}:pull"))
            .json(&serde_json::json!({"maxMessages": 1000, "returnImmediately": true}))
            .send()
            .await?
            .json()
            .await?;
        let msgs = resp["receivedMessages"].as_array().cloned().unwrap_or_default();
        let ack: Vec<String> = msgs
            .iter()
            .filter_map(|m| m["ackId"].as_str().map(str::to_owned))
            .collect();
        for m in &msgs {
            if let Some(k) = m["message"]["attributes"]["idempotency_key"].as_str() {
                seen.insert(k.to_owned());
            }
        }
        if !ack.is_empty() {
            http.post(format!("{pull_url}:acknowledge"))
                .json(&serde_json::json!({"ackIds": ack}))
                .send()
                .await?;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        loaded_rss = loaded_rss.max(rss_kb(publisher.0.id()));
    }
    let drained_in = burst.elapsed();
    let detail_calls = sandbox.calls_to("/api/v2/order/get_order_detail");
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
         FROM (SELECT EXTRACT(EPOCH FROM o.published_at - i.received_at) * 1000 AS ms
               FROM outbox o JOIN push_inbox i ON i.order_sn = split_part(o.idempotency_key, ':', 3)) t",
    )
    .fetch_one(&pool)
    .await?;
    drop(gateway);
    drop(publisher);
    let bound = ORDERS.div_ceil(50);
    let mut s = Section::new("orders: burst of 10,000 READY_TO_SHIP pushes to published new_order");
    s.line(format!(
        "orders: {ORDERS}; published (distinct idempotency keys pulled from the emulator): {}",
        seen.len()
    ));
    s.line(format!(
        "get_order_detail calls: {detail_calls}; ceil(orders / 50) = {bound}; ratio {:.2} (target <= 1.1)",
        detail_calls as f64 / bound as f64
    ));
    s.line(format!(
        "pushes delivered by the sandbox in {:.1} s ({:.0}/s, one at a time); all published {:.1} s after the first push",
        pushed_in.as_secs_f64(),
        ORDERS as f64 / pushed_in.as_secs_f64(),
        drained_in.as_secs_f64()
    ));
    s.line(format!(
        "push stored -> new_order published: p50 {p50:.0} ms, p99 {p99:.0} ms"
    ));
    s.line(format!(
        "order-publisher: start to ready {} ms; RSS idle {idle_rss} KiB, loaded (max) {loaded_rss} KiB",
        ready.as_millis()
    ));
    anyhow::ensure!(
        seen.len() == ORDERS,
        "only {} of {ORDERS} orders were published",
        seen.len()
    );
    Ok(s)
}
