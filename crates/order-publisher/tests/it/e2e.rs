//! The order flow end to end, over real HTTP and real brokers (see common/stack.rs for the stack).

use std::time::{Duration, Instant};

use shopee_sandbox::SeedOrder;

use crate::stack::{ITEM, Received, SKU, Stack};

fn order(stack: &Stack, sn: &str) -> SeedOrder {
    let mut o = SeedOrder::example(stack.shop, sn, ITEM, SKU);
    o.order_status = "UNPAID".into();
    o
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ready_to_ship_push_becomes_exactly_one_new_order() {
    let mut stack = Stack::new(3600).await;
    stack.map(SKU, ITEM).await;
    stack.start_publisher().await;
    stack
        .sandbox
        .seed_order(order(&stack, "E2E0000000001"))
        .await
        .expect("seed");
    stack
        .wait_state("E2E0000000001", "received", Duration::from_secs(10))
        .await;
    assert!(stack.pull().await.is_empty(), "UNPAID must not publish");

    stack
        .sandbox
        .set_order_status(stack.shop, "E2E0000000001", "READY_TO_SHIP")
        .await
        .expect("rts");
    let got = stack.pull_until(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let msg = &got[0];
    assert_eq!(
        msg.attributes.get("event_type").map(String::as_str),
        Some("new_order")
    );
    assert_eq!(msg.attributes.get("source").map(String::as_str), Some("shopee"));
    assert_eq!(
        msg.attributes.get("schema_version").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        msg.attributes.get("idempotency_key").map(String::as_str),
        Some(format!("shopee:{}:E2E0000000001", stack.shop).as_str())
    );
    assert_eq!(msg.ordering_key, format!("{}:E2E0000000001", stack.shop));
    let order = &msg.payload["order"];
    assert_eq!(order["external_id"], "E2E0000000001");
    assert_eq!(order["hub_id"], "SAO-01");
    assert_eq!(order["lines"][0]["sku"], SKU);
    assert_eq!(order["lines"][0]["unit_price"], "12.90");
    assert_eq!(order["totals"]["total"], "30.70");
    assert_eq!(msg.payload["event_type"], "new_order");

    // The same status again and a later cancellation: recorded, never a second event.
    stack
        .sandbox
        .set_order_status(stack.shop, "E2E0000000001", "READY_TO_SHIP")
        .await
        .expect("rts again");
    stack
        .sandbox
        .set_order_status(stack.shop, "E2E0000000001", "CANCELLED")
        .await
        .expect("cancel");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cancelled: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT cancelled_after_publish_at FROM orders WHERE order_sn = 'E2E0000000001'",
        )
        .fetch_one(&stack.db.pool)
        .await
        .expect("row");
        if cancelled.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cancellation after publish was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stack.pull_until(1, Duration::from_secs(3)).await.is_empty(),
        "a second event was published"
    );
}

/// R14: an order with an unmapped SKU waits as needs_mapping, visibly, and is published once mapped.
#[tokio::test(flavor = "multi_thread")]
async fn an_unmapped_order_waits_and_is_published_once_mapped() {
    let mut stack = Stack::new(3600).await;
    stack.start_publisher().await;
    let mut o = order(&stack, "E2E0000000002");
    o.order_status = "READY_TO_SHIP".into();
    stack.sandbox.seed_order(o).await.expect("seed");
    stack
        .wait_state("E2E0000000002", "needs_mapping", Duration::from_secs(15))
        .await;
    let detail: Option<String> =
        sqlx::query_scalar("SELECT detail FROM orders WHERE order_sn = 'E2E0000000002'")
            .fetch_one(&stack.db.pool)
            .await
            .expect("detail");
    assert!(detail.unwrap_or_default().contains("item 100001 model 0"));
    assert!(stack.pull().await.is_empty());

    stack.map(SKU, ITEM).await;
    let got = stack.pull_until(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["order"]["lines"][0]["sku"], SKU);
    stack
        .wait_state("E2E0000000002", "published", Duration::from_secs(5))
        .await;
}

/// Pushes that arrive while the publisher is down are fetched in batches of 50 per shop once it starts.
#[tokio::test(flavor = "multi_thread")]
async fn details_are_fetched_in_batches_of_fifty() {
    let mut stack = Stack::new(3600).await;
    stack.map(SKU, ITEM).await;
    let n = 120;
    let orders: Vec<SeedOrder> = (0..n)
        .map(|i| {
            let mut o = order(&stack, &format!("BATCH{i:08}"));
            o.order_status = "READY_TO_SHIP".into();
            o
        })
        .collect();
    stack.sandbox.seed_orders(orders).await.expect("seed");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM push_inbox")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(stored, n as i64, "every push stored by the gateway");
    stack.sandbox.clear_journal();
    stack.start_publisher().await;
    let got = stack.pull_until(n, Duration::from_secs(30)).await;
    assert_eq!(got.len(), n);
    let detail_calls = stack.sandbox.calls_to("/api/v2/order/get_order_detail");
    assert_eq!(
        detail_calls,
        n.div_ceil(50),
        "get_order_detail calls for {n} orders"
    );
}

/// R10: pushes dropped before reaching us are recovered within one reconciliation cycle.
#[tokio::test(flavor = "multi_thread")]
async fn lost_pushes_are_recovered_by_reconciliation() {
    let mut stack = Stack::new(2).await;
    stack.map(SKU, ITEM).await;
    stack.sandbox.drop_next_pushes(3);
    for i in 0..3 {
        let mut o = order(&stack, &format!("LOST{i:08}"));
        o.order_status = "READY_TO_SHIP".into();
        stack.sandbox.seed_order(o).await.expect("seed");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM push_inbox")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "the pushes were dropped");
    stack.start_publisher().await;
    let got = stack.pull_until(3, Duration::from_secs(30)).await;
    let sns = external_ids(&got);
    assert_eq!(sns, vec!["LOST00000000", "LOST00000001", "LOST00000002"]);
    assert!(
        stack.pull_until(1, Duration::from_secs(3)).await.is_empty(),
        "no duplicates from the second source"
    );
}

/// A push Shopee neither delivered nor kept for `get_lost_push_message` is found by the order-list scan alone. Shopee
/// answers `get_order_list` with order numbers only unless `response_optional_fields=order_status` is asked: without
/// it the scan saw no status and enqueued nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_order_with_no_push_at_all_is_found_by_the_order_list_scan() {
    let mut stack = Stack::new(2).await;
    stack.map(SKU, ITEM).await;
    stack.sandbox.forget_next_pushes(2);
    for i in 0..2 {
        let mut o = order(&stack, &format!("GONE{i:08}"));
        o.order_status = "READY_TO_SHIP".into();
        stack.sandbox.seed_order(o).await.expect("seed");
    }
    assert!(
        stack.sandbox.pushes().iter().all(|p| !p.body.contains("GONE")),
        "no push, not even a lost one"
    );
    stack.start_publisher().await;
    let got = stack.pull_until(2, Duration::from_secs(30)).await;
    let sns = external_ids(&got);
    assert_eq!(sns, vec!["GONE00000000", "GONE00000001"]);
    let listed: Vec<_> = stack
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| e.api == "/api/v2/order/get_order_list")
        .collect();
    assert!(!listed.is_empty(), "found through get_order_list");
    assert!(
        listed
            .iter()
            .all(|e| e.request.to_string().contains("order_status")),
        "every scan asks for order_status: {:?}",
        listed[0].request
    );
}

/// The hubs table follows the Hub Config Service (a local fake over HTTP).
#[tokio::test(flavor = "multi_thread")]
async fn hubs_follow_the_hub_config_service() {
    let mut stack = Stack::new(3600).await;
    let hubs = serde_json::json!([{
        "hub_id": "CWB-07", "active": true, "shopee_shop_id": stack.shop,
        "location": {"zipcode": "80010000", "latitude": -25.4284, "longitude": -49.2733},
        "delivery": {"radius_km": 4.0, "base_fee": "3.90", "fee_per_km": "1.00", "free_above": "80.00",
                     "preparation_minutes": 10, "speed_kmh": 20},
        "opening_hours": [{"weekday": 1, "open": "08:00", "close": "22:00"}]
    }]);
    let app = axum::Router::new().route(
        "/v1/hubs",
        axum::routing::get(move || async move { axum::Json(hubs.clone()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    stack.start_publisher_with(&[("HUB_CONFIG_URL", &url)]).await;
    let started = Instant::now();
    loop {
        let shop: Option<i64> = sqlx::query_scalar("SELECT shop_id FROM hubs WHERE hub_id = 'CWB-07'")
            .fetch_optional(&stack.db.pool)
            .await
            .expect("hubs");
        if shop == Some(stack.shop as i64) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "hub CWB-07 never reached the hubs table"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The published orders' `external_id`s, sorted.
fn external_ids(got: &[Received]) -> Vec<String> {
    let mut sns: Vec<String> = got
        .iter()
        .map(|m| {
            m.payload["order"]["external_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    sns.sort();
    sns
}
