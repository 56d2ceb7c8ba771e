//! `GET /shopee/auth/callback` against the real app, real PostgreSQL and the Shopee sandbox over HTTP.

use shopee_sandbox::{Fault, Sandbox, SandboxConfig};

use crate::quotation::{Gateway, HubConfigFake, KEY, PARTNER_ID, start_gateway};

async fn setup() -> (Sandbox, Gateway) {
    let sandbox = Sandbox::start(SandboxConfig::new(PARTNER_ID, KEY))
        .await
        .expect("sandbox");
    let fake = HubConfigFake::start(serde_json::json!([])).await;
    let gw = start_gateway(&fake.url, 3600, &sandbox.base_url()).await;
    (sandbox, gw)
}

async fn get(gw: &Gateway, query: &str) -> (u16, String, String) {
    let resp = reqwest::get(format!("{}/shopee/auth/callback{query}", gw.url))
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let content_type = resp.headers()["content-type"].to_str().unwrap_or("").to_owned();
    (status, content_type, resp.text().await.unwrap_or_default())
}

async fn generation(gw: &Gateway, shop: u64) -> Option<i64> {
    sqlx::query_scalar("SELECT generation FROM shop_tokens WHERE shop_id = $1")
        .bind(shop as i64)
        .fetch_optional(&gw.db.pool)
        .await
        .expect("query")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callback_authorizes_the_shop_and_a_reload_keeps_it_authorized() {
    let (sandbox, gw) = setup().await;
    let shop = 900_011;
    let code = sandbox.authorize_shop(shop);
    let url = format!("?code={code}&shop_id={shop}");
    let (status, content_type, page) = get(&gw, &url).await;
    assert_eq!(status, 200, "{page}");
    assert!(content_type.starts_with("text/html"));
    assert!(page.contains("Shop 900011 is now connected"), "{page}");
    assert_eq!(generation(&gw, shop).await, Some(1));
    let (authorized, expires): (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as("SELECT authorized_at, authorization_expires_at FROM shops WHERE shop_id = $1")
        .bind(shop as i64)
        .fetch_one(&gw.db.pool)
        .await
        .expect("shop");
    assert!(authorized.is_some() && expires.is_some());
    // Tokens are stored encrypted, never in the clear.
    let store = shopee_client::TokenStore::new(gw.db.pool.clone(), [0u8; 32]);
    let pair = store
        .load(domain::ShopId::new(shop).expect("shop"))
        .await
        .expect("load")
        .expect("pair");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT access_token_enc FROM shop_tokens WHERE shop_id = $1")
        .bind(shop as i64)
        .fetch_one(&gw.db.pool)
        .await
        .expect("row");
    assert!(!pair.access_token.is_empty());
    assert!(
        !stored
            .windows(pair.access_token.len())
            .any(|w| w == pair.access_token.as_bytes())
    );

    // The seller reloads the page: the code is spent, the shop stays authorized and sees success.
    let (status, _, page) = get(&gw, &url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("already connected"), "{page}");
    assert_eq!(
        generation(&gw, shop).await,
        Some(1),
        "the stored pair was not touched"
    );
    assert_eq!(sandbox.calls_to("auth/token/get"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_code_or_link_shows_a_failure_page() {
    let (sandbox, gw) = setup().await;
    // A code for another shop, for a shop that was never authorized.
    let code = sandbox.authorize_shop(900_021);
    let (status, _, page) = get(&gw, &format!("?code={code}&shop_id=900022")).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Authorization failed") && page.contains("Open the authorization link again"));
    assert_eq!(generation(&gw, 900_022).await, None);
    for query in [
        "",
        "?shop_id=900022",
        "?code=abc",
        "?code=abc&shop_id=<script>",
        "?code=<b>x</b>&shop_id=1",
    ] {
        let (status, _, page) = get(&gw, query).await;
        assert_eq!(status, 400, "{query}: {page}");
        assert!(
            !page.contains("<script>") && !page.contains("<b>x"),
            "nothing is echoed unescaped"
        );
    }
    let (status, _, page) = get(&gw, "?code=abc&main_account_id=5").await;
    assert_eq!(status, 400);
    assert!(page.contains("Main-account"));
}

#[tokio::test(flavor = "multi_thread")]
async fn shopee_unreachable_asks_to_reload() {
    let (sandbox, gw) = setup().await;
    let shop = 900_031;
    let code = sandbox.authorize_shop(shop);
    sandbox.inject_fault(Fault::server_error(503).api("auth/token/get").times(1));
    let (status, _, page) = get(&gw, &format!("?code={code}&shop_id={shop}")).await;
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("Reload this page"), "{page}");
    // The fault answered before the code was spent: the reload works.
    let (status, _, page) = get(&gw, &format!("?code={code}&shop_id={shop}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(generation(&gw, shop).await, Some(1));
}
