//! Discounts (campaigns). Per-item refusals come back in `error_list` inside a successful answer.
//!
//! Not idempotent (never retried blindly; the caller keeps its own idempotency key and checks with
//! `get_discount_list` / `get_discount` before repeating): `add_discount` (a second call makes a second
//! discount), `add_discount_item`, `delete_discount`, `delete_discount_item`, `end_discount`.

use domain::{ItemId, ModelId, ShopId};
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::Extra;
use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::{Error, Result};

pub const ADD_DISCOUNT: Endpoint = Endpoint::post("/api/v2/discount/add_discount").not_idempotent();
pub const ADD_DISCOUNT_ITEM: Endpoint = Endpoint::post("/api/v2/discount/add_discount_item").not_idempotent();
pub const UPDATE_DISCOUNT: Endpoint = Endpoint::post("/api/v2/discount/update_discount");
pub const UPDATE_DISCOUNT_ITEM: Endpoint = Endpoint::post("/api/v2/discount/update_discount_item");
pub const DELETE_DISCOUNT: Endpoint = Endpoint::post("/api/v2/discount/delete_discount").not_idempotent();
pub const DELETE_DISCOUNT_ITEM: Endpoint =
    Endpoint::post("/api/v2/discount/delete_discount_item").not_idempotent();
pub const END_DISCOUNT: Endpoint = Endpoint::post("/api/v2/discount/end_discount").not_idempotent();
pub const GET_DISCOUNT: Endpoint = Endpoint::get("/api/v2/discount/get_discount");
pub const GET_DISCOUNT_LIST: Endpoint = Endpoint::get("/api/v2/discount/get_discount_list");

/// `add_discount_item` / `update_discount_item` take at most this many items per call.
pub const DISCOUNT_ITEM_BATCH: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddDiscountRequest {
    pub discount_name: String,
    /// Unix seconds; Shopee wants it more than 1 hour ahead.
    pub start_time: i64,
    /// Unix seconds; less than 180 days after `start_time`.
    pub end_time: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountIdResponse {
    pub discount_id: u64,
    #[serde(default)]
    pub modify_time: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountModel {
    pub model_id: ModelId,
    pub model_promotion_price: Number,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_promotion_stock: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountItem {
    pub item_id: ItemId,
    /// 0 = no limit.
    #[serde(default)]
    pub purchase_limit: u32,
    /// For items without models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_promotion_price: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_promotion_stock: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_list: Vec<DiscountModel>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountItemsRequest {
    pub discount_id: u64,
    /// 1..=50.
    pub item_list: Vec<DiscountItem>,
}

/// One item (or model) Shopee refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountItemError {
    pub item_id: ItemId,
    #[serde(default)]
    pub model_id: Option<ModelId>,
    #[serde(default)]
    pub fail_error: Option<String>,
    #[serde(default)]
    pub fail_message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountItemsResponse {
    pub discount_id: u64,
    /// How many items were accepted.
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub error_list: Vec<DiscountItemError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateDiscountRequest {
    pub discount_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_name: Option<String>,
    /// Only later than the current start, and only before the discount started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Only earlier than the current end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountIdRequest {
    pub discount_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteDiscountItemRequest {
    pub discount_id: u64,
    pub item_id: ItemId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<ModelId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteDiscountItemResponse {
    pub discount_id: u64,
    #[serde(default)]
    pub error_list: Vec<DiscountItemError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountStatus {
    Upcoming,
    Ongoing,
    Expired,
    All,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetDiscountRequest {
    pub discount_id: u64,
    pub page_no: u32,
    /// 1..=100.
    pub page_size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountModelInfo {
    pub model_id: ModelId,
    #[serde(default)]
    pub model_original_price: Option<Number>,
    #[serde(default)]
    pub model_promotion_price: Option<Number>,
    #[serde(default)]
    pub model_promotion_stock: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountItemInfo {
    pub item_id: ItemId,
    #[serde(default)]
    pub item_name: String,
    #[serde(default)]
    pub purchase_limit: u32,
    #[serde(default)]
    pub item_original_price: Option<Number>,
    #[serde(default)]
    pub item_promotion_price: Option<Number>,
    #[serde(default)]
    pub item_promotion_stock: Option<u32>,
    #[serde(default)]
    pub model_list: Vec<DiscountModelInfo>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetDiscountResponse {
    pub discount_id: u64,
    #[serde(default)]
    pub discount_name: String,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub status: Option<DiscountStatus>,
    #[serde(default)]
    pub item_list: Vec<DiscountItemInfo>,
    #[serde(default)]
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetDiscountListRequest {
    pub discount_status: DiscountStatus,
    pub page_no: u32,
    /// 1..=100.
    pub page_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time_from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time_to: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscountSummary {
    pub discount_id: u64,
    #[serde(default)]
    pub discount_name: String,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub status: Option<DiscountStatus>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetDiscountListResponse {
    #[serde(default)]
    pub discount_list: Vec<DiscountSummary>,
    #[serde(default)]
    pub more: bool,
}

fn check_items(api: &'static str, req: &DiscountItemsRequest) -> Result<()> {
    let n = req.item_list.len();
    if n == 0 || n > DISCOUNT_ITEM_BATCH {
        return Err(Error::InvalidRequest {
            api,
            problem: format!("item_list must hold 1..={DISCOUNT_ITEM_BATCH} items, got {n}; split the call"),
        });
    }
    Ok(())
}

impl ShopeeClient {
    /// `POST /api/v2/discount/add_discount`. Not idempotent.
    pub async fn add_discount(
        &self,
        shop_id: ShopId,
        req: &AddDiscountRequest,
    ) -> Result<DiscountIdResponse> {
        if req.end_time <= req.start_time {
            return Err(Error::InvalidRequest {
                api: ADD_DISCOUNT.path,
                problem: "end_time must be after start_time".to_owned(),
            });
        }
        self.shop_call(shop_id, &ADD_DISCOUNT, req).await
    }

    /// `POST /api/v2/discount/add_discount_item` (1..=50 items). Refused items are in `error_list`. Not idempotent.
    pub async fn add_discount_item(
        &self,
        shop_id: ShopId,
        req: &DiscountItemsRequest,
    ) -> Result<DiscountItemsResponse> {
        check_items(ADD_DISCOUNT_ITEM.path, req)?;
        self.shop_call(shop_id, &ADD_DISCOUNT_ITEM, req).await
    }

    /// `POST /api/v2/discount/update_discount`.
    pub async fn update_discount(
        &self,
        shop_id: ShopId,
        req: &UpdateDiscountRequest,
    ) -> Result<DiscountIdResponse> {
        self.shop_call(shop_id, &UPDATE_DISCOUNT, req).await
    }

    /// `POST /api/v2/discount/update_discount_item` (1..=50 items). Refused items are in `error_list`.
    pub async fn update_discount_item(
        &self,
        shop_id: ShopId,
        req: &DiscountItemsRequest,
    ) -> Result<DiscountItemsResponse> {
        check_items(UPDATE_DISCOUNT_ITEM.path, req)?;
        self.shop_call(shop_id, &UPDATE_DISCOUNT_ITEM, req).await
    }

    /// `POST /api/v2/discount/delete_discount` (only before it ended). Not idempotent.
    pub async fn delete_discount(&self, shop_id: ShopId, discount_id: u64) -> Result<DiscountIdResponse> {
        self.shop_call(shop_id, &DELETE_DISCOUNT, &DiscountIdRequest { discount_id })
            .await
    }

    /// `POST /api/v2/discount/delete_discount_item`. Not idempotent.
    pub async fn delete_discount_item(
        &self,
        shop_id: ShopId,
        req: &DeleteDiscountItemRequest,
    ) -> Result<DeleteDiscountItemResponse> {
        self.shop_call(shop_id, &DELETE_DISCOUNT_ITEM, req).await
    }

    /// `POST /api/v2/discount/end_discount` (only ongoing). Not idempotent.
    pub async fn end_discount(&self, shop_id: ShopId, discount_id: u64) -> Result<DiscountIdResponse> {
        self.shop_call(shop_id, &END_DISCOUNT, &DiscountIdRequest { discount_id })
            .await
    }

    /// `GET /api/v2/discount/get_discount`: one page of a discount's items.
    pub async fn get_discount(
        &self,
        shop_id: ShopId,
        req: &GetDiscountRequest,
    ) -> Result<GetDiscountResponse> {
        self.shop_call(shop_id, &GET_DISCOUNT, req).await
    }

    /// `GET /api/v2/discount/get_discount_list`: one page.
    pub async fn get_discount_list(
        &self,
        shop_id: ShopId,
        req: &GetDiscountListRequest,
    ) -> Result<GetDiscountListResponse> {
        if !(1..=100).contains(&req.page_size) {
            return Err(Error::InvalidRequest {
                api: GET_DISCOUNT_LIST.path,
                problem: format!("page_size must be 1..=100, got {}", req.page_size),
            });
        }
        self.shop_call(shop_id, &GET_DISCOUNT_LIST, req).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn error_list_surfaces_per_item() {
        let r: DiscountItemsResponse = serde_json::from_str(
            r#"{"discount_id":7,"count":1,"error_list":[{"item_id":2,"model_id":0,"fail_error":"error_item_in_other_promotion","fail_message":"The item is in another promotion."}]}"#,
        )
        .unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.error_list[0].item_id, ItemId::new(2).unwrap());
        assert_eq!(
            r.error_list[0].fail_error.as_deref(),
            Some("error_item_in_other_promotion")
        );
    }
}
