use std::num::NonZeroU32;
use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};
use domain::ShopId;
use shopee_client::{ClientConfig, NewTokens, RetryPolicy, ShopeeClient, TokenPair, TokenStore};
use shopee_sandbox::{Sandbox, SandboxConfig};
use sqlx::postgres::PgPoolOptions;
use test_support::TestDb;

pub const PARTNER_ID: u64 = 1_000_001;
pub const PARTNER_KEY: &str = "sandbox-partner-key-for-tests";
pub const TOKEN_KEY: [u8; 32] = [42u8; 32];
pub const SHOP: u64 = 900_001;

pub fn shop() -> ShopId {
    ShopId::new(SHOP).unwrap()
}

pub fn redis_pool() -> Pool {
    redis_pool_at(&test_support::redis_url())
}

pub fn redis_pool_at(url: &str) -> Pool {
    let mut cfg = Config::from_url(url);
    cfg.pool = Some(deadpool_redis::PoolConfig {
        max_size: 16,
        timeouts: deadpool_redis::Timeouts {
            wait: Some(Duration::from_millis(300)),
            create: Some(Duration::from_millis(300)),
            recycle: Some(Duration::from_millis(300)),
        },
        ..Default::default()
    });
    cfg.create_pool(Some(Runtime::Tokio1)).unwrap()
}

/// A sandbox, a fresh database and a Redis key prefix of our own.
pub struct Env {
    pub sandbox: Sandbox,
    pub db: TestDb,
    pub prefix: String,
}

impl Env {
    pub async fn new() -> Self {
        let sandbox = Sandbox::start(SandboxConfig::new(PARTNER_ID, PARTNER_KEY))
            .await
            .unwrap();
        let db = TestDb::new().await;
        let prefix = format!("test:shopee:rl:{}", uuid::Uuid::new_v4().simple());
        Self { sandbox, db, prefix }
    }

    /// Fast retries, a generous shop limit (tests that measure the limit set their own).
    pub fn config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(self.sandbox.base_url(), PARTNER_ID, PARTNER_KEY);
        cfg.retry = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
        };
        cfg.rate_limit.per_shop = NonZeroU32::new(1_000).unwrap();
        cfg.rate_limit.key_prefix = self.prefix.clone();
        cfg.request_timeout = Duration::from_secs(5);
        cfg
    }

    /// A client as one replica would build it: its own database pool, shared Redis.
    pub async fn client_with(&self, cfg: ClientConfig) -> ShopeeClient {
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect(&self.db.url)
            .await
            .unwrap();
        ShopeeClient::builder(cfg)
            .redis(redis_pool())
            .token_store(TokenStore::new(pool, TOKEN_KEY))
            .build()
            .unwrap()
    }

    pub async fn client(&self) -> ShopeeClient {
        self.client_with(self.config()).await
    }

    /// Issues a pair at the sandbox and stores it as if the shop had been authorized; `expire_in` is what our
    /// side believes the access token has left.
    pub async fn authorized(&self, client: &ShopeeClient, shop_id: u64, expire_in: u64) -> TokenPair {
        let (access_token, refresh_token) = self.sandbox.issue_tokens(shop_id);
        client
            .token_store()
            .unwrap()
            .store_authorization(
                ShopId::new(shop_id).unwrap(),
                &NewTokens {
                    access_token,
                    refresh_token,
                    expire_in,
                },
                None,
            )
            .await
            .unwrap()
    }

    /// Journal entries for `api` (full path).
    pub fn entries(&self, api: &str) -> Vec<shopee_sandbox::JournalEntry> {
        self.sandbox
            .journal()
            .into_iter()
            .filter(|e| e.api == api)
            .collect()
    }
}
