//! `GET /v1/orders/{order_sn}`: an order's state in this service. No buyer data.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::OrderSn;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, PathParam};
use crate::openapi::Looking;

/// An order's state in this service.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = Order)]
pub struct OrderView {
    pub shop_id: i64,
    pub order_sn: String,
    /// received | needs_mapping | published | parked
    pub intake_state: String,
    pub shopee_status: Option<String>,
    /// ready_to_ship | arranged | picked_up | delivered | delivery_failed | cancelled
    pub delivery_state: String,
    pub hub_id: Option<String>,
    pub ordr_order_id: Option<String>,
    pub new_order_event_id: Option<uuid::Uuid>,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_after_publish_at: Option<DateTime<Utc>>,
    pub delivery_updated_at: Option<DateTime<Utc>>,
    /// Why it is needs_mapping or parked.
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order's state in this service (no buyer data).
#[utoipa::path(
    get, path = "/v1/orders/{order_sn}", operation_id = "getOrder", tag = "orders",
    params(("order_sn" = String, Path, description = "Shopee's order number")),
    responses((status = 200, description = "the order", body = OrderView), Looking),
)]
pub async fn detail(
    State(state): State<AppState>,
    PathParam(sn): PathParam<String>,
) -> ApiResult<Json<OrderView>> {
    let sn = OrderSn::parse(&sn).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    sqlx::query_as(
        "SELECT shop_id, order_sn, intake_state, shopee_status, delivery_state, hub_id, ordr_order_id,
                new_order_event_id, published_at, cancelled_after_publish_at, delivery_updated_at, detail, created_at,
                updated_at
         FROM orders WHERE order_sn = $1",
    )
    .bind(sn.as_str())
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::NotFound(format!("order {sn} is not known here")))
}
