//! The Shopee side of a campaign's creation, run (or resumed) from its recorded state: per shop `add_discount`
//! (its id recorded at once), then `add_discount_item` in batches. An unknown outcome is read back and only the
//! missing items are sent again; what cannot finish is compensated with `delete_discount` (R15).

use std::collections::HashSet;

use domain::ShopId;
use shopee_client::api::discount::{
    AddDiscountRequest, DiscountItemsRequest, DiscountStatus, GetDiscountListRequest,
    GetDiscountListResponse, GetDiscountRequest,
};

use super::plan::{self, Line, Refusal};
use super::state::{ItemState, NOT_ADDED, ShopState};
use super::store::{self, DiscountSpec};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::idempotency;

/// Runs (or resumes) the Shopee side of a campaign from its recorded state. Safe to call again at any point.
/// `key`: the Idempotency-Key (scope, key) whose lease is renewed before each shop.
pub async fn execute(state: &AppState, campaign_id: i64, key: Option<(&str, &str)>) -> ApiResult<()> {
    let spec = store::discount_spec(&state.pool, campaign_id).await?;
    for progress in store::shop_progress(&state.pool, campaign_id).await? {
        let shop = ShopId::from_i64(progress.shop_id).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some((scope, key)) = key {
            idempotency::renew(&state.pool, scope, key).await?;
        }
        match (progress.state, progress.discount_id) {
            (ShopState::Pending | ShopState::Creating, _) => {
                let was_creating = progress.state == ShopState::Creating;
                if let Some(discount_id) =
                    ensure_discount(state, campaign_id, &spec, shop, was_creating).await?
                {
                    add_pending(state, campaign_id, shop, discount_id, false).await?;
                }
            }
            (ShopState::DiscountCreated, Some(discount_id)) => {
                let discount_id = u64::try_from(discount_id).unwrap_or_default();
                add_pending(state, campaign_id, shop, discount_id, true).await?;
            }
            _ => {}
        }
    }
    store::settle(&state.pool, campaign_id).await?;
    Ok(())
}

/// Creates the shop's discount, or adopts the one an interrupted earlier attempt created. `None` when there is
/// none (the shop is marked failed, or left `creating` for the reconcile loop when Shopee's answer is unknown).
async fn ensure_discount(
    state: &AppState,
    campaign_id: i64,
    spec: &DiscountSpec,
    shop: ShopId,
    was_creating: bool,
) -> ApiResult<Option<u64>> {
    let pool = &state.pool;
    if was_creating && let Ok(Some(id)) = find_existing(state, shop, spec).await {
        store::set_shop(
            pool,
            campaign_id,
            shop,
            ShopState::DiscountCreated,
            Some(id),
            None,
        )
        .await?;
        return Ok(Some(id));
    }
    store::set_shop(pool, campaign_id, shop, ShopState::Creating, None, None).await?;
    let req = AddDiscountRequest {
        discount_name: spec.name.clone(),
        start_time: spec.starts_at.timestamp(),
        end_time: spec.ends_at.timestamp(),
    };
    match state.shopee.add_discount(shop, &req).await {
        Ok(r) => {
            // Recorded before any item is added: from here on this discount can always be found and cleaned up.
            let id = r.discount_id;
            store::set_shop(
                pool,
                campaign_id,
                shop,
                ShopState::DiscountCreated,
                Some(id),
                None,
            )
            .await?;
            Ok(Some(id))
        }
        Err(e) if e.is_retryable() => {
            // Shopee may have created it before failing: look for it before giving up.
            if let Ok(Some(id)) = find_existing(state, shop, spec).await {
                store::set_shop(
                    pool,
                    campaign_id,
                    shop,
                    ShopState::DiscountCreated,
                    Some(id),
                    None,
                )
                .await?;
                return Ok(Some(id));
            }
            let msg =
                format!("add_discount failed and no discount was found for it (checked again later): {e}");
            store::set_shop(pool, campaign_id, shop, ShopState::Creating, None, Some(&msg)).await?;
            Ok(None)
        }
        Err(e) => {
            let msg = e.to_string();
            store::set_shop(pool, campaign_id, shop, ShopState::Failed, None, Some(&msg)).await?;
            let why = "the discount could not be created";
            store::reject_pending(pool, campaign_id, shop, NOT_ADDED, why).await?;
            Ok(None)
        }
    }
}

/// One page (of 100) of the shop's discounts in this status on Shopee.
pub async fn discount_page(
    state: &AppState,
    shop: ShopId,
    status: DiscountStatus,
    page_no: u32,
) -> Result<GetDiscountListResponse, shopee_client::Error> {
    let req = GetDiscountListRequest {
        discount_status: status,
        page_no,
        page_size: 100,
        update_time_from: None,
        update_time_to: None,
    };
    state.shopee.get_discount_list(shop, &req).await
}

/// An upcoming discount of the shop with this name and period that no campaign has recorded yet.
pub async fn find_existing(state: &AppState, shop: ShopId, spec: &DiscountSpec) -> ApiResult<Option<u64>> {
    for page_no in 1..=20 {
        let resp = discount_page(state, shop, DiscountStatus::Upcoming, page_no).await?;
        for d in &resp.discount_list {
            let same = d.discount_name == spec.name
                && d.start_time == spec.starts_at.timestamp()
                && d.end_time == spec.ends_at.timestamp();
            if same && !store::discount_known(&state.pool, shop, d.discount_id).await? {
                return Ok(Some(d.discount_id));
            }
        }
        if !resp.more {
            break;
        }
    }
    Ok(None)
}

/// (item, model) pairs already on the discount.
async fn present_on_discount(
    state: &AppState,
    shop: ShopId,
    discount_id: u64,
) -> ApiResult<HashSet<(i64, i64)>> {
    let mut present = HashSet::new();
    for page_no in 1..=20 {
        let req = GetDiscountRequest {
            discount_id,
            page_no,
            page_size: 100,
        };
        let d = state.shopee.get_discount(shop, &req).await?;
        for it in &d.item_list {
            if it.model_list.is_empty() {
                present.insert((it.item_id.as_i64(), 0));
            }
            for m in &it.model_list {
                present.insert((it.item_id.as_i64(), m.model_id.as_i64()));
            }
        }
        if !d.more {
            break;
        }
    }
    Ok(present)
}

/// Marks the lines already on the discount `added`; the rest are still to send.
async fn keep_missing(
    state: &AppState,
    campaign_id: i64,
    shop: ShopId,
    lines: Vec<Line>,
    present: &HashSet<(i64, i64)>,
) -> ApiResult<Vec<Line>> {
    let (there, missing): (Vec<Line>, Vec<Line>) = lines
        .into_iter()
        .partition(|r| present.contains(&(r.item_id, r.model_id)));
    for r in &there {
        store::set_item(&state.pool, campaign_id, shop, &r.sku, ItemState::Added, None).await?;
    }
    Ok(missing)
}

/// Adds the shop's pending items in batches of <= 50 and records each item's outcome. A batch whose outcome is
/// unknown is read back and only the missing items sent again; if it still fails, the discount is deleted.
async fn add_pending(
    state: &AppState,
    campaign_id: i64,
    shop: ShopId,
    discount_id: u64,
    resuming: bool,
) -> ApiResult<()> {
    let mut pending = store::lines(&state.pool, campaign_id, shop, ItemState::Pending).await?;
    if resuming && !pending.is_empty() {
        // An earlier attempt may have added some of them before it stopped.
        match present_on_discount(state, shop, discount_id).await {
            Ok(present) => pending = keep_missing(state, campaign_id, shop, pending, &present).await?,
            Err(e) => {
                let reason = format!("cannot read the discount back to resume: {e:?}");
                return compensate(state, campaign_id, shop, discount_id, &reason).await;
            }
        }
    }
    for mut batch in plan::batches(pending) {
        let mut result = send_batch(state, shop, discount_id, &batch).await;
        if matches!(&result, Err(e) if e.is_retryable()) {
            // Unknown outcome: read back what is there, then send only the rest, once.
            if let Ok(present) = present_on_discount(state, shop, discount_id).await {
                batch = keep_missing(state, campaign_id, shop, batch, &present).await?;
                result = if batch.is_empty() {
                    Ok(Vec::new())
                } else {
                    send_batch(state, shop, discount_id, &batch).await
                };
            }
        }
        match result {
            Ok(refusals) => {
                for r in &batch {
                    let o = plan::outcome_when_creating(&refusals, r);
                    store::set_item(&state.pool, campaign_id, shop, &r.sku, o.state, o.error).await?;
                }
            }
            Err(e) => {
                let reason = format!("adding items failed: {e}");
                return compensate(state, campaign_id, shop, discount_id, &reason).await;
            }
        }
    }
    if store::count_items(&state.pool, campaign_id, shop, ItemState::Added).await? == 0 {
        let reason = "Shopee accepted none of the items (see each item's error)";
        return compensate(state, campaign_id, shop, discount_id, reason).await;
    }
    store::set_shop(&state.pool, campaign_id, shop, ShopState::Active, None, None).await?;
    Ok(())
}

/// One `add_discount_item` call; the items Shopee refused.
pub async fn send_batch(
    state: &AppState,
    shop: ShopId,
    discount_id: u64,
    batch: &[Line],
) -> Result<Vec<Refusal>, shopee_client::Error> {
    let req = DiscountItemsRequest {
        discount_id,
        item_list: plan::discount_items(batch),
    };
    let resp = state.shopee.add_discount_item(shop, &req).await?;
    Ok(resp.error_list.into_iter().map(Refusal::from).collect())
}

/// Deletes the shop's discount so nothing half-made stays on Shopee. If Shopee refuses now, the shop stays
/// `compensating` and the reconcile loop tries again.
pub async fn compensate(
    state: &AppState,
    campaign_id: i64,
    shop: ShopId,
    discount_id: u64,
    reason: &str,
) -> ApiResult<()> {
    let pool = &state.pool;
    store::set_shop(
        pool,
        campaign_id,
        shop,
        ShopState::Compensating,
        None,
        Some(reason),
    )
    .await?;
    store::reject_pending(pool, campaign_id, shop, NOT_ADDED, reason).await?;
    match state.shopee.delete_discount(shop, discount_id).await {
        Ok(_) => {
            metrics::counter!("campaign_compensations_total", "outcome" => "deleted").increment(1);
            let msg = format!("{reason}; the discount was deleted on Shopee");
            store::set_shop(pool, campaign_id, shop, ShopState::Failed, None, Some(&msg)).await?;
        }
        Err(e) => {
            metrics::counter!("campaign_compensations_total", "outcome" => "deferred").increment(1);
            tracing::warn!(shop.id = %shop, discount.id = discount_id, error = %e, "delete_discount failed; the reconcile loop retries");
            let msg = format!("{reason}; deleting the discount failed ({e}), retried in the background");
            store::set_shop(pool, campaign_id, shop, ShopState::Compensating, None, Some(&msg)).await?;
        }
    }
    Ok(())
}
