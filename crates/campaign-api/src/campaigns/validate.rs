//! The requests as sent, and their validation into typed commands (Shopee's rules and ours). Nothing here reads
//! the database or calls Shopee; the problems found are answered together as one 422.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use domain::{Money, Sku};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::state::{CampaignState, CampaignStatus, ItemState};
use super::view::CampaignView;
use crate::error::ApiError;
use crate::openapi::MoneyText;

/// Shopee: at most this many items per discount.
pub const MAX_ITEMS: usize = 1000;
/// Shopee: a discount starts more than 1 hour ahead; we ask for one more minute so the call reaches Shopee in time.
pub const MIN_LEAD: Duration = Duration::minutes(61);
/// Shopee: a discount lasts less than 180 days and at least 1 hour.
pub const MAX_PERIOD: Duration = Duration::days(180);
pub const MIN_PERIOD: Duration = Duration::hours(1);

// ---------------------------------------------------------------------------------------------------------------
// Requests

/// `POST /v1/campaigns` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    /// 1 to 128 characters.
    #[schema(max_length = 128)]
    pub name: String,
    /// More than 1 hour ahead.
    pub starts_at: DateTime<Utc>,
    /// Less than 180 days after `starts_at`, and at least 1 hour after it.
    pub ends_at: DateTime<Utc>,
    /// Absent = every shop where the SKUs are mapped.
    #[serde(default)]
    pub hub_ids: Option<Vec<String>>,
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<ItemInput>,
}

/// A SKU and its promotion.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CampaignItemInput)]
pub struct ItemInput {
    pub sku: String,
    /// A decimal string in BRL ("9.90"); a JSON number is accepted too.
    #[schema(value_type = MoneyText)]
    pub promotion_price: Value,
    /// 0 = no limit.
    #[serde(default)]
    pub purchase_limit: Option<u32>,
    #[serde(default)]
    pub promotion_stock: Option<u32>,
}

/// `PATCH /v1/campaigns/{id}` body: each field absent = unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaign {
    #[serde(default)]
    pub name: Option<String>,
    /// Only earlier than the current end (Shopee's rule).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub add_items: Vec<ItemInput>,
    #[serde(default)]
    pub remove_skus: Vec<String>,
    /// New promotion price (and purchase limit) of SKUs already in the campaign.
    #[serde(default)]
    pub update_items: Vec<ItemInput>,
}

/// `GET /v1/campaigns` filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only campaigns with this status.
    #[param(value_type = Option<CampaignStatus>)]
    pub status: Option<String>,
}

impl ListQuery {
    pub fn status(&self) -> Result<Option<CampaignStatus>, ApiError> {
        self.status
            .as_deref()
            .map(|s| {
                s.parse().map_err(|_| {
                    let all: Vec<&str> = CampaignStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::BadRequest(format!("status must be one of {}", all.join(", ")))
                })
            })
            .transpose()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Commands

/// A SKU with a valid promotion.
#[derive(Debug, Clone)]
pub struct ParsedItem {
    pub sku: Sku,
    pub price: Money,
    pub purchase_limit: u32,
    pub promotion_stock: Option<u32>,
}

/// A campaign to create: every rule that needs no lookup holds.
#[derive(Debug)]
pub struct NewCampaign {
    /// Trimmed.
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// As sent: each is checked when the hubs are resolved.
    pub hub_ids: Option<Vec<String>>,
    pub items: Vec<ParsedItem>,
}

/// A change to an active campaign: every rule that needs no lookup holds.
#[derive(Debug, Default)]
pub struct Change {
    /// Trimmed.
    pub name: Option<String>,
    pub ends_at: Option<DateTime<Utc>>,
    pub remove_skus: Vec<String>,
    pub reprice: Vec<ParsedItem>,
    pub add: Vec<ParsedItem>,
}

impl Change {
    /// Whether the discount itself (not its items) changes.
    pub fn touches_discount(&self) -> bool {
        self.name.is_some() || self.ends_at.is_some()
    }
}

/// The 422 for a list of problems: one sentence, and each problem in `details`.
pub fn unprocessable(problems: Vec<String>) -> ApiError {
    let message = if problems.len() == 1 {
        problems[0].clone()
    } else {
        format!("{} problems: {}", problems.len(), problems.join("; "))
    };
    ApiError::Unprocessable {
        message,
        details: Some(json!(problems)),
    }
}

pub(super) fn verdict<T>(value: T, problems: Vec<String>) -> Result<T, ApiError> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(unprocessable(problems))
    }
}

/// A create request, checked against the rules that need no lookup.
pub fn new_campaign(raw: Value, now: DateTime<Utc>) -> Result<NewCampaign, ApiError> {
    let req: CreateCampaign = serde_json::from_value(raw).map_err(|e| {
        ApiError::unprocessable(format!("the request does not match the campaign shape: {e}"))
    })?;
    let mut problems = Vec::new();
    check_name(&req.name, &mut problems);
    check_period(req.starts_at, req.ends_at, now, &mut problems);
    if req.items.is_empty() {
        problems.push("items must list at least one SKU".into());
    }
    if req.items.len() > MAX_ITEMS {
        problems.push(format!(
            "at most {MAX_ITEMS} items per campaign (Shopee's limit per discount)"
        ));
    }
    let items = parse_items(&req.items, &mut problems);
    let campaign = NewCampaign {
        name: req.name.trim().to_owned(),
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        hub_ids: req.hub_ids,
        items,
    };
    verdict(campaign, problems)
}

/// Only an active campaign that has not ended can be changed.
pub fn changeable(view: &CampaignView) -> Result<(), ApiError> {
    let id = view.id;
    if view.state != CampaignState::Active {
        return Err(ApiError::Conflict(format!(
            "campaign {id} is {}; only an active campaign can be changed",
            view.status
        )));
    }
    Ok(())
}

/// Ending or deleting a campaign: what becomes of each live discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `end_discount`: an ongoing campaign.
    End,
    /// `delete_discount`: an upcoming (or failed) campaign.
    Delete,
}

/// Whether the campaign's status allows ending (only an active, ongoing campaign) or deleting (upcoming or failed).
pub fn finishable(view: &CampaignView, how: Finish) -> Result<(), ApiError> {
    let id = view.id;
    let refusal = match (how, view.status) {
        (Finish::End, _) if view.state != CampaignState::Active => return changeable(view),
        (Finish::End, CampaignStatus::Ongoing)
        | (Finish::Delete, CampaignStatus::Upcoming | CampaignStatus::Failed) => {
            return Ok(());
        }
        (Finish::End, CampaignStatus::Upcoming) => {
            format!("campaign {id} has not started yet: delete it with DELETE /v1/campaigns/{id}")
        }
        (Finish::End, _) => format!("campaign {id} has already ended"),
        (Finish::Delete, CampaignStatus::Ongoing) => {
            format!("campaign {id} is ongoing: end it with POST /v1/campaigns/{id}/end")
        }
        (Finish::Delete, other) => format!("campaign {id} is {other} and cannot be deleted"),
    };
    Err(ApiError::Conflict(refusal))
}

/// A PATCH request against the campaign as it is.
pub fn change(req: &UpdateCampaign, view: &CampaignView, now: DateTime<Utc>) -> Result<Change, ApiError> {
    let id = view.id;
    if view.status == CampaignStatus::Expired {
        return Err(ApiError::Conflict(format!("campaign {id} has already ended")));
    }
    let mut problems = Vec::new();
    if let Some(name) = &req.name {
        check_name(name, &mut problems);
    }
    if let Some(ends_at) = req.ends_at {
        check_new_end(ends_at, view, now, &mut problems);
    }
    let in_campaign: HashSet<&str> = view
        .items()
        .filter(|i| i.state == ItemState::Added)
        .map(|i| i.sku.as_str())
        .collect();
    for sku in &req.remove_skus {
        if !in_campaign.contains(sku.as_str()) {
            problems.push(format!("SKU {} is not in campaign {id}", truncate(sku)));
        }
    }
    let reprice = parse_items(&req.update_items, &mut problems);
    for u in &reprice {
        if !in_campaign.contains(u.sku.as_str()) {
            problems.push(format!(
                "SKU {} is not in campaign {id}: add it with add_items",
                u.sku
            ));
        }
    }
    let add = parse_items(&req.add_items, &mut problems);
    for a in &add {
        if in_campaign.contains(a.sku.as_str()) {
            problems.push(format!(
                "SKU {} is already in campaign {id}: reprice it with update_items",
                a.sku
            ));
        }
    }
    let change = Change {
        name: req.name.as_deref().map(|n| n.trim().to_owned()),
        ends_at: req.ends_at,
        remove_skus: req.remove_skus.clone(),
        reprice,
        add,
    };
    verdict(change, problems)
}

fn check_new_end(
    ends_at: DateTime<Utc>,
    view: &CampaignView,
    now: DateTime<Utc>,
    problems: &mut Vec<String>,
) {
    if ends_at >= view.ends_at {
        problems.push("ends_at can only move earlier (Shopee's rule)".into());
    }
    if ends_at <= now {
        problems.push("ends_at must be in the future; to stop now use POST /v1/campaigns/{id}/end".into());
    }
    if ends_at - view.starts_at < MIN_PERIOD {
        problems.push("a campaign must last at least 1 hour (Shopee's rule)".into());
    }
}

fn parse_price(v: &Value) -> Result<Money, String> {
    let money = match v {
        Value::String(s) => Money::parse_decimal(s).map_err(|e| e.to_string())?,
        Value::Number(n) => Money::parse_decimal(&n.to_string()).map_err(|e| e.to_string())?,
        _ => return Err("must be a decimal string such as \"9.90\"".into()),
    };
    if money == Money::ZERO {
        return Err("must be more than 0.00".into());
    }
    Ok(money)
}

fn parse_items(items: &[ItemInput], problems: &mut Vec<String>) -> Vec<ParsedItem> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Ok(sku) = Sku::parse(&it.sku) else {
            problems.push(format!("SKU `{}` is not a valid SKU", truncate(&it.sku)));
            continue;
        };
        if !seen.insert(sku.clone()) {
            problems.push(format!("SKU {sku} is listed more than once"));
            continue;
        }
        match parse_price(&it.promotion_price) {
            Ok(price) => out.push(ParsedItem {
                sku,
                price,
                purchase_limit: it.purchase_limit.unwrap_or(0),
                promotion_stock: it.promotion_stock,
            }),
            Err(why) => problems.push(format!("SKU {sku}: promotion_price {why}")),
        }
    }
    out
}

/// At most 64 characters of something the caller sent, for a message.
pub fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn check_name(name: &str, problems: &mut Vec<String>) {
    let n = name.trim().chars().count();
    if n == 0 || n > 128 {
        problems.push("name must be 1 to 128 characters".into());
    }
}

fn check_period(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    problems: &mut Vec<String>,
) {
    if starts_at < now + MIN_LEAD {
        problems.push(format!(
            "starts_at must be more than 1 hour from now (Shopee's rule; we allow one more minute for the call): \
             the earliest accepted start now is {}",
            (now + MIN_LEAD).to_rfc3339()
        ));
    }
    if ends_at <= starts_at {
        problems.push("ends_at must be after starts_at".into());
    } else if ends_at - starts_at < MIN_PERIOD {
        problems.push("a campaign must last at least 1 hour (Shopee's rule)".into());
    } else if ends_at - starts_at >= MAX_PERIOD {
        problems.push("a campaign must last less than 180 days (Shopee's rule)".into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn period_rules_are_checked() {
        let now = Utc::now();
        let mut p = Vec::new();
        check_period(now + Duration::minutes(30), now + Duration::days(1), now, &mut p);
        assert!(p[0].contains("more than 1 hour"), "{p:?}");
        let mut p = Vec::new();
        check_period(now + Duration::hours(2), now + Duration::days(200), now, &mut p);
        assert!(p[0].contains("180 days"), "{p:?}");
        let mut p = Vec::new();
        check_period(now + Duration::hours(2), now + Duration::days(3), now, &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn prices_parse_from_text_or_number() {
        assert_eq!(parse_price(&json!("9.90")).unwrap().centavos(), 990);
        assert_eq!(parse_price(&json!(9.9)).unwrap().centavos(), 990);
        assert!(parse_price(&json!("0")).is_err());
        assert!(parse_price(&json!("9.999")).is_err());
    }

    #[test]
    fn a_create_request_becomes_a_trimmed_command_or_every_problem() {
        let now = Utc::now();
        let ok = json!({"name": " Black Friday ", "starts_at": now + Duration::hours(2),
                        "ends_at": now + Duration::days(2), "items": [{"sku": "A-1", "promotion_price": "9.90"}]});
        let c = new_campaign(ok, now).unwrap();
        assert_eq!(c.name, "Black Friday");
        assert_eq!(c.items[0].price.centavos(), 990);
        let bad = json!({"name": "", "starts_at": now, "ends_at": now, "items": [
            {"sku": "A-1", "promotion_price": "1"}, {"sku": "A-1", "promotion_price": "1"}]});
        let ApiError::Unprocessable { details, .. } = new_campaign(bad, now).unwrap_err() else {
            panic!("not a 422");
        };
        assert_eq!(details.unwrap().as_array().map(Vec::len), Some(4));
    }
}
