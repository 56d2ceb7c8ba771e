//! Tokens: single-flight refresh across replicas, refresh on a refused token, authorization by code.

use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use shopee_client::ErrorKind;
use shopee_client::api::order::{GetOrderListRequest, TimeRangeField};
use shopee_sandbox::Fault;
use sqlx::Row;

use crate::support::{Env, SHOP, shop};

const REFRESH: &str = "/api/v2/auth/access_token/get";
const ORDER_LIST: &str = "/api/v2/order/get_order_list";

fn list_req() -> GetOrderListRequest {
    let now = Utc::now().timestamp();
    GetOrderListRequest {
        time_range_field: TimeRangeField::UpdateTime,
        time_from: now - 3600,
        time_to: now,
        page_size: 20,
        cursor: String::new(),
        order_status: None,
        response_optional_fields: Vec::new(),
    }
}

/// 50 concurrent callers over two replicas (two clients, two database pools) with an expired token: exactly one
/// `access_token/get` reaches Shopee, nobody gets `error_shop_refresh_token`, and every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_callers_with_an_expired_token_refresh_once() {
    let env = Env::new().await;
    let a = env.client().await;
    let b = env.client().await;
    let before = env.authorized(&a, SHOP, 0).await;
    env.sandbox.expire_access_token(SHOP).unwrap();

    let calls = (0..50).map(|i| {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { client.get_order_list(shop(), &list_req()).await }
    });
    let results = join_all(calls.map(tokio::spawn)).await;
    for r in results {
        r.unwrap().unwrap();
    }

    assert_eq!(env.entries(REFRESH).len(), 1, "exactly one refresh call");
    let refused: Vec<_> = env
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| e.error == "error_shop_refresh_token")
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    let ok_calls = env
        .entries(ORDER_LIST)
        .iter()
        .filter(|e| e.error.is_empty())
        .count();
    assert_eq!(ok_calls, 50);
    let after = a.token_store().unwrap().load(shop()).await.unwrap().unwrap();
    assert_eq!(after.generation, before.generation + 1);
    assert_ne!(after.refresh_token, before.refresh_token);
    assert!(after.access_expires_at > Utc::now() + chrono::Duration::hours(3));
}

/// Our side thinks the token is fresh but Shopee refuses it: refresh once, repeat the call once, succeed.
#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_call_repeated() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox.expire_access_token(SHOP).unwrap();

    client.get_order_list(shop(), &list_req()).await.unwrap();

    assert_eq!(env.entries(REFRESH).len(), 1);
    let list = env.entries(ORDER_LIST);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].error, "error_auth");
    assert!(list[1].error.is_empty());
}

/// A token refused again after the refresh fails as `Auth` (the seller must authorize again): no loop.
#[tokio::test]
async fn a_token_refused_after_refresh_fails_as_auth() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .inject_fault(Fault::error(403, "error_auth", "Invalid access_token.").api(ORDER_LIST));

    let err = client.get_order_list(shop(), &list_req()).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("authorize the app again"), "{err}");
    assert_eq!(env.entries(REFRESH).len(), 1);
    assert_eq!(env.entries(ORDER_LIST).len(), 2);
}

/// Shopee refuses the refresh token (spent by a process that died before storing the rotated pair, or revoked):
/// it is offered once across callers and replicas, every caller fails as `Auth` at once, and a new authorization
/// lifts the mark. (Found by chaos R13: each waiting caller used to retry the spent token.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_refresh_token_is_not_offered_again_until_a_new_authorization() {
    let env = Env::new().await;
    let a = env.client().await;
    let b = env.client().await;
    env.authorized(&a, SHOP, 0).await;
    env.sandbox
        .inject_fault(Fault::error(400, "error_param", "Invalid refresh_token.").api(REFRESH));

    let calls = (0..20).map(|i| {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { client.get_order_list(shop(), &list_req()).await }
    });
    for r in join_all(calls.map(tokio::spawn)).await {
        let err = r.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(err.to_string().contains("authorize the app again"), "{err}");
    }
    assert_eq!(
        env.entries(REFRESH).len(),
        1,
        "the refused refresh token is offered once"
    );
    assert!(
        env.entries(ORDER_LIST).is_empty(),
        "no call with an expired token"
    );

    env.sandbox.clear_faults();
    env.authorized(&a, SHOP, 4 * 3600).await;
    a.get_order_list(shop(), &list_req()).await.unwrap();
    b.get_order_list(shop(), &list_req()).await.unwrap();
    assert_eq!(
        env.entries(REFRESH).len(),
        1,
        "a fresh authorization needs no refresh"
    );
}

/// A shop without tokens is `NotAuthorized`, without any call to Shopee.
#[tokio::test]
async fn a_shop_without_tokens_makes_no_call() {
    let env = Env::new().await;
    let client = env.client().await;
    let err = client.get_order_list(shop(), &list_req()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(env.sandbox.journal().is_empty());
}

/// The auth callback's code becomes an encrypted pair and an authorized shop with a visible expiry.
#[tokio::test]
async fn authorizing_with_a_code_stores_an_encrypted_pair() {
    let env = Env::new().await;
    let client = env.client().await;
    let link = client.auth_link("https://seller.test/shopee/auth/callback", Utc::now().timestamp());
    assert!(link.starts_with(&format!(
        "{}/api/v2/shop/auth_partner?partner_id=",
        env.sandbox.base_url()
    )));

    let code = env.sandbox.authorize_shop(SHOP);
    let pair = client.authorize_shop(shop(), &code, None).await.unwrap();
    assert_eq!(pair.generation, 1);

    // The code is single-use: a second exchange is a permanent error.
    let again = client.authorize_shop(shop(), &code, None).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Permanent, "{again}");
    assert_eq!(env.entries("/api/v2/auth/token/get").len(), 2);

    let auth = client
        .token_store()
        .unwrap()
        .authorization(shop())
        .await
        .unwrap()
        .unwrap();
    let expires = auth.authorization_expires_at.unwrap();
    assert!(expires > Utc::now() + chrono::Duration::days(364));
    assert!(auth.access_expires_at.unwrap() > Utc::now() + chrono::Duration::hours(3));

    // Encrypted at rest: the stored bytes do not contain the token.
    let row = sqlx::query("SELECT access_token_enc, refresh_token_enc FROM shop_tokens WHERE shop_id = $1")
        .bind(SHOP as i64)
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    let access: Vec<u8> = row.get(0);
    let refresh: Vec<u8> = row.get(1);
    assert!(
        !access
            .windows(pair.access_token.len())
            .any(|w| w == pair.access_token.as_bytes())
    );
    assert!(
        !refresh
            .windows(pair.refresh_token.len())
            .any(|w| w == pair.refresh_token.as_bytes())
    );

    // And the pair works.
    client.get_order_list(shop(), &list_req()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Deauthorization deletes the pair and marks the shop; calls stop without reaching Shopee.
#[tokio::test]
async fn a_deauthorized_shop_makes_no_more_calls() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    client.get_order_list(shop(), &list_req()).await.unwrap();
    client.deauthorize_shop(shop()).await.unwrap();
    let err = client.get_order_list(shop(), &list_req()).await.unwrap_err();
    assert!(matches!(err, shopee_client::Error::NotAuthorized { .. }), "{err}");
    assert_eq!(env.entries(ORDER_LIST).len(), 1);
    let all = client.token_store().unwrap().authorizations().await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].deauthorized_at.is_some());
    assert!(all[0].access_expires_at.is_none());
}
