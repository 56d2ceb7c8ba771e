//! The outbox relay: publishes committed `new_order` events to Pub/Sub with their attributes and ordering key.
//! At-least-once on the wire; every copy of one order's event carries the same `idempotency_key`.

use std::collections::HashMap;
use std::time::Duration;

use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use sqlx::PgPool;

/// A row is leased for this long while being published; a relay that dies leaves it to another.
const LEASE_SECS: f64 = 15.0;

/// The first republish of a row waits this long; each further one twice as long, up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_millis(500);
/// 500 ms * 2^7: the eighth and later attempts wait about a minute.
const RETRY_MAX: Duration = Duration::from_secs(64);

/// The wait before publishing again a row whose `attempts`-th publish (1-based) failed.
fn backoff(attempts: i32) -> Duration {
    let attempt = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    service_runtime::backoff::delay(RETRY_BASE, RETRY_MAX, attempt)
}

#[derive(Clone)]
pub struct OutboxRelay {
    pub pool: PgPool,
    pub publisher: Publisher,
    pub topic: String,
    pub batch_size: i64,
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    ordering_key: Option<String>,
    attributes: serde_json::Value,
    payload: serde_json::Value,
    attempts: i32,
}

impl OutboxRelay {
    /// Publishes one batch; returns how many rows it handled.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let rows: Vec<Pending> = sqlx::query_as(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $3)
             WHERE id IN (SELECT id FROM outbox
                          WHERE topic = $1 AND published_at IS NULL AND next_attempt_at <= now()
                          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, ordering_key, attributes, payload, attempts",
        )
        .bind(&self.topic)
        .bind(self.batch_size)
        .bind(LEASE_SECS)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let handles: Vec<_> = rows
            .iter()
            .map(|row| {
                let attributes: HashMap<String, String> = row
                    .attributes
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut msg = Message::new()
                    .set_data(row.payload.to_string())
                    .set_attributes(attributes);
                if let Some(key) = &row.ordering_key {
                    msg = msg.set_ordering_key(key.clone());
                }
                self.publisher.publish(msg)
            })
            .collect();
        let results = futures::future::join_all(handles).await;
        let mut published: Vec<(i64, String)> = Vec::new();
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(message_id) => published.push((row.id, message_id)),
                Err(e) => {
                    if let Some(key) = &row.ordering_key {
                        // A failed publish pauses its ordering key until resumed.
                        self.publisher.resume_publish(key.clone());
                    }
                    let delay = backoff(row.attempts);
                    tracing::warn!(outbox.id = row.id, error = %e, retry_in_ms = delay.as_millis() as u64, "publish failed; will retry");
                    metrics::counter!("outbox_publish_total", "outcome" => "error").increment(1);
                    sqlx::query(
                        "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3 WHERE id = $1",
                    )
                    .bind(row.id)
                    .bind(delay.as_secs_f64())
                    .bind(e.to_string())
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        if !published.is_empty() {
            let (ids, message_ids): (Vec<i64>, Vec<String>) = published.into_iter().unzip();
            sqlx::query(
                "UPDATE outbox SET published_at = now(), message_id = m.message_id, last_error = NULL
                 FROM UNNEST($1::int8[], $2::text[]) AS m(id, message_id) WHERE outbox.id = m.id",
            )
            .bind(&ids)
            .bind(&message_ids)
            .execute(&self.pool)
            .await?;
            metrics::counter!("outbox_publish_total", "outcome" => "published").increment(ids.len() as u64);
        }
        Ok(rows.len())
    }

    /// Pending rows and the age of the oldest, in seconds.
    pub async fn lag(&self) -> Result<(i64, f64), sqlx::Error> {
        sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_publish_is_retried_after_500_ms_doubling_up_to_64_s() {
        let waits: Vec<u64> = [1, 2, 3, 8, 9, 40]
            .map(|a| backoff(a).as_millis() as u64)
            .to_vec();
        assert_eq!(waits, [500, 1000, 2000, 64_000, 64_000, 64_000]);
    }
}
