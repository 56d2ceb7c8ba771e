//! Signed pushes to a callback, lost pushes and their recovery.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use shopee_client::sign::{PushSignatureMode, verify_push};
use shopee_sandbox::{PushState, SeedOrder};

use crate::support::*;

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A local receiver: records (Authorization, raw body); answers 500 while `fail` holds.
async fn receiver(fail: Arc<Mutex<bool>>) -> (String, Received) {
    let received: Received = Arc::default();
    let app =
        axum::Router::new()
            .route(
                "/webhooks/shopee",
                axum::routing::post(
                    |State((rx, fail)): State<(Received, Arc<Mutex<bool>>)>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let auth = headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        rx.lock().unwrap().push((auth, body.to_vec()));
                        if *fail.lock().unwrap() {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        }
                    },
                ),
            )
            .with_state((received.clone(), fail));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/shopee", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn order_changes_are_pushed_with_a_valid_signature() {
    let fail = Arc::new(Mutex::new(false));
    let (url, received) = receiver(fail.clone()).await;
    let mut cfg = config().with_push_callback(url.clone());
    cfg.push_partner_key = Some("live-push-key".into());
    let env = env_with(cfg).await;
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "P1", 1, "A"))
        .await
        .unwrap();
    env.sandbox.set_order_status(SHOP, "P1", "SHIPPED").await.unwrap();
    // An API call that changes the order pushes too (in the background).
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "P2", 1, "A"))
        .await
        .unwrap();
    env.post(
        "/api/v2/order/cancel_order",
        json!({"order_sn": "P2", "cancel_reason": "CUSTOMER_REQUEST"}),
    )
    .await
    .ok();
    env.sandbox.flush_pushes().await;
    for _ in 0..50 {
        if received.lock().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let statuses: Vec<_> = got
        .iter()
        .map(|(auth, body)| {
            assert!(
                verify_push(PushSignatureMode::UrlAndBody, "live-push-key", &url, body, auth),
                "bad signature"
            );
            assert!(!verify_push(PushSignatureMode::UrlAndBody, KEY, &url, body, auth));
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["code"], 3);
            assert_eq!(v["shop_id"], SHOP);
            assert!(v["timestamp"].is_i64() && v["data"]["update_time"].is_i64());
            (
                v["data"]["ordersn"].as_str().unwrap().to_owned(),
                v["data"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("P1", "READY_TO_SHIP"),
        ("P1", "SHIPPED"),
        ("P2", "READY_TO_SHIP"),
        ("P2", "CANCELLED"),
    ];
    assert_eq!(statuses, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(
        env.sandbox
            .pushes()
            .iter()
            .all(|p| p.state == PushState::Delivered)
    );
    let lost = env.public_get("/api/v2/push/get_lost_push_message", &[]).await;
    assert_eq!(lost.ok()["push_message_list"], json!([]));
}

#[tokio::test]
async fn dropped_and_failed_pushes_are_recoverable_once() {
    let fail = Arc::new(Mutex::new(false));
    let (url, received) = receiver(fail.clone()).await;
    let env = env_with(config().with_push_callback(url)).await;
    env.sandbox.drop_next_pushes(1);
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "D1", 1, "A"))
        .await
        .unwrap();
    *fail.lock().unwrap() = true;
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "D2", 1, "A"))
        .await
        .unwrap();
    *fail.lock().unwrap() = false;
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "D3", 1, "A"))
        .await
        .unwrap();
    assert_eq!(received.lock().unwrap().len(), 2, "D1 was dropped before sending");

    let path = "/api/v2/push/get_lost_push_message";
    let r = env.public_get(path, &[]).await.ok().clone();
    let list = r["push_message_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(r["has_next_page"], false);
    let data: Value = serde_json::from_str(list[0]["data"].as_str().expect("data is a string")).unwrap();
    assert_eq!(data["ordersn"], "D1");
    assert_eq!(list[1]["code"], 3);
    let last = r["last_message_id"].as_u64().unwrap();
    env.public_post(
        "/api/v2/push/confirm_consumed_lost_push_message",
        json!({"last_message_id": last}),
    )
    .await
    .ok();
    assert_eq!(
        env.public_get(path, &[]).await.ok()["push_message_list"],
        json!([])
    );
}

#[tokio::test]
async fn lost_pushes_come_100_at_a_time() {
    let env = env().await; // no callback: every push is lost
    env.sandbox
        .seed_orders((0..150).map(|i| SeedOrder::example(SHOP, &format!("M{i:03}"), 1, "A")))
        .await
        .unwrap();
    let path = "/api/v2/push/get_lost_push_message";
    let r = env.public_get(path, &[]).await.ok().clone();
    assert_eq!(r["push_message_list"].as_array().unwrap().len(), 100);
    assert_eq!(r["has_next_page"], true);
    env.public_post(
        "/api/v2/push/confirm_consumed_lost_push_message",
        json!({"last_message_id": r["last_message_id"]}),
    )
    .await
    .ok();
    let r = env.public_get(path, &[]).await.ok().clone();
    assert_eq!(r["push_message_list"].as_array().unwrap().len(), 50);
    assert_eq!(r["has_next_page"], false);
    // A shop-level signature is not accepted on this partner-level API.
    let a = env.get(path, &[]).await;
    assert_eq!(a.error(), "error_sign");
}

#[tokio::test]
async fn body_only_signature_mode_is_configurable() {
    let (url, received) = receiver(Arc::new(Mutex::new(false))).await;
    let mut cfg = config().with_push_callback(url.clone());
    cfg.push_signature_mode = PushSignatureMode::BodyOnly;
    let env = env_with(cfg).await;
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "B1", 1, "A"))
        .await
        .unwrap();
    let (auth, body) = received.lock().unwrap()[0].clone();
    assert!(verify_push(PushSignatureMode::BodyOnly, KEY, &url, &body, &auth));
    assert!(!verify_push(
        PushSignatureMode::UrlAndBody,
        KEY,
        &url,
        &body,
        &auth
    ));
}
