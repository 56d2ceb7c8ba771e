//! What the API answers about a campaign: the JSON views, and how a finished creation is answered.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::Money;
use serde::Serialize;
use serde_json::{Value, json};
use shopee_client::api::discount::GetDiscountResponse;
use utoipa::ToSchema;

use super::state::{CampaignState, CampaignStatus, ItemState, NOT_ADDED, ShopState, ShopeeStatus};
use crate::error::ApiError;
use crate::openapi::MoneyText;

/// Why Shopee refused an item (or why it was never sent: `not_added`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemError {
    pub code: String,
    pub message: String,
}

/// One SKU of a campaign in one shop.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CampaignItem)]
pub struct ItemView {
    pub sku: String,
    pub item_id: i64,
    /// 0 when the item has no models.
    pub model_id: i64,
    #[schema(value_type = MoneyText)]
    pub promotion_price: Money,
    /// 0 = no limit.
    pub purchase_limit: i32,
    pub promotion_stock: Option<i32>,
    pub state: ItemState,
    pub error: Option<ItemError>,
}

/// Shopee's answer to `get_discount`, as the detail shows it per shop.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LiveDiscount {
    /// Shopee answered.
    Seen {
        status: ShopeeStatus,
        discount_name: String,
        start_time: i64,
        end_time: i64,
        items_on_page: usize,
        more_items: bool,
    },
    /// The call failed.
    Failed { error: String },
    /// The shop has no discount to ask about (`null`).
    NoDiscount,
}

impl LiveDiscount {
    pub fn seen(d: &GetDiscountResponse) -> Self {
        Self::Seen {
            status: ShopeeStatus::of(d.status),
            discount_name: d.discount_name.clone(),
            start_time: d.start_time,
            end_time: d.end_time,
            items_on_page: d.item_list.len(),
            more_items: d.more,
        }
    }
}

/// One shop's discount of a campaign.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = CampaignShop)]
pub struct ShopView {
    pub shop_id: i64,
    pub discount_id: Option<i64>,
    pub state: ShopState,
    /// Shopee's status as last seen.
    pub shopee_status: Option<ShopeeStatus>,
    pub synced_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Not in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(skip)]
    pub items: Option<Vec<ItemView>>,
    /// Detail only: Shopee's `get_discount` answer now, or `{error}`; `null` without a discount.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(skip)]
    #[schema(value_type = LiveDiscount, required = false)]
    pub shopee: Option<LiveDiscount>,
}

/// A campaign in SKU terms and its discount per shop.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = Campaign)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The hubs asked for; `null` = every shop where the SKUs are mapped.
    pub hub_ids: Option<Vec<String>>,
    /// upcoming | ongoing | expired (for active campaigns), else the state.
    pub status: CampaignStatus,
    pub state: CampaignState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub shops: Vec<ShopView>,
}

impl CampaignView {
    /// Every item of every shop.
    pub fn items(&self) -> impl Iterator<Item = &ItemView> {
        self.shops.iter().flat_map(|s| s.items.iter().flatten())
    }

    /// The item of this SKU in this shop that is on the shop's discount.
    pub fn added_item(&self, shop_id: i64, sku: &str) -> Option<&ItemView> {
        self.shops
            .iter()
            .filter(|s| s.shop_id == shop_id)
            .flat_map(|s| s.items.iter().flatten())
            .find(|i| i.sku == sku && i.state == ItemState::Added)
    }
}

/// The answer to a creation that ran: 201 with the campaign when a discount exists, else an error whose `details`
/// is the campaign (422 when Shopee refused every item, 502 when Shopee failed).
pub fn creation_answer(view: &CampaignView) -> Result<(StatusCode, Value), ApiError> {
    let body = serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))?;
    if view.state == CampaignState::Active {
        return Ok((StatusCode::CREATED, body));
    }
    let rejected = view
        .items()
        .filter(|i| i.state == ItemState::Rejected && i.error.as_ref().is_some_and(|e| e.code != NOT_ADDED))
        .count();
    let (status, code, message) = if rejected > 0 {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            format!(
                "Shopee accepted none of the items ({rejected} refused, see each item's error, e.g. an item already \
                 in another promotion); nothing was left on Shopee"
            ),
        )
    } else {
        let shop_errors: Vec<String> = view
            .shops
            .iter()
            .filter_map(|s| s.error.as_ref().map(|e| format!("shop {}: {e}", s.shop_id)))
            .collect();
        (
            StatusCode::BAD_GATEWAY,
            "shopee_error",
            format!(
                "the campaign could not be created on Shopee; nothing was left on Shopee. {}",
                shop_errors.join("; ")
            ),
        )
    };
    Ok((
        status,
        json!({"error": {"code": code, "message": message, "details": body}}),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn campaign(state: CampaignState, items: Vec<ItemView>) -> CampaignView {
        let now = Utc::now();
        CampaignView {
            id: 1,
            name: "c".into(),
            starts_at: now,
            ends_at: now,
            hub_ids: None,
            status: CampaignStatus::Failed,
            state,
            created_at: now,
            updated_at: now,
            shops: vec![ShopView {
                shop_id: 7,
                discount_id: None,
                state: ShopState::Failed,
                shopee_status: None,
                synced_at: None,
                error: Some("add_discount refused".into()),
                items: Some(items),
                shopee: None,
            }],
        }
    }

    fn rejected(code: &str) -> ItemView {
        ItemView {
            sku: "A".into(),
            item_id: 1,
            model_id: 0,
            promotion_price: Money::from_centavos(990).unwrap(),
            purchase_limit: 0,
            promotion_stock: None,
            state: ItemState::Rejected,
            error: Some(ItemError {
                code: code.into(),
                message: "m".into(),
            }),
        }
    }

    #[test]
    fn a_creation_is_answered_by_what_shopee_did() {
        let (status, body) = creation_answer(&campaign(CampaignState::Active, vec![])).unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["state"], "active");
        let refused = campaign(CampaignState::Failed, vec![rejected("item_in_other_promotion")]);
        let (status, body) = creation_answer(&refused).unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["shops"][0]["shop_id"], 7);
        let (status, body) =
            creation_answer(&campaign(CampaignState::Failed, vec![rejected(NOT_ADDED)])).unwrap();
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("shop 7: add_discount refused")
        );
    }

    #[test]
    fn the_detail_shows_null_for_a_shop_without_discount() {
        let mut c = campaign(CampaignState::Failed, vec![]);
        c.shops[0].shopee = Some(LiveDiscount::NoDiscount);
        let body = serde_json::to_value(&c).unwrap();
        assert!(body["shops"][0]["shopee"].is_null());
        assert!(body["shops"][0].as_object().unwrap().contains_key("shopee"));
        c.shops[0].shopee = None;
        c.shops[0].items = None;
        let body = serde_json::to_value(&c).unwrap();
        assert!(!body["shops"][0].as_object().unwrap().contains_key("shopee"));
        assert!(!body["shops"][0].as_object().unwrap().contains_key("items"));
    }
}
