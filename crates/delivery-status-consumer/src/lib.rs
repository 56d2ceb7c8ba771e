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
use service_runtime::config::{
    self, ConfigError, EncryptionKey, Env, KafkaArgs, RedisArgs, Secret, ShopeeArgs, ShopeeConfig,
    TokenKeyArgs,
};
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

/// The variables delivery-status-consumer reads (besides the runtime ones every binary reads).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "delivery-status-consumer")]
pub struct Args {
    /// orders handled at once; one order's events stay in order
    #[arg(long, env = "DELIVERY_CONCURRENCY", default_value = "32", value_parser = config::at_least(1usize))]
    pub delivery_concurrency: usize,
    /// attempts per Shopee step before a transient failure is parked
    #[arg(long, env = "DELIVERY_SHOPEE_ATTEMPTS", default_value = "3", value_parser = config::at_least(1u32))]
    pub delivery_shopee_attempts: u32,
    /// how often dead letters marked for redrive are replayed, in seconds
    #[arg(
        long,
        env = "DELIVERY_REDRIVE_INTERVAL_SECS",
        default_value = "5",
        value_parser = config::at_least(1u64)
    )]
    pub delivery_redrive_interval_secs: u64,
    /// a silent replica's partitions move to the others after this many milliseconds
    #[arg(
        long,
        env = "KAFKA_SESSION_TIMEOUT_MS",
        default_value = "10000",
        value_parser = config::at_least(1000u64)
    )]
    pub kafka_session_timeout_ms: u64,
    /// rewind a partition whose first message after an assignment is not the committed offset (a workaround for
    /// brokers that answer a fetch from inside a record batch with a later batch or nothing, as tansu 0.6 does;
    /// it never fires on Kafka): true or false
    #[arg(
        long,
        env = "KAFKA_REWIND_STALLED_ASSIGNMENTS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub kafka_rewind_stalled_assignments: bool,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub shopee: ShopeeArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
}

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
    /// `KAFKA_REWIND_STALLED_ASSIGNMENTS`: the broker-quirk workaround (see `offsets::StalledAssignmentRewind`).
    pub stalled_assignment_rewind: offsets::StalledAssignmentRewind,
}

impl From<Args> for Config {
    fn from(args: Args) -> Self {
        Self {
            shopee: args.shopee.into(),
            token_key: args.token_key.token_encryption_key,
            kafka: args.kafka.into(),
            redis_url: args.redis.redis_url,
            session_timeout: Duration::from_millis(args.kafka_session_timeout_ms),
            shopee_attempts: args.delivery_shopee_attempts,
            redrive_interval: Duration::from_secs(args.delivery_redrive_interval_secs),
            lanes: args.delivery_concurrency,
            stalled_assignment_rewind: offsets::StalledAssignmentRewind::from_flag(
                args.kafka_rewind_stalled_assignments,
            ),
        }
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<Args>().map(Self::from)
    }
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
    settings.stalled_assignment_rewind = config.stalled_assignment_rewind;
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
