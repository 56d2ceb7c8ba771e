//! Channel 90026 serviceable area over real HTTP: the publisher's hub sync (against a local fake Hub Config Service)
//! uploads each shop's hubs as one KML to the sandbox, checks the task to done and records it in `shop_polygons`;
//! the same config uploads nothing again, a radius change uploads again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use order_publisher::polygons::{Outcome, PolygonSync};
use serde_json::{Value, json};
use service_runtime::config::Env;
use tokio_util::sync::CancellationToken;

use crate::stack::Stack;

const UPLOAD: &str = "/api/v2/logistics/upload_serviceable_polygon";
const CHECK: &str = "/api/v2/logistics/check_polygon_update_status";

fn hub(shop: u64, id: &str, lat: f64, lon: f64, radius_km: f64) -> Value {
    json!({
        "hub_id": id, "active": true, "shopee_shop_id": shop,
        "location": {"zipcode": "01310100", "latitude": lat, "longitude": lon},
        "delivery": {"radius_km": radius_km, "base_fee": "4.90", "fee_per_km": "1.10",
                     "preparation_minutes": 8, "speed_kmh": 18},
        "opening_hours": []
    })
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    kml_sha256: String,
    task_id: Option<String>,
    status: String,
    checked_at: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
}

async fn row(stack: &Stack) -> Option<Row> {
    sqlx::query_as(
        "SELECT kml_sha256, task_id, status, checked_at, last_error FROM shop_polygons WHERE shop_id = $1",
    )
    .bind(stack.shop as i64)
    .fetch_optional(&stack.db.pool)
    .await
    .expect("shop_polygons")
}

async fn sha256(stack: &Stack, text: &str) -> String {
    sqlx::query_scalar("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')")
        .bind(text)
        .fetch_one(&stack.db.pool)
        .await
        .expect("sha256")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_shops_hubs_become_one_uploaded_polygon_file_checked_to_done_and_uploaded_again_only_on_change()
{
    let mut stack = Stack::new(3600).await;
    let shop = stack.shop;
    let config = Arc::new(Mutex::new(json!([
        hub(shop, "SAO-01", -23.5614, -46.6559, 5.0),
        hub(shop, "SAO-02", -23.6100, -46.7000, 3.0),
    ])));
    let served = Arc::clone(&config);
    let app = axum::Router::new().route(
        "/v1/hubs",
        axum::routing::get(move || {
            let served = Arc::clone(&served);
            async move { axum::Json(served.lock().expect("config").clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The publisher's hub sync runs at start: one upload, its task checked to done.
    stack.start_publisher_with(&[("HUB_CONFIG_URL", &url)]).await;
    let started = Instant::now();
    let first = loop {
        if let Some(r) = row(&stack).await
            && r.status == "done"
        {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the serviceable area never reached done: {:?}",
            row(&stack).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stack.sandbox.calls_to(UPLOAD), 1, "one upload for the shop");
    assert!(stack.sandbox.calls_to(CHECK) >= 2, "in progress, then done");
    let kml = stack.sandbox.polygon(shop).expect("the shop's polygon");
    assert_eq!(kml.matches("<Placemark>").count(), 2, "{kml}");
    assert_eq!(kml.matches("<Polygon>").count(), 2);
    assert!(kml.contains("<name>SAO-01</name>") && kml.contains("<name>SAO-02</name>"));
    let (hubs, _) =
        hub_config::parse_hubs(config.lock().expect("config").to_string().as_bytes()).expect("hubs");
    assert_eq!(Some(&kml), hub_config::kml::shop_kml(shop, &hubs).as_ref());
    assert_eq!(first.kml_sha256, sha256(&stack, &kml).await);
    assert!(
        first.task_id.as_deref().is_some_and(|t| !t.is_empty()),
        "{first:?}"
    );
    assert!(
        first.checked_at.is_some() && first.last_error.is_none(),
        "{first:?}"
    );

    // Further cycles, driven here (the publisher's next sync is a minute away), with the same client setup.
    let env_pairs = stack.env();
    let env = Env::from_pairs(env_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let key = service_runtime::config::token_encryption_key(&env).expect("key");
    let shopee_config = service_runtime::config::ShopeeConfig::from_env(&env).expect("shopee config");
    let shopee =
        service_runtime::shopee::client(&shopee_config, stack.db.pool.clone(), None, &key).expect("client");
    let sync = PolygonSync {
        pool: stack.db.pool.clone(),
        shopee,
        check_delays: vec![Duration::from_millis(50); 10],
    };
    let http = reqwest::Client::new();
    let never = CancellationToken::new();

    // Same config: nothing uploaded.
    let snapshot = hub_config::fetch(&http, &url).await.expect("snapshot");
    let outcomes = sync.cycle(&snapshot, &never).await;
    assert_eq!(outcomes, vec![(shop, Outcome::Unchanged)]);
    assert_eq!(
        stack.sandbox.calls_to(UPLOAD),
        1,
        "an unchanged area is not uploaded again"
    );

    // A radius change: uploaded again, checked to done, recorded.
    config.lock().expect("config")[1]["delivery"]["radius_km"] = json!(3.5);
    let snapshot = hub_config::fetch(&http, &url).await.expect("snapshot");
    let outcomes = sync.cycle(&snapshot, &never).await;
    assert_eq!(outcomes, vec![(shop, Outcome::Done)]);
    assert_eq!(stack.sandbox.calls_to(UPLOAD), 2);
    let changed = stack.sandbox.polygon(shop).expect("polygon");
    assert_ne!(changed, kml);
    let second = row(&stack).await.expect("row");
    assert_eq!(second.status, "done");
    assert_eq!(second.kml_sha256, sha256(&stack, &changed).await);
    assert_ne!(second.task_id, first.task_id);

    // A failed upload is recorded with its reason and retried next cycle; order intake is not involved.
    config.lock().expect("config")[0]["delivery"]["radius_km"] = json!(6.0);
    let mut fault = shopee_sandbox::Fault::new(shopee_sandbox::FaultKind::Error {
        status: 200,
        error: "error_shop".into(),
        message: "the instant channel is not enabled".into(),
    });
    fault.api = Some(UPLOAD.into());
    fault.shop_id = Some(shop);
    fault.calls = Some(1);
    stack.sandbox.inject_fault(fault);
    let snapshot = hub_config::fetch(&http, &url).await.expect("snapshot");
    let outcomes = sync.cycle(&snapshot, &never).await;
    assert!(
        matches!(&outcomes[0].1, Outcome::Error(e) if e.contains("error_shop")),
        "{outcomes:?}"
    );
    let failed = row(&stack).await.expect("row");
    assert_eq!(failed.status, "error");
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("error_shop")),
        "{failed:?}"
    );
    let outcomes = sync.cycle(&snapshot, &never).await;
    assert_eq!(outcomes, vec![(shop, Outcome::Done)]);
    let healed = row(&stack).await.expect("row");
    assert_eq!((healed.status.as_str(), healed.last_error), ("done", None));
}
