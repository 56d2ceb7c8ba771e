//! order-publisher: push inbox -> order detail -> ORDR `new_order` on Pub/Sub.
//!
//! Four loops share one cancellation token: intake (inbox -> orders -> outbox), the outbox relay (outbox ->
//! Pub/Sub), the needs-mapping/redrive loop, and reconciliation (lost pushes + order list).

pub mod intake;
pub mod outbox;
pub mod polygons;
pub mod reconcile;
pub mod transform;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use product_mapping::{Hubs, Mappings};
use push_inbox::Inbox;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{
    ConfigError, EncryptionKey, Env, HubConfigArgs, PubSubArgs, PubSubConfig, RedisArgs, Secret, ShopeeArgs,
    ShopeeConfig, TokenKeyArgs,
};
use service_runtime::health::{Dependency, Health};
use service_runtime::pubsub::PubSubProbe;
use tokio_util::sync::CancellationToken;

pub const NAME: &str = "order-publisher";

/// The variables order-publisher reads (besides the runtime ones every binary reads).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "order-publisher")]
pub struct Args {
    /// Pub/Sub topic for new_order events
    #[arg(long, env = "ORDR_TOPIC", default_value = "ordr-input")]
    pub ordr_topic: String,
    /// lost-push and order-list reconciliation period, in seconds
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value = "60")]
    pub reconcile_interval_secs: u64,
    #[command(flatten)]
    pub hub_config: HubConfigArgs,
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
    pub ordr_topic: String,
    pub hub_config_url: String,
    pub reconcile_interval_secs: u64,
}

impl From<Args> for Config {
    fn from(args: Args) -> Self {
        Self {
            shopee: args.shopee.into(),
            token_key: args.token_key.token_encryption_key,
            redis_url: args.redis.redis_url,
            pubsub: args.pubsub.into(),
            ordr_topic: args.ordr_topic,
            hub_config_url: args.hub_config.hub_config_url,
            reconcile_interval_secs: args.reconcile_interval_secs,
        }
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<Args>().map(Self::from)
    }
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let redis = service_runtime::redis::pool(&config.redis_url)?;
    let topic_admin = service_runtime::pubsub::topic_admin(&config.pubsub).await?;
    let probe = PubSubProbe::Topic {
        admin: topic_admin,
        name: config.pubsub.topic_path(&config.ordr_topic),
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
    let topic = config.pubsub.topic_path(&config.ordr_topic);
    let publisher = service_runtime::pubsub::publisher(&config.pubsub, &topic).await?;
    let inbox = Inbox::new(pool.clone());
    let intake = intake::Intake {
        pool: pool.clone(),
        inbox: inbox.clone(),
        shopee: shopee.clone(),
        mappings: Mappings::new(pool.clone(), Some(redis)),
        hubs: Hubs::new(pool.clone()),
        topic: topic.clone(),
        batch_size: 500,
    };
    let relay = outbox::OutboxRelay {
        pool: pool.clone(),
        publisher: publisher.clone(),
        topic,
        batch_size: 500,
    };
    let polygon_sync = polygons::PolygonSync::new(pool.clone(), shopee.clone());
    let (hub_snapshots, hub_snapshots_rx) = tokio::sync::watch::channel(None);
    let reconciler = reconcile::Reconciler {
        pool: pool.clone(),
        inbox: inbox.clone(),
        shopee,
    };
    let shutdown = serve.shutdown.clone();
    let intake_loop = {
        let intake = intake.clone();
        drain_loop(
            "intake",
            shutdown.clone(),
            Duration::from_millis(200),
            move || {
                let intake = intake.clone();
                async move { intake.tick().await }
            },
        )
    };
    let outbox_loop = {
        let relay = relay.clone();
        drain_loop(
            "outbox",
            shutdown.clone(),
            Duration::from_millis(100),
            move || {
                let relay = relay.clone();
                async move { relay.tick().await }
            },
        )
    };
    let interval = Duration::from_secs(config.reconcile_interval_secs.max(1));
    let workers = vec![
        tokio::spawn(intake_loop),
        tokio::spawn(outbox_loop),
        tokio::spawn(retry_waiting_orders(intake, shutdown.clone())),
        tokio::spawn(reconcile::run_every(reconciler, interval, shutdown.clone())),
        tokio::spawn(report_lag(inbox, relay, shutdown.clone())),
        tokio::spawn(sync_hubs(
            Hubs::new(pool.clone()),
            config.hub_config_url.clone(),
            Duration::from_secs(60),
            hub_snapshots,
            shutdown.clone(),
        )),
        tokio::spawn(polygons::run(polygon_sync, hub_snapshots_rx, shutdown.clone())),
    ];
    let app = Router::new().merge(health.router());
    // The loops get their grace while the HTTP server drains, both counted from SIGTERM, so the process is gone
    // within 2 s even when a loop is stuck (a Shopee call retrying, a dead connection).
    let http = async {
        let served = cli::serve_http(serve.listener, app, serve.shutdown).await;
        shutdown.cancel();
        served
    };
    let wind_down = async {
        shutdown.cancelled().await;
        // Give each loop a moment to finish the batch it holds. What is still running after that is aborted: every
        // step is idempotent (leases expire, the outbox key is unique), so nothing is lost or doubled.
        let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
        if tokio::time::timeout(Duration::from_millis(1200), futures::future::join_all(workers))
            .await
            .is_err()
        {
            tracing::warn!("workers still busy at shutdown: aborted; their leased work is picked up again");
            aborts.iter().for_each(|a| a.abort());
        }
    };
    let (served, ()) = tokio::join!(http, wind_down);
    served?;
    let _ = tokio::time::timeout(Duration::from_millis(300), publisher.flush()).await;
    // Connections held by aborted loops may be broken; the process exit closes whatever is left.
    let _ = tokio::time::timeout(Duration::from_millis(200), pool.close()).await;
    Ok(())
}

/// Runs `tick` back to back while it finds work, sleeping `idle` when it finds none, until shutdown. A failing tick
/// is logged and retried after a pause; a batch in flight is never abandoned midway.
async fn drain_loop<F, Fut>(name: &'static str, shutdown: CancellationToken, idle: Duration, tick: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let mut failures: u32 = 0;
    while !shutdown.is_cancelled() {
        let pause = match tick().await {
            Ok(0) => idle,
            Ok(_) => {
                failures = 0;
                continue;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(
                    worker = name,
                    error = format!("{e:#}"),
                    "worker batch failed; retrying"
                );
                Duration::from_millis(250 * u64::from(failures.min(20)))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

type Watermark = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// Publishes waiting orders as soon as their mapping exists: re-checks `needs_mapping` orders whenever product
/// mappings or hubs changed (and once at start), and handles redrive requests.
async fn retry_waiting_orders(intake: intake::Intake, shutdown: CancellationToken) {
    let mut watermark: Option<Watermark> = None;
    while !shutdown.is_cancelled() {
        let result: anyhow::Result<()> = async {
            let current: Watermark = sqlx::query_as(
                "SELECT (SELECT max(updated_at) FROM product_mappings), (SELECT max(updated_at) FROM hubs)",
            )
            .fetch_one(&intake.pool)
            .await?;
            if watermark != Some(current) {
                let waiting = intake.needs_mapping_orders(500).await?;
                if !waiting.is_empty() {
                    tracing::info!(
                        orders = waiting.len(),
                        "mappings changed: retrying orders that need a mapping"
                    );
                    intake.retry_orders(waiting).await?;
                }
                watermark = Some(current);
            }
            intake.redrive().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = format!("{e:#}"), "needs-mapping retry failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Inbox and outbox lag gauges.
async fn report_lag(inbox: Inbox, relay: outbox::OutboxRelay, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        if let Ok((pending, age)) = inbox.lag().await {
            metrics::gauge!("inbox_pending").set(pending as f64);
            metrics::gauge!("inbox_oldest_age_seconds").set(age);
        }
        if let Ok((pending, age)) = relay.lag().await {
            metrics::gauge!("outbox_pending").set(pending as f64);
            metrics::gauge!("outbox_oldest_age_seconds").set(age);
        }
        if let Ok(parked) = dead_letters::parked_counts(inbox.pool()).await {
            for (source, count) in parked {
                metrics::gauge!("dead_letters_parked", "source" => source).set(count as f64);
            }
        }
        // Token and authorization expiry per shop, for the "re-authorize soon" alerts.
        let expiries: Vec<(i64, Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT s.shop_id, EXTRACT(EPOCH FROM t.access_expires_at)::float8,
                    EXTRACT(EPOCH FROM s.authorization_expires_at)::float8
             FROM shops s LEFT JOIN shop_tokens t USING (shop_id) WHERE s.deauthorized_at IS NULL",
        )
        .fetch_all(inbox.pool())
        .await
        .unwrap_or_default();
        for (shop, token, authorization) in expiries {
            if let Some(t) = token {
                metrics::gauge!("shop_token_expiry_timestamp_seconds", "shop_id" => shop.to_string()).set(t);
            }
            if let Some(a) = authorization {
                metrics::gauge!("shop_authorization_expiry_timestamp_seconds", "shop_id" => shop.to_string())
                    .set(a);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Keeps the `hubs` table (hub <-> shop, read by every worker) equal to the Hub Config Service: at start, then every
/// `every`. A failed refresh keeps the table as it is. Each snapshot fetched goes to `snapshots` (the serviceable
/// area upload, `polygons.rs`).
async fn sync_hubs(
    hubs: Hubs,
    base_url: String,
    every: Duration,
    snapshots: tokio::sync::watch::Sender<Option<std::sync::Arc<hub_config::Snapshot>>>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Hub Config client; hubs are not synchronised");
            return;
        }
    };
    while !shutdown.is_cancelled() {
        match hub_config::fetch(&client, &base_url).await {
            Ok(snapshot) => {
                let mut locations = Vec::new();
                for hub in snapshot.by_shop.values().flatten() {
                    let parsed = domain::HubId::parse(&hub.hub_id)
                        .map_err(|e| e.to_string())
                        .and_then(|id| {
                            domain::ShopId::new(hub.shop_id)
                                .map(|s| (id, s))
                                .map_err(|e| e.to_string())
                        });
                    match parsed {
                        Ok((hub_id, shop_id)) => locations.push(product_mapping::HubLocation {
                            hub_id,
                            shop_id,
                            location_id: None,
                            active: hub.active,
                        }),
                        Err(e) => {
                            tracing::warn!(hub.id = %hub.hub_id, problem = %e, "hub from Hub Config skipped")
                        }
                    }
                }
                match hubs.upsert(&locations).await {
                    Ok(()) => tracing::debug!(
                        hubs = locations.len(),
                        "hubs synchronised from the Hub Config Service"
                    ),
                    Err(e) => tracing::warn!(error = %e, "storing hubs failed"),
                }
                snapshots.send_replace(Some(std::sync::Arc::new(snapshot)));
            }
            Err(e) => tracing::warn!(error = %e, "Hub Config Service unavailable; hubs table unchanged"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
