//! What the delivery tests share: a broker (tansu or librdkafka's mock cluster), a fresh database, the Shopee
//! sandbox with one authorized shop, a producer, and the consumer run in-process or as the real binary.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use delivery_status_consumer::consumer::{self, ConsumerHandle, ConsumerSettings};
use delivery_status_consumer::process::{Processor, RetrySettings};
use delivery_status_consumer::steps::Shopee;
use delivery_status_consumer::store::Store;
use domain::ShopId;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use service_runtime::config::{EncryptionKey, Secret, ShopeeConfig};
use shopee_client::{NewTokens, TokenStore};
use shopee_sandbox::{Sandbox, SandboxConfig, SeedOrder};
use test_support::TestDb;
use tokio_util::sync::CancellationToken;

pub const PARTNER_ID: u64 = 1_000_001;
pub const PARTNER_KEY: &str = "test-partner-key";
pub const TOKEN_KEY: [u8; 32] = [7; 32];
/// base64 of [`TOKEN_KEY`].
pub const TOKEN_KEY_B64: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

pub const SHIP_ORDER: &str = "/api/v2/logistics/ship_order";
pub const GET_SHIPPING_PARAMETER: &str = "/api/v2/logistics/get_shipping_parameter";
pub const UPDATE_TRACKING_STATUS: &str = "/api/v2/logistics/update_tracking_status";
pub const CANCEL_ORDER: &str = "/api/v2/order/cancel_order";

/// A shop id no other test (in this or another test binary) uses, so shared Redis rate-limit keys never meet.
pub fn unique_shop_id() -> u64 {
    800_000_000 + u64::from(rand::random::<u32>() % 100_000_000)
}

/// One delivery event as the fleet sends it (the tracking number and URL come with on_the_way).
pub fn event(event_type: &str, order_sn: &str, ordr_id: &str) -> Value {
    let on_the_way = event_type == "delivery.on_the_way";
    json!({
        "event_type": event_type,
        "event_id": uuid::Uuid::new_v4().to_string(),
        "order_id": ordr_id,
        "sales_channel": "shopee",
        "external_order_id": order_sn,
        "hub_id": "SAO-01",
        "occurred_at": "2026-11-25T12:00:00Z",
        "tracking_number": on_the_way.then(|| format!("TRK{order_sn}")),
        "tracking_url": on_the_way.then(|| format!("https://track.example/{order_sn}")),
        "reason": null,
    })
}

pub fn canceled(order_sn: &str, ordr_id: &str, reason: Option<&str>) -> Value {
    let mut e = event("delivery.canceled", order_sn, ordr_id);
    e["reason"] = json!(reason);
    e
}

pub fn other_channel(i: usize) -> Value {
    json!({
        "event_type": "delivery.on_the_way", "event_id": format!("o-{i}"), "order_id": format!("ORDR-X{i}"),
        "sales_channel": if i.is_multiple_of(2) { "ifood" } else { "app" }, "external_order_id": format!("ext-{i}"),
        "hub_id": "SAO-01", "occurred_at": "2026-11-25T12:00:00Z", "tracking_number": null,
        "tracking_url": null, "reason": null
    })
}

pub struct Env {
    pub db: TestDb,
    pub sandbox: Sandbox,
    pub shop_id: u64,
    pub brokers: String,
    pub topic: String,
    pub producer: FutureProducer,
    /// One past the highest offset produced, per partition (from the delivery reports).
    produced: std::sync::Mutex<HashMap<i32, i64>>,
}

impl Env {
    /// Database, sandbox with an authorized shop, a producer on `brokers` for `topic`.
    pub async fn new(brokers: &str, topic: &str) -> Self {
        static LOGS: std::sync::Once = std::sync::Once::new();
        LOGS.call_once(|| {
            // RUST_LOG decides what shows (default info); the guard lives for the whole test binary.
            if let Ok(t) = service_runtime::telemetry::init(
                "delivery-status-consumer-tests",
                service_runtime::config::LogFormat::Pretty,
                None,
            ) {
                std::mem::forget(t);
            }
        });
        let db = TestDb::new().await;
        let mut cfg = SandboxConfig::new(PARTNER_ID, PARTNER_KEY);
        cfg.push_on_seed = false;
        let sandbox = Sandbox::start(cfg).await.expect("sandbox");
        let shop_id = unique_shop_id();
        let (access_token, refresh_token) = sandbox.issue_tokens(shop_id);
        TokenStore::new(db.pool.clone(), TOKEN_KEY)
            .store_authorization(
                ShopId::new(shop_id).unwrap(),
                &NewTokens {
                    access_token,
                    refresh_token,
                    expire_in: 4 * 3600,
                },
                None,
            )
            .await
            .expect("store tokens");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer");
        Self {
            db,
            sandbox,
            shop_id,
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            producer,
            produced: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A READY_TO_SHIP order at Shopee (shipping `mode`, default non_integrated) and in `orders`.
    pub async fn seed_orders(&self, sns: &[String], mode: Option<&str>) {
        let seeds = sns.iter().map(|sn| SeedOrder {
            shop_id: self.shop_id,
            order_sn: sn.clone(),
            shipping_mode: mode.map(str::to_owned),
            ..SeedOrder::default()
        });
        self.sandbox.seed_orders(seeds).await.expect("seed orders");
        for chunk in sns.chunks(500) {
            sqlx::query(
                "INSERT INTO orders (shop_id, order_sn, intake_state, published_at) \
                 SELECT $1, sn, 'published', now() FROM unnest($2::text[]) AS sn",
            )
            .bind(self.shop_id as i64)
            .bind(chunk)
            .execute(&self.db.pool)
            .await
            .expect("insert orders");
        }
    }

    /// Produces events (key, JSON) and waits until the broker has them all.
    pub async fn send(&self, events: &[(String, Value)]) {
        let bytes: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_vec(v).unwrap()))
            .collect();
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&self, events: &[(String, Vec<u8>)]) {
        for chunk in events.chunks(2000) {
            let sends = chunk.iter().map(|(key, payload)| {
                let headers = OwnedHeaders::new().insert(Header {
                    key: "traceparent",
                    value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                });
                self.producer.send(
                    FutureRecord::to(&self.topic)
                        .key(key)
                        .payload(payload)
                        .headers(headers),
                    Duration::from_secs(30),
                )
            });
            for r in futures::future::join_all(sends).await {
                let delivery = r.map_err(|(e, _)| e).expect("produce");
                let mut produced = self.produced.lock().unwrap();
                let end = produced.entry(delivery.partition).or_insert(0);
                *end = (*end).max(delivery.offset + 1);
            }
        }
    }

    pub fn processor(&self) -> Processor {
        let client = delivery_status_consumer::shopee_client(
            &ShopeeConfig {
                api_base_url: self.sandbox.base_url(),
                partner_id: PARTNER_ID,
                partner_key: Secret::new(PARTNER_KEY),
                rate_limit_per_shop: 100_000,
            },
            self.db.pool.clone(),
            None,
            &EncryptionKey(TOKEN_KEY),
        )
        .expect("client");
        Processor::new(
            Store::new(self.db.pool.clone()),
            Shopee::new(client),
            RetrySettings {
                attempts: 3,
                first_backoff: Duration::from_millis(100),
            },
        )
    }

    /// Runs the consumer in this process.
    pub fn start(&self, group: &str) -> Running {
        let mut settings = ConsumerSettings::new(&self.brokers, &self.topic, group);
        settings.session_timeout = Duration::from_secs(6);
        let shutdown = CancellationToken::new();
        let handle = consumer::start(settings, self.processor(), shutdown.clone()).expect("consumer");
        Running { shutdown, handle }
    }

    pub async fn state(&self, sn: &str) -> String {
        sqlx::query_scalar("SELECT delivery_state FROM orders WHERE order_sn = $1")
            .bind(sn)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    pub async fn states(&self) -> HashMap<String, String> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT order_sn, delivery_state FROM orders")
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
        rows.into_iter().collect()
    }

    /// (reference, reason, status) of every dead letter.
    pub async fn dead_letters(&self) -> Vec<(String, String, String)> {
        sqlx::query_as("SELECT coalesce(reference, ''), reason, status FROM dead_letters ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    /// Shopee calls to `api` for `sn`, as (http_status, error).
    /// A refusal inside a successful envelope (`update_result: failed`) counts as a refusal.
    pub fn calls(&self, api: &str, sn: &str) -> Vec<(u16, String)> {
        self.sandbox
            .journal()
            .into_iter()
            .filter(|e| e.api == api && e.request.get("order_sn").and_then(Value::as_str) == Some(sn))
            .map(|e| (e.http_status, e.refused_in_answer.unwrap_or(e.error)))
            .collect()
    }

    /// The group's committed offset and the end offset of each partition (as produced: tansu's high watermarks
    /// are not reliable enough for this).
    pub fn committed_vs_end(&self, group: &str, partitions: i32) -> Vec<(i64, i64)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&self.topic, p);
        }
        let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        let produced = self.produced.lock().unwrap().clone();
        (0..partitions)
            .map(|p| {
                let high = produced.get(&p).copied().unwrap_or(0);
                let done = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                };
                (done, high)
            })
            .collect()
    }

    /// Commits `offset` of `partition` for `group`, as a replica that stopped there would have.
    pub fn commit(&self, group: &str, partition: i32, offset: i64) {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
            .unwrap();
        c.commit(&tpl, rdkafka::consumer::CommitMode::Sync).unwrap();
    }

    /// The offset of the first message a plain consumer gets when it fetches `partition` from `offset` (what the
    /// broker answers; `None` when nothing came within 3 s).
    pub fn first_fetched_from(&self, partition: i32, offset: i64) -> Option<i64> {
        use rdkafka::Message as _;
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", "probe")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
            .unwrap();
        c.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                return Some(m.offset());
            }
        }
        None
    }
}

pub struct Running {
    pub shutdown: CancellationToken,
    pub handle: ConsumerHandle,
}

impl Running {
    /// Stops like SIGTERM does; returns how long it took.
    pub async fn stop(self) -> Duration {
        let t = Instant::now();
        self.shutdown.cancel();
        self.handle.join().await;
        t.elapsed()
    }
}

/// Polls `check` until it holds, or panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not reached within {timeout:?}");
}

/// The environment of the real binary, pointing at this test's dependencies.
pub fn binary_env(env: &Env, group: &str, http_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SHOPEE_PARTNER_ID", PARTNER_ID.to_string()),
        ("SHOPEE_PARTNER_KEY", PARTNER_KEY.into()),
        ("SHOPEE_API_BASE_URL", env.sandbox.base_url()),
        ("SHOPEE_RATE_LIMIT_PER_SHOP", "100000".into()),
        ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY_B64.into()),
        ("DATABASE_URL", env.db.url.clone()),
        ("REDIS_URL", test_support::redis_url()),
        ("KAFKA_BROKERS", env.brokers.clone()),
        ("KAFKA_DELIVERY_TOPIC", env.topic.clone()),
        ("KAFKA_GROUP_ID", group.into()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000".into()),
        ("DELIVERY_REDRIVE_INTERVAL_SECS", "1".into()),
        ("HTTP_ADDR", format!("127.0.0.1:{http_port}")),
        (
            "RUST_LOG",
            std::env::var("CONSUMER_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ]
}
