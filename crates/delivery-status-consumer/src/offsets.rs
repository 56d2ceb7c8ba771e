//! Which offsets may be committed: per partition, everything below the oldest event that is still pending.
//!
//! An event is *pending* from the moment it is fetched until its effect is applied, skipped or parked. Events run
//! concurrently (per order), so they finish out of order; the committed position is the lowest pending offset, or
//! one past the last fetched offset when nothing is pending. A crash therefore replays at most the events after
//! that position, and replaying is harmless because every effect is idempotent (forward-only state).
//!
//! Each assignment of a partition gets a new *epoch*. When a partition is revoked it first stops starting new work
//! ([`Offsets::begin_revoke`]), its running work is waited for, its position is committed and it is removed; a late
//! completion from an older epoch is ignored, so it can never move a newer owner's position.
//!
//! An assignment starts at the group's committed offset, which usually lies inside a record batch (positions are
//! committed per event). Kafka answers a fetch from there with the batch that contains it; a broker that answers
//! with the *next* batch instead (tansu 0.6 does) would make the consumer skip the rest of that batch. So the
//! first message of an assignment must be the committed offset itself: when it lies past it, the partition is
//! rewound ([`Admit::Rewind`]) further and further back until the committed offset comes in (what lies below it
//! is dropped, it was done), or until a fetch from offset 0 shows the events in between are really not in the log.
//! When that batch is the last one, such a broker answers with nothing at all: an assignment whose first message
//! is [overdue](Offsets::overdue) while the log goes past the committed offset is rewound the same way.
//!
//! That rewind is a workaround for a test broker, not something Kafka needs: it sits behind
//! [`StalledAssignmentRewind`] (`KAFKA_REWIND_STALLED_ASSIGNMENTS`). On a broker without the quirk it never fires:
//! the first message of an assignment is the committed offset itself (the mock-cluster test
//! `a_quirk_free_broker_never_triggers_the_rewind` counts it).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// One fetched event's claim on its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub partition: i32,
    pub offset: i64,
    epoch: u64,
}

/// What to do with a fetched message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Next in sequence (or a replay from an earlier offset): handle it.
    Take,
    /// Drop it: the partition is not ours (any more), its owner handles it; or, while rewinding, it lies below
    /// the committed offset (done already).
    Drop,
    /// The assignment's first message lies past the committed offset: drop it, seek the partition to this
    /// offset, and confirm with [`Offsets::rewound`].
    Rewind(i64),
}

/// Whether an assignment whose first message is not its committed offset is rewound (see the module doc).
///
/// `Enabled` is needed for brokers that answer a fetch from inside a record batch with a later batch, or with nothing
/// when it is the last batch (tansu 0.6). Kafka answers with the batch that holds the offset (the client drops what
/// lies before it), so there the first message *is* the committed offset and the rewind never fires; it only costs
/// one look at the end of the log per second while an assignment waits for its first message. Where the log
/// really has no record at the committed offset (a transaction marker, compaction) it fires once per assignment,
/// re-reads at most [`FIRST_REWIND`] events below it (dropped unread) and then takes the gap. `Disabled` trusts the
/// broker: the first message is taken wherever it lies (a jump past the committed offset is still logged and
/// counted as a gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalledAssignmentRewind {
    #[default]
    Enabled,
    Disabled,
}

impl StalledAssignmentRewind {
    /// `KAFKA_REWIND_STALLED_ASSIGNMENTS`.
    pub fn from_flag(enabled: bool) -> Self {
        if enabled { Self::Enabled } else { Self::Disabled }
    }
}

/// How far below the committed offset the first rewind seeks; each further one seeks four times as far.
pub const FIRST_REWIND: i64 = 256;

/// How long an assignment (or a rewind) waits for its first message before the end of the log is looked at.
pub const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(1);

/// How long after a look that found nothing to read the end of the log is looked at again.
const LOOK_AGAIN: Duration = Duration::from_secs(5);

/// A partition whose first message is overdue although its log goes past the committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue {
    pub partition: i32,
    pub committed: i64,
    /// The end of the log.
    pub high: i64,
    /// Where to seek.
    pub rewind_to: i64,
}

#[derive(Debug)]
struct Part {
    epoch: u64,
    pending: BTreeSet<i64>,
    running: u32,
    /// The next offset expected in sequence: the committed offset at assignment, then one past the last taken.
    next: Option<i64>,
    /// Whether the committed offset (or a message before it) came in: from then on offsets are in sequence.
    in_sequence: bool,
    /// The offset the last rewind of this assignment sought to.
    rewound_to: Option<i64>,
    /// Whether a message below the committed offset came in after a rewind (the fetch is now in front of it).
    below_seen: bool,
    /// When to look at the end of the log if the first message has not come by then.
    look_at: Instant,
    /// The end of the log (high watermark), as last reported.
    high: Option<i64>,
    committed: Option<i64>,
    revoking: bool,
}

impl Part {
    /// Where the next rewind seeks: [`FIRST_REWIND`] below `start`, then four times as far as the last one.
    fn rewind_target(&self, start: i64) -> i64 {
        let back = self
            .rewound_to
            .map_or(FIRST_REWIND, |r| (start - r).saturating_mul(4));
        start.saturating_sub(back).max(0)
    }

    /// Below every pending event and never past the sequence (after a replay, pending events may lie ahead).
    fn position(&self) -> Option<i64> {
        match (self.pending.first().copied(), self.next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug, Default)]
pub struct Offsets {
    parts: HashMap<i32, Part>,
    epochs: u64,
    rewind: StalledAssignmentRewind,
}

impl Offsets {
    pub fn new(rewind: StalledAssignmentRewind) -> Self {
        Self {
            rewind,
            ..Self::default()
        }
    }

    /// The partition is ours (again): a fresh epoch, starting from `committed` when the group has one.
    pub fn assign(&mut self, partition: i32, committed: Option<i64>) {
        self.epochs += 1;
        let epoch = self.epochs;
        self.parts.insert(
            partition,
            Part {
                epoch,
                pending: BTreeSet::new(),
                running: 0,
                next: committed,
                in_sequence: committed.is_none(),
                rewound_to: None,
                below_seen: false,
                look_at: Instant::now() + FIRST_MESSAGE_WAIT,
                high: None,
                committed: None,
                revoking: false,
            },
        );
    }

    pub fn assigned(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.parts.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Decides whether a fetched message is handled. The first message of an assignment must be its committed
    /// offset (see the module doc); later, offsets normally arrive in sequence, and a replay (an offset below the
    /// expected one) restarts the sequence there, so the position never passes a replayed message.
    pub fn admit(&mut self, partition: i32, offset: i64) -> Admit {
        let rewind = self.rewind;
        let Some(p) = self.parts.get_mut(&partition) else {
            return Admit::Drop;
        };
        let start = match p.next {
            Some(start) if !p.in_sequence => start,
            next => {
                if let Some(n) = next
                    && offset < n
                {
                    tracing::info!(
                        partition,
                        expected = n,
                        got = offset,
                        "the client replays from an earlier offset"
                    );
                }
                return Admit::Take;
            }
        };
        if offset < start && p.rewound_to.is_some() {
            // In front of the committed offset now: what comes before it was done already.
            p.below_seen = true;
            return Admit::Drop;
        }
        if offset > start
            && !p.below_seen
            && p.rewound_to != Some(0)
            && rewind == StalledAssignmentRewind::Enabled
        {
            return Admit::Rewind(p.rewind_target(start));
        }
        if offset > start {
            // Even a fetch from in front of it skips from below the committed offset to here: these offsets
            // are not in the log (compacted, deleted, transaction markers).
            tracing::warn!(
                partition,
                committed = start,
                got = offset,
                "the log has no events between the committed offset and this one"
            );
            metrics::counter!("delivery_kafka_offset_gaps_total").increment(1);
        } else if offset < start {
            tracing::info!(
                partition,
                expected = start,
                got = offset,
                "the client replays from before the committed offset"
            );
        } else if p.rewound_to.is_some() {
            tracing::info!(partition, committed = start, "rewound to the committed offset");
        }
        p.in_sequence = true;
        Admit::Take
    }

    /// The partition was sought to `offset` after [`Admit::Rewind`] or an [`Overdue`].
    pub fn rewound(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.rewound_to = Some(offset);
            p.below_seen = false;
            p.look_at = Instant::now() + FIRST_MESSAGE_WAIT;
        }
    }

    /// The end of the partition's log (its high watermark), as the client last saw it.
    pub fn high_watermark(&mut self, partition: i32, high: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.high = Some(high);
        }
    }

    /// Partitions that started at a committed offset, got no message by their time to look (after the
    /// assignment or the last rewind, [`FIRST_MESSAGE_WAIT`]; after a look, a while longer) and whose log goes
    /// past the committed offset: the caller rewinds them.
    pub fn overdue(&mut self, now: Instant) -> Vec<Overdue> {
        let mut out = Vec::new();
        if self.rewind == StalledAssignmentRewind::Disabled {
            return out;
        }
        for (&partition, p) in &mut self.parts {
            let (Some(committed), Some(high)) = (p.next, p.high) else {
                continue;
            };
            if p.in_sequence || p.below_seen || p.revoking || now < p.look_at || high <= committed {
                continue;
            }
            p.look_at = now + LOOK_AGAIN;
            out.push(Overdue {
                partition,
                committed,
                high,
                rewind_to: p.rewind_target(committed),
            });
        }
        out.sort_unstable_by_key(|o| o.partition);
        out
    }

    /// An event that needed no work (another channel): done at once.
    pub fn skipped(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition)
            && !p.revoking
        {
            p.next = Some(offset + 1);
        }
    }

    /// An event that needs work: pending until [`Offsets::finish`]. `None` when the partition is not ours.
    pub fn begin(&mut self, partition: i32, offset: i64) -> Option<Ticket> {
        let p = self.parts.get_mut(&partition)?;
        if p.revoking {
            return None;
        }
        p.pending.insert(offset);
        p.next = Some(offset + 1);
        Some(Ticket {
            partition,
            offset,
            epoch: p.epoch,
        })
    }

    /// Whether the work may start (the partition is still ours and not being revoked); counts it as running.
    pub fn start(&mut self, t: &Ticket) -> bool {
        match self.parts.get_mut(&t.partition) {
            Some(p) if p.epoch == t.epoch && !p.revoking => {
                p.running += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether the ticket's partition is still ours.
    pub fn owns(&self, t: &Ticket) -> bool {
        self.parts
            .get(&t.partition)
            .is_some_and(|p| p.epoch == t.epoch && !p.revoking)
    }

    /// Started work ended: `done` = applied, skipped or parked (committable); otherwise abandoned (replayed later).
    pub fn finish(&mut self, t: &Ticket, done: bool) {
        if let Some(p) = self.parts.get_mut(&t.partition)
            && p.epoch == t.epoch
        {
            p.running = p.running.saturating_sub(1);
            if done {
                p.pending.remove(&t.offset);
            }
        }
    }

    /// The offset to commit: the oldest pending event, or one past the last fetched.
    pub fn position(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).and_then(Part::position)
    }

    /// Positions that moved since the last call (all known positions with `force`), marked as committed.
    pub fn to_commit(&mut self, force: bool) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&partition, p) in &mut self.parts {
            let Some(pos) = p.position() else {
                continue;
            };
            if force || p.committed != Some(pos) {
                p.committed = Some(pos);
                out.push((partition, pos));
            }
        }
        out.sort_unstable();
        out
    }

    /// Pending events per partition (for the lag gauge and tests).
    pub fn pending(&self) -> usize {
        self.parts.values().map(|p| p.pending.len()).sum()
    }

    /// Stop starting work on these partitions.
    pub fn begin_revoke(&mut self, partitions: &[i32]) {
        for partition in partitions {
            if let Some(p) = self.parts.get_mut(partition) {
                p.revoking = true;
            }
        }
    }

    /// Work still running on these partitions.
    pub fn running(&self, partitions: &[i32]) -> u32 {
        partitions
            .iter()
            .filter_map(|p| self.parts.get(p))
            .map(|p| p.running)
            .sum()
    }

    /// Forget these partitions; their final positions, to commit.
    pub fn remove(&mut self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for partition in partitions {
            if let Some(p) = self.parts.remove(partition)
                && let Some(pos) = p.position()
            {
                out.push((*partition, pos));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn commits_only_below_the_oldest_pending_event() {
        let mut o = Offsets::default();
        o.assign(0, None);
        assert_eq!(o.position(0), None, "nothing fetched, nothing to commit");
        o.skipped(0, 10);
        assert_eq!(o.position(0), Some(11));
        let a = o.begin(0, 11).unwrap();
        let b = o.begin(0, 12).unwrap();
        o.skipped(0, 13);
        assert!(o.start(&a) && o.start(&b));
        o.finish(&b, true);
        assert_eq!(o.position(0), Some(11), "12 is done but 11 is not");
        o.finish(&a, true);
        assert_eq!(o.position(0), Some(14));
        assert_eq!(o.to_commit(false), vec![(0, 14)]);
        assert_eq!(o.to_commit(false), vec![], "unchanged");
        assert_eq!(o.to_commit(true), vec![(0, 14)]);
    }

    #[test]
    fn abandoned_work_is_replayed() {
        let mut o = Offsets::default();
        o.assign(3, None);
        let a = o.begin(3, 5).unwrap();
        assert!(o.start(&a));
        o.finish(&a, false);
        o.skipped(3, 6);
        assert_eq!(o.position(3), Some(5));
    }

    #[test]
    fn revoked_partitions_stop_starting_work_and_ignore_late_completions() {
        let mut o = Offsets::default();
        o.assign(1, None);
        let running = o.begin(1, 0).unwrap();
        let queued = o.begin(1, 1).unwrap();
        assert!(o.start(&running));
        o.begin_revoke(&[1]);
        assert!(
            !o.start(&queued),
            "queued work of a revoked partition never starts"
        );
        assert!(o.begin(1, 2).is_none());
        assert_eq!(o.running(&[1]), 1);
        o.finish(&running, true);
        assert_eq!(o.running(&[1]), 0);
        assert_eq!(
            o.remove(&[1]),
            vec![(1, 1)],
            "the queued event is replayed by the next owner"
        );
        // Re-assigned: a completion from the old epoch changes nothing.
        o.assign(1, None);
        let fresh = o.begin(1, 1).unwrap();
        o.finish(&queued, true);
        assert_eq!(o.position(1), Some(1));
        assert!(o.start(&fresh));
        o.finish(&fresh, true);
        assert_eq!(o.position(1), Some(2));
    }

    #[test]
    fn replays_pull_the_position_back() {
        let mut o = Offsets::default();
        o.assign(0, Some(160));
        assert_eq!(o.admit(7, 1), Admit::Drop, "not ours");
        assert_eq!(
            o.position(0),
            Some(160),
            "the committed offset until something is handled"
        );
        assert_eq!(o.admit(0, 160), Admit::Take);
        o.skipped(0, 160);
        assert_eq!(o.admit(0, 161), Admit::Take);
        let t = o.begin(0, 161).unwrap();
        assert!(o.start(&t));
        o.finish(&t, true);
        assert_eq!(o.position(0), Some(162));
        // Later a real gap is accepted (in sequence already).
        assert_eq!(o.admit(0, 170), Admit::Take);
        o.skipped(0, 170);
        assert_eq!(o.position(0), Some(171));
        // A replay from 165 (e.g. after an offset reset): the position follows it back down.
        let running = o.begin(0, 175).unwrap();
        assert!(o.start(&running));
        assert_eq!(o.admit(0, 165), Admit::Take);
        o.skipped(0, 165);
        assert_eq!(o.position(0), Some(166), "never past the replayed stream");
        o.finish(&running, true);
        assert_eq!(o.position(0), Some(166));
    }

    /// tansu 0.6 answers a fetch from inside a record batch with the next batch: the first message comes past
    /// the committed offset. The partition is rewound until the committed offset itself comes in.
    #[test]
    fn a_fetch_past_the_committed_offset_is_rewound() {
        let mut o = Offsets::default();
        o.assign(0, Some(10_000));
        assert_eq!(o.admit(0, 10_100), Admit::Rewind(10_000 - FIRST_REWIND));
        assert_eq!(o.position(0), Some(10_000), "nothing taken, nothing moved");
        o.rewound(0, 10_000 - FIRST_REWIND);
        // The rewind landed inside a batch too: further back, four times as far.
        assert_eq!(o.admit(0, 10_100), Admit::Rewind(10_000 - 4 * FIRST_REWIND));
        o.rewound(0, 10_000 - 4 * FIRST_REWIND);
        // In front of the committed offset: what lies below it was done.
        assert_eq!(o.admit(0, 9_500), Admit::Drop);
        assert_eq!(o.admit(0, 9_999), Admit::Drop);
        assert_eq!(o.admit(0, 10_000), Admit::Take);
        let t = o.begin(0, 10_000).unwrap();
        assert_eq!(o.admit(0, 10_001), Admit::Take);
        o.skipped(0, 10_001);
        assert!(o.start(&t));
        o.finish(&t, true);
        assert_eq!(o.position(0), Some(10_002));
        // Rewinds never seek below offset 0.
        o.assign(1, Some(100));
        assert_eq!(o.admit(1, 120), Admit::Rewind(0));
    }

    #[test]
    fn a_real_gap_is_accepted_once_a_fetch_from_before_it_shows_it() {
        // Events below the committed offset came in, then the next one lies past it: nothing is missing.
        let mut o = Offsets::default();
        o.assign(0, Some(50));
        assert_eq!(o.admit(0, 60), Admit::Rewind(0));
        o.rewound(0, 0);
        assert_eq!(o.admit(0, 49), Admit::Drop);
        assert_eq!(o.admit(0, 60), Admit::Take);
        o.skipped(0, 60);
        assert_eq!(o.position(0), Some(61));
        // Even a fetch from offset 0 begins past the committed offset: the log starts later.
        o.assign(1, Some(500));
        assert_eq!(o.admit(1, 700), Admit::Rewind(244));
        o.rewound(1, 244);
        assert_eq!(o.admit(1, 700), Admit::Rewind(0));
        o.rewound(1, 0);
        assert_eq!(o.admit(1, 700), Admit::Take);
    }

    #[test]
    fn a_failed_seek_is_asked_for_again() {
        let mut o = Offsets::default();
        o.assign(0, Some(10));
        assert_eq!(o.admit(0, 20), Admit::Rewind(0));
        // No `rewound`: the seek failed; the next message asks again rather than take the jump.
        assert_eq!(o.admit(0, 21), Admit::Rewind(0));
        o.rewound(0, 0);
        assert_eq!(o.admit(0, 10), Admit::Take);
    }

    /// tansu 0.6 answers a fetch from inside the last record batch with nothing at all.
    #[test]
    fn an_assignment_that_gets_nothing_is_looked_at_and_rewound() {
        let mut o = Offsets::default();
        o.assign(0, Some(2));
        o.assign(1, Some(700));
        o.assign(2, None);
        o.assign(3, Some(50));
        for (p, high) in [(0, 120), (1, 900), (2, 10), (3, 50)] {
            o.high_watermark(p, high);
        }
        let now = Instant::now();
        assert_eq!(o.overdue(now), vec![], "not yet");
        let later = now + FIRST_MESSAGE_WAIT + Duration::from_millis(1);
        let overdue = |partition, committed, high, rewind_to| Overdue {
            partition,
            committed,
            high,
            rewind_to,
        };
        assert_eq!(
            o.overdue(later),
            vec![overdue(0, 2, 120, 0), overdue(1, 700, 900, 700 - FIRST_REWIND)],
            "2 has no committed offset (it starts wherever the client does), 3 has nothing to read"
        );
        assert_eq!(o.overdue(later), vec![], "looked at just now");
        assert_eq!(
            o.overdue(later + LOOK_AGAIN).len(),
            2,
            "looked at again a while later"
        );
        // Partition 1's rewind also lands inside a batch with nothing after it: further back next time.
        o.rewound(1, 700 - FIRST_REWIND);
        let again = Instant::now() + FIRST_MESSAGE_WAIT + Duration::from_millis(1);
        assert_eq!(o.overdue(again), vec![overdue(1, 700, 900, 0)]);
        // The rewind of partition 0 worked: nothing overdue once the committed offset came in.
        o.rewound(0, 0);
        assert_eq!(o.admit(0, 0), Admit::Drop);
        assert_eq!(o.admit(0, 2), Admit::Take);
        assert!(o.overdue(again + LOOK_AGAIN).iter().all(|d| d.partition != 0));
        // New events for partition 3: its log now goes past the committed offset.
        o.high_watermark(3, 60);
        assert_eq!(o.overdue(again + LOOK_AGAIN), vec![overdue(3, 50, 60, 0)]);
    }

    /// With the workaround off the broker is trusted: nothing is rewound, a jump past the committed offset is
    /// taken (and counted as a gap), and an assignment that gets nothing is never looked at.
    #[test]
    fn with_the_rewind_disabled_the_first_message_is_taken_where_it_lies() {
        let mut o = Offsets::new(StalledAssignmentRewind::Disabled);
        o.assign(0, Some(10_000));
        assert_eq!(o.admit(0, 10_100), Admit::Take);
        o.skipped(0, 10_100);
        assert_eq!(o.position(0), Some(10_101));
        o.assign(1, Some(50));
        assert_eq!(o.admit(1, 50), Admit::Take);
        o.assign(2, Some(2));
        o.high_watermark(2, 120);
        let later = Instant::now() + FIRST_MESSAGE_WAIT + LOOK_AGAIN;
        assert_eq!(o.overdue(later), vec![]);
        // Enabled (the default), the same assignment is rewound.
        let mut o = Offsets::new(StalledAssignmentRewind::Enabled);
        o.assign(2, Some(2));
        o.high_watermark(2, 120);
        assert_eq!(o.overdue(later).len(), 1);
        assert_eq!(
            StalledAssignmentRewind::from_flag(false),
            StalledAssignmentRewind::Disabled
        );
    }

    proptest! {
        /// Whatever order work finishes in, the committed position never passes an unfinished event and ends one
        /// past the last event once all are done.
        #[test]
        fn position_never_passes_unfinished_work(
            kinds in proptest::collection::vec(any::<bool>(), 1..60),
            order in any::<proptest::sample::Index>(),
        ) {
            let mut o = Offsets::default();
            o.assign(0, None);
            let mut tickets = Vec::new();
            for (i, work) in kinds.iter().enumerate() {
                let off = i as i64;
                if *work { let t = o.begin(0, off).unwrap(); prop_assert!(o.start(&t)); tickets.push(t); }
                else { o.skipped(0, off); }
            }
            let mut rng = order.index(1000) as u64;
            while !tickets.is_empty() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let t = tickets.remove((rng >> 33) as usize % tickets.len());
                o.finish(&t, true);
                let pos = o.position(0).unwrap();
                for left in &tickets {
                    prop_assert!(pos <= left.offset, "position {pos} passed unfinished {}", left.offset);
                }
            }
            prop_assert_eq!(o.position(0), Some(kinds.len() as i64));
        }
    }
}
