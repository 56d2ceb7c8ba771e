//! The lookups that turn a validated request into per-shop plans: hubs to shops, SKUs to (item, model) in each
//! shop, and the current prices a promotion must stay below. Problems a person can act on are answered together.

use std::collections::HashSet;

use domain::{HubId, ShopId, Sku};

use super::plan::{self, Addition, ShopPlan};
use super::store;
use super::validate::{Change, NewCampaign, truncate, verdict};
use super::view::CampaignView;
use crate::AppState;
use crate::error::ApiResult;

/// The shops a new campaign goes to, each with the items mapped there.
pub async fn new_campaign(state: &AppState, c: &NewCampaign) -> ApiResult<Vec<ShopPlan>> {
    let mut problems = Vec::new();
    let skus: Vec<Sku> = c.items.iter().map(|i| i.sku.clone()).collect();
    let shops = match &c.hub_ids {
        Some(hubs) => shops_of_hubs(state, hubs, &mut problems).await?,
        None => store::shops_mapping(&state.pool, &skus)
            .await?
            .into_iter()
            .map(|shop| (shop, None))
            .collect(),
    };
    let mut plans = Vec::new();
    let mut mapped_somewhere: HashSet<Sku> = HashSet::new();
    for (shop, hub) in shops {
        let found = state.mappings.for_skus(shop, &skus).await?;
        let (planned, unmapped) = plan::resolve_in_shop(&c.items, &found);
        if let Some(hub) = hub {
            for it in unmapped {
                problems.push(format!(
                    "SKU {} is not mapped in shop {shop} (hub {hub}): add it with PUT /v1/mappings or run \
                     POST /v1/mappings/discover",
                    it.sku
                ));
            }
        }
        mapped_somewhere.extend(planned.iter().map(|p| p.sku.clone()));
        let current = store::current_prices(&state.pool, shop, &planned).await?;
        problems.extend(plan::price_problems(shop, &planned, &current));
        if !planned.is_empty() {
            plans.push(ShopPlan {
                shop_id: shop,
                items: planned,
            });
        }
    }
    if c.hub_ids.is_none() {
        for it in c.items.iter().filter(|i| !mapped_somewhere.contains(&i.sku)) {
            problems.push(format!(
                "SKU {} is unknown here: it is not mapped to any Shopee shop (PUT /v1/mappings)",
                it.sku
            ));
        }
    }
    verdict(plans, problems)
}

/// The shops of the named hubs (each once), with the hub each was named through.
async fn shops_of_hubs(
    state: &AppState,
    hubs: &[String],
    problems: &mut Vec<String>,
) -> ApiResult<Vec<(ShopId, Option<HubId>)>> {
    if hubs.is_empty() {
        problems.push("hub_ids, when given, must name at least one hub (leave it out for every shop)".into());
    }
    let mut shops: Vec<(ShopId, Option<HubId>)> = Vec::new();
    for raw in hubs {
        let Ok(hub) = HubId::parse(raw) else {
            problems.push(format!("hub `{}` is not a valid hub id", truncate(raw)));
            continue;
        };
        match state.hubs.location(&hub).await? {
            None => problems.push(format!("hub {hub} is not known")),
            Some(loc) if !loc.active => problems.push(format!("hub {hub} is not active")),
            Some(loc) => {
                if !shops.iter().any(|(s, _)| *s == loc.shop_id) {
                    shops.push((loc.shop_id, Some(hub)));
                }
            }
        }
    }
    Ok(shops)
}

/// The items a PATCH adds, per live discount of the campaign.
pub async fn additions(state: &AppState, view: &CampaignView, change: &Change) -> ApiResult<Vec<Addition>> {
    if change.add.is_empty() {
        return Ok(Vec::new());
    }
    let id = view.id;
    let mut problems = Vec::new();
    let skus: Vec<Sku> = change.add.iter().map(|a| a.sku.clone()).collect();
    let mut mapped = HashSet::new();
    let mut additions = Vec::new();
    for (shop, discount_id) in plan::active_shops(view) {
        let found = state.mappings.for_skus(shop, &skus).await?;
        let (planned, unmapped) = plan::resolve_in_shop(&change.add, &found);
        if view.hub_ids.is_some() {
            for a in unmapped {
                problems.push(format!("SKU {} is not mapped in shop {shop}", a.sku));
            }
        }
        mapped.extend(planned.iter().map(|p| p.sku.clone()));
        let current = store::current_prices(&state.pool, shop, &planned).await?;
        problems.extend(plan::price_problems(shop, &planned, &current));
        additions.push(Addition {
            shop_id: shop,
            discount_id,
            items: planned,
        });
    }
    for a in change.add.iter().filter(|a| !mapped.contains(&a.sku)) {
        problems.push(format!(
            "SKU {} is not mapped in any shop of campaign {id}",
            a.sku
        ));
    }
    verdict(additions, problems)
}
