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

/// Classifies one `failure_list` entry by what Shopee documents (see [`DOCUMENTED`]). Shopee documents
/// `failure_list[{model_id, failed_reason}]`: the documented text decides. A per-model code is not documented, but
/// when one comes it is read as Shopee's codes are: a retryable one (`error_system_busy`, `error_inner`, ...) is
/// retried, and a documented code whose documented texts all mean the same refusal is parked even with an
/// unhelpful message. Anything else (an unknown code or wording) is retried, up to `max_model_attempts`, then
/// parked. The reason keeps the code and the message.
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
    }
    match documented_meaning(code, message) {
        Some(Meaning::Refused(what)) => FailureClass::Permanent(format!("{what} ({described})")),
        Some(Meaning::TryLater) | None => FailureClass::Transient(described),
    }
}

/// What a documented refusal means for the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// Parked at once; the words go into the dead letter's reason.
    Refused(&'static str),
    /// Shopee says to try again later: retried like an unknown reason.
    TryLater,
}

const GONE: Meaning = Meaning::Refused("item or model deleted or not found");
const UNEDITABLE: Meaning = Meaning::Refused("item deleted or not editable in its status");
const PRICE_LOCKED: Meaning = Meaning::Refused("price locked by promotion");
const STOCK_LOCKED: Meaning = Meaning::Refused("stock locked by promotion");
const RESERVE: Meaning = Meaning::Refused("stock under the stock reserved by promotions");
const LOCATION: Meaning = Meaning::Refused("warehouse location refused");
const INVALID: Meaning = Meaning::Refused("refused as invalid");
const NOT_PERMITTED: Meaning = Meaning::Refused("not permitted for this shop or item");
const HOLIDAY: Meaning = Meaning::Refused("shop in holiday mode");
const TRY_LATER: Meaning = Meaning::TryLater;

/// Which of Shopee's API pages documents a row: the `error_list` of `v2.product.update_price` or
/// `v2.product.update_stock` (Shopee's API reference, as kept in the public repository `congminh1254/shopee-sdk`,
/// `schemas/v2.product.update_price.json` and `schemas/v2.product.update_stock.json`); the codes are also the
/// `error_codes` of those APIs in `crates/shopee-contract/contract/v2.product.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    UpdatePrice,
    UpdateStock,
    Both,
}

/// One documented refusal: Shopee's code, the text Shopee documents with it, and where.
struct Documented {
    code: &'static str,
    /// Shopee's text. A `{` marks where Shopee fills in details: the text up to it is matched as a prefix.
    text: &'static str,
    /// The citation (checked against the contract by `every_row_cites_a_code_its_api_documents`).
    #[cfg_attr(not(test), allow(dead_code))]
    source: Source,
    meaning: Meaning,
}

const fn row(code: &'static str, text: &'static str, source: Source, meaning: Meaning) -> Documented {
    Documented {
        code,
        text,
        source,
        meaning,
    }
}

/// Every item- or model-level refusal Shopee documents for `update_price` / `update_stock` (the request-level
/// ones, signatures, tokens, partner ids, are the client's business). The batch outlet updates document no codes of
/// their own; their `failed_reason`s are read with the same table. Not listed, so retried as unknown:
/// `error_busi_update_stock_failed` ("please check failure_list": says nothing of a model) and `error_param`'s
/// bare `{{.error_info}}`.
const DOCUMENTED: &[Documented] = &[
    // Both APIs.
    row("error_param", "parameter invalid", Source::Both, INVALID),
    row(
        "error_param",
        "The information you queried is not found.",
        Source::Both,
        GONE,
    ),
    row(
        "error_param",
        "Wrong parameters, detail: {msg}.",
        Source::Both,
        INVALID,
    ),
    row("error_param", "Repeat model_id.", Source::Both, INVALID),
    row("error_param", "Wrong model_id.", Source::Both, GONE),
    row(
        "error_param",
        "Invalid parameter for product.",
        Source::Both,
        INVALID,
    ),
    row("error_data", "parse data failed", Source::Both, INVALID),
    row("error_data", "data not exist", Source::Both, GONE),
    row("error_shop", "shopid is invalid", Source::Both, NOT_PERMITTED),
    row(
        "error_item_not_belong_shop",
        "Item not belong to shop.",
        Source::Both,
        GONE,
    ),
    row(
        "error_item_not_found",
        "Item_id is not found.",
        Source::Both,
        GONE,
    ),
    row("error_item_not_found", "Product not found", Source::Both, GONE),
    row(
        "error_param_shop_id_not_found",
        "Shop_id is not found.",
        Source::Both,
        NOT_PERMITTED,
    ),
    row(
        "error_nil_shopid_or_itemid",
        "Query information failed.",
        Source::Both,
        INVALID,
    ),
    row(
        "error_item_uneditable",
        "Can't edit this item. item status can not support editing.",
        Source::Both,
        UNEDITABLE,
    ),
    row(
        "error_perm_non_admin",
        "Don't have permission.",
        Source::Both,
        NOT_PERMITTED,
    ),
    row(
        "error_seller_under_penalty",
        "The shop is under penalty.",
        Source::Both,
        NOT_PERMITTED,
    ),
    row(
        "error_busi_cannot_edit_vsku",
        "Can not use OpenAPI to edit/create VSKU, please connect with your manager",
        Source::Both,
        NOT_PERMITTED,
    ),
    row(
        "error_auth",
        "Your shop can not use model level dts",
        Source::Both,
        NOT_PERMITTED,
    ),
    row("error_inner", "Invalid stock location ID", Source::Both, LOCATION),
    row("error_network", "Inner http call failed", Source::Both, TRY_LATER),
    row(
        "error_server",
        "Something wrong. Please try later.",
        Source::Both,
        TRY_LATER,
    ),
    row(
        "error_server",
        "Interal error, please contact openapi team.",
        Source::Both,
        TRY_LATER,
    ),
    row(
        "error_inner",
        "Our system is taking some time to respond, please try later.",
        Source::Both,
        TRY_LATER,
    ),
    row(
        "error_system_busy",
        "Our system is taking some time to respond, please try later.",
        Source::Both,
        TRY_LATER,
    ),
    row(
        "error_inner",
        "System error, please try again later or contact the OpenAPI support team.",
        Source::Both,
        TRY_LATER,
    ),
    row(
        "error_inner",
        "Update item failed {{.error_info}}",
        Source::Both,
        TRY_LATER,
    ),
    // update_price.
    row(
        "error_busi_price_lower_then_wholesale_price",
        "Original_price should bigger then wholesale price",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_update_price_fail",
        "Update price failed, please try later.",
        Source::UpdatePrice,
        TRY_LATER,
    ),
    row(
        "error_invalid_price",
        "Invalid price, please use the correct format",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_invalid_price_for_logistic",
        "Shipping channel cannot be enabled as product price exceeds limit.",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_related_product_in_promotion",
        "Asku has upcoming or ongoing promotion, can't update global product price{...}",
        Source::UpdatePrice,
        PRICE_LOCKED,
    ),
    row(
        "error_price_exceed_min_limitt",
        "Original_price is less than min price limit.",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_price_exceed_max_limitt",
        "Original_price is bigger than max price limit.",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_wholesale_price_less_than_ratio_limit",
        "Wholesale price is less than ratio limit.",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_cannt_edit_price_in_promotion",
        "Original_price cannot be edited when item is under promotion.",
        Source::UpdatePrice,
        PRICE_LOCKED,
    ),
    row(
        "error_price_out_of_range",
        "Price is out of range.",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_in_item_promotion_item_price_lock",
        "Can't update price when item is under promotion.",
        Source::UpdatePrice,
        PRICE_LOCKED,
    ),
    row(
        "error_slash_price_not_lowest",
        "In slash sale, price should not be lower or same as slash price.",
        Source::UpdatePrice,
        PRICE_LOCKED,
    ),
    row(
        "error_slash_price_models_diff",
        "In slash sale, the model price should be the same.",
        Source::UpdatePrice,
        PRICE_LOCKED,
    ),
    row(
        "error_price_should_be_same_for_wholesales",
        "All model price should be the same when the item has been set wholesales.",
        Source::UpdatePrice,
        INVALID,
    ),
    row(
        "error_cannot_update_price_in_promotion",
        "Price cannot be changed when model is under promotion.",
        Source::UpdatePrice,
        PRICE_LOCKED,
    ),
    row(
        "error_edit_item_price_for_item_has_model",
        "Can't edit item price directly while item has models.",
        Source::UpdatePrice,
        INVALID,
    ),
    // update_stock.
    row(
        "error_wms_shop_block_upate_stock",
        "Warehouse shop can't update stock.",
        Source::UpdateStock,
        NOT_PERMITTED,
    ),
    row(
        "error_auth",
        "cnsc shop not upgraded, can not edit item.",
        Source::UpdateStock,
        NOT_PERMITTED,
    ),
    row(
        "error_param",
        "Parameter is not match the constraints, {{.error_info}}.",
        Source::UpdateStock,
        INVALID,
    ),
    row(
        "error_server",
        "The current item belong to the full FBS shop, so normal stock must be equal to 0",
        Source::UpdateStock,
        NOT_PERMITTED,
    ),
    row(
        "error_auth",
        "The current item belong to the full FBS or B2C shop, so normal stock must be equal to 0",
        Source::UpdateStock,
        NOT_PERMITTED,
    ),
    row(
        "error_auth",
        "The location_id input is not matched the shop's location_id(more/wrong). Please double check.",
        Source::UpdateStock,
        LOCATION,
    ),
    row(
        "error_auth",
        "Lack of location_id, please double check.",
        Source::UpdateStock,
        LOCATION,
    ),
    row(
        "error_auth",
        "Please wait for the holiday mode set then to edit item. Please try later.",
        Source::UpdateStock,
        TRY_LATER,
    ),
    row(
        "error_auth",
        "Total stock must be more than reserved stock.",
        Source::UpdateStock,
        RESERVE,
    ),
    row(
        "error_auth",
        "You do not have right to use seller location_id, please only fill seller_stock filed.",
        Source::UpdateStock,
        LOCATION,
    ),
    row(
        "error.param",
        "Can not update item with stock less than reserved stock",
        Source::UpdateStock,
        RESERVE,
    ),
    row(
        "error_param",
        "Can not update item with different stock structure.{...}",
        Source::UpdateStock,
        LOCATION,
    ),
    row(
        "error_param",
        "Can not update item with stock less than reserve stock",
        Source::UpdateStock,
        RESERVE,
    ),
    row(
        "error_busi",
        "The merchant/shop has multi warehouse, please input location id",
        Source::UpdateStock,
        LOCATION,
    ),
    row(
        "error_auth",
        "Stock should be larger than reserved stock.",
        Source::UpdateStock,
        RESERVE,
    ),
    row(
        "error_cannt_edit_stock_in_promotion",
        "Normal_stock cannot be edited when item is under promotion.",
        Source::UpdateStock,
        STOCK_LOCKED,
    ),
    row(
        "error_holiday_mode_change_stock",
        "Cannot change stock in holiday mode.",
        Source::UpdateStock,
        HOLIDAY,
    ),
    row(
        "error_promotion_cantnot_update_stock",
        "Cannot change stock when item is under promotion.",
        Source::UpdateStock,
        STOCK_LOCKED,
    ),
    row(
        "error_in_item_promotion_nomodel_to_models",
        "Can't to edit item stock directly while item has models.",
        Source::UpdateStock,
        INVALID,
    ),
    row(
        "error_model_update_stock_model_in_promotion",
        "Model stock cannot be editted when item/model is promotion.",
        Source::UpdateStock,
        STOCK_LOCKED,
    ),
    row(
        "error_edit_item_stock_for_item_has_model",
        "Can't to edit item stock directly while item has models.",
        Source::UpdateStock,
        INVALID,
    ),
];

/// Lower case, single spaces, no trailing full stop: Shopee's texts vary in those only.
fn normalized(text: &str) -> String {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    t.trim_end_matches('.').to_lowercase()
}

impl Documented {
    fn matches(&self, reason: &str) -> bool {
        let reason = normalized(reason);
        match self.text.split_once('{') {
            Some((fixed, _)) => reason.starts_with(normalized(fixed).as_str()),
            None => reason == normalized(self.text),
        }
    }
}

/// The meaning of a documented text; else of a documented code whose texts all mean the same.
fn documented_meaning(code: Option<&str>, reason: &str) -> Option<Meaning> {
    if let Some(row) = DOCUMENTED.iter().find(|r| r.matches(reason)) {
        return Some(row.meaning);
    }
    let mut meanings = DOCUMENTED
        .iter()
        .filter(|r| Some(r.code) == code)
        .map(|r| r.meaning);
    let first = meanings.next()?;
    meanings.all(|m| m == first).then_some(first)
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

    /// A documented text with its `{...}` filled in as Shopee would.
    fn filled(text: &str) -> String {
        match text.split_once('{') {
            Some((fixed, _)) => format!("{fixed}stock: must be at least 0."),
            None => text.to_owned(),
        }
    }

    #[test]
    fn every_documented_text_means_what_the_table_says() {
        for r in DOCUMENTED {
            let got = classify(None, &filled(r.text));
            match r.meaning {
                Meaning::Refused(what) => assert_eq!(
                    got,
                    FailureClass::Permanent(format!("{what} ({})", filled(r.text))),
                    "{}",
                    r.text
                ),
                Meaning::TryLater => assert!(matches!(got, FailureClass::Transient(_)), "{}", r.text),
            }
        }
        // Shopee's case, spacing and full stops vary.
        assert_eq!(
            classify(None, "  price cannot be changed when model is under   PROMOTION "),
            FailureClass::Permanent(
                "price locked by promotion (  price cannot be changed when model is under   PROMOTION )"
                    .into()
            )
        );
    }

    /// Each row names a code the API it cites documents (`shopee-contract`, from Shopee's reference).
    #[test]
    fn every_row_cites_a_code_its_api_documents() {
        let contract: serde_json::Value =
            serde_json::from_str(include_str!("../../shopee-contract/contract/v2.product.json"))
                .expect("contract");
        let codes = |path: &str| -> Vec<String> {
            let api = contract["apis"]
                .as_object()
                .expect("apis")
                .values()
                .find(|a| a["path"] == path)
                .expect("documented api");
            serde_json::from_value(api["error_codes"].clone()).expect("codes")
        };
        let (price, stock) = (
            codes("/api/v2/product/update_price"),
            codes("/api/v2/product/update_stock"),
        );
        for r in DOCUMENTED {
            let (in_price, in_stock) = (
                price.iter().any(|c| c == r.code),
                stock.iter().any(|c| c == r.code),
            );
            let cited = match r.source {
                Source::UpdatePrice => in_price,
                Source::UpdateStock => in_stock,
                Source::Both => in_price && in_stock,
            };
            assert!(cited, "{} ({:?}) is not documented there", r.code, r.source);
        }
    }

    #[test]
    fn wording_shopee_does_not_document_is_retried() {
        for unknown in [
            "fail",
            "The item has been deleted.",
            "The price is locked by a promotion: it cannot be updated now.",
            "Stock cannot be less than the stock reserved by promotions (5).",
            "model_id does not exist in this item.",
            "system busy, try later",
            "",
        ] {
            assert_eq!(
                classify(None, unknown),
                FailureClass::Transient(unknown.into()),
                "{unknown}"
            );
        }
    }

    #[test]
    fn the_code_decides_when_the_text_does_not_and_is_kept_in_the_reason() {
        // A retryable code is retried whatever the message says.
        assert_eq!(
            classify(
                Some("error_system_busy"),
                "Price cannot be changed when model is under promotion."
            ),
            FailureClass::Transient(
                "error_system_busy: Price cannot be changed when model is under promotion.".into()
            )
        );
        assert!(matches!(
            classify(Some("error_inner"), "Invalid stock location ID"),
            FailureClass::Transient(_)
        ));
        // A documented code whose texts all mean one refusal is parked even with Shopee's sample text, "fail".
        for (code, what) in [
            ("error_item_not_found", "item or model deleted or not found"),
            (
                "error_cannot_update_price_in_promotion",
                "price locked by promotion",
            ),
            ("error.param", "stock under the stock reserved by promotions"),
            ("error_cannt_edit_stock_in_promotion", "stock locked by promotion"),
            ("error_perm_non_admin", "not permitted for this shop or item"),
        ] {
            assert_eq!(
                classify(Some(code), "fail"),
                FailureClass::Permanent(format!("{what} ({code}: fail)")),
                "{code}"
            );
        }
        // A code documented with several meanings (error_param, error_auth) leaves it to the text.
        assert!(matches!(
            classify(Some("error_param"), "fail"),
            FailureClass::Transient(_)
        ));
        assert_eq!(
            classify(Some("error_auth"), "Total stock must be more than reserved stock."),
            FailureClass::Permanent(
                "stock under the stock reserved by promotions (error_auth: Total stock must be more than reserved \
                 stock.)"
                    .into()
            )
        );
        // Undocumented codes are unknown: retried, bounded by max_model_attempts.
        assert_eq!(
            classify(Some("error_item_deleted"), "Odd."),
            FailureClass::Transient("error_item_deleted: Odd.".into())
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
