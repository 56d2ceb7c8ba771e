//! Product mapping: our SKU <-> Shopee (shop, item, model[, outlet item]).

use serde::{Deserialize, Serialize};

use crate::{ItemId, ModelId, ShopId, Sku};

/// Where a SKU lives in one Shopee shop. Unique per (sku, shop) and per (shop, item, model).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductMapping {
    pub sku: Sku,
    pub shop_id: ShopId,
    pub item_id: ItemId,
    /// `0` when the item has no models.
    pub model_id: ModelId,
    /// Instant Mart: the outlet's own item id, when it differs from the mart item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlet_item_id: Option<ItemId>,
}

/// How a mapping came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingSource {
    Manual,
    Discovered,
}

impl MappingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Discovered => "discovered",
        }
    }
}
