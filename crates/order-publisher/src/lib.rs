//! order-publisher: push inbox -> order detail -> ORDR `new_order` on Pub/Sub.

use axum::Router;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, PubSubConfig, Secret, ShopeeConfig};
use service_runtime::health::{Dependency, Health};
use service_runtime::pubsub::PubSubProbe;

pub const NAME: &str = "order-publisher";

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

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            shopee: ShopeeConfig::from_env(env)?,
            token_key: config::token_encryption_key(env)?,
            redis_url: config::redis_url(env)?,
            pubsub: PubSubConfig::from_env(env)?,
            ordr_topic: env.or_default("ORDR_TOPIC", "ordr-input")?,
            hub_config_url: config::hub_config_url(env)?,
            reconcile_interval_secs: env.or_default("RECONCILE_INTERVAL_SECS", "60")?,
        })
    }
}

pub fn help() -> String {
    let own: &[(&str, &str)] = &[
        (
            "ORDR_TOPIC",
            "Pub/Sub topic for new_order events [default: ordr-input]",
        ),
        (
            "HUB_CONFIG_URL",
            "Hub Config Service base URL [default: http://127.0.0.1:8090]",
        ),
        (
            "RECONCILE_INTERVAL_SECS",
            "lost-push and order-list reconciliation period [default: 60]",
        ),
    ];
    cli::env_help(&[cli::BASE_VARS, cli::SHOPEE_VARS, cli::PUBSUB_VARS, own].concat())
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
            Dependency::Redis(redis),
            Dependency::PubSub(probe),
        ],
        serve.shutdown.clone(),
    );
    let app = Router::new().merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown).await?;
    pool.close().await;
    Ok(())
}
