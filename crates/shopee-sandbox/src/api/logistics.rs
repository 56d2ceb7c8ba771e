//! Seller-managed logistics: get_shipping_parameter, ship_order (exactly one of pickup | dropoff | non_integrated),
//! update_tracking_status (pickup done, then delivered or failed, both final) and get_tracking_number.
//!
//! Order status follows the logistics state: ship_order -> PROCESSED, pickup done -> SHIPPED, delivered ->
//! TO_CONFIRM_RECEIVE, delivery failed -> CANCELLED (sandbox choice). Each change is pushed (code 3).

use serde_json::json;

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::state::{Inner, Logistics, Order};

const FAILED_REASONS: &[&str] = &[
    "buyer_unreachable",
    "buyer_unresponsive",
    "no_delivery_location_consensus",
];

fn find<'a>(inner: &'a mut Inner, ctx: &Ctx, sn: &str) -> ApiResult<&'a mut Order> {
    inner
        .order_mut(ctx.shop_id, sn)
        .map_err(|_| ApiError::business("logistics.order_not_found", format!("Order {sn} not found.")))
}

fn status_error(message: String) -> ApiError {
    ApiError::business("logistics.order_status_error", message)
}

pub(super) fn get_shipping_parameter(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let order = find(inner, ctx, sn)?;
    let mode = order.shipping_mode().to_owned();
    let info: Vec<&str> = match mode.as_str() {
        "pickup" => vec!["address_id", "pickup_time_id"],
        "dropoff" => vec!["branch_id"],
        _ => vec!["tracking_number"],
    };
    let mut info_needed = serde_json::Map::new();
    info_needed.insert(mode.clone(), json!(info));
    let mut response = json!({"info_needed": info_needed});
    if let Some(obj) = response.as_object_mut() {
        match mode.as_str() {
            "pickup" => {
                obj.insert(
                    "pickup".into(),
                    json!({"address_list": [{"address_id": 1, "region": "BR", "state": "SP", "city": "São Paulo",
                        "address": "Rua do Vendedor, 1", "zipcode": "01310100", "address_flag": ["pickup_address"],
                        "time_slot_list": [{"date": ctx.now + 86_400, "pickup_time_id": "1"}]}]}),
                );
            }
            "dropoff" => {
                obj.insert("dropoff".into(), json!({"branch_list": [{"branch_id": 1, "region": "BR", "state": "SP", "city": "São Paulo", "address": "Agência 1", "zipcode": "01310100"}]}));
            }
            _ => {}
        }
    }
    ok(response)
}

pub(super) fn ship_order(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let given: Vec<&str> = ["pickup", "dropoff", "non_integrated"]
        .into_iter()
        .filter(|k| args.has(k))
        .collect();
    if given.len() != 1 {
        return Err(ApiError::param(
            "Exactly one of pickup, dropoff or non_integrated is required.",
        ));
    }
    let mode = given[0];
    let tracking = match args.opt_object(mode)? {
        Some(obj) if mode == "non_integrated" => obj.opt_str("tracking_number")?.map(str::to_owned),
        _ => None,
    };
    let generated = format!("BR{}", inner.token("tracking")[..12].to_ascii_uppercase());
    let order = find(inner, ctx, sn)?;
    if order.shipping_mode() != mode {
        return Err(ApiError::business(
            "logistics.ship_order_invalid_parameter",
            format!(
                "Order {sn} ships with {}, not {mode}: see get_shipping_parameter.",
                order.shipping_mode()
            ),
        ));
    }
    if !matches!(order.data.order_status.as_str(), "READY_TO_SHIP" | "RETRY_SHIP")
        || order.logistics != Logistics::NotStart
    {
        return Err(status_error(format!(
            "Order {sn} cannot be shipped in status {} (logistics {}).",
            order.data.order_status,
            order.logistics.as_str()
        )));
    }
    order.logistics = Logistics::RequestCreated;
    order.data.tracking_number = match (mode, tracking) {
        ("non_integrated", t) => t.filter(|t| !t.is_empty()),
        _ => Some(generated),
    };
    order.data.order_status = "PROCESSED".into();
    order.data.update_time = Some(ctx.now.max(order.update_time()));
    let update_time = order.update_time();
    inner.order_push(ctx.shop_id, sn, "PROCESSED", update_time);
    ok(json!({}))
}

pub(super) fn update_tracking_status(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let raw = args.req_str("logistics_status")?;
    let accept_legacy = inner.cfg.accept_logistic_spelling;
    let status = match raw.strip_prefix("logistic_") {
        Some(rest) if accept_legacy && !rest.starts_with("s_") => format!("logistics_{rest}"),
        _ => raw.to_owned(),
    };
    let failed_reason = args.opt_str("failed_reason")?.filter(|r| !r.is_empty());
    if let Some(r) = failed_reason
        && !FAILED_REASONS.contains(&r)
    {
        return Err(ApiError::param(format!(
            "failed_reason must be one of {}.",
            FAILED_REASONS.join(", ")
        )));
    }
    let tracking_number = args.opt_str("tracking_number")?.filter(|t| !t.is_empty());
    let tracking_url = args.opt_str("tracking_url")?.filter(|t| !t.is_empty());
    let order = find(inner, ctx, sn)?;
    let (next, order_status) = match status.as_str() {
        "logistics_pickup_done" => (Logistics::PickupDone, "SHIPPED"),
        "logistics_delivery_done" => (Logistics::DeliveryDone, "TO_CONFIRM_RECEIVE"),
        "logistics_delivery_failed" => (Logistics::DeliveryFailed, "CANCELLED"),
        _ => {
            return Err(ApiError::param(
                "logistics_status must be logistics_pickup_done, logistics_delivery_done or logistics_delivery_failed.",
            ));
        }
    };
    let allowed = match next {
        Logistics::PickupDone => order.logistics == Logistics::RequestCreated,
        _ => order.logistics == Logistics::PickupDone,
    };
    if !allowed {
        return Err(status_error(format!(
            "Order {sn}: {status} is not allowed from {} (ship_order, then pickup done, then delivered or failed; the last two are final).",
            order.logistics.as_str()
        )));
    }
    if next == Logistics::DeliveryFailed
        && failed_reason.is_none()
        && order.data.logistics_channel_id == 90026
    {
        return Err(ApiError::param(
            "failed_reason is required for logistics_delivery_failed on channel 90026.",
        ));
    }
    order.logistics = next;
    if next == Logistics::DeliveryFailed {
        order.failed_reason = failed_reason.map(str::to_owned);
    }
    if let Some(t) = tracking_number {
        order.data.tracking_number = Some(t.to_owned());
    }
    if let Some(u) = tracking_url {
        order.tracking_url = Some(u.to_owned());
    }
    order.data.order_status = order_status.into();
    order.data.update_time = Some(ctx.now.max(order.update_time()));
    let update_time = order.update_time();
    inner.order_push(ctx.shop_id, sn, order_status, update_time);
    ok(json!({}))
}

pub(super) fn get_tracking_number(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let order = find(inner, ctx, sn)?;
    let tracking = order.data.tracking_number.clone().unwrap_or_default();
    ok(json!({
        "tracking_number": tracking,
        "plp_number": "",
        "first_mile_tracking_number": "",
        "last_mile_tracking_number": tracking,
    }))
}
