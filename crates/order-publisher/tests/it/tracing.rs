//! Trace context: the push's trace (started in webhook-gateway) continues through the inbox and the outbox into
//! the `new_order` message's `traceparent` attribute. Both binaries run as processes with OTLP export on.

use std::time::Duration;

use shopee_sandbox::SeedOrder;
use test_support::{Proc, free_port, wait_for_status};

use crate::stack::{ITEM, SKU, Stack};

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_push_trace_reaches_the_new_order_attributes() {
    let gateway_exe = crate::stack::gateway_exe();
    let (gw_port, pub_port) = (free_port(), free_port());
    let stack = Stack::without_gateway(3600, gw_port).await;
    stack.map(SKU, ITEM).await;
    let owned = stack.env();
    let mut env: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    // Spans are created and propagated whether or not a collector answers.
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", free_port()),
    ));
    env.push(("RUST_LOG", "error".into()));
    let mut gw_env = env.clone();
    gw_env.push(("HTTP_ADDR", format!("127.0.0.1:{gw_port}")));
    let mut pub_env = env.clone();
    pub_env.push(("HTTP_ADDR", format!("127.0.0.1:{pub_port}")));
    let _gateway = Proc::spawn(gateway_exe.to_str().expect("utf8"), &[], &gw_env);
    let _publisher = Proc::spawn(env!("CARGO_BIN_EXE_order-publisher"), &[], &pub_env);
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

    // The reconciliation's first cycle runs at start: let it finish first, so the order reaches us by its push
    // alone (a scan row carries no trace, and whichever row comes first makes the new_order).
    let metrics = format!("http://127.0.0.1:{pub_port}/metrics");
    let started = std::time::Instant::now();
    loop {
        let text = reqwest::get(&metrics)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        if text
            .lines()
            .any(|l| l.starts_with("periodic_runs_total") && l.contains("task=\"reconcile\""))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the first reconciliation cycle did not end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut order = SeedOrder::example(stack.shop, "TRACE0000001", ITEM, SKU);
    order.order_status = "READY_TO_SHIP".into();
    stack.sandbox.seed_orders(vec![order]).await.expect("seed");
    let got = stack.pull_until(1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1);
    // The push's own row: the order-list scan may have recorded the same order too (its row has no trace).
    let inbox: Option<String> = sqlx::query_scalar(
        "SELECT traceparent FROM push_inbox WHERE order_sn = 'TRACE0000001' AND source = $1",
    )
    .bind(push_inbox::Source::Push)
    .fetch_one(&stack.db.pool)
    .await
    .expect("inbox row");
    let inbox = inbox.expect("the gateway stored the push's traceparent");
    let published = got[0]
        .attributes
        .get("traceparent")
        .expect("new_order carries a traceparent");
    assert_eq!(
        trace_id(published),
        trace_id(&inbox),
        "one trace from the push to the new_order"
    );
    assert_eq!(trace_id(&inbox).len(), 32);
}
