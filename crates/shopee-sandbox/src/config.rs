//! What the sandbox is configured with. Where Shopee's behaviour is unconfirmed, the choice is a field here.

use std::time::Duration;

use axum::http::StatusCode;
use shopee_client::sign::PushSignatureMode;

/// The sandbox's configuration. Build it with [`SandboxConfig::new`] and change fields as needed.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub partner_id: u64,
    pub partner_key: String,
    /// Where order pushes are POSTed; `None` = every push is "lost" (kept for `get_lost_push_message`).
    pub push_callback_url: Option<String>,
    /// The key pushes are signed with; `None` = `partner_key`.
    pub push_partner_key: Option<String>,
    /// What the push `Authorization` header covers (unconfirmed at Shopee: URL + body by default).
    pub push_signature_mode: PushSignatureMode,
    /// Accepted distance between a request's `timestamp` and now (Shopee: 5 minutes).
    pub timestamp_window: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long the previous access token stays valid after a refresh (Shopee: 5 minutes).
    pub old_access_token_grace: Duration,
    pub auth_code_ttl: Duration,
    /// The HTTP status of an `error_rate_limit` answer when a configured rate limit is exceeded (unconfirmed at
    /// Shopee whether 429 or 200 is used; faults can produce either).
    pub rate_limit_status: StatusCode,
    /// The error code for an invalid or expired access token (`error_auth`; some APIs answer `invalid_acceess_token`).
    pub invalid_token_error: String,
    /// How long an outlet batch task stays `processing` before its result is available.
    pub batch_task_delay: Duration,
    /// The shop `auth_partner` authorizes when the request names none (sandbox extension: `&shop_id=`).
    pub default_shop_id: Option<u64>,
    /// Accept Shopee's sample spelling `logistic_pickup_done` (etc.) as well as `logistics_pickup_done`.
    pub accept_logistic_spelling: bool,
    /// Send a push when an order is seeded (not only when its status changes).
    pub push_on_seed: bool,
    /// Timeout of one push delivery (Shopee expects an answer within 3 s).
    pub push_timeout: Duration,
    /// The journal keeps at most this many entries (the oldest are dropped).
    pub journal_capacity: usize,
}

impl SandboxConfig {
    pub fn new(partner_id: u64, partner_key: impl Into<String>) -> Self {
        Self {
            partner_id,
            partner_key: partner_key.into(),
            push_callback_url: None,
            push_partner_key: None,
            push_signature_mode: PushSignatureMode::UrlAndBody,
            timestamp_window: Duration::from_secs(300),
            access_token_ttl: Duration::from_secs(4 * 3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            old_access_token_grace: Duration::from_secs(300),
            auth_code_ttl: Duration::from_secs(600),
            rate_limit_status: StatusCode::TOO_MANY_REQUESTS,
            invalid_token_error: "error_auth".to_owned(),
            batch_task_delay: Duration::from_millis(100),
            default_shop_id: None,
            accept_logistic_spelling: true,
            push_on_seed: true,
            push_timeout: Duration::from_secs(3),
            journal_capacity: 100_000,
        }
    }

    pub fn with_push_callback(mut self, url: impl Into<String>) -> Self {
        self.push_callback_url = Some(url.into());
        self
    }

    pub(crate) fn push_key(&self) -> &str {
        self.push_partner_key.as_deref().unwrap_or(&self.partner_key)
    }
}

impl Default for SandboxConfig {
    /// Partner 1000001 with key `sandbox-partner-key`.
    fn default() -> Self {
        Self::new(1_000_001, "sandbox-partner-key")
    }
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
