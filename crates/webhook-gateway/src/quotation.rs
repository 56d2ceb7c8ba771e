//! `POST /shopee/quotation`: Shopee's freight quotation call (seller logistics, channels 90021 / 90026).
//!
//! Verify the signature (HMAC over `partner_id + path + timestamp`, constant time, timestamp window), then pick the
//! hub from the in-memory Hub Config snapshot — never a network or database call on this path:
//! the active hub of the quoted shop whose radius covers `destination_lat_long` (haversine, R = 6,371 km), the
//! nearest open one when several do. Fee = base_fee + fee_per_km x distance rounded half-up to the centavo (integer
//! arithmetic on the distance in millimetres), 0 when the order value (sum of price x quantity) reaches free_above.
//! Promise = preparation_minutes + travel at speed_kmh, rounded up to the minute (90026: minutes; 90021: business
//! days, at least 1). Outside every radius, closed, or no destination coordinates -> Shopee's 403 error shape.
//! 500 only when no hub config was ever loaded (Shopee then uses the seller's contingency table).
//!
//! Opening hours are America/Sao_Paulo local time, computed as a fixed UTC-3 offset: Brazil has had no daylight
//! saving time since 2019.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Timelike, Utc};
use domain::Money;
use serde::Deserialize;
use serde_json::{Value, json};
use service_runtime::config::Secret;
use shopee_client::sign::{self, QuotationCall, QuotationCheck};

use crate::hub_config::{Hub, HubDirectory, Snapshot};

/// Shopee's quotation bodies are small; this is generous.
pub const MAX_QUOTATION_BYTES: usize = 256 * 1024;
/// The path Shopee signs (whether it signs the full URL is unconfirmed: `QUOTATION_SIGN_PATH` changes it).
pub const DEFAULT_SIGN_PATH: &str = "/shopee/quotation";
pub const EARTH_RADIUS_KM: f64 = 6371.0;
/// America/Sao_Paulo: UTC-3 all year since 2019.
pub const SAO_PAULO_OFFSET_SECS: i32 = -3 * 3600;
/// Channel 90021 answers in business days.
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

#[derive(Debug, Deserialize)]
pub struct QuotationRequest {
    pub shop_id: u64,
    #[serde(default)]
    pub origin_zip_code: Option<String>,
    #[serde(default)]
    pub destination_zip_code: Option<String>,
    #[serde(default)]
    pub channel_id: Option<u64>,
    #[serde(default)]
    pub destination_lat_long: Option<LatLong>,
    #[serde(default)]
    pub items: Vec<QuoteItem>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LatLong {
    #[serde(deserialize_with = "number_or_string")]
    pub latitude: f64,
    #[serde(deserialize_with = "number_or_string")]
    pub longitude: f64,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64().ok_or_else(|| serde::de::Error::custom("not a number")),
        Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected a number")),
    }
}

#[derive(Debug, Deserialize)]
pub struct QuoteItem {
    #[serde(default)]
    pub item_id: Option<u64>,
    #[serde(default)]
    pub model_id: Option<u64>,
    #[serde(default)]
    pub quantity: u32,
    #[serde(default)]
    pub price: Option<serde_json::Number>,
    #[serde(default)]
    pub dimensions: Option<Value>,
}

/// What the rule decided.
#[derive(Debug, PartialEq)]
pub enum Decision<'a> {
    Quote {
        hub: &'a Hub,
        distance_km: f64,
        fee: Money,
        minutes: u32,
    },
    /// No active hub of the shop covers the destination.
    Outside,
    /// Covered, but every covering hub is closed now.
    Closed,
}

pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// base_fee + fee_per_km x distance, rounded half-up to the centavo; the distance enters as whole millimetres.
pub fn fee(hub: &Hub, distance_km: f64, order_value: Option<Money>) -> Money {
    if let (Some(free), Some(value)) = (hub.free_above, order_value)
        && value >= free
    {
        return Money::ZERO;
    }
    let mm = (distance_km * 1_000_000.0).round().max(0.0) as u64;
    let variable = hub
        .fee_per_km
        .mul_ratio_half_up(mm, 1_000_000)
        .unwrap_or(Money::ZERO);
    hub.base_fee + variable
}

/// preparation + travel time at speed_kmh, rounded up to the minute.
pub fn promise_minutes(hub: &Hub, distance_km: f64) -> u32 {
    let travel = (distance_km * 60.0 / hub.speed_kmh - 1e-9).ceil().max(0.0);
    hub.preparation_minutes.saturating_add(travel as u32)
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

/// The rule of architecture.md, on a snapshot.
pub fn decide<'a>(
    snapshot: &'a Snapshot,
    shop_id: u64,
    dest: LatLong,
    order_value: Option<Money>,
    now: DateTime<Utc>,
) -> Decision<'a> {
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
            minutes: promise_minutes(hub, distance_km),
        },
        None => Decision::Closed,
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Shopee's error shape.
fn shopee_error(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"request_id": request_id(), "error": error, "message": message})),
    )
        .into_response()
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[tracing::instrument(name = "quotation", skip_all, fields(shop.id, hub.id, outcome))]
pub async fn quote(
    State(state): State<QuotationState>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    let (response, outcome) = match body {
        Ok(body) => handle(&state, query.as_deref().unwrap_or(""), &body, Utc::now()),
        Err(e) => (
            shopee_error(
                e.status(),
                "error_param",
                &format!("the body cannot be read: {}", e.body_text()),
            ),
            "malformed",
        ),
    };
    tracing::Span::current().record("outcome", outcome);
    metrics::counter!("quotations_total", "outcome" => outcome).increment(1);
    metrics::histogram!("quotation_duration_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The whole quotation, synchronous: no I/O happens here.
pub fn handle(
    state: &QuotationState,
    query: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> (Response, &'static str) {
    let cfg = &state.config;
    let partner_id = query_value(query, "partner_id").and_then(|v| v.parse::<u64>().ok());
    let timestamp = query_value(query, "timestamp").and_then(|v| v.parse::<i64>().ok());
    let sign_value = query_value(query, "sign");
    let (Some(partner_id), Some(timestamp), Some(sign_value)) = (partner_id, timestamp, sign_value) else {
        return (
            shopee_error(
                StatusCode::UNAUTHORIZED,
                "error_auth",
                "partner_id, timestamp and sign are required",
            ),
            "unauthorized",
        );
    };
    let check = QuotationCheck {
        partner_key: cfg.partner_key.expose(),
        expected_partner_id: cfg.partner_id,
        now: now.timestamp(),
        window_secs: cfg.window_secs,
    };
    let call = QuotationCall {
        path: &cfg.sign_path,
        partner_id,
        timestamp,
        sign: sign_value,
    };
    if let Err(e) = sign::verify_quotation(&check, &call) {
        let code = match e {
            sign::InboundAuthError::BadSignature => "error_sign",
            _ => "error_auth",
        };
        return (
            shopee_error(StatusCode::UNAUTHORIZED, code, &e.to_string()),
            "unauthorized",
        );
    }
    let req: QuotationRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("the body is not a quotation request: {e}");
            return (
                shopee_error(StatusCode::BAD_REQUEST, "error_param", &msg),
                "malformed",
            );
        }
    };
    tracing::Span::current().record("shop.id", req.shop_id);
    let Some(snapshot) = state.hubs.snapshot() else {
        tracing::error!("quotation before any hub config was loaded: answering 500 (contingency table)");
        return (
            shopee_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error_server",
                "hub configuration is not available yet",
            ),
            "no_config",
        );
    };
    let Some(dest) = req.destination_lat_long else {
        return (
            shopee_error(
                StatusCode::FORBIDDEN,
                "error_destination_zip_code",
                "No shipping channel is available: destination_lat_long is required for instant delivery.",
            ),
            "no_coordinates",
        );
    };
    let order_value = req
        .items
        .iter()
        .map(|i| {
            let price = Money::from_shopee_number(i.price.as_ref()?).ok()?;
            price.times(i.quantity)
        })
        .try_fold(Money::ZERO, |acc, v| v.map(|v| acc + v));
    match decide(&snapshot, req.shop_id, dest, order_value, now) {
        Decision::Outside => (
            shopee_error(
                StatusCode::FORBIDDEN,
                "error_destination_zip_code",
                "No shipping channel is available.",
            ),
            "outside",
        ),
        Decision::Closed => (
            shopee_error(
                StatusCode::FORBIDDEN,
                "error_destination_zip_code",
                "No shipping channel is available: the store serving this address is closed now.",
            ),
            "closed",
        ),
        Decision::Quote {
            hub,
            distance_km,
            fee,
            minutes,
        } => {
            tracing::Span::current().record("hub.id", hub.hub_id.as_str());
            let travel = minutes.saturating_sub(hub.preparation_minutes);
            let quotation = if req.channel_id == Some(CHANNEL_SELLER_LOGISTICS) {
                let days = minutes.div_ceil(24 * 60).max(1);
                json!({"price": shopee_client::api::product::price_number(fee), "handling_time": 0,
                       "shipping_time": days, "promise_time": days, "service_code": hub.hub_id})
            } else {
                json!({"price": shopee_client::api::product::price_number(fee),
                       "handling_time": hub.preparation_minutes, "shipping_time": travel,
                       "promise_time": minutes, "service_code": hub.hub_id})
            };
            let items: Vec<Value> = req
                .items
                .iter()
                .map(|i| json!({"item_id": i.item_id, "model_id": i.model_id, "quantity": i.quantity}))
                .collect();
            let dimensions = req
                .items
                .first()
                .and_then(|i| i.dimensions.clone())
                .unwrap_or(Value::Null);
            let body = json!({
                "quotation_id": request_id(),
                "destination_zip_code": req.destination_zip_code,
                "distance_km": (distance_km * 1000.0).round() / 1000.0,
                "packages": [{"dimensions": dimensions, "items": items, "quotations": [quotation]}],
            });
            ((StatusCode::OK, Json(body)).into_response(), "quoted")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;

    use super::*;
    use crate::hub_config::Opening;

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
    fn promise_is_preparation_plus_travel_rounded_up() {
        let h = hub("A", 0.0, 0.0);
        assert_eq!(promise_minutes(&h, 3.0), 8 + 10);
        assert_eq!(promise_minutes(&h, 3.01), 8 + 11);
        assert_eq!(promise_minutes(&h, 0.0), 8);
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
}
