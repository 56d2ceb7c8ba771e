//! delivery-status-consumer: Kafka `deliveries.out` -> Shopee logistics status.

use axum::Router;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, ShopeeConfig};
use service_runtime::health::{Dependency, Health};
use service_runtime::kafka::{KafkaConfig, KafkaProbe};

pub const NAME: &str = "delivery-status-consumer";

#[derive(Debug, Clone)]
pub struct Config {
    pub shopee: ShopeeConfig,
    pub token_key: EncryptionKey,
    pub kafka: KafkaConfig,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            shopee: ShopeeConfig::from_env(env)?,
            token_key: config::token_encryption_key(env)?,
            kafka: KafkaConfig::from_env(env)?,
        })
    }
}

pub fn help() -> String {
    let own: &[(&str, &str)] = &[
        ("KAFKA_BROKERS", "bootstrap servers [default: 127.0.0.1:9092]"),
        ("KAFKA_DELIVERY_TOPIC", "[default: deliveries.out]"),
        ("KAFKA_GROUP_ID", "[default: seller-backend-delivery-status]"),
    ];
    cli::env_help(&[cli::BASE_VARS, cli::SHOPEE_VARS, own].concat())
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 8)?;
    let probe = KafkaProbe::new(&config.kafka)?;
    let health = Health::new(
        NAME,
        vec![Dependency::Postgres(pool.clone()), Dependency::Kafka(probe)],
        serve.shutdown.clone(),
    );
    let app = Router::new().merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown).await?;
    pool.close().await;
    Ok(())
}
