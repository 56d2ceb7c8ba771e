//! Discounts with Shopee's rules: start > now + 1 h, period between 1 h and 180 days, <= 50 items per call,
//! <= 1,000 items per discount, <= 1,000 upcoming + ongoing discounts per shop, an item in one active discount at a
//! time, a promotion price below the original price (and at most 90 % off: sandbox choice), start only later and
//! end only earlier, promotion stock not editable, end only ongoing (>= 1 h after start), delete only upcoming.

use serde_json::{Value, json};

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::state::{DAY, Discount, DiscountItem, DiscountModel, Inner, money};

const HOUR: i64 = 3600;

fn discount_error(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::business(code, message)
}

fn find<'a>(inner: &'a mut Inner, ctx: &Ctx, id: u64) -> ApiResult<&'a mut Discount> {
    inner
        .shops
        .get_mut(&ctx.shop_id)
        .and_then(|s| s.discounts.get_mut(&id))
        .ok_or_else(|| discount_error("discount.discount_not_found", format!("Discount {id} not found.")))
}

fn check_period(start: i64, end: i64) -> ApiResult<()> {
    if end - start < HOUR {
        return Err(discount_error(
            "discount.error_end_time",
            "end_time must be at least 1 hour after start_time.",
        ));
    }
    if end - start >= 180 * DAY {
        return Err(discount_error(
            "discount.error_end_time",
            "The discount period must be shorter than 180 days.",
        ));
    }
    Ok(())
}

pub(super) fn add_discount(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let name = args.req_str("discount_name")?;
    let start = args.req_i64("start_time")?;
    let end = args.req_i64("end_time")?;
    if start <= ctx.now + HOUR {
        return Err(discount_error(
            "discount.error_start_time",
            "start_time must be more than 1 hour from now.",
        ));
    }
    check_period(start, end)?;
    let active = inner
        .shops
        .get(&ctx.shop_id)
        .map_or(0, |s| s.discounts.values().filter(|d| d.active(ctx.now)).count());
    if active >= 1000 {
        return Err(discount_error(
            "discount.error_discount_limit",
            "A shop may have at most 1,000 upcoming and ongoing discounts.",
        ));
    }
    inner.next_discount_id += 1;
    let id = inner.next_discount_id;
    inner.shop_mut(ctx.shop_id).discounts.insert(
        id,
        Discount {
            discount_id: id,
            name: name.to_owned(),
            start_time: start,
            end_time: end,
            items: Default::default(),
        },
    );
    ok(json!({"discount_id": id}))
}

fn item_error(item_id: u64, model_id: u64, code: &str, message: impl Into<String>) -> Value {
    json!({"item_id": item_id, "model_id": model_id, "fail_error": code, "fail_message": message.into()})
}

struct ItemRequest {
    item_id: u64,
    purchase_limit: Option<u32>,
    /// (model_id, promotion price, promotion stock)
    models: Vec<(u64, Option<f64>, Option<i64>)>,
}

fn read_items(args: &Args) -> ApiResult<Vec<ItemRequest>> {
    let list = args.objects("item_list")?;
    if list.is_empty() || list.len() > 50 {
        return Err(ApiError::param("item_list must hold between 1 and 50 items."));
    }
    list.iter()
        .map(|it| {
            let item_id = it.req_u64("item_id")?;
            let purchase_limit = it
                .opt_u64("purchase_limit")?
                .map(|l| u32::try_from(l).unwrap_or(u32::MAX));
            let mut models = it
                .objects("model_list")?
                .iter()
                .map(|m| {
                    Ok((
                        m.req_u64("model_id")?,
                        m.opt_f64("model_promotion_price")?,
                        m.opt_i64("model_promotion_stock")?,
                    ))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            if models.is_empty() && (it.has("item_promotion_price") || it.has("item_promotion_stock")) {
                models.push((
                    0,
                    it.opt_f64("item_promotion_price")?,
                    it.opt_i64("item_promotion_stock")?,
                ));
            }
            Ok(ItemRequest {
                item_id,
                purchase_limit,
                models,
            })
        })
        .collect()
}

/// Checks one item against the shop's catalog and the other discounts; the errors, if any.
fn check_item(inner: &Inner, ctx: &Ctx, discount_id: u64, req: &ItemRequest, adding: bool) -> Vec<Value> {
    let id = req.item_id;
    let Some(shop) = inner.shops.get(&ctx.shop_id) else {
        return vec![item_error(id, 0, "discount.item_not_found", "Item not found.")];
    };
    let Some(item) = shop.items.get(&id) else {
        return vec![item_error(id, 0, "discount.item_not_found", "Item not found.")];
    };
    if item.deleted() {
        return vec![item_error(
            id,
            0,
            "discount.item_deleted",
            "The item has been deleted.",
        )];
    }
    let Some(this) = shop.discounts.get(&discount_id) else {
        return vec![item_error(
            id,
            0,
            "discount.discount_not_found",
            "Discount not found.",
        )];
    };
    if adding {
        if this.items.contains_key(&id) {
            return vec![item_error(
                id,
                0,
                "discount.item_already_in_discount",
                "The item is already in this discount: use update_discount_item.",
            )];
        }
        if let Some(other) = shop.discounts.values().find(|d| {
            d.discount_id != discount_id
                && d.active(ctx.now)
                && d.items.contains_key(&id)
                && d.start_time < this.end_time
                && this.start_time < d.end_time
        }) {
            return vec![item_error(
                id,
                0,
                "discount.item_already_in_promotion",
                format!(
                    "The item is already in another promotion (discount {}).",
                    other.discount_id
                ),
            )];
        }
    } else if !this.items.contains_key(&id) {
        return vec![item_error(
            id,
            0,
            "discount.item_not_in_discount",
            "The item is not in this discount.",
        )];
    }
    if req.models.is_empty() {
        let what = if item.has_model() {
            "model_list"
        } else {
            "item_promotion_price"
        };
        return vec![item_error(
            id,
            0,
            "discount.error_param",
            format!("{what} is required for this item."),
        )];
    }
    let mut errors = Vec::new();
    for &(model_id, price, stock) in &req.models {
        let Some(model) = item.models.get(&model_id) else {
            errors.push(item_error(
                id,
                model_id,
                "discount.model_not_found",
                "model_id does not exist in this item.",
            ));
            continue;
        };
        match price {
            None if adding => errors.push(item_error(
                id,
                model_id,
                "discount.error_param",
                "A promotion price is required.",
            )),
            None => {}
            Some(p) if p >= model.original_price => errors.push(item_error(
                id,
                model_id,
                "discount.promotion_price_too_high",
                format!(
                    "The promotion price {p:.2} must be below the original price {:.2}.",
                    model.original_price
                ),
            )),
            Some(p) if p <= 0.0 || p < model.original_price * 0.1 => errors.push(item_error(
                id,
                model_id,
                "discount.promotion_price_too_low",
                "The promotion price may be at most 90% below the original price.",
            )),
            Some(_) => {}
        }
        if let Some(s) = stock {
            if adding && (s < 0 || s > model.total_stock()) {
                errors.push(item_error(
                    id,
                    model_id,
                    "discount.promotion_stock_invalid",
                    "The promotion stock must be between 0 and the item's stock.",
                ));
            }
            if !adding {
                let current = this
                    .items
                    .get(&id)
                    .and_then(|i| i.models.get(&model_id))
                    .map(|m| m.promotion_stock);
                if current != Some(s) {
                    errors.push(item_error(
                        id,
                        model_id,
                        "discount.promotion_stock_not_editable",
                        "Promotion stock cannot be edited: delete the item and add it again.",
                    ));
                }
            }
        }
    }
    errors
}

fn require_editable(d: &Discount, now: i64) -> ApiResult<()> {
    if d.active(now) {
        Ok(())
    } else {
        Err(discount_error(
            "discount.discount_expired",
            format!("Discount {} has ended.", d.discount_id),
        ))
    }
}

pub(super) fn add_discount_item(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let requests = read_items(args)?;
    require_editable(find(inner, ctx, discount_id)?, ctx.now)?;
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for req in requests {
        let e = check_item(inner, ctx, discount_id, &req, true);
        if e.is_empty() {
            accepted.push(req);
        } else {
            errors.extend(e);
        }
    }
    let discount = find(inner, ctx, discount_id)?;
    let mut count = 0;
    for req in accepted {
        if discount.items.len() >= 1000 {
            errors.push(item_error(
                req.item_id,
                0,
                "discount.item_limit",
                "A discount holds at most 1,000 items.",
            ));
            continue;
        }
        let models = req
            .models
            .iter()
            .map(|&(model_id, price, stock)| {
                (
                    model_id,
                    DiscountModel {
                        promotion_price: money(price.unwrap_or_default()),
                        promotion_stock: stock.unwrap_or(0),
                    },
                )
            })
            .collect();
        discount.items.insert(
            req.item_id,
            DiscountItem {
                purchase_limit: req.purchase_limit.unwrap_or(0),
                models,
            },
        );
        count += 1;
    }
    ok(json!({"discount_id": discount_id, "count": count, "error_list": errors}))
}

pub(super) fn update_discount_item(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let requests = read_items(args)?;
    require_editable(find(inner, ctx, discount_id)?, ctx.now)?;
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for req in requests {
        let e = check_item(inner, ctx, discount_id, &req, false);
        if e.is_empty() {
            accepted.push(req);
        } else {
            errors.extend(e);
        }
    }
    let discount = find(inner, ctx, discount_id)?;
    let mut count = 0;
    for req in accepted {
        let Some(item) = discount.items.get_mut(&req.item_id) else {
            continue;
        };
        if let Some(limit) = req.purchase_limit {
            item.purchase_limit = limit;
        }
        for (model_id, price, _) in req.models {
            let entry = item.models.entry(model_id).or_default();
            if let Some(p) = price {
                entry.promotion_price = money(p);
            }
        }
        count += 1;
    }
    ok(json!({"discount_id": discount_id, "count": count, "error_list": errors}))
}

pub(super) fn delete_discount_item(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let item_id = args.req_u64("item_id")?;
    let model_id = args.opt_u64("model_id")?;
    let discount = find(inner, ctx, discount_id)?;
    require_editable(discount, ctx.now)?;
    let mut errors = Vec::new();
    match (discount.items.get_mut(&item_id), model_id) {
        (None, _) => errors.push(item_error(
            item_id,
            model_id.unwrap_or(0),
            "discount.item_not_in_discount",
            "The item is not in this discount.",
        )),
        (Some(item), Some(m)) if m != 0 => {
            if item.models.remove(&m).is_none() {
                errors.push(item_error(
                    item_id,
                    m,
                    "discount.model_not_in_discount",
                    "The model is not in this discount.",
                ));
            }
            if item.models.is_empty() {
                discount.items.remove(&item_id);
            }
        }
        (Some(_), _) => {
            discount.items.remove(&item_id);
        }
    }
    ok(json!({"discount_id": discount_id, "error_list": errors}))
}

pub(super) fn update_discount(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let name = args.opt_str("discount_name")?;
    let start = args.opt_i64("start_time")?;
    let end = args.opt_i64("end_time")?;
    let now = ctx.now;
    let d = find(inner, ctx, discount_id)?;
    let status = d.status(now);
    if status == "expired" {
        return Err(discount_error(
            "discount.discount_expired",
            "An ended discount cannot be updated.",
        ));
    }
    let new_start = start.unwrap_or(d.start_time);
    let new_end = end.unwrap_or(d.end_time);
    if new_start != d.start_time {
        if status == "ongoing" {
            return Err(discount_error(
                "discount.error_start_time",
                "The start_time of an ongoing discount cannot change.",
            ));
        }
        if new_start < d.start_time {
            return Err(discount_error(
                "discount.error_start_time",
                "start_time can only be moved later.",
            ));
        }
    }
    if new_end > d.end_time {
        return Err(discount_error(
            "discount.error_end_time",
            "end_time can only be moved earlier.",
        ));
    }
    if new_end <= now {
        return Err(discount_error(
            "discount.error_end_time",
            "end_time must be in the future.",
        ));
    }
    check_period(new_start, new_end)?;
    if let Some(n) = name {
        if n.trim().is_empty() {
            return Err(ApiError::param("discount_name must not be empty."));
        }
        d.name = n.to_owned();
    }
    d.start_time = new_start;
    d.end_time = new_end;
    ok(json!({"discount_id": discount_id, "modify_time": now}))
}

pub(super) fn end_discount(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let d = find(inner, ctx, discount_id)?;
    if d.status(ctx.now) != "ongoing" {
        return Err(discount_error(
            "discount.discount_not_ongoing",
            format!(
                "Only an ongoing discount can be ended; this one is {}.",
                d.status(ctx.now)
            ),
        ));
    }
    if ctx.now < d.start_time + HOUR {
        return Err(discount_error(
            "discount.error_end_time",
            "A discount can be ended only 1 hour after it started.",
        ));
    }
    d.end_time = ctx.now;
    ok(json!({"discount_id": discount_id, "modify_time": ctx.now}))
}

pub(super) fn delete_discount(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let status = find(inner, ctx, discount_id)?.status(ctx.now);
    match status {
        "upcoming" => {}
        "ongoing" => {
            return Err(discount_error(
                "discount.discount_ongoing",
                "An ongoing discount cannot be deleted: end it with end_discount.",
            ));
        }
        _ => {
            return Err(discount_error(
                "discount.discount_expired",
                "An ended discount cannot be deleted.",
            ));
        }
    }
    if let Some(shop) = inner.shops.get_mut(&ctx.shop_id) {
        shop.discounts.remove(&discount_id);
    }
    ok(json!({"discount_id": discount_id, "modify_time": ctx.now}))
}

fn paging(args: &Args) -> ApiResult<(usize, usize)> {
    let page_no = args.opt_u64("page_no")?.unwrap_or(1);
    let page_size = args.opt_u64("page_size")?.unwrap_or(100);
    if page_no == 0 || !(1..=100).contains(&page_size) {
        return Err(ApiError::param(
            "page_no starts at 1 and page_size must be between 1 and 100.",
        ));
    }
    let size = usize::try_from(page_size).unwrap_or(100);
    let skip = usize::try_from(page_no - 1)
        .unwrap_or(usize::MAX)
        .saturating_mul(size);
    Ok((skip, size))
}

pub(super) fn get_discount(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let discount_id = args.req_u64("discount_id")?;
    let (skip, size) = paging(args)?;
    let d = find(inner, ctx, discount_id)?.clone();
    let shop = inner.shops.get(&ctx.shop_id);
    let items: Vec<Value> = d
        .items
        .iter()
        .skip(skip)
        .take(size)
        .map(|(item_id, it)| {
            let item = shop.and_then(|s| s.items.get(item_id));
            let models: Vec<Value> = it
                .models
                .iter()
                .map(|(model_id, m)| {
                    let model = item.and_then(|i| i.models.get(model_id));
                    json!({
                        "model_id": model_id,
                        "model_name": model.map(|m| m.model_name.clone()).unwrap_or_default(),
                        "model_original_price": model.map(|m| m.original_price),
                        "model_promotion_price": m.promotion_price,
                        "model_promotion_stock": m.promotion_stock,
                        "model_normal_stock": model.map(|m| m.total_stock()),
                    })
                })
                .collect();
            let single = it.models.get(&0);
            let base = item.and_then(|i| i.models.get(&0));
            json!({
                "item_id": item_id,
                "item_name": item.map(|i| i.item_name.clone()).unwrap_or_default(),
                "purchase_limit": it.purchase_limit,
                "item_original_price": base.map(|m| m.original_price),
                "item_promotion_price": single.map(|m| m.promotion_price),
                "item_promotion_stock": single.map(|m| m.promotion_stock),
                "normal_stock": base.map(|m| m.total_stock()),
                "model_list": if single.is_some() { json!([]) } else { json!(models) },
            })
        })
        .collect();
    ok(json!({
        "discount_id": d.discount_id,
        "discount_name": d.name,
        "start_time": d.start_time,
        "end_time": d.end_time,
        "status": d.status(ctx.now),
        "item_list": items,
        "more": d.items.len() > skip + size,
    }))
}

pub(super) fn get_discount_list(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let status = args.req_str("discount_status")?;
    if !["upcoming", "ongoing", "expired", "all"].contains(&status) {
        return Err(ApiError::param(
            "discount_status must be upcoming, ongoing, expired or all.",
        ));
    }
    let (skip, size) = paging(args)?;
    let all: Vec<&Discount> = inner
        .shops
        .get(&ctx.shop_id)
        .map(|s| {
            s.discounts
                .values()
                .filter(|d| status == "all" || d.status(ctx.now) == status)
                .collect()
        })
        .unwrap_or_default();
    let list: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(size)
        .map(|d| {
            json!({
                "discount_id": d.discount_id, "discount_name": d.name, "start_time": d.start_time,
                "end_time": d.end_time, "status": d.status(ctx.now), "source": 0,
            })
        })
        .collect();
    ok(json!({"discount_list": list, "more": all.len() > skip + size}))
}
