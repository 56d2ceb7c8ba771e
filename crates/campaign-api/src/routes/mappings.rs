//! `PUT /v1/mappings`, `GET /v1/mappings`, `POST /v1/mappings/discover`, `GET /v1/mappings/discover/{job_id}`.
//! Writes go through `product_mapping::Mappings` (which invalidates the Redis cache).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult, JsonBody, PathParam, QueryParams};
use crate::page::{Page, PageQuery, page};

/// The most mappings one PUT takes.
pub const MAX_UPSERT: usize = 5000;

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Serialize)]
pub struct Conflict {
    pub sku: Sku,
    pub shop_id: ShopId,
    pub item_id: ItemId,
    pub model_id: ModelId,
    /// The SKU this Shopee model already belongs to.
    pub mapped_to_sku: Sku,
}

#[derive(Debug, Serialize)]
pub struct UpsertResponse {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub conflicts: Vec<Conflict>,
}

/// `PUT /v1/mappings`: bulk upsert. A model that already belongs to another SKU is reported, never moved.
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

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub sku: Option<String>,
    pub shop_id: Option<u64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl ListQuery {
    fn page(&self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// `GET /v1/mappings?sku=&shop_id=&limit=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
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
    let limit = q.page().limit()?;
    let offset = q.page().cursor_number()?;
    let rows = state.mappings.list(sku.as_ref(), shop, limit + 1, offset).await?;
    let next = offset + limit;
    Ok(Json(page(rows, limit, |_| next.to_string())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    pub shop_id: u64,
}

/// `POST /v1/mappings/discover {shop_id}`: queues a discovery job (run by catalog-sync-worker).
pub async fn discover(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DiscoverRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": id, "shop_id": shop, "status": "queued", "created_at": created_at})),
    ))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct DiscoveryJob {
    pub job_id: i64,
    pub shop_id: i64,
    pub status: String,
    pub items_scanned: i32,
    pub matched: i32,
    pub unmatched: i32,
    pub conflicting: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /v1/mappings/discover/{job_id}`.
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
