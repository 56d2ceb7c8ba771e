//! webhook-gateway: the Shopee-facing HTTP service.

use axum::Router;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, ShopeeConfig};
use service_runtime::health::{Dependency, Health};

pub const NAME: &str = "webhook-gateway";

#[derive(Debug, Clone)]
pub struct Config {
    pub shopee: ShopeeConfig,
    /// The public URL registered at Shopee; part of the push signature.
    pub push_callback_url: String,
    pub token_key: EncryptionKey,
    pub hub_config_url: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            shopee: ShopeeConfig::from_env(env)?,
            push_callback_url: env.required(
                "SHOPEE_PUSH_CALLBACK_URL",
                "the public push URL registered at Shopee, e.g. https://seller.example.com/webhooks/shopee",
            )?,
            token_key: config::token_encryption_key(env)?,
            hub_config_url: config::hub_config_url(env)?,
        })
    }
}

pub fn help() -> String {
    let own: &[(&str, &str)] = &[
        (
            "SHOPEE_PUSH_CALLBACK_URL",
            "public push URL registered at Shopee (required; part of the push signature)",
        ),
        (
            "HUB_CONFIG_URL",
            "Hub Config Service base URL [default: http://127.0.0.1:8090]",
        ),
    ];
    cli::env_help(&[cli::BASE_VARS, cli::SHOPEE_VARS, own].concat())
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let health = Health::new(
        NAME,
        vec![Dependency::Postgres(pool.clone())],
        serve.shutdown.clone(),
    );
    let app = Router::new().merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown).await?;
    pool.close().await;
    Ok(())
}
