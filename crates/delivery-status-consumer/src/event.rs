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
