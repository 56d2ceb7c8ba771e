//! Background work that repeats: one helper, [`Periodic`], for every "do this every N seconds until shutdown" loop
//! of the binaries (reconciliation, redrives, hub sync, gauges, the inbox and outbox drains).
//!
//! ```no_run
//! # use std::time::Duration;
//! # use service_runtime::periodic::{Next, Periodic};
//! # async fn example(shutdown: tokio_util::sync::CancellationToken) {
//! Periodic::new("reconcile", Duration::from_secs(60))
//!     .run(shutdown, || async { anyhow::Ok(()) })
//!     .await;
//! # }
//! ```
//!
//! Semantics:
//! - **Schedule.** The first run starts at once (or after one interval with [`Periodic::wait_first`]); the next
//!   starts one interval after the previous one *ended* (runs never overlap, a slow run delays the next). Each wait
//!   is shortened by a random fraction of up to [`jitter`](Periodic::jitter) (10 % by default), never lengthened,
//!   so replicas spread out and "at least once per interval" still holds. A run that returns
//!   [`Next::Immediately`] (it found a full batch) is followed by another at once; [`Periodic::wake_on`] starts a run
//!   early when a [`Notify`] fires.
//! - **Errors.** A failed run is logged once, at `warn`, with the task name and the error chain. After `n`
//!   consecutive failures the wait is [`backoff::delay`]`(interval, max_backoff, n)` (twice the interval, then four
//!   times, ... up to [`max_backoff`](Periodic::max_backoff), 30 s by default, never below the interval); the first
//!   success logs the recovery and goes back to the interval.
//! - **Metrics.** `periodic_runs_total{task, outcome}` with outcome `ok`, `error` or `abandoned`, and the
//!   histogram `periodic_run_seconds{task}` (every run, whatever its outcome).
//! - **Shutdown.** Between runs the helper returns as soon as the token is cancelled. A run in progress when it is
//!   cancelled gets [`grace`](Periodic::grace) (1 s by default) to finish; after that its future is dropped (logged,
//!   counted `abandoned`) and the helper returns. The default fits every binary's drain budget: SIGTERM to exit is
//!   at most 2 s, of which HTTP draining takes 0.8 s. Tasks must therefore be safe to cut at an `.await` (leases
//!   expire, transactions roll back, the next run picks the work up again), which is true of every task here. A task
//!   that can stop sooner by itself watches the token too (and returns `Ok`).

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff;

/// How long a run in progress at shutdown may go on by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);
/// The longest wait after consecutive failures, by default (never below the interval).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The fraction of the interval a wait may be shortened by, by default.
pub const DEFAULT_JITTER: f64 = 0.1;

/// When the next run starts, as decided by a successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Next {
    /// After the interval (the usual case).
    #[default]
    AfterInterval,
    /// At once: there is more work waiting (a drain loop that got a full batch).
    Immediately,
}

impl Next {
    /// [`Next::Immediately`] when `more` (e.g. a batch came back full), else [`Next::AfterInterval`].
    pub fn immediately_if(more: bool) -> Self {
        if more {
            Self::Immediately
        } else {
            Self::AfterInterval
        }
    }
}

impl From<()> for Next {
    fn from((): ()) -> Self {
        Self::AfterInterval
    }
}

/// A named task run every interval until shutdown. See the [module documentation](self) for the semantics.
#[derive(Debug, Clone)]
pub struct Periodic {
    name: &'static str,
    every: Duration,
    jitter: f64,
    max_backoff: Duration,
    grace: Duration,
    wait_first: bool,
    wake: Option<Arc<Notify>>,
}

impl Periodic {
    /// `name` labels the metrics and the logs (`task`); `every` is the interval (at least 1 ms).
    pub fn new(name: &'static str, every: Duration) -> Self {
        Self {
            name,
            every: every.max(Duration::from_millis(1)),
            jitter: DEFAULT_JITTER,
            max_backoff: DEFAULT_MAX_BACKOFF,
            grace: DEFAULT_GRACE,
            wait_first: false,
            wake: None,
        }
    }

    /// Each wait is shortened by a random fraction of up to `fraction` (clamped to `0.0..=1.0`; 0 = exact).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The longest wait after consecutive failures (the interval when that is longer).
    #[must_use]
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = cap;
        self
    }

    /// How long a run in progress at shutdown may go on before it is dropped.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Waits one interval before the first run (instead of running at once).
    #[must_use]
    pub fn wait_first(mut self) -> Self {
        self.wait_first = true;
        self
    }

    /// Also starts a run (early) whenever `notify` fires.
    #[must_use]
    pub fn wake_on(mut self, notify: Arc<Notify>) -> Self {
        self.wake = Some(notify);
        self
    }

    /// Runs `task` on this schedule until `shutdown` (see the [module documentation](self)). `task` makes one run's
    /// future each time; its `Ok` says when the next run starts (`()` means after the interval).
    pub async fn run<F, Fut, T, E>(self, shutdown: CancellationToken, mut task: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Into<Next>,
        E: Display,
    {
        let name = self.name;
        let mut failures: u32 = 0;
        let mut wait = if self.wait_first {
            self.wait_after(0)
        } else {
            Duration::ZERO
        };
        loop {
            if shutdown.is_cancelled() || !self.sleep(wait, &shutdown).await {
                return;
            }
            let started = Instant::now();
            // Boxed: a task's future can be deep (a Kafka event's whole handling); the helper's own stays small.
            let mut run = Box::pin(task());
            let finished = tokio::select! {
                biased;
                result = &mut run => Some(result),
                () = shutdown.cancelled() => None,
            };
            // Cancelled mid-run: the run gets its grace, then it is dropped.
            let result = match finished {
                Some(result) => Some(result),
                None => tokio::time::timeout(self.grace, &mut run).await.ok(),
            };
            metrics::histogram!("periodic_run_seconds", "task" => name)
                .record(started.elapsed().as_secs_f64());
            let outcome = match result {
                None => {
                    tracing::warn!(
                        task = name,
                        grace_ms = u64::try_from(self.grace.as_millis()).unwrap_or(u64::MAX),
                        "shutdown: run still busy after its grace, dropped; the next start picks its work up"
                    );
                    metrics::counter!("periodic_runs_total", "task" => name, "outcome" => "abandoned")
                        .increment(1);
                    return;
                }
                Some(Ok(next)) => {
                    if failures > 0 {
                        tracing::info!(task = name, failures, "periodic task recovered");
                    }
                    failures = 0;
                    wait = match next.into() {
                        Next::AfterInterval => self.wait_after(0),
                        Next::Immediately => Duration::ZERO,
                    };
                    "ok"
                }
                Some(Err(e)) => {
                    failures = failures.saturating_add(1);
                    wait = self.wait_after(failures);
                    tracing::warn!(
                        task = name,
                        error = format!("{e:#}"),
                        failures,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "periodic task failed"
                    );
                    "error"
                }
            };
            metrics::counter!("periodic_runs_total", "task" => name, "outcome" => outcome).increment(1);
        }
    }

    /// [`run`](Self::run) for the usual case: each run gets its own clone of `state` (a pool, a client, an
    /// `Arc` of the worker), so its future owns what it uses.
    pub async fn run_with<S, F, Fut, T, E>(self, shutdown: CancellationToken, state: S, mut task: F)
    where
        S: Clone,
        F: FnMut(S) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        T: Into<Next>,
        E: Display,
    {
        self.run(shutdown, move || task(state.clone())).await;
    }

    /// The wait before the next run after `failures` consecutive failures (0 = after a success), jittered.
    fn wait_after(&self, failures: u32) -> Duration {
        let full = if failures == 0 {
            self.every
        } else {
            backoff::delay(self.every, self.max_backoff.max(self.every), failures)
        };
        if self.jitter == 0.0 {
            return full;
        }
        full.mul_f64(1.0 - self.jitter * rand::random::<f64>())
    }

    /// Waits `wait` (or until woken); false when shutdown came first.
    async fn sleep(&self, wait: Duration, shutdown: &CancellationToken) -> bool {
        if wait.is_zero() {
            return true;
        }
        let woken = async {
            match &self.wake {
                Some(notify) => notify.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
            () = woken => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// Records when each run started, in whole seconds since `t0`.
    #[derive(Clone)]
    struct Log {
        t0: Instant,
        starts: Arc<Mutex<Vec<f64>>>,
    }

    impl Log {
        fn new() -> Self {
            Self {
                t0: Instant::now(),
                starts: Arc::default(),
            }
        }
        fn mark(&self) -> usize {
            let mut starts = self.starts.lock().unwrap();
            starts.push(self.t0.elapsed().as_secs_f64());
            starts.len()
        }
        fn starts(&self) -> Vec<f64> {
            self.starts.lock().unwrap().clone()
        }
    }

    fn exact(name: &'static str, every: Duration) -> Periodic {
        Periodic::new(name, every).jitter(0.0)
    }

    /// Spawns `periodic` with a task that only records its start in `log`.
    fn spawn_marking(periodic: Periodic, stop: &CancellationToken, log: &Log) -> tokio::task::JoinHandle<()> {
        tokio::spawn(periodic.run_with(stop.clone(), log.clone(), |log| async move {
            log.mark();
            anyhow::Ok(())
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_once_then_every_interval() {
        let log = Log::new();
        let stop = CancellationToken::new();
        let every = exact("every", 10 * SEC);
        let task = tokio::spawn(every.run_with(stop.clone(), log.clone(), |log| async move {
            log.mark();
            // A run that takes time: the next one starts an interval after it ended.
            tokio::time::sleep(SEC).await;
            anyhow::Ok(())
        }));
        tokio::time::sleep(35 * SEC).await;
        assert_eq!(log.starts(), [0.0, 11.0, 22.0, 33.0]);
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn wait_first_delays_the_first_run_by_one_interval() {
        let log = Log::new();
        let stop = CancellationToken::new();
        let task = spawn_marking(exact("wait-first", 5 * SEC).wait_first(), &stop, &log);
        tokio::time::sleep(12 * SEC).await;
        assert_eq!(log.starts(), [5.0, 10.0]);
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_once_when_cancelled_between_runs() {
        let stop = CancellationToken::new();
        let task = tokio::spawn(exact("idle", 60 * SEC).run(stop.clone(), || async { anyhow::Ok(()) }));
        tokio::time::sleep(15 * SEC).await;
        let cancelled = Instant::now();
        stop.cancel();
        task.await.unwrap();
        assert_eq!(
            cancelled.elapsed(),
            Duration::ZERO,
            "no wait for the rest of the interval"
        );
    }

    /// Cancels `cancel_after` into the first run of a task that takes `run_for`: how long the helper took to return
    /// after the cancel, and whether the run finished.
    async fn cancel_mid_run(
        periodic: Periodic,
        run_for: Duration,
        cancel_after: Duration,
    ) -> (Duration, bool) {
        let stop = CancellationToken::new();
        let ended = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(
            periodic.run_with(stop.clone(), Arc::clone(&ended), move |e| async move {
                tokio::time::sleep(run_for).await;
                e.fetch_add(1, Ordering::SeqCst);
                anyhow::Ok(())
            }),
        );
        tokio::time::sleep(cancel_after).await;
        let cancelled = Instant::now();
        stop.cancel();
        task.await.unwrap();
        (cancelled.elapsed(), ended.load(Ordering::SeqCst) == 1)
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_run_gets_its_grace_then_is_dropped() {
        let periodic = exact("long", SEC).grace(2 * SEC);
        let (took, finished) = cancel_mid_run(periodic, 600 * SEC, 5 * SEC).await;
        assert_eq!(
            took,
            2 * SEC,
            "returns when the grace is over, not when the run is"
        );
        assert!(!finished, "the run was dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_ends_within_its_grace_is_finished() {
        let (took, finished) = cancel_mid_run(exact("short", 60 * SEC), 3 * SEC, 2 * SEC).await;
        assert_eq!(took, SEC, "waited for the run, not for the default grace");
        assert!(finished);
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_on_consecutive_errors_up_to_the_cap_and_recovers() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let log = Log::new();
        let stop = CancellationToken::new();
        let l = log.clone();
        let periodic = exact("flaky", SEC).max_backoff(5 * SEC);
        let task = tokio::spawn(periodic.run(stop.clone(), move || {
            let l = l.clone();
            async move {
                let run = l.mark();
                if run <= 4 {
                    anyhow::bail!("down (run {run})");
                }
                Ok(())
            }
        }));
        tokio::time::sleep(Duration::from_millis(18_500)).await;
        stop.cancel();
        task.await.unwrap();
        // Failures at 0, 2, 6, 11 (waits 2, 4, then the 5 s cap twice); successes at 16, then every second.
        assert_eq!(log.starts(), [0.0, 2.0, 6.0, 11.0, 16.0, 17.0, 18.0]);
        let text = metrics.render();
        assert!(
            text.contains(r#"periodic_runs_total{task="flaky",outcome="error"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"periodic_runs_total{task="flaky",outcome="ok"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"periodic_run_seconds_count{task="flaky"} 7"#),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_runs_again_at_once() {
        let log = Log::new();
        let stop = CancellationToken::new();
        let drain = exact("drain", 10 * SEC);
        let task = tokio::spawn(drain.run_with(stop.clone(), log.clone(), |log| async move {
            // Three full batches, then empty.
            let run = log.mark();
            anyhow::Ok(Next::immediately_if(!run.is_multiple_of(4)))
        }));
        tokio::time::sleep(15 * SEC).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(log.starts(), [0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_notification_starts_a_run_early() {
        let log = Log::new();
        let stop = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let periodic = exact("woken", 30 * SEC).wait_first().wake_on(Arc::clone(&wake));
        let task = spawn_marking(periodic, &stop, &log);
        tokio::time::sleep(4 * SEC).await;
        wake.notify_one();
        tokio::time::sleep(40 * SEC).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(log.starts(), [4.0, 34.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_only_shortens_the_wait() {
        let log = Log::new();
        let stop = CancellationToken::new();
        let periodic = Periodic::new("jittered", 10 * SEC).jitter(0.5);
        let task = spawn_marking(periodic, &stop, &log);
        tokio::time::sleep(300 * SEC).await;
        stop.cancel();
        task.await.unwrap();
        let starts = log.starts();
        let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 30, "{gaps:?}");
        assert!(gaps.iter().all(|g| (5.0..=10.0).contains(g)), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g < 9.9), "spread: {gaps:?}");
    }
}
