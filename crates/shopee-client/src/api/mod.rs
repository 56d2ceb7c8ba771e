//! Typed requests and responses, one module per Shopee area. Every type serializes and deserializes, so the
//! sandbox and tests can reuse them. Unknown fields in answers are ignored; money stays a JSON number
//! (`serde_json::Number`) until converted with [`domain::Money::from_shopee_number`].

pub mod auth;
pub mod discount;
pub mod logistics;
pub mod media;
pub mod order;
pub mod product;
pub mod push;

/// Keeps the part of an answer this client does not model.
pub type Extra = serde_json::Map<String, serde_json::Value>;

use crate::envelope::Endpoint;

/// Every Shopee API this client calls. The conformance suite (`tests/conformance.rs`) holds each one to Shopee's
/// published contract, and fails for an endpoint defined in `api/` but missing here.
pub const ENDPOINTS: &[Endpoint] = &[
    auth::TOKEN_GET,
    auth::ACCESS_TOKEN_GET,
    push::GET_LOST_PUSH_MESSAGE,
    push::CONFIRM_CONSUMED_LOST_PUSH_MESSAGE,
    order::GET_ORDER_LIST,
    order::GET_ORDER_DETAIL,
    order::GET_PACKAGE_DETAIL,
    order::CANCEL_ORDER,
    logistics::GET_SHIPPING_PARAMETER,
    logistics::SHIP_ORDER,
    logistics::UPDATE_TRACKING_STATUS,
    logistics::GET_TRACKING_NUMBER,
    logistics::UPLOAD_SERVICEABLE_POLYGON,
    logistics::CHECK_POLYGON_UPDATE_STATUS,
    product::GET_ITEM_LIST,
    product::GET_ITEM_BASE_INFO,
    product::GET_MODEL_LIST,
    product::UPDATE_PRICE,
    product::UPDATE_STOCK,
    product::UPDATE_ITEM,
    product::GET_MART_ITEM_BY_OUTLET_ITEM_ID,
    product::BATCH_UPDATE_OUTLET_PRICE,
    product::BATCH_UPDATE_OUTLET_STOCK,
    product::GET_BATCH_TASK_RESULT,
    discount::ADD_DISCOUNT,
    discount::ADD_DISCOUNT_ITEM,
    discount::UPDATE_DISCOUNT,
    discount::UPDATE_DISCOUNT_ITEM,
    discount::DELETE_DISCOUNT,
    discount::DELETE_DISCOUNT_ITEM,
    discount::END_DISCOUNT,
    discount::GET_DISCOUNT,
    discount::GET_DISCOUNT_LIST,
    media::UPLOAD_IMAGE,
];

/// A list Shopee documents as one `string` parameter holding comma-separated values (`order_sn_list`,
/// `response_optional_fields`), unlike parameters documented as arrays (`int64[]`, `string[]`), which a GET sends
/// as repeated keys (see [`crate::envelope::query_pairs`]).
pub(crate) mod comma_list {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<T: Serialize, S: Serializer>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::new();
        for item in items {
            let part = match serde_json::to_value(item).map_err(S::Error::custom)? {
                Value::String(t) => t,
                other => other.to_string(),
            };
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(&part);
        }
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        let text = String::deserialize(d)?;
        text.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| serde_json::from_value(Value::String(p.to_owned())).map_err(D::Error::custom))
            .collect()
    }
}
