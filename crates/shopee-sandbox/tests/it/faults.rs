//! Rate limits, injected faults and the journal.

use std::time::{Duration, Instant};

use serde_json::json;
use shopee_sandbox::{Fault, SeedItem};

use crate::support::*;

const ITEMS: &str = "/api/v2/product/get_item_list";
const MODELS: &str = "/api/v2/product/get_model_list";

#[tokio::test]
async fn a_shop_limit_answers_error_rate_limit_beyond_it() {
    let env = env().await;
    env.sandbox.set_rate_limit(Some(SHOP), None, 5);
    let mut errors = Vec::new();
    for _ in 0..8 {
        let a = env.get(ITEMS, LIST).await;
        errors.push((a.status, a.error().to_owned()));
    }
    let limited = errors
        .iter()
        .filter(|(s, e)| *s == 429 && e == "error_rate_limit")
        .count();
    assert_eq!(limited, 3, "{errors:?}");
    let a = env.get(ITEMS, LIST).await;
    assert_eq!(a.headers["retry-after"], "1");
    // Another shop is not limited by this shop's rule.
    let (other, _) = env.sandbox.issue_tokens(900_002);
    for _ in 0..6 {
        env.get_as(ITEMS, 900_002, &other, LIST).await.ok();
    }
    tokio::time::sleep(Duration::from_millis(1050)).await;
    env.get(ITEMS, LIST).await.ok();
    let journal = env.sandbox.journal();
    assert_eq!(
        journal.iter().filter(|e| e.error == "error_rate_limit").count(),
        4
    );
}

#[tokio::test]
async fn an_api_limit_applies_to_that_api_only() {
    let env = env().await;
    env.sandbox
        .seed_item(SeedItem::single(SHOP, 1, "A", 10.0, 1))
        .unwrap();
    env.sandbox
        .set_rate_limit(None, Some("product/get_model_list".into()), 2);
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(env.get(MODELS, &[("item_id", "1")]).await.error().to_owned());
    }
    assert_eq!(codes, ["", "", "error_rate_limit"]);
    for _ in 0..3 {
        env.get(ITEMS, LIST).await.ok();
    }
}

#[tokio::test]
async fn faults_answer_429_5xx_and_200_rate_limit_for_their_calls() {
    let env = env().await;
    env.sandbox.inject_fault(
        Fault::new(shopee_sandbox::FaultKind::Http429 {
            retry_after_secs: Some(2),
        })
        .api(ITEMS)
        .times(2),
    );
    let a = env.get(ITEMS, LIST).await;
    assert_eq!((a.status, a.error()), (429, "error_rate_limit"));
    assert_eq!(a.headers["retry-after"], "2");
    assert_eq!(env.get(ITEMS, LIST).await.status, 429);
    env.get(ITEMS, LIST).await.ok();

    env.sandbox
        .inject_fault(Fault::server_error(503).shop(SHOP).times(1));
    let a = env.get(ITEMS, LIST).await;
    assert_eq!((a.status, a.error()), (503, "error_server"));
    env.get(ITEMS, LIST).await.ok();

    env.sandbox
        .inject_fault(Fault::server_error(500).shop(999).times(1));
    env.get(ITEMS, LIST).await.ok(); // another shop's fault

    env.sandbox
        .inject_fault(Fault::rate_limit().api("product/get_item_list").times(1));
    let a = env.get(ITEMS, LIST).await;
    assert_eq!((a.status, a.error()), (200, "error_rate_limit"));

    env.sandbox
        .inject_fault(Fault::error(200, "error_limit", "daily quota").times(1));
    assert_eq!(env.get(ITEMS, LIST).await.error(), "error_limit");
    env.get(ITEMS, LIST).await.ok();
}

#[tokio::test]
async fn timed_faults_latency_and_clearing() {
    let env = env().await;
    env.sandbox
        .inject_fault(Fault::server_error(503).for_duration(Duration::from_millis(300)));
    assert_eq!(env.get(ITEMS, LIST).await.status, 503);
    assert_eq!(env.get(ITEMS, LIST).await.status, 503);
    tokio::time::sleep(Duration::from_millis(350)).await;
    env.get(ITEMS, LIST).await.ok();

    env.sandbox
        .inject_fault(Fault::latency(Duration::from_millis(250)).times(1));
    let t = Instant::now();
    env.get(ITEMS, LIST).await.ok();
    assert!(t.elapsed() >= Duration::from_millis(250));

    env.sandbox.inject_fault(Fault::server_error(500));
    assert_eq!(env.get(ITEMS, LIST).await.status, 500);
    env.sandbox.clear_faults();
    env.get(ITEMS, LIST).await.ok();
}

#[tokio::test]
async fn the_journal_records_every_call() {
    let env = env().await;
    let before = chrono::Utc::now().timestamp_millis();
    env.get(
        ITEMS,
        &[("offset", "0"), ("page_size", "3"), ("item_status", "NORMAL")],
    )
    .await
    .ok();
    let a = env
        .post(
            "/api/v2/product/update_price",
            json!({"item_id": 77, "price_list": [{"model_id": 0, "original_price": 1.0}]}),
        )
        .await;
    assert_eq!(a.error(), "error_item_not_found");
    let j = env.sandbox.journal();
    assert_eq!(j.len(), 2);
    assert_eq!(j[0].api, ITEMS);
    assert_eq!(j[0].method, "GET");
    assert_eq!(j[0].shop_id, Some(SHOP));
    assert_eq!(j[0].http_status, 200);
    assert_eq!(j[0].error, "");
    assert_eq!(j[0].request["page_size"], "3");
    assert!(j[0].request.get("sign").is_none() && j[0].request.get("access_token").is_none());
    assert!(j[0].at_ms >= before && j[0].at_ms <= j[1].at_ms);
    assert_eq!(j[1].error, "error_item_not_found");
    assert_eq!(j[1].request["item_id"], 77);
}

#[tokio::test]
async fn the_limit_answer_status_is_configurable() {
    let mut cfg = config();
    cfg.rate_limit_status = axum::http::StatusCode::OK;
    let env = env_with(cfg).await;
    env.sandbox.set_rate_limit(Some(SHOP), None, 1);
    env.get(ITEMS, LIST).await.ok();
    let a = env.get(ITEMS, LIST).await;
    assert_eq!((a.status, a.error()), (200, "error_rate_limit"));
    assert!(a.headers.get("retry-after").is_none());
}
