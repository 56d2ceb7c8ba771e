//! Campaigns in SKU terms, run on Shopee as one discount per shop.
//!
//! Creation: validate (Shopee's rules and ours) -> resolve hubs to shops and SKUs to (item, model) -> record the
//! campaign, its shops and items in PostgreSQL -> per shop: `add_discount`, store the `discount_id` at once, then
//! `add_discount_item` in batches of <= 50. A failure between the two is resumed (after an unknown outcome the
//! discount's items are read back and only the missing ones sent again; a retry with the same `Idempotency-Key` after
//! a crash continues from the recorded state) or compensated (`delete_discount`, retried by the reconcile loop if
//! Shopee refuses): a discount we created is always recorded, and never left half-made on Shopee (R15).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use domain::{HubId, ItemId, ModelId, Money, ShopId, Sku};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shopee_client::api::discount::{
    AddDiscountRequest, DISCOUNT_ITEM_BATCH, DeleteDiscountItemRequest, DiscountItem, DiscountItemsRequest,
    DiscountModel, DiscountStatus, GetDiscountListRequest, GetDiscountRequest, UpdateDiscountRequest,
};
use shopee_client::api::product::price_number;
use sqlx::PgPool;

use crate::AppState;
use crate::error::{ApiError, ApiResult, JsonBody, PathParam, QueryParams};
use crate::idempotency::{self, Begin};
use crate::page::{Page, PageQuery, page};

/// Shopee: at most this many items per discount.
pub const MAX_ITEMS: usize = 1000;
/// Shopee: a discount starts more than 1 hour ahead; we ask for one more minute so the call reaches Shopee in time.
pub const MIN_LEAD: Duration = Duration::minutes(61);
/// Shopee: a discount lasts less than 180 days and at least 1 hour.
pub const MAX_PERIOD: Duration = Duration::days(180);
pub const MIN_PERIOD: Duration = Duration::hours(1);

const SCOPE: &str = "POST /v1/campaigns";

// ---------------------------------------------------------------------------------------------------------------
// Requests

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub hub_ids: Option<Vec<String>>,
    pub items: Vec<ItemInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub sku: String,
    /// A decimal string in BRL ("9.90"); a JSON number is accepted too.
    pub promotion_price: Value,
    #[serde(default)]
    pub purchase_limit: Option<u32>,
    #[serde(default)]
    pub promotion_stock: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaign {
    #[serde(default)]
    pub name: Option<String>,
    /// Only earlier than the current end (Shopee's rule).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub add_items: Vec<ItemInput>,
    #[serde(default)]
    pub remove_skus: Vec<String>,
    /// New promotion price (and purchase limit) of SKUs already in the campaign.
    #[serde(default)]
    pub update_items: Vec<ItemInput>,
}

#[derive(Debug, Clone)]
struct ParsedItem {
    sku: Sku,
    price: Money,
    purchase_limit: u32,
    promotion_stock: Option<u32>,
}

#[derive(Debug, Clone)]
struct PlannedItem {
    sku: Sku,
    item_id: ItemId,
    model_id: ModelId,
    price: Money,
    purchase_limit: u32,
    promotion_stock: Option<u32>,
}

#[derive(Debug)]
struct ShopPlan {
    shop_id: ShopId,
    items: Vec<PlannedItem>,
}

fn parse_price(v: &Value) -> Result<Money, String> {
    let money = match v {
        Value::String(s) => Money::parse_decimal(s).map_err(|e| e.to_string())?,
        Value::Number(n) => Money::parse_decimal(&n.to_string()).map_err(|e| e.to_string())?,
        _ => return Err("must be a decimal string such as \"9.90\"".into()),
    };
    if money == Money::ZERO {
        return Err("must be more than 0.00".into());
    }
    Ok(money)
}

fn parse_items(items: &[ItemInput], problems: &mut Vec<String>) -> Vec<ParsedItem> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let sku = match Sku::parse(&it.sku) {
            Ok(sku) => sku,
            Err(_) => {
                problems.push(format!("SKU `{}` is not a valid SKU", truncate(&it.sku)));
                continue;
            }
        };
        if !seen.insert(sku.clone()) {
            problems.push(format!("SKU {sku} is listed more than once"));
            continue;
        }
        match parse_price(&it.promotion_price) {
            Ok(price) => out.push(ParsedItem {
                sku,
                price,
                purchase_limit: it.purchase_limit.unwrap_or(0),
                promotion_stock: it.promotion_stock,
            }),
            Err(why) => problems.push(format!("SKU {sku}: promotion_price {why}")),
        }
    }
    out
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn check_name(name: &str, problems: &mut Vec<String>) {
    let n = name.trim().chars().count();
    if n == 0 || n > 128 {
        problems.push("name must be 1 to 128 characters".into());
    }
}

fn check_period(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    problems: &mut Vec<String>,
) {
    if starts_at < now + MIN_LEAD {
        problems.push(format!(
            "starts_at must be more than 1 hour from now (Shopee's rule; we allow one more minute for the call): \
             the earliest accepted start now is {}",
            (now + MIN_LEAD).to_rfc3339()
        ));
    }
    if ends_at <= starts_at {
        problems.push("ends_at must be after starts_at".into());
    } else if ends_at - starts_at < MIN_PERIOD {
        problems.push("a campaign must last at least 1 hour (Shopee's rule)".into());
    } else if ends_at - starts_at >= MAX_PERIOD {
        problems.push("a campaign must last less than 180 days (Shopee's rule)".into());
    }
}

fn unprocessable(problems: Vec<String>) -> ApiError {
    let message = if problems.len() == 1 {
        problems[0].clone()
    } else {
        format!("{} problems: {}", problems.len(), problems.join("; "))
    };
    ApiError::Unprocessable {
        message,
        details: Some(json!(problems)),
    }
}

/// Resolves the target shops and each SKU's (item, model) there; records problems a person can act on.
async fn plan(
    state: &AppState,
    hub_ids: Option<&[String]>,
    items: &[ParsedItem],
    problems: &mut Vec<String>,
) -> ApiResult<Vec<ShopPlan>> {
    let skus: Vec<Sku> = items.iter().map(|i| i.sku.clone()).collect();
    // (shop, the hub it was named through, if any)
    let mut shops: Vec<(ShopId, Option<String>)> = Vec::new();
    match hub_ids {
        Some(hubs) => {
            if hubs.is_empty() {
                problems.push(
                    "hub_ids, when given, must name at least one hub (leave it out for every shop)".into(),
                );
            }
            for raw in hubs {
                let Ok(hub) = HubId::parse(raw) else {
                    problems.push(format!("hub `{}` is not a valid hub id", truncate(raw)));
                    continue;
                };
                match state.hubs.location(&hub).await? {
                    None => problems.push(format!("hub {hub} is not known")),
                    Some(loc) if !loc.active => problems.push(format!("hub {hub} is not active")),
                    Some(loc) => {
                        if !shops.iter().any(|(s, _)| *s == loc.shop_id) {
                            shops.push((loc.shop_id, Some(hub.to_string())));
                        }
                    }
                }
            }
        }
        None => {
            let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT DISTINCT shop_id FROM product_mappings WHERE sku = ANY($1) ORDER BY shop_id",
            )
            .bind(&names)
            .fetch_all(&state.pool)
            .await?;
            for id in ids {
                if let Ok(shop) = ShopId::from_i64(id) {
                    shops.push((shop, None));
                }
            }
        }
    }
    let mut plans = Vec::new();
    let mut mapped_somewhere: HashSet<Sku> = HashSet::new();
    for (shop, hub) in &shops {
        let found = state.mappings.for_skus(*shop, &skus).await?;
        let mut planned = Vec::new();
        for it in items {
            match found.get(&it.sku) {
                Some(m) => {
                    mapped_somewhere.insert(it.sku.clone());
                    planned.push(PlannedItem {
                        sku: it.sku.clone(),
                        item_id: m.item_id,
                        model_id: m.model_id,
                        price: it.price,
                        purchase_limit: it.purchase_limit,
                        promotion_stock: it.promotion_stock,
                    });
                }
                None => {
                    if let Some(hub) = hub {
                        problems.push(format!(
                            "SKU {} is not mapped in shop {shop} (hub {hub}): add it with PUT /v1/mappings or run \
                             POST /v1/mappings/discover",
                            it.sku
                        ));
                    }
                }
            }
        }
        check_current_prices(&state.pool, *shop, &planned, problems).await?;
        if !planned.is_empty() {
            plans.push(ShopPlan {
                shop_id: *shop,
                items: planned,
            });
        }
    }
    if hub_ids.is_none() {
        for it in items {
            if !mapped_somewhere.contains(&it.sku) {
                problems.push(format!(
                    "SKU {} is unknown here: it is not mapped to any Shopee shop (PUT /v1/mappings)",
                    it.sku
                ));
            }
        }
    }
    Ok(plans)
}

/// The promotion price must be below the current price, when we know it (the newest price the catalog sync saw).
async fn check_current_prices(
    pool: &PgPool,
    shop: ShopId,
    items: &[PlannedItem],
    problems: &mut Vec<String>,
) -> ApiResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let item_ids: Vec<i64> = items.iter().map(|i| i.item_id.as_i64()).collect();
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT item_id, model_id, newest_value FROM catalog_sync_state
         WHERE shop_id = $1 AND kind = 'price' AND item_id = ANY($2)",
    )
    .bind(shop.as_i64())
    .bind(&item_ids)
    .fetch_all(pool)
    .await?;
    let current: HashMap<(i64, i64), i64> = rows.into_iter().map(|(i, m, v)| ((i, m), v)).collect();
    for it in items {
        if let Some(&now) = current.get(&(it.item_id.as_i64(), it.model_id.as_i64()))
            && it.price.centavos() >= now
        {
            let now = Money::from_centavos(now).unwrap_or(Money::ZERO);
            problems.push(format!(
                "SKU {}: promotion price {} is not below the current price {now} in shop {shop}",
                it.sku, it.price
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Create

/// `POST /v1/campaigns`.
#[tracing::instrument(name = "campaign.create", skip_all, fields(campaign.id))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Response> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
                .to_owned();
            idempotency::validate_key(&k)?;
            Some(k)
        }
    };
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
    let result = create_inner(&state, raw, key.as_deref(), resume).await;
    let (status, body) = match &result {
        Ok((status, body)) => (*status, body.clone()),
        // Transient failures (database, Shopee unreachable before anything was recorded) are not final: the key is
        // released so a retry runs again; anything recorded is resumed then.
        Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => {
            if let Some(key) = &key {
                let _ = idempotency::release(&state.pool, SCOPE, key).await;
            }
            return Err(clone_error(e));
        }
        Err(e) => (e.status(), e.body()),
    };
    if let Some(key) = &key {
        idempotency::finish(&state.pool, SCOPE, key, status.as_u16(), &body).await?;
    }
    metrics::counter!("campaign_create_total", "outcome" => status.as_str().to_owned()).increment(1);
    Ok((status, Json(body)).into_response())
}

fn clone_error(e: &ApiError) -> ApiError {
    match e {
        ApiError::Unavailable(m) => ApiError::Unavailable(m.clone()),
        ApiError::Internal(m) => ApiError::Internal(m.clone()),
        other => ApiError::Internal(format!("{other:?}")),
    }
}

async fn create_inner(
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
            let req: CreateCampaign = serde_json::from_value(raw).map_err(|e| {
                ApiError::unprocessable(format!("the request does not match the campaign shape: {e}"))
            })?;
            let mut problems = Vec::new();
            check_name(&req.name, &mut problems);
            check_period(req.starts_at, req.ends_at, Utc::now(), &mut problems);
            if req.items.is_empty() {
                problems.push("items must list at least one SKU".into());
            }
            if req.items.len() > MAX_ITEMS {
                problems.push(format!(
                    "at most {MAX_ITEMS} items per campaign (Shopee's limit per discount)"
                ));
            }
            let items = parse_items(&req.items, &mut problems);
            let plans = if problems.is_empty() {
                plan(state, req.hub_ids.as_deref(), &items, &mut problems).await?
            } else {
                Vec::new()
            };
            if !problems.is_empty() {
                return Err(unprocessable(problems));
            }
            record(&state.pool, &req, &plans, key).await?
        }
    };
    tracing::Span::current().record("campaign.id", campaign_id);
    execute(state, campaign_id, key).await?;
    let view = load_view(&state.pool, campaign_id, true)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("campaign {campaign_id} vanished")))?;
    let body = serde_json::to_value(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
    if view.state == "active" {
        return Ok((StatusCode::CREATED, body));
    }
    let rejected = view
        .shops
        .iter()
        .flat_map(|s| s.items.iter().flatten())
        .filter(|i| i.state == "rejected" && i.error.as_ref().is_some_and(|e| e.code != "not_added"))
        .count();
    let shop_errors: Vec<String> = view
        .shops
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("shop {}: {e}", s.shop_id)))
        .collect();
    let (status, code, message) = if rejected > 0 {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            format!(
                "Shopee accepted none of the items ({rejected} refused, see each item's error, e.g. an item already \
                 in another promotion); nothing was left on Shopee"
            ),
        )
    } else {
        (
            StatusCode::BAD_GATEWAY,
            "shopee_error",
            format!(
                "the campaign could not be created on Shopee; nothing was left on Shopee. {}",
                shop_errors.join("; ")
            ),
        )
    };
    Ok((
        status,
        json!({"error": {"code": code, "message": message, "details": body}}),
    ))
}

/// Records the campaign, its shops and items, and links the idempotency key, in one transaction.
async fn record(
    pool: &PgPool,
    req: &CreateCampaign,
    plans: &[ShopPlan],
    key: Option<&str>,
) -> ApiResult<i64> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, starts_at, ends_at, hub_ids) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(req.name.trim())
    .bind(req.starts_at)
    .bind(req.ends_at)
    .bind(req.hub_ids.as_deref())
    .fetch_one(&mut *tx)
    .await?;
    for p in plans {
        sqlx::query("INSERT INTO campaign_shops (campaign_id, shop_id) VALUES ($1, $2)")
            .bind(id)
            .bind(p.shop_id.as_i64())
            .execute(&mut *tx)
            .await?;
        insert_items(&mut tx, id, p.shop_id, &p.items).await?;
    }
    if let Some(key) = key {
        idempotency::attach(&mut tx, SCOPE, key, id).await?;
    }
    tx.commit().await?;
    Ok(id)
}

async fn insert_items(
    tx: &mut sqlx::PgConnection,
    campaign_id: i64,
    shop: ShopId,
    items: &[PlannedItem],
) -> Result<(), sqlx::Error> {
    let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
    let item_ids: Vec<i64> = items.iter().map(|i| i.item_id.as_i64()).collect();
    let model_ids: Vec<i64> = items.iter().map(|i| i.model_id.as_i64()).collect();
    let prices: Vec<i64> = items.iter().map(|i| i.price.centavos()).collect();
    let limits: Vec<i32> = items
        .iter()
        .map(|i| i32::try_from(i.purchase_limit).unwrap_or(i32::MAX))
        .collect();
    let stocks: Vec<Option<i32>> = items
        .iter()
        .map(|i| i.promotion_stock.map(|s| i32::try_from(s).unwrap_or(i32::MAX)))
        .collect();
    sqlx::query(
        "INSERT INTO campaign_items (campaign_id, shop_id, sku, item_id, model_id, promotion_price, purchase_limit,
                                     promotion_stock)
         SELECT $1, $2, * FROM UNNEST($3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int4[], $8::int4[])
         ON CONFLICT (campaign_id, shop_id, sku) DO UPDATE
            SET item_id = EXCLUDED.item_id, model_id = EXCLUDED.model_id, promotion_price = EXCLUDED.promotion_price,
                purchase_limit = EXCLUDED.purchase_limit, promotion_stock = EXCLUDED.promotion_stock,
                state = 'pending', error_code = NULL, error_message = NULL, updated_at = now()",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(&skus)
    .bind(&item_ids)
    .bind(&model_ids)
    .bind(&prices)
    .bind(&limits)
    .bind(&stocks)
    .execute(tx)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct CampaignRow {
    name: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

/// Runs (or resumes) the Shopee side of a campaign from its recorded state. Safe to call again at any point.
pub async fn execute(state: &AppState, campaign_id: i64, key: Option<&str>) -> ApiResult<()> {
    let c: CampaignRow = sqlx::query_as("SELECT name, starts_at, ends_at FROM campaigns WHERE id = $1")
        .bind(campaign_id)
        .fetch_one(&state.pool)
        .await?;
    let shops: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT shop_id, state, discount_id FROM campaign_shops WHERE campaign_id = $1 ORDER BY shop_id",
    )
    .bind(campaign_id)
    .fetch_all(&state.pool)
    .await?;
    for (shop, st, discount) in shops {
        let shop = ShopId::from_i64(shop).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(key) = key {
            idempotency::renew(&state.pool, SCOPE, key).await?;
        }
        match (st.as_str(), discount) {
            ("pending" | "creating", _) => {
                if let Some(discount_id) =
                    ensure_discount(state, campaign_id, &c, shop, st == "creating").await?
                {
                    add_items(state, campaign_id, shop, discount_id, false).await?;
                }
            }
            ("discount_created", Some(discount_id)) => {
                let discount_id = u64::try_from(discount_id).unwrap_or_default();
                add_items(state, campaign_id, shop, discount_id, true).await?;
            }
            _ => {}
        }
    }
    sqlx::query(
        "UPDATE campaigns SET updated_at = now(),
            state = CASE WHEN EXISTS (SELECT 1 FROM campaign_shops WHERE campaign_id = $1 AND state = 'active')
                         THEN 'active' ELSE 'failed' END
         WHERE id = $1 AND state = 'creating'",
    )
    .bind(campaign_id)
    .execute(&state.pool)
    .await?;
    Ok(())
}

async fn set_shop(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    state: &str,
    discount_id: Option<u64>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_shops SET state = $3, discount_id = COALESCE($4, discount_id), error = $5, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(state)
    .bind(discount_id.and_then(|d| i64::try_from(d).ok()))
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Creates the shop's discount, or adopts the one an interrupted earlier attempt created. `None` when there is
/// none (the shop is marked failed, or left `creating` for the reconcile loop when Shopee's answer is unknown).
async fn ensure_discount(
    state: &AppState,
    campaign_id: i64,
    c: &CampaignRow,
    shop: ShopId,
    was_creating: bool,
) -> ApiResult<Option<u64>> {
    if was_creating && let Ok(Some(id)) = find_existing(state, shop, c).await {
        set_shop(&state.pool, campaign_id, shop, "discount_created", Some(id), None).await?;
        return Ok(Some(id));
    }
    set_shop(&state.pool, campaign_id, shop, "creating", None, None).await?;
    let req = AddDiscountRequest {
        discount_name: c.name.clone(),
        start_time: c.starts_at.timestamp(),
        end_time: c.ends_at.timestamp(),
    };
    match state.shopee.add_discount(shop, &req).await {
        Ok(r) => {
            // Recorded before any item is added: from here on this discount can always be found and cleaned up.
            set_shop(
                &state.pool,
                campaign_id,
                shop,
                "discount_created",
                Some(r.discount_id),
                None,
            )
            .await?;
            Ok(Some(r.discount_id))
        }
        Err(e) if e.is_retryable() => {
            // Shopee may have created it before failing: look for it before giving up.
            if let Ok(Some(id)) = find_existing(state, shop, c).await {
                set_shop(&state.pool, campaign_id, shop, "discount_created", Some(id), None).await?;
                return Ok(Some(id));
            }
            let msg =
                format!("add_discount failed and no discount was found for it (checked again later): {e}");
            set_shop(&state.pool, campaign_id, shop, "creating", None, Some(&msg)).await?;
            Ok(None)
        }
        Err(e) => {
            set_shop(
                &state.pool,
                campaign_id,
                shop,
                "failed",
                None,
                Some(&e.to_string()),
            )
            .await?;
            reject_pending(
                &state.pool,
                campaign_id,
                shop,
                "not_added",
                "the discount could not be created",
            )
            .await?;
            Ok(None)
        }
    }
}

/// An upcoming discount of the shop with this campaign's name and period that no campaign has recorded yet.
pub(crate) async fn find_existing(
    state: &AppState,
    shop: ShopId,
    c: &(impl CampaignLike + ?Sized),
) -> Result<Option<u64>, ApiError> {
    for page_no in 1..=20 {
        let resp = state
            .shopee
            .get_discount_list(
                shop,
                &GetDiscountListRequest {
                    discount_status: DiscountStatus::Upcoming,
                    page_no,
                    page_size: 100,
                    update_time_from: None,
                    update_time_to: None,
                },
            )
            .await?;
        for d in &resp.discount_list {
            if d.discount_name == c.name()
                && d.start_time == c.starts_at().timestamp()
                && d.end_time == c.ends_at().timestamp()
            {
                let known: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM campaign_shops WHERE shop_id = $1 AND discount_id = $2)",
                )
                .bind(shop.as_i64())
                .bind(i64::try_from(d.discount_id).unwrap_or_default())
                .fetch_one(&state.pool)
                .await?;
                if !known {
                    return Ok(Some(d.discount_id));
                }
            }
        }
        if !resp.more {
            break;
        }
    }
    Ok(None)
}

pub(crate) trait CampaignLike {
    fn name(&self) -> &str;
    fn starts_at(&self) -> DateTime<Utc>;
    fn ends_at(&self) -> DateTime<Utc>;
}

impl CampaignLike for CampaignRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn starts_at(&self) -> DateTime<Utc> {
        self.starts_at
    }
    fn ends_at(&self) -> DateTime<Utc> {
        self.ends_at
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ItemRow {
    sku: String,
    item_id: i64,
    model_id: i64,
    promotion_price: i64,
    purchase_limit: i32,
    promotion_stock: Option<i32>,
}

fn discount_items(rows: &[ItemRow]) -> Vec<DiscountItem> {
    let mut by_item: BTreeMap<i64, Vec<&ItemRow>> = BTreeMap::new();
    for r in rows {
        by_item.entry(r.item_id).or_default().push(r);
    }
    by_item
        .into_iter()
        .filter_map(|(item_id, rows)| {
            let item_id = ItemId::from_i64(item_id).ok()?;
            let purchase_limit = rows.iter().map(|r| r.purchase_limit).max().unwrap_or(0);
            let price =
                |r: &ItemRow| price_number(Money::from_centavos(r.promotion_price).unwrap_or(Money::ZERO));
            let stock = |r: &ItemRow| r.promotion_stock.and_then(|s| u32::try_from(s).ok());
            if rows.len() == 1 && rows[0].model_id == 0 {
                Some(DiscountItem {
                    item_id,
                    purchase_limit: u32::try_from(purchase_limit).unwrap_or(0),
                    item_promotion_price: Some(price(rows[0])),
                    item_promotion_stock: stock(rows[0]),
                    model_list: Vec::new(),
                })
            } else {
                Some(DiscountItem {
                    item_id,
                    purchase_limit: u32::try_from(purchase_limit).unwrap_or(0),
                    item_promotion_price: None,
                    item_promotion_stock: None,
                    model_list: rows
                        .iter()
                        .filter_map(|r| {
                            Some(DiscountModel {
                                model_id: ModelId::from_i64(r.model_id).ok()?,
                                model_promotion_price: price(r),
                                model_promotion_stock: stock(r),
                            })
                        })
                        .collect(),
                })
            }
        })
        .collect()
}

/// Batches of at most 50 Shopee items (a SKU is a model; the models of one item stay together).
fn batches(rows: Vec<ItemRow>) -> Vec<Vec<ItemRow>> {
    let mut by_item: BTreeMap<i64, Vec<ItemRow>> = BTreeMap::new();
    for r in rows {
        by_item.entry(r.item_id).or_default().push(r);
    }
    let mut out: Vec<Vec<ItemRow>> = Vec::new();
    let mut current: Vec<ItemRow> = Vec::new();
    let mut items_in_current = 0;
    for (_, rows) in by_item {
        if items_in_current == DISCOUNT_ITEM_BATCH {
            out.push(std::mem::take(&mut current));
            items_in_current = 0;
        }
        current.extend(rows);
        items_in_current += 1;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

async fn item_rows(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    state: &str,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sku, item_id, model_id, promotion_price, purchase_limit, promotion_stock FROM campaign_items
         WHERE campaign_id = $1 AND shop_id = $2 AND state = $3 ORDER BY item_id, model_id",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(state)
    .fetch_all(pool)
    .await
}

async fn set_item(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    sku: &str,
    state: &str,
    error: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_items SET state = $4, error_code = $5, error_message = $6, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2 AND sku = $3",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(sku)
    .bind(state)
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .execute(pool)
    .await
    .map(|_| ())
}

async fn reject_pending(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    code: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_items SET state = 'rejected', error_code = $3, error_message = $4, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2 AND state = 'pending'",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(code)
    .bind(message)
    .execute(pool)
    .await
    .map(|_| ())
}

/// (item, model) pairs already on the discount.
async fn present_on_discount(
    state: &AppState,
    shop: ShopId,
    discount_id: u64,
) -> ApiResult<HashSet<(i64, i64)>> {
    let mut present = HashSet::new();
    for page_no in 1..=20 {
        let d = state
            .shopee
            .get_discount(
                shop,
                &GetDiscountRequest {
                    discount_id,
                    page_no,
                    page_size: 100,
                },
            )
            .await?;
        for it in &d.item_list {
            if it.model_list.is_empty() {
                present.insert((it.item_id.as_i64(), 0));
            }
            for m in &it.model_list {
                present.insert((it.item_id.as_i64(), m.model_id.as_i64()));
            }
        }
        if !d.more {
            break;
        }
    }
    Ok(present)
}

/// Adds the shop's pending items in batches of <= 50 and records each item's outcome. A batch whose outcome is
/// unknown is read back and only the missing items sent again; if it still fails, the discount is deleted.
async fn add_items(
    state: &AppState,
    campaign_id: i64,
    shop: ShopId,
    discount_id: u64,
    resuming: bool,
) -> ApiResult<()> {
    let mut pending = item_rows(&state.pool, campaign_id, shop, "pending").await?;
    if resuming && !pending.is_empty() {
        // An earlier attempt may have added some of them before it stopped.
        match present_on_discount(state, shop, discount_id).await {
            Ok(present) => {
                for r in pending
                    .iter()
                    .filter(|r| present.contains(&(r.item_id, r.model_id)))
                {
                    set_item(&state.pool, campaign_id, shop, &r.sku, "added", None).await?;
                }
                pending.retain(|r| !present.contains(&(r.item_id, r.model_id)));
            }
            Err(e) => {
                let reason = format!("cannot read the discount back to resume: {e:?}");
                return compensate(state, campaign_id, shop, discount_id, &reason).await;
            }
        }
    }
    for mut batch in batches(pending) {
        let mut result = send_batch(state, shop, discount_id, &batch).await;
        if matches!(&result, Err(e) if e.is_retryable()) {
            // Unknown outcome: read back what is there, then send only the rest, once.
            if let Ok(present) = present_on_discount(state, shop, discount_id).await {
                for r in batch
                    .iter()
                    .filter(|r| present.contains(&(r.item_id, r.model_id)))
                {
                    set_item(&state.pool, campaign_id, shop, &r.sku, "added", None).await?;
                }
                batch.retain(|r| !present.contains(&(r.item_id, r.model_id)));
                result = if batch.is_empty() {
                    Ok(Vec::new())
                } else {
                    send_batch(state, shop, discount_id, &batch).await
                };
            }
        }
        match result {
            Ok(errors) => {
                for r in &batch {
                    let err = errors.iter().find(|(item, model, _, _)| {
                        *item == r.item_id && model.is_none_or(|m| m == r.model_id || m == 0)
                    });
                    match err {
                        // Already in *this* discount: an earlier attempt added it.
                        Some((_, _, code, _)) if code.ends_with("item_already_in_discount") => {
                            set_item(&state.pool, campaign_id, shop, &r.sku, "added", None).await?;
                        }
                        Some((_, _, code, message)) => {
                            set_item(
                                &state.pool,
                                campaign_id,
                                shop,
                                &r.sku,
                                "rejected",
                                Some((code, message)),
                            )
                            .await?;
                        }
                        None => set_item(&state.pool, campaign_id, shop, &r.sku, "added", None).await?,
                    }
                }
            }
            Err(e) => {
                let reason = format!("adding items failed: {e}");
                return compensate(state, campaign_id, shop, discount_id, &reason).await;
            }
        }
    }
    let added: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM campaign_items WHERE campaign_id = $1 AND shop_id = $2 AND state = 'added'",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .fetch_one(&state.pool)
    .await?;
    if added == 0 {
        return compensate(
            state,
            campaign_id,
            shop,
            discount_id,
            "Shopee accepted none of the items (see each item's error)",
        )
        .await;
    }
    set_shop(&state.pool, campaign_id, shop, "active", None, None).await?;
    Ok(())
}

/// One `add_discount_item` call; the refused (item, model?, code, message).
async fn send_batch(
    state: &AppState,
    shop: ShopId,
    discount_id: u64,
    batch: &[ItemRow],
) -> Result<Vec<(i64, Option<i64>, String, String)>, shopee_client::Error> {
    let req = DiscountItemsRequest {
        discount_id,
        item_list: discount_items(batch),
    };
    let resp = state.shopee.add_discount_item(shop, &req).await?;
    Ok(resp
        .error_list
        .into_iter()
        .map(|e| {
            (
                e.item_id.as_i64(),
                e.model_id.map(ModelId::as_i64),
                e.fail_error.unwrap_or_else(|| "refused".into()),
                e.fail_message,
            )
        })
        .collect())
}

/// Deletes the shop's discount so nothing half-made stays on Shopee. If Shopee refuses now, the shop stays
/// `compensating` and the reconcile loop tries again.
pub(crate) async fn compensate(
    state: &AppState,
    campaign_id: i64,
    shop: ShopId,
    discount_id: u64,
    reason: &str,
) -> ApiResult<()> {
    set_shop(&state.pool, campaign_id, shop, "compensating", None, Some(reason)).await?;
    reject_pending(&state.pool, campaign_id, shop, "not_added", reason).await?;
    match state.shopee.delete_discount(shop, discount_id).await {
        Ok(_) => {
            metrics::counter!("campaign_compensations_total", "outcome" => "deleted").increment(1);
            let msg = format!("{reason}; the discount was deleted on Shopee");
            set_shop(&state.pool, campaign_id, shop, "failed", None, Some(&msg)).await?;
        }
        Err(e) => {
            metrics::counter!("campaign_compensations_total", "outcome" => "deferred").increment(1);
            tracing::warn!(shop.id = %shop, discount.id = discount_id, error = %e, "delete_discount failed; the reconcile loop retries");
            let msg = format!("{reason}; deleting the discount failed ({e}), retried in the background");
            set_shop(&state.pool, campaign_id, shop, "compensating", None, Some(&msg)).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Views

#[derive(Debug, Clone, Serialize)]
pub struct ItemError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    pub sku: String,
    pub item_id: i64,
    pub model_id: i64,
    pub promotion_price: Money,
    pub purchase_limit: i32,
    pub promotion_stock: Option<i32>,
    /// pending | added | rejected | removed
    pub state: String,
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShopView {
    pub shop_id: i64,
    pub discount_id: Option<i64>,
    pub state: String,
    /// Shopee's status as last seen: upcoming | ongoing | expired | missing.
    pub shopee_status: Option<String>,
    pub synced_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemView>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub hub_ids: Option<Vec<String>>,
    /// upcoming | ongoing | expired (for active campaigns), else creating | failed | ended | deleted.
    pub status: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub shops: Vec<ShopView>,
}

const STATUS_SQL: &str = "CASE WHEN c.state = 'active' THEN
        CASE WHEN now() < c.starts_at THEN 'upcoming' WHEN now() < c.ends_at THEN 'ongoing' ELSE 'expired' END
     ELSE c.state END";

type CampaignTuple = (
    i64,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<Vec<String>>,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

type ShopTuple = (
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);
type ItemTuple = (
    i64,
    i64,
    String,
    i64,
    i64,
    i64,
    i32,
    Option<i32>,
    String,
    Option<String>,
    Option<String>,
);

async fn shop_views(
    pool: &PgPool,
    ids: &[i64],
    with_items: bool,
) -> Result<HashMap<i64, Vec<ShopView>>, sqlx::Error> {
    let shops: Vec<ShopTuple> = sqlx::query_as(
        "SELECT campaign_id, shop_id, discount_id, state, shopee_status, synced_at, error FROM campaign_shops
             WHERE campaign_id = ANY($1) ORDER BY campaign_id, shop_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut items: HashMap<(i64, i64), Vec<ItemView>> = HashMap::new();
    if with_items {
        let rows: Vec<ItemTuple> =
            sqlx::query_as(
                "SELECT campaign_id, shop_id, sku, item_id, model_id, promotion_price, purchase_limit, promotion_stock,
                        state, error_code, error_message
                 FROM campaign_items WHERE campaign_id = ANY($1) ORDER BY campaign_id, shop_id, sku",
            )
            .bind(ids)
            .fetch_all(pool)
            .await?;
        for (c, s, sku, item_id, model_id, price, limit, stock, state, code, message) in rows {
            items.entry((c, s)).or_default().push(ItemView {
                sku,
                item_id,
                model_id,
                promotion_price: Money::from_centavos(price).unwrap_or(Money::ZERO),
                purchase_limit: limit,
                promotion_stock: stock,
                state,
                error: code.map(|code| ItemError {
                    code,
                    message: message.unwrap_or_default(),
                }),
            });
        }
    }
    let mut out: HashMap<i64, Vec<ShopView>> = HashMap::new();
    for (c, shop_id, discount_id, state, shopee_status, synced_at, error) in shops {
        out.entry(c).or_default().push(ShopView {
            shop_id,
            discount_id,
            state,
            shopee_status,
            synced_at,
            error,
            items: with_items.then(|| items.remove(&(c, shop_id)).unwrap_or_default()),
        });
    }
    Ok(out)
}

fn view_from(t: CampaignTuple, shops: Vec<ShopView>) -> CampaignView {
    let (id, name, starts_at, ends_at, hub_ids, status, state, created_at, updated_at) = t;
    CampaignView {
        id,
        name,
        starts_at,
        ends_at,
        hub_ids,
        status,
        state,
        created_at,
        updated_at,
        shops,
    }
}

pub async fn load_view(
    pool: &PgPool,
    id: i64,
    with_items: bool,
) -> Result<Option<CampaignView>, sqlx::Error> {
    let sql = format!(
        "SELECT c.id, c.name, c.starts_at, c.ends_at, c.hub_ids, {STATUS_SQL} AS status, c.state, c.created_at,
                c.updated_at
         FROM campaigns c WHERE c.id = $1"
    );
    let row: Option<CampaignTuple> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut shops = shop_views(pool, &[id], with_items).await?;
    Ok(Some(view_from(row, shops.remove(&id).unwrap_or_default())))
}

// ---------------------------------------------------------------------------------------------------------------
// Read

#[derive(Debug, Deserialize)]
pub struct ListQuery {
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

const STATUSES: &[&str] = &[
    "upcoming", "ongoing", "expired", "creating", "failed", "ended", "deleted",
];

/// `GET /v1/campaigns?status=&limit=&cursor=` (newest first; shops without items).
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<Page<CampaignView>>> {
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let limit = q.page().limit()?;
    let before = q.page().cursor_number()?;
    let sql = format!(
        "SELECT * FROM (
            SELECT c.id, c.name, c.starts_at, c.ends_at, c.hub_ids, {STATUS_SQL} AS status, c.state, c.created_at,
                   c.updated_at
            FROM campaigns c WHERE ($1 = 0 OR c.id < $1)) v
         WHERE ($2::text IS NULL OR v.status = $2) ORDER BY v.id DESC LIMIT $3"
    );
    let rows: Vec<CampaignTuple> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(q.status.as_deref())
        .bind(limit + 1)
        .fetch_all(&state.pool)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut shops = shop_views(&state.pool, &ids, false).await?;
    let views = rows
        .into_iter()
        .map(|r| {
            let id = r.0;
            view_from(r, shops.remove(&id).unwrap_or_default())
        })
        .collect();
    Ok(Json(page(views, limit, |v: &CampaignView| v.id.to_string())))
}

/// `GET /v1/campaigns/{id}`: the campaign with each shop's items and Shopee's live status (`get_discount`).
pub async fn detail(State(state): State<AppState>, PathParam(id): PathParam<i64>) -> ApiResult<Json<Value>> {
    let view = load_view(&state.pool, id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
    let lookups = view.shops.iter().map(|s| {
        let state = state.clone();
        async move {
            let (Some(discount_id), Ok(shop)) = (s.discount_id, ShopId::from_i64(s.shop_id)) else {
                return Value::Null;
            };
            let discount_id = u64::try_from(discount_id).unwrap_or_default();
            let req = GetDiscountRequest {
                discount_id,
                page_no: 1,
                page_size: 100,
            };
            match state.shopee.get_discount(shop, &req).await {
                Ok(d) => {
                    let status = d.status.map(status_name).unwrap_or("unknown");
                    let _ = sqlx::query(
                        "UPDATE campaign_shops SET shopee_status = $3, synced_at = now()
                         WHERE shop_id = $1 AND discount_id = $2",
                    )
                    .bind(shop.as_i64())
                    .bind(i64::try_from(discount_id).unwrap_or_default())
                    .bind(status)
                    .execute(&state.pool)
                    .await;
                    json!({"status": status, "discount_name": d.discount_name,
                           "start_time": d.start_time, "end_time": d.end_time,
                           "items_on_page": d.item_list.len(), "more_items": d.more})
                }
                Err(e) => json!({"error": e.to_string()}),
            }
        }
    });
    let live = futures::future::join_all(lookups).await;
    let mut body = serde_json::to_value(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(shops) = body["shops"].as_array_mut() {
        for (s, l) in shops.iter_mut().zip(live) {
            if let Some(status) = l.get("status").and_then(Value::as_str) {
                s["shopee_status"] = json!(status);
            }
            s["shopee"] = l;
        }
    }
    Ok(Json(body))
}

pub fn status_name(s: DiscountStatus) -> &'static str {
    match s {
        DiscountStatus::Upcoming => "upcoming",
        DiscountStatus::Ongoing => "ongoing",
        DiscountStatus::Expired => "expired",
        DiscountStatus::All | DiscountStatus::Unknown => "unknown",
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Update, end, delete

async fn campaign_for_change(pool: &PgPool, id: i64) -> ApiResult<CampaignView> {
    let view = load_view(pool, id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
    if view.state != "active" {
        return Err(ApiError::Conflict(format!(
            "campaign {id} is {}; only an active campaign can be changed",
            view.status
        )));
    }
    Ok(view)
}

fn active_shops(view: &CampaignView) -> Vec<(ShopId, u64)> {
    view.shops
        .iter()
        .filter(|s| s.state == "active")
        .filter_map(|s| {
            Some((
                ShopId::from_i64(s.shop_id).ok()?,
                u64::try_from(s.discount_id?).ok()?,
            ))
        })
        .collect()
}

/// `PATCH /v1/campaigns/{id}`: rename, end earlier, add / remove / reprice items.
#[tracing::instrument(name = "campaign.update", skip_all, fields(campaign.id = id))]
pub async fn update(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
    JsonBody(req): JsonBody<UpdateCampaign>,
) -> ApiResult<Json<CampaignView>> {
    let view = campaign_for_change(&state.pool, id).await?;
    let now = Utc::now();
    if view.status == "expired" {
        return Err(ApiError::Conflict(format!("campaign {id} has already ended")));
    }
    let mut problems = Vec::new();
    if let Some(name) = &req.name {
        check_name(name, &mut problems);
    }
    if let Some(ends_at) = req.ends_at {
        if ends_at >= view.ends_at {
            problems.push("ends_at can only move earlier (Shopee's rule)".into());
        }
        if ends_at <= now {
            problems
                .push("ends_at must be in the future; to stop now use POST /v1/campaigns/{id}/end".into());
        }
        if ends_at - view.starts_at < MIN_PERIOD {
            problems.push("a campaign must last at least 1 hour (Shopee's rule)".into());
        }
    }
    let in_campaign: HashSet<String> = view
        .shops
        .iter()
        .flat_map(|s| s.items.iter().flatten())
        .filter(|i| i.state == "added")
        .map(|i| i.sku.clone())
        .collect();
    for sku in &req.remove_skus {
        if !in_campaign.contains(sku) {
            problems.push(format!("SKU {} is not in campaign {id}", truncate(sku)));
        }
    }
    let updates = parse_items(&req.update_items, &mut problems);
    for u in &updates {
        if !in_campaign.contains(u.sku.as_str()) {
            problems.push(format!(
                "SKU {} is not in campaign {id}: add it with add_items",
                u.sku
            ));
        }
    }
    let adds = parse_items(&req.add_items, &mut problems);
    for a in &adds {
        if in_campaign.contains(a.sku.as_str()) {
            problems.push(format!(
                "SKU {} is already in campaign {id}: reprice it with update_items",
                a.sku
            ));
        }
    }
    let shops = active_shops(&view);
    let mut add_plans: Vec<(ShopId, u64, Vec<PlannedItem>)> = Vec::new();
    if !adds.is_empty() && problems.is_empty() {
        let skus: Vec<Sku> = adds.iter().map(|a| a.sku.clone()).collect();
        let mut mapped = HashSet::new();
        for (shop, discount_id) in &shops {
            let found = state.mappings.for_skus(*shop, &skus).await?;
            let planned: Vec<PlannedItem> = adds
                .iter()
                .filter_map(|a| {
                    let m = found.get(&a.sku)?;
                    mapped.insert(a.sku.clone());
                    Some(PlannedItem {
                        sku: a.sku.clone(),
                        item_id: m.item_id,
                        model_id: m.model_id,
                        price: a.price,
                        purchase_limit: a.purchase_limit,
                        promotion_stock: a.promotion_stock,
                    })
                })
                .collect();
            if view.hub_ids.is_some() && planned.len() < adds.len() {
                for a in adds.iter().filter(|a| !found.contains_key(&a.sku)) {
                    problems.push(format!("SKU {} is not mapped in shop {shop}", a.sku));
                }
            }
            check_current_prices(&state.pool, *shop, &planned, &mut problems).await?;
            add_plans.push((*shop, *discount_id, planned));
        }
        for a in &adds {
            if !mapped.contains(&a.sku) {
                problems.push(format!(
                    "SKU {} is not mapped in any shop of campaign {id}",
                    a.sku
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(unprocessable(problems));
    }
    let mut failures = Vec::new();
    for (shop, discount_id) in &shops {
        if req.name.is_some() || req.ends_at.is_some() {
            let r = UpdateDiscountRequest {
                discount_id: *discount_id,
                discount_name: req.name.as_ref().map(|n| n.trim().to_owned()),
                start_time: None,
                end_time: req.ends_at.map(|e| e.timestamp()),
            };
            if let Err(e) = state.shopee.update_discount(*shop, &r).await {
                failures.push(format!("shop {shop}: {e}"));
                continue;
            }
        }
        for sku in &req.remove_skus {
            let Some(item) = view
                .shops
                .iter()
                .filter(|s| s.shop_id == shop.as_i64())
                .flat_map(|s| s.items.iter().flatten())
                .find(|i| &i.sku == sku && i.state == "added")
            else {
                continue;
            };
            let r = DeleteDiscountItemRequest {
                discount_id: *discount_id,
                item_id: ItemId::from_i64(item.item_id).map_err(|e| ApiError::Internal(e.to_string()))?,
                model_id: (item.model_id != 0)
                    .then(|| ModelId::from_i64(item.model_id).ok())
                    .flatten(),
            };
            match state.shopee.delete_discount_item(*shop, &r).await {
                Ok(resp) if resp.error_list.is_empty() => {
                    set_item(&state.pool, id, *shop, sku, "removed", None).await?;
                }
                Ok(resp) => failures.push(format!(
                    "shop {shop}, SKU {sku}: {}",
                    resp.error_list
                        .first()
                        .map(|e| e.fail_message.as_str())
                        .unwrap_or("refused")
                )),
                Err(e) => failures.push(format!("shop {shop}, SKU {sku}: {e}")),
            }
        }
        let to_reprice: Vec<ItemRow> = updates
            .iter()
            .filter_map(|u| {
                let item = view
                    .shops
                    .iter()
                    .filter(|s| s.shop_id == shop.as_i64())
                    .flat_map(|s| s.items.iter().flatten())
                    .find(|i| i.sku == u.sku.as_str() && i.state == "added")?;
                Some(ItemRow {
                    sku: item.sku.clone(),
                    item_id: item.item_id,
                    model_id: item.model_id,
                    promotion_price: u.price.centavos(),
                    purchase_limit: i32::try_from(u.purchase_limit).unwrap_or(i32::MAX),
                    promotion_stock: item.promotion_stock,
                })
            })
            .collect();
        for batch in batches(to_reprice) {
            let r = DiscountItemsRequest {
                discount_id: *discount_id,
                item_list: discount_items(&batch),
            };
            match state.shopee.update_discount_item(*shop, &r).await {
                Ok(resp) => {
                    for row in &batch {
                        if let Some(e) = resp.error_list.iter().find(|e| e.item_id.as_i64() == row.item_id) {
                            failures.push(format!("shop {shop}, SKU {}: {}", row.sku, e.fail_message));
                            continue;
                        }
                        sqlx::query(
                            "UPDATE campaign_items SET promotion_price = $4, purchase_limit = $5, updated_at = now()
                             WHERE campaign_id = $1 AND shop_id = $2 AND sku = $3",
                        )
                        .bind(id)
                        .bind(shop.as_i64())
                        .bind(&row.sku)
                        .bind(row.promotion_price)
                        .bind(row.purchase_limit)
                        .execute(&state.pool)
                        .await?;
                    }
                }
                Err(e) => failures.push(format!("shop {shop}: {e}")),
            }
        }
    }
    for (shop, discount_id, planned) in &add_plans {
        if planned.is_empty() {
            continue;
        }
        let mut tx = state.pool.begin().await?;
        insert_items(&mut tx, id, *shop, planned).await?;
        tx.commit().await?;
        let pending = item_rows(&state.pool, id, *shop, "pending").await?;
        for batch in batches(pending) {
            match send_batch(&state, *shop, *discount_id, &batch).await {
                Ok(errors) => {
                    for r in &batch {
                        match errors.iter().find(|(item, _, _, _)| *item == r.item_id) {
                            Some((_, _, code, message)) => {
                                set_item(&state.pool, id, *shop, &r.sku, "rejected", Some((code, message)))
                                    .await?
                            }
                            None => set_item(&state.pool, id, *shop, &r.sku, "added", None).await?,
                        }
                    }
                }
                Err(e) => {
                    // The discount itself is live and recorded; only these items are not in it.
                    for r in &batch {
                        set_item(
                            &state.pool,
                            id,
                            *shop,
                            &r.sku,
                            "rejected",
                            Some(("not_added", &e.to_string())),
                        )
                        .await?;
                    }
                    failures.push(format!("shop {shop}: adding items failed: {e}"));
                }
            }
        }
    }
    sqlx::query(
        "UPDATE campaigns SET name = COALESCE($2, name), ends_at = COALESCE($3, ends_at), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(if failures.is_empty() {
        req.name.as_deref().map(str::trim)
    } else {
        None
    })
    .bind(if failures.is_empty() { req.ends_at } else { None })
    .execute(&state.pool)
    .await?;
    if !failures.is_empty() {
        return Err(ApiError::Shopee(format!(
            "some changes were not applied on Shopee: {}",
            failures.join("; ")
        )));
    }
    let view = load_view(&state.pool, id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
    Ok(Json(view))
}

/// `POST /v1/campaigns/{id}/end`: ends an ongoing campaign on every shop.
#[tracing::instrument(name = "campaign.end", skip_all, fields(campaign.id = id))]
pub async fn end(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<CampaignView>> {
    let view = campaign_for_change(&state.pool, id).await?;
    match view.status.as_str() {
        "ongoing" => {}
        "upcoming" => {
            return Err(ApiError::Conflict(format!(
                "campaign {id} has not started yet: delete it with DELETE /v1/campaigns/{id}"
            )));
        }
        _ => return Err(ApiError::Conflict(format!("campaign {id} has already ended"))),
    }
    let mut failures = Vec::new();
    for (shop, discount_id) in active_shops(&view) {
        match state.shopee.end_discount(shop, discount_id).await {
            Ok(_) => set_shop(&state.pool, id, shop, "ended", None, None).await?,
            Err(e) => failures.push(format!("shop {shop}: {e}")),
        }
    }
    finish_change(&state.pool, id, "ended", failures).await
}

/// `DELETE /v1/campaigns/{id}`: deletes an upcoming campaign on every shop.
#[tracing::instrument(name = "campaign.delete", skip_all, fields(campaign.id = id))]
pub async fn remove(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<CampaignView>> {
    let view = load_view(&state.pool, id, true)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
    match view.status.as_str() {
        "upcoming" | "failed" => {}
        "ongoing" => {
            return Err(ApiError::Conflict(format!(
                "campaign {id} is ongoing: end it with POST /v1/campaigns/{id}/end"
            )));
        }
        other => {
            return Err(ApiError::Conflict(format!(
                "campaign {id} is {other} and cannot be deleted"
            )));
        }
    }
    let mut failures = Vec::new();
    for (shop, discount_id) in active_shops(&view) {
        match state.shopee.delete_discount(shop, discount_id).await {
            Ok(_) => set_shop(&state.pool, id, shop, "deleted", None, None).await?,
            Err(e) => failures.push(format!("shop {shop}: {e}")),
        }
    }
    finish_change(&state.pool, id, "deleted", failures).await
}

async fn finish_change(
    pool: &PgPool,
    id: i64,
    to: &str,
    failures: Vec<String>,
) -> ApiResult<Json<CampaignView>> {
    if !failures.is_empty() {
        return Err(ApiError::Shopee(format!(
            "not every shop's discount changed; retry: {}",
            failures.join("; ")
        )));
    }
    sqlx::query("UPDATE campaigns SET state = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(to)
        .execute(pool)
        .await?;
    load_view(pool, id, true)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(sku: &str, item: i64, model: i64) -> ItemRow {
        ItemRow {
            sku: sku.into(),
            item_id: item,
            model_id: model,
            promotion_price: 990,
            purchase_limit: 0,
            promotion_stock: None,
        }
    }

    #[test]
    fn batches_hold_at_most_50_items_and_keep_models_together() {
        let mut rows: Vec<ItemRow> = (1..=120).map(|i| row(&format!("S{i}"), i, 0)).collect();
        rows.push(row("M1", 7, 11));
        let b = batches(rows);
        assert_eq!(b.len(), 3);
        for batch in &b {
            let items: HashSet<i64> = batch.iter().map(|r| r.item_id).collect();
            assert!(items.len() <= 50);
        }
        assert!(
            b.iter()
                .any(|batch| batch.iter().filter(|r| r.item_id == 7).count() == 2)
        );
    }

    #[test]
    fn items_without_models_use_the_item_price() {
        let items = discount_items(&[row("A", 1, 0), row("B", 2, 5), row("C", 2, 6)]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].item_promotion_price.as_ref().unwrap().to_string(), "9.9");
        assert_eq!(items[1].model_list.len(), 2);
    }

    #[test]
    fn period_rules_are_checked() {
        let now = Utc::now();
        let mut p = Vec::new();
        check_period(now + Duration::minutes(30), now + Duration::days(1), now, &mut p);
        assert!(p[0].contains("more than 1 hour"), "{p:?}");
        let mut p = Vec::new();
        check_period(now + Duration::hours(2), now + Duration::days(200), now, &mut p);
        assert!(p[0].contains("180 days"), "{p:?}");
        let mut p = Vec::new();
        check_period(now + Duration::hours(2), now + Duration::days(3), now, &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn prices_parse_from_text_or_number() {
        assert_eq!(parse_price(&json!("9.90")).unwrap().centavos(), 990);
        assert_eq!(parse_price(&json!(9.9)).unwrap().centavos(), 990);
        assert!(parse_price(&json!("0")).is_err());
        assert!(parse_price(&json!("9.999")).is_err());
    }
}
