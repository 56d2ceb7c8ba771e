//! webhook-gateway: the Shopee-facing HTTP service.

pub mod auth_callback;
pub use hub_config;
pub mod inbox_writer;
pub mod push;
pub mod quotation;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use push_inbox::Inbox;
use service_runtime::cli::{self, Serve};
use service_runtime::config::{self, ConfigError, EncryptionKey, Env, Secret, ShopeeConfig};
use service_runtime::health::{Dependency, Health};
use shopee_client::sign::PushSignatureMode;

pub const NAME: &str = "webhook-gateway";

#[derive(Debug, Clone)]
pub struct Config {
    pub shopee: ShopeeConfig,
    /// The public URL registered at Shopee; part of the push signature.
    pub push_callback_url: String,
    /// What the push signature covers (Shopee's docs are unsettled: see docs/operations.md).
    pub push_signature_mode: PushSignatureMode,
    /// The key pushes are signed with: `SHOPEE_PUSH_PARTNER_KEY` when set, else the partner key.
    pub push_key: Secret,
    pub token_key: EncryptionKey,
    pub hub_config_url: String,
    /// How often the Hub Config Service is fetched (`HUB_CONFIG_REFRESH_SECS`).
    pub hub_config_refresh: std::time::Duration,
    /// The path the quotation signature covers (`QUOTATION_SIGN_PATH`; Shopee's docs leave it unsettled).
    pub quotation_sign_path: String,
    /// Accepted distance between a quotation's timestamp and now (`QUOTATION_TIMESTAMP_WINDOW_SECS`).
    pub quotation_window_secs: i64,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let shopee = ShopeeConfig::from_env(env)?;
        let push_signature_mode = match env
            .or_default::<String>("SHOPEE_PUSH_SIGNATURE_MODE", "url_and_body")?
            .as_str()
        {
            "url_and_body" => PushSignatureMode::UrlAndBody,
            "body_only" => PushSignatureMode::BodyOnly,
            other => {
                return Err(ConfigError::Malformed {
                    var: "SHOPEE_PUSH_SIGNATURE_MODE",
                    problem: format!("expected `url_and_body` or `body_only`, got `{other}`"),
                });
            }
        };
        let push_key = env
            .optional("SHOPEE_PUSH_PARTNER_KEY")?
            .unwrap_or_else(|| shopee.partner_key.clone());
        Ok(Self {
            push_signature_mode,
            push_key,
            shopee,
            push_callback_url: env.required(
                "SHOPEE_PUSH_CALLBACK_URL",
                "the public push URL registered at Shopee, e.g. https://seller.example.com/webhooks/shopee",
            )?,
            token_key: config::token_encryption_key(env)?,
            hub_config_url: config::hub_config_url(env)?,
            hub_config_refresh: std::time::Duration::from_secs(
                env.or_default::<u64>("HUB_CONFIG_REFRESH_SECS", "30")?.max(1),
            ),
            quotation_sign_path: env.or_default("QUOTATION_SIGN_PATH", quotation::DEFAULT_SIGN_PATH)?,
            quotation_window_secs: env.or_default("QUOTATION_TIMESTAMP_WINDOW_SECS", "300")?,
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
        (
            "HUB_CONFIG_REFRESH_SECS",
            "how often hub config is refreshed in the background [default: 30]",
        ),
        (
            "QUOTATION_SIGN_PATH",
            "path covered by the quotation signature [default: /shopee/quotation]",
        ),
        (
            "QUOTATION_TIMESTAMP_WINDOW_SECS",
            "accepted quotation timestamp skew [default: 300]",
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
    let hubs = hub_config::HubDirectory::default();
    let refresher = hub_config::spawn_refresher(
        hubs.clone(),
        serve.config.hub_config_url.clone(),
        serve.config.hub_config_refresh,
        serve.shutdown.clone(),
    );
    let shopee =
        service_runtime::shopee::client(&serve.config.shopee, pool.clone(), None, &serve.config.token_key)?;
    let app = router(&serve.config, pool.clone())
        .merge(shopee_router(&serve.config, hubs, shopee))
        .merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown).await?;
    refresher.abort();
    pool.close().await;
    Ok(())
}

/// The Shopee-facing routes.
pub fn router(config: &Config, pool: sqlx::PgPool) -> Router {
    let push_state = push::PushState {
        writer: inbox_writer::InboxWriter::start(Inbox::new(pool), 4),
        verifier: Arc::new(push::PushVerifier {
            mode: config.push_signature_mode,
            key: config.push_key.clone(),
            callback_url: config.push_callback_url.clone(),
        }),
    };
    Router::new()
        .route("/webhooks/shopee", post(push::receive))
        .with_state(push_state)
        .layer(DefaultBodyLimit::max(push::MAX_PUSH_BYTES))
}

/// The quotation URL and the authorization callback.
pub fn shopee_router(
    config: &Config,
    hubs: hub_config::HubDirectory,
    shopee: shopee_client::ShopeeClient,
) -> Router {
    let quotation_state = quotation::QuotationState {
        config: Arc::new(quotation::QuotationConfig {
            partner_id: config.shopee.partner_id,
            partner_key: config.shopee.partner_key.clone(),
            sign_path: config.quotation_sign_path.clone(),
            window_secs: config.quotation_window_secs,
        }),
        hubs,
    };
    Router::new()
        .route("/shopee/quotation", post(quotation::quote))
        .with_state(quotation_state)
        .layer(DefaultBodyLimit::max(quotation::MAX_QUOTATION_BYTES))
        .merge(
            Router::new()
                .route(
                    "/shopee/auth/callback",
                    axum::routing::get(auth_callback::callback),
                )
                .with_state(auth_callback::AuthState { shopee }),
        )
}
