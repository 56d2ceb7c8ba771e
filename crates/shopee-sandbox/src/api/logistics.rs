//! Seller-managed logistics: get_shipping_parameter, ship_order (exactly one of pickup | dropoff | non_integrated),
//! update_tracking_status (pickup done, then delivered or failed, both final) and get_tracking_number.
//!
//! Order status follows the logistics state: ship_order -> PROCESSED (channel 90026 "Entrega Expressa": the order
//! stays READY_TO_SHIP, only the package moves to LOGISTICS_REQUEST_CREATED, see get_package_detail), pickup done ->
//! SHIPPED, delivered -> TO_CONFIRM_RECEIVE, delivery failed -> CANCELLED (sandbox choice). Each order status change
//! is pushed (code 3).

use serde_json::json;

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::state::{Inner, Logistics, Order};

/// update_tracking_status's `failed_reason` values (required on channel 90026 for logistics_delivery_failed).
const FAILED_REASONS: &[&str] = &[
    "buyer_unreachable",
    "buyer_unresponsive",
    "no_delivery_location_consensus",
];

/// Channel 90026 (BR Instant Delivery, "Entrega Expressa").
const INSTANT_DELIVERY: u64 = 90026;

fn find<'a>(inner: &'a mut Inner, ctx: &Ctx, sn: &str) -> ApiResult<&'a mut Order> {
    inner
        .order_mut(ctx.shop_id, sn)
        .map_err(|_| ApiError::business("logistics.error_order_not_found", "Order is not found."))
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
        return Err(ApiError::business(
            "logistics.ship_order_only_support_one_type",
            "Please select just one way to ship order: pickup or dropoff or non_integrated.",
        ));
    }
    let mode = given[0];
    let tracking = match args.opt_object(mode)? {
        Some(obj) if mode == "non_integrated" => obj.opt_str("tracking_number")?.map(str::to_owned),
        _ => None,
    };
    if let Some(number) = args.opt_str("package_number")?
        && !number.is_empty()
        && number != format!("PN{sn}")
    {
        return Err(ApiError::business(
            "logistics.package_not_exist",
            "The package is not exist.",
        ));
    }
    let generated = format!("BR{}", inner.token("tracking")[..12].to_ascii_uppercase());
    let order = find(inner, ctx, sn)?;
    if order.shipping_mode() != mode {
        return Err(ApiError::business(
            &format!("logistics.ship_order_unsupport_{mode}"),
            format!("This order does not support ship with {mode}."),
        ));
    }
    if order.shipment_arranged() {
        return Err(ApiError::business(
            "logistics.package_already_shipped",
            "This package has already been arranged shipment and you can't call this API again.",
        ));
    }
    if !matches!(order.data.order_status.as_str(), "READY_TO_SHIP" | "RETRY_SHIP") {
        return Err(ApiError::business(
            "logistics.ship_order_not_ready_to_ship",
            "The order is not ready to ship.",
        ));
    }
    order.logistics = Logistics::RequestCreated;
    order.data.tracking_number = match (mode, tracking) {
        ("non_integrated", t) => t.filter(|t| !t.is_empty()),
        _ => Some(generated),
    };
    order.package_update_time = ctx.now;
    // Entrega Expressa: "order_status will be updated to PROCESSED status after arranging shipment, and will be
    // returned in get_package_detail API. get_order_detail order_status will still return READY_TO_SHIP."
    if order.data.logistics_channel_id != INSTANT_DELIVERY {
        order.data.order_status = "PROCESSED".into();
        order.data.update_time = Some(ctx.now.max(order.update_time()));
        let update_time = order.update_time();
        inner.order_push(ctx.shop_id, sn, "PROCESSED", update_time);
    }
    ok(json!({}))
}

/// The documented result values of update_tracking_status.
const SUCCEED: &str = "succeed";
const FAILED: &str = "failed";

pub(super) fn update_tracking_status(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let raw = args.req_str("logistics_status")?;
    let accept_legacy = inner.cfg.accept_logistic_spelling;
    let status = match raw.strip_prefix("logistic_") {
        Some(rest) if accept_legacy && !rest.starts_with("s_") => format!("logistics_{rest}"),
        _ => raw.to_owned(),
    };
    let next = match status.as_str() {
        "logistics_pickup_done" => Logistics::PickupDone,
        "logistics_delivery_done" => Logistics::DeliveryDone,
        "logistics_delivery_failed" => Logistics::DeliveryFailed,
        _ => {
            return Err(ApiError::param(
                "Wrong parameters, detail: logistics_status must be logistics_pickup_done, logistics_delivery_done or logistics_delivery_failed.",
            ));
        }
    };
    let failed_reason = args.opt_str("failed_reason")?.filter(|r| !r.is_empty());
    if let Some(r) = failed_reason
        && !FAILED_REASONS.contains(&r)
    {
        return Err(ApiError::param(format!(
            "Wrong parameters, detail: failed_reason must be one of {}.",
            FAILED_REASONS.join(", ")
        )));
    }
    let tracking_number = args.opt_str("tracking_number")?.filter(|t| !t.is_empty());
    let tracking_url = args.opt_str("tracking_url")?.filter(|t| !t.is_empty());
    if next != Logistics::PickupDone && (tracking_number.is_some() || tracking_url.is_some()) {
        return Err(ApiError::param(
            "Wrong parameters, detail: tracking_number and tracking_url can only be sent with logistics_pickup_done.",
        ));
    }
    if tracking_url.is_some_and(|u| u.chars().count() > 2048) {
        return Err(ApiError::param(
            "Wrong parameters, detail: tracking_url must not exceed 2048 characters.",
        ));
    }
    let order = inner.order_mut(ctx.shop_id, sn).map_err(|_| {
        ApiError::business(
            "logistics.order_not_exist",
            format!("The order_sn {sn} is not exist."),
        )
    })?;
    if next == Logistics::DeliveryFailed
        && failed_reason.is_none()
        && order.data.logistics_channel_id == INSTANT_DELIVERY
    {
        return Err(ApiError::param(
            "Wrong parameters, detail: failed_reason is required for logistics_delivery_failed on channel 90026.",
        ));
    }
    // ship_order, then pickup done, then delivered or failed (both final). A step out of order is not an error
    // code: Shopee's documented failure is a success envelope with `update_result: failed`.
    let allowed = match next {
        Logistics::PickupDone => order.logistics == Logistics::RequestCreated,
        _ => order.logistics == Logistics::PickupDone,
    };
    if !allowed || ctx.update_fails {
        return ok(json!({"update_result": FAILED}));
    }
    let order_status = match next {
        Logistics::PickupDone => "SHIPPED",
        Logistics::DeliveryDone => "TO_CONFIRM_RECEIVE",
        _ => "CANCELLED",
    };
    order.logistics = next;
    if next == Logistics::DeliveryFailed {
        order.failed_reason = failed_reason.map(str::to_owned);
    }
    if next == Logistics::PickupDone {
        order.pickup_done_time = Some(ctx.now);
    }
    if let Some(t) = tracking_number {
        order.data.tracking_number = Some(t.to_owned());
    }
    if let Some(u) = tracking_url {
        order.tracking_url = Some(u.to_owned());
    }
    order.data.order_status = order_status.into();
    order.data.update_time = Some(ctx.now.max(order.update_time()));
    order.package_update_time = ctx.now;
    let update_time = order.update_time();
    inner.order_push(ctx.shop_id, sn, order_status, update_time);
    ok(json!({"update_result": SUCCEED}))
}

pub(super) fn get_tracking_number(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let sn = args.req_str("order_sn")?;
    let order = find(inner, ctx, sn)?;
    if let Some(number) = args.opt_str("package_number")?
        && !number.is_empty()
        && number != order.package_number()
    {
        return Err(ApiError::business(
            "logistics.package_number_not_exist",
            "The package_number is not exist.",
        ));
    }
    let tracking = order.data.tracking_number.clone().unwrap_or_default();
    ok(json!({
        "tracking_number": tracking,
        "plp_number": "",
        "first_mile_tracking_number": "",
        "last_mile_tracking_number": tracking,
    }))
}
