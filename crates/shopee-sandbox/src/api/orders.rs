//! Orders: get_order_list (time range <= 15 days, cursor, page_size <= 100; `order_sn` only unless
//! `response_optional_fields=order_status`), get_order_detail (1..=50 order_sn, default and optional fields),
//! get_package_detail (the package's fulfillment status: on channel 90026 it moves while the order stays
//! READY_TO_SHIP), cancel_order (only the documented reasons, never once a tracking number exists).

use serde_json::{Map, Value, json};

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::state::{DAY, Inner, Logistics, Order};

/// What `order.order_list_invalid_time` says (get_order_list's documented error).
const INVALID_TIME: &str = "Start time must be earlier than end time and diff in 15days.";

pub(super) fn get_order_list(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let field = args.req_str("time_range_field")?;
    if field != "create_time" && field != "update_time" {
        return Err(ApiError::param(
            "Wrong parameters, detail: time_range_field must be create_time or update_time.",
        ));
    }
    let from = args.req_i64("time_from")?;
    let to = args.req_i64("time_to")?;
    if to < from || to - from > 15 * DAY {
        return Err(ApiError::business("order.order_list_invalid_time", INVALID_TIME));
    }
    let page_size = args.req_u64("page_size")?;
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::param(
            "Wrong parameters, detail: page_size must be between 1 and 100.",
        ));
    }
    let status = args.opt_str("order_status")?.filter(|s| !s.is_empty());
    let channel = args.opt_u64("logistics_channel_id")?;
    let with_status = args
        .str_list("response_optional_fields")?
        .iter()
        .any(|f| f == "order_status");
    let cursor = match args.opt_str("cursor")?.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(parse_cursor(c)?),
    };
    let key = |o: &Order| {
        let t = if field == "create_time" {
            o.create_time()
        } else {
            o.update_time()
        };
        (t, o.data.order_sn.clone())
    };
    let mut matching: Vec<(i64, String, String)> = inner
        .shops
        .get(&ctx.shop_id)
        .map(|shop| {
            shop.orders
                .values()
                .filter(|o| status.is_none_or(|s| o.data.order_status == s))
                .filter(|o| channel.is_none_or(|c| o.data.logistics_channel_id == c))
                .map(|o| {
                    let (t, sn) = key(o);
                    (t, sn, o.data.order_status.clone())
                })
                .filter(|(t, _, _)| (from..=to).contains(t))
                .collect()
        })
        .unwrap_or_default();
    matching.sort();
    let rest: Vec<_> = matching
        .into_iter()
        .filter(|(t, sn, _)| cursor.as_ref().is_none_or(|(ct, csn)| (t, sn) > (ct, csn)))
        .collect();
    let page_size = usize::try_from(page_size).unwrap_or(100);
    let page = &rest[..rest.len().min(page_size)];
    let more = rest.len() > page.len();
    let next_cursor = match page.last() {
        Some((t, sn, _)) if more => format!("{t}:{sn}"),
        _ => String::new(),
    };
    // Shopee: `order_sn` (and `booking_sn` for advance-fulfilment orders, not simulated) unless
    // `response_optional_fields=order_status`.
    let list: Vec<Value> = page
        .iter()
        .map(|(_, sn, st)| {
            if with_status {
                json!({"order_sn": sn, "order_status": st})
            } else {
                json!({"order_sn": sn})
            }
        })
        .collect();
    ok(json!({"more": more, "next_cursor": next_cursor, "order_list": list}))
}

fn parse_cursor(c: &str) -> ApiResult<(i64, String)> {
    let (t, sn) = c
        .split_once(':')
        .ok_or_else(|| ApiError::param("Invalid cursor: pass next_cursor back unchanged."))?;
    let t = t
        .parse()
        .map_err(|_| ApiError::param("Invalid cursor: pass next_cursor back unchanged."))?;
    Ok((t, sn.to_owned()))
}

/// States in which buyer data is masked (Brazil shows it from READY_TO_SHIP on).
fn masked(status: &str) -> bool {
    status == "UNPAID"
}

fn mask(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        "****".to_owned()
    }
}

/// The recipient address as the order detail and the package detail show it: masked while UNPAID, geolocation
/// only on channel 90026.
fn address(order: &Order) -> Value {
    let d = &order.data;
    let mut a = d.recipient_address.clone();
    if masked(&d.order_status) {
        a.name = mask(&a.name);
        a.phone = mask(&a.phone);
        a.full_address = mask(&a.full_address);
        a.geolocation = None;
    }
    if d.logistics_channel_id != 90026 {
        a.geolocation = None;
    }
    json!(a)
}

fn ship_by_date(order: &Order) -> i64 {
    order.create_time() + i64::from(order.data.days_to_ship) * DAY
}

/// The order's lines; a bundle-deal line has `model_discounted_price` 0 (Shopee does not break the bundle discount
/// down to items).
fn order_items(order: &Order) -> Value {
    let items: Vec<Value> = order
        .data
        .item_list
        .iter()
        .map(|i| {
            let mut v = json!(i);
            if i.promotion_type == "bundle_deal"
                && let Some(obj) = v.as_object_mut()
            {
                obj.insert("model_discounted_price".into(), json!(0.0));
            }
            v
        })
        .collect();
    json!(items)
}

fn package_items(order: &Order) -> Vec<Value> {
    order
        .data
        .item_list
        .iter()
        .map(|i| {
            json!({"item_id": i.item_id, "model_id": i.model_id, "model_quantity": i.model_quantity_purchased,
                "order_item_id": i.order_item_id, "promotion_group_id": 0})
        })
        .collect()
}

pub(super) fn get_order_detail(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sns = args.str_list("order_sn_list")?;
    if sns.is_empty() || sns.len() > 50 {
        return Err(ApiError::param(format!(
            "Wrong parameters, detail: order_sn_list must hold between 1 and 50 order_sn, got {}.",
            sns.len()
        )));
    }
    let fields = args.str_list("response_optional_fields")?;
    let want = |f: &str| fields.iter().any(|x| x == f);
    let shop = inner.shops.get(&ctx.shop_id);
    let mut list = Vec::new();
    let mut missing = Vec::new();
    for sn in &sns {
        let Some(order) = shop.and_then(|s| s.orders.get(sn)) else {
            missing.push(sn.clone());
            continue;
        };
        let d = &order.data;
        // Returned by default.
        let mut o = Map::new();
        o.insert("order_sn".into(), json!(d.order_sn));
        o.insert("region".into(), json!("BR"));
        o.insert("currency".into(), json!("BRL"));
        o.insert("cod".into(), json!(false));
        o.insert("order_status".into(), json!(d.order_status));
        o.insert("create_time".into(), json!(order.create_time()));
        o.insert("update_time".into(), json!(order.update_time()));
        o.insert("days_to_ship".into(), json!(d.days_to_ship));
        o.insert("ship_by_date".into(), json!(ship_by_date(order)));
        o.insert("message_to_seller".into(), json!(d.message_to_seller));
        // Only when asked for.
        let hide = masked(&d.order_status);
        let cpf = if hide {
            mask(&d.buyer_cpf_id)
        } else {
            d.buyer_cpf_id.clone()
        };
        let cancelled = d.order_status == "CANCELLED";
        let cancel_by = match (&order.cancel_reason, cancelled) {
            (Some(_), _) => "seller",
            (None, true) => "system",
            (None, false) => "",
        };
        let optional = [
            ("buyer_user_id", json!(d.buyer_user_id)),
            ("buyer_username", json!(d.buyer_username)),
            ("buyer_cpf_id", json!(cpf)),
            ("recipient_address", address(order)),
            ("item_list", order_items(order)),
            ("total_amount", json!(d.total_amount)),
            ("estimated_shipping_fee", json!(d.estimated_shipping_fee)),
            ("actual_shipping_fee", json!(d.actual_shipping_fee)),
            ("actual_shipping_fee_confirmed", json!(false)),
            ("payment_method", json!(d.payment_method)),
            ("shipping_carrier", json!(d.shipping_carrier)),
            ("checkout_shipping_carrier", json!(d.shipping_carrier)),
            ("note", json!(d.note)),
            // Shopee: NULL while unpaid; the sandbox leaves it out (no documented field is nullable).
            ("pay_time", json!(d.pay_time)),
            (
                "cancel_reason",
                json!(order.cancel_reason.clone().unwrap_or_default()),
            ),
            ("buyer_cancel_reason", json!("")),
            ("cancel_by", json!(cancel_by)),
            ("fulfillment_flag", json!("fulfilled_by_local_seller")),
            ("split_up", json!(false)),
            ("goods_to_declare", json!(false)),
            ("pickup_done_time", json!(order.pickup_done_time.unwrap_or(0))),
        ];
        for (name, value) in optional {
            if want(name) && !value.is_null() {
                o.insert(name.into(), value);
            }
        }
        if want("edt") {
            o.insert("edt_from".into(), json!(ship_by_date(order)));
            o.insert("edt_to".into(), json!(ship_by_date(order) + DAY));
        }
        if want("package_list") {
            o.insert(
                "package_list".into(),
                json!([{
                    "package_number": order.package_number(),
                    "logistics_status": order.package_status(),
                    "shipping_carrier": d.shipping_carrier,
                    "logistics_channel_id": d.logistics_channel_id,
                    "allow_self_design_awb": false,
                    "item_list": package_items(order),
                }]),
            );
        }
        list.push(Value::Object(o));
    }
    let warning = missing
        .iter()
        .map(|sn| format!("order_sn {sn} not found"))
        .collect();
    Ok(Out::Data {
        response: json!({"order_list": list}),
        warning,
    })
}

/// `package_number_list` (comma-joined, 1..=50) -> `package_list`; unknown numbers are left out and named in
/// `warning`.
pub(super) fn get_package_detail(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let numbers = args.str_list("package_number_list")?;
    if numbers.is_empty() || numbers.len() > 50 {
        return Err(ApiError::param(format!(
            "Wrong parameters, detail: package_number_list must hold between 1 and 50 package numbers, got {}.",
            numbers.len()
        )));
    }
    let shop = inner.shops.get(&ctx.shop_id);
    let mut list = Vec::new();
    let mut missing = Vec::new();
    for number in &numbers {
        let order = number
            .strip_prefix("PN")
            .and_then(|sn| shop.and_then(|s| s.orders.get(sn)));
        let Some(order) = order else {
            missing.push(number.clone());
            continue;
        };
        let d = &order.data;
        let items: Vec<Value> = d
            .item_list
            .iter()
            .map(|i| {
                json!({"item_id": i.item_id, "model_id": i.model_id, "item_sku": i.item_sku,
                    "model_sku": i.model_sku, "model_quantity": i.model_quantity_purchased,
                    "order_item_id": i.order_item_id, "promotion_group_id": 0})
            })
            .collect();
        let mut p = json!({
            "order_sn": d.order_sn,
            "package_number": order.package_number(),
            "fulfillment_status": order.package_status(),
            "update_time": order.package_update_time.max(order.update_time()),
            "logistics_channel_id": d.logistics_channel_id,
            "shipping_carrier": d.shipping_carrier,
            "allow_self_design_awb": false,
            "days_to_ship": d.days_to_ship,
            "ship_by_date": ship_by_date(order),
            "pending_terms": [],
            "pending_description": [],
            "tracking_number": d.tracking_number.clone().unwrap_or_default(),
            "is_split_up": false,
            "item_list": items,
            "recipient_address": address(order),
            "is_shipment_arranged": order.shipment_arranged(),
        });
        if let (Some(t), Some(obj)) = (order.pickup_done_time, p.as_object_mut()) {
            obj.insert("pickup_done_time".into(), json!(t));
        }
        list.push(p);
    }
    let warning = if missing.is_empty() {
        Vec::new()
    } else {
        vec![format!("package_number not found: {}", missing.join(","))]
    };
    Ok(Out::Data {
        response: json!({"package_list": list}),
        warning,
    })
}

/// cancel_order's `cancel_reason` values as v2.order.cancel_order and the Brazil guide "APIs de orders" list them
/// (the API reference notes UNDELIVERABLE_AREA as TW/MY only; the Brazil guide lists it for Brazil: accepted).
const CANCEL_REASONS: &[&str] = &[
    "OUT_OF_STOCK",
    "CUSTOMER_REQUEST",
    "UNDELIVERABLE_AREA",
    "COD_NOT_SUPPORTED",
];

/// `order.error_limit`'s message ("APIs de orders": a tracking number exists, or the order is already cancelled).
const CANNOT_CANCEL: &str = "Can not cancel this order.";

pub(super) fn cancel_order(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let reason = args.req_str("cancel_reason")?;
    if !CANCEL_REASONS.contains(&reason) {
        return Err(ApiError::param(format!(
            "Wrong parameters, detail: cancel_reason must be one of {}.",
            CANCEL_REASONS.join(", ")
        )));
    }
    let items = args.objects("item_list")?;
    if reason == "OUT_OF_STOCK" && items.is_empty() {
        return Err(ApiError::param(
            "Wrong parameters, detail: item_list is required when cancel_reason is OUT_OF_STOCK.",
        ));
    }
    let order = inner.order_mut(ctx.shop_id, sn).map_err(|_| {
        ApiError::business(
            "error_not_found",
            format!("Wrong parameters, detail: order {sn} not found."),
        )
    })?;
    // Before shipping only: not once a tracking number exists, not after pickup, not once cancelled.
    let cancellable = matches!(
        order.data.order_status.as_str(),
        "UNPAID" | "READY_TO_SHIP" | "PROCESSED" | "RETRY_SHIP" | "INVOICE_PENDING"
    ) && matches!(order.logistics, Logistics::NotStart | Logistics::RequestCreated)
        && order.data.tracking_number.as_deref().is_none_or(str::is_empty);
    if !cancellable {
        return Err(ApiError::business("order.error_limit", CANNOT_CANCEL));
    }
    order.data.order_status = "CANCELLED".into();
    order.data.update_time = Some(ctx.now.max(order.update_time()));
    order.package_update_time = ctx.now;
    order.cancel_reason = Some(reason.to_owned());
    let update_time = order.update_time();
    inner.order_push(ctx.shop_id, sn, "CANCELLED", update_time);
    ok(json!({"update_time": update_time}))
}
