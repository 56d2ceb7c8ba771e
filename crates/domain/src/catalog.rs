//! Price and inventory updates from the internal catalog, and the newest-wins rule.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{HubId, Money, ParseError, Sku};

/// Orders updates for one (sku, hub) within one kind (price and stock versions are independent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

/// A `PriceUpdateEvent`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceUpdate {
    pub event_id: String,
    pub sku: Sku,
    pub hub_id: HubId,
    pub price: Money,
    pub occurred_at: DateTime<Utc>,
    pub version: Version,
}

/// An `InventoryUpdateEvent`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryUpdate {
    pub event_id: String,
    pub sku: Sku,
    pub hub_id: HubId,
    pub quantity: u32,
    pub occurred_at: DateTime<Utc>,
    pub version: Version,
}

impl PriceUpdate {
    /// Parses and validates the JSON of a `PriceUpdateEvent`; the error says what is wrong (for the dead letter).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let event: Self = parse_event("PriceUpdateEvent", bytes)?;
        check_event_id("PriceUpdateEvent", &event.event_id)?;
        if event.price == Money::ZERO {
            return Err(ParseError::new(
                "PriceUpdateEvent",
                "price must be greater than 0.00",
            ));
        }
        Ok(event)
    }
}

impl InventoryUpdate {
    /// Parses and validates the JSON of an `InventoryUpdateEvent`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let event: Self = parse_event("InventoryUpdateEvent", bytes)?;
        check_event_id("InventoryUpdateEvent", &event.event_id)?;
        Ok(event)
    }
}

fn parse_event<T: serde::de::DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, ParseError> {
    serde_json::from_slice(bytes).map_err(|e| ParseError::new(what, e.to_string()))
}

fn check_event_id(what: &'static str, id: &str) -> Result<(), ParseError> {
    // Characters, as the schema's maxLength counts (not bytes).
    if id.is_empty() || id.chars().count() > 128 {
        return Err(ParseError::new(what, "event_id must be 1-128 characters"));
    }
    Ok(())
}

/// What to do with an incoming versioned value, given the newest version already known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// Newer than anything seen: it becomes the pending value.
    Take,
    /// Same version as the newest seen: a redelivery, nothing to do.
    Duplicate,
    /// Older than the newest seen: never applied.
    Stale,
}

/// The newest-wins rule: only a strictly newer version replaces what is known.
pub fn coalesce(newest_known: Option<Version>, incoming: Version) -> Coalesce {
    match newest_known {
        None => Coalesce::Take,
        Some(known) if incoming > known => Coalesce::Take,
        Some(known) if incoming == known => Coalesce::Duplicate,
        Some(_) => Coalesce::Stale,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let json = br#"{"event_id": "9f0c", "sku": "789100000001", "hub_id": "SAO-01", "price": "12.90",
            "occurred_at": "2026-11-25T12:00:00Z", "version": 1764072000000}"#;
        let e = PriceUpdate::from_json(json).unwrap();
        assert_eq!(e.price.centavos(), 1290);
        assert_eq!(e.version, Version(1764072000000));
        let inv = br#"{"event_id": "1b2d", "sku": "789100000001", "hub_id": "SAO-01", "quantity": 37,
            "occurred_at": "2026-11-25T12:00:00Z", "version": 1764072000123}"#;
        assert_eq!(InventoryUpdate::from_json(inv).unwrap().quantity, 37);
    }

    #[test]
    fn rejections_say_why() {
        let negative = br#"{"event_id": "x", "sku": "1", "hub_id": "SAO-01", "quantity": -1,
            "occurred_at": "2026-11-25T12:00:00Z", "version": 1}"#;
        let err = InventoryUpdate::from_json(negative).unwrap_err().to_string();
        assert!(err.contains("InventoryUpdateEvent"), "{err}");
        let float_price = br#"{"event_id": "x", "sku": "1", "hub_id": "SAO-01", "price": 12.9,
            "occurred_at": "2026-11-25T12:00:00Z", "version": 1}"#;
        assert!(PriceUpdate::from_json(float_price).is_err());
        assert!(PriceUpdate::from_json(b"not json").is_err());
    }

    proptest! {
        /// Whatever order versions arrive in, and however often, the value kept is the newest one.
        #[test]
        fn newest_wins_under_any_order(mut versions in proptest::collection::vec(0u64..50, 1..60)) {
            let max = *versions.iter().max().unwrap();
            let dupes = versions.clone();
            versions.extend(dupes);
            let mut kept: Option<Version> = None;
            for v in versions {
                match coalesce(kept, Version(v)) {
                    Coalesce::Take => {
                        prop_assert!(kept.is_none_or(|k| Version(v) > k));
                        kept = Some(Version(v));
                    }
                    Coalesce::Duplicate => prop_assert_eq!(kept, Some(Version(v))),
                    Coalesce::Stale => prop_assert!(kept.unwrap() > Version(v)),
                }
            }
            prop_assert_eq!(kept, Some(Version(max)));
        }
    }
}
