//! The Kafka side: one thread polls a `BaseConsumer`, skips other channels on the spot, and hands Shopee events
//! to per-order lanes (tokio tasks); offsets are committed behind the work ([`crate::offsets`]).
//!
//! - Order: an event goes to the lane chosen by its key (the ORDR order id), so one order's events run one after
//!   another, in partition order, while other orders' events run on the other lanes.
//! - Commits: every `commit_interval`, asynchronously, the position of each partition (below its oldest pending
//!   event); synchronously on revocation and on stop. Never auto-commit, never auto-store.
//! - Rebalance (eager): on revoke the partitions stop starting work, running work is waited for (at most
//!   `drain_timeout`), their positions are committed, then they are released. Work that outlives the wait is left
//!   uncommitted: the next owner replays it, which is harmless (forward-only state, "already there" at Shopee).
//! - Stop: the same as revoking everything, then the consumer closes (leaving the group at once).
//! - Start of an assignment: the committed offset is read, and the partition's first message must be that offset;
//!   a fetch that begins past it, or brings nothing although the log goes further, is rewound
//!   ([`crate::offsets::Admit::Rewind`], [`crate::offsets::Offsets::overdue`]) rather than let the position jump
//!   over events nobody handled. That is a workaround for a broker quirk (tansu 0.6), behind
//!   [`ConsumerSettings::stalled_assignment_rewind`]; each rewind counts in `delivery_kafka_rewinds_total{topic,
//!   trigger}` (`trigger` = `fetch_past_committed` or `nothing_fetched`), which stays at 0 on Kafka.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, error::KafkaResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::event::{self, Peek};
use crate::offsets::{Admit, Offsets, StalledAssignmentRewind, Ticket};
use crate::process::{Decision, Failure, Processor};

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub brokers: String,
    pub topic: String,
    pub group_id: String,
    /// The group forgets a silent member after this (a killed replica's partitions move after it).
    pub session_timeout: Duration,
    /// Concurrent orders.
    pub lanes: usize,
    /// Events queued per lane before polling waits.
    pub lane_capacity: usize,
    /// On revoke or stop, how long running work is waited for.
    pub drain_timeout: Duration,
    pub commit_interval: Duration,
    /// The workaround for brokers that answer a fetch from inside a record batch with a later batch or nothing
    /// (`KAFKA_REWIND_STALLED_ASSIGNMENTS`; see [`StalledAssignmentRewind`]).
    pub stalled_assignment_rewind: StalledAssignmentRewind,
}

impl ConsumerSettings {
    pub fn new(brokers: &str, topic: &str, group_id: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group_id: group_id.to_owned(),
            session_timeout: Duration::from_secs(10),
            lanes: 32,
            lane_capacity: 64,
            drain_timeout: Duration::from_secs(5),
            commit_interval: Duration::from_millis(200),
            stalled_assignment_rewind: StalledAssignmentRewind::default(),
        }
    }
}

/// The offsets shared by the poll thread, the lanes and the rebalance callbacks.
struct Shared {
    offsets: Mutex<Offsets>,
    changed: Condvar,
}

impl Shared {
    fn new(rewind: StalledAssignmentRewind) -> Self {
        Self {
            offsets: Mutex::new(Offsets::new(rewind)),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Offsets> {
        self.offsets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Revokes `partitions`: no new work starts, running work gets up to `timeout`; returns their positions.
    fn drain(&self, partitions: &[i32], timeout: Duration) -> Vec<(i32, i64)> {
        let deadline = Instant::now() + timeout;
        let mut offsets = self.lock();
        offsets.begin_revoke(partitions);
        while offsets.running(partitions) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    running = offsets.running(partitions),
                    "in-flight delivery events did not finish in time; they will be replayed by the next owner"
                );
                break;
            }
            offsets = self
                .changed
                .wait_timeout(offsets, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        offsets.remove(partitions)
    }

    fn finish(&self, ticket: &Ticket, done: bool) {
        self.lock().finish(ticket, done);
        self.changed.notify_all();
    }
}

struct Ctx {
    shared: Arc<Shared>,
    topic: String,
    drain_timeout: Duration,
}

fn partitions(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

fn commit<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    topic: &str,
    positions: &[(i32, i64)],
    mode: CommitMode,
) {
    if positions.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::with_capacity(positions.len());
    for &(partition, offset) in positions {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(error = %e, "cannot build the offset commit");
            return;
        }
    }
    match consumer.commit(&tpl, mode) {
        Ok(()) => tracing::debug!(?positions, "offsets committed"),
        Err(e) => tracing::warn!(error = %e, ?positions, "offset commit failed; retried at the next commit"),
    }
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let partitions = || topic.partitions.values().filter(|p| p.partition >= 0);
        let lag: i64 = partitions()
            .filter(|p| p.desired && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        metrics::gauge!("delivery_consumer_lag", "topic" => self.topic.clone()).set(lag as f64);
        // The end of each log as the fetch responses report it (tansu 0.6's ListOffsets answers the base offset
        // of the last record batch + 1 instead, so it is not asked).
        let mut offsets = self.shared.lock();
        for p in partitions().filter(|p| p.hi_offset >= 0) {
            offsets.high_watermark(p.partition, p.hi_offset);
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions(tpl, &self.topic);
            tracing::info!(partitions = ?parts, "partitions revoked: finishing in-flight events, committing");
            let positions = self.shared.drain(&parts, self.drain_timeout);
            commit(consumer, &self.topic, &positions, CommitMode::Sync);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts = partitions(tpl, &self.topic);
                // Where each partition starts: its first message must be this offset (see `Offsets::admit`).
                let committed = committed_offsets(consumer, tpl);
                tracing::info!(partitions = ?parts, "partitions assigned");
                let mut offsets = self.shared.lock();
                for p in parts {
                    let start = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) if o >= 0 => Some(o),
                        _ => None,
                    };
                    offsets.assign(p, start);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "consumer group rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "offset commit failed");
        }
    }
}

/// The group's committed offsets of `tpl` (a few tries). Without them a fetch that begins past the committed
/// offset cannot be told from one in sequence.
fn committed_offsets(consumer: &BaseConsumer<Ctx>, tpl: &TopicPartitionList) -> TopicPartitionList {
    for attempt in 1..=3 {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
            Ok(c) => return c,
            Err(e) => tracing::warn!(error = %e, attempt, "cannot read committed offsets at assignment"),
        }
    }
    tracing::error!("committed offsets unknown: this assignment starts wherever the client fetches from");
    TopicPartitionList::new()
}

/// One Shopee (or unreadable) event on its way to a lane.
struct Work {
    ticket: Ticket,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

/// The running consumer.
pub struct ConsumerHandle {
    poller: std::thread::JoinHandle<()>,
    lanes: Vec<JoinHandle<()>>,
}

impl ConsumerHandle {
    /// Waits until the consumer stopped (after the shutdown token fired) and every lane ended.
    pub async fn join(self) {
        let poller = self.poller;
        if tokio::task::spawn_blocking(move || poller.join())
            .await
            .map_or(true, |r| r.is_err())
        {
            tracing::error!("the kafka poll thread panicked");
        }
        for lane in self.lanes {
            let _ = lane.await;
        }
    }
}

/// Joins the group and starts consuming; stops (finishing in-flight work and committing) when `shutdown` fires.
pub fn start(
    settings: ConsumerSettings,
    processor: Processor,
    shutdown: CancellationToken,
) -> anyhow::Result<ConsumerHandle> {
    let shared = Arc::new(Shared::new(settings.stalled_assignment_rewind));
    let ctx = Ctx {
        shared: shared.clone(),
        topic: settings.topic.clone(),
        drain_timeout: settings.drain_timeout,
    };
    let session_ms = settings.session_timeout.as_millis().to_string();
    let heartbeat_ms = (settings.session_timeout.as_millis() / 5).max(100).to_string();
    let consumer: BaseConsumer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("client.id", format!("{}-{}", crate::NAME, std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", &session_ms)
        .set("heartbeat.interval.ms", &heartbeat_ms)
        // The rebalance timeout: how long the group waits for members to rejoin (they drain first).
        .set("max.poll.interval.ms", "60000")
        .set("allow.auto.create.topics", "false")
        // Also how soon an assignment that gets nothing learns where its log ends (`Offsets::overdue`).
        .set("statistics.interval.ms", "1000")
        .create_with_context(ctx)?;
    consumer.subscribe(&[&settings.topic])?;

    let mut senders = Vec::with_capacity(settings.lanes);
    let mut lanes = Vec::with_capacity(settings.lanes);
    for _ in 0..settings.lanes.max(1) {
        let (tx, rx) = mpsc::channel(settings.lane_capacity.max(1));
        senders.push(tx);
        lanes.push(tokio::spawn(lane(
            rx,
            shared.clone(),
            processor.clone(),
            shutdown.clone(),
        )));
    }
    let poller = std::thread::Builder::new()
        .name("kafka-poll".into())
        .spawn(move || poll_loop(&consumer, &senders, &shared, &settings, &shutdown))?;
    Ok(ConsumerHandle { poller, lanes })
}

/// The lane (0..lanes) an event runs on: by key, so one order's events run one after another.
pub fn lane_of(key: Option<&[u8]>, partition: i32, lanes: usize) -> usize {
    let mut h = DefaultHasher::new();
    match key {
        Some(k) => k.hash(&mut h),
        None => partition.hash(&mut h),
    }
    (h.finish() % lanes as u64) as usize
}

fn traceparent(msg: &BorrowedMessage<'_>) -> Option<String> {
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == "traceparent")
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

fn poll_loop(
    consumer: &BaseConsumer<Ctx>,
    lanes: &[mpsc::Sender<Work>],
    shared: &Shared,
    settings: &ConsumerSettings,
    shutdown: &CancellationToken,
) {
    let topic = settings.topic.as_str();
    let mut last_commit = Instant::now();
    let mut last_full_commit = Instant::now();
    let mut last_error: Option<Instant> = None;
    let mut skipped: u64 = 0;
    let mut invalid_peeks: u64 = 0;
    let mut stale: u64 = 0;
    tracing::info!(topic, group = %settings.group_id, "consuming delivery events");
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) => {
                tracing::warn!(error = %e, "kafka poll failed");
                last_error = Some(Instant::now());
            }
            Some(Err(_)) => {}
            Some(Ok(msg)) => {
                let (partition, offset) = (msg.partition(), msg.offset());
                let admit = shared.lock().admit(partition, offset);
                match admit {
                    Admit::Take => {}
                    Admit::Drop => {
                        stale += 1;
                        continue;
                    }
                    Admit::Rewind(to) => {
                        tracing::info!(
                            partition,
                            got = offset,
                            seek = to,
                            "the fetch began past the committed offset; rewinding"
                        );
                        rewind(consumer, shared, topic, partition, to, "fetch_past_committed");
                        continue;
                    }
                }
                let payload = msg.payload().unwrap_or_default();
                match event::peek(payload) {
                    Peek::OtherChannel => {
                        shared.lock().skipped(partition, offset);
                        skipped += 1;
                    }
                    peek @ (Peek::Shopee | Peek::Invalid) => {
                        if peek == Peek::Invalid {
                            invalid_peeks += 1;
                        }
                        let Some(ticket) = shared.lock().begin(partition, offset) else {
                            continue;
                        };
                        let work = Work {
                            ticket,
                            payload: payload.to_vec(),
                            traceparent: traceparent(&msg),
                        };
                        let lane = lane_of(msg.key(), partition, lanes.len());
                        if lanes[lane].blocking_send(work).is_err() {
                            tracing::error!("delivery lanes are gone; stopping the consumer");
                            break;
                        }
                    }
                }
            }
        }
        if last_commit.elapsed() >= settings.commit_interval {
            if skipped > 0 {
                metrics::counter!("delivery_events_total", "outcome" => "skipped_channel").increment(skipped);
                skipped = 0;
            }
            if stale > 0 {
                tracing::debug!(
                    count = stale,
                    "messages dropped: of a partition no longer ours, or below the committed offset"
                );
                metrics::counter!("delivery_kafka_stale_messages_total").increment(stale);
                stale = 0;
            }
            if invalid_peeks > 0 {
                tracing::debug!(
                    count = invalid_peeks,
                    "unreadable events sent to a lane for dead-lettering"
                );
                invalid_peeks = 0;
            }
            // Now and then everything again, in case an asynchronous commit was lost.
            let full = last_full_commit.elapsed() >= Duration::from_secs(5);
            if full {
                last_full_commit = Instant::now();
            }
            let positions = shared.lock().to_commit(full);
            commit(consumer, topic, &positions, CommitMode::Async);
            rewind_overdue(consumer, shared, topic);
            last_commit = Instant::now();
        }
    }
    if skipped > 0 {
        metrics::counter!("delivery_events_total", "outcome" => "skipped_channel").increment(skipped);
    }
    tracing::info!("stopping: finishing in-flight delivery events");
    let parts = shared.lock().assigned();
    let positions = shared.drain(&parts, settings.drain_timeout);
    commit(consumer, topic, &positions, CommitMode::Sync);
    consumer.unsubscribe();
    tracing::info!(?positions, "delivery consumer stopped; offsets committed");
}

/// Seeks `partition` back to `to`, in front of its committed offset (see `crate::offsets`); `trigger` says why.
fn rewind(
    consumer: &BaseConsumer<Ctx>,
    shared: &Shared,
    topic: &str,
    partition: i32,
    to: i64,
    trigger: &'static str,
) {
    match consumer.seek(topic, partition, Offset::Offset(to), Duration::from_secs(5)) {
        Ok(()) => {
            shared.lock().rewound(partition, to);
            metrics::counter!("delivery_kafka_rewinds_total", "topic" => topic.to_owned(), "trigger" => trigger)
                .increment(1);
        }
        // The next message of the partition, or the next look, asks again.
        Err(e) => tracing::warn!(error = %e, partition, "cannot rewind the partition"),
    }
}

/// Rewinds the partitions whose first message is overdue although their log goes past the committed offset.
fn rewind_overdue(consumer: &BaseConsumer<Ctx>, shared: &Shared, topic: &str) {
    let overdue = shared.lock().overdue(Instant::now());
    for o in overdue {
        tracing::info!(
            partition = o.partition,
            committed = o.committed,
            high = o.high,
            seek = o.rewind_to,
            "nothing fetched although the log goes past the committed offset; rewinding"
        );
        rewind(
            consumer,
            shared,
            topic,
            o.partition,
            o.rewind_to,
            "nothing_fetched",
        );
    }
}

async fn lane(
    mut rx: mpsc::Receiver<Work>,
    shared: Arc<Shared>,
    processor: Processor,
    stop: CancellationToken,
) {
    while let Some(work) = rx.recv().await {
        if !shared.lock().start(&work.ticket) {
            continue;
        }
        let span = tracing::info_span!(
            "delivery.event",
            kafka.partition = work.ticket.partition,
            kafka.offset = work.ticket.offset,
            order.sn = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        service_runtime::telemetry::continue_trace(&span, work.traceparent.as_deref());
        // Boxed: the future (sqlx + reqwest inside) is too deep to lay out inline.
        let done = Box::pin(handle(&processor, &shared, &work, &stop).instrument(span)).await;
        shared.finish(&work.ticket, done);
    }
}

/// Runs one event to a decision and records it; `false` = abandoned (not committable).
async fn handle(processor: &Processor, shared: &Shared, work: &Work, stop: &CancellationToken) -> bool {
    let keep_trying = || !stop.is_cancelled() && shared.lock().owns(&work.ticket);
    let mut backoff = Duration::from_millis(100);
    let position = format!("{}@{}", work.ticket.partition, work.ticket.offset);
    let decision = loop {
        match Box::pin(processor.handle(&work.payload, stop)).await {
            Ok(d) => break d,
            Err(Failure::Abandoned) => return false,
            Err(Failure::Store(e)) if !e.is_transient() => {
                // The database will never take it: park it rather than block the order (and the commits).
                break Decision::Park {
                    reference: position.clone(),
                    reason: format!("cannot be recorded: {e}"),
                };
            }
            Err(Failure::Store(e)) => {
                tracing::warn!(error = %e, "cannot record a delivery event; retrying");
                if !keep_trying() || !pause(&mut backoff, stop).await {
                    return false;
                }
            }
        }
    };
    let parked = match &decision {
        Decision::Park { reference, reason } => Some((reference.clone(), reason.clone())),
        Decision::Invalid { reason } => {
            tracing::warn!(reason = %reason, "invalid delivery event dead-lettered");
            Some((position.clone(), format!("invalid delivery event: {reason}")))
        }
        _ => None,
    };
    if let Some((reference, reason)) = parked {
        let payload = dead_letter_payload(&work.payload);
        while let Err(e) = processor.store().park(&reference, &reason, &payload).await {
            if !e.is_transient() {
                tracing::error!(error = %e, reference = %reference, reason = %reason,
                    "delivery event can be neither applied nor parked; dropped");
                metrics::counter!("delivery_events_total", "outcome" => "dropped").increment(1);
                return true;
            }
            tracing::warn!(error = %e, "cannot park a delivery event; retrying");
            if !keep_trying() || !pause(&mut backoff, stop).await {
                return false;
            }
        }
    }
    tracing::Span::current().record("outcome", decision.outcome());
    metrics::counter!("delivery_events_total", "outcome" => decision.outcome()).increment(1);
    true
}

/// Sleeps `backoff` (doubling it, up to 5 s); `false` when stopped meanwhile.
async fn pause(backoff: &mut Duration, stop: &CancellationToken) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = stop.cancelled() => false,
    }
}

/// The event as stored in the dead letter: its JSON when it is JSON (so a redrive can replay it), else the text.
pub fn dead_letter_payload(payload: &[u8]) -> serde_json::Value {
    // JSONB holds any JSON but NUL (`\u0000`): such payloads are kept as text, NULs replaced.
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(v) if !v.to_string().contains("\\u0000") => v,
        _ => {
            let text = String::from_utf8_lossy(payload);
            let cut: String = text
                .chars()
                .take(64 * 1024)
                .map(|c| if c == '\0' { char::REPLACEMENT_CHARACTER } else { c })
                .collect();
            serde_json::json!({ "raw": cut })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_order_always_lands_on_one_lane() {
        let a = lane_of(Some(b"ORDR-1"), 0, 32);
        for _ in 0..10 {
            assert_eq!(lane_of(Some(b"ORDR-1"), 0, 32), a);
        }
        let spread: std::collections::HashSet<usize> = (0..1000)
            .map(|i| lane_of(Some(format!("ORDR-{i}").as_bytes()), 0, 32))
            .collect();
        assert!(spread.len() > 24, "keys spread over the lanes: {}", spread.len());
    }

    #[test]
    fn dead_letters_keep_json_and_quote_the_rest() {
        assert_eq!(dead_letter_payload(br#"{"a":1}"#), serde_json::json!({"a": 1}));
        assert_eq!(
            dead_letter_payload(b"\xffnot json\x00"),
            serde_json::json!({"raw": "\u{fffd}not json\u{fffd}"})
        );
        assert_eq!(
            dead_letter_payload(br#"{"a":"x\u0000"}"#),
            serde_json::json!({"raw": "{\"a\":\"x\\u0000\"}"})
        );
    }
}
