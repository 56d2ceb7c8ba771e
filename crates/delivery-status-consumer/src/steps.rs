//! One [`Step`] of the delivery state machine as Shopee calls.
//!
//! Shopee refuses a step the order has already taken (ship_order on a shipped order, pickup done twice, cancel on a
//! cancelled order). That happens when a step succeeded but the process died before recording it, or when another
//! replica raced us through a rebalance. So when Shopee refuses a step, we ask it where the order stands
//! (`get_order_detail`) and count the step as done when the order is already at or past it; otherwise the refusal
//! stands. For Entrega Expressa (channel 90026) the order stays `READY_TO_SHIP` after `ship_order`: there the
//! packages' own state (`get_package_detail`) tells whether the shipment was arranged or picked up.

use domain::delivery::{FailedReason, Step};
use domain::{OrderSn, ShopId};
use shopee_client::api::logistics::{
    self as lg, GetShippingParameterRequest, GetShippingParameterResponse, LogisticsStatus, NonIntegrated,
    ShipMode, ShipOrderRequest, UpdateTrackingStatusRequest,
};
use shopee_client::api::order::{
    CancelOrderRequest, CancelReason, OptionalField, OrderStatus, PackageDetail,
};
use shopee_client::{ErrorKind, ShopeeClient};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Shopee accepted the call.
    Applied,
    /// Shopee refused it because the order is already there.
    AlreadyThere,
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// May succeed later: retried, then parked.
    Transient(String),
    /// Will fail the same way: parked at once.
    Permanent(String),
}

impl StepError {
    pub fn reason(&self) -> &str {
        match self {
            Self::Transient(r) | Self::Permanent(r) => r,
        }
    }
}

pub fn step_name(step: &Step) -> &'static str {
    match step {
        Step::ArrangeShipment => "arrange_shipment",
        Step::PickupDone { .. } => "pickup_done",
        Step::DeliveryDone => "delivery_done",
        Step::DeliveryFailed { .. } => "delivery_failed",
        Step::CancelOrder { .. } => "cancel_order",
    }
}

/// The fleet's reason, as Shopee's `cancel_order` reason. Shopee offers `OUT_OF_STOCK`, `CUSTOMER_REQUEST` and
/// `COD_NOT_SUPPORTED` in Brazil (`UNDELIVERABLE_AREA` is for Taiwan and Malaysia only), and every reason the fleet
/// gives (buyer unreachable, unresponsive, no agreement on the place) is on the buyer's side: `CUSTOMER_REQUEST`.
pub fn cancel_reason(_reason: Option<FailedReason>) -> CancelReason {
    CancelReason::CustomerRequest
}

fn shopee_failed_reason(reason: FailedReason) -> lg::FailedReason {
    match reason {
        FailedReason::BuyerUnreachable => lg::FailedReason::BuyerUnreachable,
        FailedReason::BuyerUnresponsive => lg::FailedReason::BuyerUnresponsive,
        FailedReason::NoDeliveryLocationConsensus => lg::FailedReason::NoDeliveryLocationConsensus,
    }
}

fn classify(e: &shopee_client::Error) -> StepError {
    match e.kind() {
        ErrorKind::Retryable => StepError::Transient(e.to_string()),
        ErrorKind::Auth | ErrorKind::Quota | ErrorKind::Permanent => StepError::Permanent(e.to_string()),
    }
}

/// Whether Shopee's order status shows the step already taken.
pub fn reached(step: &Step, status: OrderStatus) -> bool {
    use OrderStatus as S;
    match step {
        Step::ArrangeShipment => matches!(
            status,
            S::Processed | S::Shipped | S::ToConfirmReceive | S::Completed
        ),
        Step::PickupDone { .. } => matches!(status, S::Shipped | S::ToConfirmReceive | S::Completed),
        Step::DeliveryDone => matches!(status, S::ToConfirmReceive | S::Completed),
        // Only reachable from picked up, where cancel_order is no longer possible: a cancelled (or returning)
        // order got there through delivery failed.
        Step::DeliveryFailed { .. } => matches!(status, S::Cancelled | S::ToReturn),
        Step::CancelOrder { .. } => matches!(status, S::Cancelled | S::InCancel),
    }
}

/// Whether a package's own state shows the step already taken (the order's status may not: channel 90026).
pub fn reached_by_package(step: &Step, package: &PackageDetail) -> bool {
    match step {
        Step::ArrangeShipment => package.shipment_arranged(),
        Step::PickupDone { .. } => package.fulfillment_status.is_some_and(|s| s.picked_up()),
        Step::DeliveryDone => package
            .fulfillment_status
            .is_some_and(|s| s == shopee_client::api::order::FulfillmentStatus::LogisticsDeliveryDone),
        Step::DeliveryFailed { .. } => package
            .fulfillment_status
            .is_some_and(|s| s == shopee_client::api::order::FulfillmentStatus::LogisticsDeliveryFailed),
        Step::CancelOrder { .. } => false,
    }
}

/// The first address and time slot, or branch, Shopee offers for a mode.
fn first_pickup(params: &GetShippingParameterResponse) -> Option<lg::Pickup> {
    let address = params.pickup.as_ref()?.get("address_list")?.get(0)?;
    let address_id = address.get("address_id")?.as_u64()?;
    let slot = address.get("time_slot_list").and_then(|s| s.get(0));
    let pickup_time_id = slot.and_then(|s| s.get("pickup_time_id")).and_then(|v| {
        v.as_str()
            .map(str::to_owned)
            .or_else(|| v.as_u64().map(|n| n.to_string()))
    });
    Some(lg::Pickup {
        address_id,
        pickup_time_id,
        tracking_number: None,
    })
}

fn first_dropoff(params: &GetShippingParameterResponse) -> lg::Dropoff {
    let branch_id = params
        .dropoff
        .as_ref()
        .and_then(|d| d.get("branch_list"))
        .and_then(|b| b.get(0))
        .and_then(|b| b.get("branch_id"))
        .and_then(serde_json::Value::as_u64);
    lg::Dropoff {
        branch_id,
        ..lg::Dropoff::default()
    }
}

/// The mode the channel requires, filled from what Shopee offers.
pub fn ship_mode(
    params: &GetShippingParameterResponse,
    tracking_number: Option<&str>,
) -> Result<ShipMode, StepError> {
    let info = &params.info_needed;
    if info.non_integrated.is_some() {
        return Ok(ShipMode::NonIntegrated(NonIntegrated {
            tracking_number: tracking_number.map(str::to_owned),
        }));
    }
    if info.pickup.is_some() {
        return first_pickup(params).map(ShipMode::Pickup).ok_or_else(|| {
            StepError::Permanent("get_shipping_parameter asks for pickup but offers no pickup address".into())
        });
    }
    if info.dropoff.is_some() {
        return Ok(ShipMode::Dropoff(first_dropoff(params)));
    }
    Err(StepError::Permanent(
        "get_shipping_parameter offers no shipping mode (pickup, dropoff or non_integrated)".into(),
    ))
}

/// Performs Shopee calls for steps.
#[derive(Clone)]
pub struct Shopee {
    client: ShopeeClient,
}

impl Shopee {
    pub fn new(client: ShopeeClient) -> Self {
        Self { client }
    }

    /// Performs one step. `tracking_number` is the event's (used by non_integrated shipping).
    pub async fn perform(
        &self,
        shop_id: ShopId,
        order_sn: &OrderSn,
        step: &Step,
        tracking_number: Option<&str>,
    ) -> Result<Done, StepError> {
        let result = self.call(shop_id, order_sn, step, tracking_number).await;
        let outcome = match &result {
            Ok(Done::Applied) => "ok",
            Ok(Done::AlreadyThere) => "already",
            Err(StepError::Transient(_)) => "transient",
            Err(StepError::Permanent(_)) => "permanent",
        };
        metrics::counter!("delivery_shopee_steps_total", "step" => step_name(step), "outcome" => outcome)
            .increment(1);
        result
    }

    async fn call(
        &self,
        shop_id: ShopId,
        order_sn: &OrderSn,
        step: &Step,
        tracking_number: Option<&str>,
    ) -> Result<Done, StepError> {
        let sent = match step {
            Step::ArrangeShipment => {
                let params = self
                    .client
                    .get_shipping_parameter(
                        shop_id,
                        &GetShippingParameterRequest {
                            order_sn: order_sn.clone(),
                            package_number: None,
                        },
                    )
                    .await
                    .map_err(|e| classify(&e))?;
                let mode = ship_mode(&params, tracking_number)?;
                let req = ShipOrderRequest {
                    order_sn: order_sn.clone(),
                    package_number: None,
                    mode,
                };
                self.client.ship_order(shop_id, &req).await
            }
            Step::PickupDone {
                tracking_number,
                tracking_url,
            } => {
                self.tracking(
                    shop_id,
                    order_sn,
                    LogisticsStatus::LogisticsPickupDone,
                    tracking_number.clone(),
                    tracking_url.clone(),
                    None,
                )
                .await
            }
            Step::DeliveryDone => {
                self.tracking(
                    shop_id,
                    order_sn,
                    LogisticsStatus::LogisticsDeliveryDone,
                    None,
                    None,
                    None,
                )
                .await
            }
            Step::DeliveryFailed { reason } => {
                self.tracking(
                    shop_id,
                    order_sn,
                    LogisticsStatus::LogisticsDeliveryFailed,
                    None,
                    None,
                    Some(shopee_failed_reason(*reason)),
                )
                .await
            }
            Step::CancelOrder { reason } => {
                let req = CancelOrderRequest {
                    order_sn: order_sn.clone(),
                    cancel_reason: cancel_reason(*reason),
                    item_list: Vec::new(),
                };
                self.client.cancel_order(shop_id, &req).await.map(|_| ())
            }
        };
        match sent {
            Ok(()) => Ok(Done::Applied),
            Err(e) if e.kind() == ErrorKind::Permanent && e.shopee_code().is_some() => {
                // Refused: maybe because the order is already there.
                match self.standing(shop_id, order_sn, step).await {
                    Ok(Standing::There(by)) => {
                        tracing::info!(order.sn = %order_sn, step = step_name(step), shopee.state = %by,
                            "Shopee already has this step; counted as done");
                        Ok(Done::AlreadyThere)
                    }
                    Ok(Standing::NotThere(state)) => {
                        Err(StepError::Permanent(format!("{e} (order at Shopee: {state})")))
                    }
                    Err(check) => Err(classify(&check)),
                }
            }
            Err(e) => Err(classify(&e)),
        }
    }

    async fn tracking(
        &self,
        shop_id: ShopId,
        order_sn: &OrderSn,
        logistics_status: LogisticsStatus,
        tracking_number: Option<String>,
        tracking_url: Option<String>,
        failed_reason: Option<lg::FailedReason>,
    ) -> shopee_client::Result<()> {
        let req = UpdateTrackingStatusRequest {
            order_sn: order_sn.clone(),
            logistics_status,
            tracking_number,
            tracking_url,
            failed_reason,
        };
        self.client.update_tracking_status(shop_id, &req).await
    }

    /// Where Shopee has the order, as far as `step` is concerned: its status, then its packages' state.
    async fn standing(
        &self,
        shop_id: ShopId,
        order_sn: &OrderSn,
        step: &Step,
    ) -> shopee_client::Result<Standing> {
        let detail = self
            .client
            .get_order_detail(
                shop_id,
                std::slice::from_ref(order_sn),
                &[OptionalField::PackageList],
            )
            .await?;
        let Some(order) = detail.into_iter().find(|d| &d.order_sn == order_sn) else {
            return Ok(Standing::NotThere("unknown".to_owned()));
        };
        let status = order.order_status;
        if reached(step, status) {
            return Ok(Standing::There(format!("status {status:?}")));
        }
        let numbers: Vec<String> = order
            .package_list
            .iter()
            .map(|p| p.package_number.clone())
            .filter(|n| !n.is_empty())
            .collect();
        if numbers.is_empty() || matches!(step, Step::CancelOrder { .. }) {
            return Ok(Standing::NotThere(format!("status {status:?}")));
        }
        let packages = self.client.get_package_detail(shop_id, &numbers).await?;
        let states: Vec<String> = packages
            .iter()
            .map(|p| format!("{} {:?}", p.package_number, p.fulfillment_status))
            .collect();
        let all_there = !packages.is_empty() && packages.iter().all(|p| reached_by_package(step, p));
        let state = format!("status {status:?}, packages [{}]", states.join(", "));
        Ok(if all_there {
            Standing::There(state)
        } else {
            Standing::NotThere(state)
        })
    }
}

/// Where Shopee has an order, with what it showed.
enum Standing {
    There(String),
    NotThere(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn params(v: serde_json::Value) -> GetShippingParameterResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ship_mode_follows_what_shopee_asks_for() {
        let ni = params(json!({"info_needed": {"non_integrated": ["tracking_number"]}}));
        let m = serde_json::to_value(ship_mode(&ni, Some("BR1")).unwrap()).unwrap();
        assert_eq!(m, json!({"non_integrated": {"tracking_number": "BR1"}}));

        let pickup = params(
            json!({"info_needed": {"pickup": ["address_id", "pickup_time_id"]},
            "pickup": {"address_list": [{"address_id": 7, "time_slot_list": [{"date": 1, "pickup_time_id": "s1"}, {"pickup_time_id": "s2"}]},
                                        {"address_id": 8}]}}),
        );
        let m = serde_json::to_value(ship_mode(&pickup, Some("BR1")).unwrap()).unwrap();
        assert_eq!(m, json!({"pickup": {"address_id": 7, "pickup_time_id": "s1"}}));

        let dropoff = params(json!({"info_needed": {"dropoff": ["branch_id"]},
            "dropoff": {"branch_list": [{"branch_id": 3}, {"branch_id": 4}]}}));
        let m = serde_json::to_value(ship_mode(&dropoff, None).unwrap()).unwrap();
        assert_eq!(m, json!({"dropoff": {"branch_id": 3}}));

        let empty =
            params(json!({"info_needed": {"pickup": ["address_id"]}, "pickup": {"address_list": []}}));
        assert!(matches!(ship_mode(&empty, None), Err(StepError::Permanent(_))));
        assert!(matches!(
            ship_mode(&params(json!({})), None),
            Err(StepError::Permanent(_))
        ));
    }

    #[test]
    fn already_there_only_when_shopee_is_at_or_past_the_step() {
        use OrderStatus as S;
        assert!(reached(&Step::ArrangeShipment, S::Processed));
        assert!(reached(&Step::ArrangeShipment, S::Shipped));
        assert!(!reached(&Step::ArrangeShipment, S::ReadyToShip));
        assert!(
            !reached(&Step::ArrangeShipment, S::Cancelled),
            "cancelled is not shipped"
        );
        let pickup = Step::PickupDone {
            tracking_number: None,
            tracking_url: None,
        };
        assert!(!reached(&pickup, S::Processed));
        assert!(reached(&pickup, S::ToConfirmReceive));
        assert!(!reached(&Step::DeliveryDone, S::Cancelled));
        assert!(reached(&Step::CancelOrder { reason: None }, S::Cancelled));
        assert!(!reached(&Step::CancelOrder { reason: None }, S::Processed));
    }

    #[test]
    fn a_90026_package_shows_the_shipment_the_order_status_does_not() {
        let package = |status: &str| -> PackageDetail {
            serde_json::from_value(json!({"package_number": "P1", "fulfillment_status": status})).unwrap()
        };
        assert!(reached_by_package(
            &Step::ArrangeShipment,
            &package("LOGISTICS_REQUEST_CREATED")
        ));
        assert!(reached_by_package(
            &Step::ArrangeShipment,
            &package("LOGISTICS_PICKUP_DONE")
        ));
        assert!(!reached_by_package(
            &Step::ArrangeShipment,
            &package("LOGISTICS_READY")
        ));
        assert!(!reached_by_package(
            &Step::ArrangeShipment,
            &package("SOMETHING_NEW")
        ));
        let pickup = Step::PickupDone {
            tracking_number: None,
            tracking_url: None,
        };
        assert!(!reached_by_package(
            &pickup,
            &package("LOGISTICS_REQUEST_CREATED")
        ));
        assert!(reached_by_package(&pickup, &package("LOGISTICS_DELIVERY_DONE")));
        assert!(!reached_by_package(
            &Step::CancelOrder { reason: None },
            &package("LOGISTICS_REQUEST_CANCELED")
        ));
    }

    #[test]
    fn cancel_reasons_map_to_shopee() {
        assert_eq!(cancel_reason(None), CancelReason::CustomerRequest);
        assert_eq!(
            cancel_reason(Some(FailedReason::NoDeliveryLocationConsensus)),
            CancelReason::CustomerRequest,
            "UNDELIVERABLE_AREA is not offered in Brazil"
        );
        assert_eq!(
            cancel_reason(Some(FailedReason::BuyerUnreachable)),
            CancelReason::CustomerRequest
        );
    }
}
