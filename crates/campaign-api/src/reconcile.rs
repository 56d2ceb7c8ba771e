//! The reconcile loop: Shopee's view of our discounts (`get_discount_list`) into `campaign_shops.shopee_status`,
//! compensation that could not finish (`delete_discount` retried), and creations abandoned half-way (no request
//! holds their Idempotency-Key any more): their discounts are deleted so nothing stays orphaned on Shopee.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ShopId;
use serde_json::json;
use shopee_client::api::discount::{DiscountStatus, GetDiscountListRequest};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::campaigns::{self, CampaignLike};
use crate::error::ApiError;

/// A creation untouched this long, with no request holding its key, is abandoned.
pub const ABANDON_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub shops_synced: usize,
    pub statuses_updated: usize,
    pub compensated: usize,
    pub abandoned: usize,
    pub errors: Vec<String>,
}

pub async fn run_loop(state: AppState, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match reconcile_once(&state, ABANDON_AFTER).await {
            Ok(r) => {
                for e in &r.errors {
                    tracing::warn!(error = %e, "campaign reconciliation");
                }
                tracing::debug!(?r, "campaigns reconciled");
            }
            Err(e) => tracing::warn!(error = ?e, "campaign reconciliation failed; next round retries"),
        }
    }
}

type AbandonedRow = (
    i64,
    i64,
    String,
    Option<i64>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

struct Abandoned {
    name: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl CampaignLike for Abandoned {
    fn name(&self) -> &str {
        &self.name
    }
    fn starts_at(&self) -> DateTime<Utc> {
        self.starts_at
    }
    fn ends_at(&self) -> DateTime<Utc> {
        self.ends_at
    }
}

/// One round. `abandon_after`: how long an unfinished creation may sit before it is rolled back.
pub async fn reconcile_once(state: &AppState, abandon_after: Duration) -> Result<Report, ApiError> {
    let mut report = Report::default();
    let pool = &state.pool;

    // 1. Compensation Shopee refused earlier.
    let stuck: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT campaign_id, shop_id, discount_id FROM campaign_shops
         WHERE state = 'compensating' AND discount_id IS NOT NULL ORDER BY campaign_id, shop_id",
    )
    .fetch_all(pool)
    .await?;
    for (campaign_id, shop, discount_id) in stuck {
        let (Ok(shop), Ok(discount_id)) = (ShopId::from_i64(shop), u64::try_from(discount_id)) else {
            continue;
        };
        match state.shopee.delete_discount(shop, discount_id).await {
            Ok(_) => {
                mark(
                    pool,
                    campaign_id,
                    shop,
                    "failed",
                    "rolled back: the discount was deleted on Shopee",
                )
                .await?;
                report.compensated += 1;
            }
            Err(e) => report.errors.push(format!(
                "shop {shop} discount {discount_id}: delete_discount: {e}"
            )),
        }
    }

    // 2. Creations abandoned half-way (the request died and was not retried with its Idempotency-Key).
    let secs = abandon_after.as_secs_f64();
    let abandoned: Vec<AbandonedRow> = sqlx::query_as(
        "SELECT cs.campaign_id, cs.shop_id, cs.state, cs.discount_id, c.name, c.starts_at, c.ends_at
         FROM campaign_shops cs JOIN campaigns c ON c.id = cs.campaign_id
         WHERE cs.state IN ('pending', 'creating', 'discount_created')
           AND cs.updated_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM idempotency_keys k
                           WHERE k.campaign_id = cs.campaign_id AND k.locked_until > now())
         ORDER BY cs.campaign_id, cs.shop_id",
    )
    .bind(secs)
    .fetch_all(pool)
    .await?;
    let mut touched = Vec::new();
    for (campaign_id, shop, st, discount_id, name, starts_at, ends_at) in abandoned {
        let Ok(shop) = ShopId::from_i64(shop) else {
            continue;
        };
        let discount = match (st.as_str(), discount_id) {
            (_, Some(d)) => u64::try_from(d).ok(),
            ("creating", None) => {
                let c = Abandoned {
                    name,
                    starts_at,
                    ends_at,
                };
                match campaigns::find_existing(state, shop, &c).await {
                    Ok(found) => found,
                    Err(e) => {
                        report
                            .errors
                            .push(format!("shop {shop}: looking up an unfinished discount: {e:?}"));
                        continue;
                    }
                }
            }
            _ => None,
        };
        match discount {
            Some(discount_id) => {
                sqlx::query(
                    "UPDATE campaign_shops SET discount_id = $3 WHERE campaign_id = $1 AND shop_id = $2",
                )
                .bind(campaign_id)
                .bind(shop.as_i64())
                .bind(i64::try_from(discount_id).unwrap_or_default())
                .execute(pool)
                .await?;
                campaigns::compensate(
                    state,
                    campaign_id,
                    shop,
                    discount_id,
                    "creation was interrupted and not resumed",
                )
                .await?;
            }
            None => {
                mark(
                    pool,
                    campaign_id,
                    shop,
                    "failed",
                    "creation was interrupted before a discount existed",
                )
                .await?
            }
        }
        report.abandoned += 1;
        touched.push(campaign_id);
    }
    for campaign_id in touched {
        sqlx::query(
            "UPDATE campaigns SET updated_at = now(),
                state = CASE WHEN EXISTS (SELECT 1 FROM campaign_shops WHERE campaign_id = $1 AND state = 'active')
                             THEN 'active' ELSE 'failed' END
             WHERE id = $1 AND state = 'creating'",
        )
        .bind(campaign_id)
        .execute(pool)
        .await?;
        let body = json!({"error": {"code": "shopee_error",
            "message": "the creation was interrupted and rolled back; nothing was left on Shopee: create the campaign again with a new Idempotency-Key"}});
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = 502, response_body = $2, locked_until = NULL,
                    completed_at = now()
             WHERE campaign_id = $1 AND response_status IS NULL",
        )
        .bind(campaign_id)
        .bind(&body)
        .execute(pool)
        .await?;
    }

    // 3. Shopee's status of every discount we keep.
    let shops: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT shop_id FROM campaign_shops WHERE discount_id IS NOT NULL AND state = 'active' ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    for shop in shops {
        let Ok(shop) = ShopId::from_i64(shop) else {
            continue;
        };
        let mut seen: HashMap<i64, &'static str> = HashMap::new();
        let mut complete = true;
        for page_no in 1..=50 {
            let req = GetDiscountListRequest {
                discount_status: DiscountStatus::All,
                page_no,
                page_size: 100,
                update_time_from: None,
                update_time_to: None,
            };
            match state.shopee.get_discount_list(shop, &req).await {
                Ok(resp) => {
                    for d in &resp.discount_list {
                        let status = d.status.map(campaigns::status_name).unwrap_or("unknown");
                        seen.insert(i64::try_from(d.discount_id).unwrap_or_default(), status);
                    }
                    if !resp.more {
                        break;
                    }
                }
                Err(e) => {
                    report.errors.push(format!("shop {shop}: get_discount_list: {e}"));
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            continue;
        }
        report.shops_synced += 1;
        let ours: Vec<i64> = sqlx::query_scalar(
            "SELECT discount_id FROM campaign_shops WHERE shop_id = $1 AND discount_id IS NOT NULL AND state = 'active'",
        )
        .bind(shop.as_i64())
        .fetch_all(pool)
        .await?;
        for discount_id in ours {
            let status = seen.get(&discount_id).copied().unwrap_or("missing");
            let changed = sqlx::query(
                "UPDATE campaign_shops SET shopee_status = $3, synced_at = now()
                 WHERE shop_id = $1 AND discount_id = $2",
            )
            .bind(shop.as_i64())
            .bind(discount_id)
            .bind(status)
            .execute(pool)
            .await?;
            report.statuses_updated += usize::try_from(changed.rows_affected()).unwrap_or(0);
        }
    }
    metrics::counter!("campaign_reconcile_rounds_total").increment(1);
    Ok(report)
}

async fn mark(
    pool: &sqlx::PgPool,
    campaign_id: i64,
    shop: ShopId,
    state: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_shops SET state = $3, error = $4, updated_at = now() WHERE campaign_id = $1 AND shop_id = $2",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(state)
    .bind(error)
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE campaign_items SET state = 'rejected', error_code = 'not_added', error_message = $3
         WHERE campaign_id = $1 AND shop_id = $2 AND state = 'pending'",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}
