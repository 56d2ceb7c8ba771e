//! (sku, hub) -> Shopee (shop, item, model, location) through the hub mapping and the product mapping.
//!
//! The product mapping is read through `product_mapping::Mappings` (Redis cache over PostgreSQL, epoch-guarded).
//! The flusher checks the mapping again in PostgreSQL right before every call (see `flush.rs`), so even a cache
//! that lies cannot produce a call with a wrong item or model id.

use std::collections::{HashMap, HashSet};

use domain::mapping::ProductMapping;
use domain::{HubId, ItemId, ModelId, ShopId, Sku};
use futures::StreamExt as _;
use product_mapping::{HubLocation, Hubs, Mappings};
use sqlx::PgPool;

use crate::events::{Kind, Update};

/// Where one update goes on Shopee.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub shop_id: ShopId,
    pub item_id: ItemId,
    pub model_id: ModelId,
    /// The warehouse for stock in a multi-warehouse shop; empty otherwise.
    pub location_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Target(Target),
    /// Why it cannot be sent yet (kept as needs_mapping).
    Unmapped(String),
}

/// The item a price or stock call addresses: an Instant Mart outlet shop updates its own outlet item.
pub fn call_item(m: &ProductMapping, outlet_shop: bool) -> ItemId {
    if outlet_shop {
        m.outlet_item_id.unwrap_or(m.item_id)
    } else {
        m.item_id
    }
}

#[derive(Clone)]
pub struct Resolver {
    pool: PgPool,
    hubs: Hubs,
    mappings: Mappings,
}

impl Resolver {
    pub fn new(pool: PgPool, mappings: Mappings) -> Self {
        Self {
            hubs: Hubs::new(pool.clone()),
            pool,
            mappings,
        }
    }

    pub fn mappings(&self) -> &Mappings {
        &self.mappings
    }

    /// Shops that are Instant Mart outlets.
    pub async fn outlet_shops(&self) -> Result<HashSet<i64>, sqlx::Error> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT shop_id FROM shops WHERE mart_shop_id IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// Resolves a batch: the hubs are read once, each distinct (sku, shop) once.
    pub async fn resolve(&self, updates: &[Update]) -> anyhow::Result<Vec<Resolution>> {
        let hubs: HashMap<HubId, HubLocation> = self
            .hubs
            .all()
            .await?
            .into_iter()
            .map(|h| (h.hub_id.clone(), h))
            .collect();
        let outlets = self.outlet_shops().await?;
        let mut wanted: Vec<(Sku, ShopId)> = updates
            .iter()
            .filter_map(|u| {
                hubs.get(&u.hub_id)
                    .filter(|h| h.active)
                    .map(|h| (u.sku.clone(), h.shop_id))
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        let found: Vec<((Sku, ShopId), Option<ProductMapping>)> = futures::stream::iter(wanted)
            .map(|(sku, shop)| async move {
                let m = self.mappings.for_sku(&sku, shop).await;
                m.map(|m| ((sku, shop), m))
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let found: HashMap<(Sku, ShopId), Option<ProductMapping>> = found.into_iter().collect();
        Ok(updates
            .iter()
            .map(|u| {
                let Some(hub) = hubs.get(&u.hub_id) else {
                    return Resolution::Unmapped(format!(
                        "hub {} is not known (no hub <-> shop mapping)",
                        u.hub_id
                    ));
                };
                if !hub.active {
                    return Resolution::Unmapped(format!("hub {} is inactive", u.hub_id));
                }
                match found.get(&(u.sku.clone(), hub.shop_id)) {
                    Some(Some(m)) => Resolution::Target(Target {
                        shop_id: hub.shop_id,
                        item_id: call_item(m, outlets.contains(&hub.shop_id.as_i64())),
                        model_id: m.model_id,
                        location_id: match u.kind {
                            Kind::Stock => hub.location_id.clone().unwrap_or_default(),
                            Kind::Price => String::new(),
                        },
                    }),
                    _ => Resolution::Unmapped(format!("SKU {} is not mapped in shop {}", u.sku, hub.shop_id)),
                }
            })
            .collect())
    }
}
