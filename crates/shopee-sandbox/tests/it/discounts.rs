//! Discount rules.

use serde_json::json;
use shopee_sandbox::{SeedDiscount, SeedDiscountItem, SeedItem, SeedModel};

use crate::support::*;

const H: i64 = 3600;
const D: i64 = 86_400;

fn catalog(env: &Env) {
    env.sandbox
        .seed_items([
            SeedItem::single(SHOP, 1, "SKU1", 20.0, 100),
            SeedItem::with_models(
                SHOP,
                2,
                "Camiseta",
                vec![
                    SeedModel::new(21, "SKU21", 40.0, 10),
                    SeedModel::new(22, "SKU22", 40.0, 10),
                ],
            ),
            SeedItem::single(SHOP, 3, "SKU3", 10.0, 10),
        ])
        .unwrap();
}

async fn add(env: &Env, start: i64, end: i64) -> crate::support::Answer {
    env.post(
        "/api/v2/discount/add_discount",
        json!({"discount_name": "Black Friday", "start_time": start, "end_time": end}),
    )
    .await
}

#[tokio::test]
async fn add_discount_checks_start_and_period() {
    let env = env().await;
    let n = now();
    assert_eq!(
        add(&env, n + 30 * 60, n + 5 * H).await.error(),
        "discount.error_start_time"
    );
    assert_eq!(
        add(&env, n + 2 * H, n + 2 * H + 180 * D).await.error(),
        "discount.error_end_time"
    );
    assert_eq!(
        add(&env, n + 2 * H, n + 2 * H + 10 * 60).await.error(),
        "discount.error_end_time"
    );
    let a = add(&env, n + 2 * H, n + 10 * D).await;
    let id = a.ok()["discount_id"].as_u64().unwrap();
    assert_eq!(env.sandbox.discount(SHOP, id).unwrap().status, "upcoming");
}

#[tokio::test]
async fn add_discount_item_reports_errors_per_item() {
    let env = env().await;
    catalog(&env);
    let n = now();
    let first = add(&env, n + 2 * H, n + 5 * D).await.ok()["discount_id"]
        .as_u64()
        .unwrap();
    let second = add(&env, n + 3 * H, n + 6 * D).await.ok()["discount_id"]
        .as_u64()
        .unwrap();
    let path = "/api/v2/discount/add_discount_item";

    let a = env
        .post(path, json!({"discount_id": first, "item_list": [
            {"item_id": 1, "item_promotion_price": 15.0, "purchase_limit": 2},
            {"item_id": 2, "purchase_limit": 0, "model_list": [{"model_id": 21, "model_promotion_price": 30.0}, {"model_id": 22, "model_promotion_price": 45.0}]},
            {"item_id": 3, "item_promotion_price": 0.5, "purchase_limit": 0},
            {"item_id": 404, "item_promotion_price": 1.0, "purchase_limit": 0}
        ]}))
        .await;
    let r = a.ok().clone();
    assert_eq!(r["count"], 1);
    let errors = r["error_list"].as_array().unwrap();
    let codes: Vec<_> = errors
        .iter()
        .map(|e| (e["item_id"].as_u64().unwrap(), e["fail_error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            (2, "discount.promotion_price_too_high"),
            (3, "discount.promotion_price_too_low"),
            (404, "discount.item_not_found")
        ]
    );

    // The same item in an overlapping discount.
    let a = env
        .post(
            path,
            json!({"discount_id": second, "item_list": [{"item_id": 1, "item_promotion_price": 14.0, "purchase_limit": 0}]}),
        )
        .await;
    assert_eq!(
        a.ok()["error_list"][0]["fail_error"],
        "discount.item_already_in_promotion"
    );

    let many: Vec<_> = (0..51)
        .map(|i| json!({"item_id": i, "item_promotion_price": 1.0, "purchase_limit": 0}))
        .collect();
    assert_eq!(
        env.post(path, json!({"discount_id": first, "item_list": many}))
            .await
            .error(),
        "error_param"
    );

    // Promotion stock cannot be edited (update_discount_item documents no stock parameter); price and purchase
    // limit can.
    let up = "/api/v2/discount/update_discount_item";
    let a = env
        .post(
            up,
            json!({"discount_id": first, "item_list": [{"item_id": 1, "item_promotion_stock": 5}]}),
        )
        .await;
    assert_eq!(a.error(), "error_param");
    assert!(a.message().contains("item_promotion_stock"), "{}", a.message());
    let a = env.post(up, json!({"discount_id": first, "item_list": [{"item_id": 1, "item_promotion_price": 16.0, "purchase_limit": 3}]})).await;
    assert_eq!(a.ok()["count"], 1);
    let view = env.sandbox.discount(SHOP, first).unwrap();
    assert_eq!(
        (view.items[0].promotion_price, view.items[0].purchase_limit),
        (16.0, 3)
    );

    let d = env
        .get(
            "/api/v2/discount/get_discount",
            &[
                ("discount_id", &first.to_string()),
                ("page_no", "1"),
                ("page_size", "10"),
            ],
        )
        .await;
    let r = d.ok().clone();
    assert_eq!(r["status"], "upcoming");
    assert_eq!(r["item_list"][0]["item_promotion_price"], 16.0);
    assert_eq!(r["item_list"][0]["item_original_price"], 20.0);

    let del = env
        .post(
            "/api/v2/discount/delete_discount_item",
            json!({"discount_id": first, "item_id": 1}),
        )
        .await;
    assert_eq!(del.ok()["error_list"], json!([]));
    assert!(env.sandbox.discount(SHOP, first).unwrap().items.is_empty());
}

#[tokio::test]
async fn update_end_and_delete_follow_the_rules() {
    let env = env().await;
    catalog(&env);
    let n = now();
    let upcoming = add(&env, n + 2 * H, n + 5 * D).await.ok()["discount_id"]
        .as_u64()
        .unwrap();
    let up = "/api/v2/discount/update_discount";
    assert_eq!(
        env.post(up, json!({"discount_id": upcoming, "start_time": n + H + 600}))
            .await
            .error(),
        "discount.error_start_time"
    );
    assert_eq!(
        env.post(up, json!({"discount_id": upcoming, "end_time": n + 6 * D}))
            .await
            .error(),
        "discount.error_end_time"
    );
    env.post(up, json!({"discount_id": upcoming, "start_time": n + 3 * H, "end_time": n + 4 * D, "discount_name": "BF"})).await.ok();
    let v = env.sandbox.discount(SHOP, upcoming).unwrap();
    assert_eq!(
        (v.start_time, v.end_time, v.discount_name.as_str()),
        (n + 3 * H, n + 4 * D, "BF")
    );

    let ongoing = env
        .sandbox
        .seed_discount(SeedDiscount {
            shop_id: SHOP,
            discount_name: "running".into(),
            start_time: n - 2 * H,
            end_time: n + D,
            items: vec![SeedDiscountItem {
                item_id: 3,
                model_id: 0,
                promotion_price: 8.0,
                promotion_stock: 4,
                purchase_limit: 1,
            }],
            ..Default::default()
        })
        .unwrap();
    // The ongoing promotion sets the current price and reserves stock.
    let m = env.sandbox.model(SHOP, 3, 0).unwrap();
    assert_eq!(
        (m.current_price, m.original_price, m.promotion_reserved),
        (8.0, 10.0, 4)
    );
    assert_eq!(
        env.post(up, json!({"discount_id": ongoing, "start_time": n + 2 * H}))
            .await
            .error(),
        "discount.error_start_time"
    );

    let end = "/api/v2/discount/end_discount";
    assert_eq!(
        env.post(end, json!({"discount_id": upcoming})).await.error(),
        "discount.discount_not_ongoing"
    );
    let just_started = env
        .sandbox
        .seed_discount(SeedDiscount {
            shop_id: SHOP,
            start_time: n - 60,
            end_time: n + D,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        env.post(end, json!({"discount_id": just_started})).await.error(),
        "discount.error_end_time"
    );

    let del = "/api/v2/discount/delete_discount";
    assert_eq!(
        env.post(del, json!({"discount_id": ongoing})).await.error(),
        "discount.discount_ongoing"
    );
    env.post(end, json!({"discount_id": ongoing})).await.ok();
    assert_eq!(env.sandbox.discount(SHOP, ongoing).unwrap().status, "expired");
    assert_eq!(
        env.post(end, json!({"discount_id": ongoing})).await.error(),
        "discount.discount_not_ongoing"
    );
    assert_eq!(
        env.post(del, json!({"discount_id": ongoing})).await.error(),
        "discount.discount_expired"
    );
    assert_eq!(
        env.post(up, json!({"discount_id": ongoing, "discount_name": "x"}))
            .await
            .error(),
        "discount.discount_expired"
    );
    let add_item = json!({"discount_id": ongoing, "item_list": [{"item_id": 1, "item_promotion_price": 1.0, "purchase_limit": 0}]});
    assert_eq!(
        env.post("/api/v2/discount/add_discount_item", add_item)
            .await
            .error(),
        "discount.discount_expired"
    );

    let list = |status: &'static str| {
        let env = &env;
        async move {
            let a = env
                .get(
                    "/api/v2/discount/get_discount_list",
                    &[
                        ("discount_status", status),
                        ("page_no", "1"),
                        ("page_size", "100"),
                    ],
                )
                .await;
            a.ok()["discount_list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["discount_id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("upcoming").await, [upcoming]);
    assert_eq!(list("expired").await, [ongoing]);
    assert_eq!(list("ongoing").await, [just_started]);
    assert_eq!(list("all").await.len(), 3);
    let page = env
        .get(
            "/api/v2/discount/get_discount_list",
            &[("discount_status", "all"), ("page_no", "1"), ("page_size", "2")],
        )
        .await;
    assert_eq!(page.ok()["more"], true);
    assert_eq!(
        env.get(
            "/api/v2/discount/get_discount_list",
            &[("discount_status", "soon")]
        )
        .await
        .error(),
        "error_param"
    );

    env.post(del, json!({"discount_id": upcoming})).await.ok();
    assert!(env.sandbox.discount(SHOP, upcoming).is_none());
}
