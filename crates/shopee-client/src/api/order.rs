//! Orders: list by time window with a cursor, details in batches of at most 50, package details, cancel.

use domain::{ItemId, ModelId, OrderSn, ShopId};
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::Extra;
use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::{Error, Result};

pub const GET_ORDER_LIST: Endpoint = Endpoint::get("/api/v2/order/get_order_list");
pub const GET_ORDER_DETAIL: Endpoint = Endpoint::get("/api/v2/order/get_order_detail");
/// A package's own fulfilment state: for channel 90026 the order stays `READY_TO_SHIP` after `ship_order`, and only
/// the package shows that the shipment was arranged.
pub const GET_PACKAGE_DETAIL: Endpoint = Endpoint::get("/api/v2/order/get_package_detail");
/// Not idempotent: a repeated cancel fails once the first one went through.
pub const CANCEL_ORDER: Endpoint = Endpoint::post("/api/v2/order/cancel_order").not_idempotent();

/// `get_order_detail` takes at most this many order numbers per call.
pub const ORDER_DETAIL_BATCH: usize = 50;
/// `get_package_detail` takes at most this many package numbers per call.
pub const PACKAGE_DETAIL_BATCH: usize = 50;
/// `get_order_list`'s window is at most 15 days.
pub const ORDER_LIST_MAX_WINDOW_SECS: i64 = 15 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeRangeField {
    CreateTime,
    UpdateTime,
}

/// Shopee's order status. The one definition lives in `domain` (its rules, e.g. what publishes a `new_order`, are
/// domain rules, and `push-inbox` holds it without depending on this client); this is the same type.
pub use domain::order::ShopeeOrderStatus as OrderStatus;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetOrderListRequest {
    pub time_range_field: TimeRangeField,
    pub time_from: i64,
    pub time_to: i64,
    /// 1..=100.
    pub page_size: u32,
    /// Empty for the first page, then the previous `next_cursor`.
    #[serde(default)]
    pub cursor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<OrderStatus>,
    /// Without `order_status` here Shopee answers each order's `order_sn` only.
    #[serde(default, with = "super::comma_list", skip_serializing_if = "Vec::is_empty")]
    pub response_optional_fields: Vec<OrderListField>,
}

/// `get_order_list`'s only optional answer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderListField {
    OrderStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderListEntry {
    pub order_sn: OrderSn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<OrderStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetOrderListResponse {
    #[serde(default)]
    pub more: bool,
    #[serde(default)]
    pub next_cursor: String,
    #[serde(default)]
    pub order_list: Vec<OrderListEntry>,
}

/// The `response_optional_fields` this service uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionalField {
    BuyerUserId,
    BuyerUsername,
    RecipientAddress,
    ItemList,
    TotalAmount,
    EstimatedShippingFee,
    ActualShippingFee,
    PaymentMethod,
    ShippingCarrier,
    Note,
    PayTime,
    PackageList,
    BuyerCpfId,
    InvoiceData,
    Edt,
    FulfillmentFlag,
    OrderChargeableWeightGram,
}

impl OptionalField {
    /// Everything an order intake needs.
    pub const FOR_INTAKE: &'static [OptionalField] = &[
        OptionalField::BuyerUserId,
        OptionalField::BuyerUsername,
        OptionalField::RecipientAddress,
        OptionalField::ItemList,
        OptionalField::TotalAmount,
        OptionalField::EstimatedShippingFee,
        OptionalField::ActualShippingFee,
        OptionalField::PaymentMethod,
        OptionalField::ShippingCarrier,
        OptionalField::PayTime,
        OptionalField::PackageList,
        OptionalField::BuyerCpfId,
        OptionalField::InvoiceData,
        OptionalField::Edt,
    ];
}

/// Both lists are one comma-separated string each, as Shopee documents them (`string`, not an array).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetOrderDetailRequest {
    /// 1..=50.
    #[serde(with = "super::comma_list")]
    pub order_sn_list: Vec<OrderSn>,
    #[serde(default, with = "super::comma_list", skip_serializing_if = "Vec::is_empty")]
    pub response_optional_fields: Vec<OptionalField>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Geolocation {
    #[serde(default)]
    pub latitude: Option<Number>,
    #[serde(default)]
    pub longitude: Option<Number>,
}

/// Buyer data: `Debug` prints only the city and state.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RecipientAddress {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub town: String,
    #[serde(default)]
    pub district: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zipcode: String,
    #[serde(default)]
    pub full_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geolocation: Option<Geolocation>,
}

impl std::fmt::Debug for RecipientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientAddress")
            .field("city", &self.city)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderItem {
    pub item_id: ItemId,
    #[serde(default)]
    pub item_name: String,
    #[serde(default)]
    pub item_sku: String,
    #[serde(default)]
    pub model_id: Option<ModelId>,
    #[serde(default)]
    pub model_name: String,
    #[serde(default)]
    pub model_sku: String,
    #[serde(default)]
    pub model_quantity_purchased: u32,
    /// Money as Shopee sent it; convert with `Money::from_shopee_number`.
    #[serde(default)]
    pub model_original_price: Option<Number>,
    /// 0 for an item of a bundle deal: Shopee does not break a bundle's discount down per item (use
    /// [`OrderItem::paid_unit_price`]).
    #[serde(default)]
    pub model_discounted_price: Option<Number>,
    #[serde(default)]
    pub order_item_id: Option<u64>,
    #[serde(default)]
    pub promotion_type: Option<String>,
    #[serde(default)]
    pub promotion_id: Option<u64>,
    #[serde(default)]
    pub wholesale: Option<bool>,
    #[serde(default)]
    pub weight: Option<Number>,
}

impl OrderItem {
    /// What the buyer pays per unit as Shopee states it: the discounted price, or the original price when Shopee
    /// sends no discounted price or 0 (bundle-deal items, whose discount is not broken down per item).
    pub fn paid_unit_price(&self) -> Option<&Number> {
        let is_zero = |n: &Number| n.as_f64() == Some(0.0);
        match &self.model_discounted_price {
            Some(d) if !is_zero(d) => Some(d),
            _ => self.model_original_price.as_ref(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    #[serde(default)]
    pub package_number: String,
    #[serde(default)]
    pub logistics_status: Option<String>,
    #[serde(default)]
    pub shipping_carrier: Option<String>,
    #[serde(default)]
    pub logistics_channel_id: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct OrderDetail {
    pub order_sn: OrderSn,
    pub order_status: OrderStatus,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub cod: bool,
    #[serde(default)]
    pub create_time: i64,
    #[serde(default)]
    pub update_time: i64,
    #[serde(default)]
    pub days_to_ship: Option<u32>,
    #[serde(default)]
    pub ship_by_date: Option<i64>,
    #[serde(default)]
    pub pay_time: Option<i64>,
    #[serde(default)]
    pub total_amount: Option<Number>,
    #[serde(default)]
    pub estimated_shipping_fee: Option<Number>,
    #[serde(default)]
    pub actual_shipping_fee: Option<Number>,
    #[serde(default)]
    pub buyer_user_id: Option<u64>,
    #[serde(default)]
    pub buyer_username: Option<String>,
    #[serde(default)]
    pub buyer_cpf_id: Option<String>,
    #[serde(default)]
    pub recipient_address: Option<RecipientAddress>,
    #[serde(default)]
    pub item_list: Vec<OrderItem>,
    #[serde(default)]
    pub package_list: Vec<Package>,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub shipping_carrier: Option<String>,
    /// The seller's own private note on the order (never the buyer's words).
    #[serde(default)]
    pub note: Option<String>,
    /// The buyer's message to the seller (sent by default).
    #[serde(default)]
    pub message_to_seller: Option<String>,
    #[serde(default)]
    pub invoice_data: Option<serde_json::Value>,
    #[serde(default)]
    pub edt_from: Option<i64>,
    #[serde(default)]
    pub edt_to: Option<i64>,
    #[serde(default)]
    pub fulfillment_flag: Option<String>,
    /// Everything else Shopee sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Holds buyer data: `Debug` prints the order number, status and times only.
impl std::fmt::Debug for OrderDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderDetail")
            .field("order_sn", &self.order_sn)
            .field("order_status", &self.order_status)
            .field("update_time", &self.update_time)
            .field("items", &self.item_list.len())
            .finish_non_exhaustive()
    }
}

/// A package's fulfilment state (`PackageFulfillmentStatus` in Shopee's data definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillmentStatus {
    LogisticsNotStart,
    LogisticsPendingArrange,
    LogisticsReady,
    LogisticsRequestCreated,
    LogisticsPickupDone,
    LogisticsPickupRetry,
    LogisticsPickupFailed,
    LogisticsDeliveryDone,
    LogisticsDeliveryFailed,
    LogisticsRequestCanceled,
    LogisticsCodRejected,
    LogisticsInvalid,
    LogisticsLost,
    #[serde(other)]
    Unknown,
}

impl FulfillmentStatus {
    /// The shipment was arranged (`ship_order` went through), whatever happened since.
    pub fn shipment_arranged(self) -> bool {
        use FulfillmentStatus as F;
        matches!(
            self,
            F::LogisticsRequestCreated
                | F::LogisticsPickupDone
                | F::LogisticsPickupRetry
                | F::LogisticsPickupFailed
                | F::LogisticsDeliveryDone
                | F::LogisticsDeliveryFailed
                | F::LogisticsLost
        )
    }

    /// The package left the hub with the courier.
    pub fn picked_up(self) -> bool {
        use FulfillmentStatus as F;
        matches!(
            self,
            F::LogisticsPickupDone | F::LogisticsDeliveryDone | F::LogisticsDeliveryFailed | F::LogisticsLost
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetPackageDetailRequest {
    /// 1..=50, one comma-separated string as Shopee documents it.
    #[serde(with = "super::comma_list")]
    pub package_number_list: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageDetail {
    #[serde(default)]
    pub order_sn: Option<OrderSn>,
    pub package_number: String,
    #[serde(default)]
    pub fulfillment_status: Option<FulfillmentStatus>,
    #[serde(default)]
    pub logistics_channel_id: Option<u64>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub is_shipment_arranged: Option<bool>,
    #[serde(default)]
    pub pickup_done_time: Option<i64>,
    #[serde(default)]
    pub update_time: Option<i64>,
}

impl PackageDetail {
    /// Shopee's flag when it sends one, else the fulfilment status.
    pub fn shipment_arranged(&self) -> bool {
        self.is_shipment_arranged.unwrap_or(false)
            || self
                .fulfillment_status
                .is_some_and(FulfillmentStatus::shipment_arranged)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetPackageDetailResponse {
    #[serde(default)]
    pub package_list: Vec<PackageDetail>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetOrderDetailResponse {
    #[serde(default)]
    pub order_list: Vec<OrderDetail>,
}

/// Shopee's `cancel_reason` values. `UNDELIVERABLE_AREA` exists too, but only for Taiwan and Malaysia, so it is not
/// offered here (a Brazilian shop's cancel with it is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    OutOfStock,
    CustomerRequest,
    CodNotSupported,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelItem {
    pub item_id: ItemId,
    pub model_id: ModelId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelOrderRequest {
    pub order_sn: OrderSn,
    pub cancel_reason: CancelReason,
    /// Required with `OUT_OF_STOCK`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_list: Vec<CancelItem>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CancelOrderResponse {
    #[serde(default)]
    pub update_time: i64,
}

impl ShopeeClient {
    /// `GET /api/v2/order/get_order_list`: one page. Follow `next_cursor` while `more`.
    pub async fn get_order_list(
        &self,
        shop_id: ShopId,
        req: &GetOrderListRequest,
    ) -> Result<GetOrderListResponse> {
        let api = GET_ORDER_LIST.path;
        if req.time_to < req.time_from || req.time_to - req.time_from > ORDER_LIST_MAX_WINDOW_SECS {
            return Err(Error::InvalidRequest {
                api,
                problem: "time_to must be after time_from and at most 15 days later".to_owned(),
            });
        }
        if !(1..=100).contains(&req.page_size) {
            return Err(Error::InvalidRequest {
                api,
                problem: format!("page_size must be 1..=100, got {}", req.page_size),
            });
        }
        self.shop_call(shop_id, &GET_ORDER_LIST, req).await
    }

    /// `GET /api/v2/order/get_order_detail` for any number of orders: split into calls of at most 50, answers
    /// concatenated in call order. An empty list makes no call.
    pub async fn get_order_detail(
        &self,
        shop_id: ShopId,
        order_sns: &[OrderSn],
        fields: &[OptionalField],
    ) -> Result<Vec<OrderDetail>> {
        let mut out = Vec::with_capacity(order_sns.len());
        for chunk in order_sns.chunks(ORDER_DETAIL_BATCH) {
            let req = GetOrderDetailRequest {
                order_sn_list: chunk.to_vec(),
                response_optional_fields: fields.to_vec(),
            };
            let resp: GetOrderDetailResponse = self.shop_call(shop_id, &GET_ORDER_DETAIL, &req).await?;
            out.extend(resp.order_list);
        }
        Ok(out)
    }

    /// `GET /api/v2/order/get_package_detail` for any number of packages, in calls of at most 50. An empty list
    /// makes no call.
    pub async fn get_package_detail(
        &self,
        shop_id: ShopId,
        package_numbers: &[String],
    ) -> Result<Vec<PackageDetail>> {
        let mut out = Vec::with_capacity(package_numbers.len());
        for chunk in package_numbers.chunks(PACKAGE_DETAIL_BATCH) {
            let req = GetPackageDetailRequest {
                package_number_list: chunk.to_vec(),
            };
            let resp: GetPackageDetailResponse = self.shop_call(shop_id, &GET_PACKAGE_DETAIL, &req).await?;
            out.extend(resp.package_list);
        }
        Ok(out)
    }

    /// `POST /api/v2/order/cancel_order`. Not idempotent: retried only when Shopee certainly did not act.
    pub async fn cancel_order(
        &self,
        shop_id: ShopId,
        req: &CancelOrderRequest,
    ) -> Result<CancelOrderResponse> {
        if req.cancel_reason == CancelReason::OutOfStock && req.item_list.is_empty() {
            return Err(Error::InvalidRequest {
                api: CANCEL_ORDER.path,
                problem: "OUT_OF_STOCK needs item_list".to_owned(),
            });
        }
        self.shop_call(shop_id, &CANCEL_ORDER, req).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn order_detail_reads_shopee_sample_and_hides_buyer_data() {
        let json = r#"{"order_list":[{"order_sn":"2511250ABCDEF","order_status":"READY_TO_SHIP","region":"BR","currency":"BRL",
          "cod":false,"create_time":1700000000,"update_time":1700000100,"total_amount":30.7,"estimated_shipping_fee":4.9,
          "recipient_address":{"name":"Maria Silva","phone":"5511999999999","city":"São Paulo","state":"SP","zipcode":"01310100",
            "full_address":"Av Paulista 1000","geolocation":{"latitude":-23.56,"longitude":-46.65}},
          "item_list":[{"item_id":100001,"item_name":"Água","item_sku":"","model_id":0,"model_name":"","model_sku":"789100000001",
            "model_quantity_purchased":2,"model_original_price":12.9,"model_discounted_price":12.9}],
          "new_field_shopee_added":{"x":1}}]}"#;
        let r: GetOrderDetailResponse = serde_json::from_str(json).unwrap();
        let o = &r.order_list[0];
        assert_eq!(o.order_status, OrderStatus::ReadyToShip);
        let total = domain::Money::from_shopee_number(o.total_amount.as_ref().unwrap()).unwrap();
        assert_eq!(total.centavos(), 3070);
        let price =
            domain::Money::from_shopee_number(o.item_list[0].model_original_price.as_ref().unwrap()).unwrap();
        assert_eq!(price.centavos(), 1290);
        assert_eq!(o.item_list[0].model_id, Some(ModelId::NONE));
        assert!(o.extra.contains_key("new_field_shopee_added"));
        let dbg = format!("{o:?} {:?}", o.recipient_address);
        assert!(
            !dbg.contains("Maria") && !dbg.contains("5511") && !dbg.contains("Paulista"),
            "{dbg}"
        );
    }

    #[test]
    fn unknown_status_does_not_break_decoding() {
        let e: OrderListEntry =
            serde_json::from_str(r#"{"order_sn":"A1","order_status":"SOMETHING_NEW"}"#).unwrap();
        assert_eq!(e.order_status, Some(OrderStatus::Unknown));
    }
}
