//! `POST /v1/catalog/content-sync {skus?}` and `GET /v1/catalog/content-sync/{job_id}`: jobs run by
//! catalog-sync-worker.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::Sku;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::JobStatus;
use crate::AppState;
use crate::error::{ApiError, ApiResult, JsonBody, PathParam};
use crate::openapi::{Looking, Queueing};

pub const MAX_SKUS: usize = 10_000;

/// `POST /v1/catalog/content-sync` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentSyncRequest {
    /// Absent = every mapped SKU.
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub skus: Option<Vec<String>>,
}

/// A content-sync job just queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedContentSync {
    pub job_id: i64,
    pub skus: Option<Vec<String>>,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
}

/// Queues a content sync (every mapped SKU when `skus` is absent; run by catalog-sync-worker).
#[utoipa::path(
    post, path = "/v1/catalog/content-sync", operation_id = "queueContentSync", tag = "catalog",
    request_body = ContentSyncRequest,
    responses((status = 202, description = "queued", body = QueuedContentSync), Queueing),
)]
pub async fn content_sync(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ContentSyncRequest>,
) -> ApiResult<(StatusCode, Json<QueuedContentSync>)> {
    let skus = match &req.skus {
        None => None,
        Some(list) => {
            if list.is_empty() || list.len() > MAX_SKUS {
                return Err(ApiError::unprocessable(format!(
                    "skus, when given, must list 1 to {MAX_SKUS} SKUs (leave it out for every mapped SKU)"
                )));
            }
            let bad: Vec<&String> = list.iter().filter(|s| Sku::parse(s).is_err()).take(10).collect();
            if !bad.is_empty() {
                return Err(ApiError::unprocessable(format!("not valid SKUs: {bad:?}")));
            }
            Some(list.clone())
        }
    };
    let (id, created_at): (i64, DateTime<Utc>) =
        sqlx::query_as("INSERT INTO content_sync_jobs (skus) VALUES ($1) RETURNING id, created_at")
            .bind(skus.as_deref())
            .fetch_one(&state.pool)
            .await?;
    let queued = QueuedContentSync {
        job_id: id,
        skus,
        status: JobStatus::Queued,
        created_at,
    };
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// A content-sync job's status and counts.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ContentSyncJob {
    pub job_id: i64,
    pub skus: Option<Vec<String>>,
    pub status: JobStatus,
    pub items_seen: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub failed: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A content-sync job's status and counts.
#[utoipa::path(
    get, path = "/v1/catalog/content-sync/{job_id}", operation_id = "getContentSyncJob", tag = "catalog",
    params(("job_id" = i64, Path, description = "the job")),
    responses((status = 200, description = "the job", body = ContentSyncJob), Looking),
)]
pub async fn content_sync_status(
    State(state): State<AppState>,
    PathParam(job_id): PathParam<i64>,
) -> ApiResult<Json<ContentSyncJob>> {
    sqlx::query_as(
        "SELECT id AS job_id, skus, status, items_seen, updated, unchanged, failed, error, created_at, started_at,
                finished_at
         FROM content_sync_jobs WHERE id = $1",
    )
    .bind(job_id)
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::NotFound(format!("content-sync job {job_id} does not exist")))
}
