//! Mappings, discovery and content-sync jobs, shops, orders and dead letters, each against real PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{start, unique_shop};

#[tokio::test(flavor = "multi_thread")]
async fn mappings_bulk_upsert_report_and_paginated_reads() {
    let api = start().await;
    let shop = unique_shop();
    let body = json!([
        {"sku": "MAP-A", "shop_id": shop, "item_id": 11, "model_id": 0},
        {"sku": "MAP-B", "shop_id": shop, "item_id": 12, "model_id": 5},
    ]);
    let (status, report) = api.call(Method::PUT, "/v1/mappings", Some(body.clone())).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["inserted"].as_u64(), report["updated"].as_u64()),
        (Some(2), Some(0))
    );
    let (_, report) = api.call(Method::PUT, "/v1/mappings", Some(body)).await;
    assert_eq!(report["unchanged"], 2);
    // MAP-A moves to another item (update); MAP-C claims MAP-B's model (conflict, not moved).
    let body = json!([
        {"sku": "MAP-A", "shop_id": shop, "item_id": 13, "model_id": 0},
        {"sku": "MAP-C", "shop_id": shop, "item_id": 12, "model_id": 5},
    ]);
    let (_, report) = api.call(Method::PUT, "/v1/mappings", Some(body)).await;
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(report["conflicts"][0]["sku"], "MAP-C");
    assert_eq!(report["conflicts"][0]["mapped_to_sku"], "MAP-B");
    // The write went through the cache-invalidating path: a cached read sees the new item at once.
    let m = api
        .state
        .mappings
        .for_sku(
            &domain::Sku::parse("MAP-A").expect("sku"),
            domain::ShopId::new(shop).expect("shop"),
        )
        .await
        .expect("read")
        .expect("mapped");
    assert_eq!(m.item_id.get(), 13);

    let (status, one) = api.call(Method::GET, "/v1/mappings?sku=MAP-B", None).await;
    assert_eq!(status, 200);
    assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["items"][0]["model_id"], 5);
    let (_, p1) = api
        .call(Method::GET, &format!("/v1/mappings?shop_id={shop}&limit=1"), None)
        .await;
    assert_eq!(p1["items"][0]["sku"], "MAP-A");
    let cursor = p1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, p2) = api
        .call(
            Method::GET,
            &format!("/v1/mappings?shop_id={shop}&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(p2["items"][0]["sku"], "MAP-B");
    assert!(p2["next_cursor"].is_null());

    let bad = json!([{"sku": "bad sku!", "shop_id": shop, "item_id": 1, "model_id": 0}, {"sku": "OK", "shop_id": 0, "item_id": 1}]);
    let (status, err) = api.call(Method::PUT, "/v1/mappings", Some(bad)).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["details"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_and_content_sync_are_queued_jobs() {
    let api = start().await;
    let shop = unique_shop();
    let (status, err) = api
        .call(
            Method::POST,
            "/v1/mappings/discover",
            Some(json!({"shop_id": shop})),
        )
        .await;
    assert_eq!(status, 422, "unknown shop: {err}");
    api.authorize(shop).await;
    let (status, job) = api
        .call(
            Method::POST,
            "/v1/mappings/discover",
            Some(json!({"shop_id": shop})),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["job_id"].as_i64().expect("id");
    let (status, got) = api
        .call(Method::GET, &format!("/v1/mappings/discover/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            got["status"].as_str(),
            got["shop_id"].as_u64(),
            got["matched"].as_i64()
        ),
        (Some("queued"), Some(shop), Some(0))
    );
    // The worker's progress shows through.
    sqlx::query("UPDATE mapping_discovery_jobs SET status = 'done', matched = 7, unmatched = 2, finished_at = now() WHERE id = $1")
        .bind(id)
        .execute(&api.db.pool)
        .await
        .expect("update");
    let (_, got) = api
        .call(Method::GET, &format!("/v1/mappings/discover/{id}"), None)
        .await;
    assert_eq!(
        (
            got["status"].as_str(),
            got["matched"].as_i64(),
            got["unmatched"].as_i64()
        ),
        (Some("done"), Some(7), Some(2))
    );
    let (status, _) = api.call(Method::GET, "/v1/mappings/discover/999999", None).await;
    assert_eq!(status, 404);

    let (status, all) = api
        .call(Method::POST, "/v1/catalog/content-sync", Some(json!({})))
        .await;
    assert_eq!(status, 202, "{all}");
    assert!(all["skus"].is_null());
    let (status, some) = api
        .call(
            Method::POST,
            "/v1/catalog/content-sync",
            Some(json!({"skus": ["A-1", "B-2"]})),
        )
        .await;
    assert_eq!(status, 202);
    let id = some["job_id"].as_i64().expect("id");
    let skus: Option<Vec<String>> = sqlx::query_scalar("SELECT skus FROM content_sync_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&api.db.pool)
        .await
        .expect("job");
    assert_eq!(skus, Some(vec!["A-1".to_owned(), "B-2".to_owned()]));
    let (status, got) = api
        .call(Method::GET, &format!("/v1/catalog/content-sync/{id}"), None)
        .await;
    assert_eq!((status, got["status"].as_str()), (200, Some("queued")));
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/catalog/content-sync",
            Some(json!({"skus": ["no good!"]})),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn shops_show_authorization_and_expiry_but_never_tokens() {
    let api = start().await;
    let (a, b) = (unique_shop(), unique_shop());
    api.authorize(a).await;
    api.authorize(b).await;
    let (status, list) = api.call(Method::GET, "/v1/shops?limit=1", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let cursor = list["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, rest) = api
        .call(Method::GET, &format!("/v1/shops?limit=10&cursor={cursor}"), None)
        .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    let (status, shop) = api.call(Method::GET, &format!("/v1/shops/{a}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(shop["authorization_status"], "authorized");
    assert!(shop["access_token_expires_at"].is_string() && shop["authorization_expires_at"].is_string());
    let tokens = api
        .shopee()
        .shop_tokens(domain::ShopId::new(a).expect("shop"))
        .await
        .expect("tokens");
    for body in [shop.to_string(), list.to_string()] {
        assert!(!body.contains(&tokens.access_token) && !body.contains(&tokens.refresh_token));
    }
    let (status, _) = api.call(Method::GET, "/v1/shops/123", None).await;
    assert_eq!(status, 404);
    let (status, link) = api.call(Method::GET, "/v1/shops/auth-link", None).await;
    assert_eq!(status, 200);
    let url = link["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!(
            "{}/api/v2/shop/auth_partner?partner_id=",
            api.sandbox.base_url()
        )),
        "{url}"
    );
    assert!(
        url.contains("redirect=https%3A%2F%2Fseller.example.com%2Fshopee%2Fauth%2Fcallback"),
        "{url}"
    );
    // The sandbox accepts the link's signature and redirects to the callback with a code.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("c");
    let resp = no_redirect
        .get(format!("{url}&shop_id={a}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().expect("loc").to_owned();
    assert!(
        location.starts_with("https://seller.example.com/shopee/auth/callback?"),
        "{location}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_show_their_state_without_buyer_data() {
    let api = start().await;
    let shop = unique_shop();
    sqlx::query(
        "INSERT INTO orders (shop_id, order_sn, intake_state, shopee_status, detail) VALUES ($1, '2511250ORDER1',
                'needs_mapping', 'READY_TO_SHIP', 'line 100001/0 has no mapping')",
    )
    .bind(shop as i64)
    .execute(&api.db.pool)
    .await
    .expect("order");
    let (status, order) = api.call(Method::GET, "/v1/orders/2511250ORDER1", None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["intake_state"], "needs_mapping");
    assert_eq!(order["shopee_status"], "READY_TO_SHIP");
    assert_eq!(order["delivery_state"], "ready_to_ship");
    assert!(order["published_at"].is_null() && order["cancelled_after_publish_at"].is_null());
    assert_eq!(order["detail"], "line 100001/0 has no mapping");
    let keys: Vec<&String> = order.as_object().expect("obj").keys().collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("customer") || k.contains("address") || k.contains("buyer"))
    );
    let (status, _) = api.call(Method::GET, "/v1/orders/2511250NOPE", None).await;
    assert_eq!(status, 404);
    let (status, _) = api.call(Method::GET, "/v1/orders/not-an-sn", None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_list_with_filters_and_redrive() {
    let api = start().await;
    let payload = json!({"x": 1});
    let mut ids = Vec::new();
    for (source, kind) in [
        ("order-publisher", "order"),
        ("catalog-sync-worker", "price_update"),
        ("order-publisher", "inbox_push"),
    ] {
        let id = dead_letters::park(
            &api.db.pool,
            dead_letters::Park {
                source,
                kind: kind.parse().expect("a dead letter kind"),
                reference: Some("900001:X"),
                reason: "because",
                payload: &payload,
                attempts: 1,
            },
        )
        .await
        .expect("park");
        ids.push(id);
    }
    let (status, page) = api
        .call(
            Method::GET,
            "/v1/dead-letters?source=order-publisher&limit=1",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["id"], ids[0]);
    assert_eq!(page["items"][0]["reason"], "because");
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, next) = api
        .call(
            Method::GET,
            &format!("/v1/dead-letters?source=order-publisher&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["id"], ids[2]);
    assert!(next["next_cursor"].is_null());
    let (status, redrive) = api
        .call(
            Method::POST,
            &format!("/v1/dead-letters/{}/redrive", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 202, "{redrive}");
    let (_, requested) = api
        .call(Method::GET, "/v1/dead-letters?status=redrive_requested", None)
        .await;
    let listed: Vec<Value> = requested["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], ids[1]);
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/dead-letters/{}/redrive", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = api
        .call(Method::POST, "/v1/dead-letters/999999/redrive", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = api.call(Method::GET, "/v1/dead-letters?status=bogus", None).await;
    assert_eq!(status, 400);
}
