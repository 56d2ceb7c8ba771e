//! The app on port 0 with real PostgreSQL, Redis and the Shopee sandbox over HTTP.
#![allow(dead_code)]

use std::time::Duration;

use campaign_api::AppState;
use domain::ShopId;
use product_mapping::{HubLocation, Hubs, Mappings};
use reqwest::Method;
use serde_json::Value;
use service_runtime::cli::Serve;
use service_runtime::config::{BaseConfig, Env};
use shopee_client::ShopeeClient;
use shopee_sandbox::{Sandbox, SandboxConfig, SeedItem};
use test_support::TestDb;
use tokio_util::sync::CancellationToken;

/// Every exchange through [`Api::call_with`] is checked against `/openapi.json`.
#[path = "spec.rs"]
pub mod spec;

pub const PARTNER_ID: u64 = 1_000_001;
pub const KEY: &str = "campaign-test-partner-key";
pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const ENC_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

pub struct Api {
    pub url: String,
    pub db: TestDb,
    pub sandbox: Sandbox,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A shop id no other test uses (the Redis cache and rate-limit keys are per shop).
pub fn unique_shop() -> u64 {
    800_000_000 + (uuid::Uuid::new_v4().as_u128() % 100_000_000) as u64
}

pub fn env_pairs(db: &TestDb, sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("SHOPEE_PARTNER_ID", PARTNER_ID.to_string()),
        ("SHOPEE_PARTNER_KEY", KEY.into()),
        ("SHOPEE_API_BASE_URL", sandbox.base_url()),
        ("TOKEN_ENCRYPTION_KEY", ENC_KEY.into()),
        ("CAMPAIGN_API_TOKENS", format!("other-token-0123456789,{TOKEN}")),
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", test_support::redis_url()),
        ("CAMPAIGN_RECONCILE_INTERVAL_SECS", "3600".into()),
        (
            "SHOPEE_AUTH_REDIRECT_URL",
            "https://seller.example.com/shopee/auth/callback".into(),
        ),
    ]
}

pub async fn start() -> Api {
    let db = TestDb::new().await;
    let sandbox = Sandbox::start(SandboxConfig::new(PARTNER_ID, KEY))
        .await
        .expect("sandbox");
    let pairs = env_pairs(&db, &sandbox);
    let env = Env::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    let config = campaign_api::Config::from_env(&env).expect("config");
    let base = BaseConfig::from_env(&env).expect("base");
    let redis = service_runtime::redis::pool(&config.redis_url).expect("redis");
    let shopee = service_runtime::shopee::client(
        &config.shopee,
        db.pool.clone(),
        Some(redis.clone()),
        &config.token_key,
    )
    .expect("client");
    let state = AppState {
        pool: db.pool.clone(),
        shopee,
        mappings: Mappings::new(db.pool.clone(), Some(redis)),
        hubs: Hubs::new(db.pool.clone()),
        auth_redirect_url: config.auth_redirect_url.clone().into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    tokio::spawn(campaign_api::run(Serve {
        config,
        base,
        listener,
        shutdown: shutdown.clone(),
    }));
    test_support::wait_for_status(&format!("{url}/health/live"), 200, Duration::from_secs(10)).await;
    Api {
        url,
        db,
        sandbox,
        state,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http"),
        shutdown,
    }
}

impl Api {
    pub fn shopee(&self) -> &ShopeeClient {
        &self.state.shopee
    }

    /// The shop authorized through Shopee's code exchange (tokens stored encrypted).
    pub async fn authorize(&self, shop: u64) {
        let code = self.sandbox.authorize_shop(shop);
        self.shopee()
            .authorize_shop(ShopId::new(shop).expect("shop"), &code, None)
            .await
            .expect("authorize");
    }

    pub async fn hub(&self, hub: &str, shop: u64) {
        self.state
            .hubs
            .upsert(&[HubLocation {
                hub_id: domain::HubId::parse(hub).expect("hub"),
                shop_id: ShopId::new(shop).expect("shop"),
                location_id: None,
                active: true,
            }])
            .await
            .expect("hub");
    }

    /// Seeds `n` single-model items in the sandbox (price 20.00) and maps them: SKU `{prefix}{i}` -> item base + i.
    pub async fn seed_and_map(&self, shop: u64, prefix: &str, base_item: u64, n: u64) -> Vec<String> {
        let mut skus = Vec::new();
        let mut body = Vec::new();
        for i in 0..n {
            let sku = format!("{prefix}{i}");
            self.sandbox
                .seed_item(SeedItem::single(shop, base_item + i, &sku, 20.0, 100))
                .expect("seed item");
            body.push(
                serde_json::json!({"sku": sku, "shop_id": shop, "item_id": base_item + i, "model_id": 0}),
            );
            skus.push(sku);
        }
        let (status, resp) = self
            .call(Method::PUT, "/v1/mappings", Some(Value::Array(body)))
            .await;
        assert_eq!(status, 200, "{resp}");
        skus
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, Some(TOKEN), &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = &body {
            req = req.json(body);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        spec::check_exchange(&method, path, body.as_ref(), status, &answer);
        (status, answer)
    }
}

/// RFC 3339 `hours` from now.
pub fn in_hours(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339()
}
