//! Shop authorization: the auth link, exchanging a code, refreshing the pair.

use chrono::{DateTime, Utc};
use domain::ShopId;
use serde::{Deserialize, Serialize};

use crate::client::ShopeeClient;
use crate::envelope::Endpoint;
use crate::error::{Error, Result};
use crate::sign;
use crate::token::{NewTokens, TokenPair};

pub const AUTH_PARTNER: &str = "/api/v2/shop/auth_partner";
/// Exchanges a single-use code: never retried blindly (not idempotent).
pub const TOKEN_GET: Endpoint = Endpoint::post("/api/v2/auth/token/get")
    .public()
    .top_level()
    .not_idempotent();
/// Spends a single-use refresh token: never retried blindly (not idempotent).
pub const ACCESS_TOKEN_GET: Endpoint = Endpoint::post("/api/v2/auth/access_token/get")
    .public()
    .top_level()
    .not_idempotent();

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenGetRequest {
    pub code: String,
    pub partner_id: u64,
    pub shop_id: u64,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub refresh_token: String,
    pub partner_id: u64,
    pub shop_id: u64,
}

/// `token/get` and `access_token/get` answer at the top level.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: String,
    #[serde(default)]
    pub expire_in: u64,
    #[serde(default)]
    pub shop_id_list: Vec<u64>,
    #[serde(default)]
    pub merchant_id_list: Vec<u64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expire_in", &self.expire_in)
            .field("shop_id_list", &self.shop_id_list)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    fn into_new_tokens(self, api: &'static str) -> Result<NewTokens> {
        if self.access_token.is_empty() || self.refresh_token.is_empty() {
            return Err(Error::Decode {
                api,
                request_id: String::new(),
                detail: "no access_token or refresh_token in the answer".to_owned(),
            });
        }
        Ok(NewTokens {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expire_in: self.expire_in,
        })
    }
}

impl ShopeeClient {
    /// The URL a seller opens to authorize the app: `{host}/api/v2/shop/auth_partner?partner_id&timestamp&sign&redirect`.
    /// The seller comes back to `redirect` with `?code=..&shop_id=..`. The link is valid for Shopee's 5-minute
    /// timestamp window from `now` (unix seconds).
    pub fn auth_link(&self, redirect: &str, now: i64) -> String {
        let cfg = self.config();
        let sign = sign::sign_public(&cfg.partner_key, cfg.partner_id, AUTH_PARTNER, now);
        let query = [
            ("partner_id", cfg.partner_id.to_string()),
            ("timestamp", now.to_string()),
            ("sign", sign),
            ("redirect", redirect.to_owned()),
        ];
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        format!("{}{AUTH_PARTNER}?{}", cfg.base(), encoded.join("&"))
    }

    /// `POST /api/v2/auth/token/get`: exchanges an authorization code (single use, 10 minutes) for a pair. Does not
    /// store it: see [`ShopeeClient::authorize_shop`].
    pub async fn exchange_code(&self, shop_id: ShopId, code: &str) -> Result<NewTokens> {
        let req = TokenGetRequest {
            code: code.to_owned(),
            partner_id: self.config().partner_id,
            shop_id: shop_id.get(),
        };
        let resp: TokenResponse = self.public_call(&TOKEN_GET, &req).await?;
        resp.into_new_tokens(TOKEN_GET.path)
    }

    /// `POST /api/v2/auth/access_token/get`: spends `refresh_token` for a NEW pair. Low level: shop calls refresh
    /// through the token store, single-flight; call this directly only outside of it.
    pub async fn refresh_access_token(&self, shop_id: ShopId, refresh_token: &str) -> Result<NewTokens> {
        let req = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
            partner_id: self.config().partner_id,
            shop_id: shop_id.get(),
        };
        let resp: TokenResponse = self.public_call(&ACCESS_TOKEN_GET, &req).await?;
        resp.into_new_tokens(ACCESS_TOKEN_GET.path)
    }

    /// Exchanges the code from the auth callback and stores the pair (encrypted) with the shop's authorization
    /// (`authorization_expires_at`, or 365 days from now when Shopee did not say).
    pub async fn authorize_shop(
        &self,
        shop_id: ShopId,
        code: &str,
        authorization_expires_at: Option<DateTime<Utc>>,
    ) -> Result<TokenPair> {
        let store = self
            .token_store()
            .ok_or_else(|| Error::Config("authorize_shop needs a TokenStore".to_owned()))?
            .clone();
        let tokens = self.exchange_code(shop_id, code).await?;
        let pair = store
            .store_authorization(shop_id, &tokens, authorization_expires_at)
            .await?;
        self.cache_tokens(pair.clone()).await;
        tracing::info!(shop.id = %shop_id, "shop authorized");
        Ok(pair)
    }
}

impl ShopeeClient {
    /// The shop withdrew its authorization (push code 2): deletes its tokens and marks the shop; later calls for it
    /// fail with `NotAuthorized` until it authorizes again.
    pub async fn deauthorize_shop(&self, shop_id: ShopId) -> Result<()> {
        let store = self
            .token_store()
            .ok_or_else(|| Error::Config("deauthorize_shop needs a TokenStore".to_owned()))?;
        store.deauthorize(shop_id).await?;
        self.forget_tokens(shop_id).await;
        tracing::info!(shop.id = %shop_id, "shop deauthorized");
        Ok(())
    }
}

/// RFC 3986 unreserved characters stay; everything else is %-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::ClientConfig;

    #[test]
    fn auth_link_is_publicly_signed() {
        let client = ShopeeClient::builder(ClientConfig::new("https://partner.shopeemobile.com/", 7, "key"))
            .build()
            .unwrap();
        let link = client.auth_link("https://x.test/shopee/auth/callback?a=1", 1_700_000_000);
        let sign = sign::sign_public("key", 7, AUTH_PARTNER, 1_700_000_000);
        assert_eq!(
            link,
            format!(
                "https://partner.shopeemobile.com/api/v2/shop/auth_partner?partner_id=7&timestamp=1700000000&sign={sign}&redirect=https%3A%2F%2Fx.test%2Fshopee%2Fauth%2Fcallback%3Fa%3D1"
            )
        );
    }

    #[test]
    fn token_response_debug_hides_tokens() {
        let r: TokenResponse = serde_json::from_str(
            r#"{"access_token":"AAA","refresh_token":"RRR","expire_in":14400,"request_id":"x","error":""}"#,
        )
        .unwrap();
        let d = format!("{r:?}");
        assert!(!d.contains("AAA") && !d.contains("RRR"), "{d}");
    }
}
