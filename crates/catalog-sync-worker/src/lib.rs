//! catalog-sync-worker: price and inventory events (Pub/Sub) and product content (Catalog GraphQL) -> Shopee.

use axum::Router;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, PubSubConfig, Secret, ShopeeConfig};
use service_runtime::health::{Dependency, Health};
use service_runtime::pubsub::PubSubProbe;

pub const NAME: &str = "catalog-sync-worker";

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
    pub hub_config_url: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            shopee: ShopeeConfig::from_env(env)?,
            token_key: config::token_encryption_key(env)?,
            redis_url: config::redis_url(env)?,
            pubsub: PubSubConfig::from_env(env)?,
            price_topic: env.required("PRICE_UPDATE_TOPIC", "the Pub/Sub topic of PriceUpdateEvent")?,
            inventory_topic: env.required(
                "INVENTORY_UPDATE_TOPIC",
                "the Pub/Sub topic of InventoryUpdateEvent",
            )?,
            price_subscription: env.or_default(
                "PRICE_UPDATE_SUBSCRIPTION",
                "seller-backend-price-update-subscription",
            )?,
            inventory_subscription: env.or_default(
                "INVENTORY_UPDATE_SUBSCRIPTION",
                "seller-backend-inventory-update-subscription",
            )?,
            catalog_graphql_url: env.or_default("CATALOG_GRAPHQL_URL", "http://127.0.0.1:8091/graphql")?,
            hub_config_url: config::hub_config_url(env)?,
        })
    }
}

pub fn help() -> String {
    let own: &[(&str, &str)] = &[
        (
            "PRICE_UPDATE_TOPIC",
            "Pub/Sub topic of PriceUpdateEvent (required)",
        ),
        (
            "INVENTORY_UPDATE_TOPIC",
            "Pub/Sub topic of InventoryUpdateEvent (required)",
        ),
        (
            "PRICE_UPDATE_SUBSCRIPTION",
            "[default: seller-backend-price-update-subscription]",
        ),
        (
            "INVENTORY_UPDATE_SUBSCRIPTION",
            "[default: seller-backend-inventory-update-subscription]",
        ),
        (
            "CATALOG_GRAPHQL_URL",
            "Catalog Service GraphQL endpoint [default: http://127.0.0.1:8091/graphql]",
        ),
        (
            "HUB_CONFIG_URL",
            "Hub Config Service base URL [default: http://127.0.0.1:8090]",
        ),
    ];
    cli::env_help(&[cli::BASE_VARS, cli::SHOPEE_VARS, cli::PUBSUB_VARS, own].concat())
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let redis = service_runtime::redis::pool(&config.redis_url)?;
    let admin = service_runtime::pubsub::subscription_admin(&config.pubsub).await?;
    let probe = PubSubProbe::Subscription {
        admin,
        name: config.pubsub.subscription_path(&config.price_subscription),
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
