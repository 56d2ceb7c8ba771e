//! `POST /shopee/quotation`: Shopee's freight quotation call for the two seller-managed channels of Shopee Brazil,
//! in the shapes of Shopee's Brazil guides (docs/quotation.md has both shapes, examples and every choice made where
//! the guides are silent or contradict themselves).
//!
//! 1. `partner_id`, `timestamp` and `sign` come from the query string (decoded by axum's `Query`):
//!    `sign` = HMAC-SHA256(partner key, `partner_id + QUOTATION_SIGN_PATH + timestamp`), constant time, timestamp
//!    within `QUOTATION_TIMESTAMP_WINDOW_SECS` (300: "expires in 5 minutes").
//! 2. The body is validated field by field ([`validate`]), so a bad value gets the guide's error name for that field,
//!    then read into the typed [`QuotationRequest`] (or [`FallbackRequest`] when it carries only `shop_id`).
//! 3. The hub comes from the in-memory Hub Config snapshot — never a network or database call on this path:
//!    - channel 90026 (Entrega Expressa, `channel_id` and `destination_lat_long` present): the active, open hub of
//!      the quoted shop whose radius covers the destination (haversine, R = 6,371 km), the nearest when several do.
//!      Price = base_fee + fee_per_km x distance, half-up to the centavo; handling = preparation (>= 1 minute);
//!      shipping = travel minutes at speed_kmh rounded up; promise = their sum; all in minutes.
//!    - channel 90021 (seller logistics, no `channel_id`): the active hub of the shop whose `zip_ranges` hold
//!      `destination_zip_code`. Price = zip_fee; handling 1 and shipping 0 business days when the hub is open now,
//!      else 1 and 1.
//!    - either price is 0 when the order value (sum of price x quantity) reaches free_above.
//! 4. No hub, closed (90026), outside every radius / range -> 403 `error_destination_zip_code`; anything unforeseen
//!    (no hub config ever loaded, a panic) -> 500 `Internal system error`, which makes Shopee use the seller's
//!    contingency table.
//!
//! Opening hours are America/Sao_Paulo local time, computed as a fixed UTC-3 offset: Brazil has had no daylight
//! saving time since 2019.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Timelike, Utc};
use domain::Money;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use service_runtime::config::Secret;
use shopee_client::sign::{self, QuotationCall, QuotationCheck};

use crate::hub_config::{Hub, HubDirectory, Snapshot};

/// Shopee's quotation bodies are small; this is generous.
pub const MAX_QUOTATION_BYTES: usize = 256 * 1024;
/// The path Shopee signs ("api full path" in the guides; `QUOTATION_SIGN_PATH` changes it, e.g. to the full URL).
pub const DEFAULT_SIGN_PATH: &str = "/shopee/quotation";
pub const EARTH_RADIUS_KM: f64 = 6371.0;
/// America/Sao_Paulo: UTC-3 all year since 2019.
pub const SAO_PAULO_OFFSET_SECS: i32 = -3 * 3600;
/// Entrega Expressa: instant delivery, times in minutes.
pub const CHANNEL_INSTANT: u64 = 90026;
/// Logística do vendedor: times in business days; Shopee sends no `channel_id` for it.
pub const CHANNEL_SELLER_LOGISTICS: u64 = 90021;

pub struct QuotationConfig {
    pub partner_id: u64,
    pub partner_key: Secret,
    pub sign_path: String,
    pub window_secs: i64,
}

#[derive(Clone)]
pub struct QuotationState {
    pub config: Arc<QuotationConfig>,
    pub hubs: HubDirectory,
}

// ---------------------------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------------------------

/// The signature parameters, from the query string. Kept as text so a missing value and an unreadable one get
/// different answers.
#[derive(Debug, Default, Deserialize)]
pub struct SignQuery {
    pub partner_id: Option<String>,
    pub timestamp: Option<String>,
    pub sign: Option<String>,
}

/// A quotation request (both channels; 90021 carries no `channel_id` and no `destination_lat_long`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u64>,
    pub shop_id: u64,
    pub origin_zip_code: String,
    pub destination_zip_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_lat_long: Option<LatLong>,
    pub items: Vec<RequestItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLong {
    #[serde(deserialize_with = "number_or_string")]
    pub latitude: f64,
    #[serde(deserialize_with = "number_or_string")]
    pub longitude: f64,
}

/// One line of the request; echoed as received in the answer's package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestItem {
    pub item_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// 0 on product-page quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sku: Option<String>,
    /// 0 on product-page quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<u64>,
    pub quantity: u32,
    /// Unit price in BRL, as Shopee wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Number>,
    pub dimensions: ItemDimensions,
}

/// Per unit: centimetres and grams, as Shopee wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemDimensions {
    pub length: Number,
    pub width: Number,
    pub height: Number,
    pub weight: Number,
}

/// The 90026 fallback call: only the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackRequest {
    pub shop_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackAnswer {
    pub shop_id: u64,
    /// Minutes.
    pub fallback_promise_time: u32,
}

/// The success answer. 90026 carries `channel_id` and `fallback_promise_time`; 90021 carries neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotationAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u64>,
    pub quotation_id: u64,
    pub destination_zip_code: String,
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_promise_time: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub dimensions: PackageDimensions,
    pub items: Vec<RequestItem>,
    pub quotations: Vec<Quote>,
}

/// The whole package: centimetres and grams, whole numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDimensions {
    pub length: u64,
    pub width: u64,
    pub height: u64,
    pub weight: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// BRL, two decimals at most.
    pub price: Number,
    /// 90026: minutes (>= 1); 90021: business days (>= 1).
    pub handling_time: u32,
    pub shipping_time: u32,
    pub promise_time: u32,
    /// The hub id: Shopee shows it back in the order's `shipping_carrier`.
    pub service_code: String,
}

/// Every refusal, 403 or 500.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub request_id: String,
    pub error: String,
    pub message: String,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64().ok_or_else(|| serde::de::Error::custom("not a number")),
        Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected a number")),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Refusals: the guides' error table (names and messages as Shopee lists them)
// ---------------------------------------------------------------------------------------------------------------

/// A 403 answer of the guides' error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub message: &'static str,
}

const fn refusal(error: &'static str, message: &'static str) -> Refusal {
    Refusal { error, message }
}

impl Refusal {
    pub const NO_PARTNER_ID: Refusal = refusal("error_partner_id", "there is no partner_id in query");
    pub const PARTNER_ID: Refusal = refusal("error_partner_id", "partner_id is invalid");
    // The guides print "error_ sign" / "error_ shop_id" with a space; we answer without it (docs/quotation.md).
    pub const NO_SIGN: Refusal = refusal("error_sign", "there is no sign in query");
    pub const SIGN: Refusal = refusal("error_sign", "your sign is invalid");
    pub const NO_TIMESTAMP: Refusal = refusal("error_timestamp", "there is no timestamp in query");
    pub const TIMESTAMP: Refusal = refusal("error_timestamp", "your timestamp is invalid");
    pub const NO_SHOP_ID: Refusal = refusal("error_shop_id", "there is no shop_id in body");
    pub const SHOP_ID: Refusal = refusal("error_shop_id", "The shop_id is invalid");
    pub const ORIGIN_ZIP: Refusal = refusal("Invalid origin_zip_code", "The origin_zip_code is invalid");
    pub const DESTINATION_ZIP: Refusal = refusal(
        "invalid destination_zip_code",
        "The destination_zip_code is invalid",
    );
    pub const NO_CHANNEL: Refusal =
        refusal("error_destination_zip_code", "No shipping channel is available.");
    pub const ITEM_ID: Refusal = refusal("Invalid item_id", "The item_id is invalid");
    pub const MODEL_ID: Refusal = refusal("Invalid model_id", "The model_id is invalid");
    pub const SKU: Refusal = refusal("Invalid sku", "The sku is not valid");
    pub const CATEGORY_ID: Refusal = refusal("invalid category_id", "The category_id is invalid");
    pub const QUANTITY: Refusal = refusal("invalid quantity", "The quantity is invalid");
    pub const PRICE: Refusal = refusal("invalid price", "The price is invalid");
    pub const DIMENSIONS: Refusal = refusal("error_dimensions", "The dimensions is invalid");
    pub const LENGTH: Refusal = refusal("error_length", "The length is invalid");
    pub const WIDTH: Refusal = refusal("error_width", "The width is invalid");
    pub const HEIGHT: Refusal = refusal("error_height", "The height is invalid");
    pub const WEIGHT: Refusal = refusal("error_weight", "The weight is invalid");
}

/// The guides' answer for errors outside the table; Shopee then quotes from the contingency table.
pub const INTERNAL_ERROR: Refusal = refusal("Internal system error", "internal system error");

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn error_answer(status: StatusCode, r: Refusal) -> Response {
    let body = ErrorAnswer {
        request_id: request_id(),
        error: r.error.to_owned(),
        message: r.message.to_owned(),
    };
    (status, Json(body)).into_response()
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: the first bad field decides the error name
// ---------------------------------------------------------------------------------------------------------------

/// A CEP: 8 digits; `-` and `.` separators are tolerated (the guides promise digits only).
pub fn cep(raw: &str) -> Option<u32> {
    let mut value: u32 = 0;
    let mut digits = 0;
    for b in raw.bytes() {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 8 {
                    return None;
                }
                value = value * 10 + u32::from(b - b'0');
            }
            b'-' | b'.' => {}
            _ => return None,
        }
    }
    (digits == 8).then_some(value)
}

/// What the body is, once validated.
#[derive(Debug, PartialEq)]
pub enum Body {
    Quotation(QuotationRequest),
    Fallback(FallbackRequest),
}

/// Fields only a full quotation carries: a body with none of them is the fallback call `{shop_id}`.
const QUOTATION_ONLY_FIELDS: [&str; 4] = [
    "items",
    "origin_zip_code",
    "destination_zip_code",
    "destination_lat_long",
];

fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn positive_id(v: Option<&Value>) -> bool {
    v.and_then(Value::as_u64).is_some_and(|n| n > 0)
}

/// Absent, null, or a non-negative integer (0 is what product-page quotes send).
fn optional_id(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.as_u64().is_some())
}

fn optional_text(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.is_string())
}

fn non_negative(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64)
        .is_some_and(|f| f.is_finite() && f >= 0.0)
}

fn coordinate(v: Option<&Value>, limit: f64) -> bool {
    let f = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    f.is_some_and(|f| f.is_finite() && f.abs() <= limit)
}

fn check_item(item: &Value) -> Result<(), Refusal> {
    let Some(item) = item.as_object() else {
        return Err(Refusal::ITEM_ID);
    };
    if !positive_id(item.get("item_id")) {
        return Err(Refusal::ITEM_ID);
    }
    if !optional_text(item.get("sku")) || !optional_text(item.get("model_sku")) {
        return Err(Refusal::SKU);
    }
    if !optional_id(item.get("model_id")) {
        return Err(Refusal::MODEL_ID);
    }
    if !optional_id(item.get("category_id")) {
        return Err(Refusal::CATEGORY_ID);
    }
    let quantity = item.get("quantity").and_then(Value::as_u64);
    if !quantity.is_some_and(|q| q >= 1 && q <= u64::from(u32::MAX)) {
        return Err(Refusal::QUANTITY);
    }
    if let Some(price) = present(item, "price") {
        let ok = price
            .as_number()
            .is_some_and(|n| Money::from_shopee_number(n).is_ok());
        if !ok {
            return Err(Refusal::PRICE);
        }
    }
    let Some(dims) = item.get("dimensions").and_then(Value::as_object) else {
        return Err(Refusal::DIMENSIONS);
    };
    for (field, refusal) in [
        ("length", Refusal::LENGTH),
        ("width", Refusal::WIDTH),
        ("height", Refusal::HEIGHT),
        ("weight", Refusal::WEIGHT),
    ] {
        if !non_negative(dims.get(field)) {
            return Err(refusal);
        }
    }
    Ok(())
}

/// Checks the body in the guides' field order and reads it into its typed shape.
pub fn validate(body: &[u8]) -> Result<Body, Refusal> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(Refusal::NO_SHOP_ID);
    };
    match present(&obj, "shop_id") {
        None => return Err(Refusal::NO_SHOP_ID),
        Some(v) if !positive_id(Some(v)) => return Err(Refusal::SHOP_ID),
        Some(_) => {}
    }
    if !QUOTATION_ONLY_FIELDS.iter().any(|f| obj.contains_key(*f)) {
        let shop_id = obj.get("shop_id").and_then(Value::as_u64).unwrap_or_default();
        return Ok(Body::Fallback(FallbackRequest { shop_id }));
    }
    if !optional_id(obj.get("channel_id")) {
        return Err(Refusal::NO_CHANNEL);
    }
    let zip = |key| obj.get(key).and_then(Value::as_str).and_then(cep).is_some();
    if !zip("origin_zip_code") {
        return Err(Refusal::ORIGIN_ZIP);
    }
    if !zip("destination_zip_code") {
        return Err(Refusal::DESTINATION_ZIP);
    }
    if let Some(ll) = present(&obj, "destination_lat_long") {
        // The guides have no error name for coordinates: we cannot place the buyer, so no channel serves them.
        let ok = ll
            .as_object()
            .is_some_and(|ll| coordinate(ll.get("latitude"), 90.0) && coordinate(ll.get("longitude"), 180.0));
        if !ok {
            return Err(Refusal::NO_CHANNEL);
        }
    }
    match obj.get("items").and_then(Value::as_array) {
        Some(items) if !items.is_empty() => items.iter().try_for_each(check_item)?,
        _ => return Err(Refusal::ITEM_ID),
    }
    // Every rule above holds, so the typed read cannot fail unless the two disagree (a bug: answered 500).
    match QuotationRequest::deserialize(Value::Object(obj)) {
        Ok(req) => Ok(Body::Quotation(req)),
        Err(e) => {
            tracing::error!(error = %e, "a validated quotation body does not read as QuotationRequest");
            Err(INTERNAL_ERROR)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------------------------

pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Brazil's bounding box, islands included: latitude -34 .. 6, longitude -75 .. -28.
fn in_brazil(latitude: f64, longitude: f64) -> bool {
    (-34.0..=6.0).contains(&latitude) && (-75.0..=-28.0).contains(&longitude)
}

impl LatLong {
    /// The guide's own example swaps latitude and longitude. When the point as sent is outside Brazil and the
    /// swapped one is inside, the swapped one is meant (the two readings cannot both be in Brazil but in the sea).
    pub fn in_brazil_order(self) -> LatLong {
        if !in_brazil(self.latitude, self.longitude) && in_brazil(self.longitude, self.latitude) {
            LatLong {
                latitude: self.longitude,
                longitude: self.latitude,
            }
        } else {
            self
        }
    }
}

/// `Some(0)` when the order value reaches free_above, else `fee`.
fn unless_free(hub: &Hub, fee: Money, order_value: Option<Money>) -> Money {
    match (hub.free_above, order_value) {
        (Some(free), Some(value)) if value >= free => Money::ZERO,
        _ => fee,
    }
}

/// base_fee + fee_per_km x distance, rounded half-up to the centavo; the distance enters as whole millimetres.
pub fn fee(hub: &Hub, distance_km: f64, order_value: Option<Money>) -> Money {
    let mm = (distance_km * 1_000_000.0).round().max(0.0) as u64;
    let variable = hub
        .fee_per_km
        .mul_ratio_half_up(mm, 1_000_000)
        .unwrap_or(Money::ZERO);
    unless_free(hub, hub.base_fee + variable, order_value)
}

/// preparation_minutes, at least 1 (the guides' floor for handling_time).
pub fn handling_minutes(hub: &Hub) -> u32 {
    hub.preparation_minutes.max(1)
}

/// Travel minutes at speed_kmh, rounded up (a float hair above a whole minute does not add one).
pub fn travel_minutes(hub: &Hub, distance_km: f64) -> u32 {
    (distance_km * 60.0 / hub.speed_kmh - 1e-9).ceil().max(0.0) as u32
}

/// handling + travel, in minutes.
pub fn promise_minutes(hub: &Hub, distance_km: f64) -> u32 {
    handling_minutes(hub).saturating_add(travel_minutes(hub, distance_km))
}

/// The shop's active hubs' average of preparation (>= 1) + travel to half their radius, rounded up once.
pub fn fallback_promise_minutes(hubs: &[Hub]) -> Option<u32> {
    let minutes: Vec<f64> = hubs
        .iter()
        .filter(|h| h.active)
        .map(|h| f64::from(handling_minutes(h)) + h.radius_km / 2.0 * 60.0 / h.speed_kmh)
        .collect();
    if minutes.is_empty() {
        return None;
    }
    let average = minutes.iter().sum::<f64>() / minutes.len() as f64;
    Some((average - 1e-9).ceil().max(1.0) as u32)
}

/// Whether the hub is open at `now` (America/Sao_Paulo, fixed UTC-3).
pub fn is_open(hub: &Hub, now: DateTime<Utc>) -> bool {
    let local = now.naive_utc() + chrono::Duration::seconds(i64::from(SAO_PAULO_OFFSET_SECS));
    let weekday = local.weekday().number_from_monday() as u8;
    let yesterday = if weekday == 1 { 7 } else { weekday - 1 };
    let t = (local.hour() * 60 + local.minute()) as u16;
    hub.opening_hours.iter().any(|o| {
        if o.open < o.close {
            o.weekday == weekday && o.open <= t && t < o.close
        } else if o.open == o.close {
            false
        } else {
            // Past midnight: the evening of its day and the early hours of the next.
            (o.weekday == weekday && t >= o.open) || (o.weekday == yesterday && t < o.close)
        }
    })
}

/// What the 90026 rule decided.
#[derive(Debug, PartialEq)]
pub enum Decision<'a> {
    Quote {
        hub: &'a Hub,
        distance_km: f64,
        fee: Money,
        handling_minutes: u32,
        travel_minutes: u32,
    },
    /// No active hub of the shop covers the destination.
    Outside,
    /// Covered, but every covering hub is closed now.
    Closed,
}

/// Channel 90026, on a snapshot: the nearest active, open hub of the shop whose radius covers `dest`.
pub fn decide(
    snapshot: &Snapshot,
    shop_id: u64,
    dest: LatLong,
    order_value: Option<Money>,
    now: DateTime<Utc>,
) -> Decision<'_> {
    let Some(hubs) = snapshot.by_shop.get(&shop_id) else {
        return Decision::Outside;
    };
    let mut covering: Vec<(&Hub, f64)> = hubs
        .iter()
        .filter(|h| h.active)
        .map(|h| {
            (
                h,
                haversine_km(h.latitude, h.longitude, dest.latitude, dest.longitude),
            )
        })
        .filter(|(h, d)| *d <= h.radius_km)
        .collect();
    if covering.is_empty() {
        return Decision::Outside;
    }
    covering.sort_by(|a, b| a.1.total_cmp(&b.1));
    match covering.into_iter().find(|(h, _)| is_open(h, now)) {
        Some((hub, distance_km)) => Decision::Quote {
            hub,
            distance_km,
            fee: fee(hub, distance_km, order_value),
            handling_minutes: handling_minutes(hub),
            travel_minutes: travel_minutes(hub, distance_km),
        },
        None => Decision::Closed,
    }
}

/// What the 90021 rule decided.
#[derive(Debug, PartialEq)]
pub enum ZipDecision<'a> {
    /// `open`: the hub is open now (ships today: 1 + 0 business days) or not (1 + 1).
    Quote { hub: &'a Hub, fee: Money, open: bool },
    /// No active hub of the shop has a range holding the CEP.
    Outside,
}

/// Channel 90021, on a snapshot: the active hub of the shop whose `zip_ranges` hold `cep`; an open one before a
/// closed one, then the Hub Config Service's order.
pub fn decide_by_zip(
    snapshot: &Snapshot,
    shop_id: u64,
    cep: u32,
    order_value: Option<Money>,
    now: DateTime<Utc>,
) -> ZipDecision<'_> {
    let Some(hubs) = snapshot.by_shop.get(&shop_id) else {
        return ZipDecision::Outside;
    };
    let mut first_closed = None;
    for hub in hubs.iter().filter(|h| h.active && h.serves_zip(cep)) {
        if is_open(hub, now) {
            return ZipDecision::Quote {
                hub,
                fee: unless_free(hub, hub.zip_fee, order_value),
                open: true,
            };
        }
        first_closed.get_or_insert(hub);
    }
    match first_closed {
        Some(hub) => ZipDecision::Quote {
            hub,
            fee: unless_free(hub, hub.zip_fee, order_value),
            open: false,
        },
        None => ZipDecision::Outside,
    }
}

/// Sum of price x quantity; `Ok(None)` when an item has no price (then free_above cannot apply).
pub fn order_value(items: &[RequestItem]) -> Result<Option<Money>, Refusal> {
    let mut total = Money::ZERO;
    for item in items {
        let Some(price) = &item.price else {
            return Ok(None);
        };
        let line = Money::from_shopee_number(price)
            .ok()
            .and_then(|p| p.times(item.quantity))
            .ok_or(Refusal::PRICE)?;
        total = Money::from_centavos(total.centavos() + line.centavos()).map_err(|_| Refusal::PRICE)?;
    }
    Ok(Some(total))
}

fn whole(n: &Number) -> u64 {
    n.as_u64()
        .unwrap_or_else(|| n.as_f64().map_or(0, |f| f.max(0.0).ceil() as u64))
}

/// One package holding every item, stacked: the longest length, the widest width, heights and weights summed over
/// the quantities; fractions rounded up.
pub fn package_dimensions(items: &[RequestItem]) -> PackageDimensions {
    let mut p = PackageDimensions {
        length: 0,
        width: 0,
        height: 0,
        weight: 0,
    };
    for i in items {
        let q = u64::from(i.quantity);
        p.length = p.length.max(whole(&i.dimensions.length));
        p.width = p.width.max(whole(&i.dimensions.width));
        p.height = p
            .height
            .saturating_add(whole(&i.dimensions.height).saturating_mul(q));
        p.weight = p
            .weight
            .saturating_add(whole(&i.dimensions.weight).saturating_mul(q));
    }
    p
}

static QUOTATION_SEQ: AtomicU64 = AtomicU64::new(0);

/// An integer quotation id: unix milliseconds x 1000 + a per-process sequence, below 2^53 (exact in any JSON
/// reader) until the year 2255. Quotations are not stored; the id lets a Shopee-side report be found in our logs.
pub fn next_quotation_id(now: DateTime<Utc>) -> u64 {
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or_default();
    ms * 1000 + QUOTATION_SEQ.fetch_add(1, Ordering::Relaxed) % 1000
}

// ---------------------------------------------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------------------------------------------

#[tracing::instrument(name = "quotation", skip_all, fields(shop.id, hub.id, quotation.id, outcome))]
pub async fn quote(
    State(state): State<QuotationState>,
    query: Result<Query<SignQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let now = Utc::now();
    let (response, outcome) = match std::panic::catch_unwind(AssertUnwindSafe(|| {
        handle(&state, query.map(|Query(q)| q), body, now)
    })) {
        Ok(answered) => answered,
        Err(_) => {
            tracing::error!("the quotation handler panicked: answering 500 (contingency table)");
            (
                error_answer(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR),
                "panic",
            )
        }
    };
    tracing::Span::current().record("outcome", outcome);
    metrics::counter!("quotations_total", "outcome" => outcome).increment(1);
    metrics::histogram!("quotation_duration_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The signature check, each failure with its guide name.
pub fn verify(config: &QuotationConfig, query: &SignQuery, now: DateTime<Utc>) -> Result<(), Refusal> {
    let partner_id = query.partner_id.as_deref().ok_or(Refusal::NO_PARTNER_ID)?;
    let partner_id: u64 = partner_id.trim().parse().map_err(|_| Refusal::PARTNER_ID)?;
    let timestamp = query.timestamp.as_deref().ok_or(Refusal::NO_TIMESTAMP)?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| Refusal::TIMESTAMP)?;
    let sign_value = query.sign.as_deref().ok_or(Refusal::NO_SIGN)?;
    let check = QuotationCheck {
        partner_key: config.partner_key.expose(),
        expected_partner_id: config.partner_id,
        now: now.timestamp(),
        window_secs: config.window_secs,
    };
    let call = QuotationCall {
        path: &config.sign_path,
        partner_id,
        timestamp,
        sign: sign_value,
    };
    sign::verify_quotation(&check, &call).map_err(|e| match e {
        sign::InboundAuthError::WrongPartner => Refusal::PARTNER_ID,
        sign::InboundAuthError::Expired => Refusal::TIMESTAMP,
        sign::InboundAuthError::BadSignature => Refusal::SIGN,
    })
}

fn refused(r: Refusal, outcome: &'static str) -> (Response, &'static str) {
    let status = if r == INTERNAL_ERROR {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::FORBIDDEN
    };
    (error_answer(status, r), outcome)
}

/// The whole quotation, synchronous: no I/O happens here.
pub fn handle(
    state: &QuotationState,
    query: Result<SignQuery, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
    now: DateTime<Utc>,
) -> (Response, &'static str) {
    // An undecodable query string (e.g. a parameter given twice) cannot carry a signature we can check.
    let query = match query {
        Ok(q) => q,
        Err(_) => return refused(Refusal::SIGN, "unauthorized"),
    };
    if let Err(r) = verify(&state.config, &query, now) {
        return refused(r, "unauthorized");
    }
    // An unreadable or oversized body carries no shop_id we can read.
    let Ok(body) = body else {
        return refused(Refusal::NO_SHOP_ID, "invalid");
    };
    let body = match validate(&body) {
        Ok(b) => b,
        Err(r) if r == INTERNAL_ERROR => return refused(r, "error"),
        Err(r) => return refused(r, "invalid"),
    };
    let Some(snapshot) = state.hubs.snapshot() else {
        tracing::error!("quotation before any hub config was loaded: answering 500 (contingency table)");
        return refused(INTERNAL_ERROR, "no_config");
    };
    match body {
        Body::Fallback(req) => {
            tracing::Span::current().record("shop.id", req.shop_id);
            let minutes = snapshot
                .by_shop
                .get(&req.shop_id)
                .and_then(|hubs| fallback_promise_minutes(hubs));
            match minutes {
                Some(fallback_promise_time) => {
                    let answer = FallbackAnswer {
                        shop_id: req.shop_id,
                        fallback_promise_time,
                    };
                    ((StatusCode::OK, Json(answer)).into_response(), "fallback")
                }
                None => refused(Refusal::SHOP_ID, "unknown_shop"),
            }
        }
        Body::Quotation(req) => {
            tracing::Span::current().record("shop.id", req.shop_id);
            let order_value = match order_value(&req.items) {
                Ok(v) => v,
                Err(r) => return refused(r, "invalid"),
            };
            match req.channel_id {
                Some(CHANNEL_INSTANT) => instant(&snapshot, req, order_value, now),
                None | Some(CHANNEL_SELLER_LOGISTICS) => seller_logistics(&snapshot, req, order_value, now),
                Some(_) => refused(Refusal::NO_CHANNEL, "unknown_channel"),
            }
        }
    }
}

fn answer(
    channel_id: Option<u64>,
    req: QuotationRequest,
    quote: Quote,
    fallback_promise_time: Option<u32>,
    now: DateTime<Utc>,
) -> Response {
    let quotation_id = next_quotation_id(now);
    tracing::Span::current().record("quotation.id", quotation_id);
    let answer = QuotationAnswer {
        channel_id,
        quotation_id,
        destination_zip_code: req.destination_zip_code,
        packages: vec![Package {
            dimensions: package_dimensions(&req.items),
            items: req.items,
            quotations: vec![quote],
        }],
        fallback_promise_time,
    };
    (StatusCode::OK, Json(answer)).into_response()
}

fn instant(
    snapshot: &Snapshot,
    req: QuotationRequest,
    order_value: Option<Money>,
    now: DateTime<Utc>,
) -> (Response, &'static str) {
    let Some(dest) = req.destination_lat_long else {
        return refused(Refusal::NO_CHANNEL, "no_coordinates");
    };
    match decide(snapshot, req.shop_id, dest.in_brazil_order(), order_value, now) {
        Decision::Outside => refused(Refusal::NO_CHANNEL, "outside"),
        Decision::Closed => refused(Refusal::NO_CHANNEL, "closed"),
        Decision::Quote {
            hub,
            fee,
            handling_minutes,
            travel_minutes,
            ..
        } => {
            tracing::Span::current().record("hub.id", hub.hub_id.as_str());
            let fallback = snapshot
                .by_shop
                .get(&req.shop_id)
                .and_then(|hubs| fallback_promise_minutes(hubs));
            let quote = Quote {
                price: shopee_client::api::product::price_number(fee),
                handling_time: handling_minutes,
                shipping_time: travel_minutes,
                promise_time: handling_minutes.saturating_add(travel_minutes),
                service_code: hub.hub_id.clone(),
            };
            (
                answer(Some(CHANNEL_INSTANT), req, quote, fallback, now),
                "quoted_instant",
            )
        }
    }
}

fn seller_logistics(
    snapshot: &Snapshot,
    req: QuotationRequest,
    order_value: Option<Money>,
    now: DateTime<Utc>,
) -> (Response, &'static str) {
    // Validated above: always Some.
    let Some(destination) = cep(&req.destination_zip_code) else {
        return refused(Refusal::DESTINATION_ZIP, "invalid");
    };
    match decide_by_zip(snapshot, req.shop_id, destination, order_value, now) {
        ZipDecision::Outside => refused(Refusal::NO_CHANNEL, "outside"),
        ZipDecision::Quote { hub, fee, open } => {
            tracing::Span::current().record("hub.id", hub.hub_id.as_str());
            let shipping_days = if open { 0 } else { 1 };
            let quote = Quote {
                price: shopee_client::api::product::price_number(fee),
                handling_time: 1,
                shipping_time: shipping_days,
                promise_time: 1 + shipping_days,
                service_code: hub.hub_id.clone(),
            };
            (
                answer(None, req, quote, None, now),
                if open { "quoted_zip" } else { "quoted_zip_closed" },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::hub_config::{Opening, ZipRange};

    fn hub(id: &str, lat: f64, lon: f64) -> Hub {
        Hub {
            hub_id: id.into(),
            active: true,
            shop_id: 900_001,
            latitude: lat,
            longitude: lon,
            radius_km: 5.0,
            base_fee: Money::parse_decimal("4.90").unwrap(),
            fee_per_km: Money::parse_decimal("1.10").unwrap(),
            free_above: Some(Money::parse_decimal("99.00").unwrap()),
            preparation_minutes: 8,
            speed_kmh: 18.0,
            opening_hours: (1..=7)
                .map(|d| Opening {
                    weekday: d,
                    open: 0,
                    close: 1440,
                })
                .collect(),
            zip_ranges: vec![],
            zip_fee: Money::parse_decimal("9.90").unwrap(),
        }
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude: 6371 * pi / 180 = 111.195 km.
        let d = haversine_km(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111.195).abs() < 0.001, "{d}");
    }

    #[test]
    fn fee_rounds_half_up_and_is_free_above_the_threshold() {
        let h = hub("A", 0.0, 0.0);
        // 1.10 x 2.5 km = 2.75 -> 4.90 + 2.75 = 7.65
        assert_eq!(fee(&h, 2.5, None).centavos(), 765);
        // 1.10 x 1.2345 = 1.35795 -> 1.36
        assert_eq!(fee(&h, 1.2345, None).centavos(), 490 + 136);
        // 1.10 x 0.5 = 0.55 exactly; 1.10 x 0.05 = 0.055: half a centavo goes up to 0.06
        assert_eq!(fee(&h, 0.5, None).centavos(), 545);
        assert_eq!(fee(&h, 0.05, None).centavos(), 496);
        assert_eq!(
            fee(&h, 2.5, Some(Money::parse_decimal("99.00").unwrap())),
            Money::ZERO
        );
        assert_eq!(
            fee(&h, 2.5, Some(Money::parse_decimal("98.99").unwrap())).centavos(),
            765
        );
    }

    #[test]
    fn times_are_handling_at_least_one_plus_travel_rounded_up() {
        let mut h = hub("A", 0.0, 0.0);
        assert_eq!(promise_minutes(&h, 3.0), 8 + 10);
        assert_eq!(promise_minutes(&h, 3.01), 8 + 11);
        assert_eq!(promise_minutes(&h, 0.0), 8);
        h.preparation_minutes = 0;
        assert_eq!(handling_minutes(&h), 1);
        assert_eq!(promise_minutes(&h, 0.0), 1);
    }

    #[test]
    fn fallback_is_the_average_over_active_hubs_rounded_up_once() {
        // 8 + 2.5 km at 18 km/h (8.333) = 16.333; 8 + 1 km (3.333) = 11.333; average 13.833 -> 14
        // (rounding each first would give (17 + 12) / 2 = 14.5 -> 15).
        let a = hub("A", 0.0, 0.0);
        let mut b = hub("B", 0.0, 0.0);
        b.radius_km = 2.0;
        let mut off = hub("OFF", 0.0, 0.0);
        off.active = false;
        off.preparation_minutes = 100;
        assert_eq!(fallback_promise_minutes(&[a.clone(), b, off.clone()]), Some(14));
        // A whole average stays whole: 8 + 3 km at 18 km/h = 18.
        let mut c = a.clone();
        c.radius_km = 6.0;
        assert_eq!(fallback_promise_minutes(&[c]), Some(18));
        assert_eq!(fallback_promise_minutes(&[off]), None);
        assert_eq!(fallback_promise_minutes(&[]), None);
    }

    #[test]
    fn opening_hours_are_sao_paulo_time_and_close_is_exclusive() {
        let mut h = hub("A", 0.0, 0.0);
        h.opening_hours = vec![Opening {
            weekday: 1,
            open: 7 * 60,
            close: 23 * 60,
        }];
        // Monday 2026-11-23 10:00 UTC = 07:00 in Sao Paulo: open.
        assert!(is_open(&h, Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()));
        // 09:59 UTC = 06:59 local: closed.
        assert!(!is_open(
            &h,
            Utc.with_ymd_and_hms(2026, 11, 23, 9, 59, 0).unwrap()
        ));
        // Tuesday 02:00 UTC = Monday 23:00 local: closed (exclusive).
        assert!(!is_open(&h, Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap()));
        // Tuesday 01:59 UTC = Monday 22:59 local: open.
        assert!(is_open(&h, Utc.with_ymd_and_hms(2026, 11, 24, 1, 59, 0).unwrap()));
        // Overnight interval Sunday 18:00 - 02:00: Monday 01:00 local is open.
        h.opening_hours = vec![Opening {
            weekday: 7,
            open: 18 * 60,
            close: 2 * 60,
        }];
        assert!(is_open(&h, Utc.with_ymd_and_hms(2026, 11, 23, 4, 0, 0).unwrap()));
        assert!(!is_open(&h, Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap()));
    }

    #[test]
    fn nearest_open_covering_hub_wins() {
        let near = hub("NEAR", 0.0, 0.0);
        let mut far = hub("FAR", 0.0, 0.03);
        far.radius_km = 10.0;
        let mut inactive = hub("OFF", 0.0, 0.001);
        inactive.active = false;
        let snap = Snapshot::new(vec![far, near, inactive]);
        let dest = LatLong {
            latitude: 0.0,
            longitude: 0.01,
        };
        let now = Utc::now();
        match decide(&snap, 900_001, dest, None, now) {
            Decision::Quote { hub, .. } => assert_eq!(hub.hub_id, "NEAR"),
            other => panic!("{other:?}"),
        }
        assert_eq!(decide(&snap, 1, dest, None, now), Decision::Outside);
        let dest_far = LatLong {
            latitude: 1.0,
            longitude: 1.0,
        };
        assert_eq!(decide(&snap, 900_001, dest_far, None, now), Decision::Outside);
    }

    #[test]
    fn zip_rule_prefers_an_open_hub_and_applies_free_above() {
        let range = ZipRange {
            first: 1_000_000,
            last: 1_599_999,
        };
        let mut closed = hub("CLOSED", 0.0, 0.0);
        closed.opening_hours.clear();
        closed.zip_ranges = vec![range];
        let mut open = hub("OPEN", 0.0, 0.0);
        open.zip_ranges = vec![range];
        let mut inactive = hub("OFF", 0.0, 0.0);
        inactive.active = false;
        inactive.zip_ranges = vec![range];
        let now = Utc::now();
        let snap = Snapshot::new(vec![inactive.clone(), closed.clone(), open]);
        match decide_by_zip(&snap, 900_001, 1_310_100, None, now) {
            ZipDecision::Quote { hub, fee, open } => {
                assert_eq!((hub.hub_id.as_str(), fee.centavos(), open), ("OPEN", 990, true));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide_by_zip(&snap, 900_001, 1_600_000, None, now),
            ZipDecision::Outside
        );
        let snap = Snapshot::new(vec![inactive, closed]);
        let free = Some(Money::parse_decimal("99.00").unwrap());
        match decide_by_zip(&snap, 900_001, 1_000_000, free, now) {
            ZipDecision::Quote { hub, fee, open } => {
                assert_eq!((hub.hub_id.as_str(), fee, open), ("CLOSED", Money::ZERO, false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn swapped_coordinates_are_read_in_brazil_order() {
        // The guide's example: latitude -46.7354, longitude -23.5746 (Sao Paulo with the two exchanged).
        let swapped = LatLong {
            latitude: -46.7354,
            longitude: -23.5746,
        };
        let fixed = swapped.in_brazil_order();
        assert_eq!((fixed.latitude, fixed.longitude), (-23.5746, -46.7354));
        assert_eq!(fixed.in_brazil_order(), fixed);
        // Outside Brazil either way: left alone.
        let lisbon = LatLong {
            latitude: 38.72,
            longitude: -9.14,
        };
        assert_eq!(lisbon.in_brazil_order(), lisbon);
    }

    #[test]
    fn ceps_are_eight_digits_with_optional_separators() {
        assert_eq!(cep("01310100"), Some(1_310_100));
        assert_eq!(cep("01310-100"), Some(1_310_100));
        assert_eq!(cep("01.310-100"), Some(1_310_100));
        assert_eq!(cep("1310100"), None);
        assert_eq!(cep("013101000"), None);
        assert_eq!(cep("0131010a"), None);
        assert_eq!(cep(""), None);
    }

    fn item() -> Value {
        json!({"item_id": 1, "sku": "s", "model_id": 0, "category_id": 0, "quantity": 2, "price": 12.5,
               "dimensions": {"length": 10, "width": 20, "height": 3, "weight": 150}})
    }

    fn request(item: Value) -> Value {
        json!({"shop_id": 7, "origin_zip_code": "01310100", "destination_zip_code": "01311000", "items": [item]})
    }

    fn refusal_for(v: &Value) -> Option<Refusal> {
        validate(v.to_string().as_bytes()).err()
    }

    #[test]
    fn each_bad_field_gets_its_guide_error_name() {
        assert_eq!(refusal_for(&request(item())), None);
        let with = |key: &str, value: Value| {
            let mut i = item();
            i[key] = value;
            request(i)
        };
        let dims = |key: &str, value: Value| {
            let mut i = item();
            i["dimensions"][key] = value;
            request(i)
        };
        let top = |key: &str, value: Value| {
            let mut r = request(item());
            r[key] = value;
            r
        };
        let cases = [
            (json!([]), Refusal::NO_SHOP_ID),
            (json!({"origin_zip_code": "01310100"}), Refusal::NO_SHOP_ID),
            (top("shop_id", json!("7")), Refusal::SHOP_ID),
            (top("shop_id", json!(0)), Refusal::SHOP_ID),
            (top("origin_zip_code", json!("123")), Refusal::ORIGIN_ZIP),
            (
                top("destination_zip_code", json!(1311000)),
                Refusal::DESTINATION_ZIP,
            ),
            (top("channel_id", json!("x")), Refusal::NO_CHANNEL),
            (
                top("destination_lat_long", json!({"latitude": 91, "longitude": 0})),
                Refusal::NO_CHANNEL,
            ),
            (top("items", json!([])), Refusal::ITEM_ID),
            (with("item_id", json!(-1)), Refusal::ITEM_ID),
            (with("sku", json!(5)), Refusal::SKU),
            (with("model_id", json!(1.5)), Refusal::MODEL_ID),
            (with("category_id", json!("c")), Refusal::CATEGORY_ID),
            (with("quantity", json!(0)), Refusal::QUANTITY),
            (with("price", json!(-1.0)), Refusal::PRICE),
            (with("price", json!("12.50")), Refusal::PRICE),
            (with("dimensions", json!(null)), Refusal::DIMENSIONS),
            (dims("length", json!(-1)), Refusal::LENGTH),
            (dims("width", json!("w")), Refusal::WIDTH),
            (dims("height", json!(null)), Refusal::HEIGHT),
            (dims("weight", json!(-0.5)), Refusal::WEIGHT),
        ];
        for (body, expected) in cases {
            assert_eq!(refusal_for(&body), Some(expected), "{body}");
        }
        // Product-page quotes send model_id and category_id as 0; a null sku is no sku.
        assert_eq!(refusal_for(&with("sku", json!(null))), None);
        assert_eq!(
            validate(br#"{"shop_id": 7}"#),
            Ok(Body::Fallback(FallbackRequest { shop_id: 7 }))
        );
        assert_eq!(validate(b"{not json"), Err(Refusal::NO_SHOP_ID));
    }

    #[test]
    fn one_package_stacks_the_items() {
        let mut second: RequestItem = serde_json::from_value(item()).unwrap();
        second.quantity = 1;
        second.dimensions.length = Number::from_f64(30.2).unwrap();
        let first: RequestItem = serde_json::from_value(item()).unwrap();
        assert_eq!(
            package_dimensions(&[first, second]),
            PackageDimensions {
                length: 31,
                width: 20,
                height: 3 * 2 + 3,
                weight: 150 * 2 + 150
            }
        );
    }

    #[test]
    fn quotation_ids_are_distinct_integers_below_2_pow_53() {
        let now = Utc::now();
        let a = next_quotation_id(now);
        let b = next_quotation_id(now);
        assert_ne!(a, b);
        assert!(a < (1 << 53) && b < (1 << 53));
    }
}
