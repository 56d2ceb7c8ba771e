//! Group commit for pushes: concurrent requests hand their push to a few writer tasks, each of which stores
//! whatever is waiting in one statement and answers every request once that statement has committed. A push is
//! still acknowledged only after it is durably stored; the database does one commit for many pushes.

use std::sync::Arc;

use push_inbox::{Inbox, Push, Source, Stored};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The most pushes stored by one statement.
const MAX_BATCH: usize = 256;

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
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(inbox.clone(), rx.clone()));
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

async fn write_batches(inbox: Inbox, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        metrics::histogram!("webhook_inbox_batch_size").record(jobs.len() as f64);
        let batch: Vec<(&Push, Source, Option<&str>)> = jobs
            .iter()
            .map(|j| (&j.push, Source::Push, j.traceparent.as_deref()))
            .collect();
        let outcome = inbox.insert_batch(&batch).await;
        drop(batch);
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
