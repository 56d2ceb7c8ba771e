//! The two incoming events, validated at the edge (domain's `from_json`), reduced to what coalescing needs.

use dead_letters::DeadLetterKind;
use domain::catalog::{InventoryUpdate, PriceUpdate};
use domain::{HubId, Sku};
use pg_enum::text_enum;
use serde_json::{Value, json};

text_enum! {
    /// Price and stock are coalesced separately: their versions are independent. The `kind` column of
    /// `catalog_sync_state`, `catalog_sync_dirty` and `catalog_sync_unmapped`, and of a parked update's payload.
    pub enum Kind {
        Price = "price",
        Stock = "stock",
    }
}

impl Kind {
    /// The dead letter `kind` (`dead_letters.kind`).
    pub fn dead_letter_kind(self) -> DeadLetterKind {
        match self {
            Kind::Price => DeadLetterKind::PriceUpdate,
            Kind::Stock => DeadLetterKind::InventoryUpdate,
        }
    }

    /// The kind whose updates a dead letter of `kind` holds; `None` for another worker's letters.
    pub fn of_dead_letter(kind: DeadLetterKind) -> Option<Kind> {
        [Kind::Price, Kind::Stock]
            .into_iter()
            .find(|k| k.dead_letter_kind() == kind)
    }

    /// The event name, for messages.
    pub fn event_name(self) -> &'static str {
        match self {
            Kind::Price => "PriceUpdateEvent",
            Kind::Stock => "InventoryUpdateEvent",
        }
    }
}

/// A valid price or stock update: centavos for a price, units for stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub kind: Kind,
    pub event_id: String,
    pub sku: Sku,
    pub hub_id: HubId,
    /// Fits PostgreSQL's BIGINT (checked at parse).
    pub version: i64,
    pub value: i64,
}

impl Update {
    /// `sku@hub`, the human handle used in dead letters and logs.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.sku, self.hub_id)
    }
}

/// Parses and validates one message body; the error is the reason recorded in the dead letter.
pub fn parse(kind: Kind, data: &[u8]) -> Result<Update, String> {
    let (event_id, sku, hub_id, version, value) = match kind {
        Kind::Price => {
            let e = PriceUpdate::from_json(data).map_err(|e| e.to_string())?;
            (e.event_id, e.sku, e.hub_id, e.version.0, e.price.centavos())
        }
        Kind::Stock => {
            let e = InventoryUpdate::from_json(data).map_err(|e| e.to_string())?;
            (e.event_id, e.sku, e.hub_id, e.version.0, i64::from(e.quantity))
        }
    };
    let version = i64::try_from(version).map_err(|_| {
        format!(
            "{}: version {version} is larger than 9223372036854775807",
            kind.event_name()
        )
    })?;
    Ok(Update {
        kind,
        event_id,
        sku,
        hub_id,
        version,
        value,
    })
}

/// What a dead letter keeps of a message that could not be read: the JSON when it is JSON, the text otherwise.
pub fn dead_letter_payload(data: &[u8], message_id: &str, subscription: &str) -> Value {
    let body = serde_json::from_slice::<Value>(data).unwrap_or_else(|_| {
        Value::String(String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]).into_owned())
    });
    json!({"message_id": message_id, "subscription": subscription, "data": body})
}

/// A best-effort `sku@hub` handle for an invalid message (so an operator can find it).
pub fn invalid_reference(data: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let sku = v.get("sku")?.as_str()?;
    let hub = v.get("hub_id").and_then(Value::as_str).unwrap_or("?");
    Some(format!("{}@{}", truncate(sku, 64), truncate(hub, 32)))
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_both_events() {
        let p = parse(
            Kind::Price,
            br#"{"event_id":"e","sku":"789100000001","hub_id":"SAO-01","price":"12.90","occurred_at":"2026-11-25T12:00:00Z","version":7}"#,
        )
        .unwrap();
        assert_eq!(
            (p.value, p.version, p.reference().as_str()),
            (1290, 7, "789100000001@SAO-01")
        );
        let s = parse(
            Kind::Stock,
            br#"{"event_id":"e","sku":"789100000001","hub_id":"SAO-01","quantity":3,"occurred_at":"2026-11-25T12:00:00Z","version":8}"#,
        )
        .unwrap();
        assert_eq!(s.value, 3);
    }

    #[test]
    fn rejects_with_a_reason() {
        let too_big = br#"{"event_id":"e","sku":"1","hub_id":"SAO-01","quantity":3,"occurred_at":"2026-11-25T12:00:00Z","version":18446744073709551615}"#;
        assert!(parse(Kind::Stock, too_big).unwrap_err().contains("version"));
        assert!(parse(Kind::Price, b"{").unwrap_err().contains("PriceUpdateEvent"));
        let payload = dead_letter_payload(b"\xff not json", "m1", "s");
        assert!(payload["data"].is_string());
        assert_eq!(
            invalid_reference(br#"{"sku":"A","hub_id":"B"}"#).as_deref(),
            Some("A@B")
        );
    }
}
