//! Products: item list and info, models, update_price / update_stock (one item per call, per-model `failure_list`),
//! update_item, and the Instant Mart outlet APIs (mapping, asynchronous batch price and stock updates).

use serde_json::{Value, json};

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::config::ms;
use crate::error::{ApiError, ApiResult};
use crate::model::{SellerStock, ShopKind};
use crate::state::{BatchTask, Inner, Item, Model, money, now_ms};

/// The most images an item takes (sandbox choice: Shopee's usual limit of 9).
const MAX_ITEM_IMAGES: usize = 9;

/// Where an image is served (the same shape as `media_space/upload_image`'s answer).
pub(super) fn image_url(image_id: &str) -> String {
    format!("https://sandbox.invalid/file/{image_id}")
}

/// Shopee's documented text for `error_item_not_found` (the same for every item: Shopee names none).
fn item_not_found(_item_id: u64) -> ApiError {
    ApiError::business("error_item_not_found", "Item_id is not found.")
}

fn price_info(inner: &Inner, shop_id: u64, item_id: u64, m: &Model, now: i64) -> Value {
    let current = inner
        .promotion_price(shop_id, item_id, m.model_id, now)
        .unwrap_or(m.original_price);
    json!([{
        "currency": "BRL",
        "original_price": m.original_price,
        "current_price": current,
        "inflated_price_of_original_price": m.original_price,
        "inflated_price_of_current_price": current,
    }])
}

fn stock_info(inner: &Inner, shop_id: u64, item_id: u64, m: &Model, now: i64) -> Value {
    let reserved = inner.reserved_stock(shop_id, item_id, m.model_id, now);
    json!({
        "summary_info": {"total_reserved_stock": reserved, "total_available_stock": m.total_stock()},
        "seller_stock": m.stock,
        "shopee_stock": [],
    })
}

/// get_item_list's `item_status` values.
const ITEM_STATUSES: &[&str] = &[
    "NORMAL",
    "BANNED",
    "UNLIST",
    "REVIEWING",
    "SELLER_DELETE",
    "SHOPEE_DELETE",
];

pub(super) fn get_item_list(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let offset = args.opt_u64("offset")?.unwrap_or(0);
    let page_size = args.req_u64("page_size")?;
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::param(
            "Wrong parameters, detail: page_size must be between 1 and 100.",
        ));
    }
    // A repeated key, one status each (`item_status=NORMAL&item_status=BANNED`).
    let statuses = args.str_list("item_status")?;
    if let Some(bad) = statuses.iter().find(|s| !ITEM_STATUSES.contains(&s.as_str())) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "error_param_item_status",
            format!(
                "item_status {bad:?} is not one of {}: several statuses are repeated keys.",
                ITEM_STATUSES.join(", ")
            ),
        ));
    }
    let from = args.opt_i64("update_time_from")?;
    let to = args.opt_i64("update_time_to")?;
    let items: Vec<&Item> = inner
        .shops
        .get(&ctx.shop_id)
        .map(|s| {
            s.items
                .values()
                .filter(|i| statuses.contains(&i.item_status))
                .filter(|i| from.is_none_or(|f| i.update_time >= f) && to.is_none_or(|t| i.update_time <= t))
                .collect()
        })
        .unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(items.len());
    let end = (start + usize::try_from(page_size).unwrap_or(100)).min(items.len());
    let page: Vec<Value> = items[start..end]
        .iter()
        .map(|i| json!({"item_id": i.item_id, "item_status": i.item_status, "update_time": i.update_time}))
        .collect();
    ok(json!({
        "item": page,
        "total_count": items.len(),
        "has_next_page": end < items.len(),
        "next_offset": end,
    }))
}

pub(super) fn get_item_base_info(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let ids = args.u64_list("item_id_list")?;
    if ids.is_empty() || ids.len() > 50 {
        return Err(ApiError::param(
            "item_id_list must hold between 1 and 50 item ids.",
        ));
    }
    let inner = &*inner;
    let mut list = Vec::new();
    if let Some(shop) = inner.shops.get(&ctx.shop_id) {
        for id in ids {
            let Some(item) = shop.items.get(&id) else { continue };
            let mut v = json!({
                "item_id": item.item_id,
                "category_id": item.category_id,
                "item_name": item.item_name,
                "description": item.description,
                "item_sku": item.item_sku,
                "create_time": item.create_time,
                "update_time": item.update_time,
                "item_status": item.item_status,
                "has_model": item.has_model(),
                // Documented as a string (kg), e.g. "10.02".
                "weight": item.weight.map(|w| format!("{w:.2}")),
                "dimension": item.dimension,
                "image": {"image_id_list": item.images, "image_url_list": item.images.iter().map(|id| image_url(id)).collect::<Vec<_>>()},
                "condition": "NEW",
            });
            if let (false, Some(m), Some(obj)) = (item.has_model(), item.models.get(&0), v.as_object_mut()) {
                obj.insert(
                    "price_info".into(),
                    price_info(inner, ctx.shop_id, id, m, ctx.now),
                );
                // In the item, as Shopee's sample has it (shopee-contract's ERRATA moves it there).
                obj.insert(
                    "stock_info_v2".into(),
                    stock_info(inner, ctx.shop_id, id, m, ctx.now),
                );
            }
            list.push(v);
        }
    }
    ok(json!({"item_list": list}))
}

pub(super) fn get_model_list(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let item_id = args.req_u64("item_id")?;
    let inner = &*inner;
    let item = inner
        .shops
        .get(&ctx.shop_id)
        .and_then(|s| s.items.get(&item_id))
        .ok_or_else(|| item_not_found(item_id))?;
    let models: Vec<Value> = if item.has_model() {
        item.models
            .values()
            .map(|m| {
                json!({
                    "model_id": m.model_id,
                    "model_sku": m.model_sku,
                    "model_status": "MODEL_NORMAL",
                    "tier_index": [0],
                    "price_info": price_info(inner, ctx.shop_id, item_id, m, ctx.now),
                    "stock_info_v2": stock_info(inner, ctx.shop_id, item_id, m, ctx.now),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let options: Vec<Value> = item
        .models
        .values()
        .filter(|m| m.model_id != 0)
        .map(|m| json!({"option": m.model_name}))
        .collect();
    let tiers = if models.is_empty() {
        json!([])
    } else {
        json!([{"name": "Variação", "option_list": options}])
    };
    ok(json!({"tier_variation": tiers, "model": models}))
}

/// A `failure_list` entry: Shopee documents `model_id` and a free-text `failed_reason`, no error code.
fn failure(model_id: u64, reason: &str) -> Value {
    json!({"model_id": model_id, "failed_reason": reason})
}

/// The `failed_reason`s sent, each a text Shopee documents in the `error_list` of update_price / update_stock
/// (catalog-sync-worker's `flush::DOCUMENTED` lists them with their codes and sources).
pub(super) mod reason {
    /// error_item_uneditable: the item's status (deleted) allows no edit.
    pub const UNEDITABLE: &str = "Can't edit this item. item status can not support editing.";
    /// error_param.
    pub const WRONG_MODEL: &str = "Wrong model_id.";
    /// error_cannot_update_price_in_promotion.
    pub const PRICE_IN_PROMOTION: &str = "Price cannot be changed when model is under promotion.";
    /// error_price_exceed_min_limitt.
    pub const PRICE_BELOW_MIN: &str = "Original_price is less than min price limit.";
    /// error_param's "Wrong parameters, detail: {msg}.".
    pub const NO_SELLER_STOCK: &str = "Wrong parameters, detail: seller_stock is required.";
    /// error_param's "Parameter is not match the constraints, {{.error_info}}.".
    pub const NEGATIVE_STOCK: &str = "Parameter is not match the constraints, stock must not be negative.";
    /// error_auth.
    pub const LOCATION_REQUIRED: &str = "Lack of location_id, please double check.";
    /// error_auth.
    pub const LOCATION_UNKNOWN: &str =
        "The location_id input is not matched the shop's location_id(more/wrong). Please double check.";
    /// error.param.
    pub const UNDER_RESERVE: &str = "Can not update item with stock less than reserved stock";
}

/// Applies original prices to one item's models; per-model failures. Err when the item does not exist.
fn apply_prices(
    inner: &mut Inner,
    shop_id: u64,
    item_id: u64,
    prices: &[(u64, f64)],
    now: i64,
) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let item = inner
        .shops
        .get_mut(&shop_id)
        .and_then(|s| s.items.get_mut(&item_id))
        .ok_or_else(|| item_not_found(item_id))?;
    let (mut success, mut failures) = (Vec::new(), Vec::new());
    let deleted = item.deleted();
    for &(model_id, price) in prices {
        if deleted {
            failures.push(failure(model_id, reason::UNEDITABLE));
            continue;
        }
        let Some(model) = item.models.get_mut(&model_id) else {
            failures.push(failure(model_id, reason::WRONG_MODEL));
            continue;
        };
        if model.price_locked {
            failures.push(failure(model_id, reason::PRICE_IN_PROMOTION));
            continue;
        }
        if !price.is_finite() || price <= 0.0 {
            failures.push(failure(model_id, reason::PRICE_BELOW_MIN));
            continue;
        }
        model.original_price = money(price);
        success.push(json!({"model_id": model_id, "original_price": model.original_price}));
    }
    if !success.is_empty() {
        item.update_time = now;
    }
    Ok((success, failures))
}

fn read_prices(list: &[Args]) -> ApiResult<Vec<(u64, f64)>> {
    list.iter()
        .map(|p| {
            let model_id = p.opt_u64("model_id")?.unwrap_or(0);
            let price = p
                .opt_f64("original_price")?
                .ok_or_else(|| ApiError::param("original_price is required in price_list."))?;
            Ok((model_id, price))
        })
        .collect()
}

pub(super) fn update_price(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let item_id = args.req_u64("item_id")?;
    let list = args.objects("price_list")?;
    if list.is_empty() || list.len() > 50 {
        return Err(ApiError::param("price_list must hold between 1 and 50 models."));
    }
    let prices = read_prices(&list)?;
    let (success, failures) = apply_prices(inner, ctx.shop_id, item_id, &prices, ctx.now)?;
    ok(json!({"success_list": success, "failure_list": failures}))
}

type StockUpdate = (u64, Vec<(Option<String>, i64)>);

fn read_stocks(list: &[Args]) -> ApiResult<Vec<StockUpdate>> {
    list.iter()
        .map(|s| {
            let model_id = s.opt_u64("model_id")?.unwrap_or(0);
            let entries = s
                .objects("seller_stock")?
                .iter()
                .map(|e| Ok((e.opt_str("location_id")?.map(str::to_owned), e.req_i64("stock")?)))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok((model_id, entries))
        })
        .collect()
}

/// Applies seller stock to one item's models, per location; per-model failures.
fn apply_stocks(
    inner: &mut Inner,
    shop_id: u64,
    item_id: u64,
    updates: &[StockUpdate],
    now: i64,
) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let reserves: Vec<i64> = updates
        .iter()
        .map(|(model_id, _)| inner.reserved_stock(shop_id, item_id, *model_id, now))
        .collect();
    let item = inner
        .shops
        .get_mut(&shop_id)
        .and_then(|s| s.items.get_mut(&item_id))
        .ok_or_else(|| item_not_found(item_id))?;
    let (mut success, mut failures) = (Vec::new(), Vec::new());
    let deleted = item.deleted();
    for ((model_id, entries), reserved) in updates.iter().zip(reserves) {
        let model_id = *model_id;
        if deleted {
            failures.push(failure(model_id, reason::UNEDITABLE));
            continue;
        }
        let Some(model) = item.models.get_mut(&model_id) else {
            failures.push(failure(model_id, reason::WRONG_MODEL));
            continue;
        };
        if entries.is_empty() {
            failures.push(failure(model_id, reason::NO_SELLER_STOCK));
            continue;
        }
        if entries.iter().any(|(_, s)| *s < 0) {
            failures.push(failure(model_id, reason::NEGATIVE_STOCK));
            continue;
        }
        let multi_warehouse = model.stock.iter().any(|s| s.location_id.is_some());
        let mut new_stock = model.stock.clone();
        let mut problem = None;
        for (location, stock) in entries {
            match (multi_warehouse, location) {
                (true, None) => problem = Some(reason::LOCATION_REQUIRED),
                (true, Some(loc)) => match new_stock.iter_mut().find(|s| s.location_id.as_ref() == Some(loc))
                {
                    Some(s) => s.stock = *stock,
                    None => problem = Some(reason::LOCATION_UNKNOWN),
                },
                (false, location) => {
                    new_stock = vec![SellerStock {
                        location_id: location.clone(),
                        stock: *stock,
                    }];
                }
            }
        }
        if let Some(problem) = problem {
            failures.push(failure(model_id, problem));
            continue;
        }
        let total: i64 = new_stock.iter().map(|s| s.stock).sum();
        if total < reserved {
            failures.push(failure(model_id, reason::UNDER_RESERVE));
            continue;
        }
        model.stock = new_stock;
        for s in &model.stock {
            success.push(json!({"model_id": model_id, "location_id": s.location_id.clone().unwrap_or_default(), "stock": s.stock}));
        }
    }
    if !success.is_empty() {
        item.update_time = now;
    }
    Ok((success, failures))
}

pub(super) fn update_stock(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let item_id = args.req_u64("item_id")?;
    let list = args.objects("stock_list")?;
    if list.is_empty() || list.len() > 50 {
        return Err(ApiError::param("stock_list must hold between 1 and 50 models."));
    }
    let updates = read_stocks(&list)?;
    let (success, failures) = apply_stocks(inner, ctx.shop_id, item_id, &updates, ctx.now)?;
    ok(json!({"success_list": success, "failure_list": failures}))
}

pub(super) fn update_item(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let item_id = args.req_u64("item_id")?;
    let name = args.opt_str("item_name")?;
    if let Some(n) = name
        && (n.trim().is_empty() || n.chars().count() > 120)
    {
        return Err(ApiError::param("item_name must hold 1 to 120 characters."));
    }
    let status = args.opt_str("item_status")?;
    if let Some(s) = status
        && s != "NORMAL"
        && s != "UNLIST"
    {
        return Err(ApiError::param("item_status must be NORMAL or UNLIST."));
    }
    let weight = args.opt_f64("weight")?;
    if weight.is_some_and(|w| !w.is_finite() || w <= 0.0) {
        return Err(ApiError::param("weight must be greater than 0 (kg)."));
    }
    let dimension = match args.opt_object("dimension")? {
        None => None,
        Some(d) => {
            let dims = ["package_length", "package_width", "package_height"]
                .iter()
                .map(|k| d.req_u64(k))
                .collect::<ApiResult<Vec<_>>>()?;
            if dims.contains(&0) {
                return Err(ApiError::param("dimension values must be greater than 0 (cm)."));
            }
            Some(json!({"package_length": dims[0], "package_width": dims[1], "package_height": dims[2]}))
        }
    };
    let images = match args.opt_object("image")? {
        None => None,
        Some(i) => Some(i.str_list("image_id_list")?),
    };
    if let Some(list) = &images
        && (list.is_empty() || list.len() > MAX_ITEM_IMAGES)
    {
        return Err(ApiError::param(format!(
            "image.image_id_list must hold between 1 and {MAX_ITEM_IMAGES} image ids."
        )));
    }
    let description = args.opt_str("description")?;
    let item_sku = args.opt_str("item_sku")?;
    let uploaded = &inner.images;
    let item = inner
        .shops
        .get_mut(&ctx.shop_id)
        .and_then(|s| s.items.get_mut(&item_id))
        .ok_or_else(|| item_not_found(item_id))?;
    // An id must come from upload_image (or already be the item's).
    if let Some(unknown) = images
        .iter()
        .flatten()
        .find(|id| !uploaded.contains_key(*id) && !item.images.contains(id))
    {
        return Err(ApiError::param(format!(
            "image_id {unknown} does not exist: upload the image with media_space/upload_image first."
        )));
    }
    if item.deleted() {
        return Err(ApiError::business(
            "error_item_deleted",
            format!("Item {item_id} has been deleted."),
        ));
    }
    let mut echo = serde_json::Map::new();
    echo.insert("item_id".into(), json!(item_id));
    if let Some(n) = name {
        item.item_name = n.to_owned();
        echo.insert("item_name".into(), json!(n));
    }
    if let Some(d) = description {
        item.description = d.to_owned();
        echo.insert("description".into(), json!(d));
    }
    // Not echoed: the documented answer has no item_sku.
    if let Some(s) = item_sku {
        item.item_sku = s.to_owned();
    }
    if let Some(s) = status {
        item.item_status = s.to_owned();
        echo.insert("item_status".into(), json!(s));
    }
    if let Some(w) = weight {
        item.weight = Some(w);
        echo.insert("weight".into(), json!(w));
    }
    if let Some(d) = dimension {
        echo.insert("dimension".into(), d.clone());
        item.dimension = Some(d);
    }
    if let Some(i) = images {
        let urls: Vec<String> = i.iter().map(|id| image_url(id)).collect();
        echo.insert(
            "images".into(),
            json!({"image_id_list": i, "image_url_list": urls}),
        );
        item.images = i;
    }
    item.update_time = ctx.now;
    ok(Value::Object(echo))
}

/// The outlet shop an item of a batch addresses: the caller itself or an outlet of the calling mart.
fn outlet_shop(inner: &Inner, ctx: &Ctx, outlet: u64) -> ApiResult<u64> {
    if outlet == ctx.shop_id {
        return Ok(outlet);
    }
    match inner.shops.get(&outlet).map(|s| s.kind) {
        Some(ShopKind::Outlet { mart_shop_id }) if mart_shop_id == ctx.shop_id => Ok(outlet),
        _ => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "error_permission",
            format!("Shop {outlet} is not an outlet of mart shop {}.", ctx.shop_id),
        )),
    }
}

/// `{outlet_item_id}` -> `item_mapping_list[{mart_item_id, outlet_item_id, model_mapping[..]}]`. The outlet item is
/// looked up in the calling shop, or (a mart calling) in its outlets. Models map by `model_sku` to the mart item's
/// models when the mart item is seeded, else to the same `model_id` (sandbox choice: the seed holds no model map).
/// An unknown item is `error_item_not_found`; an item linked to no mart item answers an empty list.
pub(super) fn get_mart_item(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let id = args.req_u64("outlet_item_id")?;
    let candidates: Vec<u64> = std::iter::once(ctx.shop_id)
        .chain(inner.shops.iter().filter_map(|(shop_id, s)| match s.kind {
            ShopKind::Outlet { mart_shop_id } if mart_shop_id == ctx.shop_id => Some(*shop_id),
            _ => None,
        }))
        .collect();
    let item = candidates
        .iter()
        .find_map(|shop| inner.shops.get(shop)?.items.get(&id))
        .ok_or_else(|| item_not_found(id))?;
    let Some(link) = item.mart else {
        return ok(json!({"item_mapping_list": []}));
    };
    let mart_item = inner
        .shops
        .get(&link.mart_shop_id)
        .and_then(|s| s.items.get(&link.mart_item_id));
    let models: Vec<Value> = item
        .models
        .values()
        .map(|m| {
            let mart_model = mart_item
                .and_then(|mi| {
                    mi.models
                        .values()
                        .find(|mm| !m.model_sku.is_empty() && mm.model_sku == m.model_sku)
                })
                .map_or(m.model_id, |mm| mm.model_id);
            json!({"mart_model_id": mart_model, "outlet_model_id": m.model_id})
        })
        .collect();
    ok(json!({"item_mapping_list": [{
        "mart_item_id": link.mart_item_id, "outlet_item_id": id, "model_mapping": models,
    }]}))
}

/// get_batch_task_result's `task_type` for the two batch updates.
const TASK_PRICE: u64 = 1;
const TASK_STOCK: u64 = 2;

fn item_list_for_batch<'a>(args: &Args<'a>) -> ApiResult<Vec<Args<'a>>> {
    let list = args.objects("item_list")?;
    if list.is_empty() || list.len() > 100 {
        return Err(ApiError::param(
            "Wrong parameters, detail: item_list must hold between 1 and 100 items.",
        ));
    }
    Ok(list)
}

/// One item's outcome as batch task records: `{shop_id, item_id, model_id}` (one per model) and
/// `{shop_id, item_id, model_id, failed_reason}`.
fn batch_records(
    shop_id: u64,
    item_id: u64,
    outcome: ApiResult<(Vec<Value>, Vec<Value>)>,
    models: &[u64],
    success: &mut Vec<Value>,
    failed: &mut Vec<Value>,
) {
    match outcome {
        Ok((s, f)) => {
            let mut done: Vec<u64> = Vec::new();
            for v in s {
                let model_id = v["model_id"].as_u64().unwrap_or(0);
                if !done.contains(&model_id) {
                    done.push(model_id);
                    success.push(json!({"shop_id": shop_id, "item_id": item_id, "model_id": model_id}));
                }
            }
            for v in f {
                failed.push(
                    json!({"shop_id": shop_id, "item_id": item_id, "model_id": v["model_id"],
                    "failed_reason": v["failed_reason"]}),
                );
            }
        }
        Err(e) => {
            for model_id in models {
                failed.push(
                    json!({"shop_id": shop_id, "item_id": item_id, "model_id": model_id,
                    "failed_reason": e.message}),
                );
            }
        }
    }
}

fn new_task(inner: &mut Inner, task_type: u64, success: Vec<Value>, failed: Vec<Value>) -> u64 {
    let id = inner.next_task_id;
    inner.next_task_id += 1;
    let ready_at_ms = now_ms() + ms(inner.cfg.batch_task_delay);
    inner.tasks.insert(
        id,
        BatchTask {
            ready_at_ms,
            task_type,
            result: json!({"success_list": success, "failed_list": failed}),
        },
    );
    id
}

/// Sandbox choice: the changes apply at once; the result becomes readable after `batch_task_delay`. Every item
/// names its `outlet_shop_id` (the caller or one of the calling mart's outlets, else `error_permission`).
pub(super) fn batch_update_outlet_price(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let items = item_list_for_batch(args)?;
    let mut requests = Vec::new();
    for item in &items {
        let outlet = outlet_shop(inner, ctx, item.req_u64("outlet_shop_id")?)?;
        let prices = read_prices(&item.objects("price_list")?)?;
        requests.push((outlet, item.req_u64("item_id")?, prices));
    }
    let (mut success, mut failed) = (Vec::new(), Vec::new());
    for (outlet, item_id, prices) in requests {
        let models: Vec<u64> = prices.iter().map(|(m, _)| *m).collect();
        let outcome = apply_prices(inner, outlet, item_id, &prices, ctx.now);
        batch_records(outlet, item_id, outcome, &models, &mut success, &mut failed);
    }
    let task_id = new_task(inner, TASK_PRICE, success, failed);
    ok(json!({"task_id": task_id}))
}

pub(super) fn batch_update_outlet_stock(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let items = item_list_for_batch(args)?;
    let mut requests = Vec::new();
    for item in &items {
        let outlet = outlet_shop(inner, ctx, item.req_u64("outlet_shop_id")?)?;
        let updates = read_stocks(&item.objects("stock_list")?)?;
        requests.push((outlet, item.req_u64("item_id")?, updates));
    }
    let (mut success, mut failed) = (Vec::new(), Vec::new());
    for (outlet, item_id, updates) in requests {
        let models: Vec<u64> = updates.iter().map(|(m, _)| *m).collect();
        let outcome = apply_stocks(inner, outlet, item_id, &updates, ctx.now);
        batch_records(outlet, item_id, outcome, &models, &mut success, &mut failed);
    }
    let task_id = new_task(inner, TASK_STOCK, success, failed);
    ok(json!({"task_id": task_id}))
}

/// `task_type` (1 price, 2 stock) and `task_id` -> `publish_status` 1 (ongoing, empty lists) until
/// `batch_task_delay` passed, then 2 (finished) with `success_list` and `failed_list`. A task of another type or
/// an unknown id is `product.error_busi` (the documented error example: "task_type is invalid").
pub(super) fn get_batch_task_result(inner: &mut Inner, _ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let task_type = args.req_u64("task_type")?;
    let task_id = args.req_u64("task_id")?;
    let task = inner
        .tasks
        .get(&task_id)
        .ok_or_else(|| ApiError::business("product.error_busi", "task_id is invalid"))?;
    if task.task_type != task_type {
        return Err(ApiError::business("product.error_busi", "task_type is invalid"));
    }
    if now_ms() < task.ready_at_ms {
        return ok(json!({"publish_status": 1, "success_list": [], "failed_list": []}));
    }
    let mut result = task.result.clone();
    if let Some(obj) = result.as_object_mut() {
        obj.insert("publish_status".into(), json!(2));
    }
    ok(result)
}
