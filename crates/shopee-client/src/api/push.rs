//! Push recovery: pushes Shopee could not deliver (last 3 days, up to 100 per call).

use serde::{Deserialize, Serialize};

use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::Result;

pub const GET_LOST_PUSH_MESSAGE: Endpoint = Endpoint::get("/api/v2/push/get_lost_push_message").public();
/// Idempotent: confirming the same id twice is harmless.
pub const CONFIRM_CONSUMED_LOST_PUSH_MESSAGE: Endpoint =
    Endpoint::post("/api/v2/push/confirm_consumed_lost_push_message").public();

/// One lost push. `data` is the push's `data` as a JSON string (parse it like a live push's `data`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LostPushMessage {
    #[serde(default)]
    pub shop_id: Option<u64>,
    pub code: u32,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub data: String,
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
