//! Dead letters an operator asked to redrive (`status = 'redrive_requested'`, set through campaign-api) are
//! replayed here: `redriven` once the event had its effect (or turned out to be a no-op), back to `parked` with the
//! new reason otherwise. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas share them.

use std::time::Duration;

use service_runtime::periodic::{Next, Periodic};
use tokio_util::sync::CancellationToken;

use crate::process::{Decision, Failure, Processor};
use crate::store::Store;

/// Rows per claim.
const BATCH: i64 = 20;

/// Replays requested redrives every `interval` until `stop`, batch after batch while batches come back full.
pub async fn run(processor: Processor, interval: Duration, stop: CancellationToken) {
    Periodic::new("redrive", interval)
        .wait_first()
        .run_with(stop.clone(), (processor, stop), |(processor, stop)| async move {
            match once(&processor, &stop).await {
                Ok(n) => Ok(Next::immediately_if(n as i64 == BATCH)),
                // Stopping: the batch rolled back, its rows stay requested.
                Err(Failure::Abandoned) => Ok(Next::AfterInterval),
                Err(e) => Err(e),
            }
        })
        .await;
}

/// One batch; how many rows it handled.
pub async fn once(processor: &Processor, stop: &CancellationToken) -> Result<usize, Failure> {
    let (mut tx, rows) = processor.store().claim_redrives(BATCH).await?;
    let n = rows.len();
    for row in rows {
        let payload = serde_json::to_vec(&row.payload).unwrap_or_default();
        // Abandoned (stopping) or failed: the transaction rolls back and the row stays requested.
        let decision = processor.handle(&payload, stop).await?;
        let parked_again = match &decision {
            Decision::Park { reason, .. } => Some(reason.clone()),
            Decision::Invalid { reason } => Some(format!("invalid delivery event: {reason}")),
            _ => None,
        };
        Store::finish_redrive(&mut tx, row.id, parked_again.as_deref()).await?;
        let outcome = if parked_again.is_some() {
            "parked_again"
        } else {
            "redriven"
        };
        tracing::info!(
            dead_letter.id = row.id,
            outcome,
            decision = decision.outcome(),
            "delivery dead letter redriven"
        );
        metrics::counter!("delivery_redrives_total", "outcome" => outcome).increment(1);
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(n)
}
