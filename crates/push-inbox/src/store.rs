//! The PostgreSQL inbox (`push_inbox`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::Push;

/// Where a push came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Push,
    LostPush,
    OrderList,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::LostPush => "lost_push",
            Self::OrderList => "order_list",
        }
    }
}

/// What storing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// Already there: only `seen_count` went up.
    Duplicate,
}

/// A pending push leased to one worker until `lease` elapses.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedPush {
    pub id: i64,
    pub shop_id: Option<i64>,
    pub code: Option<i32>,
    pub order_sn: Option<String>,
    pub order_status: Option<String>,
    pub update_time: Option<i64>,
    pub attempts: i32,
    pub traceparent: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Inbox {
    pool: PgPool,
}

impl Inbox {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stores a push, once: the unique `dedup_key` makes concurrent repeats safe, and a repeat only increments
    /// `seen_count`. Returns only after the row is committed.
    pub async fn insert(
        &self,
        push: &Push,
        source: Source,
        traceparent: Option<&str>,
    ) -> Result<Stored, sqlx::Error> {
        let (order_sn, status, update_time) = match &push.kind {
            crate::PushKind::OrderStatus(o) => {
                (Some(o.order_sn.as_str()), Some(o.status.as_str()), o.update_time)
            }
            crate::PushKind::TrackingNumber { order_sn } => (Some(order_sn.as_str()), None, None),
            crate::PushKind::Other => (None, None, None),
        };
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO push_inbox (dedup_key, shop_id, code, order_sn, order_status, update_time, payload, source, traceparent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (dedup_key) DO UPDATE
                SET seen_count = push_inbox.seen_count + 1, last_seen_at = now()
             RETURNING (xmax = 0)",
        )
        .bind(&push.dedup_key)
        .bind(push.shop_id.map(|s| s.as_i64()))
        .bind(push.code)
        .bind(order_sn)
        .bind(status)
        .bind(update_time)
        .bind(&push.payload)
        .bind(source.as_str())
        .bind(traceparent)
        .fetch_one(&self.pool)
        .await?;
        Ok(if inserted { Stored::New } else { Stored::Duplicate })
    }

    /// Leases up to `limit` pending pushes for `lease`. Rows locked by another replica are skipped; a worker that
    /// dies leaves its rows to be claimed again when the lease ends.
    pub async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<ClaimedPush>, sqlx::Error> {
        sqlx::query_as(
            "UPDATE push_inbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
             WHERE id IN (
                SELECT id FROM push_inbox
                WHERE processed_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at, id
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
             RETURNING id, shop_id, code, order_sn, order_status, update_time, attempts, traceparent, received_at",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    /// Marks pushes handled.
    pub async fn complete(&self, ids: &[i64]) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE push_inbox SET processed_at = now(), last_error = NULL WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Puts pushes back for a later attempt, recording why.
    pub async fn retry_later(&self, ids: &[i64], delay: Duration, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE push_inbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
             WHERE id = ANY($1)",
        )
        .bind(ids)
        .bind(delay.as_secs_f64())
        .bind(error)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Pending pushes and the age of the oldest, in seconds (for the inbox lag metric).
    pub async fn lag(&self) -> Result<(i64, f64), sqlx::Error> {
        sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(received_at))::float8, 0)
             FROM push_inbox WHERE processed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
    }
}
