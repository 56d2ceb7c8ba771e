//! `bench catalog`: 100,000 inventory events over 5,000 SKUs (1,000 items x 5 models) published to the Pub/Sub
//! emulator and consumed by the catalog-sync worker (in process) against the Shopee sandbox. Prints events/s
//! consumed, Shopee calls against the distinct (item, flush window) pairs and the coalescing ratio, and the drain
//! time against the rate-limit bound (calls / rate).
//!
//! Needs PostgreSQL (`TEST_PG_URL` or postgres://postgres@127.0.0.1:5432/postgres), Redis (`REDIS_URL` or
//! redis://127.0.0.1:6379) and the emulator (`PUBSUB_EMULATOR_HOST` or 127.0.0.1:8085). `BENCH_CATALOG_RATE` sets
//! the per-shop rate limit (default 100 calls/s). xtask needs the `catalog-sync-worker` dependency for this file.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use catalog_sync_worker::{CancellationToken, Settings, Worker};
use domain::mapping::{MappingSource, ProductMapping};
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use product_mapping::{HubLocation, Hubs, Mappings};
use service_runtime::config::{PubSubConfig, Secret};
use service_runtime::pubsub::google_cloud_pubsub::model::Message;
use shopee_client::{ClientConfig, NewTokens, ShopeeClient, TokenStore};
use shopee_sandbox::{Sandbox, SandboxConfig, SeedItem, SeedModel};

const EVENTS: usize = 100_000;
pub const ITEMS: usize = 1_000;
pub const MODELS: usize = 5;
pub const SHOP: u64 = 940_001;
pub const HUB: &str = "BENCH-CATALOG";
const DB: &str = "sb_bench_catalog";
const PARTNER: u64 = 4_000_001;
const KEY: &str = "bench-catalog-partner-key";

/// Used by catalog-sync-worker's test harness, which compiles this file too.
#[allow(dead_code)]
pub fn run() -> anyhow::Result<()> {
    lines().map(|_| ())
}

/// Runs the benchmark; its figures, one line each.
pub fn lines() -> anyhow::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(measure())
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

async fn fresh_database() -> anyhow::Result<sqlx::PgPool> {
    use sqlx::Executor as _;
    let admin = env_or("TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {DB} WITH (FORCE)"
    )))
    .await?;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DB}")))
        .await?;
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{DB}"),
        None => anyhow::bail!("TEST_PG_URL must end with /database"),
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await?;
    service_runtime::db::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The catalog: ITEMS items x MODELS models of SHOP at the sandbox, all mapped (SKU `BC-{n}`, n < ITEMS x MODELS),
/// and the hub HUB of SHOP.
pub async fn seed_catalog(sandbox: &Sandbox, pool: &sqlx::PgPool, mappings: &Mappings) -> anyhow::Result<()> {
    let shop = ShopId::new(SHOP)?;
    let mut seeds = Vec::with_capacity(ITEMS);
    let mut maps = Vec::with_capacity(ITEMS * MODELS);
    for i in 0..ITEMS {
        let item = 10_000 + i as u64;
        let models: Vec<SeedModel> = (0..MODELS)
            .map(|m| SeedModel::new(1 + m as u64, &format!("BC-{}", i * MODELS + m), 1.0, 0))
            .collect();
        for m in 0..MODELS {
            maps.push(ProductMapping {
                sku: Sku::parse(&format!("BC-{}", i * MODELS + m))?,
                shop_id: shop,
                item_id: ItemId::new(item)?,
                model_id: ModelId::new(1 + m as u64)?,
                outlet_item_id: None,
            });
        }
        seeds.push(SeedItem::with_models(
            SHOP,
            item,
            &format!("Bench item {i}"),
            models,
        ));
    }
    sandbox.seed_items(seeds)?;
    mappings.upsert(&maps, MappingSource::Manual).await?;
    Hubs::new(pool.clone())
        .upsert(&[HubLocation {
            hub_id: HubId::parse(HUB)?,
            shop_id: shop,
            location_id: None,
            active: true,
        }])
        .await?;
    Ok(())
}

/// InventoryUpdateEvent version `v` of SKU `BC-{n}` at HUB.
pub fn inventory_event(n: usize, v: usize) -> serde_json::Value {
    serde_json::json!({
        "event_id": format!("b-{n}-{v}"), "sku": format!("BC-{n}"), "hub_id": HUB,
        "quantity": (n * 7 + v) % 1000, "occurred_at": "2026-11-25T12:00:00Z", "version": v,
    })
}

async fn measure() -> anyhow::Result<Vec<String>> {
    let rate: u32 = env_or("BENCH_CATALOG_RATE", "100").parse()?;
    let pool = fresh_database().await?;
    let redis = service_runtime::redis::pool(&Secret::new(env_or("REDIS_URL", "redis://127.0.0.1:6379")))?;
    let sandbox = Sandbox::start(SandboxConfig::new(PARTNER, KEY)).await?;
    let shop = ShopId::new(SHOP)?;

    let mappings = Mappings::new(pool.clone(), Some(redis.clone()));
    seed_catalog(&sandbox, &pool, &mappings).await?;
    let mut cfg = ClientConfig::new(sandbox.base_url(), PARTNER, KEY);
    cfg.rate_limit.per_shop = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    cfg.rate_limit.key_prefix = format!("bench:catalog:{}", std::process::id());
    let token_key = [9u8; 32];
    let client = ShopeeClient::builder(cfg)
        .redis(redis.clone())
        .token_store(TokenStore::new(pool.clone(), token_key))
        .build()?;
    let (access_token, refresh_token) = sandbox.issue_tokens(SHOP);
    if let Some(store) = client.token_store() {
        store
            .store_authorization(
                shop,
                &NewTokens {
                    access_token,
                    refresh_token,
                    expire_in: 4 * 3600,
                },
                None,
            )
            .await?;
    }

    // Fresh topic and subscription each run.
    let pubsub = PubSubConfig {
        project_id: "bench-catalog".into(),
        emulator_host: Some(env_or("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")),
    };
    let topics = service_runtime::pubsub::topic_admin(&pubsub).await?;
    let subs = service_runtime::pubsub::subscription_admin(&pubsub).await?;
    let run_id = std::process::id();
    let topic = pubsub.topic_path(&format!("inventory-{run_id}"));
    let sub = pubsub.subscription_path(&format!("inventory-sub-{run_id}"));
    let price_topic = pubsub.topic_path(&format!("price-{run_id}"));
    let price_sub = pubsub.subscription_path(&format!("price-sub-{run_id}"));
    for (t, s) in [(&topic, &sub), (&price_topic, &price_sub)] {
        service_runtime::pubsub::ensure_topic(&topics, t).await?;
        service_runtime::pubsub::ensure_subscription(&subs, s, t, 60).await?;
    }
    let settings = Settings {
        content_interval: None,
        flush_concurrency: 16,
        ..Settings::default()
    };
    let flush_window = settings.flush_window;
    let worker = Worker {
        pool: pool.clone(),
        shopee: client,
        mappings,
        pubsub: pubsub.clone(),
        price_subscription: price_sub.clone(),
        inventory_subscription: sub.clone(),
        catalog_graphql_url: "http://127.0.0.1:9/graphql".into(),
        settings,
    };
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker.run(stop.clone()));

    // 20 versions per SKU, published version by version (so the last published are the newest).
    let publisher = service_runtime::pubsub::publisher(&pubsub, &topic).await?;
    let skus = ITEMS * MODELS;
    let versions = EVENTS / skus;
    let started = Instant::now();
    for v in 1..=versions {
        let futures: Vec<_> = (0..skus)
            .map(|n| publisher.publish(Message::new().set_data(inventory_event(n, v).to_string())))
            .collect();
        for f in futures {
            f.await?;
        }
    }
    let published = started.elapsed();
    let final_version = i64::try_from(versions)?;
    // Consumed: every SKU's newest version recorded.
    loop {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM catalog_sync_state WHERE kind = 'stock' AND newest_version = $1",
        )
        .bind(final_version)
        .fetch_one(&pool)
        .await?;
        if recorded as usize == skus {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "not consumed after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let consumed = started.elapsed();
    // Drained: every model applied at its newest version.
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM catalog_sync_state WHERE state <> 'applied'")
                .fetch_one(&pool)
                .await?;
        if open == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "not drained after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = started.elapsed();
    stop.cancel();
    let _ = handle.await;

    let journal: Vec<_> = sandbox
        .journal()
        .into_iter()
        .filter(|e| e.api.ends_with("/product/update_stock"))
        .collect();
    let calls = journal.len();
    // Calls to the same item closer together than the flush window would break "<= distinct (item, window)".
    let mut by_item: HashMap<u64, Vec<i64>> = HashMap::new();
    for e in &journal {
        if let Some(item) = e.request.get("item_id").and_then(serde_json::Value::as_u64) {
            by_item.entry(item).or_default().push(e.at_ms);
        }
    }
    let window_ms = i64::try_from(flush_window.as_millis())?;
    let mut within_window = 0;
    let mut distinct_windows = 0;
    for times in by_item.values_mut() {
        times.sort_unstable();
        let mut last_window = None;
        for (i, t) in times.iter().enumerate() {
            if i > 0 && t - times[i - 1] < window_ms {
                within_window += 1;
            }
            let w = t / window_ms;
            if last_window != Some(w) {
                distinct_windows += 1;
                last_window = Some(w);
            }
        }
    }
    let bound = Duration::from_secs_f64(calls as f64 / f64::from(rate));
    let mut lines = Vec::new();
    let min_bound = Duration::from_secs_f64(by_item.len() as f64 / f64::from(rate));
    lines.push(format!(
        "catalog sync: {EVENTS} inventory events over {skus} SKUs ({ITEMS} items x {MODELS} models), limit {rate} calls/s"
    ));
    lines.push(format!(
        "published in {:.1} s ({:.0} events/s); consumed in {:.1} s ({:.0} events/s)",
        published.as_secs_f64(),
        EVENTS as f64 / published.as_secs_f64(),
        consumed.as_secs_f64(),
        EVENTS as f64 / consumed.as_secs_f64()
    ));
    lines.push(format!(
        "Shopee update_stock calls: {calls} for {} items touched; distinct (item, {} ms window) pairs: {distinct_windows}; \
         calls closer than one window to the previous call of the same item: {within_window}; coalescing {:.1} events/call",
        by_item.len(),
        window_ms,
        EVENTS as f64 / calls.max(1) as f64
    ));
    lines.push(format!(
        "drained in {:.1} s; rate-limit bound for the calls made {:.1} s (ratio {:.2}); for one call per item {:.1} s",
        drained.as_secs_f64(),
        bound.as_secs_f64(),
        drained.as_secs_f64() / bound.as_secs_f64().max(0.001),
        min_bound.as_secs_f64()
    ));
    for l in &lines {
        println!("  {l}");
    }
    Ok(lines)
}
