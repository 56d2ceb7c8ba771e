//! What to do on Shopee per shop, decided without doing it: which SKUs go to which (item, model), how items are
//! batched and shaped for `add_discount_item` / `update_discount_item`, and what Shopee's answer means for each
//! item. Pure functions; the calls are made in [`super::execute`] and [`super::change`].

use std::collections::{BTreeMap, HashMap};

use domain::mapping::ProductMapping;
use domain::{ItemId, ModelId, Money, ShopId, Sku};
use shopee_client::api::discount::{DISCOUNT_ITEM_BATCH, DiscountItem, DiscountItemError, DiscountModel};
use shopee_client::api::product::price_number;

use super::state::{ItemState, ShopState};
use super::validate::ParsedItem;
use super::view::CampaignView;

/// A SKU resolved to its (item, model) in one shop, with its promotion.
#[derive(Debug, Clone)]
pub struct PlannedItem {
    pub sku: Sku,
    pub item_id: ItemId,
    pub model_id: ModelId,
    pub price: Money,
    pub purchase_limit: u32,
    pub promotion_stock: Option<u32>,
}

/// The items one shop's discount gets.
#[derive(Debug)]
pub struct ShopPlan {
    pub shop_id: ShopId,
    pub items: Vec<PlannedItem>,
}

/// A shop's discount that is live, and its items to add.
#[derive(Debug)]
pub struct Addition {
    pub shop_id: ShopId,
    pub discount_id: u64,
    pub items: Vec<PlannedItem>,
}

/// The SKUs mapped in a shop (`found`: its mappings), resolved; and the ones that are not mapped there.
pub fn resolve_in_shop<'a>(
    items: &'a [ParsedItem],
    found: &HashMap<Sku, ProductMapping>,
) -> (Vec<PlannedItem>, Vec<&'a ParsedItem>) {
    let mut planned = Vec::new();
    let mut unmapped = Vec::new();
    for it in items {
        match found.get(&it.sku) {
            Some(m) => planned.push(PlannedItem {
                sku: it.sku.clone(),
                item_id: m.item_id,
                model_id: m.model_id,
                price: it.price,
                purchase_limit: it.purchase_limit,
                promotion_stock: it.promotion_stock,
            }),
            None => unmapped.push(it),
        }
    }
    (planned, unmapped)
}

/// A promotion price must be below the current price, when we know it (`current`: (item, model) -> centavos, the
/// newest price the catalog sync saw).
pub fn price_problems(
    shop: ShopId,
    items: &[PlannedItem],
    current: &HashMap<(i64, i64), i64>,
) -> Vec<String> {
    items
        .iter()
        .filter_map(|it| {
            let now = *current.get(&(it.item_id.as_i64(), it.model_id.as_i64()))?;
            (it.price.centavos() >= now).then(|| {
                let now = Money::from_centavos(now).unwrap_or(Money::ZERO);
                format!(
                    "SKU {}: promotion price {} is not below the current price {now} in shop {shop}",
                    it.sku, it.price
                )
            })
        })
        .collect()
}

/// The shops whose discount is live, with its id.
pub fn active_shops(view: &CampaignView) -> Vec<(ShopId, u64)> {
    view.shops
        .iter()
        .filter(|s| s.state == ShopState::Active)
        .filter_map(|s| {
            Some((
                ShopId::from_i64(s.shop_id).ok()?,
                u64::try_from(s.discount_id?).ok()?,
            ))
        })
        .collect()
}

/// A stored item as Shopee gets it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub sku: String,
    pub item_id: i64,
    pub model_id: i64,
    /// Centavos.
    pub promotion_price: i64,
    pub purchase_limit: i32,
    pub promotion_stock: Option<i32>,
}

/// The SKUs to reprice in one shop: those on its discount, at their new price and limit.
pub fn reprice_lines(reprice: &[ParsedItem], view: &CampaignView, shop: ShopId) -> Vec<Line> {
    reprice
        .iter()
        .filter_map(|u| {
            let item = view.added_item(shop.as_i64(), u.sku.as_str())?;
            Some(Line {
                sku: item.sku.clone(),
                item_id: item.item_id,
                model_id: item.model_id,
                promotion_price: u.price.centavos(),
                purchase_limit: i32::try_from(u.purchase_limit).unwrap_or(i32::MAX),
                promotion_stock: item.promotion_stock,
            })
        })
        .collect()
}

/// Shopee's `item_list` for lines of a discount: an item without models carries its price; the models of an item
/// carry theirs.
pub fn discount_items(rows: &[Line]) -> Vec<DiscountItem> {
    let price = |r: &Line| price_number(Money::from_centavos(r.promotion_price).unwrap_or(Money::ZERO));
    let stock = |r: &Line| r.promotion_stock.and_then(|s| u32::try_from(s).ok());
    by_item(rows.iter())
        .into_iter()
        .filter_map(|(item_id, rows)| {
            let item_id = ItemId::from_i64(item_id).ok()?;
            let purchase_limit = rows.iter().map(|r| r.purchase_limit).max().unwrap_or(0);
            let purchase_limit = u32::try_from(purchase_limit).unwrap_or(0);
            if let [only] = rows.as_slice()
                && only.model_id == 0
            {
                return Some(DiscountItem {
                    item_id,
                    purchase_limit,
                    item_promotion_price: Some(price(only)),
                    item_promotion_stock: stock(only),
                    model_list: Vec::new(),
                });
            }
            let model_list = rows
                .iter()
                .filter_map(|r| {
                    Some(DiscountModel {
                        model_id: ModelId::from_i64(r.model_id).ok()?,
                        model_promotion_price: price(r),
                        model_promotion_stock: stock(r),
                    })
                })
                .collect();
            Some(DiscountItem {
                item_id,
                purchase_limit,
                item_promotion_price: None,
                item_promotion_stock: None,
                model_list,
            })
        })
        .collect()
}

fn by_item<T: std::borrow::Borrow<Line>>(rows: impl IntoIterator<Item = T>) -> BTreeMap<i64, Vec<T>> {
    let mut out: BTreeMap<i64, Vec<T>> = BTreeMap::new();
    for r in rows {
        out.entry(r.borrow().item_id).or_default().push(r);
    }
    out
}

/// Batches of at most 50 Shopee items (a SKU is a model; the models of one item stay together).
pub fn batches(rows: Vec<Line>) -> Vec<Vec<Line>> {
    let mut out: Vec<Vec<Line>> = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    let mut items_in_current = 0;
    for (_, rows) in by_item(rows) {
        if items_in_current == DISCOUNT_ITEM_BATCH {
            out.push(std::mem::take(&mut current));
            items_in_current = 0;
        }
        current.extend(rows);
        items_in_current += 1;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// One item Shopee refused in an `add_discount_item` answer.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub item_id: i64,
    pub model_id: Option<i64>,
    pub code: String,
    pub message: String,
}

impl From<DiscountItemError> for Refusal {
    fn from(e: DiscountItemError) -> Self {
        Self {
            item_id: e.item_id.as_i64(),
            model_id: e.model_id.map(ModelId::as_i64),
            code: e.fail_error.unwrap_or_else(|| "refused".into()),
            message: e.fail_message,
        }
    }
}

/// What an item becomes after Shopee answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub state: ItemState,
    /// (code, message) of a refusal.
    pub error: Option<(&'a str, &'a str)>,
}

impl<'a> Outcome<'a> {
    const ADDED: Self = Self {
        state: ItemState::Added,
        error: None,
    };

    fn rejected(r: &'a Refusal) -> Self {
        Self {
            state: ItemState::Rejected,
            error: Some((&r.code, &r.message)),
        }
    }
}

/// A line sent while creating a discount: refused when Shopee names its model (or the whole item); "already in
/// the discount" means an earlier attempt added it.
pub fn outcome_when_creating<'a>(refusals: &'a [Refusal], line: &Line) -> Outcome<'a> {
    let refusal = refusals
        .iter()
        .find(|r| r.item_id == line.item_id && r.model_id.is_none_or(|m| m == line.model_id || m == 0));
    match refusal {
        Some(r) if r.code.ends_with("item_already_in_discount") => Outcome::ADDED,
        Some(r) => Outcome::rejected(r),
        None => Outcome::ADDED,
    }
}

/// A line added to a live discount by PATCH: refused when Shopee names its item.
pub fn outcome_when_adding<'a>(refusals: &'a [Refusal], line: &Line) -> Outcome<'a> {
    match refusals.iter().find(|r| r.item_id == line.item_id) {
        Some(r) => Outcome::rejected(r),
        None => Outcome::ADDED,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashSet;

    use super::*;

    fn row(sku: &str, item: i64, model: i64) -> Line {
        Line {
            sku: sku.into(),
            item_id: item,
            model_id: model,
            promotion_price: 990,
            purchase_limit: 0,
            promotion_stock: None,
        }
    }

    fn parsed(sku: &str, centavos: i64) -> ParsedItem {
        ParsedItem {
            sku: Sku::parse(sku).unwrap(),
            price: Money::from_centavos(centavos).unwrap(),
            purchase_limit: 2,
            promotion_stock: None,
        }
    }

    #[test]
    fn batches_hold_at_most_50_items_and_keep_models_together() {
        let mut rows: Vec<Line> = (1..=120).map(|i| row(&format!("S{i}"), i, 0)).collect();
        rows.push(row("M1", 7, 11));
        let b = batches(rows);
        assert_eq!(b.len(), 3);
        for batch in &b {
            let items: HashSet<i64> = batch.iter().map(|r| r.item_id).collect();
            assert!(items.len() <= 50);
        }
        assert!(
            b.iter()
                .any(|batch| batch.iter().filter(|r| r.item_id == 7).count() == 2)
        );
    }

    #[test]
    fn items_without_models_use_the_item_price() {
        let items = discount_items(&[row("A", 1, 0), row("B", 2, 5), row("C", 2, 6)]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].item_promotion_price.as_ref().unwrap().to_string(), "9.9");
        assert_eq!(items[1].model_list.len(), 2);
    }

    #[test]
    fn skus_resolve_to_the_shops_mapping_or_are_reported_unmapped() {
        let shop = ShopId::new(9).unwrap();
        let found: HashMap<Sku, ProductMapping> = [(
            Sku::parse("A").unwrap(),
            ProductMapping {
                sku: Sku::parse("A").unwrap(),
                shop_id: shop,
                item_id: ItemId::new(11).unwrap(),
                model_id: ModelId::NONE,
                outlet_item_id: None,
            },
        )]
        .into();
        let items = [parsed("A", 990), parsed("B", 990)];
        let (planned, unmapped) = resolve_in_shop(&items, &found);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].item_id.as_i64(), 11);
        assert_eq!(unmapped[0].sku.as_str(), "B");
        let current = [((11, 0), 990)].into();
        let problems = price_problems(shop, &planned, &current);
        assert_eq!(
            problems,
            ["SKU A: promotion price 9.90 is not below the current price 9.90 in shop 9"]
        );
        assert!(price_problems(shop, &planned, &[((11, 0), 991)].into()).is_empty());
    }

    #[test]
    fn shopee_refusals_decide_each_items_outcome() {
        let refusal = |item, model: Option<i64>, code: &str| Refusal {
            item_id: item,
            model_id: model,
            code: code.into(),
            message: "no".into(),
        };
        let refusals = [
            refusal(1, None, "discount.item_already_in_discount"),
            refusal(2, Some(5), "item_in_other_promotion"),
        ];
        assert_eq!(
            outcome_when_creating(&refusals, &row("A", 1, 0)).state,
            ItemState::Added
        );
        assert_eq!(
            outcome_when_creating(&refusals, &row("B", 2, 5)).error,
            Some(("item_in_other_promotion", "no"))
        );
        assert_eq!(
            outcome_when_creating(&refusals, &row("C", 2, 6)).state,
            ItemState::Added
        );
        assert_eq!(
            outcome_when_creating(&refusals, &row("D", 3, 0)).state,
            ItemState::Added
        );
        assert_eq!(
            outcome_when_adding(&refusals, &row("A", 1, 0)).state,
            ItemState::Rejected
        );
        assert_eq!(
            outcome_when_adding(&refusals, &row("C", 2, 6)).state,
            ItemState::Rejected
        );
    }
}
