//! catalog-sync-worker: price and inventory events (Pub/Sub) and product content (Catalog GraphQL) -> Shopee.
//!
//! - [`consumer`]: both subscriptions, batched, acked once recorded in PostgreSQL (or dead-lettered).
//! - [`resolve`]: (sku, hub) -> (shop, item, model, location) through the hub and product mappings.
//! - [`store`]: the coalescing state (newest version wins, in the UPSERT), dirty items, needs_mapping.
//! - [`flush`]: claims dirty items and sends all pending models of an item in one call, within the rate limit.
//! - [`redrive`]: dead letters an operator asked to redrive, put back through the newest-wins path.
//! - [`discovery`], [`audit`], [`content`]: mapping discovery jobs, the audit command, content sync
//!   ([`images`]: Catalog image URLs downloaded and uploaded to Shopee once, for `update_item`).

pub mod audit;
pub mod consumer;
pub mod content;
pub mod discovery;
pub mod events;
pub mod flush;
pub mod images;
pub mod redrive;
pub mod resolve;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use axum::Router;
use product_mapping::Mappings;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{
    self, ConfigError, EncryptionKey, Env, PubSubArgs, PubSubConfig, RedisArgs, Secret, ShopeeArgs,
    ShopeeConfig, TokenKeyArgs,
};
use service_runtime::health::{Dependency, Health};
use service_runtime::periodic::Periodic;
use service_runtime::pubsub::PubSubProbe;
use shopee_client::ShopeeClient;
use sqlx::PgPool;
pub use tokio_util::sync::CancellationToken;

use crate::events::Kind;

pub const NAME: &str = "catalog-sync-worker";

/// Tuning of the worker. Defaults suit production; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages recorded per PostgreSQL transaction (at most).
    pub batch_max: usize,
    /// How long a batch waits to fill up after its first message.
    pub batch_wait: Duration,
    /// Pub/Sub flow control: unacked messages per stream.
    pub max_outstanding: i64,
    /// Lease extension asked from Pub/Sub (10 s to 600 s); also how long messages held by a crashed worker wait
    /// before Pub/Sub redelivers them.
    pub ack_extension: Duration,
    /// How long a newly dirty item waits before it is flushed (coalescing window).
    pub flush_window: Duration,
    /// Items flushed at once (each waits for its shop's rate-limit slot).
    pub flush_concurrency: usize,
    /// A claimed item is released after this if its flusher died. Longer than any one Shopee call with its retries,
    /// so two flushers never send the same item at once.
    pub lease: Duration,
    /// Backoff of an item after a transient failure: base, doubled per attempt, capped.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A model refused transiently this many times in a row is parked.
    pub max_model_attempts: i32,
    /// Idle flushers look for due items this often.
    pub poll_interval: Duration,
    /// needs_mapping rows are re-resolved this often (and at once when the flusher finds a SKU moved).
    pub unmapped_interval: Duration,
    /// Redrive requests for this worker's dead letters are taken this often.
    pub redrive_interval: Duration,
    /// Discovery and content-sync job tables are polled this often.
    pub jobs_interval: Duration,
    /// Scheduled content sync (`productsUpdatedSince`); None = only on demand.
    pub content_interval: Option<Duration>,
    /// Instant Mart outlet shops: when at least this many items of one outlet shop are due together, they go in one
    /// `batch_update_outlet_price/stock` (up to 100 items) instead of one call per item. A batch costs a submit and
    /// at least one poll of its task, so it pays off from 3 items; 0 = never batch.
    pub outlet_batch_min_items: usize,
    /// How often a batch task's result is polled.
    pub outlet_task_poll: Duration,
    /// How long a batch task is polled before its items are retried (kept well under `lease`).
    pub outlet_task_timeout: Duration,
}

/// The worker's tuning variables; the rest of [`Settings`] is fixed in its `TryFrom`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "catalog-sync-worker")]
pub struct SettingsArgs {
    /// coalescing window before a changed item is sent to Shopee, in milliseconds
    #[arg(long, env = "CATALOG_FLUSH_WINDOW_MS", default_value = "500")]
    pub catalog_flush_window_ms: u64,
    /// items sent to Shopee at once
    #[arg(long, env = "CATALOG_FLUSH_CONCURRENCY", default_value = "8", value_parser = config::at_least(1usize))]
    pub catalog_flush_concurrency: usize,
    /// Pub/Sub lease extension, 10 to 600 seconds (Pub/Sub's range); messages held by a crashed worker come back
    /// after it
    #[arg(
        long,
        env = "CATALOG_ACK_EXTENSION_SECS",
        default_value = "60",
        value_parser = clap::value_parser!(u64).range(10..=600)
    )]
    pub catalog_ack_extension_secs: u64,
    /// how long a claimed item stays with a flusher that died, in seconds; longer than a Shopee call with its
    /// retries
    #[arg(long, env = "CATALOG_FLUSH_LEASE_SECS", default_value = "120")]
    pub catalog_flush_lease_secs: u64,
    /// Instant Mart outlet shops: items due together from which one batch outlet update replaces per-item calls;
    /// 0 = never
    #[arg(long, env = "CATALOG_OUTLET_BATCH_MIN_ITEMS", default_value = "3")]
    pub catalog_outlet_batch_min_items: usize,
    #[arg(
        long,
        env = "CATALOG_OUTLET_TASK_TIMEOUT_SECS",
        help = format!(
            "how long a batch outlet task is polled before its items are retried, in seconds; shorter than the \
             lease [unset: {} s, or half the lease if that is less]",
            OUTLET_TASK_TIMEOUT_CAP.as_secs()
        )
    )]
    pub catalog_outlet_task_timeout_secs: Option<u64>,
    /// scheduled content sync period, in seconds; 0 = on demand only
    #[arg(long, env = "CONTENT_SYNC_INTERVAL_SECS", default_value = "900")]
    pub content_sync_interval_secs: u64,
}

/// `CATALOG_OUTLET_TASK_TIMEOUT_SECS` when unset, unless half the lease is less.
const OUTLET_TASK_TIMEOUT_CAP: Duration = Duration::from_secs(60);

impl TryFrom<SettingsArgs> for Settings {
    type Error = ConfigError;

    fn try_from(args: SettingsArgs) -> Result<Self, ConfigError> {
        let lease = Duration::from_secs(args.catalog_flush_lease_secs);
        // Unset: the cap, or half the lease when the lease is shorter (as in the chaos scenarios).
        let outlet_task_timeout = args
            .catalog_outlet_task_timeout_secs
            .map_or_else(|| OUTLET_TASK_TIMEOUT_CAP.min(lease / 2), Duration::from_secs);
        if outlet_task_timeout >= lease {
            return Err(ConfigError::malformed(
                "CATALOG_OUTLET_TASK_TIMEOUT_SECS",
                format!(
                    "{} s must be shorter than CATALOG_FLUSH_LEASE_SECS ({} s): a batch holds its items' leases while it polls",
                    outlet_task_timeout.as_secs(),
                    lease.as_secs()
                ),
            ));
        }
        let content_secs = args.content_sync_interval_secs;
        Ok(Self {
            batch_max: 500,
            batch_wait: Duration::from_millis(25),
            max_outstanding: 2000,
            ack_extension: Duration::from_secs(args.catalog_ack_extension_secs),
            flush_window: Duration::from_millis(args.catalog_flush_window_ms),
            flush_concurrency: args.catalog_flush_concurrency,
            lease,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_model_attempts: 10,
            poll_interval: Duration::from_millis(100),
            unmapped_interval: Duration::from_secs(30),
            redrive_interval: Duration::from_secs(5),
            jobs_interval: Duration::from_secs(5),
            content_interval: (content_secs > 0).then(|| Duration::from_secs(content_secs)),
            outlet_batch_min_items: args.catalog_outlet_batch_min_items,
            outlet_task_poll: Duration::from_millis(500),
            outlet_task_timeout,
        })
    }
}

impl Default for Settings {
    /// The declared defaults of [`SettingsArgs`].
    fn default() -> Self {
        Self::try_from(config::defaults::<SettingsArgs>()).expect("the declared defaults are consistent")
    }
}

/// The variables catalog-sync-worker reads (besides the runtime ones every binary reads).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "catalog-sync-worker")]
pub struct Args {
    /// the Pub/Sub topic of PriceUpdateEvent
    #[arg(long, env = "PRICE_UPDATE_TOPIC")]
    pub price_update_topic: String,
    /// the Pub/Sub topic of InventoryUpdateEvent
    #[arg(long, env = "INVENTORY_UPDATE_TOPIC")]
    pub inventory_update_topic: String,
    /// the subscription to the price topic
    #[arg(
        long,
        env = "PRICE_UPDATE_SUBSCRIPTION",
        default_value = "seller-backend-price-update-subscription"
    )]
    pub price_update_subscription: String,
    /// the subscription to the inventory topic
    #[arg(
        long,
        env = "INVENTORY_UPDATE_SUBSCRIPTION",
        default_value = "seller-backend-inventory-update-subscription"
    )]
    pub inventory_update_subscription: String,
    /// Catalog Service GraphQL endpoint
    #[arg(
        long,
        env = "CATALOG_GRAPHQL_URL",
        default_value = "http://127.0.0.1:8091/graphql"
    )]
    pub catalog_graphql_url: String,
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(flatten)]
    pub pubsub: PubSubArgs,
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
    pub redis_url: Secret,
    pub pubsub: PubSubConfig,
    pub price_topic: String,
    pub inventory_topic: String,
    pub price_subscription: String,
    pub inventory_subscription: String,
    pub catalog_graphql_url: String,
    pub settings: Settings,
}

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(args: Args) -> Result<Self, ConfigError> {
        Ok(Self {
            settings: args.settings.try_into()?,
            shopee: args.shopee.into(),
            token_key: args.token_key.token_encryption_key,
            redis_url: args.redis.redis_url,
            pubsub: args.pubsub.into(),
            price_topic: args.price_update_topic,
            inventory_topic: args.inventory_update_topic,
            price_subscription: args.price_update_subscription,
            inventory_subscription: args.inventory_update_subscription,
            catalog_graphql_url: args.catalog_graphql_url,
        })
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<Args>()?.try_into()
    }
}

/// Everything the worker loops need, built once.
#[derive(Clone)]
pub struct Worker {
    pub pool: PgPool,
    pub shopee: ShopeeClient,
    pub mappings: Mappings,
    pub pubsub: PubSubConfig,
    /// Full subscription paths.
    pub price_subscription: String,
    pub inventory_subscription: String,
    pub catalog_graphql_url: String,
    pub settings: Settings,
}

impl Worker {
    /// Runs the consumers, the flusher and the background loops until `shutdown`, then lets in-flight work finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let subscriber = service_runtime::pubsub::subscriber(&self.pubsub).await?;
        let resolver = resolve::Resolver::new(self.pool.clone(), self.mappings.clone());
        // needs_mapping rows and redrives read mappings from PostgreSQL: they exist because the cache may be stale.
        let fresh = resolve::Resolver::new(self.pool.clone(), self.mappings.uncached());
        let moved = Arc::new(tokio::sync::Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, subscription) in [
            (Kind::Price, self.price_subscription.clone()),
            (Kind::Stock, self.inventory_subscription.clone()),
        ] {
            let consumer = consumer::Consumer {
                pool: self.pool.clone(),
                resolver: resolver.clone(),
                settings: self.settings.clone(),
                subscriber: subscriber.clone(),
                subscription,
                kind,
            };
            tasks.spawn(consumer.run(shutdown.clone()));
        }
        let flusher = flush::Flusher {
            pool: self.pool.clone(),
            shopee: self.shopee.clone(),
            settings: self.settings.clone(),
            owner: format!("{NAME}-{}", uuid::Uuid::new_v4().simple()),
            moved: Arc::clone(&moved),
        };
        tasks.spawn(flusher.run(shutdown.clone()));
        let redrives = Redrives {
            redriver: redrive::Redriver {
                pool: self.pool.clone(),
                resolver: fresh.clone(),
                flush_window: self.settings.flush_window,
            },
            resume: AtomicBool::new(true),
        };
        let settings = self.settings.clone();
        let worker = Arc::new(self);
        // At start a scheduled content sync waits one interval, as the jobs do.
        let jobs = Jobs::new(Arc::clone(&worker), shutdown.clone());
        tasks.spawn(
            Periodic::new("needs-mapping", settings.unmapped_interval)
                .wait_first()
                .wake_on(moved)
                .run_with(
                    shutdown.clone(),
                    (worker, fresh),
                    |(worker, resolver)| async move {
                        let applied = worker
                            .apply_unmapped(&resolver)
                            .await
                            .context("cannot resolve needs_mapping updates")?;
                        if applied > 0 {
                            tracing::info!(applied, "needs_mapping updates resolved");
                        }
                        anyhow::Ok(())
                    },
                ),
        );
        tasks.spawn(Periodic::new("redrive", settings.redrive_interval).run_with(
            shutdown.clone(),
            Arc::new(redrives),
            |redrives| async move { redrives.run_once().await },
        ));
        tasks.spawn(
            Periodic::new("jobs", settings.jobs_interval)
                .wait_first()
                .run_with(shutdown.clone(), Arc::new(jobs), |jobs| async move {
                    jobs.run_once().await
                }),
        );
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a catalog-sync task panicked");
            }
        }
        Ok(())
    }

    /// One pass over needs_mapping rows; returns how many became sendable.
    pub async fn apply_unmapped(&self, resolver: &resolve::Resolver) -> anyhow::Result<usize> {
        let rows = store::unmapped(&self.pool, 1000).await?;
        let updates: Vec<events::Update> = rows
            .into_iter()
            .filter_map(|r| {
                Some(events::Update {
                    kind: r.kind,
                    event_id: r.event_id,
                    sku: domain::Sku::parse(&r.sku).ok()?,
                    hub_id: domain::HubId::parse(&r.hub_id).ok()?,
                    version: r.version,
                    value: r.value,
                })
            })
            .collect();
        if updates.is_empty() {
            return Ok(0);
        }
        let resolutions = resolver.resolve(&updates).await?;
        let resolved: Vec<_> = updates.into_iter().zip(resolutions).collect();
        let n = resolved
            .iter()
            .filter(|(_, r)| matches!(r, resolve::Resolution::Target(_)))
            .count();
        if n > 0 {
            store::apply_unmapped(&self.pool, self.settings.flush_window, &resolved).await?;
        }
        Ok(n)
    }
}

/// Mapping discovery and content-sync jobs, and the content-sync schedule: a run drains both job queues, then
/// syncs content when the schedule is due (one run at a time, so the two content paths never overlap).
struct Jobs {
    worker: Arc<Worker>,
    content: content::ContentSync,
    /// When the scheduled content sync is due next (never when `content_interval` is unset).
    content_due: std::sync::Mutex<tokio::time::Instant>,
    shutdown: CancellationToken,
}

impl Jobs {
    fn new(worker: Arc<Worker>, shutdown: CancellationToken) -> Self {
        let content = content::ContentSync::new(
            worker.pool.clone(),
            worker.shopee.clone(),
            &worker.catalog_graphql_url,
        );
        let first = tokio::time::Instant::now() + worker.settings.content_interval.unwrap_or_default();
        Self {
            worker,
            content,
            content_due: std::sync::Mutex::new(first),
            shutdown,
        }
    }

    /// Every part runs even when another failed; the failures are reported together.
    async fn run_once(&self) -> anyhow::Result<()> {
        let w = &self.worker;
        let discovery = self
            .drain(|| discovery::run_next(&w.pool, &w.shopee, &w.mappings))
            .await
            .context("mapping discovery jobs unavailable");
        let jobs = self
            .drain(|| self.content.run_next_job())
            .await
            .context("content-sync jobs unavailable");
        let scheduled = if self.content_due() {
            self.content
                .run_scheduled()
                .await
                .map(drop)
                .context("scheduled content sync failed")
        } else {
            Ok(())
        };
        let failures: Vec<String> = [discovery, jobs, scheduled]
            .into_iter()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(failures.join("; ")))
        }
    }

    /// Runs jobs one after the other until there is none left (or shutdown).
    async fn drain<F, Fut>(&self, mut next: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        while next().await? && !self.shutdown.is_cancelled() {}
        Ok(())
    }

    /// Whether the scheduled content sync is due; if so, the next one is due an interval from now.
    fn content_due(&self) -> bool {
        let Some(every) = self.worker.settings.content_interval else {
            return false;
        };
        let mut due = self
            .content_due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        if now < *due {
            return false;
        }
        *due = now + every;
        true
    }
}

/// Redrive requests. First looks again at redrives a crash may have cut short, and again after a pass that failed
/// half-way.
struct Redrives {
    redriver: redrive::Redriver,
    resume: AtomicBool,
}

impl Redrives {
    async fn run_once(&self) -> anyhow::Result<()> {
        if self.resume.load(Ordering::Relaxed) {
            let done = self
                .redriver
                .resume_interrupted()
                .await
                .context("cannot resume interrupted redrives")?;
            self.resume.store(false, Ordering::Relaxed);
            if !done.is_empty() {
                tracing::info!(letters = done.len(), "interrupted redrives handled again");
            }
        }
        if let Err(e) = self.redriver.run_once().await {
            self.resume.store(true, Ordering::Relaxed);
            return Err(e.context("redrive pass failed; its letters are handled again"));
        }
        Ok(())
    }
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let redis = service_runtime::redis::pool(&config.redis_url)?;
    let admin = service_runtime::pubsub::subscription_admin(&config.pubsub).await?;
    if config.pubsub.emulator_host.is_some() {
        // Locally only: create what is missing (production topics and subscriptions exist already).
        let topics = service_runtime::pubsub::topic_admin(&config.pubsub).await?;
        for (topic, sub) in [
            (&config.price_topic, &config.price_subscription),
            (&config.inventory_topic, &config.inventory_subscription),
        ] {
            let topic = config.pubsub.topic_path(topic);
            service_runtime::pubsub::ensure_topic(&topics, &topic).await?;
            service_runtime::pubsub::ensure_subscription(
                &admin,
                &config.pubsub.subscription_path(sub),
                &topic,
                60,
            )
            .await?;
        }
    }
    let probe = PubSubProbe::Subscription {
        admin,
        name: config.pubsub.subscription_path(&config.price_subscription),
    };
    let health = Health::new(
        NAME,
        vec![
            Dependency::Postgres(pool.clone()),
            Dependency::Redis(redis.clone()),
            Dependency::PubSub(probe),
        ],
        serve.shutdown.clone(),
    );
    let shopee = service_runtime::shopee::client(
        &config.shopee,
        pool.clone(),
        Some(redis.clone()),
        &config.token_key,
    )?;
    let worker = Worker {
        pool: pool.clone(),
        shopee,
        mappings: Mappings::new(pool.clone(), Some(redis)),
        price_subscription: config.pubsub.subscription_path(&config.price_subscription),
        inventory_subscription: config.pubsub.subscription_path(&config.inventory_subscription),
        pubsub: config.pubsub.clone(),
        catalog_graphql_url: config.catalog_graphql_url.clone(),
        settings: config.settings.clone(),
    };
    let worker_task = tokio::spawn(worker.run(serve.shutdown.clone()));
    let app = Router::new().merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown.clone()).await?;
    match worker_task.await {
        Ok(result) => result?,
        Err(e) => tracing::error!(error = %e, "the catalog-sync worker panicked"),
    }
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = vec![
            ("SHOPEE_PARTNER_ID", "1000001"),
            ("SHOPEE_PARTNER_KEY", "test-partner-key"),
            (
                "TOKEN_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
            ("PUBSUB_PROJECT_ID", "p"),
            ("PRICE_UPDATE_TOPIC", "price-updates"),
            ("INVENTORY_UPDATE_TOPIC", "inventory-updates"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn the_outlet_task_timeout_follows_a_short_lease_unless_set() {
        let c = Config::from_env(&env(&[])).unwrap();
        assert_eq!(c.settings.outlet_task_timeout, Duration::from_secs(60));
        // A short lease (as in the chaos scenarios) shortens the default instead of refusing to start.
        let c = Config::from_env(&env(&[("CATALOG_FLUSH_LEASE_SECS", "15")])).unwrap();
        assert_eq!(c.settings.outlet_task_timeout, Duration::from_millis(7500));
        let err = Config::from_env(&env(&[
            ("CATALOG_FLUSH_LEASE_SECS", "15"),
            ("CATALOG_OUTLET_TASK_TIMEOUT_SECS", "20"),
        ]))
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("CATALOG_OUTLET_TASK_TIMEOUT_SECS"), "{err}");
        let c = Config::from_env(&env(&[("CATALOG_OUTLET_BATCH_MIN_ITEMS", "0")])).unwrap();
        assert_eq!(c.settings.outlet_batch_min_items, 0);
    }

    #[test]
    fn the_ack_extension_stays_in_pub_subs_range_and_defaults_are_the_declared_ones() {
        let err = Config::from_env(&env(&[("CATALOG_ACK_EXTENSION_SECS", "5")]))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "CATALOG_ACK_EXTENSION_SECS is malformed: 5 is not in 10..=600"
        );
        let c = Config::from_env(&env(&[])).unwrap();
        assert_eq!(format!("{:?}", c.settings), format!("{:?}", Settings::default()));
        assert!(!config::declares::<Args>("HUB_CONFIG_URL"), "read but never used");
    }
}
