//! Campaigns against the Shopee sandbox over HTTP: creation in SKU terms, idempotency, batching, validation,
//! per-item outcome, R15 (resume or compensate: never an orphan discount), update, end, delete, reconciliation.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shopee_sandbox::{Fault, SeedDiscount, SeedDiscountItem};

use crate::common::{Api, in_hours, start, unique_shop};

async fn shop_with_items(api: &Api, n: u64) -> (u64, String, Vec<String>) {
    let shop = unique_shop();
    api.authorize(shop).await;
    let hub = format!("H{}", shop % 100_000_000);
    api.hub(&hub, shop).await;
    let skus = api.seed_and_map(shop, &format!("SKU{shop}-"), 100_001, n).await;
    (shop, hub, skus)
}

pub(crate) fn campaign(name: &str, hub: Option<&str>, skus: &[String], price: &str) -> Value {
    let mut body = json!({
        "name": name,
        "starts_at": in_hours(2),
        "ends_at": in_hours(48),
        "items": skus.iter().map(|s| json!({"sku": s, "promotion_price": price, "purchase_limit": 2})).collect::<Vec<_>>(),
    });
    if let Some(hub) = hub {
        body["hub_ids"] = json!([hub]);
    }
    body
}

async fn create(api: &Api, body: &Value, key: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = key.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
    api.call_with(
        Method::POST,
        "/v1/campaigns",
        Some(body.clone()),
        Some(crate::common::TOKEN),
        &headers,
    )
    .await
}

fn items_on_shopee(api: &Api, shop: u64) -> usize {
    api.sandbox.discounts(shop).iter().map(|d| d.items.len()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_read_list_and_idempotent_retry() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    let body = campaign("Black Friday", Some(&hub), &skus, "15.90");
    let (status, created) = create(&api, &body, Some("key-1")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "upcoming");
    let shops = created["shops"].as_array().expect("shops");
    assert_eq!(shops.len(), 1);
    assert_eq!(shops[0]["shop_id"], shop);
    assert_eq!(shops[0]["state"], "active");
    let items = shops[0]["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .all(|i| i["state"] == "added" && i["promotion_price"] == "15.90"),
        "{created}"
    );
    let discounts = api.sandbox.discounts(shop);
    assert_eq!(discounts.len(), 1);
    assert_eq!(discounts[0].discount_name, "Black Friday");
    assert_eq!(discounts[0].items.len(), 2);
    assert!(
        discounts[0]
            .items
            .iter()
            .all(|i| (i.promotion_price - 15.90).abs() < 1e-9 && i.purchase_limit == 2)
    );
    assert_eq!(shops[0]["discount_id"], discounts[0].discount_id);

    // The same key and body: the first answer, and nothing new on Shopee.
    let (status, again) = create(&api, &body, Some("key-1")).await;
    assert_eq!(status, 201);
    assert_eq!(again, created);
    assert_eq!(api.sandbox.discounts(shop).len(), 1);
    assert_eq!(api.sandbox.calls_to("discount/add_discount"), 1);
    // The same key with another body is refused.
    let other = campaign("Other", Some(&hub), &skus, "15.90");
    let (status, err) = create(&api, &other, Some("key-1")).await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Idempotency-Key")
    );

    // Detail carries Shopee's live status per shop.
    let id = created["id"].as_i64().expect("id");
    let (status, detail) = api.call(Method::GET, &format!("/v1/campaigns/{id}"), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["shops"][0]["shopee"]["status"], "upcoming");
    assert_eq!(detail["shops"][0]["shopee_status"], "upcoming");
    let (status, _) = api.call(Method::GET, "/v1/campaigns/999999", None).await;
    assert_eq!(status, 404);

    // List, filter and paginate.
    let (status, second) = create(&api, &campaign("Second", None, &skus[..1], "10.00"), None).await;
    // SKU 0 is already in an overlapping discount: Shopee refuses it, nothing stays on Shopee.
    assert_eq!(status, 422, "{second}");
    assert_eq!(
        second["error"]["details"]["shops"][0]["items"][0]["error"]["code"],
        "discount.item_already_in_promotion"
    );
    assert_eq!(api.sandbox.discounts(shop).len(), 1);
    let (_, page1) = api.call(Method::GET, "/v1/campaigns?limit=1", None).await;
    assert_eq!(page1["items"].as_array().map(Vec::len), Some(1));
    let cursor = page1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, page2) = api
        .call(
            Method::GET,
            &format!("/v1/campaigns?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2["items"].as_array().map(Vec::len), Some(1));
    assert!(page2["next_cursor"].is_null());
    let (_, upcoming) = api.call(Method::GET, "/v1/campaigns?status=upcoming", None).await;
    assert_eq!(upcoming["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(upcoming["items"][0]["id"], id);
    let (_, failed) = api.call(Method::GET, "/v1/campaigns?status=failed", None).await;
    assert_eq!(failed["items"].as_array().map(Vec::len), Some(1));
    let (_, ongoing) = api.call(Method::GET, "/v1/campaigns?status=ongoing", None).await;
    assert_eq!(ongoing["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn items_go_in_batches_of_50_and_every_mapped_shop_gets_a_discount() {
    let api = start().await;
    let (shop_a, _, skus) = shop_with_items(&api, 120).await;
    // A second shop where only the first 10 SKUs are mapped.
    let shop_b = unique_shop();
    api.authorize(shop_b).await;
    let mut body = Vec::new();
    for (i, sku) in skus.iter().take(10).enumerate() {
        api.sandbox
            .seed_item(shopee_sandbox::SeedItem::single(
                shop_b,
                500_001 + i as u64,
                sku,
                20.0,
                5,
            ))
            .expect("seed");
        body.push(json!({"sku": sku, "shop_id": shop_b, "item_id": 500_001 + i as u64, "model_id": 0}));
    }
    let (status, _) = api
        .call(Method::PUT, "/v1/mappings", Some(Value::Array(body)))
        .await;
    assert_eq!(status, 200);
    let (status, created) = create(&api, &campaign("Everywhere", None, &skus, "9.99"), None).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["shops"].as_array().map(Vec::len), Some(2));
    assert_eq!(items_on_shopee(&api, shop_a), 120);
    assert_eq!(items_on_shopee(&api, shop_b), 10);
    let calls: Vec<_> = api
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| e.api == "/api/v2/discount/add_discount_item")
        .collect();
    assert_eq!(
        calls.iter().filter(|e| e.shop_id == Some(shop_a)).count(),
        3,
        "120 items = 50 + 50 + 20"
    );
    assert!(
        calls
            .iter()
            .all(|e| e.request["item_list"].as_array().map_or(0, Vec::len) <= 50)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_campaigns_get_422_with_a_human_message_before_any_shopee_call() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    let mut soon = campaign("Soon", Some(&hub), &skus, "9.90");
    soon["starts_at"] = json!((chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339());
    let mut long = campaign("Long", Some(&hub), &skus, "9.90");
    long["ends_at"] = json!(in_hours(24 * 200));
    let unknown = campaign("Unknown", None, &["NOPE-1".to_owned()], "9.90");
    let other_shop_hub = "UNMAPPED-HUB";
    api.hub(other_shop_hub, unique_shop()).await;
    let unmapped = campaign("Unmapped", Some(other_shop_hub), &skus, "9.90");
    let unknown_hub = campaign("NoHub", Some("NOPE"), &skus, "9.90");
    let free = campaign("Free", Some(&hub), &skus, "0");
    // The catalog sync knows the current price of the first SKU: 9.90.
    sqlx::query(
        "INSERT INTO catalog_sync_state (shop_id, item_id, model_id, kind, sku, hub_id, newest_version, newest_value,
                                         newest_event_id)
         VALUES ($1, 100001, 0, 'price', $2, $3, 1, 990, 'e1')",
    )
    .bind(shop as i64)
    .bind(&skus[0])
    .bind(&hub)
    .execute(&api.db.pool)
    .await
    .expect("price");
    let not_below = campaign("NotBelow", Some(&hub), &skus, "9.90");
    let cases = [
        (soon, "more than 1 hour"),
        (long, "180 days"),
        (unknown, "not mapped to any Shopee shop"),
        (unmapped, "is not mapped in shop"),
        (unknown_hub, "hub NOPE is not known"),
        (free, "more than 0.00"),
        (not_below, "is not below the current price 9.90"),
    ];
    for (body, expected) in cases {
        let (status, err) = create(&api, &body, None).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["code"], "unprocessable");
        let message = err["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(expected), "expected `{expected}` in `{message}`");
    }
    assert_eq!(api.sandbox.calls_to("discount/add_discount"), 0);
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&api.db.pool)
        .await
        .expect("n");
    assert_eq!(campaigns, 0, "a refused request records nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_item_in_another_promotion_is_a_per_item_outcome() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    let now = chrono::Utc::now().timestamp();
    api.sandbox
        .seed_discount(SeedDiscount {
            shop_id: shop,
            discount_id: None,
            discount_name: "someone else's".into(),
            start_time: now + 3 * 3600,
            end_time: now + 72 * 3600,
            items: vec![SeedDiscountItem {
                item_id: 100_001,
                model_id: 0,
                promotion_price: 18.0,
                promotion_stock: 0,
                purchase_limit: 0,
            }],
        })
        .expect("seed discount");
    let (status, created) = create(&api, &campaign("Mixed", Some(&hub), &skus, "12.00"), None).await;
    assert_eq!(status, 201, "{created}");
    let items = created["shops"][0]["items"].as_array().expect("items");
    let by_sku = |sku: &str| items.iter().find(|i| i["sku"] == sku).expect("item").clone();
    assert_eq!(by_sku(&skus[0])["state"], "rejected");
    assert_eq!(
        by_sku(&skus[0])["error"]["code"],
        "discount.item_already_in_promotion"
    );
    assert!(
        by_sku(&skus[0])["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("another promotion")
    );
    assert_eq!(by_sku(&skus[1])["state"], "added");
}

#[tokio::test(flavor = "multi_thread")]
async fn r15_failure_after_add_discount_is_compensated_and_the_retry_returns_the_first_result() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 3).await;
    // add_discount_item fails twice: the first call and the read-back retry.
    api.sandbox.inject_fault(
        Fault::server_error(503)
            .api("discount/add_discount_item")
            .shop(shop)
            .times(2),
    );
    let body = campaign("R15", Some(&hub), &skus, "9.90");
    let (status, first) = create(&api, &body, Some("r15-a")).await;
    assert_eq!(status, 502, "{first}");
    assert_eq!(first["error"]["code"], "shopee_error");
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing was left on Shopee")
    );
    assert_eq!(api.sandbox.calls_to("discount/add_discount"), 1);
    assert_eq!(api.sandbox.calls_to("discount/delete_discount"), 1);
    assert!(api.sandbox.discounts(shop).is_empty(), "no orphan discount");
    let details = &first["error"]["details"];
    assert_eq!(details["shops"][0]["state"], "failed");
    assert!(
        details["shops"][0]["discount_id"].is_i64(),
        "the discount id was recorded before items"
    );
    // Retried with the same key: the same answer, no second discount.
    let (status, again) = create(&api, &body, Some("r15-a")).await;
    assert_eq!(status, 502);
    assert_eq!(again, first);
    assert_eq!(api.sandbox.calls_to("discount/add_discount"), 1);
    assert!(api.sandbox.discounts(shop).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn r15_an_unknown_add_discount_item_outcome_is_resumed_in_the_request() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 3).await;
    api.sandbox.inject_fault(
        Fault::server_error(503)
            .api("discount/add_discount_item")
            .shop(shop)
            .times(1),
    );
    let (status, created) = create(
        &api,
        &campaign("Resumed", Some(&hub), &skus, "9.90"),
        Some("r15-b"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let discounts = api.sandbox.discounts(shop);
    assert_eq!(discounts.len(), 1);
    assert_eq!(discounts[0].items.len(), 3);
    assert_eq!(
        api.sandbox.calls_to("discount/get_discount"),
        1,
        "read back before sending again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn r15_a_creation_interrupted_mid_way_is_resumed_by_the_retry() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 3).await;
    // add_discount_item takes 2 s; the caller gives up after 0.5 s, which drops the request mid-way.
    api.sandbox.inject_fault(
        Fault::latency(Duration::from_secs(2))
            .api("discount/add_discount_item")
            .shop(shop)
            .times(1),
    );
    let body = campaign("Interrupted", Some(&hub), &skus, "9.90");
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let cut = quick
        .post(format!("{}/v1/campaigns", api.url))
        .bearer_auth(crate::common::TOKEN)
        .header("idempotency-key", "r15-c")
        .json(&body)
        .send()
        .await;
    assert!(cut.is_err(), "the first request should have been cut off");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (state, discount): (String, Option<i64>) =
        sqlx::query_as("SELECT state, discount_id FROM campaign_shops")
            .fetch_one(&api.db.pool)
            .await
            .expect("row");
    assert_eq!(state, "discount_created");
    assert!(discount.is_some(), "discount_id persisted before adding items");
    // While the first request's lease holds, a retry is told to wait, and for how long at most.
    let (status, waiting) = create(&api, &body, Some("r15-c")).await;
    assert_eq!(status, 409);
    assert!(
        waiting.to_string().contains("take over in at most 1"),
        "{waiting}"
    );
    sqlx::query("UPDATE idempotency_keys SET locked_until = now() - interval '1 second'")
        .execute(&api.db.pool)
        .await
        .expect("expire lease");
    let (status, resumed) = create(&api, &body, Some("r15-c")).await;
    assert_eq!(status, 201, "{resumed}");
    assert_eq!(api.sandbox.calls_to("discount/add_discount"), 1);
    let discounts = api.sandbox.discounts(shop);
    assert_eq!(discounts.len(), 1);
    assert_eq!(discounts[0].items.len(), 3);
    assert!(
        resumed["shops"][0]["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["state"] == "added")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn r15_compensation_refused_by_shopee_is_finished_by_the_reconcile_loop() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    api.sandbox.inject_fault(
        Fault::server_error(503)
            .api("discount/add_discount_item")
            .shop(shop)
            .times(2),
    );
    api.sandbox.inject_fault(
        Fault::server_error(503)
            .api("discount/delete_discount")
            .shop(shop)
            .times(1),
    );
    let (status, first) = create(&api, &campaign("Deferred", Some(&hub), &skus, "9.90"), None).await;
    assert_eq!(status, 502, "{first}");
    assert_eq!(first["error"]["details"]["shops"][0]["state"], "compensating");
    assert_eq!(
        api.sandbox.discounts(shop).len(),
        1,
        "still there until the loop runs"
    );
    let report = campaign_api::reconcile::reconcile_once(&api.state, campaign_api::reconcile::ABANDON_AFTER)
        .await
        .expect("reconcile");
    assert_eq!(report.compensated, 1, "{report:?}");
    assert!(api.sandbox.discounts(shop).is_empty(), "no orphan discount");
    let state: String = sqlx::query_scalar("SELECT state FROM campaign_shops")
        .fetch_one(&api.db.pool)
        .await
        .expect("s");
    assert_eq!(state, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn r15_an_abandoned_creation_is_rolled_back_by_the_reconcile_loop() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    api.sandbox.inject_fault(
        Fault::latency(Duration::from_secs(2))
            .api("discount/add_discount_item")
            .shop(shop)
            .times(1),
    );
    let body = campaign("Abandoned", Some(&hub), &skus, "9.90");
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let _ = quick
        .post(format!("{}/v1/campaigns", api.url))
        .bearer_auth(crate::common::TOKEN)
        .header("idempotency-key", "r15-d")
        .json(&body)
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(api.sandbox.discounts(shop).len(), 1);
    // Nobody retries: once the lease is gone and the work is old enough, the loop deletes the discount.
    sqlx::query("UPDATE idempotency_keys SET locked_until = now() - interval '1 second'")
        .execute(&api.db.pool)
        .await
        .expect("lease");
    let report = campaign_api::reconcile::reconcile_once(&api.state, Duration::from_secs(1))
        .await
        .expect("reconcile");
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert!(api.sandbox.discounts(shop).is_empty(), "no orphan discount");
    let (status, replay) = create(&api, &body, Some("r15-d")).await;
    assert_eq!(status, 502, "{replay}");
    assert!(
        replay["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("rolled back")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn update_renames_ends_earlier_and_adds_removes_reprices_items() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 3).await;
    let (status, created) = create(&api, &campaign("Before", Some(&hub), &skus[..2], "15.00"), None).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let new_end = chrono::Utc::now() + chrono::Duration::hours(24);
    let patch = json!({
        "name": "After",
        "ends_at": new_end.to_rfc3339(),
        "add_items": [{"sku": skus[2], "promotion_price": "11.00"}],
        "remove_skus": [skus[0]],
        "update_items": [{"sku": skus[1], "promotion_price": "12.50", "purchase_limit": 3}],
    });
    let (status, updated) = api
        .call(Method::PATCH, &format!("/v1/campaigns/{id}"), Some(patch))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "After");
    let d = &api.sandbox.discounts(shop)[0];
    assert_eq!(d.discount_name, "After");
    assert_eq!(d.end_time, new_end.timestamp());
    let mut on_shopee: Vec<(u64, f64)> = d.items.iter().map(|i| (i.item_id, i.promotion_price)).collect();
    on_shopee.sort_by_key(|x| x.0);
    assert_eq!(on_shopee, vec![(100_002, 12.5), (100_003, 11.0)]);
    let states: Vec<(String, String)> = updated["shops"][0]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().unwrap_or("").to_owned(),
                i["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&(skus[0].clone(), "removed".into())),
        "{states:?}"
    );
    // Ending later is refused (Shopee's rule), with a message.
    let later = json!({"ends_at": in_hours(100)});
    let (status, err) = api
        .call(Method::PATCH, &format!("/v1/campaigns/{id}"), Some(later))
        .await;
    assert_eq!(status, 422);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("only move earlier")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn end_an_ongoing_campaign_and_delete_an_upcoming_one() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    let (status, created) = create(&api, &campaign("Upcoming", Some(&hub), &skus[..1], "15.00"), None).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let (status, err) = api
        .call(Method::POST, &format!("/v1/campaigns/{id}/end"), None)
        .await;
    assert_eq!(status, 409);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("delete it")
    );
    let (status, deleted) = api
        .call(Method::DELETE, &format!("/v1/campaigns/{id}"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["status"], "deleted");
    assert!(api.sandbox.discounts(shop).is_empty());
    let (status, _) = api
        .call(Method::DELETE, &format!("/v1/campaigns/{id}"), None)
        .await;
    assert_eq!(status, 409);

    // An ongoing campaign (started 2 h ago, seeded on Shopee and recorded here).
    let now = chrono::Utc::now();
    let discount_id = api
        .sandbox
        .seed_discount(SeedDiscount {
            shop_id: shop,
            discount_id: None,
            discount_name: "Ongoing".into(),
            start_time: now.timestamp() - 7200,
            end_time: now.timestamp() + 7200,
            items: vec![SeedDiscountItem {
                item_id: 100_002,
                model_id: 0,
                promotion_price: 10.0,
                ..Default::default()
            }],
        })
        .expect("seed");
    let ongoing: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, starts_at, ends_at, state) VALUES ('Ongoing', now() - interval '2 hours',
                now() + interval '2 hours', 'active') RETURNING id",
    )
    .fetch_one(&api.db.pool)
    .await
    .expect("campaign");
    sqlx::query(
        "INSERT INTO campaign_shops (campaign_id, shop_id, state, discount_id) VALUES ($1, $2, 'active', $3)",
    )
    .bind(ongoing)
    .bind(shop as i64)
    .bind(discount_id as i64)
    .execute(&api.db.pool)
    .await
    .expect("shop");
    let (status, err) = api
        .call(Method::DELETE, &format!("/v1/campaigns/{ongoing}"), None)
        .await;
    assert_eq!(status, 409);
    assert!(err["error"]["message"].as_str().unwrap_or("").contains("end it"));
    let (status, ended) = api
        .call(Method::POST, &format!("/v1/campaigns/{ongoing}/end"), None)
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "ended");
    let d = api.sandbox.discount(shop, discount_id).expect("discount");
    assert_eq!(d.status, "expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_records_shopee_status_and_missing_discounts() {
    let api = start().await;
    let (shop, hub, skus) = shop_with_items(&api, 2).await;
    let (_, a) = create(&api, &campaign("A", Some(&hub), &skus[..1], "15.00"), None).await;
    let (_, b) = create(&api, &campaign("B", Some(&hub), &skus[1..], "15.00"), None).await;
    let report = campaign_api::reconcile::reconcile_once(&api.state, campaign_api::reconcile::ABANDON_AFTER)
        .await
        .expect("reconcile");
    assert_eq!(
        (report.shops_synced, report.statuses_updated),
        (1, 2),
        "{report:?}"
    );
    // Someone deletes B on Shopee behind our back.
    let b_discount = b["shops"][0]["discount_id"].as_u64().expect("id");
    api.shopee()
        .delete_discount(domain::ShopId::new(shop).expect("shop"), b_discount)
        .await
        .expect("delete");
    campaign_api::reconcile::reconcile_once(&api.state, campaign_api::reconcile::ABANDON_AFTER)
        .await
        .expect("reconcile");
    let statuses: Vec<(i64, String)> =
        sqlx::query_as("SELECT campaign_id, shopee_status FROM campaign_shops ORDER BY campaign_id")
            .fetch_all(&api.db.pool)
            .await
            .expect("rows");
    assert_eq!(
        statuses,
        vec![
            (a["id"].as_i64().expect("a"), "upcoming".into()),
            (b["id"].as_i64().expect("b"), "missing".into())
        ]
    );
    assert!(api.sandbox.calls_to("discount/get_discount_list") >= 2);
}
