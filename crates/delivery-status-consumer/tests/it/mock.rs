//! Unit-level consumer tests on librdkafka's in-process mock cluster (no broker process): the skip path and the
//! dead-letter path commit their offsets, write nothing else and call Shopee never.

use std::time::Duration;

use rdkafka::mocking::MockCluster;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skips_and_invalid_events_are_committed_without_shopee_calls() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("deliveries.out", 2, 1).expect("topic");
    let env = Env::new(&cluster.bootstrap_servers(), "deliveries.out").await;
    let mut events: Vec<(String, Vec<u8>)> = (0..500)
        .map(|i| {
            (
                format!("ORDR-X{i}"),
                serde_json::to_vec(&other_channel(i)).unwrap(),
            )
        })
        .collect();
    events.push(("ORDR-1".into(), b"\x00\x01 garbage".to_vec()));
    events.push(("ORDR-2".into(), br#"{"sales_channel": "shopee"}"#.to_vec()));
    events.push((
        "ORDR-3".into(),
        serde_json::to_vec(&event("delivery.ready", "UNKNOWN1", "ORDR-3")).unwrap(),
    ));
    env.send_raw(&events).await;
    let group = "g-mock";
    let running = env.start(group);
    wait_until(
        "both bad events dead-lettered",
        Duration::from_secs(30),
        || async { env.dead_letters().await.len() == 2 },
    )
    .await;
    wait_until("every offset committed", Duration::from_secs(30), || async {
        tokio::task::block_in_place(|| env.committed_vs_end(group, 2))
            .iter()
            .all(|(done, end)| done == end)
    })
    .await;
    running.stop().await;
    let total: i64 = env.committed_vs_end(group, 2).iter().map(|(d, _)| d).sum();
    assert_eq!(total, 503);
    assert!(env.sandbox.journal().is_empty(), "no Shopee call");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);
    for (reference, reason, status) in env.dead_letters().await {
        assert!(reference.contains('@'), "{reference}: partition@offset");
        assert!(reason.starts_with("invalid delivery event"), "{reason}");
        assert_eq!(status, "parked");
    }
}
