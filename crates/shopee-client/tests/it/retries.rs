//! Fault windows are retried to success; permanent errors are not retried.

use std::time::Duration;

use chrono::Utc;
use shopee_client::ErrorKind;
use shopee_client::api::discount::AddDiscountRequest;
use shopee_client::api::order::{GetOrderListRequest, TimeRangeField};
use shopee_sandbox::Fault;

use crate::support::{Env, SHOP, shop};

const ORDER_LIST: &str = "/api/v2/order/get_order_list";

fn list_req() -> GetOrderListRequest {
    let now = Utc::now().timestamp();
    GetOrderListRequest {
        time_range_field: TimeRangeField::CreateTime,
        time_from: now - 3600,
        time_to: now,
        page_size: 50,
        cursor: String::new(),
        order_status: None,
        response_optional_fields: Vec::new(),
    }
}

async fn errors_then_ok(env: &Env) -> Vec<String> {
    env.entries(ORDER_LIST).into_iter().map(|e| e.error).collect()
}

#[tokio::test]
async fn http_429_window_is_retried_to_success() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .inject_fault(Fault::http_429().api(ORDER_LIST).times(3));
    client.get_order_list(shop(), &list_req()).await.unwrap();
    let seen = errors_then_ok(&env).await;
    assert_eq!(
        seen,
        ["error_rate_limit", "error_rate_limit", "error_rate_limit", ""]
    );
}

#[tokio::test]
async fn error_rate_limit_with_200_is_retried_to_success() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .inject_fault(Fault::rate_limit().api(ORDER_LIST).times(2));
    client.get_order_list(shop(), &list_req()).await.unwrap();
    assert_eq!(
        errors_then_ok(&env).await,
        ["error_rate_limit", "error_rate_limit", ""]
    );
}

#[tokio::test]
async fn a_5xx_window_is_retried_to_success() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    // Every call fails for 150 ms; backoff (20, 40, 80, 160 ms, jittered) carries the call past the window.
    env.sandbox.inject_fault(
        Fault::server_error(503)
            .api(ORDER_LIST)
            .for_duration(Duration::from_millis(150)),
    );
    client.get_order_list(shop(), &list_req()).await.unwrap();
    let seen = errors_then_ok(&env).await;
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some(""));
    assert!(
        seen[..seen.len() - 1].iter().all(|e| e == "error_server"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    let mut fault = Fault::http_429().api(ORDER_LIST).times(1);
    fault.kind = shopee_sandbox::FaultKind::Http429 {
        retry_after_secs: Some(1),
    };
    env.sandbox.inject_fault(fault);
    let started = std::time::Instant::now();
    client.get_order_list(shop(), &list_req()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retryable_error_that_outlasts_the_attempts_surfaces_as_retryable() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .inject_fault(Fault::error(200, "error_system_busy", "busy").api(ORDER_LIST));
    let err = client.get_order_list(shop(), &list_req()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(env.entries(ORDER_LIST).len(), 5, "max_attempts");
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .inject_fault(Fault::error(400, "error_param", "time_from is wrong").api(ORDER_LIST));
    let err = client.get_order_list(shop(), &list_req()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert_eq!(err.shopee_code(), Some("error_param"));
    assert!(err.request_id().is_some(), "{err:?}");
    assert_eq!(env.entries(ORDER_LIST).len(), 1, "exactly one call");
}

#[tokio::test]
async fn quota_errors_are_not_retried_and_say_when_to_come_back() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    env.sandbox
        .inject_fault(Fault::error(200, "error_limit", "daily quota").api(ORDER_LIST));
    let err = client.get_order_list(shop(), &list_req()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Quota);
    match err {
        shopee_client::Error::Quota { reset_at, .. } => {
            assert!(reset_at > Utc::now() && reset_at <= Utc::now() + chrono::Duration::days(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.entries(ORDER_LIST).len(), 1);
}

/// `add_discount` is not idempotent: a 5xx (Shopee may have created the discount) is not retried blindly.
#[tokio::test]
async fn non_idempotent_calls_are_not_retried_after_a_5xx() {
    let env = Env::new().await;
    let client = env.client().await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    let api = "/api/v2/discount/add_discount";
    env.sandbox
        .inject_fault(Fault::server_error(500).api(api).times(1));
    let now = Utc::now().timestamp();
    let req = AddDiscountRequest {
        discount_name: "Black Friday".into(),
        start_time: now + 2 * 3600,
        end_time: now + 3 * 86_400,
    };
    let err = client.add_discount(shop(), &req).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(env.entries(api).len(), 1);
    // But a throttled one is (Shopee did not act).
    env.sandbox.inject_fault(Fault::http_429().api(api).times(1));
    client.add_discount(shop(), &req).await.unwrap();
    assert_eq!(env.entries(api).len(), 3);
}
