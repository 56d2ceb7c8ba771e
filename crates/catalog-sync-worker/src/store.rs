//! PostgreSQL side of catalog sync: coalescing state (`catalog_sync_state`), dirty items (`catalog_sync_dirty`),
//! events waiting for a mapping (`catalog_sync_unmapped`). Runtime queries only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dead_letters::DeadLetterStatus;
use pg_enum::text_enum;
use serde_json::Value;
use service_runtime::backoff;
use sqlx::{PgPool, Postgres, Transaction};

use crate::events::{Kind, Update};
use crate::resolve::{Resolution, Target};

pub const SOURCE: &str = "catalog-sync-worker";

text_enum! {
    /// `catalog_sync_state.state`.
    pub enum SyncState {
        /// `newest_version` is not applied yet.
        Pending = "pending",
        /// It is.
        Applied = "applied",
        /// Shopee refused it for good (a dead letter holds it).
        Parked = "parked",
    }
}

/// An event that failed validation: parked as a dead letter and acked.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub kind: Kind,
    pub reason: String,
    pub reference: Option<String>,
    pub payload: Value,
}

/// What recording a batch did (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Became the newest value of their model.
    pub taken: usize,
    /// Older than or equal to what is already known (stale or duplicate): nothing to do.
    pub superseded: usize,
    pub unmapped: usize,
    pub dead_lettered: usize,
}

type Key = (i64, i64, i64, Kind, String);

/// A batch that lost a deadlock (or a serialization conflict) is recorded again, up to three times, after up to
/// 20, 40, then 80 ms (full jitter, so the two sides do not meet again).
const DEADLOCK_RETRY_BASE: Duration = Duration::from_millis(20);
const DEADLOCK_RETRY_MAX: Duration = Duration::from_millis(80);

/// Records a batch in one transaction: dead letters, newest-wins upserts, dirty items, needs_mapping rows.
/// Once this returns Ok, every message of the batch may be acked.
pub async fn record(
    pool: &PgPool,
    flush_window: Duration,
    resolved: &[(Update, Resolution)],
    invalid: &[Invalid],
) -> Result<Recorded, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await?;
        match record_in(&mut tx, flush_window, resolved, invalid).await {
            Ok(r) => {
                tx.commit().await?;
                return Ok(r);
            }
            // Two replicas or the two subscriptions may touch the same rows; a deadlock is retried.
            Err(sqlx::Error::Database(e))
                if attempt < 4 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                drop(tx);
                let wait = backoff::delay(DEADLOCK_RETRY_BASE, DEADLOCK_RETRY_MAX, attempt - 1);
                tokio::time::sleep(backoff::full_jitter(wait)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn record_in(
    tx: &mut Transaction<'_, Postgres>,
    flush_window: Duration,
    resolved: &[(Update, Resolution)],
    invalid: &[Invalid],
) -> Result<Recorded, sqlx::Error> {
    let mut out = Recorded::default();
    for bad in invalid {
        if already_parked(tx, bad).await? {
            // The same Pub/Sub message redelivered (e.g. after a crash before its ack): parked once.
            out.dead_lettered += 1;
            continue;
        }
        dead_letters::park(
            &mut **tx,
            dead_letters::Park {
                source: SOURCE,
                kind: bad.kind.dead_letter_kind(),
                reference: bad.reference.as_deref(),
                reason: &bad.reason,
                payload: &bad.payload,
                attempts: 1,
            },
        )
        .await?;
        out.dead_lettered += 1;
    }
    // Newest per model within the batch (an UPSERT may touch a row once per statement); sorted to lock in order.
    let mut newest: BTreeMap<Key, (&Update, &Target)> = BTreeMap::new();
    let mut unmapped: BTreeMap<(Kind, String, String), (&Update, &str)> = BTreeMap::new();
    for (u, r) in resolved {
        match r {
            Resolution::Target(t) => {
                let key = (
                    t.shop_id.as_i64(),
                    t.item_id.as_i64(),
                    t.model_id.as_i64(),
                    u.kind,
                    t.location_id.clone(),
                );
                match newest.get(&key) {
                    Some((old, _)) if old.version >= u.version => out.superseded += 1,
                    Some(_) => {
                        out.superseded += 1;
                        newest.insert(key, (u, t));
                    }
                    None => {
                        newest.insert(key, (u, t));
                    }
                }
            }
            Resolution::Unmapped(reason) => {
                out.unmapped += 1;
                let key = (u.kind, u.sku.to_string(), u.hub_id.to_string());
                match unmapped.get(&key) {
                    Some((old, _)) if old.version >= u.version => {}
                    _ => {
                        unmapped.insert(key, (u, reason.as_str()));
                    }
                }
            }
        }
    }
    if !newest.is_empty() {
        let n = newest.len();
        let (mut shops, mut items, mut models, mut kinds, mut locations) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut skus, mut hubs, mut versions, mut values, mut events) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for ((shop, item, model, kind, location), (u, _)) in &newest {
            shops.push(*shop);
            items.push(*item);
            models.push(*model);
            kinds.push(*kind);
            locations.push(location.as_str());
            skus.push(u.sku.as_str());
            hubs.push(u.hub_id.as_str());
            versions.push(u.version);
            values.push(u.value);
            events.push(u.event_id.as_str());
        }
        let taken: Vec<(i64, i64, Kind)> = sqlx::query_as(
            "INSERT INTO catalog_sync_state AS s
                (shop_id, item_id, model_id, kind, location_id, sku, hub_id, newest_version, newest_value, newest_event_id)
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[],
                                  $8::int8[], $9::int8[], $10::text[])
             ON CONFLICT (shop_id, item_id, model_id, kind, location_id) DO UPDATE
                SET sku = EXCLUDED.sku, hub_id = EXCLUDED.hub_id, newest_version = EXCLUDED.newest_version,
                    newest_value = EXCLUDED.newest_value, newest_event_id = EXCLUDED.newest_event_id,
                    newest_at = now(), state = $11, attempts = 0, last_error = NULL, updated_at = now()
                WHERE EXCLUDED.newest_version > s.newest_version
             RETURNING shop_id, item_id, kind",
        )
        .bind(&shops)
        .bind(&items)
        .bind(&models)
        .bind(&kinds)
        .bind(&locations)
        .bind(&skus)
        .bind(&hubs)
        .bind(&versions)
        .bind(&values)
        .bind(&events)
        .bind(SyncState::Pending)
        .fetch_all(&mut **tx)
        .await?;
        out.taken += taken.len();
        out.superseded += n - taken.len();
        let dirty: BTreeSet<(i64, i64, Kind)> = taken.into_iter().collect();
        mark_dirty(tx, &dirty, flush_window).await?;
    }
    if !unmapped.is_empty() {
        let (mut kinds, mut skus, mut hubs, mut versions, mut values, mut events, mut reasons) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for ((kind, sku, hub), (u, reason)) in &unmapped {
            kinds.push(*kind);
            skus.push(sku.as_str());
            hubs.push(hub.as_str());
            versions.push(u.version);
            values.push(u.value);
            events.push(u.event_id.as_str());
            reasons.push(*reason);
        }
        sqlx::query(
            "INSERT INTO catalog_sync_unmapped AS u (kind, sku, hub_id, version, value, event_id, reason)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[])
             ON CONFLICT (kind, sku, hub_id) DO UPDATE
                SET version = EXCLUDED.version, value = EXCLUDED.value, event_id = EXCLUDED.event_id,
                    reason = EXCLUDED.reason, updated_at = now()
                WHERE EXCLUDED.version > u.version",
        )
        .bind(&kinds)
        .bind(&skus)
        .bind(&hubs)
        .bind(&versions)
        .bind(&values)
        .bind(&events)
        .bind(&reasons)
        .execute(&mut **tx)
        .await?;
    }
    Ok(out)
}

/// True when this very message (same Pub/Sub `message_id`) is parked already.
async fn already_parked(tx: &mut Transaction<'_, Postgres>, bad: &Invalid) -> Result<bool, sqlx::Error> {
    let Some(message_id) = bad.payload.get("message_id").and_then(Value::as_str) else {
        return Ok(false);
    };
    // Both forms can use the partial index (source, kind, reference) WHERE status = 'parked'.
    let sql = if bad.reference.is_some() {
        "SELECT EXISTS (SELECT 1 FROM dead_letters WHERE source = $1 AND kind = $2 AND status = $5
            AND reference = $3 AND payload->>'message_id' = $4)"
    } else {
        "SELECT EXISTS (SELECT 1 FROM dead_letters WHERE source = $1 AND kind = $2 AND status = $5
            AND reference IS NULL AND $3::text IS NULL AND payload->>'message_id' = $4)"
    };
    sqlx::query_scalar(sql)
        .bind(SOURCE)
        .bind(bad.kind.dead_letter_kind())
        .bind(bad.reference.as_deref())
        .bind(message_id)
        .bind(DeadLetterStatus::Parked)
        .fetch_one(&mut **tx)
        .await
}

/// Marks items dirty: due after the flush window when new; `seq` bumped when already dirty (its due time kept, so
/// a steady stream of updates cannot postpone a flush).
pub async fn mark_dirty(
    tx: &mut Transaction<'_, Postgres>,
    dirty: &BTreeSet<(i64, i64, Kind)>,
    flush_window: Duration,
) -> Result<(), sqlx::Error> {
    if dirty.is_empty() {
        return Ok(());
    }
    let shops: Vec<i64> = dirty.iter().map(|d| d.0).collect();
    let items: Vec<i64> = dirty.iter().map(|d| d.1).collect();
    let kinds: Vec<Kind> = dirty.iter().map(|d| d.2).collect();
    sqlx::query(
        "INSERT INTO catalog_sync_dirty AS d (shop_id, item_id, kind, due_at)
         SELECT shop, item, kind, now() + make_interval(secs => $4)
         FROM UNNEST($1::int8[], $2::int8[], $3::text[]) AS t(shop, item, kind)
         ON CONFLICT (shop_id, item_id, kind) DO UPDATE SET seq = d.seq + 1",
    )
    .bind(&shops)
    .bind(&items)
    .bind(&kinds)
    .bind(flush_window.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A row waiting for its mapping.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnmappedRow {
    pub kind: Kind,
    pub sku: String,
    pub hub_id: String,
    pub version: i64,
    pub value: i64,
    pub event_id: String,
}

pub async fn unmapped(pool: &PgPool, limit: i64) -> Result<Vec<UnmappedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, sku, hub_id, version, value, event_id FROM catalog_sync_unmapped
         ORDER BY updated_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Moves resolved needs_mapping rows into the coalescing state (only the version that was read is removed).
pub async fn apply_unmapped(
    pool: &PgPool,
    flush_window: Duration,
    resolved: &[(Update, Resolution)],
) -> Result<Recorded, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let targets: Vec<(Update, Resolution)> = resolved
        .iter()
        .filter(|(_, r)| matches!(r, Resolution::Target(_)))
        .cloned()
        .collect();
    let recorded = record_in(&mut tx, flush_window, &targets, &[]).await?;
    for (u, _) in &targets {
        sqlx::query(
            "DELETE FROM catalog_sync_unmapped WHERE kind = $1 AND sku = $2 AND hub_id = $3 AND version = $4",
        )
        .bind(u.kind)
        .bind(u.sku.as_str())
        .bind(u.hub_id.as_str())
        .bind(u.version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(recorded)
}

// ----- flush side -----

/// A dirty item claimed by a flusher.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub shop_id: i64,
    pub item_id: i64,
    pub kind: Kind,
    pub seq: i64,
    pub attempts: i32,
}

/// Claims due items that nobody holds (or whose lease ran out), oldest first.
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    claim_where(pool, owner, limit, lease, None).await
}

/// Claims more due items of one shop and kind (an outlet shop's batch), like [`claim`].
pub async fn claim_shop(
    pool: &PgPool,
    owner: &str,
    shop_id: i64,
    kind: Kind,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    claim_where(pool, owner, limit, lease, Some((shop_id, kind))).await
}

async fn claim_where(
    pool: &PgPool,
    owner: &str,
    limit: i64,
    lease: Duration,
    shop_kind: Option<(i64, Kind)>,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE catalog_sync_dirty d SET lease_owner = $1, lease_until = now() + make_interval(secs => $3)
         WHERE (d.shop_id, d.item_id, d.kind) IN (
            SELECT shop_id, item_id, kind FROM catalog_sync_dirty
            WHERE due_at <= now() AND (lease_until IS NULL OR lease_until < now())
              AND ($4::bigint IS NULL OR (shop_id = $4 AND kind = $5))
            ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING d.shop_id, d.item_id, d.kind, d.seq, d.attempts",
    )
    .bind(owner)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(shop_kind.map(|(shop, _)| shop))
    .bind(shop_kind.map(|(_, kind)| kind))
    .fetch_all(pool)
    .await
}

/// Whether the shop is an Instant Mart outlet (price and stock are set per outlet shop).
pub async fn is_outlet_shop(pool: &PgPool, shop_id: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query_scalar("SELECT mart_shop_id IS NOT NULL FROM shops WHERE shop_id = $1")
            .bind(shop_id)
            .fetch_optional(pool)
            .await?
            .unwrap_or(false),
    )
}

/// One model (and location) waiting to be sent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
    pub model_id: i64,
    pub location_id: String,
    pub sku: String,
    pub hub_id: String,
    pub newest_version: i64,
    pub newest_value: i64,
    pub newest_event_id: String,
    pub attempts: i32,
}

pub async fn pending(pool: &PgPool, c: &Claimed) -> Result<Vec<PendingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT model_id, location_id, sku, hub_id, newest_version, newest_value, newest_event_id, attempts
         FROM catalog_sync_state
         WHERE shop_id = $1 AND item_id = $2 AND kind = $3 AND state = $4
         ORDER BY model_id, location_id",
    )
    .bind(c.shop_id)
    .bind(c.item_id)
    .bind(c.kind)
    .bind(SyncState::Pending)
    .fetch_all(pool)
    .await
}

/// What happened to one sent row.
#[derive(Debug, Clone)]
pub enum RowOutcome {
    Applied,
    /// Try again later (attempt counted).
    Transient(String),
    /// Parked with the reason (dead letter).
    Permanent(String),
}

/// Records the outcome of one call, compare-and-set on the version sent: a newer value that arrived meanwhile
/// stays pending and is sent next.
pub async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    c: &Claimed,
    row: &PendingRow,
    outcome: &RowOutcome,
) -> Result<(), sqlx::Error> {
    match outcome {
        RowOutcome::Applied => {
            sqlx::query(
                "UPDATE catalog_sync_state SET applied_version = $6, applied_value = $7, applied_at = now(),
                    state = CASE WHEN newest_version = $6 THEN $8 ELSE state END,
                    attempts = CASE WHEN newest_version = $6 THEN 0 ELSE attempts END, last_error = NULL,
                    updated_at = now()
                 WHERE shop_id = $1 AND item_id = $2 AND model_id = $3 AND kind = $4 AND location_id = $5
                   AND (applied_version IS NULL OR applied_version < $6)",
            )
            .bind(c.shop_id)
            .bind(c.item_id)
            .bind(row.model_id)
            .bind(c.kind)
            .bind(&row.location_id)
            .bind(row.newest_version)
            .bind(row.newest_value)
            .bind(SyncState::Applied)
            .execute(&mut **tx)
            .await?;
        }
        RowOutcome::Transient(reason) => {
            sqlx::query(
                "UPDATE catalog_sync_state SET attempts = attempts + 1, last_error = $7, updated_at = now()
                 WHERE shop_id = $1 AND item_id = $2 AND model_id = $3 AND kind = $4 AND location_id = $5
                   AND newest_version = $6 AND state = $8",
            )
            .bind(c.shop_id)
            .bind(c.item_id)
            .bind(row.model_id)
            .bind(c.kind)
            .bind(&row.location_id)
            .bind(row.newest_version)
            .bind(reason)
            .bind(SyncState::Pending)
            .execute(&mut **tx)
            .await?;
        }
        RowOutcome::Permanent(reason) => {
            let parked = sqlx::query(
                "UPDATE catalog_sync_state SET state = $8, attempts = attempts + 1, last_error = $7,
                    updated_at = now()
                 WHERE shop_id = $1 AND item_id = $2 AND model_id = $3 AND kind = $4 AND location_id = $5
                   AND newest_version = $6 AND state = $9",
            )
            .bind(c.shop_id)
            .bind(c.item_id)
            .bind(row.model_id)
            .bind(c.kind)
            .bind(&row.location_id)
            .bind(row.newest_version)
            .bind(reason)
            .bind(SyncState::Parked)
            .bind(SyncState::Pending)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if parked == 1 {
                let kind = c.kind;
                let reference = format!("{}@{}", row.sku, row.hub_id);
                // A redriven update that Shopee refuses again goes back to its own dead letter.
                if repark_redriven(tx, kind, &reference, row.newest_version, reason).await? {
                    return Ok(());
                }
                let payload = ParkedUpdate {
                    shop_id: c.shop_id,
                    item_id: c.item_id,
                    model_id: row.model_id,
                    kind: c.kind,
                    location_id: row.location_id.clone(),
                    sku: row.sku.clone(),
                    hub_id: row.hub_id.clone(),
                    version: row.newest_version,
                    value: row.newest_value,
                    event_id: Some(row.newest_event_id.clone()),
                };
                let payload = serde_json::to_value(&payload).unwrap_or(Value::Null);
                dead_letters::park(
                    &mut **tx,
                    dead_letters::Park {
                        source: SOURCE,
                        kind: kind.dead_letter_kind(),
                        reference: Some(&reference),
                        reason,
                        payload: &payload,
                        attempts: row.attempts + 1,
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The payload of a dead letter for an update Shopee refused for good: what is needed to send it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParkedUpdate {
    pub shop_id: i64,
    pub item_id: i64,
    pub model_id: i64,
    pub kind: Kind,
    pub location_id: String,
    pub sku: String,
    pub hub_id: String,
    pub version: i64,
    pub value: i64,
    /// Absent in letters parked before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// Parks again, with the new reason, the redriven dead letter of this update (same kind, `sku@hub` and version);
/// false when there is none (the caller parks a new one). Through `dead_letters::repark`, inside the
/// caller's transaction so the state row and its letter never disagree.
async fn repark_redriven(
    tx: &mut Transaction<'_, Postgres>,
    kind: Kind,
    reference: &str,
    version: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM dead_letters
         WHERE source = $1 AND status = $5 AND kind = $2 AND reference = $3 AND payload->>'version' = $4
         ORDER BY id DESC LIMIT 1 FOR UPDATE",
    )
    .bind(SOURCE)
    .bind(kind.dead_letter_kind())
    .bind(reference)
    .bind(version.to_string())
    .bind(DeadLetterStatus::Redriven)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else { return Ok(false) };
    dead_letters::repark(&mut **tx, id, reason).await?;
    metrics::counter!("catalog_sync_redrives_total", "outcome" => "parked_again").increment(1);
    tracing::warn!(
        dead_letter.id = id,
        reference,
        reason,
        "redriven update refused again; parked with the new reason"
    );
    Ok(true)
}

/// Puts a parked update back through the flusher: its state row, if still parked at `version`, becomes pending
/// and its item dirty (due after the flush window). False when the row moved on: a newer version arrived
/// (newest wins: nothing to redo), it was applied or re-armed already, or the row is gone.
pub async fn rearm_parked(
    tx: &mut Transaction<'_, Postgres>,
    p: &ParkedUpdate,
    flush_window: Duration,
) -> Result<bool, sqlx::Error> {
    let rearmed = sqlx::query(
        "UPDATE catalog_sync_state SET state = $7, attempts = 0, last_error = NULL, updated_at = now()
         WHERE shop_id = $1 AND item_id = $2 AND model_id = $3 AND kind = $4 AND location_id = $5
           AND state = $8 AND newest_version = $6",
    )
    .bind(p.shop_id)
    .bind(p.item_id)
    .bind(p.model_id)
    .bind(p.kind)
    .bind(&p.location_id)
    .bind(p.version)
    .bind(SyncState::Pending)
    .bind(SyncState::Parked)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if rearmed == 0 {
        return Ok(false);
    }
    let dirty = BTreeSet::from([(p.shop_id, p.item_id, p.kind)]);
    mark_dirty(tx, &dirty, flush_window).await?;
    Ok(true)
}

/// The newest version known for the state row of a parked update, if the row exists.
pub async fn newest_version(pool: &PgPool, p: &ParkedUpdate) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT newest_version FROM catalog_sync_state
         WHERE shop_id = $1 AND item_id = $2 AND model_id = $3 AND kind = $4 AND location_id = $5",
    )
    .bind(p.shop_id)
    .bind(p.item_id)
    .bind(p.model_id)
    .bind(p.kind)
    .bind(&p.location_id)
    .fetch_optional(pool)
    .await
}

/// Releases a claimed item: removed when nothing is pending and nothing arrived since the claim; otherwise due
/// again at `retry_at` (backoff) or after the flush window (new work).
pub async fn release(
    tx: &mut Transaction<'_, Postgres>,
    c: &Claimed,
    retry_in: Option<Duration>,
    flush_window: Duration,
) -> Result<(), sqlx::Error> {
    if let Some(wait) = retry_in {
        sqlx::query(
            "UPDATE catalog_sync_dirty SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1,
                due_at = now() + make_interval(secs => $4)
             WHERE shop_id = $1 AND item_id = $2 AND kind = $3",
        )
        .bind(c.shop_id)
        .bind(c.item_id)
        .bind(c.kind)
        .bind(wait.as_secs_f64())
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    let deleted = sqlx::query(
        "DELETE FROM catalog_sync_dirty d WHERE shop_id = $1 AND item_id = $2 AND kind = $3 AND seq = $4
           AND NOT EXISTS (SELECT 1 FROM catalog_sync_state s WHERE s.shop_id = $1 AND s.item_id = $2
                           AND s.kind = $3 AND s.state = $5)",
    )
    .bind(c.shop_id)
    .bind(c.item_id)
    .bind(c.kind)
    .bind(c.seq)
    .bind(SyncState::Pending)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if deleted == 0 {
        sqlx::query(
            "UPDATE catalog_sync_dirty SET lease_owner = NULL, lease_until = NULL, attempts = 0,
                due_at = now() + make_interval(secs => $4)
             WHERE shop_id = $1 AND item_id = $2 AND kind = $3",
        )
        .bind(c.shop_id)
        .bind(c.item_id)
        .bind(c.kind)
        .bind(flush_window.as_secs_f64())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A pending row whose mapping changed since it was resolved: it goes back to needs_mapping (re-resolved by the
/// mapping loop), so it is never sent to the old ids.
pub async fn unmap(
    tx: &mut Transaction<'_, Postgres>,
    c: &Claimed,
    row: &PendingRow,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM catalog_sync_state WHERE shop_id = $1 AND item_id = $2 AND model_id = $3 AND kind = $4
           AND location_id = $5 AND newest_version = $6 AND state = $7",
    )
    .bind(c.shop_id)
    .bind(c.item_id)
    .bind(row.model_id)
    .bind(c.kind)
    .bind(&row.location_id)
    .bind(row.newest_version)
    .bind(SyncState::Pending)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if deleted == 1 {
        sqlx::query(
            "INSERT INTO catalog_sync_unmapped AS u (kind, sku, hub_id, version, value, event_id, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (kind, sku, hub_id) DO UPDATE
                SET version = EXCLUDED.version, value = EXCLUDED.value, event_id = EXCLUDED.event_id,
                    reason = EXCLUDED.reason, updated_at = now()
                WHERE EXCLUDED.version > u.version",
        )
        .bind(c.kind)
        .bind(&row.sku)
        .bind(&row.hub_id)
        .bind(row.newest_version)
        .bind(row.newest_value)
        .bind(&row.newest_event_id)
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `kind` and `state` CHECK of the catalog tables holds the enums' spellings.
    #[test]
    fn spellings_match_the_migration() {
        let sql = include_str!("../../../migrations/20261126000040_catalog_sync.sql");
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        let kind_lists = pg_enum::check_lists(sql, "kind");
        assert_eq!(
            kind_lists.len(),
            3,
            "catalog_sync_state, catalog_sync_dirty, catalog_sync_unmapped"
        );
        assert!(kind_lists.iter().all(|l| *l == kinds), "{kind_lists:?}");
        let states: Vec<&str> = SyncState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(pg_enum::check_lists(sql, "state"), vec![states]);
    }
}
