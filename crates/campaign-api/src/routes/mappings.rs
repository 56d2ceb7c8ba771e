//! `PUT /v1/mappings`, `GET /v1/mappings`, `POST /v1/mappings/discover`, `GET /v1/mappings/discover/{job_id}`.
//! Writes go through `product_mapping::Mappings` (which invalidates the Redis cache).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::JobStatus;
use crate::AppState;
use crate::error::{ApiError, ApiResult, JsonBody, PathParam, QueryParams};
use crate::openapi::{Looking, MappingShape, Queueing, Reading, Writing};
use crate::page::{Page, PageQuery, page};

/// The most mappings one PUT takes.
pub const MAX_UPSERT: usize = 5000;

/// One mapping to write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    pub sku: String,
    pub shop_id: u64,
    pub item_id: u64,
    /// 0 when the item has no models.
    #[serde(default)]
    pub model_id: u64,
    #[serde(default)]
    pub outlet_item_id: Option<u64>,
}

/// A mapping not written: its Shopee model already belongs to another SKU.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conflict {
    #[schema(value_type = String)]
    pub sku: Sku,
    #[schema(value_type = u64)]
    pub shop_id: ShopId,
    #[schema(value_type = u64)]
    pub item_id: ItemId,
    #[schema(value_type = u64)]
    pub model_id: ModelId,
    /// The SKU this Shopee model already belongs to.
    #[schema(value_type = String)]
    pub mapped_to_sku: Sku,
}

/// What a bulk upsert changed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UpsertReport)]
pub struct UpsertResponse {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub conflicts: Vec<Conflict>,
}

/// Bulk upsert of product mappings. A model that already belongs to another SKU is reported, never moved.
#[utoipa::path(
    put, path = "/v1/mappings", operation_id = "upsertMappings", tag = "mappings",
    request_body(content = Vec<MappingInput>, description = "1 to 5000 mappings"),
    responses(
        (status = 200, description = "what changed; conflicts are models already mapped to another SKU", body = UpsertResponse),
        Writing,
    ),
)]
pub async fn upsert(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<Vec<MappingInput>>,
) -> ApiResult<Json<UpsertResponse>> {
    if input.is_empty() || input.len() > MAX_UPSERT {
        return Err(ApiError::unprocessable(format!(
            "send 1 to {MAX_UPSERT} mappings, got {}",
            input.len()
        )));
    }
    let mut problems = Vec::new();
    let mut mappings = Vec::with_capacity(input.len());
    for (i, m) in input.iter().enumerate() {
        let parsed = (|| {
            Ok::<_, domain::ParseError>(ProductMapping {
                sku: Sku::parse(&m.sku)?,
                shop_id: ShopId::new(m.shop_id)?,
                item_id: ItemId::new(m.item_id)?,
                model_id: if m.model_id == 0 {
                    ModelId::NONE
                } else {
                    ModelId::new(m.model_id)?
                },
                outlet_item_id: m.outlet_item_id.map(ItemId::new).transpose()?,
            })
        })();
        match parsed {
            Ok(p) => mappings.push(p),
            Err(e) => problems.push(format!(
                "mapping #{i} (sku `{}`): {e}",
                m.sku.chars().take(64).collect::<String>()
            )),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for m in &mappings {
        if !seen.insert((m.sku.clone(), m.shop_id)) {
            problems.push(format!(
                "SKU {} is listed more than once for shop {}",
                m.sku, m.shop_id
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            message: problems.join("; "),
            details: Some(json!(problems)),
        });
    }
    let report = state.mappings.upsert(&mappings, MappingSource::Manual).await?;
    metrics::counter!("mappings_upserted_total").increment((report.inserted + report.updated) as u64);
    Ok(Json(UpsertResponse {
        inserted: report.inserted,
        updated: report.updated,
        unchanged: report.unchanged,
        conflicts: report
            .conflicts
            .into_iter()
            .map(|(m, owner)| Conflict {
                sku: m.sku,
                shop_id: m.shop_id,
                item_id: m.item_id,
                model_id: m.model_id,
                mapped_to_sku: owner,
            })
            .collect(),
    }))
}

/// `GET /v1/mappings` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this SKU.
    pub sku: Option<String>,
    /// Only this shop.
    pub shop_id: Option<u64>,
}

/// Reads mappings.
#[utoipa::path(
    get, path = "/v1/mappings", operation_id = "listMappings", tag = "mappings",
    params(PageQuery, ListQuery),
    responses((status = 200, description = "a page of mappings", body = Page<MappingShape>), Reading),
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
    QueryParams(p): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<ProductMapping>>> {
    let sku = q
        .sku
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Sku::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let shop = q
        .shop_id
        .map(ShopId::new)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = p.limit()?;
    let offset = p.cursor_number()?;
    let rows = state.mappings.list(sku.as_ref(), shop, limit + 1, offset).await?;
    let next = offset + limit;
    Ok(Json(page(rows, limit, |_| next.to_string())))
}

/// `POST /v1/mappings/discover` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// A known (authorized) shop.
    pub shop_id: u64,
}

/// A discovery job just queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedDiscovery {
    pub job_id: i64,
    #[schema(value_type = u64)]
    pub shop_id: ShopId,
    /// queued
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
}

/// Queues a mapping discovery for a shop (item_sku / model_sku matched to SKUs; run by catalog-sync-worker).
#[utoipa::path(
    post, path = "/v1/mappings/discover", operation_id = "discoverMappings", tag = "mappings",
    request_body = DiscoverRequest,
    responses((status = 202, description = "queued", body = QueuedDiscovery), Queueing),
)]
pub async fn discover(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DiscoverRequest>,
) -> ApiResult<(StatusCode, Json<QueuedDiscovery>)> {
    let shop = ShopId::new(req.shop_id).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM shops WHERE shop_id = $1)")
        .bind(shop.as_i64())
        .fetch_one(&state.pool)
        .await?;
    if !known {
        return Err(ApiError::unprocessable(format!(
            "shop {shop} is not known: authorize it first (GET /v1/shops/auth-link)"
        )));
    }
    let (id, created_at): (i64, DateTime<Utc>) =
        sqlx::query_as("INSERT INTO mapping_discovery_jobs (shop_id) VALUES ($1) RETURNING id, created_at")
            .bind(shop.as_i64())
            .fetch_one(&state.pool)
            .await?;
    let queued = QueuedDiscovery {
        job_id: id,
        shop_id: shop,
        status: JobStatus::Queued,
        created_at,
    };
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// A discovery job's status and counts.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DiscoveryJob {
    pub job_id: i64,
    pub shop_id: i64,
    pub status: JobStatus,
    pub items_scanned: i32,
    pub matched: i32,
    pub unmatched: i32,
    pub conflicting: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A discovery job's status and counts.
#[utoipa::path(
    get, path = "/v1/mappings/discover/{job_id}", operation_id = "getDiscoveryJob", tag = "mappings",
    params(("job_id" = i64, Path, description = "the job")),
    responses((status = 200, description = "the job", body = DiscoveryJob), Looking),
)]
pub async fn discover_status(
    State(state): State<AppState>,
    PathParam(job_id): PathParam<i64>,
) -> ApiResult<Json<DiscoveryJob>> {
    sqlx::query_as(
        "SELECT id AS job_id, shop_id, status, items_scanned, matched, unmatched, conflicting, error, created_at,
                started_at, finished_at
         FROM mapping_discovery_jobs WHERE id = $1",
    )
    .bind(job_id)
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::NotFound(format!("discovery job {job_id} does not exist")))
}
