//! The reconcile loop: Shopee's view of our discounts (`get_discount_list`) into `campaign_shops.shopee_status`,
//! compensation that could not finish (`delete_discount` retried), and creations abandoned half-way (no request
//! holds their Idempotency-Key any more): their discounts are deleted so nothing stays orphaned on Shopee.

use std::collections::HashMap;
use std::time::Duration;

use domain::ShopId;
use serde_json::json;
use service_runtime::periodic::Periodic;
use shopee_client::api::discount::DiscountStatus;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::campaigns::execute::{compensate, discount_page, find_existing};
use crate::campaigns::state::{NOT_ADDED, ShopState, ShopeeStatus};
use crate::campaigns::store::{self, DiscountSpec};
use crate::error::ApiError;
use crate::idempotency;

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

/// Reconciles at start, then every `every`, until `shutdown`.
pub async fn run_loop(state: AppState, every: Duration, shutdown: CancellationToken) {
    Periodic::new("reconcile", every)
        .run_with(shutdown.clone(), state, |state| async move {
            // `ApiError` is made for HTTP answers; its Debug form names the variant and the cause.
            let report = reconcile_once(&state, ABANDON_AFTER)
                .await
                .map_err(|e| format!("{e:?}"))?;
            for e in &report.errors {
                tracing::warn!(error = %e, "campaign reconciliation");
            }
            tracing::debug!(?report, "campaigns reconciled");
            Ok::<_, String>(())
        })
        .await;
}

/// A shop whose creation stopped half-way.
#[derive(sqlx::FromRow)]
struct Abandoned {
    campaign_id: i64,
    shop_id: i64,
    state: ShopState,
    discount_id: Option<i64>,
    #[sqlx(flatten)]
    spec: DiscountSpec,
}

/// One round. `abandon_after`: how long an unfinished creation may sit before it is rolled back.
pub async fn reconcile_once(state: &AppState, abandon_after: Duration) -> Result<Report, ApiError> {
    let mut report = Report::default();
    retry_compensations(state, &mut report).await?;
    roll_back_abandoned(state, abandon_after, &mut report).await?;
    sync_statuses(state, &mut report).await?;
    metrics::counter!("campaign_reconcile_rounds_total").increment(1);
    Ok(report)
}

/// Marks a shop failed: no discount of it stays on Shopee, and its unsent items were not added.
async fn fail_shop(state: &AppState, campaign_id: i64, shop: ShopId, why: &str) -> Result<(), sqlx::Error> {
    store::set_shop(&state.pool, campaign_id, shop, ShopState::Failed, None, Some(why)).await?;
    store::reject_pending(&state.pool, campaign_id, shop, NOT_ADDED, why).await
}

/// Step 1: compensation Shopee refused earlier: `delete_discount` again.
async fn retry_compensations(state: &AppState, report: &mut Report) -> Result<(), ApiError> {
    for (campaign_id, shop, discount_id) in store::compensating(&state.pool).await? {
        let (Ok(shop), Ok(discount_id)) = (ShopId::from_i64(shop), u64::try_from(discount_id)) else {
            continue;
        };
        match state.shopee.delete_discount(shop, discount_id).await {
            Ok(_) => {
                fail_shop(
                    state,
                    campaign_id,
                    shop,
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
    Ok(())
}

/// Step 2: creations abandoned half-way (the request died and was not retried with its Idempotency-Key):
/// their discounts are deleted, and the key answers 502 from now on.
async fn roll_back_abandoned(
    state: &AppState,
    abandon_after: Duration,
    report: &mut Report,
) -> Result<(), ApiError> {
    let pool = &state.pool;
    let abandoned: Vec<Abandoned> = sqlx::query_as(
        "SELECT cs.campaign_id, cs.shop_id, cs.state, cs.discount_id, c.name, c.starts_at, c.ends_at
         FROM campaign_shops cs JOIN campaigns c ON c.id = cs.campaign_id
         WHERE cs.state = ANY($2)
           AND cs.updated_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM idempotency_keys k
                           WHERE k.campaign_id = cs.campaign_id AND k.locked_until > now())
         ORDER BY cs.campaign_id, cs.shop_id",
    )
    .bind(abandon_after.as_secs_f64())
    .bind([
        ShopState::Pending,
        ShopState::Creating,
        ShopState::DiscountCreated,
    ])
    .fetch_all(pool)
    .await?;
    let mut touched = Vec::new();
    for a in abandoned {
        let Ok(shop) = ShopId::from_i64(a.shop_id) else {
            continue;
        };
        let discount = match (a.state, a.discount_id) {
            (_, Some(d)) => u64::try_from(d).ok(),
            (ShopState::Creating, None) => match find_existing(state, shop, &a.spec).await {
                Ok(found) => found,
                Err(e) => {
                    report
                        .errors
                        .push(format!("shop {shop}: looking up an unfinished discount: {e:?}"));
                    continue;
                }
            },
            _ => None,
        };
        match discount {
            Some(discount_id) => {
                store::set_discount(pool, a.campaign_id, shop, discount_id).await?;
                let why = "creation was interrupted and not resumed";
                compensate(state, a.campaign_id, shop, discount_id, why).await?;
            }
            None => {
                fail_shop(
                    state,
                    a.campaign_id,
                    shop,
                    "creation was interrupted before a discount existed",
                )
                .await?
            }
        }
        report.abandoned += 1;
        touched.push(a.campaign_id);
    }
    let body = json!({"error": {"code": "shopee_error",
        "message": "the creation was interrupted and rolled back; nothing was left on Shopee: create the campaign again with a new Idempotency-Key"}});
    for campaign_id in touched {
        store::settle(pool, campaign_id).await?;
        idempotency::answer_unfinished(pool, campaign_id, 502, &body).await?;
    }
    Ok(())
}

/// Step 3: Shopee's status of every discount we keep (`get_discount_list`), `missing` when Shopee has it no more.
async fn sync_statuses(state: &AppState, report: &mut Report) -> Result<(), ApiError> {
    let pool = &state.pool;
    for shop in store::shops_with_active_discounts(pool).await? {
        let Ok(shop) = ShopId::from_i64(shop) else {
            continue;
        };
        let seen = match shopee_statuses(state, shop).await {
            Ok(seen) => seen,
            Err(e) => {
                report.errors.push(format!("shop {shop}: get_discount_list: {e}"));
                continue;
            }
        };
        report.shops_synced += 1;
        for discount_id in store::active_discounts(pool, shop).await? {
            let status = seen.get(&discount_id).copied().unwrap_or(ShopeeStatus::Missing);
            let changed = store::set_shopee_status(pool, shop, discount_id, status).await?;
            report.statuses_updated += usize::try_from(changed).unwrap_or(0);
        }
    }
    Ok(())
}

/// Every discount of the shop on Shopee and its status.
async fn shopee_statuses(
    state: &AppState,
    shop: ShopId,
) -> Result<HashMap<i64, ShopeeStatus>, shopee_client::Error> {
    let mut seen = HashMap::new();
    for page_no in 1..=50 {
        let resp = discount_page(state, shop, DiscountStatus::All, page_no).await?;
        for d in &resp.discount_list {
            seen.insert(
                i64::try_from(d.discount_id).unwrap_or_default(),
                ShopeeStatus::of(d.status),
            );
        }
        if !resp.more {
            break;
        }
    }
    Ok(seen)
}
