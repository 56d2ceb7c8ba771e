//! The PostgreSQL inbox (`push_inbox`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::order::ShopeeOrderStatus;
use domain::{OrderSn, ShopId};
use pg_enum::{Text, text_enum};
use sqlx::PgPool;

use crate::{OrderStatusPush, Push, PushCode, PushKind};

text_enum! {
    /// Where a push came from (`push_inbox.source`).
    pub enum Source {
        /// Shopee's POST to the webhook gateway.
        Push = "push",
        /// `get_lost_push_message`.
        LostPush = "lost_push",
        /// The order-list scan.
        OrderList = "order_list",
    }
}

/// What storing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// Already there: only `seen_count` went up.
    Duplicate,
}

/// A pending push leased to one worker until `lease` elapses, typed as it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedPush {
    pub id: i64,
    pub shop_id: Option<ShopId>,
    pub code: Option<PushCode>,
    pub kind: PushKind,
    pub attempts: i32,
    pub traceparent: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A `push_inbox` row as claimed; [`ClaimedPush::from`] puts its columns back together into a [`PushKind`].
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    shop_id: Option<i64>,
    code: Option<PushCode>,
    order_sn: Option<String>,
    order_status: Option<Text<ShopeeOrderStatus>>,
    update_time: Option<i64>,
    attempts: i32,
    traceparent: Option<String>,
    received_at: DateTime<Utc>,
}

impl From<ClaimedRow> for ClaimedPush {
    /// The columns were written from a parsed push (`columns`), so they parse again; a row that does not (written
    /// by hand) is handed out as `Other`: recorded, never acted on.
    fn from(row: ClaimedRow) -> Self {
        let order_sn = row.order_sn.as_deref().and_then(|sn| OrderSn::parse(sn).ok());
        let kind = match (row.code, order_sn, row.order_status) {
            (Some(PushCode::OrderStatus), Some(order_sn), Some(Text(status))) => {
                PushKind::OrderStatus(OrderStatusPush {
                    order_sn,
                    status,
                    update_time: row.update_time,
                })
            }
            (Some(PushCode::TrackingNumber), Some(order_sn), _) => PushKind::TrackingNumber { order_sn },
            _ => PushKind::Other,
        };
        Self {
            id: row.id,
            shop_id: row.shop_id.and_then(|s| ShopId::from_i64(s).ok()),
            code: row.code,
            kind,
            attempts: row.attempts,
            traceparent: row.traceparent,
            received_at: row.received_at,
        }
    }
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
        let stored = self.insert_batch(&[(push, source, traceparent)]).await?;
        Ok(stored.first().copied().unwrap_or(Stored::Duplicate))
    }

    /// Stores many pushes in one statement (one transaction, one round trip) — the gateway's group commit. Repeats
    /// inside the batch count as duplicates of their first copy. Returns one outcome per input, in order.
    pub async fn insert_batch(
        &self,
        pushes: &[(&Push, Source, Option<&str>)],
    ) -> Result<Vec<Stored>, sqlx::Error> {
        use std::collections::HashMap;
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(pushes.len());
        let mut unique: Vec<usize> = Vec::with_capacity(pushes.len());
        let mut seen: Vec<i32> = Vec::with_capacity(pushes.len());
        for (i, (push, _, _)) in pushes.iter().enumerate() {
            match first.get(push.dedup_key.as_str()) {
                Some(&u) => seen[u] += 1,
                None => {
                    first.insert(push.dedup_key.as_str(), unique.len());
                    unique.push(i);
                    seen.push(1);
                }
            }
        }
        let mut keys = Vec::with_capacity(unique.len());
        let mut shops = Vec::with_capacity(unique.len());
        let mut codes = Vec::with_capacity(unique.len());
        let mut sns = Vec::with_capacity(unique.len());
        let mut statuses = Vec::with_capacity(unique.len());
        let mut times = Vec::with_capacity(unique.len());
        let mut payloads = Vec::with_capacity(unique.len());
        let mut sources = Vec::with_capacity(unique.len());
        let mut traces = Vec::with_capacity(unique.len());
        for &i in &unique {
            let (push, source, traceparent) = &pushes[i];
            let (sn, status, time) = columns(push);
            keys.push(push.dedup_key.as_str());
            shops.push(push.shop_id.map(|s| s.as_i64()));
            codes.push(push.push_code());
            sns.push(sn);
            statuses.push(status);
            times.push(time);
            payloads.push(&push.payload);
            sources.push(*source);
            traces.push(*traceparent);
        }
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "INSERT INTO push_inbox (dedup_key, shop_id, code, order_sn, order_status, update_time, payload, source,
                                     traceparent, seen_count)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int4[], $4::text[], $5::text[], $6::int8[],
                                  $7::jsonb[], $8::text[], $9::text[], $10::int4[])
             ON CONFLICT (dedup_key) DO UPDATE
                SET seen_count = push_inbox.seen_count + EXCLUDED.seen_count, last_seen_at = now()
             RETURNING dedup_key, (xmax = 0)",
        )
        .bind(&keys)
        .bind(&shops)
        .bind(&codes)
        .bind(&sns)
        .bind(&statuses)
        .bind(&times)
        .bind(&payloads)
        .bind(&sources)
        .bind(&traces)
        .bind(&seen)
        .fetch_all(&self.pool)
        .await?;
        let inserted: HashMap<String, bool> = rows.into_iter().collect();
        Ok(pushes
            .iter()
            .enumerate()
            .map(|(i, (push, _, _))| {
                let is_first = unique[first[push.dedup_key.as_str()]] == i;
                if is_first && inserted.get(&push.dedup_key).copied().unwrap_or(false) {
                    Stored::New
                } else {
                    Stored::Duplicate
                }
            })
            .collect())
    }

    /// Leases up to `limit` pending pushes for `lease`. Rows locked by another replica are skipped; a worker that
    /// dies leaves its rows to be claimed again when the lease ends.
    pub async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<ClaimedPush>, sqlx::Error> {
        let rows: Vec<ClaimedRow> = sqlx::query_as(
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
        .await?;
        Ok(rows.into_iter().map(ClaimedPush::from).collect())
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

/// The columns a push fills besides its payload: order_sn, order_status, update_time.
fn columns(push: &Push) -> (Option<&str>, Option<Text<ShopeeOrderStatus>>, Option<i64>) {
    match &push.kind {
        PushKind::OrderStatus(o) => (Some(o.order_sn.as_str()), Some(Text(o.status)), o.update_time),
        PushKind::TrackingNumber { order_sn } => (Some(order_sn.as_str()), None, None),
        PushKind::Other => (None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `push_inbox`'s CHECK lists are the enums' spellings.
    #[test]
    fn spellings_match_the_migrations() {
        let initial = include_str!("../../../migrations/20261126000010_push_inbox.sql");
        let sources: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(pg_enum::check_lists(initial, "source"), vec![sources]);
        let checked = include_str!("../../../migrations/20261126000090_states_checked.sql");
        let statuses: Vec<&str> = ShopeeOrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        let lists = pg_enum::check_lists(checked, "order_status");
        assert_eq!(lists.len(), 1, "push_inbox.order_status");
        assert!(lists.iter().all(|l| *l == statuses), "{lists:?}");
    }
}
