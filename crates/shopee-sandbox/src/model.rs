//! The public value types of the sandbox: what tests seed, what they read back, faults and journal entries.
//! Every type is also the JSON shape of the admin API (`/_sandbox/...`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Order statuses Shopee uses (Brazil adds `INVOICE_PENDING`).
pub const ORDER_STATUSES: &[&str] = &[
    "UNPAID",
    "READY_TO_SHIP",
    "PROCESSED",
    "RETRY_SHIP",
    "SHIPPED",
    "TO_CONFIRM_RECEIVE",
    "IN_CANCEL",
    "CANCELLED",
    "TO_RETURN",
    "COMPLETED",
    "INVOICE_PENDING",
];

/// What kind of shop: a normal shop, an Instant Mart "mart" shop, or one of its outlet shops (one per store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ShopKind {
    #[default]
    Normal,
    Mart,
    Outlet {
        mart_shop_id: u64,
    },
}

/// A shop to create explicitly (shops are also created on demand by every seed call).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedShop {
    pub shop_id: u64,
    pub kind: ShopKind,
}

/// One stock entry of a model, per warehouse location (`location_id` absent for single-warehouse shops).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SellerStock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    pub stock: i64,
}

/// A model (variation) of an item. An item without variations has exactly one model with `model_id` 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedModel {
    pub model_id: u64,
    pub model_sku: String,
    pub model_name: String,
    /// The original price (BRL, two decimals), what `update_price` sets.
    pub price: f64,
    pub seller_stock: Vec<SellerStock>,
    /// Stock reserved by promotions outside the sandbox's own discounts: stock may not go below it.
    pub promotion_reserved: i64,
    /// The price is locked by a promotion: `update_price` fails for this model.
    pub price_locked: bool,
}

impl SeedModel {
    /// A model with one stock entry without location.
    pub fn new(model_id: u64, model_sku: &str, price: f64, stock: i64) -> Self {
        Self {
            model_id,
            model_sku: model_sku.to_owned(),
            model_name: format!("model {model_id}"),
            price,
            seller_stock: vec![SellerStock {
                location_id: None,
                stock,
            }],
            ..Self::default()
        }
    }

    /// Replaces the stock by one entry at `location_id` (multi-warehouse shops).
    pub fn at_location(mut self, location_id: &str, stock: i64) -> Self {
        self.seller_stock = vec![SellerStock {
            location_id: Some(location_id.to_owned()),
            stock,
        }];
        self
    }
}

/// Which mart item an outlet item belongs to (Instant Mart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MartLink {
    pub mart_shop_id: u64,
    pub mart_item_id: u64,
}

/// An item to seed (replaces an item with the same id).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedItem {
    pub shop_id: u64,
    pub item_id: u64,
    pub item_name: String,
    pub item_sku: String,
    /// NORMAL, UNLIST, BANNED, REVIEWING, SELLER_DELETE, SHOPEE_DELETE.
    pub item_status: String,
    pub category_id: u64,
    pub description: String,
    pub weight: Option<f64>,
    pub models: Vec<SeedModel>,
    /// The whole item's prices are locked by a promotion.
    pub price_locked: bool,
    /// For an item of an outlet shop: its mart item.
    pub mart: Option<MartLink>,
}

impl Default for SeedItem {
    fn default() -> Self {
        Self {
            shop_id: 0,
            item_id: 0,
            item_name: String::new(),
            item_sku: String::new(),
            item_status: "NORMAL".to_owned(),
            category_id: 100_001,
            description: String::new(),
            weight: None,
            models: Vec::new(),
            price_locked: false,
            mart: None,
        }
    }
}

impl SeedItem {
    /// An item without variations (one model with id 0).
    pub fn single(shop_id: u64, item_id: u64, item_sku: &str, price: f64, stock: i64) -> Self {
        Self {
            shop_id,
            item_id,
            item_name: format!("Item {item_sku}"),
            item_sku: item_sku.to_owned(),
            models: vec![SeedModel::new(0, "", price, stock)],
            ..Self::default()
        }
    }

    /// An item with variations.
    pub fn with_models(shop_id: u64, item_id: u64, item_name: &str, models: Vec<SeedModel>) -> Self {
        Self {
            shop_id,
            item_id,
            item_name: item_name.to_owned(),
            models,
            ..Self::default()
        }
    }
}

/// Permanent per-item failures to inject after seeding (absent fields are left unchanged).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemFlags {
    /// Mark the item deleted (`SELLER_DELETE`) or restore it (`NORMAL`).
    pub deleted: Option<bool>,
    /// Lock every model's price (or only `model_id`'s).
    pub price_locked: Option<bool>,
    /// Promotion-reserved stock (of `model_id`, or of every model).
    pub promotion_reserved: Option<i64>,
    pub model_id: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Geolocation {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RecipientAddress {
    pub name: String,
    pub phone: String,
    pub town: String,
    pub district: String,
    pub city: String,
    pub state: String,
    pub region: String,
    pub zipcode: String,
    pub full_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geolocation: Option<Geolocation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderItem {
    pub item_id: u64,
    pub item_name: String,
    pub item_sku: String,
    pub model_id: u64,
    pub model_name: String,
    pub model_sku: String,
    pub model_quantity_purchased: u32,
    pub model_original_price: f64,
    pub model_discounted_price: f64,
    pub order_item_id: u64,
    pub promotion_type: String,
    pub promotion_id: u64,
    pub weight: f64,
}

/// An order to seed (replaces an order with the same `order_sn`). Times are unix seconds; absent = now.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedOrder {
    pub shop_id: u64,
    pub order_sn: String,
    pub order_status: String,
    pub create_time: Option<i64>,
    pub update_time: Option<i64>,
    pub pay_time: Option<i64>,
    pub buyer_user_id: u64,
    pub buyer_username: String,
    pub buyer_cpf_id: String,
    pub recipient_address: RecipientAddress,
    pub item_list: Vec<OrderItem>,
    pub total_amount: f64,
    pub estimated_shipping_fee: f64,
    pub actual_shipping_fee: f64,
    pub payment_method: String,
    pub shipping_carrier: String,
    /// 90021 seller logistics, 90026 instant delivery ("Entrega Expressa"), 90025.
    pub logistics_channel_id: u64,
    pub note: String,
    pub message_to_seller: String,
    pub days_to_ship: u32,
    /// pickup | dropoff | non_integrated; absent = non_integrated for 9002x channels, pickup otherwise.
    pub shipping_mode: Option<String>,
    pub tracking_number: Option<String>,
}

impl Default for SeedOrder {
    fn default() -> Self {
        Self {
            shop_id: 0,
            order_sn: String::new(),
            order_status: "READY_TO_SHIP".to_owned(),
            create_time: None,
            update_time: None,
            pay_time: None,
            buyer_user_id: 0,
            buyer_username: String::new(),
            buyer_cpf_id: String::new(),
            recipient_address: RecipientAddress::default(),
            item_list: Vec::new(),
            total_amount: 0.0,
            estimated_shipping_fee: 0.0,
            actual_shipping_fee: 0.0,
            payment_method: "Pix".to_owned(),
            shipping_carrier: "Entrega Expressa".to_owned(),
            logistics_channel_id: 90026,
            note: String::new(),
            message_to_seller: String::new(),
            days_to_ship: 1,
            shipping_mode: None,
            tracking_number: None,
        }
    }
}

impl SeedOrder {
    /// A plausible READY_TO_SHIP order in São Paulo with one line: 2 x item (sku, model 0) at 12.90, shipping 4.90.
    pub fn example(shop_id: u64, order_sn: &str, item_id: u64, item_sku: &str) -> Self {
        Self {
            shop_id,
            order_sn: order_sn.to_owned(),
            buyer_user_id: 7_000_001,
            buyer_username: "comprador_teste".to_owned(),
            buyer_cpf_id: "12345678909".to_owned(),
            recipient_address: RecipientAddress {
                name: "Maria da Silva".to_owned(),
                phone: "5511999990000".to_owned(),
                town: String::new(),
                district: "Bela Vista".to_owned(),
                city: "São Paulo".to_owned(),
                state: "SP".to_owned(),
                region: "BR".to_owned(),
                zipcode: "01310100".to_owned(),
                full_address: "Avenida Paulista, 1000, Apto 12, Bela Vista, São Paulo, SP, 01310100"
                    .to_owned(),
                geolocation: Some(Geolocation {
                    latitude: -23.5614,
                    longitude: -46.6559,
                }),
            },
            item_list: vec![OrderItem {
                item_id,
                item_name: format!("Item {item_sku}"),
                item_sku: item_sku.to_owned(),
                model_id: 0,
                model_quantity_purchased: 2,
                model_original_price: 14.90,
                model_discounted_price: 12.90,
                order_item_id: item_id,
                ..OrderItem::default()
            }],
            total_amount: 30.70,
            estimated_shipping_fee: 4.90,
            actual_shipping_fee: 4.90,
            ..Self::default()
        }
    }
}

/// A discount to seed directly, bypassing Shopee's creation rules (e.g. one that is already ongoing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedDiscount {
    pub shop_id: u64,
    /// Absent = the next free id.
    pub discount_id: Option<u64>,
    pub discount_name: String,
    pub start_time: i64,
    pub end_time: i64,
    pub items: Vec<SeedDiscountItem>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedDiscountItem {
    pub item_id: u64,
    pub model_id: u64,
    pub promotion_price: f64,
    pub promotion_stock: i64,
    pub purchase_limit: u32,
}

/// What a fault answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 429 with an `error_rate_limit` envelope (and `Retry-After` when set).
    Http429 {
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// HTTP 5xx (503 by default) with `error_server`.
    ServerError {
        #[serde(default = "default_server_status")]
        status: u16,
    },
    /// HTTP 200 with `error_rate_limit`.
    RateLimit,
    /// Extra latency before the call is handled normally.
    Latency { ms: u64 },
    /// Not an error: the call is checked and handled as usual, but an API whose answer carries an `update_result`
    /// (`logistics/update_tracking_status`) answers success with `update_result: "failed"` and changes nothing.
    /// Other APIs are handled normally.
    UpdateResultFailed,
    /// Any envelope error with any HTTP status (e.g. `error_limit`, `error_inner`, `error_system_busy`).
    Error {
        #[serde(default = "default_ok_status")]
        status: u16,
        error: String,
        #[serde(default)]
        message: String,
    },
}

fn default_server_status() -> u16 {
    503
}
fn default_ok_status() -> u16 {
    200
}

/// A fault for an optional API and shop, active for a number of calls and/or a duration (neither = until cleared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// API path (`/api/v2/product/update_price` or `product/update_price`); absent = every API.
    #[serde(default)]
    pub api: Option<String>,
    /// Absent = every shop (and public calls).
    #[serde(default)]
    pub shop_id: Option<u64>,
    /// How many matching calls it answers before it disappears.
    #[serde(default)]
    pub calls: Option<u32>,
    /// How long it stays active from injection.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            api: None,
            shop_id: None,
            calls: None,
            duration_ms: None,
        }
    }
    pub fn http_429() -> Self {
        Self::new(FaultKind::Http429 {
            retry_after_secs: None,
        })
    }
    pub fn server_error(status: u16) -> Self {
        Self::new(FaultKind::ServerError { status })
    }
    pub fn rate_limit() -> Self {
        Self::new(FaultKind::RateLimit)
    }
    pub fn latency(latency: Duration) -> Self {
        Self::new(FaultKind::Latency {
            ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        })
    }
    pub fn error(status: u16, error: &str, message: &str) -> Self {
        Self::new(FaultKind::Error {
            status,
            error: error.to_owned(),
            message: message.to_owned(),
        })
    }
    /// `logistics/update_tracking_status` answers `update_result: "failed"` (restrict it with `.api(..)`).
    pub fn update_result_failed() -> Self {
        Self::new(FaultKind::UpdateResultFailed)
    }
    pub fn api(mut self, api: &str) -> Self {
        self.api = Some(api.to_owned());
        self
    }
    pub fn shop(mut self, shop_id: u64) -> Self {
        self.shop_id = Some(shop_id);
        self
    }
    pub fn times(mut self, calls: u32) -> Self {
        self.calls = Some(calls);
        self
    }
    pub fn for_duration(mut self, duration: Duration) -> Self {
        self.duration_ms = Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        self
    }
}

/// One Shopee API call as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Unix milliseconds when the call arrived.
    pub at_ms: i64,
    pub method: String,
    /// The API path, e.g. `/api/v2/auth/access_token/get`.
    pub api: String,
    pub shop_id: Option<u64>,
    pub http_status: u16,
    /// Shopee's error code, empty on success.
    pub error: String,
    /// A refusal inside a successful envelope (`update_result: failed`): nothing changed although `error` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_in_answer: Option<String>,
    /// The JSON body (POST) or the query parameters without `sign` and `access_token` (GET).
    pub request: serde_json::Value,
}

/// Where a push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// Being sent.
    Pending,
    /// The callback answered 2xx.
    Delivered,
    /// Dropped, failed or no callback configured: returned by `get_lost_push_message` until confirmed.
    Lost,
}

/// A push the sandbox produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRecord {
    pub message_id: u64,
    pub shop_id: u64,
    pub code: u32,
    pub timestamp: i64,
    pub data: serde_json::Value,
    pub state: PushState,
    pub confirmed: bool,
    /// Why it was lost (dropped on purpose, HTTP status, connection error).
    pub last_error: Option<String>,
    /// The exact body sent (or that would have been sent).
    pub body: String,
}

/// A model's state as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    pub model_id: u64,
    pub model_sku: String,
    pub original_price: f64,
    /// The promotion price when an ongoing discount covers the model, else the original price.
    pub current_price: f64,
    pub seller_stock: Vec<SellerStock>,
    pub total_stock: i64,
    pub promotion_reserved: i64,
    pub price_locked: bool,
}

/// An item's state as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemView {
    pub shop_id: u64,
    pub item_id: u64,
    pub item_name: String,
    pub item_sku: String,
    pub item_status: String,
    pub description: String,
    pub weight: Option<f64>,
    pub dimension: Option<serde_json::Value>,
    pub images: Vec<String>,
    pub update_time: i64,
    pub models: Vec<ModelView>,
}

/// An image taken by `media_space/upload_image`: its id is what `update_item` accepts in `image_id_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedImage {
    pub image_id: String,
    /// `jpeg` or `png`.
    pub format: String,
    /// Bytes.
    pub size: usize,
    /// The shop of a shop-signed upload; None for a public (partner) one.
    pub uploaded_by_shop: Option<u64>,
}

/// An order's state, including the logistics state machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderView {
    pub order: SeedOrder,
    /// LOGISTICS_NOT_START, LOGISTICS_REQUEST_CREATED, LOGISTICS_PICKUP_DONE, LOGISTICS_DELIVERY_DONE,
    /// LOGISTICS_DELIVERY_FAILED.
    pub logistics_status: String,
    pub failed_reason: Option<String>,
    pub tracking_url: Option<String>,
    pub cancel_reason: Option<String>,
}

/// A discount's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountView {
    pub shop_id: u64,
    pub discount_id: u64,
    pub discount_name: String,
    pub start_time: i64,
    pub end_time: i64,
    /// upcoming | ongoing | expired
    pub status: String,
    pub items: Vec<SeedDiscountItem>,
}
