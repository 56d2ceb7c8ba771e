//! The per-shop limit is shared by replicas through Redis, and degrades to a local limit without Redis.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use shopee_client::ShopeeClient;
use shopee_client::api::order::{GetOrderListRequest, TimeRangeField};
use sqlx::postgres::PgPoolOptions;

use crate::support::{Env, SHOP, TOKEN_KEY, redis_pool_at, shop};

const ORDER_LIST: &str = "/api/v2/order/get_order_list";
const R: u32 = 20;

fn list_req() -> GetOrderListRequest {
    let now = Utc::now().timestamp();
    GetOrderListRequest {
        time_range_field: TimeRangeField::UpdateTime,
        time_from: now - 60,
        time_to: now,
        page_size: 10,
        cursor: String::new(),
        order_status: None,
        response_optional_fields: Vec::new(),
    }
}

/// Two client instances (two replicas), 8 eager callers each, one shop limited to R calls/s: measured at the
/// server, no 10-second window holds more than R x 10 (+5%), and the limit is actually used (not merely slow).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_share_one_shops_limit() {
    let env = Env::new().await;
    let mut cfg = env.config();
    cfg.rate_limit.per_shop = NonZeroU32::new(R).unwrap();
    let a = env.client_with(cfg.clone()).await;
    let b = env.client_with(cfg).await;
    env.authorized(&a, SHOP, 4 * 3600).await;
    // Warm the token cache of both so token loading is not measured.
    a.shop_tokens(shop()).await.unwrap();
    b.shop_tokens(shop()).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                client.get_order_list(shop(), &list_req()).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut by_client = [0u32; 2];
    for (i, t) in tasks.into_iter().enumerate() {
        by_client[i % 2] += t.await.unwrap();
    }

    let mut at: Vec<i64> = env
        .entries(ORDER_LIST)
        .iter()
        .filter(|e| e.shop_id == Some(SHOP))
        .map(|e| e.at_ms)
        .collect();
    at.sort_unstable();
    let max_in = |window_ms: i64| {
        (0..at.len())
            .map(|i| at[i..].iter().take_while(|t| **t < at[i] + window_ms).count())
            .max()
            .unwrap_or(0)
    };
    let ten_s = max_in(10_000);
    let limit = (f64::from(R) * 10.0 * 1.05) as usize;
    assert!(ten_s <= limit, "{ten_s} calls in 10 s > {limit}");
    assert!(
        ten_s >= (R as usize * 10) * 85 / 100,
        "limit not used: only {ten_s} calls in 10 s"
    );
    assert!(
        by_client[0] > 0 && by_client[1] > 0,
        "both replicas called: {by_client:?}"
    );
}

/// Redis down: calls still go, limited in process.
#[tokio::test]
async fn without_redis_the_limit_is_local() {
    let env = Env::new().await;
    let mut cfg = env.config();
    cfg.rate_limit.per_shop = NonZeroU32::new(20).unwrap();
    let port = test_support::free_port();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&env.db.url)
        .await
        .unwrap();
    let client = ShopeeClient::builder(cfg)
        .redis(redis_pool_at(&format!("redis://127.0.0.1:{port}")))
        .token_store(shopee_client::TokenStore::new(pool, TOKEN_KEY))
        .build()
        .unwrap();
    env.authorized(&client, SHOP, 4 * 3600).await;
    let started = Instant::now();
    for _ in 0..6 {
        client.get_order_list(shop(), &list_req()).await.unwrap();
    }
    // 6 calls at 20/s: at least 5 x 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(240),
        "{:?}",
        started.elapsed()
    );
}

/// A per-API override limits that API in the shop without slowing the shop's other APIs.
#[tokio::test]
async fn a_per_api_override_limits_only_that_api() {
    let env = Env::new().await;
    let mut cfg = env.config();
    cfg.rate_limit
        .per_api
        .insert(ORDER_LIST.to_owned(), NonZeroU32::new(10).unwrap());
    let client = env.client_with(cfg).await;
    env.authorized(&client, SHOP, 4 * 3600).await;
    client.shop_tokens(shop()).await.unwrap();

    let started = Instant::now();
    for _ in 0..6 {
        client.get_order_list(shop(), &list_req()).await.unwrap();
    }
    // 6 calls at 10/s: at least 5 x 100 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(480),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    for _ in 0..6 {
        client
            .get_model_list(shop(), domain::ItemId::new(1).unwrap())
            .await
            .unwrap_err(); // no such item: a permanent error, but the call was made
    }
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.entries("/api/v2/product/get_model_list").len(), 6);
}
