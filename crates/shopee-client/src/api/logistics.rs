//! Seller-managed logistics: shipping parameters, arranging shipment, tracking status and number.

use domain::{OrderSn, ShopId};
use serde::{Deserialize, Serialize};

use super::Extra;
use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::{Error, Result};

pub const GET_SHIPPING_PARAMETER: Endpoint = Endpoint::get("/api/v2/logistics/get_shipping_parameter");
/// Not idempotent: a second ship_order fails once the first went through.
pub const SHIP_ORDER: Endpoint = Endpoint::post("/api/v2/logistics/ship_order").not_idempotent();
/// Sets an absolute status: repeating it does not move anything further (a final status refuses changes).
pub const UPDATE_TRACKING_STATUS: Endpoint = Endpoint::post("/api/v2/logistics/update_tracking_status");
pub const GET_TRACKING_NUMBER: Endpoint = Endpoint::get("/api/v2/logistics/get_tracking_number");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetShippingParameterRequest {
    pub order_sn: OrderSn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_number: Option<String>,
}

/// Which fields each mode needs (`info_needed`), and the choices for pickup / dropoff.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InfoNeeded {
    #[serde(default)]
    pub dropoff: Option<Vec<String>>,
    #[serde(default)]
    pub pickup: Option<Vec<String>>,
    #[serde(default)]
    pub non_integrated: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetShippingParameterResponse {
    #[serde(default)]
    pub info_needed: InfoNeeded,
    #[serde(default)]
    pub dropoff: Option<serde_json::Value>,
    #[serde(default)]
    pub pickup: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pickup {
    /// Required whenever `pickup` is sent.
    pub address_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_time_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dropoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_real_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NonIntegrated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

/// Exactly one shipping mode, as Shopee requires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipMode {
    Pickup(Pickup),
    Dropoff(Dropoff),
    NonIntegrated(NonIntegrated),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShipOrderRequest {
    pub order_sn: OrderSn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_number: Option<String>,
    /// Serialized as one of the keys `pickup`, `dropoff`, `non_integrated`.
    #[serde(flatten)]
    pub mode: ShipMode,
}

/// Shopee's `logistics_status` values for seller logistics. (Shopee's sample also spells `logistic_pickup_done`;
/// the documented `logistics_*` spelling is used.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogisticsStatus {
    LogisticsPickupDone,
    LogisticsDeliveryDone,
    LogisticsDeliveryFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedReason {
    BuyerUnreachable,
    BuyerUnresponsive,
    NoDeliveryLocationConsensus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
/// Per order: Shopee takes no `package_number` here.
pub struct UpdateTrackingStatusRequest {
    pub order_sn: OrderSn,
    pub logistics_status: LogisticsStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    /// Required with `logistics_delivery_failed` on channel 90026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_reason: Option<FailedReason>,
}

/// `update_result`: `succeed` or `failed`. A `failed` comes inside a successful envelope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateTrackingStatusResponse {
    #[serde(default)]
    pub update_result: Option<String>,
}

/// The code [`ShopeeClient::update_tracking_status`] gives an update Shopee answered with `update_result: failed`
/// (Shopee sends no code of its own for it).
pub const UPDATE_RESULT_FAILED: &str = "update_result_failed";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetTrackingNumberRequest {
    pub order_sn: OrderSn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_number: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetTrackingNumberResponse {
    #[serde(default)]
    pub tracking_number: String,
    #[serde(default)]
    pub plp_number: Option<String>,
    #[serde(default)]
    pub first_mile_tracking_number: Option<String>,
    #[serde(default)]
    pub last_mile_tracking_number: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ShopeeClient {
    /// `GET /api/v2/logistics/get_shipping_parameter`.
    pub async fn get_shipping_parameter(
        &self,
        shop_id: ShopId,
        req: &GetShippingParameterRequest,
    ) -> Result<GetShippingParameterResponse> {
        self.shop_call(shop_id, &GET_SHIPPING_PARAMETER, req).await
    }

    /// `POST /api/v2/logistics/ship_order`. Not idempotent (see [`SHIP_ORDER`]).
    pub async fn ship_order(&self, shop_id: ShopId, req: &ShipOrderRequest) -> Result<()> {
        let _: serde_json::Value = self.shop_call(shop_id, &SHIP_ORDER, req).await?;
        Ok(())
    }

    /// `POST /api/v2/logistics/update_tracking_status`. Shopee may answer success with `update_result: failed`:
    /// that is returned as a permanent error with the code [`UPDATE_RESULT_FAILED`], never as applied.
    pub async fn update_tracking_status(
        &self,
        shop_id: ShopId,
        req: &UpdateTrackingStatusRequest,
    ) -> Result<()> {
        let resp: UpdateTrackingStatusResponse =
            self.shop_call(shop_id, &UPDATE_TRACKING_STATUS, req).await?;
        match resp.update_result.as_deref() {
            Some(r) if r.eq_ignore_ascii_case("failed") => Err(Error::Permanent {
                api: UPDATE_TRACKING_STATUS.path,
                code: UPDATE_RESULT_FAILED.to_owned(),
                message: format!(
                    "Shopee did not apply {:?} to the order (update_result: {r})",
                    req.logistics_status
                ),
                request_id: String::new(),
                http_status: None,
            }),
            _ => Ok(()),
        }
    }

    /// `GET /api/v2/logistics/get_tracking_number`.
    pub async fn get_tracking_number(
        &self,
        shop_id: ShopId,
        req: &GetTrackingNumberRequest,
    ) -> Result<GetTrackingNumberResponse> {
        self.shop_call(shop_id, &GET_TRACKING_NUMBER, req).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ship_order_carries_exactly_one_mode() {
        let req = ShipOrderRequest {
            order_sn: OrderSn::parse("A1").unwrap(),
            package_number: None,
            mode: ShipMode::NonIntegrated(NonIntegrated {
                tracking_number: Some("BR123".into()),
            }),
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"order_sn": "A1", "non_integrated": {"tracking_number": "BR123"}})
        );
    }
}
