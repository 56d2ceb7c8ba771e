//! The test rig: a fresh database, the sandbox, a unique shop and Pub/Sub project per test, a worker in process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use catalog_sync_worker::{Settings, Worker};
use deadpool_redis::Pool;
use domain::mapping::{MappingSource, ProductMapping};
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use product_mapping::{HubLocation, Hubs, Mappings};
use service_runtime::config::{PubSubConfig, Secret};
use shopee_client::{ClientConfig, NewTokens, RetryPolicy, ShopeeClient, TokenStore};
use shopee_sandbox::{JournalEntry, Sandbox, SandboxConfig};
use test_support::TestDb;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PARTNER_ID: u64 = 1_000_001;
pub const PARTNER_KEY: &str = "test-partner-key";
pub const TOKEN_KEY: [u8; 32] = [7u8; 32];

pub fn redis() -> Pool {
    service_runtime::redis::pool(&Secret::new(test_support::redis_url())).unwrap()
}

/// Fast loops for tests.
pub fn fast() -> Settings {
    Settings {
        batch_wait: Duration::from_millis(20),
        ack_extension: Duration::from_secs(10),
        flush_window: Duration::from_millis(200),
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
        poll_interval: Duration::from_millis(30),
        unmapped_interval: Duration::from_millis(300),
        redrive_interval: Duration::from_millis(200),
        jobs_interval: Duration::from_millis(200),
        content_interval: None,
        ..Settings::default()
    }
}

pub struct Rig {
    pub db: TestDb,
    pub sandbox: Sandbox,
    pub shop: u64,
    pub hub: String,
    pub pubsub: PubSubConfig,
    pub price_sub: String,
    pub stock_sub: String,
    pub price_pub: Publisher,
    pub stock_pub: Publisher,
    pub client: ShopeeClient,
    pub mappings: Mappings,
}

impl Rig {
    /// `rate`: Shopee calls per second for the shop (the client's shared limit).
    pub async fn new(rate: u32) -> Rig {
        let db = TestDb::new().await;
        let sandbox = Sandbox::start(SandboxConfig::new(PARTNER_ID, PARTNER_KEY))
            .await
            .unwrap();
        // Unique shop ids keep the shared Redis (mapping cache, rate-limit buckets) apart between tests.
        let shop = 10_000_000 + u64::from(rand::random::<u32>() % 1_000_000_000);
        let hub = format!("H{shop}");
        let project = format!("cs-{}", uuid::Uuid::new_v4().simple());
        let pubsub = PubSubConfig {
            project_id: project,
            emulator_host: Some(test_support::pubsub_emulator_host()),
        };
        let topics = service_runtime::pubsub::topic_admin(&pubsub).await.unwrap();
        let subs = service_runtime::pubsub::subscription_admin(&pubsub)
            .await
            .unwrap();
        let mut paths = Vec::new();
        for name in ["price", "inventory"] {
            let topic = pubsub.topic_path(name);
            let sub = pubsub.subscription_path(&format!("{name}-sub"));
            service_runtime::pubsub::ensure_topic(&topics, &topic)
                .await
                .unwrap();
            service_runtime::pubsub::ensure_subscription(&subs, &sub, &topic, 10)
                .await
                .unwrap();
            paths.push((topic, sub));
        }
        let price_pub = service_runtime::pubsub::publisher(&pubsub, &paths[0].0)
            .await
            .unwrap();
        let stock_pub = service_runtime::pubsub::publisher(&pubsub, &paths[1].0)
            .await
            .unwrap();
        let mut cfg = ClientConfig::new(sandbox.base_url(), PARTNER_ID, PARTNER_KEY);
        cfg.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        cfg.rate_limit.per_shop = NonZeroU32::new(rate).unwrap();
        cfg.request_timeout = Duration::from_secs(5);
        let client = ShopeeClient::builder(cfg)
            .redis(redis())
            .token_store(TokenStore::new(db.pool.clone(), TOKEN_KEY))
            .build()
            .unwrap();
        let (access_token, refresh_token) = sandbox.issue_tokens(shop);
        client
            .token_store()
            .unwrap()
            .store_authorization(
                ShopId::new(shop).unwrap(),
                &NewTokens {
                    access_token,
                    refresh_token,
                    expire_in: 4 * 3600,
                },
                None,
            )
            .await
            .unwrap();
        Hubs::new(db.pool.clone())
            .upsert(&[HubLocation {
                hub_id: HubId::parse(&hub).unwrap(),
                shop_id: ShopId::new(shop).unwrap(),
                location_id: None,
                active: true,
            }])
            .await
            .unwrap();
        let mappings = Mappings::new(db.pool.clone(), Some(redis()));
        let (price_sub, stock_sub) = (paths[0].1.clone(), paths[1].1.clone());
        Rig {
            db,
            sandbox,
            shop,
            hub,
            pubsub,
            price_sub,
            stock_sub,
            price_pub,
            stock_pub,
            client,
            mappings,
        }
    }

    pub fn sku(&self, n: usize) -> String {
        format!("S{}-{n}", self.shop)
    }

    /// `items` items of `models` models each (model ids 1..; a single-model item uses model 0), SKU n at item
    /// 100+n/models; every SKU mapped. Returns sku -> (item, model).
    pub async fn seed_catalog(&self, items: usize, models: usize) -> HashMap<String, (u64, u64)> {
        let mut out = HashMap::new();
        let mut seeds = Vec::new();
        let mut maps = Vec::new();
        for i in 0..items {
            let item_id = 100 + i as u64;
            let mut ms = Vec::new();
            for m in 0..models {
                let n = i * models + m;
                let model_id = if models == 1 { 0 } else { 1 + m as u64 };
                ms.push(shopee_sandbox::SeedModel::new(model_id, &self.sku(n), 1.0, 0));
                out.insert(self.sku(n), (item_id, model_id));
                maps.push(ProductMapping {
                    sku: Sku::parse(&self.sku(n)).unwrap(),
                    shop_id: ShopId::new(self.shop).unwrap(),
                    item_id: ItemId::new(item_id).unwrap(),
                    model_id: ModelId::new(model_id).unwrap(),
                    outlet_item_id: None,
                });
            }
            // With a weight: Shopee answers it as a string ("10.02") in get_item_base_info.
            seeds.push(shopee_sandbox::SeedItem {
                weight: Some(0.35),
                ..shopee_sandbox::SeedItem::with_models(self.shop, item_id, &format!("Item {item_id}"), ms)
            });
        }
        self.sandbox.seed_items(seeds).unwrap();
        let r = self.mappings.upsert(&maps, MappingSource::Manual).await.unwrap();
        assert!(r.conflicts.is_empty());
        out
    }

    pub fn worker(&self, settings: Settings) -> Worker {
        Worker {
            pool: self.db.pool.clone(),
            shopee: self.client.clone(),
            mappings: self.mappings.clone(),
            pubsub: self.pubsub.clone(),
            price_subscription: self.price_sub.clone(),
            inventory_subscription: self.stock_sub.clone(),
            catalog_graphql_url: "http://127.0.0.1:9/graphql".into(),
            settings,
        }
    }

    pub fn spawn(&self, settings: Settings) -> (CancellationToken, JoinHandle<anyhow::Result<()>>) {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(self.worker(settings).run(stop.clone()));
        (stop, handle)
    }

    pub fn price_event(&self, sku: &str, cents: i64, version: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "event_id": uuid::Uuid::new_v4().to_string(), "sku": sku, "hub_id": self.hub,
            "price": format!("{}.{:02}", cents / 100, cents % 100),
            "occurred_at": "2026-11-25T12:00:00Z", "version": version,
        }))
        .unwrap()
    }

    pub fn stock_event(&self, sku: &str, quantity: i64, version: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "event_id": uuid::Uuid::new_v4().to_string(), "sku": sku, "hub_id": self.hub,
            "quantity": quantity, "occurred_at": "2026-11-25T12:00:00Z", "version": version,
        }))
        .unwrap()
    }

    /// Publishes (price?, body) pairs and waits until the emulator has them all.
    pub async fn publish(&self, messages: Vec<(bool, Vec<u8>)>) {
        for chunk in messages.chunks(1000) {
            let futures: Vec<_> = chunk
                .iter()
                .map(|(price, body)| {
                    let publisher = if *price { &self.price_pub } else { &self.stock_pub };
                    publisher.publish(Message::new().set_data(body.clone()))
                })
                .collect();
            for r in futures::future::join_all(futures).await {
                r.expect("publish");
            }
        }
    }

    /// (price cents, total stock) of a model at the sandbox.
    pub fn shopee_value(&self, item: u64, model: u64) -> (i64, i64) {
        let m = self
            .sandbox
            .model(self.shop, item, model)
            .expect("model at sandbox");
        ((m.original_price * 100.0).round() as i64, m.total_stock)
    }

    /// Marks an item of the rig's shop deleted at the sandbox (Shopee then refuses its updates).
    pub fn delete_item(&self, item_id: u64) {
        self.sandbox
            .set_item_flags(
                self.shop,
                item_id,
                shopee_sandbox::ItemFlags {
                    deleted: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
    }

    pub fn update_calls(&self) -> Vec<JournalEntry> {
        self.sandbox
            .journal()
            .into_iter()
            .filter(|e| e.api.ends_with("/product/update_price") || e.api.ends_with("/product/update_stock"))
            .collect()
    }

    pub async fn dead_letters(&self) -> Vec<dead_letters::DeadLetter> {
        dead_letters::list(
            &self.db.pool,
            &dead_letters::Filter {
                source: Some("catalog-sync-worker".into()),
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }
}

/// (model_id, value in centavos or units) of every entry an update call sent.
pub fn sent_values(e: &JournalEntry) -> Vec<(u64, i64)> {
    let list = e
        .request
        .get("price_list")
        .or_else(|| e.request.get("stock_list"))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|m| {
            let model = m["model_id"].as_u64().unwrap_or(0);
            let value = match m.get("original_price") {
                Some(p) => (p.as_f64().unwrap() * 100.0).round() as i64,
                None => m["seller_stock"][0]["stock"].as_i64().unwrap(),
            };
            (model, value)
        })
        .collect()
}

/// The largest number of journal entries in any window of `window` length.
pub fn max_in_window(entries: &[JournalEntry], window: Duration) -> usize {
    let mut times: Vec<i64> = entries.iter().map(|e| e.at_ms).collect();
    times.sort_unstable();
    let w = window.as_millis() as i64;
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= w {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// Polls `check` until it returns true or `timeout` passes; returns the time taken.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Count of state rows not yet at their newest version.
pub async fn not_applied(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM catalog_sync_state WHERE state <> 'applied'")
        .fetch_one(pool)
        .await
        .unwrap()
}
