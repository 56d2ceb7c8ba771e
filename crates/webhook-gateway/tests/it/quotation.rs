//! `POST /shopee/quotation` against the real app (port 0), a local Hub Config Service fake over HTTP that counts
//! its requests, and real PostgreSQL behind the rest of the gateway.

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

pub const PARTNER_ID: u64 = 1_000_001;
pub const KEY: &str = "quotation-test-partner-key";
const SHOP: u64 = 900_001;
const CLOSED_SHOP: u64 = 900_002;
const HUB_LAT: f64 = -23.5614;
const HUB_LON: f64 = -46.6559;

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

fn hub(id: &str, shop: u64, lat: f64, lon: f64, active: bool, hours: Value) -> Value {
    json!({"hub_id": id, "active": active, "shopee_shop_id": shop,
           "location": {"zipcode": "01310100", "latitude": lat, "longitude": lon},
           "delivery": {"radius_km": 5.0, "base_fee": "4.90", "fee_per_km": "1.10", "free_above": "99.00",
                        "preparation_minutes": 8, "speed_kmh": 18},
           "opening_hours": hours})
}

fn hubs() -> Value {
    json!([
        hub("SAO-01", SHOP, HUB_LAT, HUB_LON, true, always_open()),
        // Nearer to the test destination, but closed (no opening hours) or inactive: never chosen.
        hub("SAO-02", SHOP, HUB_LAT - 0.02, HUB_LON, true, json!([])),
        hub("SAO-03", SHOP, HUB_LAT - 0.021, HUB_LON, false, always_open()),
        hub("CLOSED-01", CLOSED_SHOP, HUB_LAT, HUB_LON, true, json!([])),
    ])
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

fn signed_query(path: &str, timestamp: i64) -> String {
    let sign = sign_public(KEY, PARTNER_ID, path, timestamp);
    format!("partner_id={PARTNER_ID}&timestamp={timestamp}&sign={sign}")
}

fn body(shop: u64, lat: f64, lon: f64, price: &str, quantity: u32, channel: u64) -> Value {
    json!({"shop_id": shop, "origin_zip_code": "01310100", "destination_zip_code": "01311000", "channel_id": channel,
           "destination_lat_long": {"latitude": lat, "longitude": lon},
           "items": [{"item_id": 100001, "sku": "789100000001", "model_id": 0, "category_id": 1, "quantity": quantity,
                      "price": price.parse::<f64>().expect("price"),
                      "dimensions": {"length": 10, "width": 10, "height": 10, "weight": 0.5}}]})
}

async fn quote(gw: &Gateway, query: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/shopee/quotation?{query}", gw.url))
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn now_quote(gw: &Gateway, body: &Value) -> (u16, Value) {
    quote(
        gw,
        &signed_query("/shopee/quotation", chrono::Utc::now().timestamp()),
        body,
    )
    .await
}

/// Waits until the gateway has a hub config snapshot (a quotation stops answering 500).
async fn until_warm(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = body(SHOP, HUB_LAT, HUB_LON, "1.00", 1, 90026);
    while Instant::now() < deadline {
        if now_quote(gw, &probe).await.0 != 500 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hub config never loaded");
}

#[tokio::test(flavor = "multi_thread")]
async fn signature_failures_are_refused() {
    let fake = HubConfigFake::start(hubs()).await;
    let gw = start_gateway(&fake.url, 3600, "http://127.0.0.1:1").await;
    until_warm(&gw).await;
    let b = body(SHOP, HUB_LAT, HUB_LON, "10.00", 1, 90026);
    let now = chrono::Utc::now().timestamp();
    let good_sign = sign_public(KEY, PARTNER_ID, "/shopee/quotation", now);
    let cases = [
        (String::new(), "error_auth"),
        (format!("partner_id={PARTNER_ID}&timestamp={now}"), "error_auth"),
        (
            format!("partner_id={PARTNER_ID}&timestamp={now}&sign={}", "0".repeat(64)),
            "error_sign",
        ),
        (
            format!(
                "partner_id={PARTNER_ID}&timestamp={now}&sign={}",
                sign_public("other-key", PARTNER_ID, "/shopee/quotation", now)
            ),
            "error_sign",
        ),
        // Signed over another path (e.g. the full URL) is not what we verify.
        (
            signed_query("https://gw.example.com/shopee/quotation", now),
            "error_sign",
        ),
        (signed_query("/shopee/quotation", now - 600), "error_auth"),
        (
            format!("partner_id=999&timestamp={now}&sign={good_sign}"),
            "error_auth",
        ),
    ];
    for (query, code) in cases {
        let (status, err) = quote(&gw, &query, &b).await;
        assert_eq!(status, 401, "{query}: {err}");
        assert_eq!(err["error"], code, "{query}: {err}");
        assert!(err["request_id"].is_string() && err["message"].is_string());
    }
    let (status, ok) = quote(&gw, &signed_query("/shopee/quotation", now), &b).await;
    assert_eq!(status, 200, "{ok}");
    // A valid signature with a body that is not a quotation: 400 in Shopee's shape.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/shopee/quotation?{}",
            gw.url,
            signed_query("/shopee/quotation", now)
        ))
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"], "error_param");
    // An oversized body is refused in the same shape.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/shopee/quotation?{}",
            gw.url,
            signed_query("/shopee/quotation", now)
        ))
        .body(vec![b' '; webhook_gateway::quotation::MAX_QUOTATION_BYTES + 1])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 413);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"], "error_param");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nearest_open_active_hub_quotes_with_fee_rounded_half_up() {
    let fake = HubConfigFake::start(hubs()).await;
    let gw = start_gateway(&fake.url, 3600, "http://127.0.0.1:1").await;
    until_warm(&gw).await;
    // ~2.8 km south of SAO-01, ~0.4 km from the closed SAO-02 and the inactive SAO-03.
    let (lat, lon) = (HUB_LAT - 0.0247, HUB_LON + 0.0031);
    let d = haversine_km(HUB_LAT, HUB_LON, lat, lon);
    let fee_centavos = 490 + ((110.0 * d) + 0.5).floor() as i64;
    let expected_price = fee_centavos as f64 / 100.0;
    let expected_minutes = 8 + (d * 60.0 / 18.0).ceil() as u64;
    let (status, q) = now_quote(&gw, &body(SHOP, lat, lon, "10.00", 2, 90026)).await;
    assert_eq!(status, 200, "{q}");
    let quotation = &q["packages"][0]["quotations"][0];
    assert_eq!(quotation["service_code"], "SAO-01", "{q}");
    assert_eq!(
        quotation["price"].as_f64(),
        Some(expected_price),
        "distance {d} km: {q}"
    );
    assert_eq!(quotation["promise_time"].as_u64(), Some(expected_minutes));
    assert_eq!(quotation["handling_time"].as_u64(), Some(8));
    assert!(q["quotation_id"].is_string());
    assert_eq!(q["destination_zip_code"], "01311000");
    assert_eq!(q["packages"][0]["items"][0]["quantity"], 2);

    // Order value 2 x 49.50 = 99.00 reaches free_above: no fee.
    let (_, free) = now_quote(&gw, &body(SHOP, lat, lon, "49.50", 2, 90026)).await;
    assert_eq!(
        free["packages"][0]["quotations"][0]["price"].as_f64(),
        Some(0.0),
        "{free}"
    );
    let (_, not_free) = now_quote(&gw, &body(SHOP, lat, lon, "49.49", 2, 90026)).await;
    assert_eq!(
        not_free["packages"][0]["quotations"][0]["price"].as_f64(),
        Some(expected_price)
    );

    // Channel 90021 answers in business days.
    let (_, days) = now_quote(&gw, &body(SHOP, lat, lon, "10.00", 1, 90021)).await;
    assert_eq!(
        days["packages"][0]["quotations"][0]["promise_time"].as_u64(),
        Some(1),
        "{days}"
    );

    // A point exactly where the fee is a clean figure: 0 km -> base fee and preparation only.
    let (_, at_hub) = now_quote(&gw, &body(SHOP, HUB_LAT, HUB_LON, "10.00", 1, 90026)).await;
    assert_eq!(
        at_hub["packages"][0]["quotations"][0]["price"].as_f64(),
        Some(4.9)
    );
    assert_eq!(
        at_hub["packages"][0]["quotations"][0]["promise_time"].as_u64(),
        Some(8)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_the_radius_closed_or_unknown_gets_shopee_403() {
    let fake = HubConfigFake::start(hubs()).await;
    let gw = start_gateway(&fake.url, 3600, "http://127.0.0.1:1").await;
    until_warm(&gw).await;
    let far = body(SHOP, HUB_LAT - 0.2, HUB_LON, "10.00", 1, 90026); // ~22 km
    let closed = body(CLOSED_SHOP, HUB_LAT, HUB_LON, "10.00", 1, 90026);
    let unknown_shop = body(123, HUB_LAT, HUB_LON, "10.00", 1, 90026);
    let mut no_coordinates = body(SHOP, HUB_LAT, HUB_LON, "10.00", 1, 90026);
    no_coordinates
        .as_object_mut()
        .expect("obj")
        .remove("destination_lat_long");
    for (b, hint) in [
        (far, ""),
        (closed, "closed"),
        (unknown_shop, ""),
        (no_coordinates, "destination_lat_long"),
    ] {
        let (status, err) = now_quote(&gw, &b).await;
        assert_eq!(status, 403, "{b}: {err}");
        assert_eq!(err["error"], "error_destination_zip_code");
        let message = err["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with("No shipping channel is available"),
            "{message}"
        );
        assert!(message.contains(hint), "{message}");
        assert!(err["request_id"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quotations_never_wait_on_the_hub_config_service() {
    let fake = HubConfigFake::start(hubs()).await;
    let gw = start_gateway(&fake.url, 3600, "http://127.0.0.1:1").await;
    until_warm(&gw).await;
    let before = fake.count();
    assert_eq!(before, 1, "one fetch at start-up");
    let b = body(SHOP, HUB_LAT - 0.01, HUB_LON, "10.00", 1, 90026);
    let client = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..200 {
        let resp = client
            .post(format!(
                "{}/shopee/quotation?{}",
                gw.url,
                signed_query("/shopee/quotation", chrono::Utc::now().timestamp())
            ))
            .json(&b)
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
    let b = body(SHOP, HUB_LAT, HUB_LON, "10.00", 1, 90026);
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
    let (status, err) = now_quote(&gw, &body(SHOP, HUB_LAT, HUB_LON, "10.00", 1, 90026)).await;
    assert_eq!(status, 500, "{err}");
    assert_eq!(err["error"], "error_server");
    assert!(err["request_id"].is_string());
}
