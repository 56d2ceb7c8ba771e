//! Orders: get_order_list (time range <= 15 days, cursor, page_size <= 100), get_order_detail (1..=50 order_sn,
//! optional fields), cancel_order (only before shipping, never after a tracking number exists).

use serde_json::{Map, Value, json};

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::state::{DAY, Inner, Logistics, Order};

pub(super) fn get_order_list(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let field = args.req_str("time_range_field")?;
    if field != "create_time" && field != "update_time" {
        return Err(ApiError::param(
            "time_range_field must be create_time or update_time.",
        ));
    }
    let from = args.req_i64("time_from")?;
    let to = args.req_i64("time_to")?;
    if to < from {
        return Err(ApiError::param("time_to must not be before time_from."));
    }
    if to - from > 15 * DAY {
        return Err(ApiError::param(
            "The time range (time_to - time_from) must not exceed 15 days.",
        ));
    }
    let page_size = args.req_u64("page_size")?;
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::param("page_size must be between 1 and 100."));
    }
    let status = args.opt_str("order_status")?.filter(|s| !s.is_empty());
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

pub(super) fn get_order_detail(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sns = args.str_list("order_sn_list")?;
    if sns.is_empty() || sns.len() > 50 {
        return Err(ApiError::param(format!(
            "order_sn_list must hold between 1 and 50 order_sn, got {}.",
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
        let mut o = Map::new();
        o.insert("order_sn".into(), json!(d.order_sn));
        o.insert("region".into(), json!("BR"));
        o.insert("currency".into(), json!("BRL"));
        o.insert("cod".into(), json!(false));
        o.insert("order_status".into(), json!(d.order_status));
        o.insert("create_time".into(), json!(order.create_time()));
        o.insert("update_time".into(), json!(order.update_time()));
        o.insert("days_to_ship".into(), json!(d.days_to_ship));
        o.insert(
            "ship_by_date".into(),
            json!(order.create_time() + i64::from(d.days_to_ship) * DAY),
        );
        o.insert("message_to_seller".into(), json!(d.message_to_seller));
        o.insert("fulfillment_flag".into(), json!("fulfilled_by_local_seller"));
        o.insert("split_up".into(), json!(false));
        let hide = masked(&d.order_status);
        if want("buyer_user_id") {
            o.insert("buyer_user_id".into(), json!(d.buyer_user_id));
        }
        if want("buyer_username") {
            o.insert("buyer_username".into(), json!(d.buyer_username));
        }
        if want("buyer_cpf_id") {
            let cpf = if hide {
                mask(&d.buyer_cpf_id)
            } else {
                d.buyer_cpf_id.clone()
            };
            o.insert("buyer_cpf_id".into(), json!(cpf));
        }
        if want("recipient_address") {
            let mut a = d.recipient_address.clone();
            if hide {
                a.name = mask(&a.name);
                a.phone = mask(&a.phone);
                a.full_address = mask(&a.full_address);
                a.geolocation = None;
            }
            if d.logistics_channel_id != 90026 {
                a.geolocation = None;
            }
            o.insert("recipient_address".into(), json!(a));
        }
        if want("item_list") {
            o.insert("item_list".into(), json!(d.item_list));
        }
        for (name, value) in [
            ("total_amount", json!(d.total_amount)),
            ("estimated_shipping_fee", json!(d.estimated_shipping_fee)),
            ("actual_shipping_fee", json!(d.actual_shipping_fee)),
            ("payment_method", json!(d.payment_method)),
            ("shipping_carrier", json!(d.shipping_carrier)),
            ("checkout_shipping_carrier", json!(d.shipping_carrier)),
            ("note", json!(d.note)),
            ("pay_time", json!(d.pay_time)),
            (
                "cancel_reason",
                json!(order.cancel_reason.clone().unwrap_or_default()),
            ),
            (
                "cancel_by",
                json!(if order.cancel_reason.is_some() {
                    "seller"
                } else {
                    ""
                }),
            ),
            ("invoice_data", Value::Null),
            (
                "edt",
                json!(order.create_time() + i64::from(d.days_to_ship) * DAY),
            ),
        ] {
            if want(name) {
                o.insert(name.into(), value);
            }
        }
        if want("package_list") {
            let items: Vec<Value> = d
                .item_list
                .iter()
                .map(|i| json!({"item_id": i.item_id, "model_id": i.model_id, "model_quantity": i.model_quantity_purchased}))
                .collect();
            o.insert(
                "package_list".into(),
                json!([{
                    "package_number": format!("PN{}", d.order_sn),
                    "logistics_status": order.logistics.as_str(),
                    "shipping_carrier": d.shipping_carrier,
                    "logistics_channel_id": d.logistics_channel_id,
                    "item_list": items,
                }]),
            );
        }
        list.push(Value::Object(o));
    }
    let warning = if missing.is_empty() {
        String::new()
    } else {
        format!("order_sn not found: {}", missing.join(","))
    };
    Ok(Out::Data {
        response: json!({"order_list": list}),
        warning,
    })
}

const CANCEL_REASONS: &[&str] = &[
    "OUT_OF_STOCK",
    "CUSTOMER_REQUEST",
    "UNDELIVERABLE_AREA",
    "COD_NOT_SUPPORTED",
];

pub(super) fn cancel_order(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let reason = args.req_str("cancel_reason")?;
    if !CANCEL_REASONS.contains(&reason) {
        return Err(ApiError::param(format!(
            "cancel_reason must be one of {}.",
            CANCEL_REASONS.join(", ")
        )));
    }
    let items = args.objects("item_list")?;
    if reason == "OUT_OF_STOCK" {
        if items.is_empty() {
            return Err(ApiError::param(
                "item_list is required when cancel_reason is OUT_OF_STOCK.",
            ));
        }
        for it in &items {
            it.req_u64("item_id")?;
            it.opt_u64("model_id")?;
        }
    }
    let order = inner
        .order_mut(ctx.shop_id, sn)
        .map_err(|_| ApiError::business("error_not_found", format!("Order {sn} not found.")))?;
    let cancellable = matches!(
        order.data.order_status.as_str(),
        "UNPAID" | "READY_TO_SHIP" | "PROCESSED" | "RETRY_SHIP" | "INVOICE_PENDING"
    ) && matches!(order.logistics, Logistics::NotStart | Logistics::RequestCreated)
        && order.data.tracking_number.as_deref().is_none_or(str::is_empty);
    if !cancellable {
        return Err(ApiError::business(
            "order.order_status_error",
            format!(
                "Order {sn} cannot be cancelled in status {} (logistics {}{}): only before shipping.",
                order.data.order_status,
                order.logistics.as_str(),
                if order.data.tracking_number.is_some() {
                    ", tracking number exists"
                } else {
                    ""
                }
            ),
        ));
    }
    order.data.order_status = "CANCELLED".into();
    order.data.update_time = Some(ctx.now.max(order.update_time()));
    order.cancel_reason = Some(reason.to_owned());
    let update_time = order.update_time();
    inner.order_push(ctx.shop_id, sn, "CANCELLED", update_time);
    ok(json!({"update_time": update_time}))
}
