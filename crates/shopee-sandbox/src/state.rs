//! The sandbox's state: shops with tokens, items, orders and discounts; pushes; rate limits; faults; the journal.
//! One `Inner` behind one mutex: every call is handled atomically, which is also what makes two racing refreshes
//! with the same refresh token end with exactly one winner.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::{Value, json};
use shopee_client::sign;

use crate::config::{SandboxConfig, ms};
use crate::error::{Error, Result};
use crate::model::*;

pub(crate) const DAY: i64 = 24 * 3600;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Rounds to centavos (prices are BRL with two decimals).
pub(crate) fn money(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[derive(Debug, Default)]
pub(crate) struct Shop {
    pub kind: ShopKind,
    /// (token, expires_at_ms); older tokens keep a short grace period after a refresh.
    pub access_tokens: Vec<(String, i64)>,
    /// (token, expires_at_ms)
    pub refresh_token: Option<(String, i64)>,
    pub used_refresh_tokens: HashSet<String>,
    pub items: BTreeMap<u64, Item>,
    pub orders: BTreeMap<String, Order>,
    pub discounts: BTreeMap<u64, Discount>,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub item_id: u64,
    pub item_name: String,
    pub item_sku: String,
    pub item_status: String,
    pub category_id: u64,
    pub description: String,
    pub weight: Option<f64>,
    pub dimension: Option<Value>,
    pub images: Vec<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub mart: Option<MartLink>,
    pub models: BTreeMap<u64, Model>,
}

impl Item {
    pub fn has_model(&self) -> bool {
        !self.models.contains_key(&0)
    }
    pub fn deleted(&self) -> bool {
        self.item_status.ends_with("DELETE") || self.item_status == "DELETED"
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub model_id: u64,
    pub model_sku: String,
    pub model_name: String,
    pub original_price: f64,
    pub stock: Vec<SellerStock>,
    pub promotion_reserved: i64,
    pub price_locked: bool,
}

impl Model {
    pub fn total_stock(&self) -> i64 {
        self.stock.iter().map(|s| s.stock).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logistics {
    NotStart,
    RequestCreated,
    PickupDone,
    DeliveryDone,
    DeliveryFailed,
}

impl Logistics {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStart => "LOGISTICS_NOT_START",
            Self::RequestCreated => "LOGISTICS_REQUEST_CREATED",
            Self::PickupDone => "LOGISTICS_PICKUP_DONE",
            Self::DeliveryDone => "LOGISTICS_DELIVERY_DONE",
            Self::DeliveryFailed => "LOGISTICS_DELIVERY_FAILED",
        }
    }

    fn for_status(status: &str) -> Self {
        match status {
            "PROCESSED" => Self::RequestCreated,
            "SHIPPED" => Self::PickupDone,
            "TO_CONFIRM_RECEIVE" | "COMPLETED" => Self::DeliveryDone,
            _ => Self::NotStart,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub data: SeedOrder,
    pub logistics: Logistics,
    pub failed_reason: Option<String>,
    pub tracking_url: Option<String>,
    pub cancel_reason: Option<String>,
    /// When `logistics_pickup_done` was reported.
    pub pickup_done_time: Option<i64>,
    /// The last change of the package (ship_order moves the package, not always the order: channel 90026).
    pub package_update_time: i64,
}

impl Order {
    pub fn create_time(&self) -> i64 {
        self.data.create_time.unwrap_or(0)
    }
    pub fn update_time(&self) -> i64 {
        self.data.update_time.unwrap_or(0)
    }
    /// The package's number (one package per order: the sandbox does not split orders).
    pub fn package_number(&self) -> String {
        format!("PN{}", self.data.order_sn)
    }

    /// The package's `fulfillment_status` / `logistics_status` (Data Definition: PackageFulfillmentStatus).
    pub fn package_status(&self) -> &'static str {
        match (self.data.order_status.as_str(), self.logistics) {
            ("CANCELLED", Logistics::NotStart) => "LOGISTICS_INVALID",
            ("CANCELLED", Logistics::RequestCreated) => "LOGISTICS_REQUEST_CANCELED",
            ("UNPAID" | "INVOICE_PENDING", Logistics::NotStart) => "LOGISTICS_NOT_START",
            (_, Logistics::NotStart) => "LOGISTICS_READY",
            (_, l) => l.as_str(),
        }
    }

    /// ship_order was called for the package (it is arranged).
    pub fn shipment_arranged(&self) -> bool {
        self.logistics != Logistics::NotStart
    }

    pub fn shipping_mode(&self) -> &str {
        match self.data.shipping_mode.as_deref() {
            Some(mode) => mode,
            None if (90021..=90026).contains(&self.data.logistics_channel_id) => "non_integrated",
            None => "pickup",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DiscountModel {
    pub promotion_price: f64,
    pub promotion_stock: i64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DiscountItem {
    pub purchase_limit: u32,
    pub models: BTreeMap<u64, DiscountModel>,
}

#[derive(Debug, Clone)]
pub(crate) struct Discount {
    pub discount_id: u64,
    pub name: String,
    pub start_time: i64,
    pub end_time: i64,
    pub items: BTreeMap<u64, DiscountItem>,
}

impl Discount {
    pub fn status(&self, now: i64) -> &'static str {
        if now < self.start_time {
            "upcoming"
        } else if now < self.end_time {
            "ongoing"
        } else {
            "expired"
        }
    }
    pub fn active(&self, now: i64) -> bool {
        now < self.end_time
    }
}

#[derive(Debug)]
pub(crate) struct AuthCode {
    pub shop_id: u64,
    pub expires_at_ms: i64,
    pub used: bool,
}

#[derive(Debug)]
pub(crate) struct RateRule {
    pub shop_id: Option<u64>,
    pub api: Option<String>,
    pub per_second: u32,
    /// Accepted calls of the last second, per shop (0 for calls without shop).
    pub windows: HashMap<u64, VecDeque<i64>>,
}

#[derive(Debug)]
pub(crate) struct ActiveFault {
    pub fault: Fault,
    pub api: Option<String>,
    pub remaining: Option<u32>,
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct BatchTask {
    pub ready_at_ms: i64,
    /// get_batch_task_result's `task_type`: 1 price, 2 stock.
    pub task_type: u64,
    pub result: Value,
}

/// Makes `product/update_price` and `/api/v2/product/update_price` the same key.
pub(crate) fn normalize_api(api: &str) -> String {
    let trimmed = api.trim().trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("api/v2/").unwrap_or(trimmed);
    format!("/api/v2/{trimmed}")
}

/// A `logistics/upload_serviceable_polygon` task: in progress at its first check, then done (or failed with
/// `problem`).
#[derive(Debug, Clone)]
pub(crate) struct PolygonTask {
    pub shop_id: u64,
    pub checks: u32,
    /// Why the file's polygons are unusable (the task ends with status 2).
    pub problem: Option<String>,
}

pub(crate) struct Inner {
    pub cfg: SandboxConfig,
    pub shops: BTreeMap<u64, Shop>,
    pub codes: HashMap<String, AuthCode>,
    pub pushes: Vec<PushRecord>,
    /// Push ids to deliver once the lock is released.
    pub outgoing: Vec<u64>,
    pub drop_next: u32,
    /// Pushes that are neither sent nor kept for `get_lost_push_message` (Shopee keeps lost pushes 3 days only).
    pub forget_next: u32,
    pub rate_rules: Vec<RateRule>,
    pub faults: Vec<ActiveFault>,
    pub journal: Vec<JournalEntry>,
    pub tasks: BTreeMap<u64, BatchTask>,
    /// Images uploaded through `media_space/upload_image`, by id.
    pub images: BTreeMap<String, UploadedImage>,
    /// The latest KML each shop uploaded through `logistics/upload_serviceable_polygon`.
    pub polygons: BTreeMap<u64, String>,
    /// Polygon upload tasks, by task id.
    pub polygon_tasks: BTreeMap<String, PolygonTask>,
    seq: u64,
    pub next_discount_id: u64,
    pub next_task_id: u64,
}

impl Inner {
    pub fn new(cfg: SandboxConfig) -> Self {
        Self {
            cfg,
            shops: BTreeMap::new(),
            codes: HashMap::new(),
            pushes: Vec::new(),
            outgoing: Vec::new(),
            drop_next: 0,
            forget_next: 0,
            rate_rules: Vec::new(),
            faults: Vec::new(),
            journal: Vec::new(),
            tasks: BTreeMap::new(),
            images: BTreeMap::new(),
            polygons: BTreeMap::new(),
            polygon_tasks: BTreeMap::new(),
            seq: 0,
            next_discount_id: 700_001,
            next_task_id: 1,
        }
    }

    /// A fresh image id, shaped like Shopee's (`br-11134207-...`).
    pub fn new_image_id(&mut self) -> String {
        self.seq += 1;
        format!("br-11134207-sbx{:08x}", self.seq)
    }

    /// A fresh polygon upload task id.
    pub fn new_polygon_task_id(&mut self) -> String {
        self.seq += 1;
        format!("sbx-polygon-{:08x}", self.seq)
    }

    /// A fresh opaque 32-hex token.
    pub fn token(&mut self, purpose: &str) -> String {
        self.seq += 1;
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let mut t = sign::hmac_hex(
            self.cfg.partner_key.as_bytes(),
            format!("{purpose}:{}:{nanos}", self.seq).as_bytes(),
        );
        t.truncate(32);
        t
    }

    pub fn request_id(&mut self) -> String {
        self.token("request")
    }

    pub fn shop_mut(&mut self, shop_id: u64) -> &mut Shop {
        self.shops.entry(shop_id).or_default()
    }

    // ---------- tokens ----------

    pub fn authorize_shop(&mut self, shop_id: u64) -> String {
        self.shop_mut(shop_id);
        let code = self.token("code");
        let expires_at_ms = now_ms() + ms(self.cfg.auth_code_ttl);
        self.codes.insert(
            code.clone(),
            AuthCode {
                shop_id,
                expires_at_ms,
                used: false,
            },
        );
        code
    }

    /// Issues a new pair; previous access tokens keep `old_access_token_grace`.
    pub fn issue_tokens(&mut self, shop_id: u64) -> (String, String) {
        let access = self.token("access");
        let refresh = self.token("refresh");
        let now = now_ms();
        let access_exp = now + ms(self.cfg.access_token_ttl);
        let refresh_exp = now + ms(self.cfg.refresh_token_ttl);
        let grace = now + ms(self.cfg.old_access_token_grace);
        let shop = self.shop_mut(shop_id);
        shop.access_tokens.retain(|(_, exp)| *exp > now);
        for (_, exp) in &mut shop.access_tokens {
            *exp = (*exp).min(grace);
        }
        shop.access_tokens.push((access.clone(), access_exp));
        if let Some((old, _)) = shop.refresh_token.take() {
            shop.used_refresh_tokens.insert(old);
        }
        shop.refresh_token = Some((refresh.clone(), refresh_exp));
        (access, refresh)
    }

    pub fn expire_access_token(&mut self, shop_id: u64) -> Result<()> {
        let shop = self
            .shops
            .get_mut(&shop_id)
            .ok_or_else(|| Error::NotFound(format!("shop {shop_id}")))?;
        let past = now_ms() - 1;
        for (_, exp) in &mut shop.access_tokens {
            *exp = past;
        }
        Ok(())
    }

    pub fn access_token_valid(&self, shop_id: u64, token: &str, now: i64) -> bool {
        self.shops
            .get(&shop_id)
            .is_some_and(|shop| shop.access_tokens.iter().any(|(t, exp)| t == token && *exp > now))
    }

    // ---------- seeding ----------

    pub fn seed_shop(&mut self, seed: &SeedShop) -> Result<()> {
        if seed.shop_id == 0 {
            return Err(Error::Invalid("shop_id must not be 0".into()));
        }
        self.shop_mut(seed.shop_id).kind = seed.kind;
        Ok(())
    }

    pub fn seed_item(&mut self, seed: &SeedItem) -> Result<()> {
        if seed.shop_id == 0 || seed.item_id == 0 {
            return Err(Error::Invalid("shop_id and item_id must not be 0".into()));
        }
        if seed.models.is_empty() {
            return Err(Error::Invalid(format!(
                "item {} needs at least one model (model_id 0 for an item without variations)",
                seed.item_id
            )));
        }
        if seed.models.len() > 1 && seed.models.iter().any(|m| m.model_id == 0) {
            return Err(Error::Invalid(format!(
                "item {}: model_id 0 means no variations and must be the only model",
                seed.item_id
            )));
        }
        let now = now_ms() / 1000;
        let models = seed
            .models
            .iter()
            .map(|m| {
                (
                    m.model_id,
                    Model {
                        model_id: m.model_id,
                        model_sku: m.model_sku.clone(),
                        model_name: m.model_name.clone(),
                        original_price: money(m.price),
                        stock: if m.seller_stock.is_empty() {
                            vec![SellerStock::default()]
                        } else {
                            m.seller_stock.clone()
                        },
                        promotion_reserved: m.promotion_reserved,
                        price_locked: m.price_locked || seed.price_locked,
                    },
                )
            })
            .collect();
        let item = Item {
            item_id: seed.item_id,
            item_name: if seed.item_name.is_empty() {
                format!("Item {}", seed.item_id)
            } else {
                seed.item_name.clone()
            },
            item_sku: seed.item_sku.clone(),
            item_status: seed.item_status.clone(),
            category_id: seed.category_id,
            description: seed.description.clone(),
            weight: seed.weight,
            dimension: None,
            images: Vec::new(),
            create_time: now,
            update_time: now,
            mart: seed.mart,
            models,
        };
        self.shop_mut(seed.shop_id).items.insert(seed.item_id, item);
        Ok(())
    }

    pub fn set_item_flags(&mut self, shop_id: u64, item_id: u64, flags: &ItemFlags) -> Result<()> {
        let item = self.item_mut(shop_id, item_id)?;
        if let Some(deleted) = flags.deleted {
            item.item_status = if deleted { "SELLER_DELETE" } else { "NORMAL" }.to_owned();
        }
        for model in item.models.values_mut() {
            if flags.model_id.is_some_and(|id| id != model.model_id) {
                continue;
            }
            if let Some(locked) = flags.price_locked {
                model.price_locked = locked;
            }
            if let Some(reserved) = flags.promotion_reserved {
                model.promotion_reserved = reserved;
            }
        }
        Ok(())
    }

    pub fn item_mut(&mut self, shop_id: u64, item_id: u64) -> Result<&mut Item> {
        self.shops
            .get_mut(&shop_id)
            .and_then(|s| s.items.get_mut(&item_id))
            .ok_or_else(|| Error::NotFound(format!("item {item_id} of shop {shop_id}")))
    }

    pub fn seed_order(&mut self, seed: &SeedOrder) -> Result<()> {
        if seed.shop_id == 0 || seed.order_sn.trim().is_empty() {
            return Err(Error::Invalid("shop_id and order_sn are required".into()));
        }
        if !ORDER_STATUSES.contains(&seed.order_status.as_str()) {
            return Err(Error::Invalid(format!(
                "unknown order_status {}",
                seed.order_status
            )));
        }
        let now = now_ms() / 1000;
        let mut data = seed.clone();
        data.create_time = Some(seed.create_time.unwrap_or(now));
        data.update_time = Some(seed.update_time.unwrap_or(now));
        if data.pay_time.is_none() && data.order_status != "UNPAID" {
            data.pay_time = data.create_time;
        }
        let package_update_time = data.update_time.unwrap_or(now);
        let order = Order {
            logistics: Logistics::for_status(&data.order_status),
            data,
            failed_reason: None,
            tracking_url: None,
            cancel_reason: None,
            pickup_done_time: None,
            package_update_time,
        };
        let (status, update_time) = (order.data.order_status.clone(), order.update_time());
        self.shop_mut(seed.shop_id)
            .orders
            .insert(seed.order_sn.clone(), order);
        if self.cfg.push_on_seed {
            self.order_push(seed.shop_id, &seed.order_sn, &status, update_time);
        }
        Ok(())
    }

    pub fn order_mut(&mut self, shop_id: u64, order_sn: &str) -> Result<&mut Order> {
        self.shops
            .get_mut(&shop_id)
            .and_then(|s| s.orders.get_mut(order_sn))
            .ok_or_else(|| Error::NotFound(format!("order {order_sn} of shop {shop_id}")))
    }

    /// Changes an order's status (now as update_time) and pushes it (code 3).
    pub fn set_order_status(&mut self, shop_id: u64, order_sn: &str, status: &str) -> Result<()> {
        if !ORDER_STATUSES.contains(&status) {
            return Err(Error::Invalid(format!("unknown order_status {status}")));
        }
        let now = now_ms() / 1000;
        let order = self.order_mut(shop_id, order_sn)?;
        order.data.order_status = status.to_owned();
        order.data.update_time = Some(now.max(order.update_time()));
        let update_time = order.update_time();
        if order.logistics == Logistics::NotStart {
            order.logistics = Logistics::for_status(status);
        }
        self.order_push(shop_id, order_sn, status, update_time);
        Ok(())
    }

    pub fn seed_discount(&mut self, seed: &SeedDiscount) -> Result<u64> {
        if seed.shop_id == 0 || seed.end_time <= seed.start_time {
            return Err(Error::Invalid(
                "shop_id is required and end_time must be after start_time".into(),
            ));
        }
        let id = match seed.discount_id {
            Some(id) => id,
            None => {
                self.next_discount_id += 1;
                self.next_discount_id
            }
        };
        let mut items: BTreeMap<u64, DiscountItem> = BTreeMap::new();
        for it in &seed.items {
            let entry = items.entry(it.item_id).or_default();
            entry.purchase_limit = it.purchase_limit;
            entry.models.insert(
                it.model_id,
                DiscountModel {
                    promotion_price: money(it.promotion_price),
                    promotion_stock: it.promotion_stock,
                },
            );
        }
        self.shop_mut(seed.shop_id).discounts.insert(
            id,
            Discount {
                discount_id: id,
                name: seed.discount_name.clone(),
                start_time: seed.start_time,
                end_time: seed.end_time,
                items,
            },
        );
        Ok(id)
    }

    // ---------- derived values ----------

    /// The promotion price of an ongoing discount covering the model, if any.
    pub fn promotion_price(&self, shop_id: u64, item_id: u64, model_id: u64, now: i64) -> Option<f64> {
        let shop = self.shops.get(&shop_id)?;
        shop.discounts
            .values()
            .filter(|d| d.status(now) == "ongoing")
            .filter_map(|d| d.items.get(&item_id)?.models.get(&model_id))
            .map(|m| m.promotion_price)
            .reduce(f64::min)
    }

    /// Stock that may not be sold elsewhere: seeded reserve + promotion stock of upcoming/ongoing discounts.
    pub fn reserved_stock(&self, shop_id: u64, item_id: u64, model_id: u64, now: i64) -> i64 {
        let Some(shop) = self.shops.get(&shop_id) else {
            return 0;
        };
        let seeded = shop
            .items
            .get(&item_id)
            .and_then(|i| i.models.get(&model_id))
            .map_or(0, |m| m.promotion_reserved);
        let discounts: i64 = shop
            .discounts
            .values()
            .filter(|d| d.active(now))
            .filter_map(|d| d.items.get(&item_id)?.models.get(&model_id))
            .map(|m| m.promotion_stock)
            .sum();
        seeded + discounts
    }

    pub fn item_view(&self, shop_id: u64, item_id: u64) -> Option<ItemView> {
        let item = self.shops.get(&shop_id)?.items.get(&item_id)?;
        let now = now_ms() / 1000;
        Some(ItemView {
            shop_id,
            item_id,
            item_name: item.item_name.clone(),
            item_sku: item.item_sku.clone(),
            item_status: item.item_status.clone(),
            description: item.description.clone(),
            weight: item.weight,
            dimension: item.dimension.clone(),
            images: item.images.clone(),
            update_time: item.update_time,
            models: item
                .models
                .values()
                .map(|m| ModelView {
                    model_id: m.model_id,
                    model_sku: m.model_sku.clone(),
                    original_price: m.original_price,
                    current_price: self
                        .promotion_price(shop_id, item_id, m.model_id, now)
                        .unwrap_or(m.original_price),
                    seller_stock: m.stock.clone(),
                    total_stock: m.total_stock(),
                    promotion_reserved: self.reserved_stock(shop_id, item_id, m.model_id, now),
                    price_locked: m.price_locked,
                })
                .collect(),
        })
    }

    pub fn order_view(&self, shop_id: u64, order_sn: &str) -> Option<OrderView> {
        let order = self.shops.get(&shop_id)?.orders.get(order_sn)?;
        Some(OrderView {
            order: order.data.clone(),
            logistics_status: order.logistics.as_str().to_owned(),
            failed_reason: order.failed_reason.clone(),
            tracking_url: order.tracking_url.clone(),
            cancel_reason: order.cancel_reason.clone(),
        })
    }

    pub fn discount_view(&self, shop_id: u64, discount_id: u64) -> Option<DiscountView> {
        let d = self.shops.get(&shop_id)?.discounts.get(&discount_id)?;
        Some(DiscountView {
            shop_id,
            discount_id,
            discount_name: d.name.clone(),
            start_time: d.start_time,
            end_time: d.end_time,
            status: d.status(now_ms() / 1000).to_owned(),
            items: d
                .items
                .iter()
                .flat_map(|(item_id, it)| {
                    it.models.iter().map(move |(model_id, m)| SeedDiscountItem {
                        item_id: *item_id,
                        model_id: *model_id,
                        promotion_price: m.promotion_price,
                        promotion_stock: m.promotion_stock,
                        purchase_limit: it.purchase_limit,
                    })
                })
                .collect(),
        })
    }

    // ---------- pushes ----------

    /// Records an order-status push (code 3) and queues it for delivery (or marks it lost).
    pub fn order_push(&mut self, shop_id: u64, order_sn: &str, status: &str, update_time: i64) {
        let data = json!({
            "ordersn": order_sn,
            "status": status,
            "completed_scenario": "",
            "update_time": update_time,
        });
        self.push(shop_id, 3, data);
    }

    pub fn push(&mut self, shop_id: u64, code: u32, data: Value) {
        let message_id = self.pushes.last().map_or(1, |p| p.message_id + 1);
        let timestamp = now_ms() / 1000;
        let body = json!({"shop_id": shop_id, "code": code, "timestamp": timestamp, "data": data});
        if self.forget_next > 0 {
            self.forget_next -= 1;
            return;
        }
        let (state, last_error) = if self.drop_next > 0 {
            self.drop_next -= 1;
            (PushState::Lost, Some("dropped by the sandbox".to_owned()))
        } else if self.cfg.push_callback_url.is_none() {
            (
                PushState::Lost,
                Some("no push callback URL configured".to_owned()),
            )
        } else {
            self.outgoing.push(message_id);
            (PushState::Pending, None)
        };
        self.pushes.push(PushRecord {
            message_id,
            shop_id,
            code,
            timestamp,
            data,
            state,
            confirmed: false,
            last_error,
            body: body.to_string(),
        });
    }

    pub fn push_mut(&mut self, message_id: u64) -> Option<&mut PushRecord> {
        self.pushes.iter_mut().find(|p| p.message_id == message_id)
    }

    // ---------- rate limits and faults ----------

    pub fn set_rate_limit(&mut self, shop_id: Option<u64>, api: Option<String>, per_second: u32) {
        let api = api.map(|a| normalize_api(&a));
        self.rate_rules
            .retain(|r| !(r.shop_id == shop_id && r.api == api));
        if per_second > 0 {
            self.rate_rules.push(RateRule {
                shop_id,
                api,
                per_second,
                windows: HashMap::new(),
            });
        }
    }

    /// True when the call fits every matching limit (and is then counted), false when one is exceeded.
    pub fn admit(&mut self, shop_id: Option<u64>, api: &str, now_ms: i64) -> bool {
        let key = shop_id.unwrap_or(0);
        let matching = |r: &RateRule| {
            r.shop_id.is_none_or(|s| Some(s) == shop_id) && r.api.as_deref().is_none_or(|a| a == api)
        };
        for rule in self.rate_rules.iter_mut().filter(|r| matching(r)) {
            let window = rule.windows.entry(key).or_default();
            while window.front().is_some_and(|t| *t <= now_ms - 1000) {
                window.pop_front();
            }
            if window.len() >= rule.per_second as usize {
                return false;
            }
        }
        for rule in self.rate_rules.iter_mut().filter(|r| matching(r)) {
            rule.windows.entry(key).or_default().push_back(now_ms);
        }
        true
    }

    pub fn inject_fault(&mut self, fault: Fault) {
        let until_ms = fault
            .duration_ms
            .map(|d| now_ms() + i64::try_from(d).unwrap_or(i64::MAX / 2));
        self.faults.push(ActiveFault {
            api: fault.api.as_deref().map(normalize_api),
            remaining: fault.calls,
            until_ms,
            fault,
        });
    }

    /// The latency to add and the error fault to answer with, for this call (consuming fault counts).
    pub fn take_faults(&mut self, shop_id: Option<u64>, api: &str, now_ms: i64) -> (u64, Option<FaultKind>) {
        self.faults
            .retain(|f| f.remaining.is_none_or(|n| n > 0) && f.until_ms.is_none_or(|until| until > now_ms));
        let mut latency = 0;
        let mut answer = None;
        for f in &mut self.faults {
            let applies = f.api.as_deref().is_none_or(|a| a == api)
                && f.fault.shop_id.is_none_or(|s| Some(s) == shop_id);
            if !applies {
                continue;
            }
            match &f.fault.kind {
                FaultKind::Latency { ms } => latency += ms,
                kind if answer.is_none() => answer = Some(kind.clone()),
                _ => continue,
            }
            if let Some(n) = &mut f.remaining {
                *n -= 1;
            }
        }
        (latency, answer)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn inner() -> Inner {
        Inner::new(SandboxConfig::new(1, "k"))
    }

    #[test]
    fn api_names_normalize() {
        assert_eq!(
            normalize_api("product/update_price"),
            "/api/v2/product/update_price"
        );
        assert_eq!(
            normalize_api("/api/v2/product/update_price"),
            "/api/v2/product/update_price"
        );
        assert_eq!(normalize_api("api/v2/a/b"), "/api/v2/a/b");
    }

    #[test]
    fn the_rate_window_slides_and_counts_only_admitted_calls() {
        let mut s = inner();
        s.set_rate_limit(Some(7), None, 2);
        let api = "/api/v2/x/y";
        assert!(s.admit(Some(7), api, 1_000));
        assert!(s.admit(Some(7), api, 1_100));
        assert!(!s.admit(Some(7), api, 1_900));
        assert!(s.admit(Some(8), api, 1_900), "another shop");
        assert!(s.admit(Some(7), api, 2_001), "the first call left the window");
        assert!(!s.admit(Some(7), api, 2_050));
        s.set_rate_limit(Some(7), None, 0);
        assert!(s.admit(Some(7), api, 2_060), "0 removes the rule");
    }

    #[test]
    fn per_shop_rules_without_shop_count_each_shop_separately() {
        let mut s = inner();
        s.set_rate_limit(None, Some("x/y".into()), 1);
        assert!(s.admit(Some(1), "/api/v2/x/y", 0));
        assert!(s.admit(Some(2), "/api/v2/x/y", 0));
        assert!(!s.admit(Some(1), "/api/v2/x/y", 10));
        assert!(s.admit(Some(1), "/api/v2/x/z", 10), "another api");
    }

    #[test]
    fn faults_are_consumed_per_matching_call() {
        let mut s = inner();
        s.inject_fault(Fault::server_error(500).api("x/y").times(1));
        s.inject_fault(Fault::latency(std::time::Duration::from_millis(5)).times(2));
        let (lat, kind) = s.take_faults(Some(1), "/api/v2/x/z", 0);
        assert_eq!((lat, kind), (5, None));
        let (lat, kind) = s.take_faults(Some(1), "/api/v2/x/y", 0);
        assert_eq!((lat, kind), (5, Some(FaultKind::ServerError { status: 500 })));
        assert_eq!(s.take_faults(Some(1), "/api/v2/x/y", 0), (0, None));
    }

    #[test]
    fn a_refresh_keeps_the_old_access_token_for_the_grace_period_only() {
        let mut s = inner();
        let (a1, r1) = s.issue_tokens(5);
        let (a2, r2) = s.issue_tokens(5);
        let now = now_ms();
        assert!(s.access_token_valid(5, &a1, now));
        assert!(s.access_token_valid(5, &a2, now));
        assert!(!s.access_token_valid(5, &a1, now + 301_000));
        assert!(s.access_token_valid(5, &a2, now + 301_000));
        assert!(s.shops[&5].used_refresh_tokens.contains(&r1));
        assert_eq!(s.shops[&5].refresh_token.as_ref().unwrap().0, r2);
    }

    #[test]
    fn seeding_rejects_inconsistent_items_and_orders() {
        let mut s = inner();
        let mut item = SeedItem::single(1, 2, "A", 1.0, 1);
        item.models.push(SeedModel::new(3, "B", 1.0, 1));
        assert!(matches!(s.seed_item(&item), Err(Error::Invalid(_))));
        assert!(s.seed_item(&SeedItem::with_models(1, 2, "x", vec![])).is_err());
        let mut order = SeedOrder::example(1, "SN", 2, "A");
        order.order_status = "LOST".into();
        assert!(s.seed_order(&order).is_err());
    }
}
