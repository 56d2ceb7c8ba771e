//! Each transition, each skip and park path, against a real Kafka-protocol broker (tansu), PostgreSQL and the
//! Shopee sandbox over HTTP.

use std::time::{Duration, Instant};

use delivery_status_consumer::consumer::lane_of;
use domain::{OrderSn, ShopId};
use serde_json::{Value, json};
use shopee_client::api::logistics::{NonIntegrated, ShipMode, ShipOrderRequest};
use shopee_sandbox::Fault;
use test_support::kafka::TansuBroker;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const TOPIC: &str = "deliveries.out";
const PARTITIONS: i32 = 3;

fn ok_calls(env: &Env, api: &str, sn: &str) -> usize {
    env.calls(api, sn).iter().filter(|(_, e)| e.is_empty()).count()
}

async fn all_consumed(env: &Env, group: &str) {
    let last = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let now = tokio::task::block_in_place(|| env.committed_vs_end(group, PARTITIONS));
        if now.iter().all(|(done, end)| done == end) {
            return;
        }
        *last.lock().unwrap() = now;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "not every offset committed within 30 s: (committed, end) = {:?}",
        last.lock().unwrap()
    );
}

/// ready -> arranged (non_integrated, pickup, dropoff), on_the_way -> picked up, delivered, canceled before and
/// after pickup, a status that skips ahead, then late and duplicate events that change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_transition_reaches_shopee_once_and_is_recorded() {
    let broker = TansuBroker::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let env = Env::new(&broker.bootstrap(), TOPIC).await;
    let sns = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    env.seed_orders(&sns(&["FULL1", "CANCEL1", "FAIL1", "AHEAD1", "LATE1"]), None)
        .await;
    env.seed_orders(&sns(&["PICKUP1"]), Some("pickup")).await;
    env.seed_orders(&sns(&["DROPOFF1"]), Some("dropoff")).await;

    let e = |t: &str, sn: &str| (format!("ORDR-{sn}"), event(t, sn, &format!("ORDR-{sn}")));
    let c = |sn: &str, r: Option<&str>| (format!("ORDR-{sn}"), canceled(sn, &format!("ORDR-{sn}"), r));
    env.send(&[
        e("delivery.ready", "FULL1"),
        e("delivery.on_the_way", "FULL1"),
        e("delivery.delivered", "FULL1"),
        e("delivery.ready", "CANCEL1"),
        c("CANCEL1", Some("no_delivery_location_consensus")),
        e("delivery.ready", "FAIL1"),
        e("delivery.on_the_way", "FAIL1"),
        c("FAIL1", Some("buyer_unresponsive")),
        e("delivery.delivered", "AHEAD1"),
        e("delivery.on_the_way", "LATE1"),
        e("delivery.ready", "LATE1"),
        e("delivery.on_the_way", "LATE1"),
        e("delivery.ready", "PICKUP1"),
        e("delivery.ready", "DROPOFF1"),
    ])
    .await;
    let started = Instant::now();
    let group = "g-transitions";
    let running = env.start(group);
    let expected = [
        ("FULL1", "delivered"),
        ("CANCEL1", "cancelled"),
        ("FAIL1", "delivery_failed"),
        ("AHEAD1", "delivered"),
        ("LATE1", "picked_up"),
        ("PICKUP1", "arranged"),
        ("DROPOFF1", "arranged"),
    ];
    let took = wait_until("every order at its state", Duration::from_secs(60), || async {
        let states = env.states().await;
        expected
            .iter()
            .all(|(sn, st)| states.get(*sn).map(String::as_str) == Some(*st))
    })
    .await;
    println!(
        "transitions: 14 events applied {took:?} after start ({:?} incl. group join)",
        started.elapsed()
    );

    // Late and duplicate events: no Shopee call, no change.
    env.send(&[
        e("delivery.ready", "FULL1"),
        e("delivery.on_the_way", "FULL1"),
        c("FULL1", None),
        e("delivery.delivered", "CANCEL1"),
        e("delivery.ready", "LATE1"),
    ])
    .await;
    all_consumed(&env, group).await;
    for (sn, st) in expected {
        assert_eq!(env.state(sn).await, st, "{sn}");
    }

    // Shopee saw each step exactly once, every call accepted (no regression was ever sent).
    let journal = env.sandbox.journal();
    let refused: Vec<_> = journal
        .iter()
        .filter(|j| !j.error.is_empty() || j.refused_in_answer.is_some())
        .collect();
    assert!(refused.is_empty(), "Shopee refused calls: {refused:?}");
    assert_eq!(ok_calls(&env, SHIP_ORDER, "FULL1"), 1);
    assert_eq!(ok_calls(&env, UPDATE_TRACKING_STATUS, "FULL1"), 2);
    assert_eq!(ok_calls(&env, CANCEL_ORDER, "FULL1"), 0);
    assert_eq!(
        ok_calls(&env, UPDATE_TRACKING_STATUS, "AHEAD1"),
        2,
        "skipping ahead performs the missing steps"
    );
    assert_eq!(ok_calls(&env, SHIP_ORDER, "LATE1"), 1);
    let s = |sn: &str| env.sandbox.order(env.shop_id, sn).unwrap();
    assert_eq!(s("FULL1").logistics_status, "LOGISTICS_DELIVERY_DONE");
    assert_eq!(s("FULL1").order.tracking_number.as_deref(), Some("TRKFULL1"));
    assert_eq!(
        s("FULL1").tracking_url.as_deref(),
        Some("https://track.example/FULL1")
    );
    assert_eq!(s("CANCEL1").order.order_status, "CANCELLED");
    // Brazil has no UNDELIVERABLE_AREA: the fleet's reasons are the buyer's side.
    assert_eq!(s("CANCEL1").cancel_reason.as_deref(), Some("CUSTOMER_REQUEST"));
    assert_eq!(s("FAIL1").logistics_status, "LOGISTICS_DELIVERY_FAILED");
    assert_eq!(s("FAIL1").failed_reason.as_deref(), Some("buyer_unresponsive"));
    assert_eq!(s("LATE1").logistics_status, "LOGISTICS_PICKUP_DONE");
    let ship_request = |sn: &str| {
        env.sandbox
            .journal()
            .into_iter()
            .find(|j| j.api == SHIP_ORDER && j.request["order_sn"] == sn)
            .unwrap()
            .request
    };
    assert_eq!(
        ship_request("PICKUP1")["pickup"],
        json!({"address_id": 1, "pickup_time_id": "1"})
    );
    assert_eq!(ship_request("DROPOFF1")["dropoff"], json!({"branch_id": 1}));
    assert_eq!(ship_request("FULL1")["non_integrated"], json!({}));
    assert_eq!(
        ship_request("LATE1")["non_integrated"],
        json!({"tracking_number": "TRKLATE1"}),
        "arranged by on_the_way: its tracking number goes with ship_order"
    );
    let ordr: Option<String> =
        sqlx::query_scalar("SELECT ordr_order_id FROM orders WHERE order_sn = 'FULL1'")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert_eq!(ordr.as_deref(), Some("ORDR-FULL1"));
    assert!(env.dead_letters().await.is_empty());

    let stopped = running.stop().await;
    assert!(stopped < Duration::from_secs(5), "stop took {stopped:?}");
    for (done, end) in env.committed_vs_end(group, PARTITIONS) {
        assert_eq!(done, end, "every event committed after a clean stop");
    }
}

/// Transient failures are retried (without holding other orders up) and parked after the budget; a redrive
/// applies them once Shopee is back. Permanent failures park after one attempt. "Already there" is success.
/// Invalid events are dead-lettered; other channels and unknown orders are skipped without a Shopee call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_are_retried_parked_redriven_and_skips_cost_nothing() {
    let broker = TansuBroker::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let env = Env::new(&broker.bootstrap(), TOPIC).await;
    let orders: Vec<String> = ["RETRY1", "PARK1", "BUSY1", "DONE1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    env.seed_orders(&orders, None).await;
    // In our database but not at Shopee: every call is refused for good.
    sqlx::query("INSERT INTO orders (shop_id, order_sn) VALUES ($1, 'GHOST1')")
        .bind(env.shop_id as i64)
        .execute(&env.db.pool)
        .await
        .unwrap();
    // Shipped at Shopee by an earlier run that died before recording it.
    let processor_client = delivery_status_consumer::shopee_client(
        &service_runtime::config::ShopeeConfig {
            api_base_url: env.sandbox.base_url(),
            partner_id: PARTNER_ID,
            partner_key: service_runtime::config::Secret::new(PARTNER_KEY),
            rate_limit_per_shop: 1000,
        },
        env.db.pool.clone(),
        None,
        &service_runtime::config::EncryptionKey(TOKEN_KEY),
    )
    .unwrap();
    processor_client
        .ship_order(
            ShopId::new(env.shop_id).unwrap(),
            &ShipOrderRequest {
                order_sn: OrderSn::parse("DONE1").unwrap(),
                package_number: None,
                mode: ShipMode::NonIntegrated(NonIntegrated::default()),
            },
        )
        .await
        .unwrap();

    let group = "g-failures";
    let running = env.start(group);
    let e = |t: &str, sn: &str| (format!("ORDR-{sn}"), event(t, sn, &format!("ORDR-{sn}")));

    // 1. Two 503s on ship_order, then Shopee recovers: applied, nothing parked.
    env.sandbox.inject_fault(
        Fault::server_error(503)
            .api(SHIP_ORDER)
            .shop(env.shop_id)
            .times(2),
    );
    env.send(&[e("delivery.ready", "RETRY1"), e("delivery.ready", "BUSY1")])
        .await;
    wait_until("RETRY1 and BUSY1 arranged", Duration::from_secs(60), || async {
        env.state("RETRY1").await == "arranged" && env.state("BUSY1").await == "arranged"
    })
    .await;
    let ship_calls = env.calls(SHIP_ORDER, "RETRY1").len() + env.calls(SHIP_ORDER, "BUSY1").len();
    assert_eq!(ship_calls, 4, "two refused by the fault, one success each");
    assert!(env.dead_letters().await.is_empty());

    // 2. ship_order down for good: PARK1 is retried then parked, while BUSY1 (another lane) moves on at once.
    assert_ne!(
        lane_of(Some(b"ORDR-PARK1"), 0, 32),
        lane_of(Some(b"ORDR-BUSY1"), 0, 32)
    );
    env.sandbox
        .inject_fault(Fault::server_error(503).api(SHIP_ORDER).shop(env.shop_id));
    let sent = Instant::now();
    env.send(&[e("delivery.ready", "PARK1"), e("delivery.on_the_way", "BUSY1")])
        .await;
    let busy_done = wait_until("BUSY1 picked up", Duration::from_secs(30), || async {
        env.state("BUSY1").await == "picked_up"
    })
    .await;
    let parked = wait_until("PARK1 parked", Duration::from_secs(30), || async {
        !env.dead_letters().await.is_empty()
    })
    .await;
    println!(
        "transient: other order applied after {busy_done:?}; the failing one parked after {parked:?} ({:?} since sent)",
        sent.elapsed()
    );
    // Compare when each effect was recorded (database clocks), not how long each wait took: BUSY1 (another lane)
    // must be applied before PARK1's retries (>= 1 s of backoff) end in the dead letter.
    let (busy_at, parked_at): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(
            "SELECT (SELECT delivery_updated_at FROM orders WHERE order_sn = 'BUSY1'),
                (SELECT min(created_at) FROM dead_letters)",
        )
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    assert!(
        busy_at < parked_at,
        "another order's event is not held up by retries (BUSY1 applied at {busy_at}, PARK1 parked at {parked_at})"
    );
    let dl = env.dead_letters().await;
    assert_eq!(dl.len(), 1);
    let (reference, reason, status) = &dl[0];
    assert!(reference.starts_with("PARK1:delivery.ready:"), "{reference}");
    assert!(
        reason.contains("arrange_shipment") && reason.contains("3 attempts"),
        "{reason}"
    );
    assert_eq!(status, "parked");
    assert_eq!(env.calls(SHIP_ORDER, "PARK1").len(), 3, "bounded: three attempts");
    assert_eq!(env.state("PARK1").await, "ready_to_ship");

    // 3. Shopee is back; an operator asks for a redrive.
    env.sandbox.clear_faults();
    sqlx::query("UPDATE dead_letters SET status = 'redrive_requested'")
        .execute(&env.db.pool)
        .await
        .unwrap();
    let n = delivery_status_consumer::redrive::once(&env.processor(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(env.state("PARK1").await, "arranged");
    assert_eq!(env.dead_letters().await[0].2, "redriven");

    // 4. Permanent: parked after one attempt. Already there: success. Invalid: dead-lettered. Skips: free.
    env.sandbox.clear_journal();
    let invalid_shopee = json!({"event_type": "delivery.teleported", "event_id": "x", "order_id": "ORDR-9",
        "sales_channel": "shopee", "external_order_id": "DONE1", "occurred_at": "2026-11-25T12:00:00Z"});
    let mut events: Vec<(String, Vec<u8>)> = vec![
        (
            "ORDR-GHOST1".into(),
            serde_json::to_vec(&event("delivery.ready", "GHOST1", "ORDR-GHOST1")).unwrap(),
        ),
        (
            "ORDR-DONE1".into(),
            serde_json::to_vec(&event("delivery.ready", "DONE1", "ORDR-DONE1")).unwrap(),
        ),
        ("ORDR-9".into(), serde_json::to_vec(&invalid_shopee).unwrap()),
        ("ORDR-10".into(), b"{not json".to_vec()),
        (
            "ORDR-UNKNOWN".into(),
            serde_json::to_vec(&event("delivery.ready", "NOTOURS1", "ORDR-U")).unwrap(),
        ),
    ];
    for i in 0..200 {
        events.push((
            format!("ORDR-X{i}"),
            serde_json::to_vec(&other_channel(i)).unwrap(),
        ));
    }
    let orders_before: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT order_sn, delivery_state, ordr_order_id FROM orders ORDER BY order_sn")
            .fetch_all(&env.db.pool)
            .await
            .unwrap();
    env.send_raw(&events).await;
    all_consumed(&env, group).await;
    assert_eq!(
        env.state("DONE1").await,
        "arranged",
        "already shipped at Shopee counts as done"
    );
    // Channel 90026: after ship_order the order stays READY_TO_SHIP at Shopee; only its package shows the shipment.
    assert_eq!(
        env.sandbox
            .order(env.shop_id, "DONE1")
            .unwrap()
            .order
            .order_status,
        "READY_TO_SHIP"
    );
    assert!(
        env.sandbox
            .journal()
            .iter()
            .any(|j| j.api == "/api/v2/order/get_package_detail" && j.error.is_empty()),
        "the replayed shipment was recognised from the package's state"
    );
    assert_eq!(env.state("GHOST1").await, "ready_to_ship");
    assert_eq!(
        env.calls(GET_SHIPPING_PARAMETER, "GHOST1").len(),
        1,
        "permanent: one attempt"
    );
    let dl = env.dead_letters().await;
    let reasons: Vec<&str> = dl
        .iter()
        .filter(|d| d.2 == "parked")
        .map(|d| d.1.as_str())
        .collect();
    assert_eq!(reasons.len(), 3, "{dl:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("arrange_shipment") && r.contains("order_not_found")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("invalid delivery event") && r.contains("event_type")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("invalid delivery event") && r.contains("not a delivery event")),
        "{reasons:?}"
    );
    // Skipped: no Shopee call for the unknown order or other channels; other orders untouched.
    let touched: Vec<String> = env
        .sandbox
        .journal()
        .iter()
        .filter_map(|j| {
            j.request
                .get("order_sn")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert!(
        touched.iter().all(|sn| sn == "GHOST1" || sn == "DONE1"),
        "{touched:?}"
    );
    let orders_after: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT order_sn, delivery_state, ordr_order_id FROM orders WHERE order_sn NOT IN ('DONE1') ORDER BY order_sn")
            .fetch_all(&env.db.pool)
            .await
            .unwrap();
    let before: Vec<_> = orders_before.into_iter().filter(|o| o.0 != "DONE1").collect();
    assert_eq!(orders_after, before, "skipped events write nothing");

    // 5. A parked event redriven while Shopee still refuses goes back to parked with the reason.
    sqlx::query("UPDATE dead_letters SET status = 'redrive_requested' WHERE reference LIKE 'GHOST1:%'")
        .execute(&env.db.pool)
        .await
        .unwrap();
    delivery_status_consumer::redrive::once(&env.processor(), &CancellationToken::new())
        .await
        .unwrap();
    let (status, attempts, redrives): (String, i32, i32) = sqlx::query_as(
        "SELECT status, attempts, redrive_count FROM dead_letters WHERE reference LIKE 'GHOST1:%'",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts, redrives), ("parked", 2, 1));

    running.stop().await;
}

/// Shopee may answer `update_tracking_status` with success and `update_result: "failed"`: the step is not applied,
/// so the event is parked with that reason (after Shopee's order state is checked), never recorded as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tracking_update_shopee_answers_failed_is_parked_not_recorded() {
    let broker = TansuBroker::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let env = Env::new(&broker.bootstrap(), TOPIC).await;
    env.seed_orders(&["TRKFAIL1".to_owned()], None).await;
    let e = |t: &str, sn: &str| (format!("ORDR-{sn}"), event(t, sn, &format!("ORDR-{sn}")));
    let group = "g-update-result";
    let running = env.start(group);
    env.send(&[e("delivery.ready", "TRKFAIL1")]).await;
    wait_until("TRKFAIL1 arranged", Duration::from_secs(60), || async {
        env.state("TRKFAIL1").await == "arranged"
    })
    .await;
    env.sandbox.inject_fault(
        Fault::update_result_failed()
            .api(UPDATE_TRACKING_STATUS)
            .shop(env.shop_id),
    );
    env.send(&[e("delivery.on_the_way", "TRKFAIL1")]).await;
    wait_until("the refused update parked", Duration::from_secs(60), || async {
        env.dead_letters().await.iter().any(|d| d.2 == "parked")
    })
    .await;
    all_consumed(&env, group).await;
    let dl = env.dead_letters().await;
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert!(dl[0].0.starts_with("TRKFAIL1"), "{dl:?}");
    assert!(
        dl[0].1.contains("pickup_done") && dl[0].1.contains("update_result_failed"),
        "{dl:?}"
    );
    assert_eq!(
        env.state("TRKFAIL1").await,
        "arranged",
        "not recorded as picked up"
    );
    assert_ne!(
        env.sandbox.logistics_status(env.shop_id, "TRKFAIL1").as_deref(),
        Some("LOGISTICS_PICKUP_DONE")
    );
    running.stop().await;
}
