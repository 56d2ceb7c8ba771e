//! The flusher: claims dirty items, sends all pending models of an item in one `update_price` / `update_stock`
//! (at most 50 models per call) inside the per-shop rate limit (the Shopee client waits for its slot), and records
//! each model's outcome with a compare-and-set on the version sent. An Instant Mart outlet shop's due items go
//! together in one `batch_update_outlet_price` / `batch_update_outlet_stock` (up to 100 items, an asynchronous task
//! polled with `get_batch_task_result`) when there are enough of them to pay off.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use domain::{ItemId, ModelId, Money, ShopId};
use shopee_client::api::product::{
    BatchFailure, BatchTaskType, BatchUpdateOutletPriceRequest, BatchUpdateOutletStockRequest, ModelFailure,
    OUTLET_BATCH_MAX, OutletPriceItem, OutletStockItem, PRICE_STOCK_LIST_MAX, PriceEntry, PublishStatus,
    SellerStock, StockEntry, TaskId, UpdatePriceRequest, UpdateStockRequest, price_number,
};
use shopee_client::error::CodeClass;
use shopee_client::{Error as ShopeeError, ErrorKind, ShopeeClient};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::events::Kind;
use crate::store::{self, Claimed, PendingRow, RowOutcome};

/// How a `failure_list` entry is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureClass {
    /// Shopee refused it for a reason a retry will not fix: parked after this attempt.
    Permanent(String),
    /// Retried later.
    Transient(String),
}

/// Classifies one `failure_list` entry. Shopee's per-model code decides when there is one: a retryable code
/// (`error_system_busy`, `error_rate_limit`, ...) is retried, a known refusal (`error_item_deleted`,
/// `error_stock_less_than_promotion_reserved`, `error_cannot_update_price_in_promotion`, `error_param`, ...) is
/// parked. Without a code, or with one this worker does not know, the message's wording decides, and what is not
/// recognised is retried (up to `max_model_attempts`, then parked). The reason keeps the code and the message.
pub fn classify_failure(f: &ModelFailure) -> FailureClass {
    classify(f.code(), f.message())
}

/// [`classify_failure`] on a code and a message.
pub fn classify(code: Option<&str>, message: &str) -> FailureClass {
    let described = match code {
        Some(code) if message.is_empty() => code.to_owned(),
        Some(code) => format!("{code}: {message}"),
        None => message.to_owned(),
    };
    if let Some(code) = code {
        match shopee_client::error::classify_code(code, message) {
            CodeClass::Retryable | CodeClass::Quota | CodeClass::InvalidToken => {
                return FailureClass::Transient(described);
            }
            CodeClass::Permanent => {}
        }
        if let Some(what) = refusal_of_code(code) {
            return FailureClass::Permanent(format!("{what} ({described})"));
        }
    }
    match refusal_in_words(message) {
        Some(what) => FailureClass::Permanent(format!("{what} ({described})")),
        None => FailureClass::Transient(described),
    }
}

/// What a known per-model refusal code means; `None` for a code this worker does not know.
fn refusal_of_code(code: &str) -> Option<&'static str> {
    let c = code.to_ascii_lowercase();
    match c.as_str() {
        "error_param" | "error_price" | "error_stock" | "error_location" => Some("refused as invalid"),
        "error_permission" | "error_auth" => Some("not permitted"),
        _ => refusal_in_words(&c.replace('_', " ")),
    }
}

/// The refusal a code or message describes in words (Shopee's documented reasons and the sandbox's wording).
fn refusal_in_words(text: &str) -> Option<&'static str> {
    let r = text.to_ascii_lowercase().replace('_', " ");
    if r.contains("deleted") || r.contains("not found") || r.contains("not exist") {
        Some("item or model deleted")
    } else if r.contains("reserve") {
        Some("stock under promotion reserve")
    } else if r.contains("lock") || r.contains("in promotion") || r.contains("promotion") {
        Some("price locked by promotion")
    } else if r.contains("location")
        || r.contains("negative")
        || r.contains("greater than")
        || r.contains("param")
    {
        Some("refused as invalid")
    } else {
        None
    }
}

/// Exponential backoff for an item after failed attempt number `attempts` (0-based).
pub fn backoff(settings: &Settings, attempts: i32) -> Duration {
    let attempt = u32::try_from(attempts).unwrap_or(0);
    service_runtime::backoff::delay(settings.retry_base, settings.retry_max, attempt)
}

#[derive(Clone)]
pub struct Flusher {
    pub pool: PgPool,
    pub shopee: ShopeeClient,
    pub settings: Settings,
    pub owner: String,
    /// Woken when a SKU turned out to map elsewhere (its update waits in needs_mapping for the mapping loop).
    pub moved: Arc<Notify>,
}

/// What one flush decided for a claimed item, written in one transaction by [`Flusher::finish`].
#[derive(Debug, Default)]
struct Settled {
    /// Rows whose SKU maps elsewhere now: back to needs_mapping.
    moved: Vec<(PendingRow, String)>,
    outcomes: Vec<(PendingRow, RowOutcome)>,
    /// Due again after this (backoff); None = released normally.
    retry_in: Option<Duration>,
}

impl Settled {
    fn retry_after(&mut self, wait: Duration) {
        self.retry_in = Some(self.retry_in.map_or(wait, |r| r.max(wait)));
    }
}

/// A claimed item with its rows to send.
struct Work {
    claimed: Claimed,
    rows: Vec<PendingRow>,
    settled: Settled,
}

impl Work {
    fn models(&self) -> usize {
        let mut ids: Vec<i64> = self.rows.iter().map(|r| r.model_id).collect();
        ids.dedup();
        ids.len()
    }
}

/// How a batch outlet task ended.
enum TaskEnd {
    Done(Vec<BatchFailure>),
    /// Failed, timed out or unreadable: every row is retried.
    Retry(String),
}

impl Flusher {
    /// `settings.flush_concurrency` loops, each claiming one item at a time, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.settings.flush_concurrency.max(1) {
            let me = Flusher {
                owner: format!("{}-{i}", self.owner),
                ..self.clone()
            };
            let shutdown = shutdown.clone();
            tasks.spawn(async move { me.run_one(shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn run_one(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let claimed = match store::claim(&self.pool, &self.owner, 1, self.settings.lease).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim dirty items; retrying");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.settings.poll_interval) => continue,
                }
            }
            for c in claimed {
                // An item in flight is finished even during shutdown (its lease would expire otherwise).
                if let Err(e) = self.flush_claimed(c.clone()).await {
                    tracing::warn!(shop.id = c.shop_id, item.id = c.item_id, kind = %c.kind, error = %e,
                        "flushing failed; the claimed items are retried when their lease ends");
                }
            }
        }
    }

    /// Flushes a claimed item; for an Instant Mart outlet shop, first gathers the shop's other due items of the
    /// same kind and sends them together in one batch outlet update when there are enough of them.
    async fn flush_claimed(&self, c: Claimed) -> anyhow::Result<()> {
        let outlet = store::is_outlet_shop(&self.pool, c.shop_id).await?;
        if !outlet || self.settings.outlet_batch_min_items == 0 {
            return self.flush_item(&c, outlet).await;
        }
        let more_limit = i64::try_from(OUTLET_BATCH_MAX - 1).unwrap_or(99);
        let more = store::claim_shop(
            &self.pool,
            &self.owner,
            c.shop_id,
            c.kind,
            more_limit,
            self.settings.lease,
        )
        .await?;
        let mut batch = Vec::with_capacity(1 + more.len());
        batch.push(c);
        batch.extend(more);
        self.flush_outlet(batch).await
    }

    /// Sends one claimed item's pending models with `update_price` / `update_stock` and records what happened.
    #[tracing::instrument(skip_all, fields(shop.id = c.shop_id, item.id = c.item_id, kind = %c.kind))]
    async fn flush_item(&self, c: &Claimed, outlet: bool) -> anyhow::Result<()> {
        let kind = c.kind;
        let mut work = self.prepare(c.clone(), outlet).await?;
        self.send_per_item(kind, &mut work).await?;
        self.finish(kind, vec![work]).await
    }

    /// Claimed items of one outlet shop and kind: one `batch_update_outlet_*` for up to 100 of them when at least
    /// `outlet_batch_min_items` have something to send, per-item calls otherwise (and for an item of more than 50
    /// models, which one batch entry cannot hold).
    #[tracing::instrument(skip_all, fields(shop.id = batch[0].shop_id, kind = %batch[0].kind, items = batch.len()))]
    async fn flush_outlet(&self, batch: Vec<Claimed>) -> anyhow::Result<()> {
        let kind = batch[0].kind;
        let shop = ShopId::from_i64(batch[0].shop_id)?;
        let mut done = Vec::with_capacity(batch.len());
        let mut entries = Vec::new();
        for c in batch {
            let work = self.prepare(c, true).await?;
            if work.rows.is_empty() {
                done.push(work);
            } else {
                entries.push(work);
            }
        }
        let (mut single, mut batched): (Vec<Work>, Vec<Work>) = entries
            .into_iter()
            .partition(|w| w.models() > PRICE_STOCK_LIST_MAX);
        if batched.len() < self.settings.outlet_batch_min_items.max(1) {
            single.append(&mut batched);
        }
        for mut work in single {
            self.send_per_item(kind, &mut work).await?;
            done.push(work);
        }
        if !batched.is_empty() {
            metrics::counter!("catalog_sync_outlet_batch_items_total", "kind" => kind.as_str())
                .increment(batched.len() as u64);
            match self.submit_batch(kind, shop, &batched).await {
                Ok(task) => {
                    let end = self.await_task(kind, shop, task).await;
                    let label = match &end {
                        TaskEnd::Done(f) if f.is_empty() => "ok",
                        TaskEnd::Done(_) => "partial",
                        TaskEnd::Retry(_) => "retry",
                    };
                    metrics::counter!("catalog_sync_outlet_batches_total", "kind" => kind.as_str(), "outcome" => label)
                        .increment(1);
                    for mut work in batched {
                        match &end {
                            TaskEnd::Done(failures) => {
                                let item = work.claimed.item_id;
                                let rows = std::mem::take(&mut work.rows);
                                self.settle_rows(&mut work, rows, |r| {
                                    failures
                                        .iter()
                                        .find(|f| {
                                            f.item_id.is_none_or(|i| i.as_i64() == item)
                                                && f.model_id.is_none_or(|m| {
                                                    m.as_i64() == r.model_id || m.as_i64() == 0
                                                })
                                        })
                                        .map(|f| classify(None, &f.failed_reason))
                                });
                            }
                            TaskEnd::Retry(reason) => {
                                // The task may still apply later: the next attempt waits at least as long as a task
                                // is polled, so an older value is not sent after a newer one.
                                let rows = std::mem::take(&mut work.rows);
                                let reason = reason.clone();
                                self.settle_rows(&mut work, rows, |_| {
                                    Some(FailureClass::Transient(reason.clone()))
                                });
                                work.settled.retry_after(self.settings.outlet_task_timeout);
                            }
                        }
                        done.push(work);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Permanent => {
                    // One bad entry must not park the whole batch: each item is sent on its own, so only the
                    // refused one is parked.
                    tracing::warn!(error = %e, "batch outlet update refused; sending its items one by one");
                    metrics::counter!("catalog_sync_outlet_batches_total", "kind" => kind.as_str(), "outcome" => "refused")
                        .increment(1);
                    for mut work in batched {
                        self.send_per_item(kind, &mut work).await?;
                        done.push(work);
                    }
                }
                Err(e) => {
                    metrics::counter!("catalog_sync_outlet_batches_total", "kind" => kind.as_str(), "outcome" => e.kind().as_str())
                        .increment(1);
                    for mut work in batched {
                        let wait = self.error_wait(&e, work.claimed.attempts);
                        tracing::info!(error = %e, item.id = work.claimed.item_id,
                            "batch outlet update failed; the item stays pending");
                        work.settled.retry_after(wait.unwrap_or(self.settings.retry_max));
                        done.push(work);
                    }
                }
            }
        }
        self.finish(kind, done).await
    }

    /// Reads a claimed item's pending rows and checks them against the mappings.
    async fn prepare(&self, c: Claimed, outlet: bool) -> anyhow::Result<Work> {
        let rows = store::pending(&self.pool, &c).await?;
        let (rows, moved) = self.verify_mappings(&c, rows, outlet).await?;
        Ok(Work {
            claimed: c,
            rows,
            settled: Settled {
                moved,
                ..Settled::default()
            },
        })
    }

    /// Sends an item's rows with `update_price` / `update_stock` (at most 50 models per call).
    async fn send_per_item(&self, kind: Kind, work: &mut Work) -> anyhow::Result<()> {
        let shop = ShopId::from_i64(work.claimed.shop_id)?;
        let item = ItemId::from_i64(work.claimed.item_id)?;
        // Group by model (a multi-warehouse model has one row per location), at most 50 models per call.
        let mut by_model: BTreeMap<i64, Vec<PendingRow>> = BTreeMap::new();
        for r in std::mem::take(&mut work.rows) {
            by_model.entry(r.model_id).or_default().push(r);
        }
        let models: Vec<Vec<PendingRow>> = by_model.into_values().collect();
        for chunk in models.chunks(PRICE_STOCK_LIST_MAX) {
            let rows: Vec<PendingRow> = chunk.iter().flatten().cloned().collect();
            let result = match kind {
                Kind::Price => self.send_price(shop, item, &rows).await,
                Kind::Stock => self.send_stock(shop, item, &rows).await,
            };
            let outcome_label;
            match result {
                Ok(failures) => {
                    outcome_label = if failures.is_empty() { "ok" } else { "partial" };
                    self.settle_rows(work, rows, |r| {
                        failures
                            .iter()
                            .find(|f| {
                                f.model_id.is_none_or(|m| m.as_i64() == r.model_id)
                                    && f.location_id
                                        .as_deref()
                                        .is_none_or(|l| l.is_empty() || l == r.location_id)
                            })
                            .map(classify_failure)
                    });
                }
                Err(e) => {
                    outcome_label = e.kind().as_str();
                    match self.error_wait(&e, work.claimed.attempts) {
                        Some(w) => {
                            tracing::info!(error = %e, retry_in_ms = w.as_millis() as u64,
                                "Shopee call failed; the item stays pending");
                            work.settled.retry_after(w);
                        }
                        None => {
                            for r in rows {
                                work.settled
                                    .outcomes
                                    .push((r, RowOutcome::Permanent(e.to_string())));
                            }
                        }
                    }
                }
            }
            metrics::counter!("catalog_sync_calls_total", "kind" => kind.as_str(), "outcome" => outcome_label)
                .increment(1);
        }
        Ok(())
    }

    /// Turns each sent row's failure (None = applied) into its outcome: a transient failure is retried after a
    /// backoff until `max_model_attempts`, then parked.
    fn settle_rows(
        &self,
        work: &mut Work,
        rows: Vec<PendingRow>,
        failure_of: impl Fn(&PendingRow) -> Option<FailureClass>,
    ) {
        for r in rows {
            let outcome = match failure_of(&r) {
                None => RowOutcome::Applied,
                Some(FailureClass::Permanent(reason)) => RowOutcome::Permanent(reason),
                Some(FailureClass::Transient(reason))
                    if r.attempts + 1 >= self.settings.max_model_attempts =>
                {
                    RowOutcome::Permanent(format!("gave up after {} attempts: {reason}", r.attempts + 1))
                }
                Some(FailureClass::Transient(reason)) => {
                    work.settled
                        .retry_after(backoff(&self.settings, work.claimed.attempts));
                    RowOutcome::Transient(reason)
                }
            };
            work.settled.outcomes.push((r, outcome));
        }
    }

    /// How long to wait after a failed call; None = the error is permanent (the rows are parked).
    fn error_wait(&self, e: &ShopeeError, attempts: i32) -> Option<Duration> {
        match (e, e.kind()) {
            (ShopeeError::Quota { reset_at, .. }, _) => Some(
                (*reset_at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(self.settings.retry_max),
            ),
            (_, ErrorKind::Retryable) => Some(backoff(&self.settings, attempts)),
            (_, ErrorKind::Auth) => Some(self.settings.retry_max.max(Duration::from_secs(60))),
            (_, ErrorKind::Quota) => Some(self.settings.retry_max),
            (_, ErrorKind::Permanent) => None,
        }
    }

    /// Records every item's outcomes and releases its claim, in one transaction.
    async fn finish(&self, kind: Kind, works: Vec<Work>) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut any_moved = false;
        for work in &works {
            let c = &work.claimed;
            for (row, reason) in &work.settled.moved {
                store::unmap(&mut tx, c, row, reason).await?;
                any_moved = true;
            }
            for (row, outcome) in &work.settled.outcomes {
                let label = match outcome {
                    RowOutcome::Applied => "applied",
                    RowOutcome::Transient(_) => "transient",
                    RowOutcome::Permanent(_) => "parked",
                };
                metrics::counter!("catalog_sync_models_total", "kind" => kind.as_str(), "outcome" => label)
                    .increment(1);
                store::settle(&mut tx, c, row, outcome).await?;
            }
            store::release(&mut tx, c, work.settled.retry_in, self.settings.flush_window).await?;
        }
        tx.commit().await?;
        if any_moved {
            self.moved.notify_one();
        }
        Ok(())
    }

    /// Checks every row against PostgreSQL (the source of truth) right before the call: a row whose SKU no longer
    /// maps to this (item, model) is not sent; it goes back to needs_mapping.
    async fn verify_mappings(
        &self,
        c: &Claimed,
        rows: Vec<PendingRow>,
        outlet: bool,
    ) -> anyhow::Result<(Vec<PendingRow>, Vec<(PendingRow, String)>)> {
        if rows.is_empty() {
            return Ok((rows, Vec::new()));
        }
        let skus: Vec<&str> = rows.iter().map(|r| r.sku.as_str()).collect();
        let current: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT sku, item_id, model_id, outlet_item_id FROM product_mappings WHERE shop_id = $1 AND sku = ANY($2)",
        )
        .bind(c.shop_id)
        .bind(&skus)
        .fetch_all(&self.pool)
        .await?;
        let current: HashMap<String, (i64, i64)> = current
            .into_iter()
            .map(|(sku, item, model, outlet_item)| {
                let call_item = if outlet { outlet_item.unwrap_or(item) } else { item };
                (sku, (call_item, model))
            })
            .collect();
        let mut good = Vec::with_capacity(rows.len());
        let mut moved = Vec::new();
        for r in rows {
            match current.get(&r.sku) {
                Some(&(item, model)) if item == c.item_id && model == r.model_id => good.push(r),
                Some(&(item, model)) => {
                    let reason = format!(
                        "SKU {} moved to item {item} model {model} in shop {}; re-resolving",
                        r.sku, c.shop_id
                    );
                    moved.push((r, reason));
                }
                None => {
                    let reason = format!("SKU {} is not mapped in shop {} any more", r.sku, c.shop_id);
                    moved.push((r, reason));
                }
            }
        }
        if !moved.is_empty() {
            metrics::counter!("catalog_sync_remapped_total").increment(moved.len() as u64);
        }
        Ok((good, moved))
    }

    /// Starts one batch outlet task for the items (each <= 50 models), as the outlet shop itself.
    async fn submit_batch(&self, kind: Kind, shop: ShopId, items: &[Work]) -> Result<TaskId, ShopeeError> {
        let created = match kind {
            Kind::Price => {
                let mut item_list = Vec::with_capacity(items.len());
                for w in items {
                    item_list.push(OutletPriceItem {
                        outlet_shop_id: shop.get(),
                        item_id: ItemId::from_i64(w.claimed.item_id).map_err(|e| invalid(e.to_string()))?,
                        price_list: price_list(w.rows.iter())?,
                    });
                }
                self.shopee
                    .batch_update_outlet_price(shop, &BatchUpdateOutletPriceRequest { item_list })
                    .await?
            }
            Kind::Stock => {
                let mut item_list = Vec::with_capacity(items.len());
                for w in items {
                    item_list.push(OutletStockItem {
                        outlet_shop_id: shop.get(),
                        item_id: ItemId::from_i64(w.claimed.item_id).map_err(|e| invalid(e.to_string()))?,
                        stock_list: stock_list(w.rows.iter())?,
                    });
                }
                self.shopee
                    .batch_update_outlet_stock(shop, &BatchUpdateOutletStockRequest { item_list })
                    .await?
            }
        };
        Ok(created.task_id)
    }

    /// Polls a batch task until Shopee reports it finished (`publish_status` 2), or `outlet_task_timeout` passed.
    async fn await_task(&self, kind: Kind, shop: ShopId, task: TaskId) -> TaskEnd {
        let task_type = match kind {
            Kind::Price => BatchTaskType::Price,
            Kind::Stock => BatchTaskType::Stock,
        };
        let deadline = tokio::time::Instant::now() + self.settings.outlet_task_timeout;
        loop {
            tokio::time::sleep(self.settings.outlet_task_poll).await;
            let last = match self.shopee.get_batch_task_result(shop, task_type, task).await {
                Ok(r) => match r.publish_status {
                    PublishStatus::Finished => return TaskEnd::Done(r.failed_list),
                    PublishStatus::Ongoing => format!("batch task {task} still processing"),
                    PublishStatus::Other(n) => format!("batch task {task} in an unknown publish_status {n}"),
                },
                Err(e) if e.kind() == ErrorKind::Permanent => {
                    return TaskEnd::Retry(format!("batch task {task} unreadable: {e}"));
                }
                Err(e) => format!("batch task {task} not read: {e}"),
            };
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(task.id = %task, reason = %last, "gave up waiting for a batch outlet task");
                return TaskEnd::Retry(format!(
                    "{last} after {} s",
                    self.settings.outlet_task_timeout.as_secs()
                ));
            }
        }
    }

    async fn send_price(
        &self,
        shop: ShopId,
        item: ItemId,
        rows: &[PendingRow],
    ) -> Result<Vec<ModelFailure>, ShopeeError> {
        let resp = self
            .shopee
            .update_price(
                shop,
                &UpdatePriceRequest {
                    item_id: item,
                    price_list: price_list(rows.iter())?,
                },
            )
            .await?;
        Ok(resp.failure_list)
    }

    async fn send_stock(
        &self,
        shop: ShopId,
        item: ItemId,
        rows: &[PendingRow],
    ) -> Result<Vec<ModelFailure>, ShopeeError> {
        let resp = self
            .shopee
            .update_stock(
                shop,
                &UpdateStockRequest {
                    item_id: item,
                    stock_list: stock_list(rows.iter())?,
                },
            )
            .await?;
        Ok(resp.failure_list)
    }
}
/// One `price_list` entry per row (one row per model for prices).
fn price_list<'a>(rows: impl Iterator<Item = &'a PendingRow>) -> Result<Vec<PriceEntry>, ShopeeError> {
    rows.map(|r| {
        let money = Money::from_centavos(r.newest_value).map_err(|e| invalid(e.to_string()))?;
        Ok(PriceEntry {
            model_id: ModelId::from_i64(r.model_id).map_err(|e| invalid(e.to_string()))?,
            original_price: price_number(money),
        })
    })
    .collect()
}

/// One `stock_list` entry per model, with a `seller_stock` per location.
fn stock_list<'a>(rows: impl Iterator<Item = &'a PendingRow>) -> Result<Vec<StockEntry>, ShopeeError> {
    let mut by_model: BTreeMap<i64, Vec<SellerStock>> = BTreeMap::new();
    for r in rows {
        by_model.entry(r.model_id).or_default().push(SellerStock {
            location_id: Some(r.location_id.clone()).filter(|l| !l.is_empty()),
            stock: r.newest_value,
        });
    }
    by_model
        .into_iter()
        .map(|(model, seller_stock)| {
            Ok(StockEntry {
                model_id: ModelId::from_i64(model).map_err(|e| invalid(e.to_string()))?,
                seller_stock,
            })
        })
        .collect()
}

fn invalid(problem: String) -> ShopeeError {
    ShopeeError::InvalidRequest {
        api: "catalog-sync",
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_are_classified_by_wording_without_a_code() {
        for permanent in [
            "The item has been deleted.",
            "Stock cannot be less than the stock reserved by promotions (5).",
            "The price is locked by a promotion: it cannot be updated now.",
            "error_cannot_update_price_in_promotion",
            "model_id does not exist in this item.",
        ] {
            assert!(
                matches!(classify(None, permanent), FailureClass::Permanent(_)),
                "{permanent}"
            );
        }
        assert!(matches!(
            classify(None, "system busy, try later"),
            FailureClass::Transient(_)
        ));
    }

    #[test]
    fn the_code_decides_and_is_kept_in_the_reason() {
        // A retryable code is retried whatever the message says.
        assert_eq!(
            classify(Some("error_system_busy"), "The item is locked, try again."),
            FailureClass::Transient("error_system_busy: The item is locked, try again.".into())
        );
        assert!(matches!(
            classify(Some("error_rate_limit"), ""),
            FailureClass::Transient(_)
        ));
        // A known refusal is parked at once, even with an unhelpful message; the code is in the reason.
        for (code, what) in [
            ("error_item_deleted", "item or model deleted"),
            ("error_model_not_found", "item or model deleted"),
            (
                "error_stock_less_than_promotion_reserved",
                "stock under promotion reserve",
            ),
            (
                "error_cannot_update_price_in_promotion",
                "price locked by promotion",
            ),
            ("error_param", "refused as invalid"),
            ("error_price", "refused as invalid"),
            ("error_stock", "refused as invalid"),
            ("error_permission", "not permitted"),
        ] {
            assert_eq!(
                classify(Some(code), "Failed."),
                FailureClass::Permanent(format!("{what} ({code}: Failed.)")),
                "{code}"
            );
        }
        // An unknown code falls back to the message; unrecognised -> retried (bounded by max_model_attempts).
        assert!(matches!(
            classify(Some("error_something_new"), "The item has been deleted."),
            FailureClass::Permanent(r) if r.contains("error_something_new")
        ));
        assert_eq!(
            classify(Some("error_something_new"), "Odd."),
            FailureClass::Transient("error_something_new: Odd.".into())
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = Settings::default();
        assert_eq!(backoff(&s, 0), s.retry_base);
        assert!(backoff(&s, 3) > backoff(&s, 2));
        assert_eq!(backoff(&s, 30), s.retry_max);
    }
}
