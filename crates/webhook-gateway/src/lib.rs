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
use service_runtime::config::{
    self, ConfigError, EncryptionKey, Env, HubConfigArgs, Secret, ShopeeArgs, ShopeeConfig, TokenKeyArgs,
};
use service_runtime::health::{Dependency, Health};
use shopee_client::sign::PushSignatureMode;

pub const NAME: &str = "webhook-gateway";

/// The variables webhook-gateway reads (besides the runtime ones every binary reads).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "webhook-gateway")]
pub struct Args {
    /// the public push URL registered at Shopee, e.g. https://seller.example.com/webhooks/shopee (part of the push
    /// signature)
    #[arg(long, env = "SHOPEE_PUSH_CALLBACK_URL")]
    pub shopee_push_callback_url: String,
    /// what the push signature covers: Shopee's documented `callback_url|body`, or the body alone (Shopee's docs
    /// are unsettled: see docs/operations.md)
    #[arg(
        long,
        env = "SHOPEE_PUSH_SIGNATURE_MODE",
        value_enum,
        default_value = "url_and_body"
    )]
    pub shopee_push_signature_mode: SignatureMode,
    /// a separate "live push partner key", when the account has one; unset = SHOPEE_PARTNER_KEY (secret)
    #[arg(long, env = "SHOPEE_PUSH_PARTNER_KEY", hide_env_values = true)]
    pub shopee_push_partner_key: Option<Secret>,
    /// how often hub config is refreshed in the background, in seconds
    #[arg(long, env = "HUB_CONFIG_REFRESH_SECS", default_value = "30", value_parser = config::at_least(1u64))]
    pub hub_config_refresh_secs: u64,
    /// the path covered by the quotation signature (Shopee's docs leave it unsettled: docs/quotation.md)
    #[arg(long, env = "QUOTATION_SIGN_PATH", default_value = quotation::DEFAULT_SIGN_PATH)]
    pub quotation_sign_path: String,
    /// accepted distance between a quotation's timestamp and now, in seconds
    #[arg(long, env = "QUOTATION_TIMESTAMP_WINDOW_SECS", default_value = "300")]
    pub quotation_timestamp_window_secs: i64,
    #[command(flatten)]
    pub hub_config: HubConfigArgs,
    #[command(flatten)]
    pub shopee: ShopeeArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
}

/// `SHOPEE_PUSH_SIGNATURE_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SignatureMode {
    UrlAndBody,
    BodyOnly,
}

impl From<SignatureMode> for PushSignatureMode {
    fn from(mode: SignatureMode) -> Self {
        match mode {
            SignatureMode::UrlAndBody => Self::UrlAndBody,
            SignatureMode::BodyOnly => Self::BodyOnly,
        }
    }
}

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

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(args: Args) -> Result<Self, ConfigError> {
        let shopee = ShopeeConfig::from(args.shopee);
        Ok(Self {
            push_key: args
                .shopee_push_partner_key
                .unwrap_or_else(|| shopee.partner_key.clone()),
            shopee,
            push_callback_url: args.shopee_push_callback_url,
            push_signature_mode: args.shopee_push_signature_mode.into(),
            token_key: args.token_key.token_encryption_key,
            hub_config_url: args.hub_config.hub_config_url,
            hub_config_refresh: std::time::Duration::from_secs(args.hub_config_refresh_secs),
            quotation_sign_path: args.quotation_sign_path,
            quotation_window_secs: args.quotation_timestamp_window_secs,
        })
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<Args>()?.try_into()
    }
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
