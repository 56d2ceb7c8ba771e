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

fn item_not_found(item_id: u64) -> ApiError {
    ApiError::business(
        "error_item_not_found",
        format!("Item {item_id} not found in this shop."),
    )
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

pub(super) fn get_item_list(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let offset = args.opt_u64("offset")?.unwrap_or(0);
    let page_size = args.req_u64("page_size")?;
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::param("page_size must be between 1 and 100."));
    }
    let mut statuses = args.str_list("item_status")?;
    if statuses.is_empty() {
        statuses.push("NORMAL".into());
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
                "weight": item.weight.map(|w| w.to_string()),
                "dimension": item.dimension,
                "image": {"image_id_list": item.images},
                "condition": "NEW",
            });
            if let (false, Some(m), Some(obj)) = (item.has_model(), item.models.get(&0), v.as_object_mut()) {
                obj.insert(
                    "price_info".into(),
                    price_info(inner, ctx.shop_id, id, m, ctx.now),
                );
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
                    "model_name": m.model_name,
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

fn failure(model_id: u64, code: &str, reason: &str) -> Value {
    json!({"model_id": model_id, "failed_reason": reason, "error": code})
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
            failures.push(failure(
                model_id,
                "error_item_deleted",
                "The item has been deleted.",
            ));
            continue;
        }
        let Some(model) = item.models.get_mut(&model_id) else {
            failures.push(failure(
                model_id,
                "error_model_not_found",
                "model_id does not exist in this item.",
            ));
            continue;
        };
        if model.price_locked {
            failures.push(failure(
                model_id,
                "error_cannot_update_price_in_promotion",
                "The price is locked by a promotion: it cannot be updated now.",
            ));
            continue;
        }
        if !price.is_finite() || price <= 0.0 {
            failures.push(failure(
                model_id,
                "error_price",
                "original_price must be greater than 0.",
            ));
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
            failures.push(failure(
                model_id,
                "error_item_deleted",
                "The item has been deleted.",
            ));
            continue;
        }
        let Some(model) = item.models.get_mut(&model_id) else {
            failures.push(failure(
                model_id,
                "error_model_not_found",
                "model_id does not exist in this item.",
            ));
            continue;
        };
        if entries.is_empty() {
            failures.push(failure(model_id, "error_param", "seller_stock is required."));
            continue;
        }
        if entries.iter().any(|(_, s)| *s < 0) {
            failures.push(failure(model_id, "error_stock", "stock must not be negative."));
            continue;
        }
        let multi_warehouse = model.stock.iter().any(|s| s.location_id.is_some());
        let mut new_stock = model.stock.clone();
        let mut problem = None;
        for (location, stock) in entries {
            match (multi_warehouse, location) {
                (true, None) => {
                    problem = Some("location_id is required: this shop has several warehouses.");
                }
                (true, Some(loc)) => match new_stock.iter_mut().find(|s| s.location_id.as_ref() == Some(loc))
                {
                    Some(s) => s.stock = *stock,
                    None => problem = Some("location_id is not a warehouse of this shop."),
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
            failures.push(failure(model_id, "error_location", problem));
            continue;
        }
        let total: i64 = new_stock.iter().map(|s| s.stock).sum();
        if total < reserved {
            failures.push(failure(
                model_id,
                "error_stock_less_than_promotion_reserved",
                &format!("Stock cannot be less than the stock reserved by promotions ({reserved})."),
            ));
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
    if let Some(s) = item_sku {
        item.item_sku = s.to_owned();
        echo.insert("item_sku".into(), json!(s));
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
        echo.insert("image".into(), json!({"image_id_list": i}));
        item.images = i;
    }
    item.update_time = ctx.now;
    ok(Value::Object(echo))
}

/// The outlet shop a Mart call addresses: `outlet_shop_id` (must be an outlet of the calling mart) or the caller.
fn outlet_shop(inner: &Inner, ctx: &Ctx, args: &Args) -> ApiResult<u64> {
    let Some(outlet) = args.opt_u64("outlet_shop_id")? else {
        return Ok(ctx.shop_id);
    };
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

pub(super) fn get_mart_item(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let outlet = outlet_shop(inner, ctx, args)?;
    let mut ids = args.u64_list("outlet_item_id_list")?;
    if let Some(id) = args.opt_u64("outlet_item_id")? {
        ids.push(id);
    }
    if ids.is_empty() || ids.len() > 50 {
        return Err(ApiError::param(
            "outlet_item_id (or outlet_item_id_list, up to 50) is required.",
        ));
    }
    let shop = inner.shops.get(&outlet);
    let (mut list, mut failures) = (Vec::new(), Vec::new());
    for id in ids {
        match shop.and_then(|s| s.items.get(&id)) {
            Some(item) => match item.mart {
                Some(link) => list.push(json!({
                    "outlet_shop_id": outlet, "outlet_item_id": id,
                    "mart_shop_id": link.mart_shop_id, "mart_item_id": link.mart_item_id,
                })),
                None => failures.push(
                    json!({"outlet_item_id": id, "failed_reason": "The item is not linked to a mart item."}),
                ),
            },
            None => failures
                .push(json!({"outlet_item_id": id, "failed_reason": "Item not found in this outlet shop."})),
        }
    }
    ok(json!({"item_list": list, "failure_list": failures}))
}

fn item_list_for_batch<'a>(args: &Args<'a>) -> ApiResult<Vec<Args<'a>>> {
    let list = args.objects("item_list")?;
    if list.is_empty() || list.len() > 100 {
        return Err(ApiError::param("item_list must hold between 1 and 100 items."));
    }
    Ok(list)
}

fn with_item(mut values: Vec<Value>, item_id: u64) -> Vec<Value> {
    for v in &mut values {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("item_id".into(), json!(item_id));
        }
    }
    values
}

fn new_task(inner: &mut Inner, success: Vec<Value>, failures: Vec<Value>) -> u64 {
    let id = inner.next_task_id;
    inner.next_task_id += 1;
    let ready_at_ms = now_ms() + ms(inner.cfg.batch_task_delay);
    inner.tasks.insert(
        id,
        BatchTask {
            ready_at_ms,
            result: json!({"success_list": success, "failure_list": failures}),
        },
    );
    id
}

/// Sandbox choice: the changes apply at once; the result becomes readable after `batch_task_delay`.
pub(super) fn batch_update_outlet_price(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let outlet = outlet_shop(inner, ctx, args)?;
    let (mut success, mut failures) = (Vec::new(), Vec::new());
    for item in item_list_for_batch(args)? {
        let item_id = item.req_u64("item_id")?;
        let mut models = item.objects("model_list")?;
        models.extend(item.objects("price_list")?);
        let prices = read_prices(&models)?;
        match apply_prices(inner, outlet, item_id, &prices, ctx.now) {
            Ok((s, f)) => {
                success.extend(with_item(s, item_id));
                failures.extend(with_item(f, item_id));
            }
            Err(e) => failures.push(
                json!({"item_id": item_id, "model_id": 0, "failed_reason": e.message, "error": e.error}),
            ),
        }
    }
    let task_id = new_task(inner, success, failures);
    ok(json!({"task_id": task_id}))
}

pub(super) fn batch_update_outlet_stock(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let outlet = outlet_shop(inner, ctx, args)?;
    let (mut success, mut failures) = (Vec::new(), Vec::new());
    for item in item_list_for_batch(args)? {
        let item_id = item.req_u64("item_id")?;
        let mut models = item.objects("model_list")?;
        models.extend(item.objects("stock_list")?);
        let updates = read_stocks(&models)?;
        match apply_stocks(inner, outlet, item_id, &updates, ctx.now) {
            Ok((s, f)) => {
                success.extend(with_item(s, item_id));
                failures.extend(with_item(f, item_id));
            }
            Err(e) => failures.push(
                json!({"item_id": item_id, "model_id": 0, "failed_reason": e.message, "error": e.error}),
            ),
        }
    }
    let task_id = new_task(inner, success, failures);
    ok(json!({"task_id": task_id}))
}

pub(super) fn get_batch_task_result(inner: &mut Inner, _ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let task_id = args.req_u64("task_id")?;
    let task = inner
        .tasks
        .get(&task_id)
        .ok_or_else(|| ApiError::param(format!("task_id {task_id} does not exist.")))?;
    if now_ms() < task.ready_at_ms {
        return ok(json!({"task_id": task_id, "status": "processing"}));
    }
    let mut result = task.result.clone();
    if let Some(obj) = result.as_object_mut() {
        obj.insert("task_id".into(), json!(task_id));
        obj.insert("status".into(), json!("done"));
    }
    ok(result)
}
