//! The order flow end to end, over real HTTP and real brokers: the sandbox pushes to the gateway, the gateway stores
//! in PostgreSQL, the publisher fetches details from the sandbox and publishes to the Pub/Sub emulator, and a tap
//! subscription on the emulator reads what ORDR would receive.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use domain::mapping::{MappingSource, ProductMapping};
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use product_mapping::{HubLocation, Hubs, Mappings};
use service_runtime::cli::Serve;
use service_runtime::config::{BaseConfig, Env, PubSubConfig};
use shopee_sandbox::{Sandbox, SandboxConfig, SeedOrder, SeedShop};
use test_support::TestDb;
use tokio_util::sync::CancellationToken;

pub const PARTNER_ID: u64 = 2_000_001;
pub const KEY: &str = "e2e-partner-key";
const TOKEN_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
pub const ITEM: u64 = 100_001;
pub const SKU: &str = "789100000001";

pub struct Stack {
    /// A shop id of this test's own: Redis (caches, rate limits) is shared by every test.
    pub shop: u64,
    pub db: TestDb,
    pub sandbox: Sandbox,
    pub gateway_url: String,
    pub pubsub: PubSubConfig,
    pub tap: String,
    gateway_stop: CancellationToken,
    publisher_stop: Option<CancellationToken>,
    reconcile_secs: u64,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway_stop.cancel();
        if let Some(stop) = &self.publisher_stop {
            stop.cancel();
        }
    }
}

pub fn env_pairs(
    stack_db: &str,
    sandbox: &str,
    callback: &str,
    project: &str,
    reconcile: &str,
) -> Vec<(String, String)> {
    [
        ("SHOPEE_PARTNER_ID", PARTNER_ID.to_string()),
        ("SHOPEE_PARTNER_KEY", KEY.into()),
        ("SHOPEE_API_BASE_URL", sandbox.into()),
        ("SHOPEE_PUSH_CALLBACK_URL", callback.into()),
        ("SHOPEE_RATE_LIMIT_PER_SHOP", "200".into()),
        ("TOKEN_ENCRYPTION_KEY", TOKEN_KEY.into()),
        ("DATABASE_URL", stack_db.into()),
        ("REDIS_URL", test_support::redis_url()),
        ("PUBSUB_PROJECT_ID", project.into()),
        ("PUBSUB_EMULATOR_HOST", test_support::pubsub_emulator_host()),
        ("RECONCILE_INTERVAL_SECS", reconcile.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Stack {
    /// Gateway (in process) and sandbox running, the shop authorized, its hub and one product mapped; the publisher not yet.
    pub async fn new(reconcile_secs: u64) -> Self {
        Self::build(reconcile_secs, None).await
    }

    /// As [`Stack::new`], but the gateway is left to the caller, who runs it on `gateway_port` (as a process).
    pub async fn without_gateway(reconcile_secs: u64, gateway_port: u16) -> Self {
        Self::build(reconcile_secs, Some(gateway_port)).await
    }

    async fn build(reconcile_secs: u64, external_gateway: Option<u16>) -> Self {
        let db = TestDb::new().await;
        let shop = 900_000 + u64::from_str_radix(&db.name[4..9], 16).expect("hex") % 99_999;
        let project = format!("op-e2e-{}", &db.name[4..16]);
        let pubsub = PubSubConfig {
            project_id: project.clone(),
            emulator_host: Some(test_support::pubsub_emulator_host()),
        };
        let topics = service_runtime::pubsub::topic_admin(&pubsub)
            .await
            .expect("topic admin");
        let subs = service_runtime::pubsub::subscription_admin(&pubsub)
            .await
            .expect("subscription admin");
        let topic = pubsub.topic_path("ordr-input");
        service_runtime::pubsub::ensure_topic(&topics, &topic)
            .await
            .expect("topic");
        let tap = pubsub.subscription_path("ordr-tap");
        service_runtime::pubsub::ensure_subscription(&subs, &tap, &topic, 10)
            .await
            .expect("tap subscription");

        let listener = match external_gateway {
            Some(_) => None,
            None => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")),
        };
        let gateway_url = match (&listener, external_gateway) {
            (Some(l), _) => format!("http://{}", l.local_addr().expect("addr")),
            (None, Some(port)) => format!("http://127.0.0.1:{port}"),
            (None, None) => unreachable!(),
        };
        let callback = format!("{gateway_url}/webhooks/shopee");
        let mut config = SandboxConfig::new(PARTNER_ID, KEY);
        config.push_callback_url = Some(callback.clone());
        let sandbox = Sandbox::start(config).await.expect("sandbox");

        let pairs = env_pairs(
            &db.url,
            &sandbox.base_url(),
            &callback,
            &project,
            &reconcile_secs.to_string(),
        );
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let gateway_stop = CancellationToken::new();
        if let Some(listener) = listener {
            let serve = Serve {
                config: webhook_gateway::Config::from_env(&env).expect("gateway config"),
                base: BaseConfig::from_env(&env).expect("base"),
                listener,
                shutdown: gateway_stop.clone(),
            };
            tokio::spawn(webhook_gateway::run(serve));
        }

        // The shop authorizes the app; its hub and product are mapped.
        sandbox
            .seed_shop(SeedShop {
                shop_id: shop,
                ..Default::default()
            })
            .expect("seed shop");
        let code = sandbox.authorize_shop(shop);
        let key = service_runtime::config::token_encryption_key(&env).expect("key");
        let shopee_config = service_runtime::config::ShopeeConfig::from_env(&env).expect("shopee config");
        let client =
            service_runtime::shopee::client(&shopee_config, db.pool.clone(), None, &key).expect("client");
        client
            .authorize_shop(ShopId::new(shop).expect("shop"), &code, None)
            .await
            .expect("authorize");
        Hubs::new(db.pool.clone())
            .upsert(&[HubLocation {
                hub_id: HubId::parse("SAO-01").expect("hub"),
                shop_id: ShopId::new(shop).expect("shop"),
                location_id: None,
                active: true,
            }])
            .await
            .expect("hub");
        Self {
            shop,
            db,
            sandbox,
            gateway_url,
            pubsub,
            tap,
            gateway_stop,
            publisher_stop: None,
            reconcile_secs,
        }
    }

    pub async fn map(&self, sku: &str, item: u64) {
        let mapping = ProductMapping {
            sku: Sku::parse(sku).expect("sku"),
            shop_id: ShopId::new(self.shop).expect("shop"),
            item_id: ItemId::new(item).expect("item"),
            model_id: ModelId::NONE,
            outlet_item_id: None,
        };
        Mappings::new(self.db.pool.clone(), None)
            .upsert(&[mapping], MappingSource::Manual)
            .await
            .expect("map");
    }

    /// The environment the binaries of this stack run with.
    pub fn env(&self) -> Vec<(String, String)> {
        let callback = format!("{}/webhooks/shopee", self.gateway_url);
        env_pairs(
            &self.db.url,
            &self.sandbox.base_url(),
            &callback,
            &self.pubsub.project_id,
            &self.reconcile_secs.to_string(),
        )
    }

    pub async fn start_publisher(&mut self) {
        self.start_publisher_with(&[]).await;
    }

    pub async fn start_publisher_with(&mut self, extra: &[(&str, &str)]) {
        let mut pairs = self.env();
        pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let stop = CancellationToken::new();
        let serve = Serve {
            config: order_publisher::Config::from_env(&env).expect("publisher config"),
            base: BaseConfig::from_env(&env).expect("base"),
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            shutdown: stop.clone(),
        };
        tokio::spawn(order_publisher::run(serve));
        self.publisher_stop = Some(stop);
    }

    /// Pulls (and acks) what arrived on the tap subscription.
    pub async fn pull(&self) -> Vec<Received> {
        let http = reqwest::Client::new();
        let base = format!("http://{}/v1/{}", test_support::pubsub_emulator_host(), self.tap);
        let resp: serde_json::Value = http
            .post(format!("{base}:pull"))
            .json(&serde_json::json!({"maxMessages": 1000, "returnImmediately": true}))
            .send()
            .await
            .expect("pull")
            .json()
            .await
            .expect("pull json");
        let mut out = Vec::new();
        let mut ack_ids = Vec::new();
        for m in resp["receivedMessages"].as_array().cloned().unwrap_or_default() {
            ack_ids.push(m["ackId"].as_str().unwrap_or_default().to_owned());
            let data = base64::engine::general_purpose::STANDARD
                .decode(m["message"]["data"].as_str().unwrap_or_default())
                .expect("base64");
            out.push(Received {
                payload: serde_json::from_slice(&data).expect("payload json"),
                attributes: serde_json::from_value(m["message"]["attributes"].clone()).unwrap_or_default(),
                ordering_key: m["message"]["orderingKey"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        if !ack_ids.is_empty() {
            http.post(format!("{base}:acknowledge"))
                .json(&serde_json::json!({"ackIds": ack_ids}))
                .send()
                .await
                .expect("ack");
        }
        out
    }

    /// Pulls until `n` messages arrived or `timeout` passed; returns all pulled.
    pub async fn pull_until(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let started = Instant::now();
        let mut all = Vec::new();
        while all.len() < n && started.elapsed() < timeout {
            let got = self.pull().await;
            if got.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            all.extend(got);
        }
        all
    }

    pub async fn intake_state(&self, sn: &str) -> Option<String> {
        sqlx::query_scalar("SELECT intake_state FROM orders WHERE order_sn = $1")
            .bind(sn)
            .fetch_optional(&self.db.pool)
            .await
            .expect("state")
    }

    pub async fn wait_state(&self, sn: &str, state: &str, timeout: Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.intake_state(sn).await.as_deref() == Some(state) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "order {sn} did not reach {state} in {timeout:?}; it is {:?}",
            self.intake_state(sn).await
        );
    }
}

#[derive(Debug)]
pub struct Received {
    pub payload: serde_json::Value,
    pub attributes: HashMap<String, String>,
    pub ordering_key: String,
}

fn order(stack: &Stack, sn: &str) -> SeedOrder {
    let mut o = SeedOrder::example(stack.shop, sn, ITEM, SKU);
    o.order_status = "UNPAID".into();
    o
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ready_to_ship_push_becomes_exactly_one_new_order() {
    let mut stack = Stack::new(3600).await;
    stack.map(SKU, ITEM).await;
    stack.start_publisher().await;
    stack
        .sandbox
        .seed_order(order(&stack, "E2E0000000001"))
        .await
        .expect("seed");
    stack
        .wait_state("E2E0000000001", "received", Duration::from_secs(10))
        .await;
    assert!(stack.pull().await.is_empty(), "UNPAID must not publish");

    stack
        .sandbox
        .set_order_status(stack.shop, "E2E0000000001", "READY_TO_SHIP")
        .await
        .expect("rts");
    let got = stack.pull_until(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let msg = &got[0];
    assert_eq!(
        msg.attributes.get("event_type").map(String::as_str),
        Some("new_order")
    );
    assert_eq!(msg.attributes.get("source").map(String::as_str), Some("shopee"));
    assert_eq!(
        msg.attributes.get("schema_version").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        msg.attributes.get("idempotency_key").map(String::as_str),
        Some(format!("shopee:{}:E2E0000000001", stack.shop).as_str())
    );
    assert_eq!(msg.ordering_key, format!("{}:E2E0000000001", stack.shop));
    let order = &msg.payload["order"];
    assert_eq!(order["external_id"], "E2E0000000001");
    assert_eq!(order["hub_id"], "SAO-01");
    assert_eq!(order["lines"][0]["sku"], SKU);
    assert_eq!(order["lines"][0]["unit_price"], "12.90");
    assert_eq!(order["totals"]["total"], "30.70");
    assert_eq!(msg.payload["event_type"], "new_order");

    // The same status again and a later cancellation: recorded, never a second event.
    stack
        .sandbox
        .set_order_status(stack.shop, "E2E0000000001", "READY_TO_SHIP")
        .await
        .expect("rts again");
    stack
        .sandbox
        .set_order_status(stack.shop, "E2E0000000001", "CANCELLED")
        .await
        .expect("cancel");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cancelled: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT cancelled_after_publish_at FROM orders WHERE order_sn = 'E2E0000000001'",
        )
        .fetch_one(&stack.db.pool)
        .await
        .expect("row");
        if cancelled.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cancellation after publish was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stack.pull_until(1, Duration::from_secs(3)).await.is_empty(),
        "a second event was published"
    );
}

/// R14: an order with an unmapped SKU waits as needs_mapping, visibly, and is published once mapped.
#[tokio::test(flavor = "multi_thread")]
async fn an_unmapped_order_waits_and_is_published_once_mapped() {
    let mut stack = Stack::new(3600).await;
    stack.start_publisher().await;
    let mut o = order(&stack, "E2E0000000002");
    o.order_status = "READY_TO_SHIP".into();
    stack.sandbox.seed_order(o).await.expect("seed");
    stack
        .wait_state("E2E0000000002", "needs_mapping", Duration::from_secs(15))
        .await;
    let detail: Option<String> =
        sqlx::query_scalar("SELECT detail FROM orders WHERE order_sn = 'E2E0000000002'")
            .fetch_one(&stack.db.pool)
            .await
            .expect("detail");
    assert!(detail.unwrap_or_default().contains("item 100001 model 0"));
    assert!(stack.pull().await.is_empty());

    stack.map(SKU, ITEM).await;
    let got = stack.pull_until(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["order"]["lines"][0]["sku"], SKU);
    stack
        .wait_state("E2E0000000002", "published", Duration::from_secs(5))
        .await;
}

/// Pushes that arrive while the publisher is down are fetched in batches of 50 per shop once it starts.
#[tokio::test(flavor = "multi_thread")]
async fn details_are_fetched_in_batches_of_fifty() {
    let mut stack = Stack::new(3600).await;
    stack.map(SKU, ITEM).await;
    let n = 120;
    let orders: Vec<SeedOrder> = (0..n)
        .map(|i| {
            let mut o = order(&stack, &format!("BATCH{i:08}"));
            o.order_status = "READY_TO_SHIP".into();
            o
        })
        .collect();
    stack.sandbox.seed_orders(orders).await.expect("seed");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM push_inbox")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(stored, n as i64, "every push stored by the gateway");
    stack.sandbox.clear_journal();
    stack.start_publisher().await;
    let got = stack.pull_until(n, Duration::from_secs(30)).await;
    assert_eq!(got.len(), n);
    let detail_calls = stack.sandbox.calls_to("/api/v2/order/get_order_detail");
    assert_eq!(
        detail_calls,
        n.div_ceil(50),
        "get_order_detail calls for {n} orders"
    );
}

/// R10: pushes dropped before reaching us are recovered within one reconciliation cycle.
#[tokio::test(flavor = "multi_thread")]
async fn lost_pushes_are_recovered_by_reconciliation() {
    let mut stack = Stack::new(2).await;
    stack.map(SKU, ITEM).await;
    stack.sandbox.drop_next_pushes(3);
    for i in 0..3 {
        let mut o = order(&stack, &format!("LOST{i:08}"));
        o.order_status = "READY_TO_SHIP".into();
        stack.sandbox.seed_order(o).await.expect("seed");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM push_inbox")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "the pushes were dropped");
    stack.start_publisher().await;
    let got = stack.pull_until(3, Duration::from_secs(30)).await;
    let mut sns: Vec<String> = got
        .iter()
        .map(|m| {
            m.payload["order"]["external_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    sns.sort();
    assert_eq!(sns, vec!["LOST00000000", "LOST00000001", "LOST00000002"]);
    assert!(
        stack.pull_until(1, Duration::from_secs(3)).await.is_empty(),
        "no duplicates from the second source"
    );
}

/// The hubs table follows the Hub Config Service (a local fake over HTTP).
#[tokio::test(flavor = "multi_thread")]
async fn hubs_follow_the_hub_config_service() {
    let mut stack = Stack::new(3600).await;
    let hubs = serde_json::json!([{
        "hub_id": "CWB-07", "active": true, "shopee_shop_id": stack.shop,
        "location": {"zipcode": "80010000", "latitude": -25.4284, "longitude": -49.2733},
        "delivery": {"radius_km": 4.0, "base_fee": "3.90", "fee_per_km": "1.00", "free_above": "80.00",
                     "preparation_minutes": 10, "speed_kmh": 20},
        "opening_hours": [{"weekday": 1, "open": "08:00", "close": "22:00"}]
    }]);
    let app = axum::Router::new().route(
        "/v1/hubs",
        axum::routing::get(move || async move { axum::Json(hubs.clone()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    stack.start_publisher_with(&[("HUB_CONFIG_URL", &url)]).await;
    let started = Instant::now();
    loop {
        let shop: Option<i64> = sqlx::query_scalar("SELECT shop_id FROM hubs WHERE hub_id = 'CWB-07'")
            .fetch_optional(&stack.db.pool)
            .await
            .expect("hubs");
        if shop == Some(stack.shop as i64) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "hub CWB-07 never reached the hubs table"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
