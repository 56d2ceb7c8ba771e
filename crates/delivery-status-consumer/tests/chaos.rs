//! Chaos scenarios of the delivery flow (`cargo xtask chaos`; quality-bar.md R5 and R9).
//!
//! The real delivery-status-consumer binary runs as separate processes against a tansu broker process, real
//! PostgreSQL and Redis, and the Shopee sandbox over HTTP; replicas die by SIGKILL. Sizes come from
//! `CHAOS_PROFILE` (short in `make test`, full on demand). Each replica logs to its own file, kept when a scenario
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "it/workload.rs"]
mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shopee_sandbox::Fault;
use test_support::chaos::{Profile, Report};
use test_support::kafka::TansuBroker;
use test_support::{Proc, free_port, wait_for_status};

use support::{Env, binary_env};
use workload::{Workload, events_without_effect, journal_by_order, shopee_calls, shopee_state, workload};

const TOPIC: &str = "deliveries.out";

/// Consumer replicas: the real binary, one process per slot, each run logging to its own file.
struct Replicas {
    env: Vec<(&'static str, String)>,
    ports: Vec<u16>,
    procs: Vec<Option<Proc>>,
    logs: PathBuf,
    runs: usize,
}

impl Replicas {
    fn new(env: &Env, group: &str, n: usize) -> Self {
        let logs = std::env::temp_dir().join(format!(
            "chaos-delivery-{group}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&logs).expect("log directory");
        let mut base = binary_env(env, group, 0);
        base.retain(|(k, _)| *k != "RUST_LOG" && *k != "HTTP_ADDR");
        // Assignments, revocations and rewinds show at info.
        base.push(("RUST_LOG", "warn,delivery_status_consumer=info".into()));
        base.push(("LOG_FORMAT", "json".into()));
        Self {
            env: base,
            ports: (0..n).map(|_| free_port()).collect(),
            procs: (0..n).map(|_| None).collect(),
            logs,
            runs: 0,
        }
    }

    /// Starts the replica of `slot`; its pid.
    fn spawn(&mut self, slot: usize) -> u32 {
        self.runs += 1;
        let log_path = self.logs.join(format!("replica{slot}-run{}.log", self.runs));
        let log = std::fs::File::create(&log_path).expect("replica log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_delivery-status-consumer"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("HTTP_ADDR", format!("127.0.0.1:{}", self.ports[slot]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().expect("start delivery-status-consumer");
        let pid = child.id();
        self.procs[slot] = Some(Proc {
            child,
            name: "delivery-status-consumer".into(),
        });
        pid
    }

    async fn wait_ready(&self, slot: usize) {
        let url = format!("http://127.0.0.1:{}/health/ready", self.ports[slot]);
        wait_for_status(&url, 200, Duration::from_secs(30)).await;
    }

    /// SIGKILL; the killed pid.
    fn kill(&mut self, slot: usize) -> u32 {
        let mut p = self.procs[slot].take().expect("replica running");
        let pid = p.pid();
        p.signal("KILL");
        p.wait_exit(Duration::from_secs(10))
            .expect("a killed replica exits");
        pid
    }

    /// SIGTERM to every replica; each one's exit status (None: still running after `timeout`, then killed).
    fn stop_all(&mut self, timeout: Duration) -> Vec<Option<ExitStatus>> {
        for p in self.procs.iter().flatten() {
            p.signal("TERM");
        }
        let deadline = Instant::now() + timeout;
        self.procs
            .iter_mut()
            .map(|p| {
                let p = p.as_mut()?;
                p.wait_exit(deadline.saturating_duration_since(Instant::now()))
            })
            .collect()
    }

    /// Log lines of every run of every replica that contain `needle`.
    fn log_lines(&self, needle: &str) -> usize {
        std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .map(|text| text.lines().filter(|l| l.contains(needle)).count())
            .sum()
    }

    /// Keeps the logs when the scenario failed or `CHAOS_KEEP_LOGS` is set (and says where), removes them otherwise.
    fn finish_logs(&self, report: &mut Report, passed: bool) {
        if passed && std::env::var_os("CHAOS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.logs);
        } else {
            report.did(format!("replica logs in {}", self.logs.display()));
        }
    }
}

/// How the orders ended: in our database, at Shopee, and what Shopee was asked.
struct Outcome {
    without_effect: usize,
    short_in_db: usize,
    short_at_shopee: usize,
    steps_not_once: usize,
    calls: workload::Calls,
    refused: usize,
}

async fn outcome(env: &Env, w: &Workload) -> Outcome {
    let states = env.states().await;
    let (changed, refused) = journal_by_order(env);
    let mut short_at_shopee = 0;
    let mut steps_not_once = 0;
    for sn in &w.orders {
        let view = env.sandbox.order(env.shop_id, sn).expect("order at Shopee");
        if shopee_state(&view) != w.expected[sn] {
            short_at_shopee += 1;
        }
        if changed.get(sn).copied().unwrap_or(0) != w.steps[sn] {
            steps_not_once += 1;
        }
    }
    Outcome {
        without_effect: events_without_effect(w, &states),
        short_in_db: behind(w, &states),
        short_at_shopee,
        steps_not_once,
        calls: shopee_calls(env),
        refused: refused.values().sum(),
    }
}

/// Orders whose recorded state is not their furthest legal state.
fn behind(w: &Workload, states: &HashMap<String, String>) -> usize {
    w.expected
        .iter()
        .filter(|(sn, st)| states.get(*sn).map(String::as_str) != Some(**st))
        .count()
}

/// Waits until every order is at its furthest legal state and every offset is committed (the effects can be
/// ahead: a replica killed after applying events leaves them uncommitted, the next owner replays them as no-ops),
/// or `timeout`; how long it took, if it got there.
async fn wait_all_applied(
    env: &Env,
    w: &Workload,
    group: &str,
    partitions: i32,
    timeout: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if behind(w, &env.states().await) == 0 && uncommitted(env, group, partitions) == 0 {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Offsets produced that the group has not committed, summed over the partitions.
fn uncommitted(env: &Env, group: &str, partitions: i32) -> u64 {
    tokio::task::block_in_place(|| env.committed_vs_end(group, partitions))
        .iter()
        .map(|(done, end)| (end - done).max(0) as u64)
        .sum()
}

/// `orders` orders' shuffled events with about as many other-channel events as `total` asks for.
fn sized_workload(prefix: &str, orders: usize, total: usize, seed: u64) -> Workload {
    let shopee_only = workload(prefix, orders, 0, seed).events.len();
    workload(prefix, orders, total.saturating_sub(shopee_only), seed)
}

fn count(report: &mut Report, name: &str, n: usize) {
    report.count(name, n as u64);
}

/// R9: three replicas of the real binary in one group; every `kill_every` one of them is killed with SIGKILL (in
/// turn) while the events stream in, and started again once the group has expired it (as a Deployment replaces a
/// pod). Passes when every event took effect and the repeated Shopee calls changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos scenario: cargo xtask chaos"]
async fn r9_three_consumers_one_killed_repeatedly_no_event_without_effect() {
    let profile = Profile::from_env();
    let total = profile.pick(2_000, 50_000);
    let kill_every = profile.pick(Duration::from_secs(10), Duration::from_secs(30));
    // Events stream in over this long, so that the kills land in the middle of the flow.
    let stream_for = profile.pick(Duration::from_secs(40), Duration::from_secs(150));
    let drain_timeout = profile.pick(Duration::from_secs(60), Duration::from_secs(180));
    // The session timeout is 6 s (binary_env): the replacement starts once the group expired the dead replica.
    let restart_after = Duration::from_millis(7500);
    // Shopee answers in about this long; the replicas then take a moment over each burst, and that is when one dies.
    let shopee_latency = Duration::from_millis(100);
    let kill_after_burst = Duration::from_millis(200);
    let mut report = Report::new(
        "R9",
        &format!(
            "Kafka: 3 consumers in the group, one killed (SIGKILL) every {} s over {total} delivery events",
            kill_every.as_secs()
        ),
    );
    let partitions = 6;
    let broker = TansuBroker::start();
    broker.create_topic(TOPIC, partitions as u32);
    report.did(format!(
        "started tansu on {} (topic {TOPIC}, {partitions} partitions)",
        broker.bootstrap()
    ));
    let env = Arc::new(Env::new(&broker.bootstrap(), TOPIC).await);
    env.sandbox.inject_fault(Fault::latency(shopee_latency));
    report.did(format!(
        "Shopee sandbox answers every call after {} ms",
        shopee_latency.as_millis()
    ));
    // About 3.2 Shopee events per order (shuffled, 20% duplicated); the rest other channels.
    let w = sized_workload("R9", total / 5, total, 9);
    env.seed_orders(&w.orders, None).await;
    report.did(format!(
        "seeded {} READY_TO_SHIP orders at Shopee and in PostgreSQL",
        w.orders.len()
    ));

    let group = "chaos-r9";
    let mut replicas = Replicas::new(&env, group, 3);
    let pids: Vec<u32> = (0..3).map(|slot| replicas.spawn(slot)).collect();
    for slot in 0..3 {
        replicas.wait_ready(slot).await;
    }
    report.did(format!("started 3 consumers (pids {pids:?}), group {group}"));

    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn({
        let (env, sent) = (env.clone(), sent.clone());
        let events = w.events.clone();
        // In bursts, as the fleet's outbox flushes: record batches of dozens of events per partition, so a replica
        // dies with some of a batch done (the next owner starts inside the batch).
        let tick = Duration::from_secs(2);
        let chunk = events
            .len()
            .div_ceil((stream_for.as_millis() / tick.as_millis()).max(1) as usize);
        async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for part in events.chunks(chunk.max(1)) {
                every.tick().await;
                env.send(part).await;
                sent.fetch_add(part.len(), Ordering::Relaxed);
            }
        }
    });
    report.did(format!(
        "streaming {} events over about {} s",
        w.events.len(),
        stream_for.as_secs()
    ));

    let mut kills = 0;
    let mut victim = 0;
    let mut next_kill = started + kill_every;
    while !sender.is_finished() {
        if Instant::now() < next_kill {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // The worst moment: just after a burst landed, while the replicas work through it.
        let before = sent.load(Ordering::Relaxed);
        while sent.load(Ordering::Relaxed) == before && !sender.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(kill_after_burst).await;
        let pid = replicas.kill(victim);
        kills += 1;
        report.did(format!(
            "killed consumer {victim} (pid {pid}) with SIGKILL, {} events sent",
            sent.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(restart_after).await;
        let pid = replicas.spawn(victim);
        report.did(format!("restarted consumer {victim} (pid {pid})"));
        victim = (victim + 1) % 3;
        next_kill += kill_every;
    }
    sender.await.expect("the producer task");
    let last_send = Instant::now();
    report.did(format!(
        "all {} events sent in {:.1} s",
        w.events.len(),
        started.elapsed().as_secs_f64()
    ));
    let applied = wait_all_applied(&env, &w, group, partitions, drain_timeout).await;
    match applied {
        Some(t) => report.did(format!(
            "every order at its final state and every offset committed {:.1} s after the last send",
            t.as_secs_f64()
        )),
        None => report.did(format!(
            "orders short of their final state or offsets not committed {} s after the last send",
            drain_timeout.as_secs()
        )),
    }
    let exits = replicas.stop_all(Duration::from_secs(20));
    report.did(format!("stopped the 3 consumers with SIGTERM: {exits:?}"));
    let took = last_send.duration_since(started);

    let o = outcome(&env, &w).await;
    let not_committed = uncommitted(&env, group, partitions);
    let dead_letters = env.dead_letters().await.len();
    // A new owner starting inside a record batch, answered with the next batch or with nothing (tansu 0.6).
    let rewinds = replicas.log_lines("; rewinding");
    let gaps = replicas.log_lines("the log has no events between");
    count(&mut report, "events sent", w.events.len());
    count(&mut report, "Shopee events", w.shopee_events);
    count(
        &mut report,
        "other-channel events",
        w.events.len() - w.shopee_events,
    );
    count(&mut report, "orders", w.orders.len());
    count(&mut report, "consumers killed", kills);
    count(&mut report, "stream seconds", took.as_secs() as usize);
    count(&mut report, "events without effect", o.without_effect);
    count(&mut report, "orders short of final state (ours)", o.short_in_db);
    count(
        &mut report,
        "orders short of final state (Shopee)",
        o.short_at_shopee,
    );
    count(&mut report, "Shopee state changes", o.calls.accepted);
    count(&mut report, "duplicate Shopee calls", o.calls.duplicates);
    count(&mut report, "status regressions", o.calls.regressions);
    count(&mut report, "steps applied twice", o.calls.steps_applied_twice);
    count(&mut report, "dead letters", dead_letters);
    count(&mut report, "offsets not committed", not_committed as usize);
    count(&mut report, "rewinds to the committed offset", rewinds);
    count(&mut report, "log gaps accepted", gaps);
    report.check("0 events without effect", o.without_effect == 0);
    report.check(
        "every order at its furthest legal state, ours and at Shopee",
        o.short_in_db == 0 && o.short_at_shopee == 0,
    );
    report.check(
        "duplicate Shopee calls harmless: each step changed Shopee exactly once, 0 status regressions",
        o.steps_not_once == 0 && o.calls.steps_applied_twice == 0 && o.calls.regressions == 0,
    );
    report.check(
        "every refused Shopee call was a duplicate",
        o.refused == o.calls.duplicates,
    );
    report.check("nothing dead-lettered", dead_letters == 0);
    report.check("every offset committed after the clean stop", not_committed == 0);
    report.check(
        "each consumer exits 0 on SIGTERM",
        exits.iter().all(|e| e.is_some_and(|s| s.success())),
    );
    report.check(
        format!("at least {} kills", profile.pick(3, 4)),
        kills >= profile.pick(3, 4),
    );
    let passed = report.passed();
    replicas.finish_logs(&mut report, passed);
    report.finish();
}

/// R5: the events of each order shuffled (delivered before on_the_way, canceled late), duplicated in part and
/// interleaved across orders, consumed by two replicas of the real binary. Passes when no regression reached
/// Shopee and every order ends at its furthest legal state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos scenario: cargo xtask chaos"]
async fn r5_shuffled_events_never_move_an_order_backwards() {
    let profile = Profile::from_env();
    let orders = profile.pick(300, 1_000);
    let mut report = Report::new(
        "R5",
        &format!(
            "delivery events for {orders} orders, shuffled (delivered before on_the_way, canceled late), \
             2 consumers"
        ),
    );
    let partitions = 4;
    let broker = TansuBroker::start();
    broker.create_topic(TOPIC, partitions as u32);
    report.did(format!(
        "started tansu on {} (topic {TOPIC}, {partitions} partitions)",
        broker.bootstrap()
    ));
    let env = Env::new(&broker.bootstrap(), TOPIC).await;
    let w = workload("R5", orders, orders, 5);
    env.seed_orders(&w.orders, None).await;
    report.did(format!("seeded {orders} READY_TO_SHIP orders"));
    let group = "chaos-r5";
    let mut replicas = Replicas::new(&env, group, 2);
    let pids: Vec<u32> = (0..2).map(|slot| replicas.spawn(slot)).collect();
    for slot in 0..2 {
        replicas.wait_ready(slot).await;
    }
    report.did(format!("started 2 consumers (pids {pids:?})"));
    let started = Instant::now();
    env.send(&w.events).await;
    report.did(format!(
        "sent {} events ({} for Shopee orders, shuffled per order, 20% repeated)",
        w.events.len(),
        w.shopee_events
    ));
    let applied = wait_all_applied(
        &env,
        &w,
        group,
        partitions,
        profile.pick(Duration::from_secs(60), Duration::from_secs(120)),
    )
    .await;
    match applied {
        Some(_) => report.did(format!(
            "every order at its final state and every offset committed {:.1} s after the first send",
            started.elapsed().as_secs_f64()
        )),
        None => report.did("orders short of their final state or offsets not committed at the deadline"),
    }
    let exits = replicas.stop_all(Duration::from_secs(20));
    report.did(format!("stopped the consumers with SIGTERM: {exits:?}"));

    let o = outcome(&env, &w).await;
    let not_committed = uncommitted(&env, group, partitions);
    let dead_letters = env.dead_letters().await.len();
    let mut finals: Vec<(&str, usize)> = Vec::new();
    for st in w.expected.values() {
        match finals.iter_mut().find(|(s, _)| s == st) {
            Some((_, n)) => *n += 1,
            None => finals.push((st, 1)),
        }
    }
    finals.sort_unstable();
    report.did(format!("final states expected: {finals:?}"));
    count(&mut report, "orders", orders);
    count(&mut report, "Shopee events", w.shopee_events);
    count(
        &mut report,
        "other-channel events",
        w.events.len() - w.shopee_events,
    );
    count(&mut report, "status regressions", o.calls.regressions);
    count(&mut report, "Shopee state changes", o.calls.accepted);
    count(&mut report, "duplicate Shopee calls", o.calls.duplicates);
    count(&mut report, "orders short of final state (ours)", o.short_in_db);
    count(
        &mut report,
        "orders short of final state (Shopee)",
        o.short_at_shopee,
    );
    count(&mut report, "events without effect", o.without_effect);
    count(&mut report, "dead letters", dead_letters);
    count(&mut report, "offsets not committed", not_committed as usize);
    count(
        &mut report,
        "rewinds to the committed offset",
        replicas.log_lines("; rewinding"),
    );
    if let Some(t) = applied {
        count(
            &mut report,
            "ms to apply and commit everything",
            t.as_millis() as usize,
        );
    }
    report.check("0 status regressions sent to Shopee", o.calls.regressions == 0);
    report.check(
        "final state is the furthest legal state, ours and at Shopee",
        o.short_in_db == 0 && o.short_at_shopee == 0,
    );
    report.check(
        "each step reached Shopee exactly once",
        o.steps_not_once == 0 && o.calls.steps_applied_twice == 0,
    );
    report.check("nothing dead-lettered", dead_letters == 0);
    report.check("every offset committed", not_committed == 0);
    report.check(
        "each consumer exits 0 on SIGTERM",
        exits.iter().all(|e| e.is_some_and(|s| s.success())),
    );
    let passed = report.passed();
    replicas.finish_logs(&mut report, passed);
    report.finish();
}
