//! Product mapping (SKU <-> Shopee shop/item/model) and the hub <-> shop link.
//!
//! PostgreSQL is the source of truth. Redis is a read-through cache whose keys carry a per-shop *epoch*: every
//! change bumps the shop's epoch after it commits, so a value cached from before the change is never read again,
//! even if it is written late by a slow reader. When Redis is flushed the epoch key is recreated with a random
//! value, so entries written under an old epoch stay unreachable. When Redis is down, reads go to PostgreSQL.

mod cache;
mod hubs;

use std::collections::HashMap;

use domain::mapping::{MappingSource, ProductMapping};
use domain::{ItemId, ModelId, ShopId, Sku};
use sqlx::PgPool;

pub use hubs::{HubLocation, Hubs};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored mapping is invalid: {0}")]
    Corrupt(#[from] domain::ParseError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a bulk upsert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertReport {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Mappings refused because the Shopee model already belongs to another SKU.
    pub conflicts: Vec<(ProductMapping, Sku)>,
}

#[derive(Clone)]
pub struct Mappings {
    pool: PgPool,
    cache: cache::Cache,
}

type Row = (String, i64, i64, i64, Option<i64>);

fn from_row((sku, shop_id, item_id, model_id, outlet): Row) -> Result<ProductMapping> {
    Ok(ProductMapping {
        sku: Sku::parse(&sku)?,
        shop_id: ShopId::from_i64(shop_id)?,
        item_id: ItemId::from_i64(item_id)?,
        model_id: ModelId::from_i64(model_id)?,
        outlet_item_id: outlet.map(ItemId::from_i64).transpose()?,
    })
}

impl Mappings {
    /// `redis: None` reads PostgreSQL every time.
    pub fn new(pool: PgPool, redis: Option<deadpool_redis::Pool>) -> Self {
        Self {
            pool,
            cache: cache::Cache::new(redis),
        }
    }

    /// The same mappings read straight from PostgreSQL, for paths that run because a mapping just changed (the
    /// cache may not have been invalidated yet when the change becomes visible).
    pub fn uncached(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            cache: cache::Cache::new(None),
        }
    }

    /// The SKU sold as (shop, item, model), if mapped.
    pub async fn sku_for_model(&self, shop: ShopId, item: ItemId, model: ModelId) -> Result<Option<Sku>> {
        let key = format!("m:{item}:{model}");
        if let Some(cached) = self.cache.get(shop, &key).await {
            return Ok(if cached.is_empty() {
                None
            } else {
                Some(Sku::parse(&cached)?)
            });
        }
        let epoch = self.cache.epoch(shop).await;
        let sku: Option<String> = sqlx::query_scalar(
            "SELECT sku FROM product_mappings WHERE shop_id = $1 AND item_id = $2 AND model_id = $3",
        )
        .bind(shop.as_i64())
        .bind(item.as_i64())
        .bind(model.as_i64())
        .fetch_optional(&self.pool)
        .await?;
        self.cache
            .put(shop, epoch, &key, sku.as_deref().unwrap_or(""))
            .await;
        Ok(sku.map(|s| Sku::parse(&s)).transpose()?)
    }

    /// Where `sku` lives in `shop`, if mapped.
    pub async fn for_sku(&self, sku: &Sku, shop: ShopId) -> Result<Option<ProductMapping>> {
        let key = format!("s:{sku}");
        if let Some(cached) = self.cache.get(shop, &key).await {
            if cached.is_empty() {
                return Ok(None);
            }
            if let Ok(m) = serde_json::from_str::<ProductMapping>(&cached) {
                return Ok(Some(m));
            }
        }
        let epoch = self.cache.epoch(shop).await;
        let row: Option<Row> = sqlx::query_as(
            "SELECT sku, shop_id, item_id, model_id, outlet_item_id FROM product_mappings
             WHERE sku = $1 AND shop_id = $2",
        )
        .bind(sku.as_str())
        .bind(shop.as_i64())
        .fetch_optional(&self.pool)
        .await?;
        let mapping = row.map(from_row).transpose()?;
        let value = mapping
            .as_ref()
            .and_then(|m| serde_json::to_string(m).ok())
            .unwrap_or_default();
        self.cache.put(shop, epoch, &key, &value).await;
        Ok(mapping)
    }

    /// Every shop where `sku` is mapped (PostgreSQL; for campaign fan-out and admin reads).
    pub async fn list(
        &self,
        sku: Option<&Sku>,
        shop: Option<ShopId>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ProductMapping>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT sku, shop_id, item_id, model_id, outlet_item_id FROM product_mappings
             WHERE ($1::text IS NULL OR sku = $1) AND ($2::int8 IS NULL OR shop_id = $2)
             ORDER BY sku, shop_id LIMIT $3 OFFSET $4",
        )
        .bind(sku.map(Sku::as_str))
        .bind(shop.map(ShopId::as_i64))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Every mapping of `skus` in `shop`.
    pub async fn for_skus(&self, shop: ShopId, skus: &[Sku]) -> Result<HashMap<Sku, ProductMapping>> {
        let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT sku, shop_id, item_id, model_id, outlet_item_id FROM product_mappings
             WHERE shop_id = $1 AND sku = ANY($2)",
        )
        .bind(shop.as_i64())
        .bind(&names)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| from_row(r).map(|m| (m.sku.clone(), m)))
            .collect()
    }

    /// Inserts or updates mappings, one statement each. A mapping whose (shop, item, model) already belongs to
    /// another SKU is refused and reported, never silently moved. Shops are created when missing.
    pub async fn upsert(&self, mappings: &[ProductMapping], source: MappingSource) -> Result<UpsertReport> {
        let mut report = UpsertReport::default();
        let mut touched_shops: Vec<ShopId> = Vec::new();
        for m in mappings {
            sqlx::query("INSERT INTO shops (shop_id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(m.shop_id.as_i64())
                .execute(&self.pool)
                .await?;
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT sku FROM product_mappings WHERE shop_id = $1 AND item_id = $2 AND model_id = $3",
            )
            .bind(m.shop_id.as_i64())
            .bind(m.item_id.as_i64())
            .bind(m.model_id.as_i64())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(owner) = owner.filter(|o| o != m.sku.as_str()) {
                report.conflicts.push((m.clone(), Sku::parse(&owner)?));
                continue;
            }
            let result: Option<(bool, bool)> = sqlx::query_as(
                "INSERT INTO product_mappings (sku, shop_id, item_id, model_id, outlet_item_id, source)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sku, shop_id) DO UPDATE
                    SET item_id = EXCLUDED.item_id, model_id = EXCLUDED.model_id,
                        outlet_item_id = EXCLUDED.outlet_item_id, source = EXCLUDED.source, updated_at = now()
                    WHERE (product_mappings.item_id, product_mappings.model_id, product_mappings.outlet_item_id)
                          IS DISTINCT FROM (EXCLUDED.item_id, EXCLUDED.model_id, EXCLUDED.outlet_item_id)
                 RETURNING (xmax = 0), true",
            )
            .bind(m.sku.as_str())
            .bind(m.shop_id.as_i64())
            .bind(m.item_id.as_i64())
            .bind(m.model_id.as_i64())
            .bind(m.outlet_item_id.map(ItemId::as_i64))
            .bind(source.as_str())
            .fetch_optional(&self.pool)
            .await
            .or_else(|e| match &e {
                // Lost a race with a concurrent writer mapping this model to another SKU.
                sqlx::Error::Database(db) if db.constraint() == Some("product_mappings_one_sku_per_model") => Ok(None),
                _ => Err(e),
            })?;
            match result {
                Some((true, _)) => report.inserted += 1,
                Some((false, _)) => report.updated += 1,
                None => report.unchanged += 1,
            }
            if !touched_shops.contains(&m.shop_id) {
                touched_shops.push(m.shop_id);
            }
        }
        for shop in touched_shops {
            self.cache.invalidate(shop).await;
        }
        Ok(report)
    }
}
