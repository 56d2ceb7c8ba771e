//! `GET /v1/dead-letters` (filters, pagination) and `POST /v1/dead-letters/{id}/redrive`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dead_letters::{DeadLetter, Filter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult, PathParam, QueryParams};
use crate::page::{Page, PageQuery, page};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub source: Option<String>,
    /// parked | redrive_requested | redriven
    pub status: Option<String>,
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

pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<Page<DeadLetter>>> {
    if let Some(s) = &q.status
        && !["parked", "redrive_requested", "redriven"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(
            "status must be parked, redrive_requested or redriven".into(),
        ));
    }
    let limit = q.page().limit()?;
    let after = q.page().cursor_number()?;
    let rows = dead_letters::list(
        &state.pool,
        &Filter {
            source: q.source.clone().filter(|s| !s.is_empty()),
            status: q.status.clone(),
            after_id: Some(after),
            limit: limit + 1,
        },
    )
    .await?;
    Ok(Json(page(rows, limit, |d: &DeadLetter| d.id.to_string())))
}

pub async fn redrive(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if dead_letters::request_redrive(&state.pool, id).await? {
        metrics::counter!("dead_letter_redrives_requested_total").increment(1);
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "redrive_requested"})),
        ));
    }
    match dead_letters::get(&state.pool, id).await? {
        None => Err(ApiError::NotFound(format!("dead letter {id} does not exist"))),
        Some(d) => Err(ApiError::Conflict(format!(
            "dead letter {id} is {}; only a parked one can be redriven",
            d.status
        ))),
    }
}
