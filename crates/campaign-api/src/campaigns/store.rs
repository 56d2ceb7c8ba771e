//! The SQL of campaigns: `campaigns`, `campaign_shops`, `campaign_items`, and the reads campaign planning needs
//! (`product_mappings`, `catalog_sync_state`). States are bound and read as the enums of [`super::state`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{Money, ShopId, Sku};
use sqlx::{PgConnection, PgPool};

use super::plan::{Line, PlannedItem, ShopPlan};
use super::state::{CampaignState, CampaignStatus, ItemState, ShopState, ShopeeStatus};
use super::validate::NewCampaign;
use super::view::{CampaignView, ItemError, ItemView, ShopView};
use crate::idempotency;

/// The name and period a campaign's discounts carry on Shopee: how an unrecorded discount is recognised.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DiscountSpec {
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// A shop's discount as the creation left it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShopProgress {
    pub shop_id: i64,
    pub state: ShopState,
    pub discount_id: Option<i64>,
}

// ---------------------------------------------------------------------------------------------------------------
// Planning reads

/// The shops where any of the SKUs is mapped.
pub async fn shops_mapping(pool: &PgPool, skus: &[Sku]) -> Result<Vec<ShopId>, sqlx::Error> {
    let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT shop_id FROM product_mappings WHERE sku = ANY($1) ORDER BY shop_id",
    )
    .bind(&names)
    .fetch_all(pool)
    .await?;
    Ok(ids
        .into_iter()
        .filter_map(|id| ShopId::from_i64(id).ok())
        .collect())
}

/// The newest price the catalog sync saw of these items in a shop: (item, model) -> centavos.
pub async fn current_prices(
    pool: &PgPool,
    shop: ShopId,
    items: &[PlannedItem],
) -> Result<HashMap<(i64, i64), i64>, sqlx::Error> {
    if items.is_empty() {
        return Ok(HashMap::new());
    }
    let item_ids: Vec<i64> = items.iter().map(|i| i.item_id.as_i64()).collect();
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT item_id, model_id, newest_value FROM catalog_sync_state
         WHERE shop_id = $1 AND kind = 'price' AND item_id = ANY($2)",
    )
    .bind(shop.as_i64())
    .bind(&item_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(i, m, v)| ((i, m), v)).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Writes

/// Records the campaign, its shops and items, and links the idempotency key, in one transaction.
pub async fn record(
    pool: &PgPool,
    c: &NewCampaign,
    plans: &[ShopPlan],
    key: Option<(&str, &str)>,
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, starts_at, ends_at, hub_ids) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(&c.name)
    .bind(c.starts_at)
    .bind(c.ends_at)
    .bind(c.hub_ids.as_deref())
    .fetch_one(&mut *tx)
    .await?;
    for p in plans {
        sqlx::query("INSERT INTO campaign_shops (campaign_id, shop_id) VALUES ($1, $2)")
            .bind(id)
            .bind(p.shop_id.as_i64())
            .execute(&mut *tx)
            .await?;
        insert_items(&mut tx, id, p.shop_id, &p.items).await?;
    }
    if let Some((scope, key)) = key {
        idempotency::attach(&mut tx, scope, key, id).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Adds items to a shop of a campaign as `pending` (an item already there is reset to `pending`).
pub async fn add_items(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    items: &[PlannedItem],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    insert_items(&mut tx, campaign_id, shop, items).await?;
    tx.commit().await
}

async fn insert_items(
    tx: &mut PgConnection,
    campaign_id: i64,
    shop: ShopId,
    items: &[PlannedItem],
) -> Result<(), sqlx::Error> {
    let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
    let item_ids: Vec<i64> = items.iter().map(|i| i.item_id.as_i64()).collect();
    let model_ids: Vec<i64> = items.iter().map(|i| i.model_id.as_i64()).collect();
    let prices: Vec<i64> = items.iter().map(|i| i.price.centavos()).collect();
    let limits: Vec<i32> = items
        .iter()
        .map(|i| i32::try_from(i.purchase_limit).unwrap_or(i32::MAX))
        .collect();
    let stocks: Vec<Option<i32>> = items
        .iter()
        .map(|i| i.promotion_stock.map(|s| i32::try_from(s).unwrap_or(i32::MAX)))
        .collect();
    sqlx::query(
        "INSERT INTO campaign_items (campaign_id, shop_id, sku, item_id, model_id, promotion_price, purchase_limit,
                                     promotion_stock)
         SELECT $1, $2, * FROM UNNEST($3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int4[], $8::int4[])
         ON CONFLICT (campaign_id, shop_id, sku) DO UPDATE
            SET item_id = EXCLUDED.item_id, model_id = EXCLUDED.model_id, promotion_price = EXCLUDED.promotion_price,
                purchase_limit = EXCLUDED.purchase_limit, promotion_stock = EXCLUDED.promotion_stock,
                state = $9, error_code = NULL, error_message = NULL, updated_at = now()",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(&skus)
    .bind(&item_ids)
    .bind(&model_ids)
    .bind(&prices)
    .bind(&limits)
    .bind(&stocks)
    .bind(ItemState::Pending)
    .execute(tx)
    .await
    .map(|_| ())
}

/// Sets a shop's state, its discount id (kept when `None`) and its error.
pub async fn set_shop(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    state: ShopState,
    discount_id: Option<u64>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_shops SET state = $3, discount_id = COALESCE($4, discount_id), error = $5, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(state)
    .bind(discount_id.and_then(|d| i64::try_from(d).ok()))
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Sets an item's state and its error (code, message).
pub async fn set_item(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    sku: &str,
    state: ItemState,
    error: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_items SET state = $4, error_code = $5, error_message = $6, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2 AND sku = $3",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(sku)
    .bind(state)
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .execute(pool)
    .await
    .map(|_| ())
}

/// Marks the shop's pending items rejected with this error.
pub async fn reject_pending(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    code: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_items SET state = $5, error_code = $3, error_message = $4, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2 AND state = $6",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(code)
    .bind(message)
    .bind(ItemState::Rejected)
    .bind(ItemState::Pending)
    .execute(pool)
    .await
    .map(|_| ())
}

/// A repriced item's new price and purchase limit.
pub async fn set_price(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    line: &Line,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_items SET promotion_price = $4, purchase_limit = $5, updated_at = now()
         WHERE campaign_id = $1 AND shop_id = $2 AND sku = $3",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(&line.sku)
    .bind(line.promotion_price)
    .bind(line.purchase_limit)
    .execute(pool)
    .await
    .map(|_| ())
}

/// A creation's end: `active` when any shop's discount is live, else `failed` (only while `creating`).
pub async fn settle(pool: &PgPool, campaign_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaigns SET updated_at = now(),
            state = CASE WHEN EXISTS (SELECT 1 FROM campaign_shops WHERE campaign_id = $1 AND state = $2)
                         THEN $3 ELSE $4 END
         WHERE id = $1 AND state = $5",
    )
    .bind(campaign_id)
    .bind(ShopState::Active)
    .bind(CampaignState::Active)
    .bind(CampaignState::Failed)
    .bind(CampaignState::Creating)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The campaign's name and end, when given.
pub async fn rename_or_shorten(
    pool: &PgPool,
    id: i64,
    name: Option<&str>,
    ends_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE campaigns SET name = COALESCE($2, name), ends_at = COALESCE($3, ends_at), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(ends_at)
    .execute(pool)
    .await
    .map(|_| ())
}

pub async fn set_campaign(pool: &PgPool, id: i64, state: CampaignState) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE campaigns SET state = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(state)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Records Shopee's status of a discount; how many shops it changed.
pub async fn set_shopee_status(
    pool: &PgPool,
    shop: ShopId,
    discount_id: i64,
    status: ShopeeStatus,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE campaign_shops SET shopee_status = $3, synced_at = now()
         WHERE shop_id = $1 AND discount_id = $2",
    )
    .bind(shop.as_i64())
    .bind(discount_id)
    .bind(status)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// Records the discount a shop's interrupted creation made.
pub async fn set_discount(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    discount_id: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE campaign_shops SET discount_id = $3 WHERE campaign_id = $1 AND shop_id = $2")
        .bind(campaign_id)
        .bind(shop.as_i64())
        .bind(i64::try_from(discount_id).unwrap_or_default())
        .execute(pool)
        .await
        .map(|_| ())
}

// ---------------------------------------------------------------------------------------------------------------
// Execution reads

pub async fn discount_spec(pool: &PgPool, campaign_id: i64) -> Result<DiscountSpec, sqlx::Error> {
    sqlx::query_as("SELECT name, starts_at, ends_at FROM campaigns WHERE id = $1")
        .bind(campaign_id)
        .fetch_one(pool)
        .await
}

pub async fn shop_progress(pool: &PgPool, campaign_id: i64) -> Result<Vec<ShopProgress>, sqlx::Error> {
    sqlx::query_as(
        "SELECT shop_id, state, discount_id FROM campaign_shops WHERE campaign_id = $1 ORDER BY shop_id",
    )
    .bind(campaign_id)
    .fetch_all(pool)
    .await
}

/// Whether any campaign recorded this discount.
pub async fn discount_known(pool: &PgPool, shop: ShopId, discount_id: u64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM campaign_shops WHERE shop_id = $1 AND discount_id = $2)")
        .bind(shop.as_i64())
        .bind(i64::try_from(discount_id).unwrap_or_default())
        .fetch_one(pool)
        .await
}

/// The shop's items in this state, as Shopee gets them.
pub async fn lines(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    state: ItemState,
) -> Result<Vec<Line>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sku, item_id, model_id, promotion_price, purchase_limit, promotion_stock FROM campaign_items
         WHERE campaign_id = $1 AND shop_id = $2 AND state = $3 ORDER BY item_id, model_id",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(state)
    .fetch_all(pool)
    .await
}

pub async fn count_items(
    pool: &PgPool,
    campaign_id: i64,
    shop: ShopId,
    state: ItemState,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM campaign_items WHERE campaign_id = $1 AND shop_id = $2 AND state = $3",
    )
    .bind(campaign_id)
    .bind(shop.as_i64())
    .bind(state)
    .fetch_one(pool)
    .await
}

/// (campaign, shop, discount) whose `delete_discount` is still owed.
pub async fn compensating(pool: &PgPool) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT campaign_id, shop_id, discount_id FROM campaign_shops
         WHERE state = $1 AND discount_id IS NOT NULL ORDER BY campaign_id, shop_id",
    )
    .bind(ShopState::Compensating)
    .fetch_all(pool)
    .await
}

/// The shops with a live discount.
pub async fn shops_with_active_discounts(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT shop_id FROM campaign_shops WHERE discount_id IS NOT NULL AND state = $1 ORDER BY 1",
    )
    .bind(ShopState::Active)
    .fetch_all(pool)
    .await
}

/// The shop's live discounts.
pub async fn active_discounts(pool: &PgPool, shop: ShopId) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT discount_id FROM campaign_shops WHERE shop_id = $1 AND discount_id IS NOT NULL AND state = $2")
        .bind(shop.as_i64())
        .bind(ShopState::Active)
        .fetch_all(pool)
        .await
}

// ---------------------------------------------------------------------------------------------------------------
// Views

/// The status a campaign shows: an active campaign's place in time, else its state.
fn status_sql() -> String {
    format!(
        "CASE WHEN c.state = '{active}' THEN
            CASE WHEN now() < c.starts_at THEN '{upcoming}' WHEN now() < c.ends_at THEN '{ongoing}' ELSE '{expired}' END
         ELSE c.state END",
        active = CampaignState::Active,
        upcoming = CampaignStatus::Upcoming,
        ongoing = CampaignStatus::Ongoing,
        expired = CampaignStatus::Expired,
    )
}

const CAMPAIGN_COLUMNS: &str =
    "c.id, c.name, c.starts_at, c.ends_at, c.hub_ids, c.state, c.created_at, c.updated_at";

#[derive(sqlx::FromRow)]
struct ShopRow {
    campaign_id: i64,
    #[sqlx(flatten)]
    shop: ShopView,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    campaign_id: i64,
    shop_id: i64,
    sku: String,
    item_id: i64,
    model_id: i64,
    promotion_price: i64,
    purchase_limit: i32,
    promotion_stock: Option<i32>,
    state: ItemState,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl ItemRow {
    fn view(self) -> ItemView {
        ItemView {
            sku: self.sku,
            item_id: self.item_id,
            model_id: self.model_id,
            promotion_price: Money::from_centavos(self.promotion_price).unwrap_or(Money::ZERO),
            purchase_limit: self.purchase_limit,
            promotion_stock: self.promotion_stock,
            state: self.state,
            error: self.error_code.map(|code| ItemError {
                code,
                message: self.error_message.unwrap_or_default(),
            }),
        }
    }
}

/// Fills in the campaigns' shops (and their items when `with_items`).
async fn with_shops(
    pool: &PgPool,
    mut campaigns: Vec<CampaignView>,
    with_items: bool,
) -> Result<Vec<CampaignView>, sqlx::Error> {
    let ids: Vec<i64> = campaigns.iter().map(|c| c.id).collect();
    let shops: Vec<ShopRow> = sqlx::query_as(
        "SELECT campaign_id, shop_id, discount_id, state, shopee_status, synced_at, error FROM campaign_shops
             WHERE campaign_id = ANY($1) ORDER BY campaign_id, shop_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut items: HashMap<(i64, i64), Vec<ItemView>> = HashMap::new();
    if with_items {
        let rows: Vec<ItemRow> = sqlx::query_as(
            "SELECT campaign_id, shop_id, sku, item_id, model_id, promotion_price, purchase_limit, promotion_stock,
                    state, error_code, error_message
             FROM campaign_items WHERE campaign_id = ANY($1) ORDER BY campaign_id, shop_id, sku",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?;
        for r in rows {
            items
                .entry((r.campaign_id, r.shop_id))
                .or_default()
                .push(r.view());
        }
    }
    let mut by_campaign: HashMap<i64, Vec<ShopView>> = HashMap::new();
    for ShopRow {
        campaign_id,
        mut shop,
    } in shops
    {
        if with_items {
            shop.items = Some(items.remove(&(campaign_id, shop.shop_id)).unwrap_or_default());
        }
        by_campaign.entry(campaign_id).or_default().push(shop);
    }
    for c in &mut campaigns {
        c.shops = by_campaign.remove(&c.id).unwrap_or_default();
    }
    Ok(campaigns)
}

/// A campaign with its shops and items.
pub async fn load_view(pool: &PgPool, id: i64) -> Result<Option<CampaignView>, sqlx::Error> {
    let sql = format!(
        "SELECT {CAMPAIGN_COLUMNS}, {} AS status FROM campaigns c WHERE c.id = $1",
        status_sql()
    );
    let row: Option<CampaignView> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_shops(pool, vec![row], true).await?.pop())
}

/// Up to `limit` campaigns older than `before` (0: the newest), with this status if given; shops without items.
pub async fn list_views(
    pool: &PgPool,
    before: i64,
    status: Option<CampaignStatus>,
    limit: i64,
) -> Result<Vec<CampaignView>, sqlx::Error> {
    let sql = format!(
        "SELECT * FROM (
            SELECT {CAMPAIGN_COLUMNS}, {} AS status FROM campaigns c WHERE ($1 = 0 OR c.id < $1)) v
         WHERE ($2::text IS NULL OR v.status = $2) ORDER BY v.id DESC LIMIT $3",
        status_sql()
    );
    let rows: Vec<CampaignView> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    with_shops(pool, rows, false).await
}
