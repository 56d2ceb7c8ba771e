//! `GET /v1/dead-letters` (filters, pagination) and `POST /v1/dead-letters/{id}/redrive`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dead_letters::{DeadLetter, Filter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, PathParam, QueryParams};
use crate::openapi::{DeadLetterShape, Reading, Redriving};
use crate::page::{Page, PageQuery, page};

const STATUSES: [&str; 3] = ["parked", "redrive_requested", "redriven"];

/// `GET /v1/dead-letters` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The owning worker, e.g. order-publisher.
    pub source: Option<String>,
    /// parked | redrive_requested | redriven
    pub status: Option<String>,
}

/// Parked work and why, oldest first.
#[utoipa::path(
    get, path = "/v1/dead-letters", operation_id = "listDeadLetters", tag = "dead-letters",
    params(PageQuery, ListQuery),
    responses((status = 200, description = "a page of dead letters, oldest first", body = Page<DeadLetterShape>), Reading),
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
    QueryParams(p): QueryParams<PageQuery>,
) -> ApiResult<Json<Page<DeadLetter>>> {
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(
            "status must be parked, redrive_requested or redriven".into(),
        ));
    }
    let limit = p.limit()?;
    let after = p.cursor_number()?;
    let rows = dead_letters::list(
        &state.pool,
        &Filter {
            source: q.source.filter(|s| !s.is_empty()),
            status: q.status,
            after_id: Some(after),
            limit: limit + 1,
        },
    )
    .await?;
    Ok(Json(page(rows, limit, |d: &DeadLetter| d.id.to_string())))
}

/// A redrive asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redrive {
    pub id: i64,
    /// redrive_requested
    pub status: &'static str,
}

/// Asks the owning worker to try a parked item again.
#[utoipa::path(
    post, path = "/v1/dead-letters/{id}/redrive", operation_id = "redriveDeadLetter", tag = "dead-letters",
    params(("id" = i64, Path, description = "the dead letter")),
    responses((status = 202, description = "redrive requested", body = Redrive), Redriving),
)]
pub async fn redrive(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<(StatusCode, Json<Redrive>)> {
    if dead_letters::request_redrive(&state.pool, id).await? {
        metrics::counter!("dead_letter_redrives_requested_total").increment(1);
        return Ok((
            StatusCode::ACCEPTED,
            Json(Redrive {
                id,
                status: "redrive_requested",
            }),
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
