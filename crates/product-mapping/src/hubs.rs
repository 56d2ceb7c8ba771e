//! Hub <-> shop: which Shopee shop (and warehouse location) sells for each hub.

use domain::{HubId, ShopId};
use sqlx::PgPool;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLocation {
    pub hub_id: HubId,
    pub shop_id: ShopId,
    /// Shopee warehouse location, for multi-warehouse shops.
    pub location_id: Option<String>,
    pub active: bool,
}

#[derive(Clone)]
pub struct Hubs {
    pool: PgPool,
}

type Row = (String, i64, Option<String>, bool);

fn from_row((hub, shop, location, active): Row) -> Result<HubLocation> {
    Ok(HubLocation {
        hub_id: HubId::parse(&hub)?,
        shop_id: ShopId::from_i64(shop)?,
        location_id: location,
        active,
    })
}

impl Hubs {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Where a hub sells on Shopee.
    pub async fn location(&self, hub: &HubId) -> Result<Option<HubLocation>> {
        let row: Option<Row> =
            sqlx::query_as("SELECT hub_id, shop_id, location_id, active FROM hubs WHERE hub_id = $1")
                .bind(hub.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(from_row).transpose()
    }

    /// The active hubs of a shop (one for an Instant Mart outlet or a single-location shop).
    pub async fn for_shop(&self, shop: ShopId) -> Result<Vec<HubLocation>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hub_id, shop_id, location_id, active FROM hubs WHERE shop_id = $1 AND active ORDER BY hub_id",
        )
        .bind(shop.as_i64())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn all(&self) -> Result<Vec<HubLocation>> {
        let rows: Vec<Row> =
            sqlx::query_as("SELECT hub_id, shop_id, location_id, active FROM hubs ORDER BY hub_id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Records hubs (from the Hub Config Service or an operator), creating their shops when missing. A shop location
    /// belongs to one hub: recording a hub for it removes whichever hub had it before.
    pub async fn upsert(&self, hubs: &[HubLocation]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for h in hubs {
            sqlx::query("INSERT INTO shops (shop_id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(h.shop_id.as_i64())
                .execute(&mut *tx)
                .await?;
            // One hub per shop location: the latest word wins, so a hub that took over a shop replaces the old one.
            sqlx::query(
                "DELETE FROM hubs WHERE shop_id = $2 AND location_id IS NOT DISTINCT FROM $3 AND hub_id <> $1",
            )
            .bind(h.hub_id.as_str())
            .bind(h.shop_id.as_i64())
            .bind(h.location_id.as_deref())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO hubs (hub_id, shop_id, location_id, active) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (hub_id) DO UPDATE
                    SET shop_id = EXCLUDED.shop_id, location_id = EXCLUDED.location_id,
                        active = EXCLUDED.active, updated_at = now()",
            )
            .bind(h.hub_id.as_str())
            .bind(h.shop_id.as_i64())
            .bind(h.location_id.as_deref())
            .bind(h.active)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
