//! The order stack the integration and chaos tests share: the sandbox pushes to the gateway, the gateway stores
//! in PostgreSQL, the publisher fetches details from the sandbox and publishes to the Pub/Sub emulator, and a tap
//! subscription on the emulator reads what ORDR would receive. Every `new_order` pulled from it is checked against
//! its documented contract, `docs/events/new_order.schema.json` ([`assert_new_order`]).

#![allow(dead_code)] // each test target uses its part

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use domain::mapping::{MappingSource, ProductMapping};
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use product_mapping::{HubLocation, Hubs, Mappings};
use service_runtime::cli::Serve;
use service_runtime::config::{BaseConfig, Env, PubSubConfig};
use shopee_sandbox::{Sandbox, SandboxConfig, SeedShop};
use test_support::{Proc, TestDb};
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

    /// Pulls (and acks) what arrived on the tap subscription; panics on a payload that breaks the `new_order`
    /// schema.
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
            let payload: serde_json::Value = serde_json::from_slice(&data).expect("payload json");
            assert_new_order(&payload);
            out.push(Received {
                payload,
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

/// The contract ORDR is promised: `docs/events/new_order.schema.json`, draft 2020-12, formats (`uuid`,
/// `date-time`) asserted rather than only annotated.
pub fn new_order_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/events/new_order.schema.json"))
                .expect("new_order.schema.json is JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("new_order.schema.json is not a valid schema: {e}"))
    })
}

/// Panics, listing every violation, when `payload` is not a `new_order` as documented.
pub fn assert_new_order(payload: &serde_json::Value) {
    let errors: Vec<String> = new_order_schema()
        .iter_errors(payload)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "a published new_order breaks docs/events/new_order.schema.json: {errors:#?}\npayload: {payload:#}"
    );
}

#[derive(Debug)]
pub struct Received {
    pub payload: serde_json::Value,
    pub attributes: HashMap<String, String>,
    pub ordering_key: String,
}

/// The webhook-gateway binary (another package's): built if missing or stale.
pub fn gateway_exe() -> PathBuf {
    let publisher = PathBuf::from(env!("CARGO_BIN_EXE_order-publisher"));
    let gateway = publisher.with_file_name("webhook-gateway");
    // The gateway binary belongs to another package: make sure it is built and current.
    let target_dir = publisher
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf();
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "-p",
            "webhook-gateway",
            "--bin",
            "webhook-gateway",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("cargo build webhook-gateway");
    assert!(status.success(), "building webhook-gateway failed");
    gateway
}

/// Starts a binary of the stack on `port` with the stack's environment.
pub fn spawn(exe: &str, env: &[(String, String)], port: u16) -> Proc {
    let mut env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    env.push(("HTTP_ADDR", format!("127.0.0.1:{port}")));
    env.push(("RUST_LOG", "error".into()));
    Proc::spawn(exe, &[], &env)
}
