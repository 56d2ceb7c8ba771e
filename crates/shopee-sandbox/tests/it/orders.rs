//! Order list paging by cursor, detail batches and optional fields, cancellation rules.

use serde_json::json;
use shopee_sandbox::SeedOrder;

use crate::support::*;

const LIST: &str = "/api/v2/order/get_order_list";
const DETAIL: &str = "/api/v2/order/get_order_detail";

fn order(sn: &str, create_time: i64) -> SeedOrder {
    SeedOrder {
        create_time: Some(create_time),
        update_time: Some(create_time + 10),
        ..SeedOrder::example(SHOP, sn, 100_001, "789100000001")
    }
}

#[tokio::test]
async fn the_order_list_pages_with_a_cursor() {
    let env = env().await;
    let t0 = now() - 3600;
    for i in 0..7 {
        env.sandbox
            .seed_order(order(&format!("SN{i:02}"), t0 + i))
            .await
            .unwrap();
    }
    // An order outside the range and one in another status.
    env.sandbox
        .seed_order(order("OLD", t0 - 20 * 86_400))
        .await
        .unwrap();
    let (from, to) = ((t0 - 60).to_string(), now().to_string());
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let a = env
            .get(
                LIST,
                &[
                    ("time_range_field", "create_time"),
                    ("time_from", &from),
                    ("time_to", &to),
                    ("page_size", "3"),
                    ("cursor", &cursor),
                    ("response_optional_fields", "order_status"),
                ],
            )
            .await;
        let r = a.ok().clone();
        pages += 1;
        for o in r["order_list"].as_array().unwrap() {
            assert_eq!(o["order_status"], "READY_TO_SHIP");
            seen.push(o["order_sn"].as_str().unwrap().to_owned());
        }
        if !r["more"].as_bool().unwrap() {
            assert_eq!(r["next_cursor"], "");
            break;
        }
        cursor = r["next_cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("SN{i:02}")).collect::<Vec<_>>());

    env.sandbox
        .set_order_status(SHOP, "SN03", "SHIPPED")
        .await
        .unwrap();
    let a = env
        .get(
            LIST,
            &[
                ("time_range_field", "update_time"),
                ("time_from", &from),
                ("time_to", &to),
                ("page_size", "100"),
                ("order_status", "SHIPPED"),
            ],
        )
        .await;
    assert_eq!(a.ok()["order_list"], json!([{"order_sn": "SN03"}]));

    let too_long = (now() - 16 * 86_400).to_string();
    let a = env
        .get(
            LIST,
            &[
                ("time_range_field", "create_time"),
                ("time_from", &too_long),
                ("time_to", &to),
                ("page_size", "10"),
            ],
        )
        .await;
    assert_eq!(a.error(), "order.order_list_invalid_time");
    let a = env
        .get(
            LIST,
            &[
                ("time_range_field", "create_time"),
                ("time_from", &from),
                ("time_to", &to),
                ("page_size", "101"),
            ],
        )
        .await;
    assert_eq!(a.error(), "error_param");
    let a = env
        .get(
            LIST,
            &[
                ("time_range_field", "pay_time"),
                ("time_from", &from),
                ("time_to", &to),
                ("page_size", "10"),
            ],
        )
        .await;
    assert_eq!(a.error(), "error_param");
}

#[tokio::test]
async fn order_detail_takes_1_to_50_orders_and_optional_fields() {
    let env = env().await;
    env.sandbox.seed_order(order("A1", now() - 100)).await.unwrap();
    let mut unpaid = order("U1", now() - 50);
    unpaid.order_status = "UNPAID".into();
    env.sandbox.seed_order(unpaid).await.unwrap();

    let fifty_one = (0..51).map(|i| format!("X{i}")).collect::<Vec<_>>().join(",");
    assert_eq!(
        env.get(DETAIL, &[("order_sn_list", &fifty_one)]).await.error(),
        "error_param"
    );
    assert_eq!(
        env.get(DETAIL, &[("order_sn_list", "")]).await.error(),
        "error_param"
    );
    let fifty = (0..50).map(|i| format!("X{i}")).collect::<Vec<_>>().join(",");
    env.get(DETAIL, &[("order_sn_list", &fifty)]).await.ok();

    let a = env
        .get(
            DETAIL,
            &[
                ("order_sn_list", "A1,U1,NOPE"),
                (
                    "response_optional_fields",
                    "recipient_address,item_list,total_amount,buyer_cpf_id,pay_time,package_list",
                ),
            ],
        )
        .await;
    let list = a.ok()["order_list"].as_array().unwrap().clone();
    // get_order_detail documents `warning` as a list.
    assert!(a.body["warning"][0].as_str().unwrap().contains("NOPE"));
    assert_eq!(list.len(), 2);
    let a1 = &list[0];
    assert_eq!(a1["order_sn"], "A1");
    assert_eq!(a1["total_amount"], 30.7);
    assert_eq!(a1["recipient_address"]["geolocation"]["latitude"], -23.5614);
    assert_eq!(a1["recipient_address"]["zipcode"], "01310100");
    assert_eq!(a1["item_list"][0]["model_discounted_price"], 12.9);
    assert_eq!(a1["item_list"][0]["model_original_price"], 14.9);
    assert_eq!(a1["item_list"][0]["model_quantity_purchased"], 2);
    assert_eq!(a1["buyer_cpf_id"], "12345678909");
    assert_eq!(a1["package_list"][0]["logistics_status"], "LOGISTICS_READY");
    assert!(a1.get("buyer_username").is_none(), "not requested");
    assert!(a1.get("note").is_none(), "not requested");
    assert!(a1.get("fulfillment_flag").is_none(), "not requested");
    assert!(list[1].get("pay_time").is_none(), "unpaid: left out");
    // Buyer data is masked before payment.
    assert_eq!(list[1]["recipient_address"]["name"], "****");
    assert!(list[1]["recipient_address"].get("geolocation").is_none());
}

#[tokio::test]
async fn cancel_order_only_before_shipping() {
    let env = env().await;
    env.sandbox.seed_order(order("C1", now() - 100)).await.unwrap();
    env.sandbox.seed_order(order("C2", now() - 100)).await.unwrap();
    let path = "/api/v2/order/cancel_order";
    let a = env
        .post(path, json!({"order_sn": "C1", "cancel_reason": "OUT_OF_STOCK"}))
        .await;
    assert_eq!(a.error(), "error_param", "OUT_OF_STOCK needs item_list");
    let a = env
        .post(path, json!({"order_sn": "C1", "cancel_reason": "OUT_OF_STOCK", "item_list": [{"item_id": 100001, "model_id": 0}]}))
        .await;
    assert!(a.ok()["update_time"].is_i64());
    assert_eq!(
        env.sandbox.order(SHOP, "C1").unwrap().order.order_status,
        "CANCELLED"
    );
    let a = env
        .post(
            path,
            json!({"order_sn": "C1", "cancel_reason": "CUSTOMER_REQUEST"}),
        )
        .await;
    assert_eq!(a.error(), "order.error_limit");
    assert_eq!(a.message(), "Can not cancel this order.");
    let a = env
        .post(
            path,
            json!({"order_sn": "C2", "cancel_reason": "CHANGED_MY_MIND"}),
        )
        .await;
    assert_eq!(a.error(), "error_param");

    env.post(
        "/api/v2/logistics/ship_order",
        json!({"order_sn": "C2", "non_integrated": {"tracking_number": "BR123"}}),
    )
    .await
    .ok();
    let a = env
        .post(
            path,
            json!({"order_sn": "C2", "cancel_reason": "CUSTOMER_REQUEST"}),
        )
        .await;
    assert_eq!(a.error(), "order.error_limit", "a tracking number exists");
}

#[tokio::test]
async fn the_buyer_message_the_seller_note_and_bundle_deal_prices() {
    let env = env().await;
    let mut o = order("B1", now() - 100);
    o.message_to_seller = "Deixar na portaria".into();
    o.note = "Cliente VIP (nota interna)".into();
    let mut bundle = o.item_list[0].clone();
    bundle.item_id = 2;
    bundle.order_item_id = 2;
    bundle.promotion_type = "bundle_deal".into();
    bundle.model_discounted_price = 9.9;
    o.item_list.push(bundle);
    env.sandbox.seed_order(o).await.unwrap();
    let a = env
        .get(
            DETAIL,
            &[("order_sn_list", "B1"), ("response_optional_fields", "item_list")],
        )
        .await;
    let b1 = a.ok()["order_list"][0].clone();
    assert_eq!(
        b1["message_to_seller"], "Deixar na portaria",
        "returned by default"
    );
    assert!(b1.get("note").is_none());
    assert_eq!(b1["item_list"][0]["model_discounted_price"], 12.9);
    assert_eq!(b1["item_list"][1]["model_discounted_price"], 0.0, "bundle deal");
    let a = env
        .get(
            DETAIL,
            &[("order_sn_list", "B1"), ("response_optional_fields", "note")],
        )
        .await;
    assert_eq!(a.ok()["order_list"][0]["note"], "Cliente VIP (nota interna)");
    // The list shows order_sn only, unless order_status is asked for.
    let (from, to) = ((now() - 1000).to_string(), (now() + 10).to_string());
    let q = [
        ("time_range_field", "create_time"),
        ("time_from", from.as_str()),
        ("time_to", to.as_str()),
        ("page_size", "10"),
    ];
    assert_eq!(
        env.get(LIST, &q).await.ok()["order_list"],
        json!([{"order_sn": "B1"}])
    );
    let mut with_status = q.to_vec();
    with_status.push(("response_optional_fields", "order_status"));
    assert_eq!(
        env.get(LIST, &with_status).await.ok()["order_list"],
        json!([{"order_sn": "B1", "order_status": "READY_TO_SHIP"}])
    );
}
