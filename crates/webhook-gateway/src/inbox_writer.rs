//! Group commit for pushes: concurrent requests hand their push to a few writer tasks, each of which stores
//! whatever is waiting in one statement and answers every request once that statement has committed. A push is
//! still acknowledged only after it is durably stored; the database does one commit for many pushes.
//!
//! One statement at a time is the normal case: while one is in flight, the next writer keeps collecting, and sends
//! its batch when that statement is done. Batches stay large that way, and a statement of 30 pushes costs the
//! database little more than one of 8: in `bench ingest` (64 clients, 2 cores), four writers each sending whatever
//! had arrived made batches of ~9 pushes (3.5x as many statements per push) and about 25% fewer pushes/s. It does
//! not wait behind a slow statement for ever: a full batch, or a first push that has waited [`MAX_WAIT_BEHIND`],
//! is sent at once, so a stalled statement (a lock, a slow disk) does not hold up the pushes that come after it,
//! up to `writers` statements in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use push_inbox::{Inbox, Push, Source, Stored};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// The most pushes stored by one statement.
const MAX_BATCH: usize = 256;

/// How long a collected batch waits for the statement in flight before it is sent alongside it.
const MAX_WAIT_BEHIND: Duration = Duration::from_millis(5);

struct Job {
    push: Push,
    traceparent: Option<String>,
    reply: oneshot::Sender<Result<Stored, String>>,
}

#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Job>,
}

impl InboxWriter {
    /// Starts `writers` writer tasks; they stop when every clone of the returned writer is dropped.
    pub fn start(inbox: Inbox, writers: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * writers.max(1) * 4);
        let shared = Arc::new(Shared {
            rx: Mutex::new(rx),
            in_flight: AtomicUsize::new(0),
            statement_done: Notify::new(),
        });
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(inbox.clone(), shared.clone()));
        }
        Self { tx }
    }

    /// Stores a push; returns once it is committed (or failed).
    pub async fn store(&self, push: Push, traceparent: Option<String>) -> Result<Stored, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                push,
                traceparent,
                reply,
            })
            .await
            .map_err(|_| "the inbox writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the inbox writer dropped the push".to_owned())?
    }
}

/// What the writer tasks share: the queue (one writer collects from it at a time) and the statements in flight.
struct Shared {
    rx: Mutex<mpsc::Receiver<Job>>,
    in_flight: AtomicUsize,
    statement_done: Notify,
}

/// The next batch: at least one push; more while a statement is in flight (see the module docs). `None` once
/// every sender is gone and the queue is empty.
async fn collect(shared: &Shared) -> Option<Vec<Job>> {
    let mut rx = shared.rx.lock().await;
    let first = rx.recv().await?;
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    jobs.push(first);
    let waited_enough = tokio::time::sleep(MAX_WAIT_BEHIND);
    tokio::pin!(waited_enough);
    loop {
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Registered before `in_flight` is read, so a statement finishing in between still wakes us.
        let statement_done = shared.statement_done.notified();
        tokio::pin!(statement_done);
        statement_done.as_mut().enable();
        if jobs.len() >= MAX_BATCH || shared.in_flight.load(Ordering::Acquire) == 0 {
            break;
        }
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => jobs.push(job),
                None => break,
            },
            () = &mut statement_done => {}
            () = &mut waited_enough => break,
        }
    }
    // Counted before the queue is released, so the next writer sees this statement in flight.
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    Some(jobs)
}

async fn write_batches(inbox: Inbox, shared: Arc<Shared>) {
    while let Some(jobs) = collect(&shared).await {
        metrics::histogram!("webhook_inbox_batch_size").record(jobs.len() as f64);
        let batch: Vec<(&Push, Source, Option<&str>)> = jobs
            .iter()
            .map(|j| (&j.push, Source::Push, j.traceparent.as_deref()))
            .collect();
        let outcome = inbox.insert_batch(&batch).await;
        drop(batch);
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        shared.statement_done.notify_waiters();
        match outcome {
            Ok(stored) => {
                for (job, stored) in jobs.into_iter().zip(stored) {
                    let _ = job.reply.send(Ok(stored));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}
