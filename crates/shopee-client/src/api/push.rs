//! Push recovery: pushes Shopee could not deliver (last 3 days, up to 100 per call).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::Result;

pub const GET_LOST_PUSH_MESSAGE: Endpoint = Endpoint::get("/api/v2/push/get_lost_push_message").public();
/// Idempotent: confirming the same id twice is harmless.
pub const CONFIRM_CONSUMED_LOST_PUSH_MESSAGE: Endpoint =
    Endpoint::post("/api/v2/push/confirm_consumed_lost_push_message").public();

/// One lost push. Shopee documents `data` as a string (the push's JSON text), but its own sample sends an object
/// holding the whole push (`{code, data, shop_id, timestamp}`): both are read; use [`LostPushMessage::push_data`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LostPushMessage {
    #[serde(default)]
    pub shop_id: Option<u64>,
    pub code: u32,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "text_or_json")]
    pub data: Value,
}

impl LostPushMessage {
    /// The push's own `data` (what a live push carries under `data`), whichever way Shopee wrapped it.
    pub fn push_data(&self) -> Value {
        match &self.data {
            Value::Object(whole) if whole.contains_key("code") && whole.contains_key("data") => {
                whole.get("data").cloned().unwrap_or(Value::Null)
            }
            other => other.clone(),
        }
    }
}

/// JSON text is parsed; anything else is kept as it came.
fn text_or_json<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        other => other,
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetLostPushMessageResponse {
    #[serde(default)]
    pub push_message_list: Vec<LostPushMessage>,
    #[serde(default)]
    pub has_next_page: bool,
    /// Confirm with this once every message of the page is safely stored.
    #[serde(default)]
    pub last_message_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmConsumedRequest {
    pub last_message_id: u64,
}

impl ShopeeClient {
    /// `GET /api/v2/push/get_lost_push_message` (partner-level).
    pub async fn get_lost_push_message(&self) -> Result<GetLostPushMessageResponse> {
        self.public_call(&GET_LOST_PUSH_MESSAGE, &serde_json::json!({}))
            .await
    }

    /// `POST /api/v2/push/confirm_consumed_lost_push_message`: everything up to `last_message_id` is consumed.
    pub async fn confirm_consumed_lost_push_message(&self, last_message_id: u64) -> Result<()> {
        let _: serde_json::Value = self
            .public_call(
                &CONFIRM_CONSUMED_LOST_PUSH_MESSAGE,
                &ConfirmConsumedRequest { last_message_id },
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn data_is_read_as_documented_text_and_as_shopees_sample_object() {
        let text: LostPushMessage = serde_json::from_value(
            json!({"shop_id": 1, "code": 3, "timestamp": 5, "data": "{\"ordersn\":\"A1\",\"status\":\"READY_TO_SHIP\"}"}),
        )
        .unwrap();
        let object: LostPushMessage = serde_json::from_value(json!({"shop_id": 1, "code": 3, "timestamp": 5,
            "data": {"code": 3, "shop_id": 1, "timestamp": 5, "data": {"ordersn": "A1", "status": "READY_TO_SHIP"}}}))
        .unwrap();
        assert_eq!(
            text.push_data(),
            json!({"ordersn": "A1", "status": "READY_TO_SHIP"})
        );
        assert_eq!(object.push_data(), text.push_data());
    }
}
