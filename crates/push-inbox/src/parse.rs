//! The push envelope: `{"shop_id": 123, "code": 3, "timestamp": 1700000000, "data": {...}}`.

use domain::order::ShopeeOrderStatus;
use domain::{OrderSn, ShopId};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::PushCode;

/// Why a (correctly signed) body cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("`{field}` is invalid: {problem}")]
    Field { field: &'static str, problem: String },
}

/// Code 3: an order changed status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatusPush {
    pub order_sn: OrderSn,
    /// `Unknown` when Shopee sent a status this code does not know (the payload keeps what it sent).
    pub status: ShopeeOrderStatus,
    pub update_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushKind {
    /// Code 3.
    OrderStatus(OrderStatusPush),
    /// Code 4: a tracking number was assigned.
    TrackingNumber { order_sn: OrderSn },
    /// Codes 1 and 2: the shop was (de)authorized; 12: authorization about to expire; anything else.
    Other,
}

/// A parsed push, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub shop_id: Option<ShopId>,
    /// The envelope's `code` as sent (read it typed with [`Push::push_code`]); `None` for a verification push.
    pub code: Option<i32>,
    pub kind: PushKind,
    pub dedup_key: String,
    pub payload: Value,
}

impl Push {
    /// Parses a raw body whose signature was already verified. Unknown codes are accepted (stored and
    /// acknowledged); a known code with a malformed `data` is an error.
    pub fn parse(raw: &[u8]) -> Result<Self, PushError> {
        let payload: Value = serde_json::from_slice(raw).map_err(|e| PushError::NotJson(e.to_string()))?;
        Self::from_value(payload, raw)
    }

    /// An order status push rebuilt from what the order-list scan saw: the same payload, columns and dedup key a
    /// code 3 push with this `data` (and no `update_time`) would have.
    pub fn order_status(shop_id: ShopId, order_sn: OrderSn, status: ShopeeOrderStatus) -> Self {
        let code = PushCode::OrderStatus;
        let payload = serde_json::json!({
            "shop_id": shop_id.get(),
            "code": code.get(),
            "timestamp": null,
            "data": {"ordersn": order_sn.as_str(), "status": status.as_str()},
        });
        let kind = PushKind::OrderStatus(OrderStatusPush {
            order_sn,
            status,
            update_time: None,
        });
        let dedup_key = dedup_key(Some(shop_id), Some(code), &kind, &payload, &[]);
        Self {
            shop_id: Some(shop_id),
            code: Some(code.get()),
            kind,
            dedup_key,
            payload,
        }
    }

    /// A push recovered through `get_lost_push_message`: `data` is what a live push carries under `data`.
    pub fn from_lost(
        shop_id: Option<u64>,
        code: PushCode,
        data: &Value,
        timestamp: Option<i64>,
    ) -> Result<Self, PushError> {
        if let Value::String(text) = data {
            return Err(PushError::NotJson(format!(
                "data is text, not JSON: {} bytes",
                text.len()
            )));
        }
        let payload =
            serde_json::json!({"shop_id": shop_id, "code": code.get(), "timestamp": timestamp, "data": data});
        let raw = serde_json::to_vec(&payload).map_err(|e| PushError::NotJson(e.to_string()))?;
        Self::from_value(payload, &raw)
    }

    fn from_value(payload: Value, raw: &[u8]) -> Result<Self, PushError> {
        let obj = payload.as_object().ok_or(PushError::NotAnObject)?;
        let shop_id = match obj.get("shop_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|id| ShopId::new(id).ok())
                    .ok_or_else(|| field("shop_id", "must be a positive integer"))?,
            ),
        };
        let code = match obj.get("code") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .and_then(|c| i32::try_from(c).ok())
                    .ok_or_else(|| field("code", "must be an integer"))?,
            ),
        };
        let data = obj.get("data");
        let push_code = code.map(PushCode::from);
        let kind = match push_code {
            Some(PushCode::OrderStatus) => PushKind::OrderStatus(order_status(data)?),
            Some(PushCode::TrackingNumber) => PushKind::TrackingNumber {
                order_sn: order_sn(data)?,
            },
            Some(PushCode::Other(_)) | None => PushKind::Other,
        };
        let dedup_key = dedup_key(shop_id, push_code, &kind, &payload, raw);
        Ok(Self {
            shop_id,
            code,
            kind,
            dedup_key,
            payload,
        })
    }

    /// The envelope's code, typed.
    pub fn push_code(&self) -> Option<PushCode> {
        self.code.map(PushCode::from)
    }

    pub fn order_sn(&self) -> Option<&OrderSn> {
        match &self.kind {
            PushKind::OrderStatus(o) => Some(&o.order_sn),
            PushKind::TrackingNumber { order_sn } => Some(order_sn),
            PushKind::Other => None,
        }
    }
}

/// Code 3: `3:{shop}:{ordersn}:{status}:{update_time}`; otherwise `{code}:{shop}:{sha256 of the canonical body}`.
fn dedup_key(
    shop_id: Option<ShopId>,
    code: Option<PushCode>,
    kind: &PushKind,
    payload: &Value,
    raw: &[u8],
) -> String {
    let shop = shop_id.map_or_else(|| "-".to_owned(), |s| s.to_string());
    match kind {
        PushKind::OrderStatus(o) => format!(
            "{}:{shop}:{}:{}:{}",
            PushCode::OrderStatus,
            o.order_sn,
            o.status,
            o.update_time.map_or_else(|| "-".into(), |t| t.to_string())
        ),
        _ => format!(
            "{}:{shop}:{}",
            code.map_or_else(|| "-".into(), |c| c.to_string()),
            hex::encode(Sha256::digest(canonical(payload, raw)))
        ),
    }
}

/// The bytes a non-order push is deduplicated on: its JSON re-serialized without the volatile `timestamp`, so a
/// redelivery of the same event with a new envelope timestamp is still the same push.
fn canonical(payload: &Value, raw: &[u8]) -> Vec<u8> {
    let mut stable = payload.clone();
    if let Some(obj) = stable.as_object_mut() {
        obj.remove("timestamp");
    }
    serde_json::to_vec(&stable).unwrap_or_else(|_| raw.to_vec())
}

fn field(field: &'static str, problem: &str) -> PushError {
    PushError::Field {
        field,
        problem: problem.to_owned(),
    }
}

fn order_sn(data: Option<&Value>) -> Result<OrderSn, PushError> {
    let raw = data
        .and_then(|d| d.get("ordersn").or_else(|| d.get("order_sn")))
        .and_then(Value::as_str)
        .ok_or_else(|| field("data.ordersn", "is missing"))?;
    OrderSn::parse(raw).map_err(|e| field("data.ordersn", &e.problem))
}

fn order_status(data: Option<&Value>) -> Result<OrderStatusPush, PushError> {
    let order_sn = order_sn(data)?;
    let status = data
        .and_then(|d| d.get("status"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(ShopeeOrderStatus::lenient)
        .ok_or_else(|| field("data.status", "is missing"))?;
    let update_time = data.and_then(|d| d.get("update_time")).and_then(Value::as_i64);
    Ok(OrderStatusPush {
        order_sn,
        status,
        update_time,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn order_status_push() {
        let raw = br#"{"shop_id": 900001, "code": 3, "timestamp": 1700000000,
            "data": {"ordersn": "2511250ABCDEF", "status": "READY_TO_SHIP", "update_time": 1700000001}}"#;
        let push = Push::parse(raw).unwrap();
        assert_eq!(push.shop_id.unwrap().get(), 900001);
        assert_eq!(push.dedup_key, "3:900001:2511250ABCDEF:READY_TO_SHIP:1700000001");
        assert_eq!(push.order_sn().unwrap().as_str(), "2511250ABCDEF");
    }

    #[test]
    fn unknown_codes_and_verification_pushes_are_accepted() {
        let push = Push::parse(br#"{"shop_id": 1, "code": 999, "data": {"x": 1}}"#).unwrap();
        assert_eq!(push.kind, PushKind::Other);
        assert!(push.dedup_key.starts_with("999:1:"));
        let push = Push::parse(br#"{"timestamp": 1}"#).unwrap();
        assert_eq!(push.code, None);
    }

    #[test]
    fn same_event_with_a_new_envelope_timestamp_is_the_same_push() {
        let a = Push::parse(br#"{"shop_id": 1, "code": 12, "timestamp": 1, "data": {"expire": 5}}"#).unwrap();
        let b = Push::parse(br#"{"shop_id": 1, "code": 12, "timestamp": 2, "data": {"expire": 5}}"#).unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(matches!(Push::parse(b"{"), Err(PushError::NotJson(_))));
        assert_eq!(Push::parse(b"[1]"), Err(PushError::NotAnObject));
        let err =
            Push::parse(br#"{"shop_id": 1, "code": 3, "data": {"status": "READY_TO_SHIP"}}"#).unwrap_err();
        assert_eq!(err.to_string(), "`data.ordersn` is invalid: is missing");
        assert!(Push::parse(br#"{"shop_id": -4, "code": 3}"#).is_err());
        assert!(Push::parse(br#"{"shop_id": 1, "code": "3"}"#).is_err());
    }

    #[test]
    fn lost_pushes_parse_their_data() {
        let data = serde_json::json!({"ordersn":"ABC123","status":"READY_TO_SHIP","update_time":5});
        let p = Push::from_lost(Some(7), PushCode::OrderStatus, &data, Some(9)).unwrap();
        assert_eq!(p.dedup_key, "3:7:ABC123:READY_TO_SHIP:5");
        let text = Value::String(data.to_string());
        assert!(Push::from_lost(Some(7), PushCode::OrderStatus, &text, Some(9)).is_err());
    }

    /// A push built from the order list is the push Shopee would have sent: same payload and dedup key.
    #[test]
    fn an_order_status_push_built_typed_equals_the_parsed_one() {
        let shop = ShopId::new(7).unwrap();
        let sn = OrderSn::parse("ABC123").unwrap();
        let built = Push::order_status(shop, sn, ShopeeOrderStatus::ReadyToShip);
        let data = serde_json::json!({"ordersn": "ABC123", "status": "READY_TO_SHIP"});
        let parsed = Push::from_lost(Some(7), PushCode::OrderStatus, &data, None).unwrap();
        assert_eq!(built, parsed);
        assert_eq!(built.dedup_key, "3:7:ABC123:READY_TO_SHIP:-");
        assert_eq!(built.push_code(), Some(PushCode::OrderStatus));
    }

    #[test]
    fn a_status_shopee_added_later_is_kept_as_unknown() {
        let raw = br#"{"shop_id": 1, "code": 3, "data": {"ordersn": "A1", "status": "NEW_THING", "update_time": 2}}"#;
        let push = Push::parse(raw).unwrap();
        let PushKind::OrderStatus(o) = &push.kind else {
            panic!("{push:?}")
        };
        assert_eq!(o.status, ShopeeOrderStatus::Unknown);
        assert_eq!(push.payload["data"]["status"], "NEW_THING");
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Push::parse(&raw);
        }

        #[test]
        fn never_panics_on_any_json(code in any::<i64>(), shop in any::<i64>(), sn in "\\PC{0,40}") {
            let body = serde_json::json!({"shop_id": shop, "code": code, "data": {"ordersn": sn, "status": sn}});
            let _ = Push::parse(&serde_json::to_vec(&body).unwrap());
        }
    }
}
