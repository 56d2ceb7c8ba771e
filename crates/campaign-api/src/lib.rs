//! campaign-api: the internal HTTP API.

use axum::Router;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, Secret, ShopeeConfig};
use service_runtime::health::{Dependency, Health};

pub const NAME: &str = "campaign-api";

#[derive(Debug, Clone)]
pub struct Config {
    pub shopee: ShopeeConfig,
    pub token_key: EncryptionKey,
    pub redis_url: Secret,
    /// Bearer tokens allowed to call the API.
    pub api_tokens: Vec<Secret>,
    pub hub_config_url: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw: String = env.required(
            "CAMPAIGN_API_TOKENS",
            "comma-separated bearer tokens allowed to call the API",
        )?;
        let api_tokens: Vec<Secret> = raw
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .collect();
        if api_tokens.is_empty() || api_tokens.iter().any(|t| t.expose().len() < 16) {
            return Err(ConfigError::Malformed {
                var: "CAMPAIGN_API_TOKENS",
                problem: "give at least one token, each at least 16 characters".into(),
            });
        }
        Ok(Self {
            shopee: ShopeeConfig::from_env(env)?,
            token_key: config::token_encryption_key(env)?,
            redis_url: config::redis_url(env)?,
            api_tokens,
            hub_config_url: config::hub_config_url(env)?,
        })
    }
}

pub fn help() -> String {
    let own: &[(&str, &str)] = &[
        (
            "CAMPAIGN_API_TOKENS",
            "comma-separated bearer tokens allowed to call the API (required, secret)",
        ),
        (
            "HUB_CONFIG_URL",
            "Hub Config Service base URL [default: http://127.0.0.1:8090]",
        ),
    ];
    cli::env_help(&[cli::BASE_VARS, cli::SHOPEE_VARS, own].concat())
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let redis = service_runtime::redis::pool(&config.redis_url)?;
    let health = Health::new(
        NAME,
        vec![Dependency::Postgres(pool.clone()), Dependency::Redis(redis)],
        serve.shutdown.clone(),
    );
    let app = Router::new().merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown).await?;
    pool.close().await;
    Ok(())
}
