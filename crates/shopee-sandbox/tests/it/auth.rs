//! Signature, timestamp, partner and token checks; the authorization flow; single-use refresh tokens.

use serde_json::json;

use crate::support::*;

const ITEMS: &str = "/api/v2/product/get_item_list";

#[tokio::test]
async fn a_signed_call_gets_the_envelope() {
    let env = env().await;
    let a = env.get(ITEMS, LIST).await;
    a.ok();
    assert!(a.body["request_id"].as_str().unwrap().len() >= 16);
    assert_eq!(a.body["message"], "");
    assert!(a.body["response"]["item"].is_array());
}

#[tokio::test]
async fn wrong_sign_partner_and_timestamp_are_refused() {
    let env = env().await;
    let mut q = env.signed_shop_query(ITEMS, now());
    q.extend(list_params());
    let sign_at = q.iter().position(|(k, _)| k == "sign").unwrap();

    let mut bad = q.clone();
    bad[sign_at].1 = "0".repeat(64);
    let a = env.get_raw(ITEMS, &bad).await;
    assert_eq!(
        (a.status, a.error(), a.message()),
        (403, "error_sign", "Wrong sign.")
    );

    // Uppercase hex is not what Shopee produces: refused too.
    let mut upper = q.clone();
    upper[sign_at].1 = upper[sign_at].1.to_uppercase();
    assert_eq!(env.get_raw(ITEMS, &upper).await.error(), "error_sign");

    let mut partner = q.clone();
    partner[0].1 = "42".into();
    assert_eq!(env.get_raw(ITEMS, &partner).await.error(), "error_auth");

    // 301 s old: expired; 200 s old: fine.
    let mut old = env.signed_shop_query(ITEMS, now() - 301);
    old.extend(list_params());
    let a = env.get_raw(ITEMS, &old).await;
    assert_eq!(a.error(), "error_param");
    assert!(a.message().contains("timestamp expired"), "{}", a.message());
    let mut recent = env.signed_shop_query(ITEMS, now() - 200);
    recent.extend(list_params());
    env.get_raw(ITEMS, &recent).await.ok();

    let missing: Vec<_> = q.iter().filter(|(k, _)| k != "timestamp").cloned().collect();
    assert_eq!(env.get_raw(ITEMS, &missing).await.error(), "error_param");
}

#[tokio::test]
async fn invalid_and_expired_access_tokens_are_error_auth() {
    let env = env().await;
    let a = env.get_as(ITEMS, SHOP, "not-a-token", LIST).await;
    assert_eq!(
        (a.status, a.error(), a.message()),
        (403, "error_auth", "Invalid access_token.")
    );

    // Another shop's token is not valid for this shop.
    let (other, _) = env.sandbox.issue_tokens(900_002);
    assert_eq!(env.get_as(ITEMS, SHOP, &other, LIST).await.error(), "error_auth");

    env.sandbox.expire_access_token(SHOP).unwrap();
    assert_eq!(env.get(ITEMS, LIST).await.error(), "error_auth");
}

#[tokio::test]
async fn authorization_code_is_single_use() {
    let env = env().await;
    env.sandbox
        .seed_shop(shopee_sandbox::SeedShop {
            shop_id: 900_007,
            ..Default::default()
        })
        .unwrap();
    let a = env
        .public_get(
            "/api/v2/shop/auth_partner",
            &[
                ("redirect", "https://seller.test/shopee/auth/callback?x=1"),
                ("shop_id", "900007"),
            ],
        )
        .await;
    assert_eq!(a.status, 302);
    let location = a.headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://seller.test/shopee/auth/callback?x=1&code="),
        "{location}"
    );
    assert!(location.ends_with("&shop_id=900007"));
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let body = json!({"code": code, "shop_id": 900_007, "partner_id": PARTNER_ID});
    let t = env.public_post("/api/v2/auth/token/get", body.clone()).await;
    assert_eq!(t.error(), "");
    assert_eq!(t.body["expire_in"], 14_400);
    let access = t.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(access.len(), 32);
    assert!(t.body["refresh_token"].is_string());
    assert!(t.body.get("response").is_none(), "auth fields are top-level");
    env.get_as(ITEMS, 900_007, &access, LIST).await.ok();

    let again = env.public_post("/api/v2/auth/token/get", body).await;
    assert_eq!(again.error(), "error_auth");
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_the_old_token_keeps_a_grace_period() {
    let env = env().await;
    let path = "/api/v2/auth/access_token/get";
    let body = json!({"refresh_token": env.refresh, "shop_id": SHOP, "partner_id": PARTNER_ID});
    let r = env.public_post(path, body.clone()).await;
    assert_eq!(r.error(), "", "{}", r.body);
    let new_access = r.body["access_token"].as_str().unwrap().to_owned();
    let new_refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_access, env.access);
    assert_ne!(new_refresh, env.refresh);

    // The old access token stays valid (5 minutes), the new one works.
    env.get(ITEMS, LIST).await.ok();
    env.get_as(ITEMS, SHOP, &new_access, LIST).await.ok();

    // The old refresh token is spent.
    let reused = env.public_post(path, body).await;
    assert_eq!(reused.error(), "error_shop_refresh_token");

    let next = env
        .public_post(
            path,
            json!({"refresh_token": new_refresh, "shop_id": SHOP, "partner_id": PARTNER_ID}),
        )
        .await;
    assert_eq!(next.error(), "");
    assert_eq!(env.sandbox.calls_to("auth/access_token/get"), 3);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let env = std::sync::Arc::new(env().await);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"refresh_token": env.refresh, "shop_id": SHOP, "partner_id": PARTNER_ID});
            env.public_post("/api/v2/auth/access_token/get", body)
                .await
                .error()
                .to_owned()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|e| e.is_empty()).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|e| *e == "error_shop_refresh_token")
            .count(),
        9
    );
    let journal = env.sandbox.journal();
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.api == "/api/v2/auth/access_token/get")
            .count(),
        10
    );
}
