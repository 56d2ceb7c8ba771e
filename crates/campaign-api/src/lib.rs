//! campaign-api: the internal HTTP API (bearer tokens from `CAMPAIGN_API_TOKENS`).
//!
//! Campaigns in SKU terms run as one Shopee discount per shop ([`campaigns`]), product mappings and discovery
//! jobs, content-sync jobs, shops and their authorization, orders, dead letters. Every route but `/health/*` and
//! `/metrics` needs a token; errors are `{"error": {"code", "message"}}`; lists are paginated with `limit` and an
//! opaque `cursor`; `/openapi.json` describes the routes (checked against the route table in tests).

pub mod auth;
pub mod campaigns;
pub mod error;
pub mod idempotency;
pub mod openapi;
pub mod page;
pub mod reconcile;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use product_mapping::{Hubs, Mappings};
use service_runtime::cli::{self, Serve};
use service_runtime::config::{
    self, ConfigError, EncryptionKey, Env, RedisArgs, Secret, ShopeeArgs, ShopeeConfig, TokenKeyArgs,
};
use service_runtime::health::{Dependency, Health};
use shopee_client::ShopeeClient;
use sqlx::PgPool;

pub const NAME: &str = "campaign-api";

/// The largest request body accepted (a bulk mapping upsert of a few thousand rows fits).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The variables campaign-api reads (besides the runtime ones every binary reads).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "campaign-api")]
pub struct Args {
    /// comma-separated bearer tokens allowed to call the API, each at least 16 characters (secret)
    #[arg(long, env = "CAMPAIGN_API_TOKENS", hide_env_values = true, value_parser = api_tokens)]
    pub campaign_api_tokens: ApiTokens,
    /// webhook-gateway's public /shopee/auth/callback URL, where auth links send the seller back
    #[arg(
        long,
        env = "SHOPEE_AUTH_REDIRECT_URL",
        default_value = "http://127.0.0.1:8080/shopee/auth/callback",
        value_parser = absolute_http_url
    )]
    pub shopee_auth_redirect_url: String,
    /// how often campaigns are reconciled with Shopee's get_discount_list, in seconds
    #[arg(
        long,
        env = "CAMPAIGN_RECONCILE_INTERVAL_SECS",
        default_value = "300",
        value_parser = config::at_least(1u64)
    )]
    pub campaign_reconcile_interval_secs: u64,
    #[command(flatten)]
    pub shopee: ShopeeArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// `CAMPAIGN_API_TOKENS`, split.
#[derive(Debug, Clone)]
pub struct ApiTokens(pub Vec<Secret>);

fn api_tokens(raw: &str) -> Result<ApiTokens, String> {
    let tokens: Vec<Secret> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect();
    if tokens.is_empty() || tokens.iter().any(|t| t.expose().len() < 16) {
        return Err("give at least one token, each at least 16 characters".into());
    }
    Ok(ApiTokens(tokens))
}

fn absolute_http_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("https://") || raw.starts_with("http://") {
        Ok(raw.to_owned())
    } else {
        Err("expected an absolute http(s) URL of webhook-gateway's /shopee/auth/callback".into())
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub shopee: ShopeeConfig,
    pub token_key: EncryptionKey,
    pub redis_url: Secret,
    /// Bearer tokens allowed to call the API.
    pub api_tokens: Vec<Secret>,
    /// Where Shopee sends the seller back after authorization: webhook-gateway's `/shopee/auth/callback`.
    pub auth_redirect_url: String,
    /// How often campaigns are reconciled with Shopee's `get_discount_list`.
    pub reconcile_interval: Duration,
}

impl From<Args> for Config {
    fn from(args: Args) -> Self {
        Self {
            shopee: args.shopee.into(),
            token_key: args.token_key.token_encryption_key,
            redis_url: args.redis.redis_url,
            api_tokens: args.campaign_api_tokens.0,
            auth_redirect_url: args.shopee_auth_redirect_url,
            reconcile_interval: Duration::from_secs(args.campaign_reconcile_interval_secs),
        }
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<Args>().map(Self::from)
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub shopee: ShopeeClient,
    pub mappings: Mappings,
    pub hubs: Hubs,
    pub auth_redirect_url: Arc<str>,
}

pub async fn run(serve: Serve<Config>) -> anyhow::Result<()> {
    let config = serve.config;
    let pool = service_runtime::db::lazy_pool(&serve.base.database_url, 16)?;
    let redis = service_runtime::redis::pool(&config.redis_url)?;
    let shopee = service_runtime::shopee::client(
        &config.shopee,
        pool.clone(),
        Some(redis.clone()),
        &config.token_key,
    )?;
    let state = AppState {
        pool: pool.clone(),
        shopee,
        mappings: Mappings::new(pool.clone(), Some(redis.clone())),
        hubs: Hubs::new(pool.clone()),
        auth_redirect_url: config.auth_redirect_url.clone().into(),
    };
    let health = Health::new(
        NAME,
        vec![Dependency::Postgres(pool.clone()), Dependency::Redis(redis)],
        serve.shutdown.clone(),
    );
    let tokens = auth::Tokens::new(config.api_tokens.iter().map(Secret::expose));
    let reconciler = tokio::spawn(reconcile::run_loop(
        state.clone(),
        config.reconcile_interval,
        serve.shutdown.clone(),
    ));
    let app = app(state, tokens).merge(health.router());
    cli::serve_http(serve.listener, app, serve.shutdown).await?;
    let _ = reconciler.await;
    pool.close().await;
    Ok(())
}

/// One route of the API: the single table the router and the OpenAPI check are built from.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every authenticated route.
pub fn routes() -> Vec<Route> {
    use routes::{catalog, dead_letters, mappings, orders, shops};
    vec![
        route(Method::GET, "/openapi.json", get(openapi::serve)),
        route(Method::POST, "/v1/campaigns", post(campaigns::create)),
        route(Method::GET, "/v1/campaigns", get(campaigns::list)),
        route(Method::GET, "/v1/campaigns/{id}", get(campaigns::detail)),
        route(Method::PATCH, "/v1/campaigns/{id}", patch(campaigns::update)),
        route(Method::DELETE, "/v1/campaigns/{id}", delete(campaigns::remove)),
        route(Method::POST, "/v1/campaigns/{id}/end", post(campaigns::end)),
        route(Method::PUT, "/v1/mappings", put(mappings::upsert)),
        route(Method::GET, "/v1/mappings", get(mappings::list)),
        route(Method::POST, "/v1/mappings/discover", post(mappings::discover)),
        route(
            Method::GET,
            "/v1/mappings/discover/{job_id}",
            get(mappings::discover_status),
        ),
        route(
            Method::POST,
            "/v1/catalog/content-sync",
            post(catalog::content_sync),
        ),
        route(
            Method::GET,
            "/v1/catalog/content-sync/{job_id}",
            get(catalog::content_sync_status),
        ),
        route(Method::GET, "/v1/shops", get(shops::list)),
        route(Method::GET, "/v1/shops/auth-link", get(shops::auth_link)),
        route(Method::GET, "/v1/shops/{shop_id}", get(shops::detail)),
        route(Method::PATCH, "/v1/shops/{shop_id}", patch(shops::update)),
        route(Method::GET, "/v1/orders/{order_sn}", get(orders::detail)),
        route(Method::GET, "/v1/dead-letters", get(dead_letters::list)),
        route(
            Method::POST,
            "/v1/dead-letters/{id}/redrive",
            post(dead_letters::redrive),
        ),
    ]
}

/// The API with its token check, body limit and JSON 404; merge the health router beside it.
pub fn app(state: AppState, tokens: auth::Tokens) -> Router {
    let mut router: Router<AppState> = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(tokens, auth::require_bearer))
        .with_state(state)
}
