//! The broker-quirk workaround (`KAFKA_REWIND_STALLED_ASSIGNMENTS`, on by default) on a broker without the quirk.
//!
//! tansu 0.6 answers a fetch from inside a record batch with the next batch, or with nothing when it is the last
//! one; the consumer rewinds such an assignment (`offsets::StalledAssignmentRewind`). librdkafka's mock cluster
//! speaks the Kafka protocol and answers as Kafka does (the batch that holds the offset; the client drops what lies
//! before it). On it, with the workaround on, every event from the committed offset on is handled exactly once,
//! none below it, and `delivery_kafka_rewinds_total` for the topic stays at 0.

use std::collections::HashMap;
use std::time::Duration;

use delivery_status_consumer::consumer::{self, ConsumerSettings};
use delivery_status_consumer::offsets::StalledAssignmentRewind;
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// A topic of this test's own: the rewind counter is labelled by topic, and other tests share the process.
const TOPIC: &str = "deliveries.out.quirk-free";

/// `delivery_kafka_rewinds_total` for [`TOPIC`], and whether the recorder saw the consumer's applied events.
fn rewinds_and_recorder_live() -> (u64, bool) {
    let text = service_runtime::telemetry::render_metrics();
    let rewinds = text
        .lines()
        .filter(|l| {
            l.starts_with("delivery_kafka_rewinds_total{") && l.contains(&format!("topic=\"{TOPIC}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64;
    let live = text
        .lines()
        .any(|l| l.starts_with("delivery_events_total{") && l.contains("outcome=\"applied\""));
    (rewinds, live)
}

/// One record batch of `delivery.ready` events for `sns` (one `send`, one flush).
async fn send_batch(env: &Env, sns: &[String]) {
    let events: Vec<_> = sns
        .iter()
        .map(|sn| {
            (
                format!("ORDR-{sn}"),
                event("delivery.ready", sn, &format!("ORDR-{sn}")),
            )
        })
        .collect();
    env.send(&events).await;
}

/// Runs the consumer (workaround on) from `committed` until every event of `sns[committed_index..]` took effect and
/// the group's position reached `end`.
async fn consume_from(env: &Env, group: &str, committed: i64, sns: &[String], end: i64) {
    env.commit(group, 0, committed);
    let broker_answer = tokio::task::block_in_place(|| env.first_fetched_from(0, committed));
    assert_eq!(
        broker_answer,
        Some(committed),
        "a fetch from inside a batch begins at the offset itself on this broker"
    );
    let mut settings = ConsumerSettings::new(&env.brokers, &env.topic, group);
    assert_eq!(
        settings.stalled_assignment_rewind,
        StalledAssignmentRewind::Enabled,
        "on by default"
    );
    settings.session_timeout = Duration::from_secs(6);
    let shutdown = CancellationToken::new();
    let handle = consumer::start(settings, env.processor(), shutdown.clone()).expect("consumer");
    wait_until(
        "every event from the committed offset on applied",
        Duration::from_secs(30),
        || async {
            let states = env.states().await;
            sns.iter()
                .all(|sn| states.get(sn).map(String::as_str) == Some("arranged"))
        },
    )
    .await;
    wait_until("every offset committed", Duration::from_secs(30), || async {
        tokio::task::block_in_place(|| env.committed_vs_end(group, 1)) == vec![(end, end)]
    })
    .await;
    shutdown.cancel();
    handle.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quirk_free_broker_never_triggers_the_rewind() {
    service_runtime::telemetry::metrics_handle();
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let env = Env::new(&cluster.bootstrap_servers(), TOPIC).await;
    let sns: Vec<String> = (0..180).map(|i| format!("QF{i:03}")).collect();
    env.seed_orders(&sns, None).await;
    // Offsets 0..60 and 60..120; the group stopped at 30, inside the first batch (tansu skips to 60 here).
    send_batch(&env, &sns[..60]).await;
    send_batch(&env, &sns[60..120]).await;
    consume_from(&env, "g-quirk-free-first", 30, &sns[30..120], 120).await;

    // Offsets 120..180, the last batch; a group stopped at 150, inside it (tansu answers with nothing here). Another
    // group: the mock cluster refuses an outside commit while it still counts the first consumer as a member.
    send_batch(&env, &sns[120..]).await;
    consume_from(&env, "g-quirk-free-last", 150, &sns[150..], 180).await;

    let mut ship_orders: HashMap<String, usize> = HashMap::new();
    for call in env.sandbox.journal().iter().filter(|j| j.api == SHIP_ORDER) {
        let sn = call.request["order_sn"].as_str().unwrap_or_default().to_owned();
        *ship_orders.entry(sn).or_insert(0) += 1;
    }
    let states = env.states().await;
    for (i, sn) in sns.iter().enumerate() {
        let handled = (30..120).contains(&i) || i >= 150;
        assert_eq!(
            ship_orders.get(sn).copied().unwrap_or(0),
            usize::from(handled),
            "{sn} (offset {i}): shipped exactly once from the committed offset on, never below it"
        );
        let expected = if handled { "arranged" } else { "ready_to_ship" };
        assert_eq!(states[sn], expected, "{sn}");
    }
    let (rewinds, live) = rewinds_and_recorder_live();
    assert!(live, "the metrics recorder sees the consumer's counters");
    assert_eq!(rewinds, 0, "the rewind never fired on a broker without the quirk");
}
