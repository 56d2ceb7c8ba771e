//! The campaign routes: extract, call the layers below, answer. Each handler's `#[utoipa::path]` is its entry in
//! `/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::ShopId;
use serde_json::Value;
use shopee_client::api::discount::GetDiscountRequest;

use super::change;
use super::state::ShopeeStatus;
use super::store;
use super::validate::{self, CreateCampaign, Finish, ListQuery, UpdateCampaign};
use super::view::{self, CampaignView, LiveDiscount};
use super::{SCOPE, execute, resolve};
use crate::AppState;
use crate::error::{ApiError, ApiResult, JsonBody, PathParam, QueryParams};
use crate::idempotency::{self, Begin};
use crate::openapi::{Changing, Creating, Finishing, Looking, Reading};
use crate::page::{Page, PageQuery, page};

/// The `Idempotency-Key` header, when sent.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
        .to_owned();
    idempotency::validate_key(&k)?;
    Ok(Some(k))
}

/// Creates a campaign: one Shopee discount per hub's shop.
///
/// A retried create with the same `Idempotency-Key` and body answers the first result (`Idempotent-Replayed:
/// true`), or continues an interrupted creation from where it stopped.
#[utoipa::path(
    post, path = "/v1/campaigns", operation_id = "createCampaign", tag = "campaigns",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255,
            description = "a retried create with the same key and body returns the first result")),
    request_body = CreateCampaign,
    responses(
        (status = 201, description = "created in at least one shop; per-shop and per-item outcome", body = CampaignView),
        Creating,
    ),
)]
#[tracing::instrument(name = "campaign.create", skip_all, fields(campaign.id))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let mut resume = None;
    if let Some(key) = &key {
        match idempotency::begin(&state.pool, SCOPE, key, &idempotency::request_hash(&raw)).await? {
            Begin::Replay { status, body } => {
                metrics::counter!("campaign_create_total", "outcome" => "replayed").increment(1);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok((status, [("idempotent-replayed", "true")], Json(body)).into_response());
            }
            Begin::Resume { campaign_id } => resume = Some(campaign_id),
            Begin::New => {}
        }
    }
    let (status, body) = match run_creation(&state, raw, key.as_deref(), resume).await {
        Ok(answer) => answer,
        // Transient failures (database, Shopee unreachable before anything was recorded) are not final: the key is
        // released so a retry runs again; anything recorded is resumed then.
        Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => {
            if let Some(key) = &key {
                let _ = idempotency::release(&state.pool, SCOPE, key).await;
            }
            return Err(e);
        }
        Err(e) => (e.status(), e.body()),
    };
    if let Some(key) = &key {
        idempotency::finish(&state.pool, SCOPE, key, status.as_u16(), &body).await?;
    }
    metrics::counter!("campaign_create_total", "outcome" => status.as_str().to_owned()).increment(1);
    Ok((status, Json(body)).into_response())
}

/// Validates, resolves and records a new campaign (or takes the interrupted one), then runs it on Shopee.
async fn run_creation(
    state: &AppState,
    raw: Value,
    key: Option<&str>,
    resume: Option<i64>,
) -> ApiResult<(StatusCode, Value)> {
    let campaign_id = match resume {
        Some(id) => {
            tracing::info!(campaign.id = id, "resuming an interrupted campaign creation");
            id
        }
        None => {
            let campaign = validate::new_campaign(raw, Utc::now())?;
            let plans = resolve::new_campaign(state, &campaign).await?;
            store::record(&state.pool, &campaign, &plans, key.map(|k| (SCOPE, k))).await?
        }
    };
    tracing::Span::current().record("campaign.id", campaign_id);
    execute::execute(state, campaign_id, key.map(|k| (SCOPE, k))).await?;
    let view = store::load_view(&state.pool, campaign_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("campaign {campaign_id} vanished")))?;
    view::creation_answer(&view)
}

/// Lists campaigns, newest first (shops without items).
#[utoipa::path(
    get, path = "/v1/campaigns", operation_id = "listCampaigns", tag = "campaigns",
    params(PageQuery, ListQuery),
    responses((status = 200, description = "a page of campaigns (shops without items)", body = Page<CampaignView>), Reading),
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
    QueryParams(p): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<CampaignView>>> {
    let status = q.status()?;
    let limit = p.limit()?;
    let before = p.cursor_number()?;
    let views = store::list_views(&state.pool, before, status, limit + 1).await?;
    Ok(Json(page(views, limit, |v: &CampaignView| v.id.to_string())))
}

async fn found(state: &AppState, id: i64) -> ApiResult<CampaignView> {
    store::load_view(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))
}

/// A campaign with its items and Shopee's live status per shop (`get_discount`).
#[utoipa::path(
    get, path = "/v1/campaigns/{id}", operation_id = "getCampaign", tag = "campaigns",
    params(("id" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "the campaign; each shop has `shopee` (get_discount)", body = CampaignView), Looking),
)]
pub async fn detail(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<CampaignView>> {
    let mut view = found(&state, id).await?;
    let lookups = view
        .shops
        .iter()
        .map(|s| live_discount(&state, s.shop_id, s.discount_id));
    let live = futures::future::join_all(lookups).await;
    for (shop, live) in view.shops.iter_mut().zip(live) {
        if let LiveDiscount::Seen { status, .. } = &live {
            shop.shopee_status = Some(*status);
        }
        shop.shopee = Some(live);
    }
    Ok(Json(view))
}

/// Shopee's answer about a shop's discount now; its status is recorded as last seen.
async fn live_discount(state: &AppState, shop: i64, discount_id: Option<i64>) -> LiveDiscount {
    let (Some(discount_id), Ok(shop)) = (discount_id, ShopId::from_i64(shop)) else {
        return LiveDiscount::NoDiscount;
    };
    let req = GetDiscountRequest {
        discount_id: u64::try_from(discount_id).unwrap_or_default(),
        page_no: 1,
        page_size: 100,
    };
    match state.shopee.get_discount(shop, &req).await {
        Ok(d) => {
            let _ =
                store::set_shopee_status(&state.pool, shop, discount_id, ShopeeStatus::of(d.status)).await;
            LiveDiscount::seen(&d)
        }
        Err(e) => LiveDiscount::Failed { error: e.to_string() },
    }
}

/// Renames, ends earlier, adds / removes / reprices items.
#[utoipa::path(
    patch, path = "/v1/campaigns/{id}", operation_id = "updateCampaign", tag = "campaigns",
    params(("id" = i64, Path, description = "the campaign")),
    request_body = UpdateCampaign,
    responses((status = 200, description = "the campaign after the change", body = CampaignView), Changing),
)]
#[tracing::instrument(name = "campaign.update", skip_all, fields(campaign.id = id))]
pub async fn update(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
    JsonBody(req): JsonBody<UpdateCampaign>,
) -> ApiResult<Json<CampaignView>> {
    let view = found(&state, id).await?;
    validate::changeable(&view)?;
    let change = validate::change(&req, &view, Utc::now())?;
    let additions = resolve::additions(&state, &view, &change).await?;
    change::apply(&state, &view, &change, &additions).await?;
    found(&state, id).await.map(Json)
}

/// Ends an ongoing campaign on every shop.
#[utoipa::path(
    post, path = "/v1/campaigns/{id}/end", operation_id = "endCampaign", tag = "campaigns",
    params(("id" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "the ended campaign", body = CampaignView), Finishing),
)]
#[tracing::instrument(name = "campaign.end", skip_all, fields(campaign.id = id))]
pub async fn end(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<CampaignView>> {
    finish(&state, id, Finish::End).await
}

/// Deletes an upcoming (or failed) campaign on every shop.
#[utoipa::path(
    delete, path = "/v1/campaigns/{id}", operation_id = "deleteCampaign", tag = "campaigns",
    params(("id" = i64, Path, description = "the campaign")),
    responses((status = 200, description = "the deleted campaign", body = CampaignView), Finishing),
)]
#[tracing::instrument(name = "campaign.delete", skip_all, fields(campaign.id = id))]
pub async fn remove(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<CampaignView>> {
    finish(&state, id, Finish::Delete).await
}

/// Ends or deletes the campaign on every shop, when its status allows it.
async fn finish(state: &AppState, id: i64, how: Finish) -> ApiResult<Json<CampaignView>> {
    let view = found(state, id).await?;
    validate::finishable(&view, how)?;
    change::finish(state, &view, how).await?;
    found(state, id).await.map(Json)
}
