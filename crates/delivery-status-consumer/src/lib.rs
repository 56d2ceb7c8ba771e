//! delivery-status-consumer: Kafka `deliveries.out` -> Shopee logistics status.
//!
//! - [`consumer`]: the consumer group, per-order lanes, offsets committed behind the work, rebalances, stop.
//! - [`event`]: the event format (docs/events/delivery_event.schema.json) and the cheap channel check.
//! - [`process`]: one event: find the order, plan forward steps (`domain::delivery::plan`), call Shopee, record.
//! - [`steps`]: a step as Shopee calls, and "already there" when Shopee refuses a step it already has.
//! - [`store`]: `orders.delivery_state` (compare-and-set, forward only) and the dead letters.
//! - [`redrive`]: replays dead letters an operator asked to redrive.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, Secret, ShopeeConfig};
use service_runtime::health::{Dependency, Health};
use service_runtime::kafka::{KafkaConfig, KafkaProbe};
use shopee_client::{ClientConfig, RetryPolicy, ShopeeClient, TokenStore};

pub mod consumer;
pub mod event;
pub mod offsets;
pub mod process;
pub mod redrive;
pub mod steps;
pub mod store;

pub const NAME: &str = "delivery-status-consumer";

#[derive(Debug, Clone)]
pub struct Config {
    pub shopee: ShopeeConfig,
    pub token_key: EncryptionKey,
    pub kafka: KafkaConfig,
    pub redis_url: Secret,
    /// `KAFKA_SESSION_TIMEOUT_MS`: a killed replica's partitions move to the others after this.
    pub session_timeout: Duration,
    /// `DELIVERY_SHOPEE_ATTEMPTS`: attempts per Shopee step before a transient failure is parked.
    pub shopee_attempts: u32,
    /// `DELIVERY_REDRIVE_INTERVAL_SECS`: how often requested redrives are looked for.
    pub redrive_interval: Duration,
    /// `DELIVERY_CONCURRENCY`: orders handled at once.
    pub lanes: usize,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let session_ms: u64 = env.or_default("KAFKA_SESSION_TIMEOUT_MS", "10000")?;
        let shopee_attempts: u32 = env.or_default("DELIVERY_SHOPEE_ATTEMPTS", "3")?;
        let redrive_secs: u64 = env.or_default("DELIVERY_REDRIVE_INTERVAL_SECS", "5")?;
        let lanes: usize = env.or_default("DELIVERY_CONCURRENCY", "32")?;
        let positive = |var: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Malformed {
                    var,
                    problem: "must be at least 1".into(),
                })
            }
        };
        positive("DELIVERY_SHOPEE_ATTEMPTS", shopee_attempts > 0)?;
        positive("DELIVERY_REDRIVE_INTERVAL_SECS", redrive_secs > 0)?;
        positive("DELIVERY_CONCURRENCY", lanes > 0)?;
        if session_ms < 1000 {
            return Err(ConfigError::Malformed {
                var: "KAFKA_SESSION_TIMEOUT_MS",
                problem: "must be at least 1000".into(),
            });
        }
        Ok(Self {
            shopee: ShopeeConfig::from_env(env)?,
            token_key: config::token_encryption_key(env)?,
            kafka: KafkaConfig::from_env(env)?,
            redis_url: config::redis_url(env)?,
            session_timeout: Duration::from_millis(session_ms),
            shopee_attempts,
            redrive_interval: Duration::from_secs(redrive_secs),
            lanes,
        })
    }
}

pub fn help() -> String {
    let own: &[(&str, &str)] = &[
        ("KAFKA_BROKERS", "bootstrap servers [default: 127.0.0.1:9092]"),
        ("KAFKA_DELIVERY_TOPIC", "[default: deliveries.out]"),
        ("KAFKA_GROUP_ID", "[default: seller-backend-delivery-status]"),
        (
            "KAFKA_SESSION_TIMEOUT_MS",
            "a silent replica's partitions move after this [default: 10000]",
        ),
        (
            "DELIVERY_CONCURRENCY",
            "orders handled at once; one order's events stay in order [default: 32]",
        ),
        (
            "DELIVERY_SHOPEE_ATTEMPTS",
            "attempts per Shopee step before a transient failure is parked [default: 3]",
        ),
        (
            "DELIVERY_REDRIVE_INTERVAL_SECS",
            "how often dead letters marked for redrive are replayed [default: 5]",
        ),
    ];
    cli::env_help(&[cli::BASE_VARS, cli::SHOPEE_VARS, own].concat())
}

/// The Shopee client as this worker uses it: short retries inside the client (the worker retries steps itself and
/// must not hold an order's lane for long), rate limits shared through Redis.
pub fn shopee_client(
    config: &ShopeeConfig,
    pool: sqlx::PgPool,
    redis: Option<deadpool_redis::Pool>,
    token_key: &EncryptionKey,
) -> anyhow::Result<ShopeeClient> {
    let mut cfg = ClientConfig::new(
        config.api_base_url.clone(),
        config.partner_id,
        config.partner_key.expose().to_owned(),
    );
    cfg.rate_limit.per_shop = NonZeroU32::new(config.rate_limit_per_shop).unwrap_or(NonZeroU32::MIN);
    cfg.rate_limit.max_wait = Duration::from_secs(10);
    cfg.request_timeout = Duration::from_secs(5);
    cfg.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(2),
    };
    let mut builder = ShopeeClient::builder(cfg).token_store(TokenStore::new(pool, token_key.0));
    if let Some(redis) = redis {
        builder = builder.redis(redis);
    }
    Ok(builder.build()?)
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let redis = service_runtime::redis::pool(&config.redis_url)?;
    let probe = KafkaProbe::new(&config.kafka)?;
    let health = Health::new(
        NAME,
        vec![Dependency::Postgres(pool.clone()), Dependency::Kafka(probe)],
        serve.shutdown.clone(),
    );
    let client = shopee_client(&config.shopee, pool.clone(), Some(redis), &config.token_key)?;
    let processor = process::Processor::new(
        store::Store::new(pool.clone()),
        steps::Shopee::new(client),
        process::RetrySettings {
            attempts: config.shopee_attempts,
            ..process::RetrySettings::default()
        },
    );
    let mut settings = consumer::ConsumerSettings::new(
        &config.kafka.brokers,
        &config.kafka.delivery_topic,
        &config.kafka.group_id,
    );
    settings.session_timeout = config.session_timeout;
    settings.lanes = config.lanes;
    let consumer = consumer::start(settings, processor.clone(), serve.shutdown.clone())?;
    let redrive = tokio::spawn(redrive::run(
        processor,
        config.redrive_interval,
        serve.shutdown.clone(),
    ));
    let app = Router::new().merge(health.router());
    let served = cli::serve_http(serve.listener, app, serve.shutdown.clone()).await;
    // However HTTP ended, stop consuming: finish in-flight events, commit, leave the group.
    serve.shutdown.cancel();
    consumer.join().await;
    let _ = redrive.await;
    pool.close().await;
    served?;
    Ok(())
}
