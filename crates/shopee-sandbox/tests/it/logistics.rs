//! The logistics state machine.

use serde_json::json;
use shopee_sandbox::SeedOrder;

use crate::support::*;

const TRACK: &str = "/api/v2/logistics/update_tracking_status";

#[tokio::test]
async fn ship_then_pickup_then_delivered_and_final_states() {
    let env = env().await;
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "L1", 1, "A"))
        .await
        .unwrap();
    let p = env
        .get("/api/v2/logistics/get_shipping_parameter", &[("order_sn", "L1")])
        .await;
    assert_eq!(
        p.ok()["info_needed"],
        json!({"non_integrated": ["tracking_number"]})
    );

    let a = env
        .post(
            TRACK,
            json!({"order_sn": "L1", "logistics_status": "logistics_pickup_done"}),
        )
        .await;
    assert_eq!(
        a.error(),
        "logistics.order_status_error",
        "pickup before ship_order"
    );

    let both = json!({"order_sn": "L1", "pickup": {"address_id": 1}, "non_integrated": {}});
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", both).await.error(),
        "error_param"
    );
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", json!({"order_sn": "L1"}))
            .await
            .error(),
        "error_param"
    );
    let wrong_mode = json!({"order_sn": "L1", "dropoff": {"branch_id": 1}});
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", wrong_mode).await.error(),
        "logistics.ship_order_invalid_parameter"
    );

    env.post(
        "/api/v2/logistics/ship_order",
        json!({"order_sn": "L1", "non_integrated": {"tracking_number": "BR0001"}}),
    )
    .await
    .ok();
    assert_eq!(
        env.sandbox.logistics_status(SHOP, "L1").unwrap(),
        "LOGISTICS_REQUEST_CREATED"
    );
    assert_eq!(
        env.sandbox.order(SHOP, "L1").unwrap().order.order_status,
        "PROCESSED"
    );
    let t = env
        .get("/api/v2/logistics/get_tracking_number", &[("order_sn", "L1")])
        .await;
    assert_eq!(t.ok()["tracking_number"], "BR0001");
    let again = json!({"order_sn": "L1", "non_integrated": {}});
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", again).await.error(),
        "logistics.order_status_error"
    );

    let a = env
        .post(
            TRACK,
            json!({"order_sn": "L1", "logistics_status": "logistics_delivery_done"}),
        )
        .await;
    assert_eq!(
        a.error(),
        "logistics.order_status_error",
        "delivered before pickup"
    );
    // Shopee's sample spelling is accepted by default.
    env.post(
        TRACK,
        json!({"order_sn": "L1", "logistics_status": "logistic_pickup_done"}),
    )
    .await
    .ok();
    assert_eq!(
        env.sandbox.order(SHOP, "L1").unwrap().order.order_status,
        "SHIPPED"
    );
    let a = env
        .post(
            TRACK,
            json!({"order_sn": "L1", "logistics_status": "logistics_delivery_failed"}),
        )
        .await;
    assert_eq!(a.error(), "error_param", "failed_reason is required on 90026");
    let a = env.post(TRACK, json!({"order_sn": "L1", "logistics_status": "logistics_delivery_failed", "failed_reason": "dog_ate_it"})).await;
    assert_eq!(a.error(), "error_param");
    env.post(TRACK, json!({"order_sn": "L1", "logistics_status": "logistics_delivery_done", "tracking_url": "https://t.test/1"}))
        .await
        .ok();
    let view = env.sandbox.order(SHOP, "L1").unwrap();
    assert_eq!(
        (view.logistics_status.as_str(), view.order.order_status.as_str()),
        ("LOGISTICS_DELIVERY_DONE", "TO_CONFIRM_RECEIVE")
    );
    for status in [
        "logistics_delivery_failed",
        "logistics_delivery_done",
        "logistics_pickup_done",
    ] {
        let a = env.post(TRACK, json!({"order_sn": status_order(), "logistics_status": status, "failed_reason": "buyer_unreachable"})).await;
        assert_eq!(
            a.error(),
            "logistics.order_status_error",
            "{status} after delivered"
        );
    }
    let a = env
        .post(
            TRACK,
            json!({"order_sn": "L1", "logistics_status": "logistics_on_the_moon"}),
        )
        .await;
    assert_eq!(a.error(), "error_param");
}

fn status_order() -> &'static str {
    "L1"
}

#[tokio::test]
async fn delivery_failed_is_final_and_cancels() {
    let env = env().await;
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "F1", 1, "A"))
        .await
        .unwrap();
    env.post(
        "/api/v2/logistics/ship_order",
        json!({"order_sn": "F1", "non_integrated": {}}),
    )
    .await
    .ok();
    env.post(
        TRACK,
        json!({"order_sn": "F1", "logistics_status": "logistics_pickup_done"}),
    )
    .await
    .ok();
    env.post(TRACK, json!({"order_sn": "F1", "logistics_status": "logistics_delivery_failed", "failed_reason": "buyer_unreachable"}))
        .await
        .ok();
    let view = env.sandbox.order(SHOP, "F1").unwrap();
    assert_eq!(view.logistics_status, "LOGISTICS_DELIVERY_FAILED");
    assert_eq!(view.failed_reason.as_deref(), Some("buyer_unreachable"));
    let a = env
        .post(
            TRACK,
            json!({"order_sn": "F1", "logistics_status": "logistics_delivery_done"}),
        )
        .await;
    assert_eq!(a.error(), "logistics.order_status_error");
    let a = env
        .post(
            TRACK,
            json!({"order_sn": "NOPE", "logistics_status": "logistics_delivery_done"}),
        )
        .await;
    assert_eq!(a.error(), "logistics.order_not_found");
}
