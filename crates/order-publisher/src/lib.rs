//! order-publisher: push inbox -> order detail -> ORDR `new_order` on Pub/Sub.
//!
//! Its loops share one cancellation token, each a [`Periodic`] task: intake (inbox -> orders -> outbox), the outbox
//! relay (outbox -> Pub/Sub), the needs-mapping/redrive retry, reconciliation (lost pushes + order list), the hub
//! sync ([`hub_sync`]), the lag and token gauges ([`gauges`]); the serviceable-area upload ([`polygons`]) follows
//! each hub snapshot.

pub mod gauges;
pub mod hub_sync;
pub mod intake;
pub mod outbox;
pub mod polygons;
pub mod reconcile;
pub mod transform;

use std::sync::Arc;
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
use service_runtime::periodic::{Next, Periodic};
use service_runtime::pubsub::PubSubProbe;

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
    let hub_sync = Arc::new(hub_sync::HubSync::new(
        Hubs::new(pool.clone()),
        config.hub_config_url.clone(),
        hub_snapshots,
    )?);
    let reconciler = reconcile::Reconciler {
        pool: pool.clone(),
        inbox: inbox.clone(),
        shopee,
    };
    let waiting = Arc::new(intake::WaitingOrders::new(intake.clone()));
    let shutdown = serve.shutdown.clone();
    // Each loop gets `periodic`'s default grace (1 s) for the run it holds at shutdown, within the wind-down below.
    let busy_or_idle = |n: usize| Next::immediately_if(n > 0);
    let workers = vec![
        tokio::spawn(
            Periodic::new("intake", Duration::from_millis(200))
                .max_backoff(Duration::from_secs(5))
                .run_with(shutdown.clone(), intake.clone(), move |intake| async move {
                    intake.tick().await.map(busy_or_idle)
                }),
        ),
        tokio::spawn(
            Periodic::new("outbox", Duration::from_millis(100))
                .max_backoff(Duration::from_secs(5))
                .run_with(shutdown.clone(), relay.clone(), move |relay| async move {
                    relay.tick().await.map(busy_or_idle)
                }),
        ),
        tokio::spawn(
            Periodic::new("needs-mapping-retry", intake::WaitingOrders::EVERY).run_with(
                shutdown.clone(),
                waiting.clone(),
                |waiting| async move { waiting.run_once().await },
            ),
        ),
        tokio::spawn(
            Periodic::new(
                "reconcile",
                Duration::from_secs(config.reconcile_interval_secs.max(1)),
            )
            .run_with(shutdown.clone(), reconciler.clone(), |reconciler| async move {
                reconciler.run_once().await.map(drop)
            }),
        ),
        tokio::spawn(Periodic::new("lag-gauges", gauges::EVERY).run_with(
            shutdown.clone(),
            (inbox.clone(), relay),
            |(inbox, relay)| async move { gauges::report_lag(&inbox, &relay).await },
        )),
        tokio::spawn(Periodic::new("token-gauges", gauges::EVERY).run_with(
            shutdown.clone(),
            pool.clone(),
            |pool| async move { gauges::report_token_expiry(&pool).await },
        )),
        tokio::spawn(Periodic::new("hub-sync", hub_sync::EVERY).run_with(
            shutdown.clone(),
            hub_sync.clone(),
            |hub_sync| async move { hub_sync.run_once().await },
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
