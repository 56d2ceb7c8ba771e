//! `GET /v1/shops`, `GET /v1/shops/{shop_id}`, `GET /v1/shops/auth-link`. Expiry times only: never a token.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use domain::ShopId;
use serde::Serialize;
use serde_json::{Value, json};
use shopee_client::token::ShopAuthorization;

use crate::AppState;
use crate::error::{ApiError, ApiResult, PathParam, QueryParams};
use crate::page::{Page, PageQuery, page};

#[derive(Debug, Serialize)]
pub struct ShopView {
    pub shop_id: ShopId,
    /// authorized | expired | deauthorized | never_authorized
    pub authorization_status: &'static str,
    pub authorized_at: Option<DateTime<Utc>>,
    pub authorization_expires_at: Option<DateTime<Utc>>,
    pub deauthorized_at: Option<DateTime<Utc>>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub tokens_refreshed_at: Option<DateTime<Utc>>,
}

fn view(a: ShopAuthorization, now: DateTime<Utc>) -> ShopView {
    let status = if a.deauthorized_at.is_some() {
        "deauthorized"
    } else if a.refresh_expires_at.is_none() {
        "never_authorized"
    } else if a.authorization_expires_at.is_some_and(|t| t <= now)
        || a.refresh_expires_at.is_some_and(|t| t <= now)
    {
        "expired"
    } else {
        "authorized"
    };
    ShopView {
        shop_id: a.shop_id,
        authorization_status: status,
        authorized_at: a.authorized_at,
        authorization_expires_at: a.authorization_expires_at,
        deauthorized_at: a.deauthorized_at,
        access_token_expires_at: a.access_expires_at,
        refresh_token_expires_at: a.refresh_expires_at,
        tokens_refreshed_at: a.refreshed_at,
    }
}

fn store(state: &AppState) -> ApiResult<&shopee_client::TokenStore> {
    state
        .shopee
        .token_store()
        .ok_or_else(|| ApiError::Internal("the Shopee client has no token store".into()))
}

/// `GET /v1/shops?limit=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<ShopView>>> {
    let limit = q.limit()?;
    let after = q.cursor_number()?;
    let now = Utc::now();
    let all = store(&state)?.authorizations().await?;
    let rows: Vec<ShopView> = all
        .into_iter()
        .filter(|a| a.shop_id.as_i64() > after)
        .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
        .map(|a| view(a, now))
        .collect();
    Ok(Json(page(rows, limit, |s: &ShopView| s.shop_id.to_string())))
}

/// `GET /v1/shops/{shop_id}`.
pub async fn detail(
    State(state): State<AppState>,
    PathParam(shop): PathParam<u64>,
) -> ApiResult<Json<ShopView>> {
    let shop = ShopId::new(shop).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    store(&state)?
        .authorization(shop)
        .await?
        .map(|a| Json(view(a, Utc::now())))
        .ok_or_else(|| ApiError::NotFound(format!("shop {shop} is not known")))
}

/// `GET /v1/shops/auth-link`: the URL a seller opens to authorize the app (valid for Shopee's 5-minute window).
pub async fn auth_link(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let now = Utc::now();
    let url = state.shopee.auth_link(&state.auth_redirect_url, now.timestamp());
    Ok(Json(json!({
        "url": url,
        "redirect": &*state.auth_redirect_url,
        "expires_at": now + Duration::minutes(5),
    })))
}
