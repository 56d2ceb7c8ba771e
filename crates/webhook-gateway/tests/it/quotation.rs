//! `POST /shopee/quotation` against the real app (port 0), a local Hub Config Service fake over HTTP that counts
//! its requests, and real PostgreSQL behind the rest of the gateway. Request and answer shapes are those of
//! Shopee's Brazil guides (docs/quotation.md): channel 90026 (Entrega Expressa, minutes), channel 90021 (seller
//! logistics, business days), the fallback call `{shop_id}`, and the guides' error names.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use service_runtime::cli::Serve;
use service_runtime::config::{BaseConfig, Env};
use shopee_client::sign::sign_public;
use test_support::TestDb;
use tokio_util::sync::CancellationToken;
use webhook_gateway::quotation::QuotationAnswer;

pub const PARTNER_ID: u64 = 1_000_001;
pub const KEY: &str = "quotation-test-partner-key";
const SHOP: u64 = 900_001;
const CLOSED_SHOP: u64 = 900_002;
const HUB_LAT: f64 = -23.5614;
const HUB_LON: f64 = -46.6559;
/// ~2.76 km south-east of SAO-01 (haversine), ~0.61 km from the closed SAO-02 and the inactive SAO-03.
const DEST_LAT: f64 = HUB_LAT - 0.0247;
const DEST_LON: f64 = HUB_LON + 0.0031;

/// The Hub Config Service: serves `hubs`, counts requests, can be switched down (HTTP 500).
#[derive(Clone)]
pub struct HubConfigFake {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    pub down: Arc<AtomicBool>,
    pub hubs: Arc<Mutex<Value>>,
}

async fn serve_hubs(State(fake): State<HubConfigFake>) -> axum::response::Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    if fake.down.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    let hubs = fake.hubs.lock().expect("lock").clone();
    axum::Json(hubs).into_response()
}

impl HubConfigFake {
    pub async fn start(hubs: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let fake = HubConfigFake {
            url: format!("http://{}", listener.local_addr().expect("addr")),
            requests: Arc::new(AtomicUsize::new(0)),
            down: Arc::new(AtomicBool::new(false)),
            hubs: Arc::new(Mutex::new(hubs)),
        };
        let app = Router::new()
            .route("/v1/hubs", axum::routing::get(serve_hubs))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub struct Gateway {
    pub url: String,
    pub db: TestDb,
    shutdown: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_gateway(hub_config_url: &str, refresh_secs: u64, shopee_url: &str) -> Gateway {
    let db = TestDb::new().await;
    let refresh = refresh_secs.to_string();
    let env = Env::from_pairs([
        ("SHOPEE_PARTNER_ID", "1000001"),
        ("SHOPEE_PARTNER_KEY", KEY),
        ("SHOPEE_API_BASE_URL", shopee_url),
        (
            "SHOPEE_PUSH_CALLBACK_URL",
            "https://seller.example.com/webhooks/shopee",
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("DATABASE_URL", db.url.as_str()),
        ("HUB_CONFIG_URL", hub_config_url),
        ("HUB_CONFIG_REFRESH_SECS", refresh.as_str()),
    ]);
    let config = webhook_gateway::Config::from_env(&env).expect("config");
    let base = BaseConfig::from_env(&env).expect("base");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    tokio::spawn(webhook_gateway::run(Serve {
        config,
        base,
        listener,
        shutdown: shutdown.clone(),
    }));
    test_support::wait_for_status(&format!("{url}/health/live"), 200, Duration::from_secs(10)).await;
    Gateway { url, db, shutdown }
}

fn always_open() -> Value {
    json!(
        (1..=7)
            .map(|d| json!({"weekday": d, "open": "00:00", "close": "24:00"}))
            .collect::<Vec<_>>()
    )
}

#[allow(clippy::too_many_arguments)]
fn hub(
    id: &str,
    shop: u64,
    lat: f64,
    active: bool,
    hours: Value,
    radius_km: f64,
    zip_ranges: Value,
    zip_fee: &str,
) -> Value {
    json!({"hub_id": id, "active": active, "shopee_shop_id": shop,
           "location": {"zipcode": "01310100", "latitude": lat, "longitude": HUB_LON},
           "delivery": {"radius_km": radius_km, "base_fee": "4.90", "fee_per_km": "1.10", "free_above": "99.00",
                        "preparation_minutes": 8, "speed_kmh": 18,
                        "zip_ranges": zip_ranges, "zip_fee": zip_fee},
           "opening_hours": hours})
}

/// SAO-01: open, 5 km, CEPs 01000000-01599999 at 9.90. SAO-02: nearer the test destination but closed, 2 km,
/// CEPs 04000000-04099999 at 7.50. SAO-03: inactive, CEPs 05000000-05099999. CLOSED-01: the only hub of its shop,
/// closed.
fn hubs() -> Value {
    json!([
        hub(
            "SAO-01",
            SHOP,
            HUB_LAT,
            true,
            always_open(),
            5.0,
            json!([["01000000", "01599999"]]),
            "9.90"
        ),
        hub(
            "SAO-02",
            SHOP,
            HUB_LAT - 0.02,
            true,
            json!([]),
            2.0,
            json!([["04000000", "04099999"]]),
            "7.50"
        ),
        hub(
            "SAO-03",
            SHOP,
            HUB_LAT - 0.021,
            false,
            always_open(),
            5.0,
            json!([["05000000", "05099999"]]),
            "1.00"
        ),
        hub(
            "CLOSED-01",
            CLOSED_SHOP,
            HUB_LAT,
            true,
            json!([]),
            5.0,
            json!([["01000000", "01599999"]]),
            "9.90"
        ),
    ])
}

fn signed_query(path: &str, timestamp: i64) -> String {
    let sign = sign_public(KEY, PARTNER_ID, path, timestamp);
    format!("partner_id={PARTNER_ID}&timestamp={timestamp}&sign={sign}")
}

fn item(price: &str, quantity: u32) -> Value {
    json!({"item_id": 100001, "sku": "789100000001", "model_id": 0, "model_sku": "", "category_id": 0,
           "quantity": quantity, "price": price.parse::<f64>().expect("price"),
           "dimensions": {"length": 10, "width": 12, "height": 5, "weight": 500}})
}

/// A channel 90026 (Entrega Expressa) request.
fn instant(shop: u64, lat: f64, lon: f64, price: &str, quantity: u32) -> Value {
    json!({"channel_id": 90026, "shop_id": shop, "origin_zip_code": "01310100", "destination_zip_code": "01311000",
           "destination_lat_long": {"latitude": lat, "longitude": lon},
           "items": [item(price, quantity)]})
}

/// A channel 90021 (seller logistics) request: no channel_id, no coordinates.
fn by_zip(shop: u64, destination_zip_code: &str, price: &str, quantity: u32) -> Value {
    json!({"shop_id": shop, "origin_zip_code": "01310100", "destination_zip_code": destination_zip_code,
           "items": [item(price, quantity)]})
}

async fn post(gw: &Gateway, query: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/shopee/quotation?{query}", gw.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn quote(gw: &Gateway, query: &str, body: &Value) -> (u16, Value) {
    post(gw, query, body.to_string()).await
}

async fn now_quote(gw: &Gateway, body: &Value) -> (u16, Value) {
    quote(
        gw,
        &signed_query("/shopee/quotation", chrono::Utc::now().timestamp()),
        body,
    )
    .await
}

/// The guides' error answer: exactly `request_id`, `error`, `message`.
#[track_caller]
fn assert_refusal(status: u16, answer: &Value, code: u16, error: &str, message: &str) {
    assert_eq!(status, code, "{answer}");
    assert_eq!(answer["error"], error, "{answer}");
    assert_eq!(answer["message"], message, "{answer}");
    assert!(
        answer["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{answer}"
    );
    assert_eq!(answer.as_object().map(|o| o.len()), Some(3), "{answer}");
}

#[track_caller]
fn assert_no_channel(status: u16, answer: &Value) {
    assert_refusal(
        status,
        answer,
        403,
        "error_destination_zip_code",
        "No shipping channel is available.",
    );
}

/// Waits until the gateway has a hub config snapshot (a quotation stops answering 500).
async fn until_warm(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = instant(SHOP, HUB_LAT, HUB_LON, "1.00", 1);
    while Instant::now() < deadline {
        if now_quote(gw, &probe).await.0 != 500 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hub config never loaded");
}

async fn warm_gateway() -> (HubConfigFake, Gateway) {
    let fake = HubConfigFake::start(hubs()).await;
    let gw = start_gateway(&fake.url, 3600, "http://127.0.0.1:1").await;
    until_warm(&gw).await;
    (fake, gw)
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_quote_answers_the_guide_shape_with_exact_price_and_minutes() {
    let (_fake, gw) = warm_gateway().await;
    let (status, q) = now_quote(&gw, &instant(SHOP, DEST_LAT, DEST_LON, "10.00", 2)).await;
    assert_eq!(status, 200, "{q}");
    let quotation_id = q["quotation_id"].as_u64();
    assert!(
        quotation_id.is_some_and(|id| id > 0 && id < 1 << 53),
        "quotation_id must be a JSON integer: {q}"
    );
    // SAO-01 -> destination: 2.7646 km. Price 4.90 + 1.10 x 2.7646 = 7.941 -> 7.94. Handling = preparation 8 min;
    // shipping = 2.7646 km at 18 km/h = 9.2 -> 10 min; promise 18. Fallback: active hubs SAO-01 (8 + 2.5 km at
    // 18 km/h = 16.33) and SAO-02 (8 + 1 km = 11.33), average 13.83 -> 14 (the inactive SAO-03 is left out).
    // One package: longest 10, widest 12, heights 2 x 5, weights 2 x 500.
    let expected = json!({
        "channel_id": 90026,
        "quotation_id": quotation_id,
        "destination_zip_code": "01311000",
        "packages": [{
            "dimensions": {"length": 10, "width": 12, "height": 10, "weight": 1000},
            "items": [item("10.00", 2)],
            "quotations": [{"price": 7.94, "handling_time": 8, "shipping_time": 10, "promise_time": 18,
                            "service_code": "SAO-01"}]
        }],
        "fallback_promise_time": 14
    });
    assert_eq!(q, expected);
    // The typed answer reads it back.
    let typed: QuotationAnswer = serde_json::from_value(q).expect("typed answer");
    assert_eq!(typed.packages[0].quotations[0].promise_time, 18);

    // Quotation ids differ between calls.
    let (_, again) = now_quote(&gw, &instant(SHOP, DEST_LAT, DEST_LON, "10.00", 2)).await;
    assert_ne!(again["quotation_id"], expected["quotation_id"]);

    // The guide's own example has latitude and longitude exchanged: read in Brazil's order, the same quote.
    let (status, swapped) = now_quote(&gw, &instant(SHOP, DEST_LON, DEST_LAT, "10.00", 2)).await;
    assert_eq!(status, 200, "{swapped}");
    assert_eq!(swapped["packages"], expected["packages"]);

    // At the hub itself: base fee and preparation only.
    let (_, at_hub) = now_quote(&gw, &instant(SHOP, HUB_LAT, HUB_LON, "10.00", 1)).await;
    assert_eq!(
        at_hub["packages"][0]["quotations"][0],
        json!({"price": 4.9, "handling_time": 8, "shipping_time": 0, "promise_time": 8, "service_code": "SAO-01"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn free_above_makes_the_instant_and_the_zip_quote_free() {
    let (_fake, gw) = warm_gateway().await;
    let price = |q: &Value| q["packages"][0]["quotations"][0]["price"].as_f64();
    // Order value 2 x 49.50 = 99.00 reaches free_above: no fee; 2 x 49.49 = 98.98 does not.
    let (status, free) = now_quote(&gw, &instant(SHOP, DEST_LAT, DEST_LON, "49.50", 2)).await;
    assert_eq!(status, 200, "{free}");
    assert_eq!(price(&free), Some(0.0), "{free}");
    let (_, paid) = now_quote(&gw, &instant(SHOP, DEST_LAT, DEST_LON, "49.49", 2)).await;
    assert_eq!(price(&paid), Some(7.94), "{paid}");
    let (_, free) = now_quote(&gw, &by_zip(SHOP, "01311000", "49.50", 2)).await;
    assert_eq!(price(&free), Some(0.0), "{free}");
    let (_, paid) = now_quote(&gw, &by_zip(SHOP, "01311000", "49.49", 2)).await;
    assert_eq!(price(&paid), Some(9.9), "{paid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_outside_every_radius_closed_or_unknown_shop_is_403_no_channel() {
    let (_fake, gw) = warm_gateway().await;
    // ~22 km from every hub.
    let (status, err) = now_quote(&gw, &instant(SHOP, HUB_LAT - 0.2, HUB_LON, "10.00", 1)).await;
    assert_no_channel(status, &err);
    // Covered, but the shop's only hub is closed.
    let (status, err) = now_quote(&gw, &instant(CLOSED_SHOP, HUB_LAT, HUB_LON, "10.00", 1)).await;
    assert_no_channel(status, &err);
    // No hub at all for the shop.
    let (status, err) = now_quote(&gw, &instant(123, HUB_LAT, HUB_LON, "10.00", 1)).await;
    assert_no_channel(status, &err);
    // 90026 without coordinates: we cannot place the buyer.
    let mut no_coordinates = instant(SHOP, HUB_LAT, HUB_LON, "10.00", 1);
    no_coordinates
        .as_object_mut()
        .expect("obj")
        .remove("destination_lat_long");
    let (status, err) = now_quote(&gw, &no_coordinates).await;
    assert_no_channel(status, &err);
    // A channel we do not serve.
    let mut other_channel = instant(SHOP, HUB_LAT, HUB_LON, "10.00", 1);
    other_channel["channel_id"] = json!(90001);
    let (status, err) = now_quote(&gw, &other_channel).await;
    assert_no_channel(status, &err);
}

#[tokio::test(flavor = "multi_thread")]
async fn seller_logistics_quotes_by_zip_range_in_business_days() {
    let (_fake, gw) = warm_gateway().await;
    // 01311000 is in SAO-01's range; SAO-01 is open: ships today, 1 + 0 business days, at zip_fee 9.90.
    let (status, q) = now_quote(&gw, &by_zip(SHOP, "01311000", "10.00", 2)).await;
    assert_eq!(status, 200, "{q}");
    let quotation_id = q["quotation_id"].as_u64();
    assert!(quotation_id.is_some(), "{q}");
    assert_eq!(
        q,
        json!({
            "quotation_id": quotation_id,
            "destination_zip_code": "01311000",
            "packages": [{
                "dimensions": {"length": 10, "width": 12, "height": 10, "weight": 1000},
                "items": [item("10.00", 2)],
                "quotations": [{"price": 9.9, "handling_time": 1, "shipping_time": 0, "promise_time": 1,
                                "service_code": "SAO-01"}]
            }]
        })
    );
    // Range bounds are inclusive.
    for zip in ["01000000", "01599999"] {
        let (status, q) = now_quote(&gw, &by_zip(SHOP, zip, "10.00", 1)).await;
        assert_eq!(status, 200, "{zip}: {q}");
        assert_eq!(q["packages"][0]["quotations"][0]["service_code"], "SAO-01");
    }
    // 04010000 is in the closed SAO-02's range: 1 + 1 business days at its zip_fee 7.50.
    let (status, q) = now_quote(&gw, &by_zip(SHOP, "04010000", "10.00", 1)).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        q["packages"][0]["quotations"][0],
        json!({"price": 7.5, "handling_time": 1, "shipping_time": 1, "promise_time": 2, "service_code": "SAO-02"})
    );
    // The same for a shop whose only hub is closed.
    let (_, q) = now_quote(&gw, &by_zip(CLOSED_SHOP, "01311000", "10.00", 1)).await;
    assert_eq!(
        q["packages"][0]["quotations"][0],
        json!({"price": 9.9, "handling_time": 1, "shipping_time": 1, "promise_time": 2, "service_code": "CLOSED-01"})
    );
    // An explicit channel_id 90021 is the same channel.
    let mut explicit = by_zip(SHOP, "01311000", "10.00", 1);
    explicit["channel_id"] = json!(90021);
    let (status, q) = now_quote(&gw, &explicit).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["packages"][0]["quotations"][0]["promise_time"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn seller_logistics_outside_every_zip_range_is_403_no_channel() {
    let (_fake, gw) = warm_gateway().await;
    for (shop, zip) in [
        (SHOP, "01600000"), // just past SAO-01's range
        (SHOP, "00999999"), // just before it
        (SHOP, "05000000"), // only the inactive SAO-03 holds it
        (123, "01311000"),  // a shop without hubs
    ] {
        let (status, err) = now_quote(&gw, &by_zip(shop, zip, "10.00", 1)).await;
        assert_no_channel(status, &err);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fallback_request_gets_the_shops_fallback_promise_time() {
    let (_fake, gw) = warm_gateway().await;
    let (status, answer) = now_quote(&gw, &json!({"shop_id": SHOP})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"shop_id": SHOP, "fallback_promise_time": 14}));
    // CLOSED-01 alone: 8 + 2.5 km at 18 km/h = 16.33 -> 17.
    let (_, answer) = now_quote(&gw, &json!({"shop_id": CLOSED_SHOP})).await;
    assert_eq!(
        answer,
        json!({"shop_id": CLOSED_SHOP, "fallback_promise_time": 17})
    );
    let (status, err) = now_quote(&gw, &json!({"shop_id": 123})).await;
    assert_refusal(status, &err, 403, "error_shop_id", "The shop_id is invalid");
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_failures_get_the_guides_403_names() {
    let (_fake, gw) = warm_gateway().await;
    let b = instant(SHOP, HUB_LAT, HUB_LON, "10.00", 1);
    let now = chrono::Utc::now().timestamp();
    let good_sign = sign_public(KEY, PARTNER_ID, "/shopee/quotation", now);
    let cases = [
        (
            String::new(),
            "error_partner_id",
            "there is no partner_id in query",
        ),
        (
            format!("timestamp={now}&sign={good_sign}"),
            "error_partner_id",
            "there is no partner_id in query",
        ),
        (
            format!("partner_id=999&timestamp={now}&sign={good_sign}"),
            "error_partner_id",
            "partner_id is invalid",
        ),
        (
            format!("partner_id=abc&timestamp={now}&sign={good_sign}"),
            "error_partner_id",
            "partner_id is invalid",
        ),
        (
            format!("partner_id={PARTNER_ID}&sign={good_sign}"),
            "error_timestamp",
            "there is no timestamp in query",
        ),
        (
            signed_query("/shopee/quotation", now - 600),
            "error_timestamp",
            "your timestamp is invalid",
        ),
        (
            format!("partner_id={PARTNER_ID}&timestamp={now}"),
            "error_sign",
            "there is no sign in query",
        ),
        (
            format!("partner_id={PARTNER_ID}&timestamp={now}&sign={}", "0".repeat(64)),
            "error_sign",
            "your sign is invalid",
        ),
        (
            format!(
                "partner_id={PARTNER_ID}&timestamp={now}&sign={}",
                sign_public("other-key", PARTNER_ID, "/shopee/quotation", now)
            ),
            "error_sign",
            "your sign is invalid",
        ),
        // Signed over another base (e.g. the full URL) is not what we verify by default.
        (
            signed_query("https://gw.example.com/shopee/quotation", now),
            "error_sign",
            "your sign is invalid",
        ),
        // A parameter given twice cannot be told apart.
        (
            format!("{}&sign={good_sign}", signed_query("/shopee/quotation", now)),
            "error_sign",
            "your sign is invalid",
        ),
    ];
    for (query, error, message) in cases {
        let (status, err) = quote(&gw, &query, &b).await;
        assert_refusal(status, &err, 403, error, message);
    }
    // The same body, properly signed (uppercase hex too, as in the guide's validator example).
    let (status, ok) = quote(&gw, &signed_query("/shopee/quotation", now), &b).await;
    assert_eq!(status, 200, "{ok}");
    let upper = format!(
        "partner_id={PARTNER_ID}&timestamp={now}&sign={}",
        good_sign.to_uppercase()
    );
    let (status, ok) = quote(&gw, &upper, &b).await;
    assert_eq!(status, 200, "{ok}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_the_guides_403_names() {
    let (_fake, gw) = warm_gateway().await;
    let query = signed_query("/shopee/quotation", chrono::Utc::now().timestamp());
    // Not JSON, not an object, too big: there is no shop_id to read.
    for raw in [
        b"{not json".to_vec(),
        b"[1, 2]".to_vec(),
        vec![b' '; webhook_gateway::quotation::MAX_QUOTATION_BYTES + 1],
    ] {
        let (status, err) = post(&gw, &query, raw).await;
        assert_refusal(status, &err, 403, "error_shop_id", "there is no shop_id in body");
    }
    let base = || instant(SHOP, DEST_LAT, DEST_LON, "10.00", 1);
    let cases: [(Value, &str, &str); 7] = [
        (
            {
                let mut b = base();
                b["shop_id"] = json!("abc");
                b
            },
            "error_shop_id",
            "The shop_id is invalid",
        ),
        (
            {
                let mut b = base();
                b["destination_zip_code"] = json!("1311000");
                b
            },
            "invalid destination_zip_code",
            "The destination_zip_code is invalid",
        ),
        (
            {
                let mut b = base();
                b["origin_zip_code"] = json!("");
                b
            },
            "Invalid origin_zip_code",
            "The origin_zip_code is invalid",
        ),
        (
            {
                let mut b = base();
                b["items"][0]["quantity"] = json!(0);
                b
            },
            "invalid quantity",
            "The quantity is invalid",
        ),
        (
            {
                let mut b = base();
                b["items"][0]["price"] = json!(-3);
                b
            },
            "invalid price",
            "The price is invalid",
        ),
        (
            {
                let mut b = base();
                b["items"][0]["dimensions"]["weight"] = json!("heavy");
                b
            },
            "error_weight",
            "The weight is invalid",
        ),
        (
            {
                let mut b = base();
                b["items"] = json!([]);
                b
            },
            "Invalid item_id",
            "The item_id is invalid",
        ),
    ];
    for (body, error, message) in cases {
        let (status, err) = quote(&gw, &query, &body).await;
        assert_refusal(status, &err, 403, error, message);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn percent_encoded_query_values_are_decoded() {
    let (_fake, gw) = warm_gateway().await;
    let now = chrono::Utc::now().timestamp();
    let sign = sign_public(KEY, PARTNER_ID, "/shopee/quotation", now);
    let encode = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    // Every value percent-encoded, and the names too: decoded, they are the signed values.
    let query = format!(
        "{}={}&timestamp={}&sign={}",
        encode("partner_id"),
        encode(&PARTNER_ID.to_string()),
        encode(&now.to_string()),
        encode(&sign)
    );
    let (status, q) = quote(&gw, &query, &instant(SHOP, DEST_LAT, DEST_LON, "10.00", 1)).await;
    assert_eq!(status, 200, "{query}: {q}");
    assert_eq!(q["packages"][0]["quotations"][0]["service_code"], "SAO-01");
}

#[tokio::test(flavor = "multi_thread")]
async fn quotations_never_wait_on_the_hub_config_service() {
    let (fake, gw) = warm_gateway().await;
    let before = fake.count();
    assert_eq!(before, 1, "one fetch at start-up");
    let bodies = [
        instant(SHOP, HUB_LAT - 0.01, HUB_LON, "10.00", 1),
        by_zip(SHOP, "01311000", "10.00", 1),
    ];
    let client = reqwest::Client::new();
    let started = Instant::now();
    for i in 0..200 {
        let resp = client
            .post(format!(
                "{}/shopee/quotation?{}",
                gw.url,
                signed_query("/shopee/quotation", chrono::Utc::now().timestamp())
            ))
            .json(&bodies[i % 2])
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let elapsed = started.elapsed();
    assert_eq!(fake.count(), before, "200 quotations made no Hub Config request");
    println!("200 sequential quotations in {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_config_keeps_serving_and_a_change_is_picked_up_in_the_background() {
    let fake = HubConfigFake::start(hubs()).await;
    let gw = start_gateway(&fake.url, 1, "http://127.0.0.1:1").await;
    until_warm(&gw).await;
    let b = instant(SHOP, HUB_LAT, HUB_LON, "10.00", 1);
    // The service goes down: the last good snapshot keeps answering, no request waits for the service.
    fake.down.store(true, Ordering::SeqCst);
    let down_at = fake.count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(fake.count() > down_at, "the refresher kept trying");
    let started = Instant::now();
    let (status, q) = now_quote(&gw, &b).await;
    assert_eq!(status, 200, "{q}");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(q["packages"][0]["quotations"][0]["price"].as_f64(), Some(4.9));
    // Back up with a new base fee: served within a refresh period or two.
    let mut changed = hubs();
    changed[0]["delivery"]["base_fee"] = json!("6.00");
    *fake.hubs.lock().expect("lock") = changed;
    fake.down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, q) = now_quote(&gw, &b).await;
        if q["packages"][0]["quotations"][0]["price"].as_f64() == Some(6.0) {
            break;
        }
        assert!(Instant::now() < deadline, "new hub config never served: {q}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hub_config_ever_loaded_answers_500_for_the_contingency_table() {
    let fake = HubConfigFake::start(hubs()).await;
    fake.down.store(true, Ordering::SeqCst);
    let gw = start_gateway(&fake.url, 3600, "http://127.0.0.1:1").await;
    for body in [
        instant(SHOP, HUB_LAT, HUB_LON, "10.00", 1),
        by_zip(SHOP, "01311000", "10.00", 1),
        json!({"shop_id": SHOP}),
    ] {
        let (status, err) = now_quote(&gw, &body).await;
        assert_refusal(
            status,
            &err,
            500,
            "Internal system error",
            "internal system error",
        );
    }
}
