//! The admin API over HTTP.

use serde_json::{Value, json};

use crate::support::*;

async fn admin(env: &Env, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = env.http.request(method, env.url(&format!("/_sandbox{path}")));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn seed_inspect_fault_and_journal_over_http() {
    let env = env().await;
    use reqwest::Method as M;
    let seed = json!({
        "items": [{"shop_id": SHOP, "item_id": 5, "item_sku": "S5", "models": [{"model_id": 0, "price": 3.5, "seller_stock": [{"stock": 7}]}]}],
        "orders": [{"shop_id": SHOP, "order_sn": "H1", "order_status": "READY_TO_SHIP", "total_amount": 10.0}],
        "authorized_shops": [900_003]
    });
    let (s, r) = admin(&env, M::POST, "/seed", Some(seed)).await;
    assert_eq!(s, 200, "{r}");
    let token = r["tokens"]["900003"]["access_token"].as_str().unwrap().to_owned();
    env.get_as("/api/v2/product/get_item_list", 900_003, &token, LIST)
        .await
        .ok();

    let (s, item) = admin(&env, M::GET, &format!("/shops/{SHOP}/items/5"), None).await;
    assert_eq!(s, 200);
    assert_eq!(item["models"][0]["total_stock"], 7);
    let (s, _) = admin(&env, M::GET, &format!("/shops/{SHOP}/items/6"), None).await;
    assert_eq!(s, 404);

    let (s, _) = admin(
        &env,
        M::POST,
        &format!("/shops/{SHOP}/orders/H1/status"),
        Some(json!({"status": "SHIPPED"})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, o) = admin(&env, M::GET, &format!("/shops/{SHOP}/orders/H1"), None).await;
    assert_eq!(o["order"]["order_status"], "SHIPPED");
    assert_eq!(o["logistics_status"], "LOGISTICS_PICKUP_DONE");
    let (s, e) = admin(
        &env,
        M::POST,
        &format!("/shops/{SHOP}/orders/H1/status"),
        Some(json!({"status": "LOST"})),
    )
    .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid")));

    admin(
        &env,
        M::POST,
        "/faults",
        Some(json!({"kind": "server_error", "status": 502, "api": "product/get_item_list", "calls": 1})),
    )
    .await;
    assert_eq!(env.get("/api/v2/product/get_item_list", LIST).await.status, 502);
    admin(
        &env,
        M::POST,
        "/rate_limits",
        Some(json!({"shop_id": SHOP, "per_second": 1})),
    )
    .await;
    env.get("/api/v2/product/get_item_list", LIST).await.ok();
    assert_eq!(
        env.get("/api/v2/product/get_item_list", LIST).await.error(),
        "error_rate_limit"
    );
    admin(&env, M::DELETE, "/rate_limits", None).await;
    env.get("/api/v2/product/get_item_list", LIST).await.ok();

    let (_, j) = admin(
        &env,
        M::GET,
        &format!("/journal?api=product/get_item_list&shop_id={SHOP}"),
        None,
    )
    .await;
    let statuses: Vec<_> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["http_status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [502, 200, 429, 200]);
    let (_, pushes) = admin(&env, M::GET, "/pushes", None).await;
    assert_eq!(pushes.as_array().unwrap().len(), 2);
    assert_eq!(pushes[0]["state"], "lost");

    let (_, code) = admin(&env, M::POST, &format!("/shops/{SHOP}/authorize"), None).await;
    assert_eq!(code["code"].as_str().unwrap().len(), 32);
    admin(&env, M::POST, &format!("/shops/{SHOP}/expire_access_token"), None).await;
    assert_eq!(
        env.get("/api/v2/product/get_item_list", LIST).await.error(),
        "error_auth"
    );
}
