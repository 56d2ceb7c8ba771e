//! The client core: one `call` path that every typed API goes through (rate limit, token, sign, send, read the
//! envelope, classify, retry, refresh once on an invalid token, metrics and tracing).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use deadpool_redis::Pool;
use domain::ShopId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::config::ClientConfig;
use crate::envelope::{self, Answer, Endpoint, Method, MultipartBody, Scope, ShopAuth};
use crate::error::{Error, ErrorKind, Result, TransportFailure};
use crate::ratelimit::RateLimiter;
use crate::retry;
use crate::token::{NewTokens, TokenManager, TokenPair, TokenStore};

/// A Shopee Open Platform v2 client. Cheap to clone (an `Arc` inside); share one per process.
#[derive(Clone)]
pub struct ShopeeClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ClientConfig,
    http: reqwest::Client,
    limiter: RateLimiter,
    tokens: Option<TokenManager>,
}

/// Builds a [`ShopeeClient`].
pub struct ClientBuilder {
    cfg: ClientConfig,
    redis: Option<Pool>,
    tokens: Option<TokenStore>,
}

impl ClientBuilder {
    /// Shares rate limits with every replica through this Redis (without it, limits are per process).
    pub fn redis(mut self, pool: Pool) -> Self {
        self.redis = Some(pool);
        self
    }

    /// Where shop tokens live; required for shop-level APIs.
    pub fn token_store(mut self, store: TokenStore) -> Self {
        self.tokens = Some(store);
        self
    }

    pub fn build(self) -> Result<ShopeeClient> {
        if self.cfg.partner_key.is_empty() {
            return Err(Error::Config("SHOPEE_PARTNER_KEY is empty".to_owned()));
        }
        if self.cfg.retry.max_attempts == 0 {
            return Err(Error::Config("retry.max_attempts must be at least 1".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.cfg.connect_timeout)
            .timeout(self.cfg.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!(
                "seller-backend-shopee-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {}", e.without_url())))?;
        let limiter = RateLimiter::new(self.cfg.rate_limit.clone(), self.redis);
        let tokens = self.tokens.map(|s| TokenManager::new(s, self.cfg.refresh_ahead));
        Ok(ShopeeClient {
            inner: Arc::new(Inner {
                cfg: self.cfg,
                http,
                limiter,
                tokens,
            }),
        })
    }
}

/// Where a call is authorized from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Caller {
    Public,
    Shop(ShopId),
}

impl ShopeeClient {
    pub fn builder(cfg: ClientConfig) -> ClientBuilder {
        ClientBuilder {
            cfg,
            redis: None,
            tokens: None,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    pub fn token_store(&self) -> Option<&TokenStore> {
        self.inner.tokens.as_ref().map(|t| &t.store)
    }

    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    fn tokens(&self) -> Result<&TokenManager> {
        self.inner.tokens.as_ref().ok_or_else(|| {
            Error::Config(
                "shop-level APIs need a TokenStore (ShopeeClient::builder(..).token_store(..))".to_owned(),
            )
        })
    }

    /// The token pair a shop call would use now (refreshing it if it is about to expire).
    pub async fn shop_tokens(&self, shop_id: ShopId) -> Result<TokenPair> {
        let tokens = self.tokens()?;
        tokens
            .current(shop_id, |rt| self.refresh_for_store(shop_id, rt))
            .await
    }

    pub(crate) async fn forget_tokens(&self, shop_id: ShopId) {
        if let Some(t) = self.inner.tokens.as_ref() {
            t.forget(shop_id).await;
        }
    }

    pub(crate) async fn cache_tokens(&self, pair: TokenPair) {
        if let Some(t) = self.inner.tokens.as_ref() {
            t.set_cached(pair).await;
        }
    }

    /// `access_token/get` on behalf of the token store: a refused refresh token means the seller must authorize again.
    /// (Boxed: a shop call may refresh, and a refresh is itself a call.)
    fn refresh_for_store(
        &self,
        shop_id: ShopId,
        refresh_token: String,
    ) -> Pin<Box<dyn Future<Output = Result<NewTokens>> + Send + '_>> {
        Box::pin(async move {
            tracing::info!(shop.id = %shop_id, "refreshing Shopee access token");
            match self.refresh_access_token(shop_id, &refresh_token).await {
                Ok(t) => Ok(t),
                Err(Error::Permanent {
                    api,
                    code,
                    message,
                    request_id,
                    ..
                }) => Err(Error::Auth {
                    api,
                    shop_id: Some(shop_id),
                    code,
                    message,
                    request_id,
                }),
                Err(e) => Err(e),
            }
        })
    }

    /// Calls a shop-level API and decodes `response` into `R`.
    pub(crate) async fn shop_call<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        shop_id: ShopId,
        endpoint: &Endpoint,
        params: &Q,
    ) -> Result<R> {
        debug_assert_eq!(endpoint.scope, Scope::Shop);
        let answer = self.call(endpoint, Caller::Shop(shop_id), params, None).await?;
        decode(endpoint, answer)
    }

    /// Calls a public (partner-signed) API and decodes the payload into `R`.
    pub(crate) async fn public_call<Q: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        params: &Q,
    ) -> Result<R> {
        debug_assert_eq!(endpoint.scope, Scope::Public);
        let answer = self.call(endpoint, Caller::Public, params, None).await?;
        decode(endpoint, answer)
    }

    /// Calls a public (partner-signed) API with a `multipart/form-data` body (media uploads) and decodes `response`.
    pub(crate) async fn public_multipart_call<R: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        form: &MultipartBody,
    ) -> Result<R> {
        debug_assert_eq!(endpoint.scope, Scope::Public);
        debug_assert_eq!(endpoint.method, Method::Post);
        let answer = self
            .call(endpoint, Caller::Public, &Value::Null, Some(form))
            .await?;
        decode(endpoint, answer)
    }

    /// Calls a shop-level API with a `multipart/form-data` body (a file upload) and decodes `response`.
    pub(crate) async fn shop_multipart_call<R: DeserializeOwned>(
        &self,
        shop_id: ShopId,
        endpoint: &Endpoint,
        form: &MultipartBody,
    ) -> Result<R> {
        debug_assert_eq!(endpoint.scope, Scope::Shop);
        debug_assert_eq!(endpoint.method, Method::Post);
        let answer = self
            .call(endpoint, Caller::Shop(shop_id), &Value::Null, Some(form))
            .await?;
        decode(endpoint, answer)
    }

    async fn call<Q: Serialize + ?Sized>(
        &self,
        endpoint: &Endpoint,
        caller: Caller,
        params: &Q,
        form: Option<&MultipartBody>,
    ) -> Result<Answer> {
        let api = endpoint.path;
        let params = serde_json::to_value(params).map_err(|e| Error::InvalidRequest {
            api,
            problem: format!("parameters do not serialize: {e}"),
        })?;
        let span = tracing::info_span!(
            "shopee.call",
            api,
            shop.id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            attempts = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        if let Caller::Shop(s) = caller {
            span.record("shop.id", s.get());
        }
        let started = Instant::now();
        let result = self
            .call_with_retries(endpoint, caller, &params, form)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok((_, _)) => "ok",
            Err(e) => e.kind().as_str(),
        };
        span.record("outcome", outcome);
        span.record("duration_ms", started.elapsed().as_millis() as u64);
        let _enter = span.enter();
        match &result {
            Ok((_, attempts)) => {
                span.record("attempts", attempts);
                tracing::debug!("shopee call succeeded");
            }
            // Logged where handled by the caller; here only what happened, at debug.
            Err(e) => tracing::debug!(error = %e, "shopee call failed"),
        }
        result.map(|(a, _)| a)
    }

    async fn call_with_retries(
        &self,
        endpoint: &Endpoint,
        caller: Caller,
        params: &Value,
        form: Option<&MultipartBody>,
    ) -> Result<(Answer, u32)> {
        let cfg = &self.inner.cfg;
        let api = endpoint.path;
        let shop = match caller {
            Caller::Shop(s) => Some(s),
            Caller::Public => None,
        };
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        let mut forced: Option<TokenPair> = None;
        loop {
            attempt += 1;
            self.inner.limiter.acquire(shop, api).await?;
            let pair = match shop {
                Some(s) => Some(match forced.take() {
                    Some(p) => p,
                    None => self.shop_tokens(s).await?,
                }),
                None => None,
            };
            let auth = pair.as_ref().map(|p| ShopAuth {
                shop_id: p.shop_id,
                access_token: &p.access_token,
            });
            let t0 = Instant::now();
            let result = self.send_once(endpoint, shop, auth, params, form).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind().as_str(),
            };
            metrics::counter!("shopee_calls_total", "api" => api, "outcome" => outcome).increment(1);
            metrics::histogram!("shopee_call_duration_seconds", "api" => api)
                .record(t0.elapsed().as_secs_f64());
            let err = match result {
                Ok(a) => {
                    if let Some(w) = &a.warning {
                        tracing::debug!(warning = %w, "shopee answered with a warning");
                    }
                    return Ok((a, attempt));
                }
                Err(e) => e,
            };
            if let (Some(s), Some(p), true, false) = (shop, pair.as_ref(), err.is_invalid_token(), refreshed)
            {
                // Refresh once, then try once more with the new token (not counted as a retry).
                refreshed = true;
                attempt -= 1;
                let tokens = self.tokens()?;
                tracing::info!(shop.id = %s, "access token refused; refreshing once");
                let new = tokens
                    .after_rejection(s, p.generation, |rt| self.refresh_for_store(s, rt))
                    .await?;
                forced = Some(new);
                continue;
            }
            if attempt < cfg.retry.max_attempts && may_retry(endpoint, &err) {
                let wait = retry::backoff(&cfg.retry, attempt, err.retry_after());
                tracing::debug!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    kind = err.kind().as_str(),
                    code = err.shopee_code().unwrap_or(""),
                    "retrying shopee call"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(err);
        }
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        shop: Option<ShopId>,
        auth: Option<ShopAuth<'_>>,
        params: &Value,
        form: Option<&MultipartBody>,
    ) -> Result<Answer> {
        let cfg = &self.inner.cfg;
        let api = endpoint.path;
        let req = envelope::build_request(
            cfg.base(),
            cfg.partner_id,
            &cfg.partner_key,
            endpoint,
            auth,
            Utc::now().timestamp(),
            params,
        );
        let mut rb = match req.method {
            Method::Get => self.inner.http.get(&req.url),
            Method::Post => self.inner.http.post(&req.url),
        };
        rb = rb.query(&req.query).timeout(cfg.request_timeout);
        match form {
            // The common params stay in the query (signed as usual); the form is the whole body.
            Some(form) => {
                rb = rb
                    .header(reqwest::header::CONTENT_TYPE, form.content_type())
                    .body(form.bytes().to_vec());
            }
            None => {
                if let Some(body) = &req.body {
                    rb = rb.json(body);
                }
            }
        }
        let resp = rb.send().await.map_err(|e| Error::from_reqwest(api, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let body = resp.bytes().await.map_err(|e| Error::from_reqwest(api, e))?;
        envelope::read_answer(endpoint, shop, status, retry_after, &body, Utc::now())
    }
}

/// Whether a failed attempt may be repeated. Idempotent calls: any retryable error. Other calls: only when Shopee
/// certainly did not act (connection refused, throttled, busy), so a retry cannot double an effect.
pub(crate) fn may_retry(endpoint: &Endpoint, err: &Error) -> bool {
    if err.kind() != ErrorKind::Retryable {
        return false;
    }
    if endpoint.idempotent {
        return true;
    }
    match err {
        Error::Transport {
            failure: TransportFailure::Connect,
            ..
        } => true,
        Error::Retryable {
            code, http_status, ..
        } => {
            *http_status == Some(429)
                || matches!(
                    code.as_str(),
                    "error_rate_limit" | "error_system_busy" | "logistics.error_too_many_invoke_function"
                )
        }
        _ => false,
    }
}

fn decode<R: DeserializeOwned>(endpoint: &Endpoint, answer: Answer) -> Result<R> {
    let Answer {
        request_id, payload, ..
    } = answer;
    // An absent `response` on an API that answers nothing is an empty object.
    let payload = if payload.is_null() {
        Value::Object(Default::default())
    } else {
        payload
    };
    serde_json::from_value(payload).map_err(|e| Error::Decode {
        api: endpoint.path,
        request_id,
        // serde's message names the field and type, never the value.
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retryable(code: &str, status: Option<u16>) -> Error {
        Error::Retryable {
            api: "/x",
            code: code.into(),
            message: String::new(),
            request_id: String::new(),
            http_status: status,
            retry_after: None,
        }
    }

    #[test]
    fn non_idempotent_calls_retry_only_when_shopee_did_not_act() {
        let add = Endpoint::post("/api/v2/discount/add_discount").not_idempotent();
        let upd = Endpoint::post("/api/v2/product/update_price");
        assert!(may_retry(&add, &retryable("error_rate_limit", Some(200))));
        assert!(may_retry(&add, &retryable("", Some(429))));
        assert!(!may_retry(&add, &retryable("error_server", Some(500))));
        assert!(!may_retry(&add, &retryable("", Some(503))));
        let timeout = Error::Transport {
            api: "/x",
            failure: TransportFailure::Timeout,
            detail: String::new(),
        };
        let refused = Error::Transport {
            api: "/x",
            failure: TransportFailure::Connect,
            detail: String::new(),
        };
        assert!(!may_retry(&add, &timeout));
        assert!(may_retry(&add, &refused));
        assert!(may_retry(&upd, &timeout));
        assert!(may_retry(&upd, &retryable("error_server", Some(500))));
        let perm = Error::Permanent {
            api: "/x",
            code: "error_param".into(),
            message: String::new(),
            request_id: String::new(),
            http_status: Some(400),
        };
        assert!(!may_retry(&upd, &perm));
    }
}
