//! The two incoming events, validated at the edge (domain's `from_json`), reduced to what coalescing needs.

use std::borrow::Cow;

use chrono::DateTime;
use dead_letters::DeadLetterKind;
use domain::catalog::{InventoryUpdate, PriceUpdate};
use domain::{HubId, Sku};
use pg_enum::text_enum;
use serde::Deserialize;
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

/// Parses and validates one message body against its schema (docs/events/); the error is the reason recorded in
/// the dead letter.
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
    check_strict_forms(kind, data)?;
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

/// Where the schema is stricter than `domain`'s parsers, which are lenient with what they read: `occurred_at` is
/// RFC 3339's `date-time` (chrono's serde also takes `2026-1-25 12:00:00Z`), and `price` is the bare decimal
/// (`Money` trims surrounding spaces). Runs after a successful parse, so the message is an event.
fn check_strict_forms(kind: Kind, data: &[u8]) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Forms<'a> {
        #[serde(borrow)]
        occurred_at: Cow<'a, str>,
        #[serde(borrow, default)]
        price: Option<Cow<'a, str>>,
    }
    let invalid = |problem: String| format!("invalid {}: {problem}", kind.event_name());
    let forms: Forms<'_> = serde_json::from_slice(data).map_err(|e| invalid(e.to_string()))?;
    let at = forms.occurred_at.as_ref();
    if DateTime::parse_from_rfc3339(at).is_err() || !matches!(at.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(invalid(format!(
            "occurred_at `{}` is not an RFC 3339 date-time like 2026-11-25T12:00:00Z",
            truncate(at, 40)
        )));
    }
    if let Some(price) = forms.price
        && price.trim() != price
    {
        return Err(invalid(format!(
            "price `{}` has surrounding spaces",
            truncate(&price, 32)
        )));
    }
    Ok(())
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

/// The documented contracts (`docs/events/price_update.schema.json`, `inventory_update.schema.json`) and [`parse`]
/// agree on every event: valid ones, and ones with a field removed, of the wrong type, or with a bad value.
#[cfg(test)]
mod contract {
    #![allow(clippy::unwrap_used)]
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::{Value, json};

    use super::*;

    fn schema(kind: Kind) -> &'static jsonschema::Validator {
        static PRICE: OnceLock<jsonschema::Validator> = OnceLock::new();
        static STOCK: OnceLock<jsonschema::Validator> = OnceLock::new();
        let (cell, text) = match kind {
            Kind::Price => (
                &PRICE,
                include_str!("../../../docs/events/price_update.schema.json"),
            ),
            Kind::Stock => (
                &STOCK,
                include_str!("../../../docs/events/inventory_update.schema.json"),
            ),
        };
        cell.get_or_init(|| {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&serde_json::from_str(text).unwrap())
                .unwrap()
        })
    }

    /// What the schema says about `event`: `Ok` or the first violation.
    fn by_schema(kind: Kind, event: &Value) -> Result<(), String> {
        schema(kind)
            .validate(event)
            .map_err(|e| format!("{e} at {}", e.instance_path()))
    }

    fn valid(kind: Kind) -> impl Strategy<Value = Value> {
        let value = match kind {
            Kind::Price => prop_oneof![
                "[1-9][0-9]{0,8}(\\.[0-9]{1,2})?",
                "0\\.(0[1-9]|[1-9][0-9]?)",
                select(vec!["1000000000", "1000000000.00", "007.50", "0.01", "12.9"]).prop_map(str::to_owned),
            ]
            .prop_map(Value::from)
            .boxed(),
            Kind::Stock => prop_oneof![0u64..1000, Just(u64::from(u32::MAX))]
                .prop_map(Value::from)
                .boxed(),
        };
        (
            prop_oneof!["[ -~]{1,128}", "\\PC{1,32}"],
            "[A-Za-z0-9._-]{1,64}",
            "[A-Z0-9][A-Z0-9_-]{0,31}",
            value,
            select(vec![
                "2026-11-25T12:00:00Z",
                "2026-11-25T12:00:00.123456Z",
                "2026-11-25T09:00:00-03:00",
                "2024-02-29T23:59:59+00:00",
            ]),
            prop_oneof![any::<u32>().prop_map(u64::from), Just(i64::MAX as u64)],
        )
            .prop_map(move |(event_id, sku, hub_id, value, occurred_at, version)| {
                let field = match kind {
                    Kind::Price => "price",
                    Kind::Stock => "quantity",
                };
                json!({"event_id": event_id, "sku": sku, "hub_id": hub_id, field: value,
                       "occurred_at": occurred_at, "version": version})
            })
    }

    /// Values that break the contract of a field (or, for `price`, its shape), and a few that look odd but do not.
    fn values(field: &str) -> Vec<Value> {
        let common = [json!(null), json!(true), json!([]), json!({}), json!(1.5)];
        let specific: Vec<Value> = match field {
            "event_id" => vec![
                json!(""),
                json!("x".repeat(129)),
                json!("é".repeat(100)),
                json!(7),
            ],
            "sku" => vec![
                json!(""),
                json!("a b"),
                json!("SKU/1"),
                json!("ç"),
                json!("x".repeat(65)),
                json!(789),
            ],
            "hub_id" => vec![
                json!(""),
                json!("sao-01"),
                json!("-SAO"),
                json!("S".repeat(33)),
                json!("SAO 01"),
            ],
            "price" => vec![
                json!("0"),
                json!("0.00"),
                json!("-1.00"),
                json!("12.345"),
                json!("1e3"),
                json!("12,90"),
                json!(" 12.90"),
                json!("12.90 "),
                json!("12."),
                json!(".5"),
                json!(12.9),
                json!(12),
                json!("1000000000.01"),
                json!("9999999999999.00"),
                json!("abc"),
                json!(""),
            ],
            "quantity" => vec![json!(-1), json!("3"), json!(4_294_967_296u64), json!(1e30)],
            "occurred_at" => vec![
                json!("2026-12-31T23:59:60Z"),
                json!("2026-11-25T12:00Z"),
                json!("2026-11-25T12:00:00,5Z"),
                json!("2026-11-25T12:00:00.Z"),
                json!("2026-11-25T12:00:00.1234567891Z"),
                json!("2026-11-25T12:00:00-00:00"),
                json!("2026-11-25T12:00:00+24:00"),
                json!("0000-01-01T00:00:00Z"),
                json!("12026-11-25T12:00:00Z"),
                json!("2026-11-25T12:00:00+03"),
                json!("2026-1-25T12:00:00Z"),
                json!("yesterday"),
                json!("2026-11-25 12:00:00Z"),
                json!("2026-11-25T12:00:00"),
                json!("2026-11-25t12:00:00z"),
                json!("2026-02-30T12:00:00Z"),
                json!("2026-11-25T24:00:00Z"),
                json!("2026-11-25"),
                json!(1_764_072_000),
                json!(""),
            ],
            "version" => vec![
                json!(-1),
                json!("7"),
                json!(9_223_372_036_854_775_808u64),
                json!(u64::MAX),
            ],
            _ => vec![],
        };
        common.into_iter().chain(specific).collect()
    }

    /// A valid event, or one with a field removed, replaced by a bad (or odd) value, or an unknown field added.
    fn event(kind: Kind) -> impl Strategy<Value = Value> {
        let value_field = match kind {
            Kind::Price => "price",
            Kind::Stock => "quantity",
        };
        let fields = vec!["event_id", "sku", "hub_id", value_field, "occurred_at", "version"];
        let replace = select(fields.clone()).prop_flat_map(|f| (Just(f), select(values(f))));
        (
            valid(kind),
            prop_oneof![
                2 => Just(None),
                1 => select(fields).prop_map(|f| Some((f, None))),
                4 => replace.prop_map(|(f, v)| Some((f, Some(v)))),
                1 => Just(Some(("unexpected", Some(json!(1))))),
            ],
        )
            .prop_map(|(mut event, change)| {
                match change {
                    Some((field, None)) => {
                        event.as_object_mut().unwrap().remove(field);
                    }
                    Some((field, Some(value))) => event[field] = value,
                    None => {}
                }
                event
            })
    }

    fn agree(kind: Kind, event: &Value) -> Result<(), TestCaseError> {
        let schema = by_schema(kind, event);
        let parsed = parse(kind, &serde_json::to_vec(event).unwrap());
        prop_assert_eq!(
            schema.is_ok(),
            parsed.is_ok(),
            "{:?}: schema says {:?}, parser says {:?}, for {}",
            kind,
            schema,
            parsed.map(|_| ()),
            event
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn price_update_schema_and_parser_agree(event in event(Kind::Price)) {
            agree(Kind::Price, &event)?;
        }

        #[test]
        fn inventory_update_schema_and_parser_agree(event in event(Kind::Stock)) {
            agree(Kind::Stock, &event)?;
        }
    }

    /// The documented examples are valid events.
    #[test]
    fn the_schema_examples_parse() {
        for kind in [Kind::Price, Kind::Stock] {
            let text = match kind {
                Kind::Price => include_str!("../../../docs/events/price_update.schema.json"),
                Kind::Stock => include_str!("../../../docs/events/inventory_update.schema.json"),
            };
            let schema: Value = serde_json::from_str(text).unwrap();
            for example in schema["examples"].as_array().unwrap() {
                assert_eq!(by_schema(kind, example), Ok(()));
                parse(kind, &serde_json::to_vec(example).unwrap()).unwrap();
            }
        }
    }
}
