//! Pub/Sub consumption: streaming pull with flow control, messages handled in batches (one PostgreSQL transaction
//! per batch), acked only once the batch is durably recorded; nacked (redelivered) when recording failed.

use std::time::Duration;

use google_cloud_pubsub::client::Subscriber;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::subscriber::ShutdownBehavior;
use google_cloud_pubsub::subscriber::handler::Handler;
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::events::{self, Kind, Update};
use crate::resolve::Resolver;
use crate::store::{self, Invalid, Recorded};

pub struct Consumer {
    pub pool: PgPool,
    pub resolver: Resolver,
    pub settings: Settings,
    pub subscriber: Subscriber,
    /// Full path `projects/{p}/subscriptions/{s}`.
    pub subscription: String,
    pub kind: Kind,
}

impl Consumer {
    /// Pulls until `shutdown`; then stops pulling, finishes the batch in hand and flushes its acks.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let mut stream = self
                .subscriber
                .subscribe(self.subscription.clone())
                .set_max_outstanding_messages(self.settings.max_outstanding)
                .set_max_lease_extension(self.settings.ack_extension)
                .set_shutdown_behavior(ShutdownBehavior::NackImmediately)
                .build();
            let token = stream.shutdown_token();
            let broken = loop {
                let first = tokio::select! {
                    _ = shutdown.cancelled() => break false,
                    m = stream.next() => m,
                };
                let mut batch = match first {
                    Some(Ok(m)) => vec![m],
                    Some(Err(e)) => {
                        tracing::warn!(subscription = %self.subscription, error = %e, "Pub/Sub stream failed; reconnecting");
                        break true;
                    }
                    None => break true,
                };
                let deadline = Instant::now() + self.settings.batch_wait;
                while batch.len() < self.settings.batch_max {
                    match tokio::time::timeout_at(deadline, stream.next()).await {
                        Ok(Some(Ok(m))) => batch.push(m),
                        Ok(Some(Err(e))) => {
                            tracing::warn!(error = %e, "Pub/Sub stream error while batching");
                            break;
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                self.handle(batch).await;
            };
            token.shutdown().await;
            if broken {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }

    /// Records a batch, then acks it; on failure nacks it so Pub/Sub redelivers.
    pub async fn handle(&self, batch: Vec<(Message, Handler)>) {
        let started = std::time::Instant::now();
        let mut updates: Vec<Update> = Vec::with_capacity(batch.len());
        let mut invalid: Vec<Invalid> = Vec::new();
        for (m, _) in &batch {
            match events::parse(self.kind, &m.data) {
                Ok(u) => updates.push(u),
                Err(reason) => invalid.push(Invalid {
                    kind: self.kind,
                    reason,
                    reference: events::invalid_reference(&m.data),
                    payload: events::dead_letter_payload(&m.data, &m.message_id, &self.subscription),
                }),
            }
        }
        match self.record(updates, &invalid).await {
            Ok(r) => {
                let kind = self.kind.as_str();
                metrics::counter!("catalog_sync_events_total", "kind" => kind, "outcome" => "taken")
                    .increment(r.taken as u64);
                metrics::counter!("catalog_sync_events_total", "kind" => kind, "outcome" => "superseded")
                    .increment(r.superseded as u64);
                metrics::counter!("catalog_sync_events_total", "kind" => kind, "outcome" => "needs_mapping")
                    .increment(r.unmapped as u64);
                metrics::counter!("catalog_sync_events_total", "kind" => kind, "outcome" => "invalid")
                    .increment(r.dead_lettered as u64);
                metrics::histogram!("catalog_sync_batch_seconds", "kind" => kind)
                    .record(started.elapsed().as_secs_f64());
                for (_, h) in batch {
                    h.ack();
                }
            }
            Err(e) => {
                tracing::warn!(
                    kind = self.kind.as_str(),
                    messages = batch.len(),
                    error = format!("{e:#}"),
                    "cannot record a batch; nacked for redelivery"
                );
                for (_, h) in batch {
                    h.nack();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    async fn record(&self, updates: Vec<Update>, invalid: &[Invalid]) -> anyhow::Result<Recorded> {
        let resolutions = self.resolver.resolve(&updates).await?;
        let resolved: Vec<_> = updates.into_iter().zip(resolutions).collect();
        Ok(store::record(&self.pool, self.settings.flush_window, &resolved, invalid).await?)
    }
}
