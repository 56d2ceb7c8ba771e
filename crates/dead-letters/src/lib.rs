//! Dead letters: work parked with the reason it could not be done (table `dead_letters`).
//!
//! A worker parks with [`park`]; an operator lists them and requests a redrive through campaign-api
//! ([`list`], [`request_redrive`]); the owning worker takes redrive requests for its `source` with
//! [`take_redrive_requests`] (which marks them `redriven`) and parks again with [`repark`] what fails again.

use chrono::{DateTime, Utc};
use pg_enum::text_enum;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};

text_enum! {
    /// `dead_letters.status`: parked, until an operator asks for a redrive, which the owning worker takes.
    pub enum DeadLetterStatus {
        Parked = "parked",
        /// Asked for through campaign-api; the owning worker (by `source`) picks it up.
        RedriveRequested = "redrive_requested",
        /// Taken by the owning worker; parked again if it fails again.
        Redriven = "redriven",
    }
}

text_enum! {
    /// `dead_letters.kind`: what the parked work is.
    pub enum DeadLetterKind {
        /// order-publisher: a push it could not handle.
        InboxPush = "inbox_push",
        /// order-publisher: an order it could not turn into a `new_order`.
        Order = "order",
        /// catalog-sync-worker: a `PriceUpdateEvent`.
        PriceUpdate = "price_update",
        /// catalog-sync-worker: an `InventoryUpdateEvent`.
        InventoryUpdate = "inventory_update",
        /// delivery-status-consumer: a fleet event.
        DeliveryEvent = "delivery_event",
    }
}

/// One parked piece of work.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub source: String,
    pub kind: DeadLetterKind,
    pub reference: Option<String>,
    pub reason: String,
    pub payload: Value,
    pub status: DeadLetterStatus,
    pub attempts: i32,
    pub redrive_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What is being parked.
pub struct Park<'a> {
    /// The owning worker, e.g. `order-publisher`.
    pub source: &'a str,
    /// What it is.
    pub kind: DeadLetterKind,
    /// A human handle, e.g. `900001:2511250ABCDEF`.
    pub reference: Option<&'a str>,
    /// Why, in words an operator understands. Never secrets or buyer data.
    pub reason: &'a str,
    /// What is needed to redo it.
    pub payload: &'a Value,
    pub attempts: i32,
}

/// Parks work; usable inside the caller's transaction.
pub async fn park(db: impl PgExecutor<'_>, p: Park<'_>) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dead_letters (source, kind, reference, reason, payload, attempts)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(p.source)
    .bind(p.kind)
    .bind(p.reference)
    .bind(p.reason)
    .bind(p.payload)
    .bind(p.attempts)
    .fetch_one(db)
    .await?;
    metrics::counter!("dead_letters_total", "source" => p.source.to_owned(), "kind" => p.kind.as_str())
        .increment(1);
    tracing::warn!(
        dead_letter.id = id,
        source = p.source,
        kind = p.kind.as_str(),
        reference = p.reference,
        reason = p.reason,
        "work parked as a dead letter"
    );
    Ok(id)
}

/// Filters for [`list`].
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub source: Option<String>,
    /// One of [`DeadLetterStatus`]'s spellings (campaign-api passes the query parameter through); any other text
    /// matches nothing.
    pub status: Option<String>,
    /// Only ids greater than this (pagination cursor).
    pub after_id: Option<i64>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, f: &Filter) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let status = match f
        .status
        .as_deref()
        .map(str::parse::<DeadLetterStatus>)
        .transpose()
    {
        Ok(status) => status,
        // No row can hold it (CHECK).
        Err(_) => return Ok(Vec::new()),
    };
    sqlx::query_as(
        "SELECT id, source, kind, reference, reason, payload, status, attempts, redrive_count, created_at, updated_at
         FROM dead_letters
         WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR status = $2) AND id > COALESCE($3, 0)
         ORDER BY id LIMIT $4",
    )
    .bind(f.source.as_deref())
    .bind(status)
    .bind(f.after_id)
    .bind(f.limit.clamp(1, 500))
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, source, kind, reference, reason, payload, status, attempts, redrive_count, created_at, updated_at
         FROM dead_letters WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Asks the owning worker to try again. `false` when there is no such parked letter.
pub async fn request_redrive(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let updated =
        sqlx::query("UPDATE dead_letters SET status = $2, updated_at = now() WHERE id = $1 AND status = $3")
            .bind(id)
            .bind(DeadLetterStatus::RedriveRequested)
            .bind(DeadLetterStatus::Parked)
            .execute(pool)
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Takes up to `limit` redrive requests for `source`, oldest first, marking them `redriven` so no other replica
/// takes them; after handling each, call [`repark`] if it failed again.
pub async fn take_redrive_requests(
    pool: &PgPool,
    source: &str,
    limit: i64,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE dead_letters SET status = $3, redrive_count = redrive_count + 1, updated_at = now()
         WHERE id IN (SELECT id FROM dead_letters WHERE source = $1 AND status = $4
                      ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, source, kind, reference, reason, payload, status, attempts, redrive_count, created_at, updated_at",
    )
    .bind(source)
    .bind(limit)
    .bind(DeadLetterStatus::Redriven)
    .bind(DeadLetterStatus::RedriveRequested)
    .fetch_all(pool)
    .await
}

/// The redriven work failed again: parked with the new reason.
pub async fn repark(db: impl sqlx::PgExecutor<'_>, id: i64, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE dead_letters SET status = $3, reason = $2, attempts = attempts + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .bind(DeadLetterStatus::Parked)
    .execute(db)
    .await
    .map(|_| ())
}

/// Parked letters per source (for the dead-letter gauge).
pub async fn parked_counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT source, count(*) FROM dead_letters WHERE status = $1 GROUP BY source")
        .bind(DeadLetterStatus::Parked)
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn park_list_redrive_cycle() {
        let db = test_support::TestDb::new().await;
        let payload = serde_json::json!({"order_sn": "ABC"});
        let id = park(
            &db.pool,
            Park {
                source: "order-publisher",
                kind: DeadLetterKind::Order,
                reference: Some("1:ABC"),
                reason: "item deleted",
                payload: &payload,
                attempts: 1,
            },
        )
        .await
        .unwrap();
        let listed = list(
            &db.pool,
            &Filter {
                source: Some("order-publisher".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].reason, "item deleted");
        assert!(
            take_redrive_requests(&db.pool, "order-publisher", 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(request_redrive(&db.pool, id).await.unwrap());
        assert!(
            !request_redrive(&db.pool, id).await.unwrap(),
            "only parked letters can be redriven"
        );
        assert!(
            take_redrive_requests(&db.pool, "catalog-sync-worker", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let taken = take_redrive_requests(&db.pool, "order-publisher", 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].redrive_count, 1);
        repark(&db.pool, id, "still deleted").await.unwrap();
        let again = get(&db.pool, id).await.unwrap().unwrap();
        assert_eq!(
            (again.status, again.reason.as_str(), again.attempts),
            (DeadLetterStatus::Parked, "still deleted", 2)
        );
        assert!(
            list(
                &db.pool,
                &Filter {
                    status: Some("lost".into()),
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
        );
    }

    /// The stored spellings are the migrations' CHECK lists.
    #[test]
    fn spellings_match_the_migrations() {
        let statuses: Vec<&str> = DeadLetterStatus::ALL.iter().map(|s| s.as_str()).collect();
        let created = include_str!("../../../migrations/20261126000020_orders_outbox_dead_letters.sql");
        assert_eq!(pg_enum::check_lists(created, "status"), vec![statuses]);
        let kinds: Vec<&str> = DeadLetterKind::ALL.iter().map(|s| s.as_str()).collect();
        let checked = include_str!("../../../migrations/20261126000090_states_checked.sql");
        assert_eq!(pg_enum::check_lists(checked, "kind"), vec![kinds]);
    }
}
