//! Seller-managed logistics: shipping parameters, arranging shipment, tracking status and number, and the
//! channel-90026 (Entrega Expressa) serviceable area: a KML file uploaded per shop, then its task checked.

use domain::{OrderSn, ShopId};
use serde::{Deserialize, Serialize};

use super::Extra;
use crate::client::ShopeeClient;
use crate::envelope::{Endpoint, MultipartBody};
use crate::error::{Error, Result};

pub const GET_SHIPPING_PARAMETER: Endpoint = Endpoint::get("/api/v2/logistics/get_shipping_parameter");
/// Not idempotent: a second ship_order fails once the first went through.
pub const SHIP_ORDER: Endpoint = Endpoint::post("/api/v2/logistics/ship_order").not_idempotent();
/// Sets an absolute status: repeating it does not move anything further (a final status refuses changes).
pub const UPDATE_TRACKING_STATUS: Endpoint = Endpoint::post("/api/v2/logistics/update_tracking_status");
pub const GET_TRACKING_NUMBER: Endpoint = Endpoint::get("/api/v2/logistics/get_tracking_number");
/// Replaces the shop's serviceable area (Shopee keeps the latest file). Repeating it with the same file leaves the
/// same area, but each call starts a task: retried only when Shopee certainly did not take the first one.
pub const UPLOAD_SERVICEABLE_POLYGON: Endpoint =
    Endpoint::post("/api/v2/logistics/upload_serviceable_polygon").not_idempotent();
/// Reads a task's state.
pub const CHECK_POLYGON_UPDATE_STATUS: Endpoint =
    Endpoint::post("/api/v2/logistics/check_polygon_update_status");

/// The multipart part that carries the KML file.
pub const POLYGON_FILE_FIELD: &str = "file";
/// The file name sent with the KML (Shopee checks that the file is a `.kml`).
pub const POLYGON_FILE_NAME: &str = "serviceable_area.kml";
/// The KML media type.
pub const KML_CONTENT_TYPE: &str = "application/vnd.google-earth.kml+xml";

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

/// The body of `upload_serviceable_polygon`: the KML in the part `file`.
pub fn polygon_form(kml: &[u8]) -> MultipartBody {
    MultipartBody::file(POLYGON_FILE_FIELD, POLYGON_FILE_NAME, KML_CONTENT_TYPE, kml)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UploadServiceablePolygonResponse {
    /// What [`ShopeeClient::check_polygon_update_status`] takes.
    #[serde(default)]
    pub task_id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckPolygonUpdateStatusRequest {
    pub task_id: String,
}

/// `status` of a polygon upload task, as Shopee documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolygonTaskStatus {
    /// 0: the area is in place.
    Completed,
    /// 1: still being processed.
    InProgress,
    /// 2: Shopee refused the KML file (see `message`).
    KmlError,
    /// A value Shopee does not document (kept, never guessed).
    Other(i32),
}

impl PolygonTaskStatus {
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => Self::Completed,
            1 => Self::InProgress,
            2 => Self::KmlError,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> i32 {
        match self {
            Self::Completed => 0,
            Self::InProgress => 1,
            Self::KmlError => 2,
            Self::Other(c) => c,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckPolygonUpdateStatusResponse {
    /// 0 completed, 1 in progress, 2 KML file errors (see [`PolygonTaskStatus`]).
    #[serde(default)]
    pub status: i32,
    #[serde(default)]
    pub message: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl CheckPolygonUpdateStatusResponse {
    pub fn task_status(&self) -> PolygonTaskStatus {
        PolygonTaskStatus::from_code(self.status)
    }
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

    /// `POST /api/v2/logistics/upload_serviceable_polygon` (shop, multipart): replaces the shop's channel-90026
    /// serviceable area with this KML and answers the task to check. An empty file or an answer without a task id
    /// is an error.
    pub async fn upload_serviceable_polygon(
        &self,
        shop_id: ShopId,
        kml: &[u8],
    ) -> Result<UploadServiceablePolygonResponse> {
        let api = UPLOAD_SERVICEABLE_POLYGON.path;
        if kml.is_empty() {
            return Err(Error::InvalidRequest {
                api,
                problem: "the KML file is empty".to_owned(),
            });
        }
        let form = polygon_form(kml);
        let resp: UploadServiceablePolygonResponse = self
            .shop_multipart_call(shop_id, &UPLOAD_SERVICEABLE_POLYGON, &form)
            .await?;
        if resp.task_id.is_empty() {
            return Err(Error::Decode {
                api,
                request_id: String::new(),
                detail: "response.task_id is empty".to_owned(),
            });
        }
        Ok(resp)
    }

    /// `POST /api/v2/logistics/check_polygon_update_status`: the state of an upload task.
    pub async fn check_polygon_update_status(
        &self,
        shop_id: ShopId,
        task_id: &str,
    ) -> Result<CheckPolygonUpdateStatusResponse> {
        let req = CheckPolygonUpdateStatusRequest {
            task_id: task_id.to_owned(),
        };
        self.shop_call(shop_id, &CHECK_POLYGON_UPDATE_STATUS, &req).await
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

    #[test]
    fn polygon_form_carries_the_kml_in_file() {
        let form = polygon_form(b"<kml/>");
        assert_eq!(form.parts(), &[("file".to_owned(), true)]);
        let text = String::from_utf8_lossy(form.bytes());
        assert!(text.contains("name=\"file\"; filename=\"serviceable_area.kml\""));
        assert!(text.contains("<kml/>"));
    }

    #[test]
    fn polygon_statuses_follow_the_documented_codes() {
        for (code, status) in [
            (0, PolygonTaskStatus::Completed),
            (1, PolygonTaskStatus::InProgress),
            (2, PolygonTaskStatus::KmlError),
            (7, PolygonTaskStatus::Other(7)),
        ] {
            assert_eq!(PolygonTaskStatus::from_code(code), status);
            assert_eq!(status.code(), code);
        }
        let r: CheckPolygonUpdateStatusResponse =
            serde_json::from_str(r#"{"status": 1, "message": "task in progress"}"#).unwrap();
        assert_eq!(r.task_status(), PolygonTaskStatus::InProgress);
    }
}
