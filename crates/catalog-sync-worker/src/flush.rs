//! The flusher: claims dirty items, sends all pending models of an item in one `update_price` / `update_stock`
//! (at most 50 models per call) inside the per-shop rate limit (the Shopee client waits for its slot), and records
//! each model's outcome with a compare-and-set on the version sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use domain::{ItemId, ModelId, Money, ShopId};
use shopee_client::api::product::{
    ModelFailure, PRICE_STOCK_LIST_MAX, PriceEntry, SellerStock, StockEntry, UpdatePriceRequest,
    UpdateStockRequest, price_number,
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
    let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 16)).unwrap_or(16));
    settings.retry_base.saturating_mul(factor).min(settings.retry_max)
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
                if let Err(e) = self.flush_item(&c).await {
                    tracing::warn!(shop.id = c.shop_id, item.id = c.item_id, kind = %c.kind, error = %e,
                        "flushing an item failed; it is retried when its lease ends");
                }
            }
        }
    }

    /// Sends one claimed item's pending models and records what happened.
    #[tracing::instrument(skip_all, fields(shop.id = c.shop_id, item.id = c.item_id, kind = %c.kind))]
    pub async fn flush_item(&self, c: &Claimed) -> anyhow::Result<()> {
        let Some(kind) = Kind::parse(&c.kind) else {
            anyhow::bail!("unknown kind {}", c.kind);
        };
        let rows = store::pending(&self.pool, c).await?;
        let (good, moved) = self.verify_mappings(c, rows).await?;
        let mut outcomes: Vec<(PendingRow, RowOutcome)> = Vec::new();
        let mut retry_in: Option<Duration> = None;
        let shop = ShopId::from_i64(c.shop_id)?;
        let item = ItemId::from_i64(c.item_id)?;
        // Group by model (a multi-warehouse model has one row per location), at most 50 models per call.
        let mut by_model: BTreeMap<i64, Vec<PendingRow>> = BTreeMap::new();
        for r in good {
            by_model.entry(r.model_id).or_default().push(r);
        }
        let models: Vec<Vec<PendingRow>> = by_model.into_values().collect();
        for chunk in models.chunks(PRICE_STOCK_LIST_MAX) {
            let rows: Vec<&PendingRow> = chunk.iter().flatten().collect();
            let result = match kind {
                Kind::Price => self.send_price(shop, item, &rows).await,
                Kind::Stock => self.send_stock(shop, item, &rows).await,
            };
            let outcome_label;
            match result {
                Ok(failures) => {
                    outcome_label = if failures.is_empty() { "ok" } else { "partial" };
                    for r in rows {
                        let failure = failures.iter().find(|f| {
                            f.model_id.is_none_or(|m| m.as_i64() == r.model_id)
                                && f.location_id
                                    .as_deref()
                                    .is_none_or(|l| l.is_empty() || l == r.location_id)
                        });
                        let outcome = match failure.map(classify_failure) {
                            None => RowOutcome::Applied,
                            Some(FailureClass::Permanent(reason)) => RowOutcome::Permanent(reason),
                            Some(FailureClass::Transient(reason))
                                if r.attempts + 1 >= self.settings.max_model_attempts =>
                            {
                                RowOutcome::Permanent(format!(
                                    "gave up after {} attempts: {reason}",
                                    r.attempts + 1
                                ))
                            }
                            Some(FailureClass::Transient(reason)) => {
                                retry_in = Some(backoff(&self.settings, c.attempts));
                                RowOutcome::Transient(reason)
                            }
                        };
                        outcomes.push((r.clone(), outcome));
                    }
                }
                Err(e) => {
                    outcome_label = e.kind().as_str();
                    let wait = match (&e, e.kind()) {
                        (ShopeeError::Quota { reset_at, .. }, _) => Some(
                            (*reset_at - chrono::Utc::now())
                                .to_std()
                                .unwrap_or(self.settings.retry_max),
                        ),
                        (_, ErrorKind::Retryable) => Some(backoff(&self.settings, c.attempts)),
                        (_, ErrorKind::Auth) => Some(self.settings.retry_max.max(Duration::from_secs(60))),
                        (_, ErrorKind::Quota) => Some(self.settings.retry_max),
                        (_, ErrorKind::Permanent) => None,
                    };
                    match wait {
                        Some(w) => {
                            tracing::info!(error = %e, retry_in_ms = w.as_millis() as u64,
                                "Shopee call failed; the item stays pending");
                            retry_in = Some(retry_in.map_or(w, |r| r.max(w)));
                        }
                        None => {
                            for r in rows {
                                outcomes.push((r.clone(), RowOutcome::Permanent(e.to_string())));
                            }
                        }
                    }
                }
            }
            metrics::counter!("catalog_sync_calls_total", "kind" => kind.as_str(), "outcome" => outcome_label)
                .increment(1);
        }
        let mut tx = self.pool.begin().await?;
        for (row, reason) in &moved {
            store::unmap(&mut tx, c, row, reason).await?;
        }
        for (row, outcome) in &outcomes {
            let label = match outcome {
                RowOutcome::Applied => "applied",
                RowOutcome::Transient(_) => "transient",
                RowOutcome::Permanent(_) => "parked",
            };
            metrics::counter!("catalog_sync_models_total", "kind" => kind.as_str(), "outcome" => label)
                .increment(1);
            store::settle(&mut tx, c, row, outcome).await?;
        }
        store::release(&mut tx, c, retry_in, self.settings.flush_window).await?;
        tx.commit().await?;
        if !moved.is_empty() {
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
    ) -> anyhow::Result<(Vec<PendingRow>, Vec<(PendingRow, String)>)> {
        if rows.is_empty() {
            return Ok((rows, Vec::new()));
        }
        let outlet: bool =
            sqlx::query_scalar("SELECT mart_shop_id IS NOT NULL FROM shops WHERE shop_id = $1")
                .bind(c.shop_id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(false);
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

    async fn send_price(
        &self,
        shop: ShopId,
        item: ItemId,
        rows: &[&PendingRow],
    ) -> Result<Vec<ModelFailure>, ShopeeError> {
        let mut price_list = Vec::with_capacity(rows.len());
        for r in rows {
            let money = Money::from_centavos(r.newest_value).map_err(|e| invalid(e.to_string()))?;
            price_list.push(PriceEntry {
                model_id: ModelId::from_i64(r.model_id).map_err(|e| invalid(e.to_string()))?,
                original_price: price_number(money),
            });
        }
        let resp = self
            .shopee
            .update_price(
                shop,
                &UpdatePriceRequest {
                    item_id: item,
                    price_list,
                },
            )
            .await?;
        Ok(resp.failure_list)
    }

    async fn send_stock(
        &self,
        shop: ShopId,
        item: ItemId,
        rows: &[&PendingRow],
    ) -> Result<Vec<ModelFailure>, ShopeeError> {
        let mut by_model: BTreeMap<i64, Vec<SellerStock>> = BTreeMap::new();
        for r in rows {
            by_model.entry(r.model_id).or_default().push(SellerStock {
                location_id: Some(r.location_id.clone()).filter(|l| !l.is_empty()),
                stock: r.newest_value,
            });
        }
        let mut stock_list = Vec::with_capacity(by_model.len());
        for (model, seller_stock) in by_model {
            stock_list.push(StockEntry {
                model_id: ModelId::from_i64(model).map_err(|e| invalid(e.to_string()))?,
                seller_stock,
            });
        }
        let resp = self
            .shopee
            .update_stock(
                shop,
                &UpdateStockRequest {
                    item_id: item,
                    stock_list,
                },
            )
            .await?;
        Ok(resp.failure_list)
    }
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
