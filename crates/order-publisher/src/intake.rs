//! Inbox -> orders: claims pushes, records each order's latest status, fetches details in batches of up to 50 per
//! shop, and turns READY_TO_SHIP orders into `new_order` events in the outbox — in the same transaction that marks
//! the order published, so an order gets exactly one event whatever is redelivered or restarted.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use dead_letters::{DeadLetterKind, Park};
use domain::order::{NewOrderEvent, ShopeeOrderStatus};
use domain::{HubId, ItemId, ModelId, OrderSn, ShopId, Sku};
use pg_enum::{Text, text_enum};
use product_mapping::{Hubs, Mappings};
use push_inbox::{ClaimedPush, Inbox, PushKind};
use serde_json::json;
use shopee_client::api::order::{OptionalField, OrderDetail};
use shopee_client::{ErrorKind, ShopeeClient};
use sqlx::PgPool;
use tracing::Instrument as _;

use crate::transform::{self, TransformError};

pub const SOURCE: &str = "order-publisher";
/// How long a claimed push stays leased to this replica: longer than a batch takes, short enough that the work of
/// a crashed replica is picked up again quickly.
const LEASE: Duration = Duration::from_secs(30);
/// Transient failures are retried this many times before the order is parked.
const MAX_ATTEMPTS: i32 = 25;

#[derive(Clone)]
pub struct Intake {
    pub pool: PgPool,
    pub inbox: Inbox,
    pub shopee: ShopeeClient,
    pub mappings: Mappings,
    pub hubs: Hubs,
    /// Full topic path (`projects/../topics/..`).
    pub topic: String,
    pub batch_size: i64,
}

text_enum! {
    /// `orders.intake_state`: received (seen, not actionable yet) -> needs_mapping | published; parked when it
    /// cannot be handled.
    pub enum IntakeState {
        Received = "received",
        /// Waiting for a product or hub mapping (`orders.detail` says which).
        NeedsMapping = "needs_mapping",
        /// Its `new_order` is in the outbox.
        Published = "published",
        /// A dead letter holds it.
        Parked = "parked",
    }
}

/// What happened to one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Published,
    AlreadyPublished,
    NeedsMapping,
    NotActionable,
    Parked,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::AlreadyPublished => "already_published",
            Self::NeedsMapping => "needs_mapping",
            Self::NotActionable => "not_actionable",
            Self::Parked => "parked",
        }
    }
}

/// The first retry of a failed detail fetch waits this long; each further one twice as long, up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_millis(500);
/// 500 ms * 2^8: the ninth and later retries wait about two minutes.
const RETRY_MAX: Duration = Duration::from_secs(128);

/// The wait before the next fetch of pushes that failed `attempts` times (1-based).
fn backoff(attempts: i32) -> Duration {
    let attempt = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    service_runtime::backoff::delay(RETRY_BASE, RETRY_MAX, attempt)
}

impl Intake {
    /// Handles one batch of pending pushes; returns how many were claimed.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let claimed = self.inbox.claim(self.batch_size, LEASE).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let count = claimed.len();
        let mut done: Vec<i64> = Vec::new();
        // (shop, order_sn) -> inbox rows asking for its detail.
        let mut wanted: BTreeMap<ShopId, BTreeMap<OrderSn, Vec<ClaimedPush>>> = BTreeMap::new();
        for push in claimed {
            let (Some(shop), PushKind::OrderStatus(order)) = (push.shop_id, &push.kind) else {
                // Not an order status push (tracking number, shop authorization, unknown codes): recorded only.
                done.push(push.id);
                continue;
            };
            let order_sn = order.order_sn.clone();
            match self
                .record_status(shop, &order_sn, order.status, order.update_time)
                .await?
            {
                Next::Done => done.push(push.id),
                Next::FetchDetail => wanted
                    .entry(shop)
                    .or_default()
                    .entry(order_sn)
                    .or_default()
                    .push(push),
            }
        }
        self.inbox.complete(&done).await?;
        for (shop, orders) in wanted {
            self.fetch_and_accept(shop, orders).await?;
        }
        Ok(count)
    }

    /// Records the pushed status on the order; says whether its detail is needed.
    async fn record_status(
        &self,
        shop: ShopId,
        sn: &OrderSn,
        status: ShopeeOrderStatus,
        update_time: Option<i64>,
    ) -> anyhow::Result<Next> {
        let state: IntakeState = sqlx::query_scalar(
            "INSERT INTO orders (shop_id, order_sn, shopee_status, shopee_update_time) VALUES ($1, $2, $3, $4)
             ON CONFLICT (shop_id, order_sn) DO UPDATE
                SET shopee_status = CASE WHEN orders.shopee_update_time IS NULL OR EXCLUDED.shopee_update_time IS NULL
                                          OR EXCLUDED.shopee_update_time >= orders.shopee_update_time
                                         THEN EXCLUDED.shopee_status ELSE orders.shopee_status END,
                    shopee_update_time = GREATEST(orders.shopee_update_time, EXCLUDED.shopee_update_time),
                    updated_at = now()
             RETURNING intake_state",
        )
        .bind(shop.as_i64())
        .bind(sn.as_str())
        .bind(Text(status))
        .bind(update_time)
        .fetch_one(&self.pool)
        .await?;
        if state == IntakeState::Published {
            if status.is_cancellation() {
                sqlx::query(
                    "UPDATE orders SET cancelled_after_publish_at = COALESCE(cancelled_after_publish_at, now()),
                            updated_at = now()
                     WHERE shop_id = $1 AND order_sn = $2",
                )
                .bind(shop.as_i64())
                .bind(sn.as_str())
                .execute(&self.pool)
                .await?;
                metrics::counter!("orders_cancelled_after_publish_total").increment(1);
                tracing::info!(shop.id = shop.get(), order.sn = %sn, "order cancelled after its new_order was published");
            }
            return Ok(Next::Done);
        }
        // Only READY_TO_SHIP (or a later pre-shipping status, in case that push was lost) needs the detail.
        Ok(if status.publishes_new_order() {
            Next::FetchDetail
        } else {
            Next::Done
        })
    }

    /// Fetches details (batches of <= 50, one shop) and accepts each order. Inbox rows are completed, retried later
    /// or parked according to the outcome; `orders` with no inbox rows (redrives, needs_mapping rechecks) work too.
    pub async fn fetch_and_accept(
        &self,
        shop: ShopId,
        orders: BTreeMap<OrderSn, Vec<ClaimedPush>>,
    ) -> anyhow::Result<()> {
        let sns: Vec<OrderSn> = orders.keys().cloned().collect();
        let ids = |sns: &mut dyn Iterator<Item = &OrderSn>| -> Vec<i64> {
            sns.flat_map(|sn| orders.get(sn).into_iter().flatten().map(|p| p.id))
                .collect()
        };
        let span = tracing::info_span!("orders.fetch_detail", shop.id = shop.get(), orders = sns.len());
        let details = match self
            .shopee
            .get_order_detail(shop, &sns, OptionalField::FOR_INTAKE)
            .instrument(span)
            .await
        {
            Ok(details) => details,
            Err(e) => {
                let all = ids(&mut sns.iter());
                let attempts = orders.values().flatten().map(|p| p.attempts).max().unwrap_or(1);
                let transient = matches!(e.kind(), ErrorKind::Retryable | ErrorKind::Quota);
                if transient && attempts < MAX_ATTEMPTS {
                    let delay = e.retry_after().unwrap_or_else(|| backoff(attempts));
                    tracing::warn!(shop.id = shop.get(), error = %e, retry_in_ms = delay.as_millis() as u64, "order detail failed; will retry");
                    self.inbox.retry_later(&all, delay, &e.to_string()).await?;
                } else {
                    for sn in &sns {
                        self.park(shop, sn, &format!("get_order_detail failed: {e}"))
                            .await?;
                    }
                    self.inbox.complete(&all).await?;
                }
                return Ok(());
            }
        };
        let mut seen: Vec<OrderSn> = Vec::new();
        for detail in &details {
            // Continue the trace of the push that brought the order (stored by the gateway in the inbox).
            let traceparent = orders
                .get(&detail.order_sn)
                .and_then(|pushes| pushes.iter().find_map(|p| p.traceparent.clone()));
            let span = tracing::info_span!("order.intake", shop.id = shop.get(), order.sn = %detail.order_sn);
            service_runtime::telemetry::continue_trace(&span, traceparent.as_deref());
            let outcome = self.accept(shop, detail).instrument(span).await?;
            metrics::counter!("orders_intake_total", "outcome" => outcome.as_str()).increment(1);
            seen.push(detail.order_sn.clone());
        }
        self.inbox.complete(&ids(&mut seen.iter())).await?;
        // Shopee did not return some orders (not visible yet): try again shortly.
        let missing: Vec<&OrderSn> = sns.iter().filter(|sn| !seen.contains(sn)).collect();
        if !missing.is_empty() {
            let missing_ids = ids(&mut missing.iter().copied());
            tracing::warn!(
                shop.id = shop.get(),
                missing = missing.len(),
                "orders absent from get_order_detail; retrying"
            );
            self.inbox
                .retry_later(
                    &missing_ids,
                    Duration::from_secs(5),
                    "order not returned by get_order_detail",
                )
                .await?;
        }
        Ok(())
    }

    /// One order detail: publish, wait for a mapping, or record.
    pub async fn accept(&self, shop: ShopId, detail: &OrderDetail) -> anyhow::Result<Outcome> {
        let sn = &detail.order_sn;
        if !detail.order_status.publishes_new_order() {
            // The push said READY_TO_SHIP but Shopee now says otherwise (e.g. already cancelled): recorded only.
            return Ok(Outcome::NotActionable);
        }
        let Some(hub) = self.hub_of(shop).await? else {
            self.needs_mapping(shop, sn, "the shop has no active hub (hub mapping missing)")
                .await?;
            return Ok(Outcome::NeedsMapping);
        };
        let mut resolved: HashMap<(ItemId, ModelId), Sku> = HashMap::new();
        for item in &detail.item_list {
            let model = item.model_id.unwrap_or(ModelId::NONE);
            if let Some(sku) = self.mappings.sku_for_model(shop, item.item_id, model).await? {
                resolved.insert((item.item_id, model), sku);
            }
        }
        let sku_of = |item: ItemId, model: ModelId| resolved.get(&(item, model)).cloned();
        match transform::new_order(detail, shop, hub.clone(), &sku_of) {
            Ok(order) => self.publish(shop, sn, &hub, order).await,
            Err(TransformError::Unmapped(lines)) => {
                self.needs_mapping(shop, sn, &TransformError::Unmapped(lines).to_string())
                    .await?;
                Ok(Outcome::NeedsMapping)
            }
            Err(e @ TransformError::Invalid(_)) => {
                self.park(shop, sn, &e.to_string()).await?;
                Ok(Outcome::Parked)
            }
        }
    }

    async fn hub_of(&self, shop: ShopId) -> anyhow::Result<Option<HubId>> {
        Ok(self
            .hubs
            .for_shop(shop)
            .await?
            .into_iter()
            .next()
            .map(|h| h.hub_id))
    }

    async fn publish(
        &self,
        shop: ShopId,
        sn: &OrderSn,
        hub: &HubId,
        order: domain::order::NewOrder,
    ) -> anyhow::Result<Outcome> {
        let event_id = uuid::Uuid::now_v7();
        let event = transform::event(order, event_id, Utc::now());
        let key = NewOrderEvent::idempotency_key(shop, sn);
        let traceparent = service_runtime::telemetry::current_traceparent();
        let mut attributes = json!({
            "event_type": NewOrderEvent::EVENT_TYPE,
            "source": "shopee",
            "schema_version": NewOrderEvent::SCHEMA_VERSION.to_string(),
            "idempotency_key": key,
        });
        if let (Some(tp), Some(obj)) = (&traceparent, attributes.as_object_mut()) {
            obj.insert("traceparent".into(), json!(tp));
        }
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO outbox (topic, ordering_key, idempotency_key, attributes, payload, traceparent)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&self.topic)
        .bind(NewOrderEvent::ordering_key(shop, sn))
        .bind(&key)
        .bind(&attributes)
        .bind(serde_json::to_value(&event)?)
        .bind(traceparent.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE orders SET intake_state = $5, published_at = COALESCE(published_at, now()),
                    hub_id = $3, new_order_event_id = COALESCE(new_order_event_id, $4), detail = NULL, updated_at = now()
             WHERE shop_id = $1 AND order_sn = $2",
        )
        .bind(shop.as_i64())
        .bind(sn.as_str())
        .bind(hub.as_str())
        .bind(event_id)
        .bind(IntakeState::Published)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if inserted == 1 {
            tracing::info!("new_order queued in the outbox");
            Ok(Outcome::Published)
        } else {
            Ok(Outcome::AlreadyPublished)
        }
    }

    async fn needs_mapping(&self, shop: ShopId, sn: &OrderSn, why: &str) -> anyhow::Result<()> {
        tracing::warn!(reason = why, "order waits for a mapping");
        sqlx::query(
            "UPDATE orders SET intake_state = $4, detail = $3, updated_at = now()
             WHERE shop_id = $1 AND order_sn = $2 AND intake_state <> $5",
        )
        .bind(shop.as_i64())
        .bind(sn.as_str())
        .bind(why)
        .bind(IntakeState::NeedsMapping)
        .bind(IntakeState::Published)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn park(&self, shop: ShopId, sn: &OrderSn, reason: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let payload = json!({"shop_id": shop.get(), "order_sn": sn.as_str()});
        let reference = format!("{shop}:{sn}");
        dead_letters::park(
            &mut *tx,
            Park {
                source: SOURCE,
                kind: DeadLetterKind::Order,
                reference: Some(&reference),
                reason,
                payload: &payload,
                attempts: 1,
            },
        )
        .await?;
        sqlx::query(
            "UPDATE orders SET intake_state = $4, detail = $3, updated_at = now()
             WHERE shop_id = $1 AND order_sn = $2 AND intake_state <> $5",
        )
        .bind(shop.as_i64())
        .bind(sn.as_str())
        .bind(reason)
        .bind(IntakeState::Parked)
        .bind(IntakeState::Published)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Orders waiting for a mapping (or parked and redriven): fetch their details again and accept them, reading
    /// mappings from PostgreSQL (a mapping that was just added may not have reached the cache yet).
    pub async fn retry_orders(&self, orders: Vec<(ShopId, OrderSn)>) -> anyhow::Result<()> {
        let fresh = Self {
            mappings: self.mappings.uncached(),
            ..self.clone()
        };
        let mut by_shop: BTreeMap<ShopId, BTreeMap<OrderSn, Vec<ClaimedPush>>> = BTreeMap::new();
        for (shop, sn) in orders {
            by_shop.entry(shop).or_default().insert(sn, Vec::new());
        }
        for (shop, orders) in by_shop {
            fresh.fetch_and_accept(shop, orders).await?;
        }
        Ok(())
    }

    /// Orders in `needs_mapping`, oldest first.
    pub async fn needs_mapping_orders(&self, limit: i64) -> anyhow::Result<Vec<(ShopId, OrderSn)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT shop_id, order_sn FROM orders WHERE intake_state = $2 ORDER BY updated_at LIMIT $1",
        )
        .bind(limit)
        .bind(IntakeState::NeedsMapping)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(shop, sn)| Some((ShopId::from_i64(shop).ok()?, OrderSn::parse(&sn).ok()?)))
            .collect())
    }

    /// Dead letters an operator asked to redrive: the order is fetched and accepted again.
    pub async fn redrive(&self) -> anyhow::Result<usize> {
        let letters = dead_letters::take_redrive_requests(&self.pool, SOURCE, 50).await?;
        let mut orders = Vec::new();
        for letter in &letters {
            let shop = letter
                .payload
                .get("shop_id")
                .and_then(|v| v.as_u64())
                .and_then(|s| ShopId::new(s).ok());
            let sn = letter
                .payload
                .get("order_sn")
                .and_then(|v| v.as_str())
                .and_then(|s| OrderSn::parse(s).ok());
            match shop.zip(sn) {
                Some((shop, sn)) => {
                    sqlx::query(
                        "UPDATE orders SET intake_state = $3, updated_at = now()
                         WHERE shop_id = $1 AND order_sn = $2 AND intake_state = $4",
                    )
                    .bind(shop.as_i64())
                    .bind(sn.as_str())
                    .bind(IntakeState::Received)
                    .bind(IntakeState::Parked)
                    .execute(&self.pool)
                    .await?;
                    orders.push((shop, sn));
                }
                None => {
                    dead_letters::repark(&self.pool, letter.id, "payload has no shop_id/order_sn").await?
                }
            }
        }
        let n = orders.len();
        self.retry_orders(orders).await?;
        Ok(n)
    }
}

enum Next {
    Done,
    FetchDetail,
}

/// `(max(product_mappings.updated_at), max(hubs.updated_at))`: changes when a mapping or a hub changed.
type Watermark = (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>);

/// Publishes waiting orders as soon as their mapping exists: re-checks `needs_mapping` orders whenever product
/// mappings or hubs changed (and on the first run), and handles redrive requests. Run every 2 s.
pub struct WaitingOrders {
    intake: Intake,
    /// The watermark the last complete re-check saw.
    seen: std::sync::Mutex<Option<Watermark>>,
}

impl WaitingOrders {
    pub const EVERY: Duration = Duration::from_secs(2);

    pub fn new(intake: Intake) -> Self {
        Self {
            intake,
            seen: std::sync::Mutex::new(None),
        }
    }

    pub async fn run_once(&self) -> anyhow::Result<()> {
        let intake = &self.intake;
        let current: Watermark = sqlx::query_as(
            "SELECT (SELECT max(updated_at) FROM product_mappings), (SELECT max(updated_at) FROM hubs)",
        )
        .fetch_one(&intake.pool)
        .await?;
        let seen = *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen != Some(current) {
            let waiting = intake.needs_mapping_orders(500).await?;
            if !waiting.is_empty() {
                tracing::info!(
                    orders = waiting.len(),
                    "mappings changed: retrying orders that need a mapping"
                );
                intake.retry_orders(waiting).await?;
            }
            *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(current);
        }
        intake.redrive().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fetch_is_retried_after_500_ms_doubling_up_to_128_s() {
        let waits: Vec<u64> = [0, 1, 2, 3, 9, 10, 25]
            .map(|a| backoff(a).as_millis() as u64)
            .to_vec();
        assert_eq!(waits, [500, 500, 1000, 2000, 128_000, 128_000, 128_000]);
    }

    /// `orders.intake_state`'s CHECK holds the enum's spellings.
    #[test]
    fn intake_states_match_the_migration() {
        let sql = include_str!("../../../migrations/20261126000020_orders_outbox_dead_letters.sql");
        let states: Vec<&str> = IntakeState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(pg_enum::check_lists(sql, "intake_state"), vec![states]);
    }

    /// `orders.shopee_status`'s CHECK holds Shopee's statuses as `domain` spells them.
    #[test]
    fn shopee_statuses_match_the_migration() {
        let sql = include_str!("../../../migrations/20261126000090_states_checked.sql");
        let statuses: Vec<&str> = ShopeeOrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(pg_enum::check_lists(sql, "shopee_status"), vec![statuses]);
    }
}
