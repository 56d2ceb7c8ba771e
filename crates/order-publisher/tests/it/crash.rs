//! R1 and R2, bounded for `make test`: the real gateway and publisher binaries are killed with SIGKILL while
//! orders flow. Every push the gateway acknowledged is in PostgreSQL; every order is published; copies on the
//! wire only ever repeat the same order's idempotency key.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shopee_sandbox::SeedOrder;
use test_support::{free_port, wait_for_status};

use crate::stack::{ITEM, SKU, Stack, gateway_exe, spawn};

/// `make test` runs a bounded variant; the full R1 is on demand:
/// `R1_ORDERS=2000 R1_KILLS=20 cargo test -p order-publisher --test it crash -- --nocapture`.
fn setting(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_gateway_and_publisher_lose_nothing_and_publish_once() {
    let (orders_n, kills_each) = (setting("R1_ORDERS", 200), setting("R1_KILLS", 5));
    let gateway_exe = gateway_exe();
    let gateway_exe = gateway_exe.to_str().expect("utf8").to_owned();
    let publisher_exe = env!("CARGO_BIN_EXE_order-publisher").to_owned();
    let (gw_port, pub_port) = (free_port(), free_port());
    let stack = Stack::without_gateway(2, gw_port).await;
    stack.map(SKU, ITEM).await;
    let mut env = stack.env();
    env.retain(|(k, _)| k != "RECONCILE_INTERVAL_SECS");
    env.push(("RECONCILE_INTERVAL_SECS".into(), "2".into()));

    let gateway = Arc::new(Mutex::new(Some(spawn(&gateway_exe, &env, gw_port))));
    let publisher = Arc::new(Mutex::new(Some(spawn(&publisher_exe, &env, pub_port))));
    wait_for_status(
        &format!("http://127.0.0.1:{gw_port}/health/ready"),
        200,
        Duration::from_secs(20),
    )
    .await;
    wait_for_status(
        &format!("http://127.0.0.1:{pub_port}/health/ready"),
        200,
        Duration::from_secs(20),
    )
    .await;

    // Chaos: alternate SIGKILLs of the gateway and the publisher, each restarted at once.
    let chaos = {
        let (gateway, publisher, env) = (gateway.clone(), publisher.clone(), env.clone());
        let (gateway_exe, publisher_exe) = (gateway_exe.clone(), publisher_exe.clone());
        tokio::spawn(async move {
            for round in 0..kills_each * 2 {
                tokio::time::sleep(Duration::from_millis(400 + 97 * (round as u64 % 5))).await;
                let (slot, exe, port) = if round % 2 == 0 {
                    (&gateway, &gateway_exe, gw_port)
                } else {
                    (&publisher, &publisher_exe, pub_port)
                };
                let mut guard = slot.lock().expect("lock");
                if let Some(p) = guard.as_ref() {
                    p.signal("KILL");
                }
                guard.take();
                *guard = Some(spawn(exe, &env, port));
            }
        })
    };

    // Orders arrive while processes die: each push is delivered (2xx) or, when the gateway is down, lost.
    for chunk in (0..orders_n).collect::<Vec<_>>().chunks(10) {
        let orders: Vec<SeedOrder> = chunk
            .iter()
            .map(|i| {
                let mut o = SeedOrder::example(stack.shop, &format!("CRASH{i:08}"), ITEM, SKU);
                o.order_status = "READY_TO_SHIP".into();
                o
            })
            .collect();
        stack.sandbox.seed_orders(orders).await.expect("seed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    chaos.await.expect("chaos");

    // Every order is published at least once, and only under its own idempotency key.
    let started = Instant::now();
    let mut copies: HashMap<String, usize> = HashMap::new();
    while copies.len() < orders_n && started.elapsed() < Duration::from_secs(120) {
        for msg in stack.pull().await {
            let sn = msg.payload["order"]["external_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert_eq!(
                msg.attributes.get("idempotency_key").map(String::as_str),
                Some(format!("shopee:{}:{sn}", stack.shop).as_str()),
                "a copy on the wire must carry its order's key"
            );
            *copies.entry(sn).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wire_duplicates: usize = copies.values().map(|c| c - 1).sum();
    eprintln!(
        "R1/R2 bounded: {orders_n} orders, {kills_each} SIGKILLs each of gateway and publisher; published {} distinct, {wire_duplicates} duplicate copies on the wire, in {:?}",
        copies.len(),
        started.elapsed()
    );
    assert_eq!(copies.len(), orders_n, "orders lost");

    // Exactly one new_order per order in the outbox (the effect), whatever was redone.
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(outbox, orders_n as i64);

    // Every push the gateway acknowledged is in PostgreSQL.
    let stored: HashSet<String> =
        sqlx::query_scalar("SELECT dedup_key FROM push_inbox WHERE source = 'push'")
            .fetch_all(&stack.db.pool)
            .await
            .expect("keys")
            .into_iter()
            .collect();
    let delivered: Vec<_> = stack
        .sandbox
        .pushes()
        .into_iter()
        .filter(|p| matches!(p.state, shopee_sandbox::PushState::Delivered))
        .collect();
    assert!(!delivered.is_empty());
    eprintln!(
        "pushes acknowledged by the gateway: {}, lost while it was down (recovered by reconciliation): {}",
        delivered.len(),
        stack.sandbox.pushes().len() - delivered.len()
    );
    for p in &delivered {
        let key = format!(
            "3:{}:{}:{}:{}",
            p.shop_id,
            p.data["ordersn"].as_str().unwrap_or_default(),
            p.data["status"].as_str().unwrap_or_default(),
            p.data["update_time"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |t| t.to_string())
        );
        assert!(
            stored.contains(&key),
            "acknowledged push {key} is not in the inbox"
        );
    }

    // One more order after the storm, then what an operator sees on /metrics of both binaries.
    let mut extra = SeedOrder::example(stack.shop, "CRASHEXTRA", ITEM, SKU);
    extra.order_status = "READY_TO_SHIP".into();
    stack.sandbox.seed_orders(vec![extra]).await.expect("seed");
    assert_eq!(stack.pull_until(1, Duration::from_secs(30)).await.len(), 1);
    tokio::time::sleep(Duration::from_secs(6)).await; // one lag-report period
    let scrape = |port: u16| async move {
        // Readiness is what sets dependency_up.
        reqwest::get(format!("http://127.0.0.1:{port}/health/ready"))
            .await
            .expect("ready");
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    };
    let gw = scrape(gw_port).await;
    for needle in [
        "webhook_pushes_total{outcome=\"stored\"}",
        "webhook_push_duration_seconds_bucket",
        "http_requests_total{",
        "dependency_up{dependency=\"postgres\"} 1",
    ] {
        assert!(gw.contains(needle), "gateway /metrics lacks {needle}:\n{gw}");
    }
    let publisher_metrics = scrape(pub_port).await;
    for needle in [
        "orders_intake_total{outcome=\"published\"}",
        "outbox_publish_total{outcome=\"published\"}",
        "inbox_pending",
        "inbox_oldest_age_seconds",
        "outbox_pending",
        "outbox_oldest_age_seconds",
        "shopee_calls_total{",
        "shopee_call_duration_seconds_bucket",
        "shop_token_expiry_timestamp_seconds{",
        "dependency_up{dependency=\"pubsub\"} 1",
    ] {
        assert!(
            publisher_metrics.contains(needle),
            "order-publisher /metrics lacks {needle}:\n{publisher_metrics}"
        );
    }
    drop(gateway.lock().expect("lock").take());
    drop(publisher.lock().expect("lock").take());
}
