//! `GET /v1/shops`, `GET /v1/shops/{shop_id}`, `PATCH /v1/shops/{shop_id}`, `GET /v1/shops/auth-link`.
//! Expiry times only: never a token.
//!
//! The PATCH sets what only an operator knows about a shop: `mart_shop_id` (an Instant Mart outlet shop belongs to
//! a mart shop; catalog-sync-worker reads it on every batch and sends the outlet's price and stock through the
//! outlet APIs) and `multi_warehouse` (its stock updates must carry a `location_id`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use domain::ShopId;
use serde::{Deserialize, Deserializer, Serialize};
use shopee_client::token::ShopAuthorization;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, JsonBody, PathParam, QueryParams};
use crate::openapi::{Authenticated, Looking, Reading, Setting};
use crate::page::{Page, PageQuery, page};

/// Whether the app may call Shopee for the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationStatus {
    Authorized,
    Expired,
    Deauthorized,
    NeverAuthorized,
}

/// A shop: authorization, token expiry (never a token), Instant Mart outlet and multi-warehouse settings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Shop)]
pub struct ShopView {
    #[schema(value_type = u64)]
    pub shop_id: ShopId,
    /// Instant Mart: the mart shop this outlet shop belongs to; `null` when the shop is not an outlet.
    #[schema(value_type = Option<u64>)]
    pub mart_shop_id: Option<ShopId>,
    /// Stock updates of this shop carry a warehouse `location_id`.
    pub multi_warehouse: bool,
    pub authorization_status: AuthorizationStatus,
    pub authorized_at: Option<DateTime<Utc>>,
    pub authorization_expires_at: Option<DateTime<Utc>>,
    pub deauthorized_at: Option<DateTime<Utc>>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub tokens_refreshed_at: Option<DateTime<Utc>>,
}

/// The operator-set columns of a `shops` row.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
struct Settings {
    shop_id: i64,
    mart_shop_id: Option<i64>,
    multi_warehouse: bool,
}

fn view(a: ShopAuthorization, settings: Settings, now: DateTime<Utc>) -> ApiResult<ShopView> {
    let status = if a.deauthorized_at.is_some() {
        AuthorizationStatus::Deauthorized
    } else if a.refresh_expires_at.is_none() {
        AuthorizationStatus::NeverAuthorized
    } else if a.authorization_expires_at.is_some_and(|t| t <= now)
        || a.refresh_expires_at.is_some_and(|t| t <= now)
    {
        AuthorizationStatus::Expired
    } else {
        AuthorizationStatus::Authorized
    };
    let mart_shop_id = settings
        .mart_shop_id
        .map(ShopId::from_i64)
        .transpose()
        .map_err(|e| ApiError::Internal(format!("shops.mart_shop_id of shop {}: {e}", a.shop_id)))?;
    Ok(ShopView {
        shop_id: a.shop_id,
        mart_shop_id,
        multi_warehouse: settings.multi_warehouse,
        authorization_status: status,
        authorized_at: a.authorized_at,
        authorization_expires_at: a.authorization_expires_at,
        deauthorized_at: a.deauthorized_at,
        access_token_expires_at: a.access_expires_at,
        refresh_token_expires_at: a.refresh_expires_at,
        tokens_refreshed_at: a.refreshed_at,
    })
}

/// `mart_shop_id` and `multi_warehouse` of the given shops (the token store reads the authorization side).
async fn settings(pool: &PgPool, shops: &[i64]) -> ApiResult<HashMap<i64, Settings>> {
    let rows: Vec<Settings> =
        sqlx::query_as("SELECT shop_id, mart_shop_id, multi_warehouse FROM shops WHERE shop_id = ANY($1)")
            .bind(shops)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| (r.shop_id, r)).collect())
}

/// One shop as `GET /v1/shops/{shop_id}` shows it; `None` when the shop is not known.
async fn shop_view(state: &AppState, shop: ShopId) -> ApiResult<Option<ShopView>> {
    let Some(a) = store(state)?.authorization(shop).await? else {
        return Ok(None);
    };
    let s = settings(&state.pool, &[shop.as_i64()])
        .await?
        .remove(&shop.as_i64())
        .unwrap_or_default();
    view(a, s, Utc::now()).map(Some)
}

fn store(state: &AppState) -> ApiResult<&shopee_client::TokenStore> {
    state
        .shopee
        .token_store()
        .ok_or_else(|| ApiError::Internal("the Shopee client has no token store".into()))
}

/// Known shops with authorization and token expiry (never tokens).
#[utoipa::path(
    get, path = "/v1/shops", operation_id = "listShops", tag = "shops",
    params(PageQuery),
    responses((status = 200, description = "a page of shops", body = Page<ShopView>), Reading),
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<ShopView>>> {
    let limit = q.limit()?;
    let after = q.cursor_number()?;
    let now = Utc::now();
    let all = store(&state)?.authorizations().await?;
    let shown: Vec<ShopAuthorization> = all
        .into_iter()
        .filter(|a| a.shop_id.as_i64() > after)
        .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
        .collect();
    let ids: Vec<i64> = shown.iter().map(|a| a.shop_id.as_i64()).collect();
    let mut settings = settings(&state.pool, &ids).await?;
    let rows = shown
        .into_iter()
        .map(|a| {
            let s = settings.remove(&a.shop_id.as_i64()).unwrap_or_default();
            view(a, s, now)
        })
        .collect::<ApiResult<Vec<ShopView>>>()?;
    Ok(Json(page(rows, limit, |s: &ShopView| s.shop_id.to_string())))
}

/// One shop: authorization status, token expiry, Instant Mart outlet and multi-warehouse settings.
#[utoipa::path(
    get, path = "/v1/shops/{shop_id}", operation_id = "getShop", tag = "shops",
    params(("shop_id" = u64, Path, description = "the shop")),
    responses((status = 200, description = "the shop", body = ShopView), Looking),
)]
pub async fn detail(
    State(state): State<AppState>,
    PathParam(shop): PathParam<u64>,
) -> ApiResult<Json<ShopView>> {
    let shop = ShopId::new(shop).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    shop_view(&state, shop)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(shop))
}

fn not_found(shop: ShopId) -> ApiError {
    ApiError::NotFound(format!("shop {shop} is not known"))
}

/// `PATCH /v1/shops/{shop_id}` body: each field absent = unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateShop {
    /// Instant Mart: the mart shop this shop is an outlet of; `null` = not an outlet any more.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub mart_shop_id: Option<Option<u64>>,
    /// Stock updates must carry location_id: `true` or `false` (`null` is refused: there is nothing to reset it to).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub multi_warehouse: Option<bool>,
}

/// A field that is in the body, even as `null`, is `Some` (absent fields take the `default`, `None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn shown(mart: Option<i64>) -> String {
    mart.map_or_else(|| "none".to_owned(), |m| m.to_string())
}

/// `PATCH /v1/shops/{shop_id}`: set `mart_shop_id` and / or `multi_warehouse`; answers the shop as the GET does.
///
/// Rules (422 otherwise): the mart is a known shop, not the shop itself, and not an outlet; a shop that is the mart
/// of other shops cannot become an outlet. The shop and the mart are locked (in id order) while the rules are
/// checked, so two concurrent changes cannot build a chain between them.
#[utoipa::path(
    patch, path = "/v1/shops/{shop_id}", operation_id = "updateShop", tag = "shops",
    params(("shop_id" = u64, Path, description = "the shop")),
    request_body = UpdateShop,
    responses((status = 200, description = "the shop after the change, as GET answers it", body = ShopView), Setting),
)]
#[tracing::instrument(name = "shop.update", skip_all, fields(shop.id = shop))]
pub async fn update(
    State(state): State<AppState>,
    PathParam(shop): PathParam<u64>,
    JsonBody(req): JsonBody<UpdateShop>,
) -> ApiResult<Json<ShopView>> {
    let shop = ShopId::new(shop).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if req.mart_shop_id.is_none() && req.multi_warehouse.is_none() {
        return Err(ApiError::unprocessable(
            "nothing to change: send mart_shop_id (the mart shop's id, or null when the shop is no longer an \
             outlet) and / or multi_warehouse (true or false)",
        ));
    }
    let mart = match req.mart_shop_id {
        Some(Some(m)) => {
            let m =
                ShopId::new(m).map_err(|e| ApiError::unprocessable(format!("mart_shop_id {}", e.problem)))?;
            if m == shop {
                return Err(ApiError::unprocessable(format!(
                    "mart_shop_id {m} is this shop: an outlet belongs to another (mart) shop; send null if shop \
                     {shop} is not an outlet"
                )));
            }
            Some(Some(m))
        }
        other => other.map(|_| None),
    };

    let mut tx = state.pool.begin().await?;
    let mut ids = vec![shop.as_i64()];
    if let Some(Some(m)) = mart {
        ids.push(m.as_i64());
    }
    let locked: Vec<Settings> = sqlx::query_as(
        "SELECT shop_id, mart_shop_id, multi_warehouse FROM shops WHERE shop_id = ANY($1) ORDER BY shop_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let find = |id: ShopId| locked.iter().find(|s| s.shop_id == id.as_i64()).copied();
    let old = find(shop).ok_or_else(|| not_found(shop))?;
    if let Some(Some(m)) = mart {
        let target = find(m).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "mart_shop_id {m} is not a known shop: authorize the mart shop first (GET /v1/shops/auth-link)"
            ))
        })?;
        if let Some(its_mart) = target.mart_shop_id {
            return Err(ApiError::unprocessable(format!(
                "shop {m} cannot be a mart: it is itself an outlet of mart shop {its_mart}; point mart_shop_id at \
                 the mart shop"
            )));
        }
        let outlets: Vec<i64> =
            sqlx::query_scalar("SELECT shop_id FROM shops WHERE mart_shop_id = $1 ORDER BY shop_id LIMIT 10")
                .bind(shop.as_i64())
                .fetch_all(&mut *tx)
                .await?;
        if !outlets.is_empty() {
            let list = outlets.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            return Err(ApiError::unprocessable(format!(
                "shop {shop} is the mart shop of outlet shop(s) {list}: a mart shop cannot itself be an outlet; \
                 clear or change their mart_shop_id first"
            )));
        }
    }
    let new = Settings {
        shop_id: old.shop_id,
        mart_shop_id: match mart {
            Some(m) => m.map(ShopId::as_i64),
            None => old.mart_shop_id,
        },
        multi_warehouse: req.multi_warehouse.unwrap_or(old.multi_warehouse),
    };
    let mut changes = Vec::new();
    if new.mart_shop_id != old.mart_shop_id {
        changes.push(format!(
            "mart_shop_id {} -> {}",
            shown(old.mart_shop_id),
            shown(new.mart_shop_id)
        ));
    }
    if new.multi_warehouse != old.multi_warehouse {
        changes.push(format!(
            "multi_warehouse {} -> {}",
            old.multi_warehouse, new.multi_warehouse
        ));
    }
    if changes.is_empty() {
        tx.rollback().await?;
        tracing::debug!(shop.id = %shop, "shop settings unchanged");
    } else {
        sqlx::query(
            "UPDATE shops SET mart_shop_id = $2, multi_warehouse = $3, updated_at = now() WHERE shop_id = $1",
        )
        .bind(shop.as_i64())
        .bind(new.mart_shop_id)
        .bind(new.multi_warehouse)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(shop.id = %shop, changes = %changes.join(", "), "shop settings changed");
    }
    shop_view(&state, shop)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(shop))
}

/// The link a seller opens to authorize the app.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthLink {
    pub url: String,
    /// The callback Shopee returns to (webhook-gateway's `/shopee/auth/callback`).
    pub redirect: String,
    /// Shopee's 5-minute window.
    pub expires_at: DateTime<Utc>,
}

/// The URL a seller opens to authorize the app (valid for Shopee's 5-minute window).
#[utoipa::path(
    get, path = "/v1/shops/auth-link", operation_id = "shopAuthLink", tag = "shops",
    responses((status = 200, description = "the link (valid 5 minutes) and the callback it returns to", body = AuthLink), Authenticated),
)]
pub async fn auth_link(State(state): State<AppState>) -> ApiResult<Json<AuthLink>> {
    let now = Utc::now();
    Ok(Json(AuthLink {
        url: state.shopee.auth_link(&state.auth_redirect_url, now.timestamp()),
        redirect: state.auth_redirect_url.to_string(),
        expires_at: now + Duration::minutes(5),
    }))
}
