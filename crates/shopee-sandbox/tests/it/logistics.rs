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
        a.ok()["update_result"],
        "failed",
        "pickup before ship_order: Shopee answers a failed update result, not an error code"
    );

    let both = json!({"order_sn": "L1", "pickup": {"address_id": 1}, "non_integrated": {}});
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", both).await.error(),
        "logistics.ship_order_only_support_one_type"
    );
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", json!({"order_sn": "L1"}))
            .await
            .error(),
        "logistics.ship_order_only_support_one_type"
    );
    let wrong_mode = json!({"order_sn": "L1", "dropoff": {"branch_id": 1}});
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", wrong_mode).await.error(),
        "logistics.ship_order_unsupport_dropoff"
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
    // Entrega Expressa (90026): the order stays READY_TO_SHIP, the package is arranged (get_package_detail).
    assert_eq!(
        env.sandbox.order(SHOP, "L1").unwrap().order.order_status,
        "READY_TO_SHIP"
    );
    let d = env
        .get("/api/v2/order/get_order_detail", &[("order_sn_list", "L1")])
        .await;
    assert_eq!(d.ok()["order_list"][0]["order_status"], "READY_TO_SHIP");
    let p = env
        .get(
            "/api/v2/order/get_package_detail",
            &[("package_number_list", "PNL1")],
        )
        .await;
    let package = p.ok()["package_list"][0].clone();
    assert_eq!(package["fulfillment_status"], "LOGISTICS_REQUEST_CREATED");
    assert_eq!(package["is_shipment_arranged"], true);
    assert_eq!(package["tracking_number"], "BR0001");
    let t = env
        .get("/api/v2/logistics/get_tracking_number", &[("order_sn", "L1")])
        .await;
    assert_eq!(t.ok()["tracking_number"], "BR0001");
    let again = json!({"order_sn": "L1", "non_integrated": {}});
    assert_eq!(
        env.post("/api/v2/logistics/ship_order", again).await.error(),
        "logistics.package_already_shipped"
    );

    let a = env
        .post(
            TRACK,
            json!({"order_sn": "L1", "logistics_status": "logistics_delivery_done"}),
        )
        .await;
    assert_eq!(a.ok()["update_result"], "failed", "delivered before pickup");
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
    let a = env.post(TRACK, json!({"order_sn": "L1", "logistics_status": "logistics_delivery_done", "tracking_url": "https://t.test/1"}))
        .await;
    assert_eq!(
        a.error(),
        "error_param",
        "tracking_url only with logistics_pickup_done"
    );
    let a = env
        .post(
            TRACK,
            json!({"order_sn": "L1", "logistics_status": "logistics_delivery_done"}),
        )
        .await;
    assert_eq!(a.ok()["update_result"], "succeed");
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
        assert_eq!(a.ok()["update_result"], "failed", "{status} after delivered");
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
    assert_eq!(a.ok()["update_result"], "failed");
    let a = env
        .post(
            TRACK,
            json!({"order_sn": "NOPE", "logistics_status": "logistics_delivery_done"}),
        )
        .await;
    assert_eq!(a.error(), "logistics.order_not_exist");
}

#[tokio::test]
async fn an_injected_failed_update_result_leaves_the_order_where_it_is() {
    let env = env().await;
    let mut order = SeedOrder::example(SHOP, "U1", 1, "A");
    order.logistics_channel_id = 90021;
    env.sandbox.seed_order(order).await.unwrap();
    env.post(
        "/api/v2/logistics/ship_order",
        json!({"order_sn": "U1", "non_integrated": {}}),
    )
    .await
    .ok();
    // Other channels move the order itself to PROCESSED.
    assert_eq!(
        env.sandbox.order(SHOP, "U1").unwrap().order.order_status,
        "PROCESSED"
    );
    env.sandbox.inject_fault(
        shopee_sandbox::Fault::update_result_failed()
            .api("logistics/update_tracking_status")
            .times(1),
    );
    let pickup = json!({"order_sn": "U1", "logistics_status": "logistics_pickup_done"});
    let a = env.post(TRACK, pickup.clone()).await;
    assert_eq!(
        (a.status, a.ok()["update_result"].as_str()),
        (200, Some("failed"))
    );
    let view = env.sandbox.order(SHOP, "U1").unwrap();
    assert_eq!(
        (view.order.order_status.as_str(), view.logistics_status.as_str()),
        ("PROCESSED", "LOGISTICS_REQUEST_CREATED")
    );
    // Over the admin API too; once used up, the update goes through.
    assert_eq!(env.post(TRACK, pickup).await.ok()["update_result"], "succeed");
    assert_eq!(
        env.sandbox.order(SHOP, "U1").unwrap().order.order_status,
        "SHIPPED"
    );
}
