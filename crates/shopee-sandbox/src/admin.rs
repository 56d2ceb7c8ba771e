//! The admin API under `/_sandbox/...`: the in-process operations of [`crate::Sandbox`] over HTTP (JSON), for
//! process-level tests and `make run`. Errors are `{"error": {"code", "message"}}`. Documented in README.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::error::Error;
use crate::model::*;
use crate::state::normalize_api;
use crate::{SeedFile, SeedShop};

type S = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/seed", post(seed))
        .route("/shops", post(shop))
        .route("/shops/{shop_id}/authorize", post(authorize))
        .route("/shops/{shop_id}/tokens", post(issue_tokens).get(tokens))
        .route("/shops/{shop_id}/expire_access_token", post(expire))
        .route("/items", post(items))
        .route("/shops/{shop_id}/items/{item_id}", get(item))
        .route("/shops/{shop_id}/items/{item_id}/flags", post(item_flags))
        .route("/orders", post(orders))
        .route("/shops/{shop_id}/orders/{order_sn}", get(order))
        .route("/shops/{shop_id}/orders/{order_sn}/status", post(order_status))
        .route("/discounts", post(discount))
        .route("/shops/{shop_id}/discounts", get(discounts))
        .route("/pushes", get(pushes))
        .route("/pushes/drop", post(drop_pushes))
        .route("/rate_limits", post(rate_limit).delete(clear_rate_limits))
        .route("/faults", post(fault).delete(clear_faults))
        .route("/journal", get(journal).delete(clear_journal))
}

struct AdminError(StatusCode, &'static str, String);

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => Self(StatusCode::NOT_FOUND, "not_found", m),
            Error::Invalid(m) => Self(StatusCode::BAD_REQUEST, "invalid", m),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error": {"code": self.1, "message": self.2}})),
        )
            .into_response()
    }
}

type R = Result<Json<Value>, AdminError>;

fn not_found(what: String) -> AdminError {
    AdminError(StatusCode::NOT_FOUND, "not_found", what)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(Box<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::Many(v) => v,
            Self::One(t) => vec![*t],
        }
    }
}

/// Seeds a whole [`SeedFile`]; returns the tokens of `authorized_shops`.
pub(crate) async fn apply_seed(shared: &Shared, seed: &SeedFile) -> anyhow::Result<()> {
    seed_all(shared, seed)?;
    shared.deliver_outgoing().await;
    Ok(())
}

fn seed_all(shared: &Shared, seed: &SeedFile) -> Result<BTreeMap<u64, Value>, Error> {
    let mut inner = shared.lock();
    for s in &seed.shops {
        inner.seed_shop(s)?;
    }
    for i in &seed.items {
        inner.seed_item(i)?;
    }
    for d in &seed.discounts {
        inner.seed_discount(d)?;
    }
    for o in &seed.orders {
        inner.seed_order(o)?;
    }
    let mut tokens = BTreeMap::new();
    for shop in &seed.authorized_shops {
        let (access, refresh) = inner.issue_tokens(*shop);
        tokens.insert(*shop, json!({"access_token": access, "refresh_token": refresh}));
    }
    Ok(tokens)
}

async fn seed(State(shared): S, Json(body): Json<SeedFile>) -> R {
    let tokens = seed_all(&shared, &body)?;
    shared.deliver_outgoing().await;
    Ok(Json(json!({"tokens": tokens})))
}

async fn shop(State(shared): S, Json(body): Json<SeedShop>) -> R {
    shared.lock().seed_shop(&body)?;
    Ok(Json(json!({"shop_id": body.shop_id})))
}

async fn authorize(State(shared): S, Path(shop_id): Path<u64>) -> R {
    let code = shared.lock().authorize_shop(shop_id);
    Ok(Json(json!({"code": code, "shop_id": shop_id})))
}

async fn issue_tokens(State(shared): S, Path(shop_id): Path<u64>) -> R {
    let (access, refresh) = shared.lock().issue_tokens(shop_id);
    Ok(Json(
        json!({"access_token": access, "refresh_token": refresh, "shop_id": shop_id}),
    ))
}

async fn tokens(State(shared): S, Path(shop_id): Path<u64>) -> R {
    let inner = shared.lock();
    let shop = inner
        .shops
        .get(&shop_id)
        .ok_or_else(|| not_found(format!("shop {shop_id}")))?;
    let access: Vec<Value> = shop
        .access_tokens
        .iter()
        .map(|(t, exp)| json!({"access_token": t, "expires_at_ms": exp}))
        .collect();
    let refresh = shop
        .refresh_token
        .as_ref()
        .map(|(t, exp)| json!({"refresh_token": t, "expires_at_ms": exp}));
    Ok(Json(
        json!({"shop_id": shop_id, "access_tokens": access, "refresh_token": refresh}),
    ))
}

async fn expire(State(shared): S, Path(shop_id): Path<u64>) -> R {
    shared.lock().expire_access_token(shop_id)?;
    Ok(Json(json!({})))
}

async fn items(State(shared): S, Json(body): Json<OneOrMany<SeedItem>>) -> R {
    let items = body.into_vec();
    let mut inner = shared.lock();
    for i in &items {
        inner.seed_item(i)?;
    }
    Ok(Json(json!({"seeded": items.len()})))
}

async fn item(State(shared): S, Path((shop_id, item_id)): Path<(u64, u64)>) -> R {
    let view = shared
        .lock()
        .item_view(shop_id, item_id)
        .ok_or_else(|| not_found(format!("item {item_id} of shop {shop_id}")))?;
    Ok(Json(json!(view)))
}

async fn item_flags(
    State(shared): S,
    Path((shop_id, item_id)): Path<(u64, u64)>,
    Json(flags): Json<ItemFlags>,
) -> R {
    shared.lock().set_item_flags(shop_id, item_id, &flags)?;
    Ok(Json(json!({})))
}

async fn orders(State(shared): S, Json(body): Json<OneOrMany<SeedOrder>>) -> R {
    let orders = body.into_vec();
    {
        let mut inner = shared.lock();
        for o in &orders {
            inner.seed_order(o)?;
        }
    }
    shared.deliver_outgoing().await;
    Ok(Json(json!({"seeded": orders.len()})))
}

async fn order(State(shared): S, Path((shop_id, order_sn)): Path<(u64, String)>) -> R {
    let view = shared
        .lock()
        .order_view(shop_id, &order_sn)
        .ok_or_else(|| not_found(format!("order {order_sn} of shop {shop_id}")))?;
    Ok(Json(json!(view)))
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn order_status(
    State(shared): S,
    Path((shop_id, order_sn)): Path<(u64, String)>,
    Json(body): Json<StatusBody>,
) -> R {
    shared.lock().set_order_status(shop_id, &order_sn, &body.status)?;
    shared.deliver_outgoing().await;
    Ok(Json(json!({})))
}

async fn discount(State(shared): S, Json(body): Json<SeedDiscount>) -> R {
    let id = shared.lock().seed_discount(&body)?;
    Ok(Json(json!({"discount_id": id})))
}

async fn discounts(State(shared): S, Path(shop_id): Path<u64>) -> R {
    let inner = shared.lock();
    let list: Vec<DiscountView> = inner
        .shops
        .get(&shop_id)
        .map(|s| s.discounts.keys().copied().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| inner.discount_view(shop_id, id))
        .collect();
    Ok(Json(json!(list)))
}

async fn pushes(State(shared): S) -> R {
    Ok(Json(json!(shared.lock().pushes)))
}

#[derive(Deserialize)]
struct DropBody {
    count: u32,
}

async fn drop_pushes(State(shared): S, Json(body): Json<DropBody>) -> R {
    shared.lock().drop_next += body.count;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct RateLimitBody {
    #[serde(default)]
    shop_id: Option<u64>,
    #[serde(default)]
    api: Option<String>,
    per_second: u32,
}

async fn rate_limit(State(shared): S, Json(body): Json<RateLimitBody>) -> R {
    shared
        .lock()
        .set_rate_limit(body.shop_id, body.api, body.per_second);
    Ok(Json(json!({})))
}

async fn clear_rate_limits(State(shared): S) -> R {
    shared.lock().rate_rules.clear();
    Ok(Json(json!({})))
}

async fn fault(State(shared): S, Json(body): Json<Fault>) -> R {
    shared.lock().inject_fault(body);
    Ok(Json(json!({})))
}

async fn clear_faults(State(shared): S) -> R {
    shared.lock().faults.clear();
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct JournalQuery {
    api: Option<String>,
    shop_id: Option<u64>,
    since_ms: Option<i64>,
}

async fn journal(State(shared): S, Query(q): Query<JournalQuery>) -> R {
    let api = q.api.as_deref().map(normalize_api);
    let entries: Vec<JournalEntry> = shared
        .lock()
        .journal
        .iter()
        .filter(|e| api.as_ref().is_none_or(|a| &e.api == a))
        .filter(|e| q.shop_id.is_none_or(|s| e.shop_id == Some(s)))
        .filter(|e| q.since_ms.is_none_or(|t| e.at_ms >= t))
        .cloned()
        .collect();
    Ok(Json(json!(entries)))
}

async fn clear_journal(State(shared): S) -> R {
    shared.lock().journal.clear();
    Ok(Json(json!({})))
}
