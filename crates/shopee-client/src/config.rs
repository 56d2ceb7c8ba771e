//! How a [`crate::ShopeeClient`] is set up. Plain data: the binaries fill it from their environment.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::sign::PushSignatureMode;

/// Everything the client needs to reach Shopee.
#[derive(Clone)]
pub struct ClientConfig {
    /// e.g. `https://partner.shopeemobile.com` (no trailing slash needed).
    pub base_url: String,
    pub partner_id: u64,
    /// Never printed (see the `Debug` impl).
    pub partner_key: String,
    /// Whole request (send + answer) per attempt.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    pub rate_limit: RateLimitConfig,
    /// What the push `Authorization` header covers (unconfirmed in Shopee's docs, so configurable).
    pub push_signature_mode: PushSignatureMode,
    /// Refresh the access token when less than this is left.
    pub refresh_ahead: Duration,
}

impl ClientConfig {
    /// Defaults for everything but the partner credentials and the host.
    pub fn new(base_url: impl Into<String>, partner_id: u64, partner_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            partner_id,
            partner_key: partner_key.into(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
            rate_limit: RateLimitConfig::default(),
            push_signature_mode: PushSignatureMode::default(),
            refresh_ahead: Duration::from_secs(5 * 60),
        }
    }

    pub(crate) fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("partner_id", &self.partner_id)
            .field("partner_key", &"***")
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("push_signature_mode", &self.push_signature_mode)
            .field("refresh_ahead", &self.refresh_ahead)
            .finish()
    }
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first retry waits about this long; each further retry doubles it.
    pub base_delay: Duration,
    /// No computed wait exceeds this.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is cut to it (a caller that must wait longer gets the error instead).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Calls per second per shop (all replicas together) and optional per-API limits.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Default `SHOPEE_RATE_LIMIT_PER_SHOP` (10).
    pub per_shop: NonZeroU32,
    /// `api path` (e.g. `/api/v2/product/update_stock`) -> calls per second for that API in one shop, in addition to
    /// the shop limit.
    pub per_api: HashMap<String, NonZeroU32>,
    /// How many calls may go at once after a quiet period (1 = evenly spaced).
    pub burst: NonZeroU32,
    /// Prefix of the Redis keys (`{prefix}:{shop_id}` and `{prefix}:{shop_id}:{api}`).
    pub key_prefix: String,
    /// A caller never waits longer than this for a slot; past it the call fails as retryable.
    pub max_wait: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_shop: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            per_api: HashMap::new(),
            burst: NonZeroU32::MIN,
            key_prefix: "shopee:rl".to_owned(),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RateLimitConfig {
    /// Parses per-API overrides written `path=calls_per_second,...`, e.g.
    /// `/api/v2/product/update_stock=5,/api/v2/product/update_price=5` (for an environment variable).
    pub fn parse_per_api(raw: &str) -> Result<HashMap<String, NonZeroU32>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (api, rate) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("`{pair}` is not `api_path=calls_per_second`"))?;
                let api = api.trim();
                if !api.starts_with("/api/v2/") {
                    return Err(format!(
                        "`{api}` is not an API path (it must start with /api/v2/)"
                    ));
                }
                let rate: NonZeroU32 = rate.trim().parse().map_err(|_| {
                    format!(
                        "`{}` is not a whole number of calls per second above 0",
                        rate.trim()
                    )
                })?;
                Ok((api.to_owned(), rate))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_api_overrides_parse_and_explain_mistakes() {
        let m = RateLimitConfig::parse_per_api(
            " /api/v2/product/update_stock=5, /api/v2/product/update_price=2 ,",
        )
        .unwrap_or_default();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("/api/v2/product/update_stock").map(|r| r.get()), Some(5));
        assert!(RateLimitConfig::parse_per_api("").is_ok_and(|m| m.is_empty()));
        let e = RateLimitConfig::parse_per_api("/api/v2/x=0").unwrap_err();
        assert!(e.contains("above 0"), "{e}");
        assert!(RateLimitConfig::parse_per_api("update_stock=3").is_err());
        assert!(RateLimitConfig::parse_per_api("/api/v2/x").is_err());
    }

    #[test]
    fn debug_hides_the_partner_key() {
        let c = ClientConfig::new("http://h", 1, "super-secret-key");
        assert!(!format!("{c:?}").contains("super-secret-key"));
    }
}
