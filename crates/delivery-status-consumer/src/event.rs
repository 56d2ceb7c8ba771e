//! Delivery events from Kafka `deliveries.out` (docs/events/delivery_event.schema.json), parsed at the edge.
//!
//! Two parsers: [`peek`] reads only `sales_channel` (borrowed, no allocation) so the nine events in ten that belong
//! to other channels are skipped for the price of one tokenizer pass; [`parse`] validates a whole Shopee event.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use domain::OrderSn;
use domain::delivery::{DeliveryEvent, FailedReason};
use serde::Deserialize;

/// The channel whose events this service acts on.
pub const SHOPEE: &str = "shopee";

/// What the hot path needs to know about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Another channel's delivery: skip, no database, no Shopee.
    OtherChannel,
    /// A Shopee delivery: worth a full parse.
    Shopee,
    /// Not even a JSON object with a `sales_channel` string: dead-letter it.
    Invalid,
}

#[derive(Deserialize)]
struct Channel<'a> {
    #[serde(borrow)]
    sales_channel: Cow<'a, str>,
}

/// Reads only `sales_channel`; every other field is skipped without being kept.
pub fn peek(payload: &[u8]) -> Peek {
    match serde_json::from_slice::<Channel<'_>>(payload) {
        Ok(c) if c.sales_channel == SHOPEE => Peek::Shopee,
        Ok(c) if c.sales_channel.is_empty() => Peek::Invalid,
        Ok(_) => Peek::OtherChannel,
        Err(_) => Peek::Invalid,
    }
}

/// A valid Shopee delivery event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopeeDelivery {
    pub event_id: String,
    pub event_type: EventType,
    /// The order system's id (the Kafka key).
    pub ordr_order_id: String,
    pub order_sn: OrderSn,
    pub occurred_at: DateTime<Utc>,
    /// The fleet's tracking number, used for `non_integrated` shipping and pickup done.
    pub tracking_number: Option<String>,
    pub event: DeliveryEvent,
}

impl ShopeeDelivery {
    /// The handle a dead letter is filed under: `{order_sn}:{event_type}:{event_id}`.
    pub fn reference(&self) -> String {
        format!("{}:{}:{}", self.order_sn, self.event_type.as_str(), self.event_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Ready,
    OnTheWay,
    Delivered,
    Canceled,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "delivery.ready",
            Self::OnTheWay => "delivery.on_the_way",
            Self::Delivered => "delivery.delivered",
            Self::Canceled => "delivery.canceled",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "delivery.ready" => Self::Ready,
            "delivery.on_the_way" => Self::OnTheWay,
            "delivery.delivered" => Self::Delivered,
            "delivery.canceled" => Self::Canceled,
            _ => return None,
        })
    }
}

/// The outcome of a full parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    OtherChannel,
    Shopee(ShopeeDelivery),
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    sales_channel: Cow<'a, str>,
    #[serde(default, borrow)]
    external_order_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    hub_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

fn failed_reason(raw: &str) -> Option<FailedReason> {
    Some(match raw {
        "buyer_unreachable" => FailedReason::BuyerUnreachable,
        "buyer_unresponsive" => FailedReason::BuyerUnresponsive,
        "no_delivery_location_consensus" => FailedReason::NoDeliveryLocationConsensus,
        _ => return None,
    })
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Names the field that broke the parse (serde's type errors do not), or quotes serde.
fn describe(payload: &[u8], e: &serde_json::Error) -> String {
    const STRINGS: &[(&str, bool)] = &[
        ("event_type", true),
        ("event_id", true),
        ("order_id", true),
        ("sales_channel", true),
        ("occurred_at", true),
        ("external_order_id", false),
        ("hub_id", false),
        ("tracking_number", false),
        ("tracking_url", false),
        ("reason", false),
    ];
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(payload) {
        for (field, required) in STRINGS {
            match map.get(*field) {
                None if *required => return format!("not a delivery event: {field} is missing"),
                Some(serde_json::Value::String(_)) | None => {}
                Some(serde_json::Value::Null) if !required => {}
                Some(other) => {
                    let kind = match other {
                        serde_json::Value::Null => "null",
                        serde_json::Value::Bool(_) => "a boolean",
                        serde_json::Value::Number(_) => "a number",
                        serde_json::Value::Array(_) => "an array",
                        _ => "an object",
                    };
                    return format!("not a delivery event: {field} must be a string, not {kind}");
                }
            }
        }
    }
    format!("not a delivery event: {e}")
}

/// Validates a whole event against the schema. The error says what is wrong, for the dead letter.
pub fn parse(payload: &[u8]) -> Result<Parsed, String> {
    let raw: Raw<'_> = serde_json::from_slice(payload).map_err(|e| describe(payload, &e))?;
    if raw.sales_channel.is_empty() {
        return Err("sales_channel is empty".into());
    }
    if raw.sales_channel != SHOPEE {
        return Ok(Parsed::OtherChannel);
    }
    let event_type = EventType::parse(&raw.event_type).ok_or_else(|| {
        format!(
            "event_type `{}` is not one of delivery.ready, delivery.on_the_way, delivery.delivered, delivery.canceled",
            raw.event_type.chars().take(40).collect::<String>()
        )
    })?;
    if raw.event_id.trim().is_empty() {
        return Err("event_id is empty".into());
    }
    if raw.order_id.trim().is_empty() {
        return Err("order_id (the ORDR order id) is empty".into());
    }
    let external = raw
        .external_order_id
        .as_deref()
        .ok_or("external_order_id (the Shopee order_sn) is required for sales_channel shopee")?;
    let order_sn = OrderSn::parse(external).map_err(|e| format!("external_order_id: {e}"))?;
    let occurred_at = DateTime::parse_from_rfc3339(&raw.occurred_at)
        .map_err(|e| format!("occurred_at is not an RFC 3339 time: {e}"))?
        .with_timezone(&Utc);
    // chrono also reads a space for the `T`; RFC 3339's date-time (the schema's format) does not.
    if !matches!(raw.occurred_at.as_bytes().get(10), Some(b'T' | b't')) {
        return Err("occurred_at is not an RFC 3339 time: the date and the time must be joined by T".into());
    }
    let reason = match raw.reason.as_deref() {
        None | Some("") => None,
        Some(r) => Some(failed_reason(r).ok_or_else(|| {
            format!(
                "reason `{}` is not one of buyer_unreachable, buyer_unresponsive, no_delivery_location_consensus",
                r.chars().take(40).collect::<String>()
            )
        })?),
    };
    let tracking_number = non_empty(raw.tracking_number);
    let tracking_url = non_empty(raw.tracking_url);
    // PostgreSQL text cannot hold NUL; such an event could never be recorded.
    for (field, value) in [
        ("event_id", Some(raw.event_id.as_ref())),
        ("order_id", Some(raw.order_id.as_ref())),
        ("tracking_number", tracking_number.as_deref()),
        ("tracking_url", tracking_url.as_deref()),
    ] {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(format!("{field} contains a NUL character"));
        }
    }
    let event = match event_type {
        EventType::Ready => DeliveryEvent::Ready,
        EventType::OnTheWay => DeliveryEvent::OnTheWay {
            tracking_number: tracking_number.clone(),
            tracking_url,
        },
        EventType::Delivered => DeliveryEvent::Delivered,
        EventType::Canceled => DeliveryEvent::Canceled { reason },
    };
    Ok(Parsed::Shopee(ShopeeDelivery {
        event_id: raw.event_id.into_owned(),
        event_type,
        ordr_order_id: raw.order_id.into_owned(),
        order_sn,
        occurred_at,
        tracking_number,
        event,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn sample() -> serde_json::Value {
        json!({"event_type": "delivery.on_the_way", "event_id": "e-1", "order_id": "ORDR-123",
               "sales_channel": "shopee", "external_order_id": "2511250ABCDEF", "hub_id": "SAO-01",
               "occurred_at": "2026-11-25T12:00:00Z", "tracking_number": "BR1", "tracking_url": "https://t/1",
               "reason": null})
    }

    fn bytes(v: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn the_architecture_sample_parses() {
        let Parsed::Shopee(e) = parse(&bytes(&sample())).unwrap() else {
            panic!("shopee")
        };
        assert_eq!(e.order_sn.as_str(), "2511250ABCDEF");
        assert_eq!(e.ordr_order_id, "ORDR-123");
        assert_eq!(
            e.event,
            DeliveryEvent::OnTheWay {
                tracking_number: Some("BR1".into()),
                tracking_url: Some("https://t/1".into())
            }
        );
        assert_eq!(e.reference(), "2511250ABCDEF:delivery.on_the_way:e-1");
        assert_eq!(peek(&bytes(&sample())), Peek::Shopee);
    }

    #[test]
    fn other_channels_are_skipped_by_peek_and_parse() {
        let mut v = sample();
        v["sales_channel"] = json!("ifood");
        v["external_order_id"] = json!("lower-case-is-fine-elsewhere");
        assert_eq!(peek(&bytes(&v)), Peek::OtherChannel);
        assert_eq!(parse(&bytes(&v)).unwrap(), Parsed::OtherChannel);
        // An escaped string still compares by value.
        let escaped = br#"{"sales_channel": "sho\u0070ee"}"#;
        assert_eq!(peek(escaped), Peek::Shopee);
    }

    #[test]
    fn invalid_events_say_what_is_wrong() {
        assert_eq!(peek(b"not json"), Peek::Invalid);
        assert_eq!(peek(b"{}"), Peek::Invalid);
        assert_eq!(peek(br#"{"sales_channel": ""}"#), Peek::Invalid);
        let cases: &[(&str, serde_json::Value, &str)] = &[
            ("event_type", json!("delivery.teleported"), "event_type"),
            ("external_order_id", json!("abc-lower"), "external_order_id"),
            ("external_order_id", serde_json::Value::Null, "external_order_id"),
            ("occurred_at", json!("yesterday"), "occurred_at"),
            ("reason", json!("dog_ate_it"), "reason"),
            ("event_id", json!(""), "event_id"),
            ("order_id", json!(42), "order_id"),
            ("tracking_number", json!("BR\u{0}1"), "NUL"),
        ];
        for (field, value, expect) in cases {
            let mut v = sample();
            v[*field] = value.clone();
            let err = parse(&bytes(&v)).unwrap_err();
            assert!(err.contains(expect), "{field}: {err}");
        }
    }

    #[test]
    fn canceled_carries_the_mapped_reason() {
        let mut v = sample();
        v["event_type"] = json!("delivery.canceled");
        v["reason"] = json!("no_delivery_location_consensus");
        let Parsed::Shopee(e) = parse(&bytes(&v)).unwrap() else {
            panic!()
        };
        assert_eq!(
            e.event,
            DeliveryEvent::Canceled {
                reason: Some(FailedReason::NoDeliveryLocationConsensus)
            }
        );
    }

    #[test]
    fn the_schema_file_agrees_with_the_parser() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/events/delivery_event.schema.json")).unwrap();
        let types: Vec<&str> = schema["properties"]["event_type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for t in [
            EventType::Ready,
            EventType::OnTheWay,
            EventType::Delivered,
            EventType::Canceled,
        ] {
            assert!(types.contains(&t.as_str()));
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in required {
            let mut v = sample();
            v.as_object_mut().unwrap().remove(field);
            assert!(parse(&bytes(&v)).is_err(), "{field} is required by the schema");
        }
    }

    fn schema() -> &'static jsonschema::Validator {
        static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| {
            let text = include_str!("../../../docs/events/delivery_event.schema.json");
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&serde_json::from_str(text).unwrap())
                .unwrap()
        })
    }

    /// What the consumer does with an event: a Shopee event is parsed in full; any other channel is skipped after
    /// [`peek`] (whatever its other fields hold); an event without a readable channel is dead-lettered.
    #[derive(Debug, PartialEq, Eq)]
    enum Verdict {
        Applied,
        Skipped,
        DeadLettered(String),
    }

    fn verdict(event: &serde_json::Value) -> Verdict {
        let payload = bytes(event);
        match peek(&payload) {
            Peek::OtherChannel => Verdict::Skipped,
            Peek::Invalid => Verdict::DeadLettered("no readable sales_channel".into()),
            Peek::Shopee => match parse(&payload) {
                Ok(Parsed::Shopee(_)) => Verdict::Applied,
                Ok(Parsed::OtherChannel) => Verdict::DeadLettered("peek and parse disagree".into()),
                Err(e) => Verdict::DeadLettered(e),
            },
        }
    }

    /// A valid event of any type, for Shopee or another channel.
    fn valid_event() -> impl Strategy<Value = serde_json::Value> {
        use proptest::sample::select;
        let text = || prop_oneof!["[ -~]*[!-~][ -~]*", "\\PC{0,8}[^\\s\\pC]\\PC{0,8}"];
        let optional = |s: BoxedStrategy<String>| {
            prop_oneof![
                Just(json!(null)),
                Just(json!("")),
                s.prop_map(serde_json::Value::from)
            ]
        };
        (
            select(vec![
                "delivery.ready",
                "delivery.on_the_way",
                "delivery.delivered",
                "delivery.canceled",
            ]),
            text(),
            text(),
            prop_oneof![3 => Just("shopee".to_owned()), 1 => "[a-z]{1,8}"],
            "[A-Z0-9]{1,32}",
            select(vec![
                "2026-11-25T12:00:00Z",
                "2026-11-25T12:00:00.5Z",
                "2026-11-25T09:00:00-03:00",
                "2024-02-29T23:59:59+00:00",
            ]),
            optional("[ -~]{0,20}".boxed()),
            optional("https://[a-z]{1,10}/[A-Z0-9]{0,10}".boxed()),
            select(vec![
                json!(null),
                json!(""),
                json!("buyer_unreachable"),
                json!("buyer_unresponsive"),
                json!("no_delivery_location_consensus"),
            ]),
            prop_oneof![
                Just(json!(null)),
                "[A-Z]{3}-[0-9]{2}".prop_map(serde_json::Value::from)
            ],
            any::<bool>(),
        )
            .prop_map(
                |(event_type, event_id, order_id, channel, sn, at, tracking, url, reason, hub, absent)| {
                    let mut v = json!({"event_type": event_type, "event_id": event_id, "order_id": order_id,
                        "sales_channel": channel, "external_order_id": sn, "hub_id": hub, "occurred_at": at,
                        "tracking_number": tracking, "tracking_url": url, "reason": reason});
                    if absent {
                        // The optional fields may be left out altogether.
                        for field in ["hub_id", "tracking_number", "tracking_url", "reason"] {
                            v.as_object_mut().unwrap().remove(field);
                        }
                    }
                    v
                },
            )
    }

    /// Values that break a field's contract (some only for Shopee), and a few odd ones that do not.
    fn values(field: &str) -> Vec<serde_json::Value> {
        let common = [json!(42), json!(true), json!([]), json!({}), json!(null)];
        let specific: Vec<serde_json::Value> = match field {
            "event_type" => vec![json!("delivery.teleported"), json!(""), json!("DELIVERY.READY")],
            "event_id" | "order_id" => vec![
                json!(""),
                json!("   "),
                json!("\t\n"),
                json!("\u{a0}"),
                json!("e\u{0}1"),
                json!(" e-1 "),
            ],
            "sales_channel" => vec![json!(""), json!("ifood"), json!("Shopee"), json!("shopee ")],
            "external_order_id" => vec![
                json!(""),
                json!("abc-lower"),
                json!("X".repeat(33)),
                json!("2511 250"),
            ],
            "occurred_at" => vec![
                json!("yesterday"),
                json!(""),
                json!("2026-11-25"),
                json!("2026-11-25T12:00:00"),
                json!("2026-11-25 12:00:00Z"),
                json!("2026-11-25t12:00:00z"),
                json!("2026-02-30T12:00:00Z"),
                json!("2026-11-25T24:00:00Z"),
                json!("2026-11-25T12:00:00+0300"),
                json!(1_764_072_000),
            ],
            "tracking_number" | "tracking_url" => {
                vec![json!(""), json!("  "), json!("BR\u{0}1"), json!("\u{0}")]
            }
            "reason" => vec![json!("dog_ate_it"), json!("BUYER_UNREACHABLE"), json!("")],
            "hub_id" => vec![json!(""), json!("anything goes")],
            _ => vec![],
        };
        common.into_iter().chain(specific).collect()
    }

    /// A valid event, or one with a field removed, of the wrong type, or with a bad (or odd) value.
    fn event() -> impl Strategy<Value = serde_json::Value> {
        use proptest::sample::select;
        const FIELDS: [&str; 10] = [
            "event_type",
            "event_id",
            "order_id",
            "sales_channel",
            "external_order_id",
            "hub_id",
            "occurred_at",
            "tracking_number",
            "tracking_url",
            "reason",
        ];
        let replace = select(FIELDS.to_vec()).prop_flat_map(|f| (Just(f), select(values(f))));
        (
            valid_event(),
            prop_oneof![
                2 => Just(None),
                1 => select(FIELDS.to_vec()).prop_map(|f| Some((f, None))),
                4 => replace.prop_map(|(f, v)| Some((f, Some(v)))),
                1 => Just(Some(("unexpected", Some(json!({"any": "thing"}))))),
            ],
        )
            .prop_map(|(mut v, change)| {
                match change {
                    Some((field, None)) => {
                        v.as_object_mut().unwrap().remove(field);
                    }
                    Some((field, Some(value))) => v[field] = value,
                    None => {}
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The schema and the consumer agree: a Shopee event is applied exactly when the schema accepts it; an
        /// event the schema accepts is never dead-lettered; another channel's event is skipped, valid or not (the
        /// schema's description says so: only `sales_channel` is read).
        #[test]
        fn the_schema_and_the_parser_agree(event in event()) {
            let valid = schema().validate(&event).map_err(|e| format!("{e} at {}", e.instance_path()));
            let verdict = verdict(&event);
            match &verdict {
                Verdict::Applied => prop_assert!(valid.is_ok(), "applied, but the schema says {:?}: {}", valid, event),
                Verdict::DeadLettered(why) => {
                    prop_assert!(valid.is_err(), "dead-lettered ({}), but the schema accepts {}", why, event)
                }
                Verdict::Skipped => prop_assert!(event["sales_channel"].as_str().is_some_and(|c| c != SHOPEE)),
            }
        }
    }

    proptest! {
        /// Whatever bytes arrive, neither parser panics, and they agree on the channel.
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = peek(&data);
            let full = parse(&data);
            if let Ok(Parsed::OtherChannel) = full {
                prop_assert_eq!(p, Peek::OtherChannel);
            }
            if let Ok(Parsed::Shopee(_)) = full {
                prop_assert_eq!(p, Peek::Shopee);
            }
        }
    }
}
