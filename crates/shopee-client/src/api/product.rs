//! Products: listing, base info, models, price, stock, content, and Instant Mart outlet updates.
//!
//! `update_price` and `update_stock` set absolute values (idempotent) for one item per call and report per-model
//! failures in `failure_list`: check [`UpdatePriceResponse::failure_list`] / [`UpdateStockResponse::failure_list`]
//! even when the call succeeds.
//!
//! Instant Mart: price and stock are set per outlet shop; `batch_update_outlet_*` take up to 100 items (each naming
//! its `outlet_shop_id`) and answer a `task_id` to poll with `get_batch_task_result` (with the task's type).

use domain::{ItemId, ModelId, ShopId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;

use super::Extra;
use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::{Error, Result};

pub const GET_ITEM_LIST: Endpoint = Endpoint::get("/api/v2/product/get_item_list");
pub const GET_ITEM_BASE_INFO: Endpoint = Endpoint::get("/api/v2/product/get_item_base_info");
pub const GET_MODEL_LIST: Endpoint = Endpoint::get("/api/v2/product/get_model_list");
pub const UPDATE_PRICE: Endpoint = Endpoint::post("/api/v2/product/update_price");
pub const UPDATE_STOCK: Endpoint = Endpoint::post("/api/v2/product/update_stock");
pub const UPDATE_ITEM: Endpoint = Endpoint::post("/api/v2/product/update_item");
pub const GET_MART_ITEM_BY_OUTLET_ITEM_ID: Endpoint =
    Endpoint::post("/api/v2/product/get_mart_item_by_outlet_item_id");
/// Absolute values, but each call starts a new task: a blind retry makes a second task with the same values.
pub const BATCH_UPDATE_OUTLET_PRICE: Endpoint = Endpoint::post("/api/v2/product/batch_update_outlet_price");
pub const BATCH_UPDATE_OUTLET_STOCK: Endpoint = Endpoint::post("/api/v2/product/batch_update_outlet_stock");
pub const GET_BATCH_TASK_RESULT: Endpoint = Endpoint::get("/api/v2/product/get_batch_task_result");

pub const ITEM_BASE_INFO_BATCH: usize = 50;
pub const PRICE_STOCK_LIST_MAX: usize = 50;
pub const OUTLET_BATCH_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemStatus {
    Normal,
    Banned,
    Unlist,
    Reviewing,
    SellerDelete,
    ShopeeDelete,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetItemListRequest {
    pub offset: u32,
    /// 1..=100.
    pub page_size: u32,
    /// At least one; sent as a repeated query key (`item_status=NORMAL&item_status=UNLIST`).
    pub item_status: Vec<ItemStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time_from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time_to: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemListEntry {
    pub item_id: ItemId,
    #[serde(default)]
    pub item_status: Option<ItemStatus>,
    #[serde(default)]
    pub update_time: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetItemListResponse {
    #[serde(default)]
    pub item: Vec<ItemListEntry>,
    #[serde(default)]
    pub total_count: u64,
    #[serde(default)]
    pub has_next_page: bool,
    #[serde(default)]
    pub next_offset: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriceInfo {
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub original_price: Option<Number>,
    #[serde(default)]
    pub current_price: Option<Number>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SellerStock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    pub stock: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StockSummary {
    #[serde(default)]
    pub total_reserved_stock: i64,
    #[serde(default)]
    pub total_available_stock: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StockInfoV2 {
    #[serde(default)]
    pub summary_info: Option<StockSummary>,
    #[serde(default)]
    pub seller_stock: Vec<SellerStock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemBaseInfo {
    pub item_id: ItemId,
    #[serde(default)]
    pub category_id: Option<u64>,
    #[serde(default)]
    pub item_name: String,
    #[serde(default)]
    pub item_sku: String,
    #[serde(default)]
    pub item_status: Option<ItemStatus>,
    #[serde(default)]
    pub has_model: bool,
    #[serde(default)]
    pub price_info: Vec<PriceInfo>,
    #[serde(default)]
    pub stock_info_v2: Option<StockInfoV2>,
    /// Kilograms as Shopee writes them in this answer: a string (`"10.02"`), unlike `update_item`'s number.
    #[serde(default)]
    pub weight: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub create_time: Option<i64>,
    #[serde(default)]
    pub update_time: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetItemBaseInfoRequest {
    /// 1..=50, sent as a repeated query key.
    pub item_id_list: Vec<ItemId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetItemBaseInfoResponse {
    #[serde(default)]
    pub item_list: Vec<ItemBaseInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetModelListRequest {
    pub item_id: ItemId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub model_id: ModelId,
    #[serde(default)]
    pub model_sku: String,
    #[serde(default)]
    pub price_info: Vec<PriceInfo>,
    #[serde(default)]
    pub stock_info_v2: Option<StockInfoV2>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetModelListResponse {
    #[serde(default)]
    pub tier_variation: Vec<serde_json::Value>,
    #[serde(default)]
    pub model: Vec<Model>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriceEntry {
    /// `ModelId::NONE` (0) for an item without models.
    pub model_id: ModelId,
    /// Build with [`price_number`] from `Money`.
    pub original_price: Number,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdatePriceRequest {
    pub item_id: ItemId,
    /// 1..=50.
    pub price_list: Vec<PriceEntry>,
}

/// A model Shopee refused: Shopee's error code (when it sends one) and its message.
///
/// Shopee documents `failed_reason` (the message) for `update_price` / `update_stock`; a per-model code comes as
/// `error` (as in the envelope) or, in the style of the discount APIs, `fail_error` (with `fail_message`). Both
/// spellings are read; decide with [`ModelFailure::code`] first and fall back to the message only without a code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFailure {
    #[serde(default)]
    pub model_id: Option<ModelId>,
    #[serde(default)]
    pub location_id: Option<String>,
    /// Shopee's message for this model.
    #[serde(default, alias = "fail_message")]
    pub failed_reason: String,
    /// Shopee's error code for this model, when it sends one (e.g. `error_item_deleted`).
    #[serde(default, alias = "fail_error")]
    pub error: Option<String>,
}

impl ModelFailure {
    /// Shopee's per-model error code; `None` when absent or empty.
    pub fn code(&self) -> Option<&str> {
        self.error.as_deref().map(str::trim).filter(|c| !c.is_empty())
    }

    /// Shopee's message for this model.
    pub fn message(&self) -> &str {
        &self.failed_reason
    }

    /// The class of the code ([`crate::error::classify_code`]); `None` without a code. An unknown code is
    /// `Permanent` there: a caller that must not give up on unknown per-model codes checks the code itself.
    pub fn code_class(&self) -> Option<crate::error::CodeClass> {
        self.code()
            .map(|c| crate::error::classify_code(c, &self.failed_reason))
    }

    /// `code: message`, or the message alone without a code (for logs and dead-letter reasons).
    pub fn describe(&self) -> String {
        match self.code() {
            Some(code) if self.failed_reason.is_empty() => code.to_owned(),
            Some(code) => format!("{code}: {}", self.failed_reason),
            None => self.failed_reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriceSuccess {
    pub model_id: ModelId,
    #[serde(default)]
    pub original_price: Option<Number>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdatePriceResponse {
    #[serde(default)]
    pub success_list: Vec<PriceSuccess>,
    #[serde(default)]
    pub failure_list: Vec<ModelFailure>,
}

impl UpdatePriceResponse {
    pub fn all_succeeded(&self) -> bool {
        self.failure_list.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockEntry {
    pub model_id: ModelId,
    /// Multi-warehouse shops must set `location_id`.
    pub seller_stock: Vec<SellerStock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateStockRequest {
    pub item_id: ItemId,
    /// 1..=50.
    pub stock_list: Vec<StockEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockSuccess {
    pub model_id: ModelId,
    #[serde(default)]
    pub location_id: Option<String>,
    #[serde(default)]
    pub stock: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateStockResponse {
    #[serde(default)]
    pub success_list: Vec<StockSuccess>,
    #[serde(default)]
    pub failure_list: Vec<ModelFailure>,
}

impl UpdateStockResponse {
    pub fn all_succeeded(&self) -> bool {
        self.failure_list.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemDimension {
    pub package_length: u32,
    pub package_width: u32,
    pub package_height: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemImage {
    pub image_id_list: Vec<String>,
}

/// Only the fields set are sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateItemRequest {
    pub item_id: ItemId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_sku: Option<String>,
    /// Kilograms, as Shopee's JSON number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<ItemDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ItemImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_status: Option<ItemStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateItemResponse {
    #[serde(default)]
    pub item_id: Option<ItemId>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Asked by the outlet shop for one of its items.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetMartItemRequest {
    pub outlet_item_id: ItemId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMapping {
    pub mart_model_id: u64,
    pub outlet_model_id: u64,
}

/// Outlet item -> mart item (and model -> model).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MartItemMapping {
    pub mart_item_id: ItemId,
    #[serde(default)]
    pub outlet_item_id: Option<ItemId>,
    #[serde(default)]
    pub model_mapping: Vec<ModelMapping>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetMartItemResponse {
    #[serde(default)]
    pub item_mapping_list: Vec<MartItemMapping>,
}

impl GetMartItemResponse {
    /// The mart item of the outlet item asked for, if Shopee linked one.
    pub fn mart_item_id(&self) -> Option<ItemId> {
        self.item_mapping_list.first().map(|l| l.mart_item_id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutletPriceItem {
    /// The outlet shop the item belongs to (Shopee requires it on every item).
    pub outlet_shop_id: u64,
    pub item_id: ItemId,
    pub price_list: Vec<PriceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchUpdateOutletPriceRequest {
    /// 1..=100.
    pub item_list: Vec<OutletPriceItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutletStockItem {
    /// The outlet shop the item belongs to (Shopee requires it on every item).
    pub outlet_shop_id: u64,
    pub item_id: ItemId,
    pub stock_list: Vec<StockEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchUpdateOutletStockRequest {
    /// 1..=100.
    pub item_list: Vec<OutletStockItem>,
}

/// A batch task id (`int64`; a numeric string is read too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_u64().map(TaskId).ok_or_else(|| {
                serde::de::Error::custom(format!("task_id must be a positive integer, got {n}"))
            }),
            serde_json::Value::String(s) => s
                .parse()
                .map(TaskId)
                .map_err(|_| serde::de::Error::custom(format!("task_id must be an integer, got {s:?}"))),
            other => Err(serde::de::Error::custom(format!(
                "task_id must be an integer, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchTaskCreated {
    pub task_id: TaskId,
}

/// What a batch task does (`task_type`: 1 price, 2 stock; Shopee also has 3 publish outlet and 4 add item).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchTaskType {
    Price,
    Stock,
}

impl BatchTaskType {
    pub fn code(self) -> u8 {
        match self {
            Self::Price => 1,
            Self::Stock => 2,
        }
    }
}

impl Serialize for BatchTaskType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for BatchTaskType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match u8::deserialize(d)? {
            1 => Ok(Self::Price),
            2 => Ok(Self::Stock),
            n => Err(serde::de::Error::custom(format!("unsupported task_type {n}"))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetBatchTaskResultRequest {
    pub task_type: BatchTaskType,
    pub task_id: TaskId,
}

/// One element of a batch that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchFailure {
    #[serde(default)]
    pub shop_id: Option<u64>,
    #[serde(default)]
    pub item_id: Option<ItemId>,
    #[serde(default)]
    pub model_id: Option<ModelId>,
    #[serde(default)]
    pub failed_reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchSuccess {
    #[serde(default)]
    pub shop_id: Option<u64>,
    #[serde(default)]
    pub item_id: Option<ItemId>,
    #[serde(default)]
    pub model_id: Option<ModelId>,
}

/// `publish_status`: 1 ongoing, 2 finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishStatus {
    Ongoing,
    Finished,
    /// A value this client does not know: polled again until the task times out.
    Other(i64),
}

impl Serialize for PublishStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_i64(match self {
            Self::Ongoing => 1,
            Self::Finished => 2,
            Self::Other(n) => *n,
        })
    }
}

impl<'de> Deserialize<'de> for PublishStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match i64::deserialize(d)? {
            1 => Self::Ongoing,
            2 => Self::Finished,
            n => Self::Other(n),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetBatchTaskResultResponse {
    pub publish_status: PublishStatus,
    #[serde(default)]
    pub success_list: Vec<BatchSuccess>,
    #[serde(default)]
    pub failed_list: Vec<BatchFailure>,
}

/// A price for Shopee's JSON number from integer centavos, with no floating-point arithmetic: `1290` -> `12.9`.
pub fn price_number(money: domain::Money) -> Number {
    let c = money.centavos();
    let text = if c % 100 == 0 {
        format!("{}", c / 100)
    } else {
        format!("{}.{:02}", c / 100, c % 100)
    };
    // `text` is a plain decimal, which always parses as a JSON number.
    serde_json::from_str(&text).unwrap_or_else(|_| Number::from(c / 100))
}

fn check_len(api: &'static str, what: &str, len: usize, max: usize) -> Result<()> {
    if len == 0 || len > max {
        return Err(Error::InvalidRequest {
            api,
            problem: format!("{what} must hold 1..={max} entries, got {len}"),
        });
    }
    Ok(())
}

impl ShopeeClient {
    /// `GET /api/v2/product/get_item_list`: one page.
    pub async fn get_item_list(
        &self,
        shop_id: ShopId,
        req: &GetItemListRequest,
    ) -> Result<GetItemListResponse> {
        check_len(GET_ITEM_LIST.path, "page_size", req.page_size as usize, 100)?;
        self.shop_call(shop_id, &GET_ITEM_LIST, req).await
    }

    /// `GET /api/v2/product/get_item_base_info` for any number of items, in calls of at most 50.
    pub async fn get_item_base_info(
        &self,
        shop_id: ShopId,
        item_ids: &[ItemId],
    ) -> Result<Vec<ItemBaseInfo>> {
        let mut out = Vec::with_capacity(item_ids.len());
        for chunk in item_ids.chunks(ITEM_BASE_INFO_BATCH) {
            let req = GetItemBaseInfoRequest {
                item_id_list: chunk.to_vec(),
            };
            let resp: GetItemBaseInfoResponse = self.shop_call(shop_id, &GET_ITEM_BASE_INFO, &req).await?;
            out.extend(resp.item_list);
        }
        Ok(out)
    }

    /// `GET /api/v2/product/get_model_list`.
    pub async fn get_model_list(&self, shop_id: ShopId, item_id: ItemId) -> Result<GetModelListResponse> {
        self.shop_call(shop_id, &GET_MODEL_LIST, &GetModelListRequest { item_id })
            .await
    }

    /// `POST /api/v2/product/update_price` (one item, 1..=50 models). Per-model refusals are in `failure_list`.
    pub async fn update_price(
        &self,
        shop_id: ShopId,
        req: &UpdatePriceRequest,
    ) -> Result<UpdatePriceResponse> {
        check_len(
            UPDATE_PRICE.path,
            "price_list",
            req.price_list.len(),
            PRICE_STOCK_LIST_MAX,
        )?;
        self.shop_call(shop_id, &UPDATE_PRICE, req).await
    }

    /// `POST /api/v2/product/update_stock` (one item, 1..=50 models). Per-model refusals are in `failure_list`.
    pub async fn update_stock(
        &self,
        shop_id: ShopId,
        req: &UpdateStockRequest,
    ) -> Result<UpdateStockResponse> {
        check_len(
            UPDATE_STOCK.path,
            "stock_list",
            req.stock_list.len(),
            PRICE_STOCK_LIST_MAX,
        )?;
        self.shop_call(shop_id, &UPDATE_STOCK, req).await
    }

    /// `POST /api/v2/product/update_item`: content (name, description, images, weight, dimensions, status).
    pub async fn update_item(&self, shop_id: ShopId, req: &UpdateItemRequest) -> Result<UpdateItemResponse> {
        self.shop_call(shop_id, &UPDATE_ITEM, req).await
    }

    /// `POST /api/v2/product/get_mart_item_by_outlet_item_id`, as the outlet shop.
    pub async fn get_mart_item_by_outlet_item_id(
        &self,
        shop_id: ShopId,
        req: &GetMartItemRequest,
    ) -> Result<GetMartItemResponse> {
        self.shop_call(shop_id, &GET_MART_ITEM_BY_OUTLET_ITEM_ID, req)
            .await
    }

    /// `POST /api/v2/product/batch_update_outlet_price` (1..=100 items): starts a task; poll its result.
    pub async fn batch_update_outlet_price(
        &self,
        outlet_shop_id: ShopId,
        req: &BatchUpdateOutletPriceRequest,
    ) -> Result<BatchTaskCreated> {
        check_len(
            BATCH_UPDATE_OUTLET_PRICE.path,
            "item_list",
            req.item_list.len(),
            OUTLET_BATCH_MAX,
        )?;
        self.shop_call(outlet_shop_id, &BATCH_UPDATE_OUTLET_PRICE, req)
            .await
    }

    /// `POST /api/v2/product/batch_update_outlet_stock` (1..=100 items): starts a task; poll its result.
    pub async fn batch_update_outlet_stock(
        &self,
        outlet_shop_id: ShopId,
        req: &BatchUpdateOutletStockRequest,
    ) -> Result<BatchTaskCreated> {
        check_len(
            BATCH_UPDATE_OUTLET_STOCK.path,
            "item_list",
            req.item_list.len(),
            OUTLET_BATCH_MAX,
        )?;
        self.shop_call(outlet_shop_id, &BATCH_UPDATE_OUTLET_STOCK, req)
            .await
    }

    /// `GET /api/v2/product/get_batch_task_result`.
    pub async fn get_batch_task_result(
        &self,
        shop_id: ShopId,
        task_type: BatchTaskType,
        task_id: TaskId,
    ) -> Result<GetBatchTaskResultResponse> {
        self.shop_call(
            shop_id,
            &GET_BATCH_TASK_RESULT,
            &GetBatchTaskResultRequest { task_type, task_id },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn partial_failures_surface_per_model() {
        let r: UpdatePriceResponse = serde_json::from_str(
            r#"{"success_list":[{"model_id":1,"original_price":12.9}],"failure_list":[{"model_id":2,"failed_reason":"error_cannot_update_price_in_promotion"}]}"#,
        )
        .unwrap();
        assert!(!r.all_succeeded());
        assert_eq!(r.failure_list[0].model_id, Some(ModelId::new(2).unwrap()));
        assert_eq!(
            r.failure_list[0].failed_reason,
            "error_cannot_update_price_in_promotion"
        );
        assert_eq!(r.failure_list[0].code(), None, "no code was sent");
    }

    #[test]
    fn per_model_error_code_is_kept_with_its_message() {
        let r: UpdateStockResponse = serde_json::from_str(
            r#"{"success_list":[],"failure_list":[
                {"model_id":1,"failed_reason":"Stock cannot be less than the stock reserved by promotions (5).","error":"error_stock_less_than_promotion_reserved"},
                {"model_id":2,"fail_message":"Please try again later.","fail_error":"error_system_busy"},
                {"model_id":3,"failed_reason":"x","error":""}]}"#,
        )
        .unwrap();
        let [a, b, c] = &r.failure_list[..] else {
            panic!("three failures: {r:?}")
        };
        assert_eq!(a.code(), Some("error_stock_less_than_promotion_reserved"));
        assert_eq!(
            a.message(),
            "Stock cannot be less than the stock reserved by promotions (5)."
        );
        assert_eq!(
            a.describe(),
            "error_stock_less_than_promotion_reserved: Stock cannot be less than the stock reserved by promotions (5)."
        );
        assert_eq!(a.code_class(), Some(crate::error::CodeClass::Permanent));
        assert_eq!(
            (b.code(), b.message()),
            (Some("error_system_busy"), "Please try again later.")
        );
        assert_eq!(b.code_class(), Some(crate::error::CodeClass::Retryable));
        assert_eq!((c.code(), c.code_class()), (None, None));
    }

    #[test]
    fn task_id_reads_numbers_and_strings() {
        let a: BatchTaskCreated = serde_json::from_str(r#"{"task_id":123}"#).unwrap();
        let b: BatchTaskCreated = serde_json::from_str(r#"{"task_id":"123"}"#).unwrap();
        assert_eq!(a.task_id, b.task_id);
        assert!(serde_json::from_str::<BatchTaskCreated>(r#"{"task_id":"x"}"#).is_err());
    }

    #[test]
    fn batch_task_result_reads_publish_status_and_failed_list() {
        let r: GetBatchTaskResultResponse = serde_json::from_str(
            r#"{"publish_status":2,"success_list":[{"shop_id":1,"item_id":2,"model_id":0}],
                "failed_list":[{"shop_id":1,"item_id":3,"model_id":0,"failed_reason":"item deleted"}]}"#,
        )
        .unwrap();
        assert_eq!(r.publish_status, PublishStatus::Finished);
        assert_eq!(r.failed_list[0].failed_reason, "item deleted");
        let q = serde_json::to_value(GetBatchTaskResultRequest {
            task_type: BatchTaskType::Stock,
            task_id: TaskId(9),
        })
        .unwrap();
        assert_eq!(q, serde_json::json!({"task_type": 2, "task_id": 9}));
    }

    proptest! {
        #[test]
        fn price_number_round_trips_through_money(c in 0i64..100_000_000_000) {
            let m = domain::Money::from_centavos(c).unwrap();
            let n = price_number(m);
            prop_assert_eq!(domain::Money::from_shopee_number(&n).unwrap(), m);
        }
    }
}
