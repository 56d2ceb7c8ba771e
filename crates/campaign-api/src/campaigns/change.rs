//! The Shopee side of changing a live campaign: a PATCH (rename, end earlier, remove / reprice / add items), ending
//! and deleting. Each shop's discount is changed on its own; what Shopee did not apply is collected per shop and
//! answered as one 502, and the campaign's own record changes only when every shop did.

use domain::{ItemId, ModelId, ShopId};
use shopee_client::api::discount::{DeleteDiscountItemRequest, DiscountItemsRequest, UpdateDiscountRequest};

use super::execute::send_batch;
use super::plan::{self, Addition};
use super::state::{CampaignState, ItemState, NOT_ADDED, ShopState};
use super::store;
use super::validate::{Change, Finish};
use super::view::CampaignView;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Applies a PATCH to every live discount of the campaign, then records the name and end when all went through.
pub async fn apply(
    state: &AppState,
    view: &CampaignView,
    change: &Change,
    additions: &[Addition],
) -> ApiResult<()> {
    let mut failures = Vec::new();
    for (shop, discount_id) in plan::active_shops(view) {
        if change.touches_discount() {
            let r = UpdateDiscountRequest {
                discount_id,
                discount_name: change.name.clone(),
                start_time: None,
                end_time: change.ends_at.map(|e| e.timestamp()),
            };
            if let Err(e) = state.shopee.update_discount(shop, &r).await {
                failures.push(format!("shop {shop}: {e}"));
                continue;
            }
        }
        remove(state, view, shop, discount_id, &change.remove_skus, &mut failures).await?;
        reprice(state, view, shop, discount_id, change, &mut failures).await?;
    }
    for a in additions.iter().filter(|a| !a.items.is_empty()) {
        add(state, view.id, a, &mut failures).await?;
    }
    let (name, ends_at) = if failures.is_empty() {
        (change.name.as_deref(), change.ends_at)
    } else {
        (None, None)
    };
    store::rename_or_shorten(&state.pool, view.id, name, ends_at).await?;
    if !failures.is_empty() {
        return Err(ApiError::Shopee(format!(
            "some changes were not applied on Shopee: {}",
            failures.join("; ")
        )));
    }
    Ok(())
}

async fn remove(
    state: &AppState,
    view: &CampaignView,
    shop: ShopId,
    discount_id: u64,
    skus: &[String],
    failures: &mut Vec<String>,
) -> ApiResult<()> {
    for sku in skus {
        let Some(item) = view.added_item(shop.as_i64(), sku) else {
            continue;
        };
        let r = DeleteDiscountItemRequest {
            discount_id,
            item_id: ItemId::from_i64(item.item_id).map_err(|e| ApiError::Internal(e.to_string()))?,
            model_id: (item.model_id != 0)
                .then(|| ModelId::from_i64(item.model_id).ok())
                .flatten(),
        };
        match state.shopee.delete_discount_item(shop, &r).await {
            Ok(resp) if resp.error_list.is_empty() => {
                store::set_item(&state.pool, view.id, shop, sku, ItemState::Removed, None).await?;
            }
            Ok(resp) => failures.push(format!(
                "shop {shop}, SKU {sku}: {}",
                resp.error_list
                    .first()
                    .map(|e| e.fail_message.as_str())
                    .unwrap_or("refused")
            )),
            Err(e) => failures.push(format!("shop {shop}, SKU {sku}: {e}")),
        }
    }
    Ok(())
}

async fn reprice(
    state: &AppState,
    view: &CampaignView,
    shop: ShopId,
    discount_id: u64,
    change: &Change,
    failures: &mut Vec<String>,
) -> ApiResult<()> {
    for batch in plan::batches(plan::reprice_lines(&change.reprice, view, shop)) {
        let r = DiscountItemsRequest {
            discount_id,
            item_list: plan::discount_items(&batch),
        };
        let resp = match state.shopee.update_discount_item(shop, &r).await {
            Ok(resp) => resp,
            Err(e) => {
                failures.push(format!("shop {shop}: {e}"));
                continue;
            }
        };
        for line in &batch {
            match resp
                .error_list
                .iter()
                .find(|e| e.item_id.as_i64() == line.item_id)
            {
                Some(e) => failures.push(format!("shop {shop}, SKU {}: {}", line.sku, e.fail_message)),
                None => store::set_price(&state.pool, view.id, shop, line).await?,
            }
        }
    }
    Ok(())
}

/// Adds items to a live discount. Items Shopee refuses are `rejected`; the discount itself stays as it is.
async fn add(state: &AppState, id: i64, a: &Addition, failures: &mut Vec<String>) -> ApiResult<()> {
    let shop = a.shop_id;
    store::add_items(&state.pool, id, shop, &a.items).await?;
    let pending = store::lines(&state.pool, id, shop, ItemState::Pending).await?;
    for batch in plan::batches(pending) {
        match send_batch(state, shop, a.discount_id, &batch).await {
            Ok(refusals) => {
                for r in &batch {
                    let o = plan::outcome_when_adding(&refusals, r);
                    store::set_item(&state.pool, id, shop, &r.sku, o.state, o.error).await?;
                }
            }
            Err(e) => {
                // The discount itself is live and recorded; only these items are not in it.
                let message = e.to_string();
                for r in &batch {
                    let error = Some((NOT_ADDED, message.as_str()));
                    store::set_item(&state.pool, id, shop, &r.sku, ItemState::Rejected, error).await?;
                }
                failures.push(format!("shop {shop}: adding items failed: {e}"));
            }
        }
    }
    Ok(())
}

/// Ends or deletes every live discount of the campaign; the campaign follows when every shop did.
pub async fn finish(state: &AppState, view: &CampaignView, how: Finish) -> ApiResult<()> {
    let (shop_state, campaign_state) = match how {
        Finish::End => (ShopState::Ended, CampaignState::Ended),
        Finish::Delete => (ShopState::Deleted, CampaignState::Deleted),
    };
    let mut failures = Vec::new();
    for (shop, discount_id) in plan::active_shops(view) {
        let done = match how {
            Finish::End => state.shopee.end_discount(shop, discount_id).await.map(drop),
            Finish::Delete => state.shopee.delete_discount(shop, discount_id).await.map(drop),
        };
        match done {
            Ok(()) => store::set_shop(&state.pool, view.id, shop, shop_state, None, None).await?,
            Err(e) => failures.push(format!("shop {shop}: {e}")),
        }
    }
    if !failures.is_empty() {
        return Err(ApiError::Shopee(format!(
            "not every shop's discount changed; retry: {}",
            failures.join("; ")
        )));
    }
    store::set_campaign(&state.pool, view.id, campaign_state).await?;
    Ok(())
}
