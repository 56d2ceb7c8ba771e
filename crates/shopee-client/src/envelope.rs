//! Request building (common parameters, GET vs POST placement) and reading Shopee's answer envelope.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ShopId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, FailedAnswer, from_answer};
use crate::sign;

/// HTTP method of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Whether an API is signed as a shop call (with access_token + shop_id) or as a public (partner) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Shop,
    Public,
}

/// One Shopee API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub path: &'static str,
    pub method: Method,
    pub scope: Scope,
    /// Repeating the call cannot double its effect (it reads, or sets absolute values). A call that is not
    /// idempotent is retried only when Shopee certainly did not process it (connect error, 429, rate limit, busy).
    pub idempotent: bool,
    /// The answer's fields are at the top level (auth endpoints), not under `response`.
    pub top_level: bool,
}

impl Endpoint {
    pub const fn get(path: &'static str) -> Self {
        Self {
            path,
            method: Method::Get,
            scope: Scope::Shop,
            idempotent: true,
            top_level: false,
        }
    }
    pub const fn post(path: &'static str) -> Self {
        Self {
            path,
            method: Method::Post,
            scope: Scope::Shop,
            idempotent: true,
            top_level: false,
        }
    }
    pub const fn not_idempotent(mut self) -> Self {
        self.idempotent = false;
        self
    }
    pub const fn public(mut self) -> Self {
        self.scope = Scope::Public;
        self
    }
    pub const fn top_level(mut self) -> Self {
        self.top_level = true;
        self
    }
}

/// A request ready to send: where, which query pairs, which JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltRequest {
    pub method: Method,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// A `multipart/form-data` body (media uploads): the common params still go in the query.
#[derive(Clone)]
pub struct MultipartBody {
    boundary: String,
    bytes: Vec<u8>,
    /// (part name, carries a file), in order.
    parts: Vec<(String, bool)>,
}

impl std::fmt::Debug for MultipartBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the file's bytes.
        f.debug_struct("MultipartBody")
            .field("boundary", &self.boundary)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl MultipartBody {
    /// One file part named `field` (file name and content type as given; quotes and line breaks are dropped from
    /// them so they cannot break the part's headers).
    pub fn file(field: &str, file_name: &str, content_type: &str, data: &[u8]) -> Self {
        let clean = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\'))
                .collect::<String>()
        };
        let boundary = format!("----seller-backend-{:032x}", rand::random::<u128>());
        let mut bytes = Vec::with_capacity(data.len() + 256);
        bytes.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                clean(field),
                clean(file_name),
                clean(content_type),
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Self {
            boundary,
            bytes,
            parts: vec![(clean(field), true)],
        }
    }

    /// The `Content-Type` header value, with the boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parts' names, each with whether it carries a file.
    pub fn parts(&self) -> &[(String, bool)] {
        &self.parts
    }
}

/// Shop credentials for a shop-level call.
#[derive(Clone, Copy)]
pub struct ShopAuth<'a> {
    pub shop_id: ShopId,
    pub access_token: &'a str,
}

/// Builds a signed request: the common params (`partner_id`, `timestamp`, `sign`, and `access_token` + `shop_id`
/// for shop APIs) always go in the query; the API's own params go in the query for GET and as the JSON body for POST.
pub fn build_request(
    base_url: &str,
    partner_id: u64,
    partner_key: &str,
    endpoint: &Endpoint,
    shop: Option<ShopAuth<'_>>,
    timestamp: i64,
    params: &Value,
) -> BuiltRequest {
    let sign = match shop {
        Some(s) => sign::sign_shop(
            partner_key,
            partner_id,
            endpoint.path,
            timestamp,
            s.access_token,
            s.shop_id.get(),
        ),
        None => sign::sign_public(partner_key, partner_id, endpoint.path, timestamp),
    };
    let mut query = vec![
        ("partner_id".to_owned(), partner_id.to_string()),
        ("timestamp".to_owned(), timestamp.to_string()),
        ("sign".to_owned(), sign),
    ];
    if let Some(s) = shop {
        query.push(("access_token".to_owned(), s.access_token.to_owned()));
        query.push(("shop_id".to_owned(), s.shop_id.to_string()));
    }
    let body = match endpoint.method {
        Method::Get => {
            query.extend(query_pairs(params));
            None
        }
        Method::Post => Some(params.clone()),
    };
    BuiltRequest {
        method: endpoint.method,
        url: format!("{}{}", base_url.trim_end_matches('/'), endpoint.path),
        query,
        body,
    }
}

/// A GET request's params as query pairs: scalars as text, arrays as one pair per element (a repeated key, as
/// Shopee's array parameters such as `item_status` / `item_id_list` are sent), nulls left out, objects as JSON text.
/// A list Shopee documents as one comma-separated `string` is serialized as such by its request type
/// (`api::comma_list`).
pub fn query_pairs(params: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = params else {
        return Vec::new();
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        match v {
            Value::Array(items) => {
                pairs.extend(items.iter().filter_map(scalar_text).map(|t| (k.clone(), t)));
            }
            other => pairs.extend(scalar_text(other).map(|t| (k.clone(), t))),
        }
    }
    pairs
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    }
}

/// Shopee's envelope: `request_id`, `error` (empty on success), `message`, `warning`, `response`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub warning: Option<Value>,
    #[serde(default)]
    pub response: Option<Value>,
}

/// What a successful answer carried.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    pub warning: Option<Value>,
    /// `response` (or, for top-level endpoints, the whole body).
    pub payload: Value,
}

/// Reads an answer whatever its HTTP status: an `error` in the envelope wins; without one, a non-2xx status is a
/// failure classified by the status.
pub fn read_answer(
    endpoint: &Endpoint,
    shop_id: Option<ShopId>,
    http_status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Answer, Error> {
    let api = endpoint.path;
    let whole: Option<Value> = serde_json::from_slice(body).ok();
    let env: Option<Envelope> = whole.as_ref().and_then(|v| Envelope::deserialize(v).ok());
    let env_ref = env.as_ref();
    let request_id = env_ref.and_then(|e| e.request_id.clone()).unwrap_or_default();
    let code = env_ref.and_then(|e| e.error.clone()).unwrap_or_default();
    let message = env_ref.and_then(|e| e.message.clone()).unwrap_or_default();
    let success_status = (200..300).contains(&http_status);
    if !code.is_empty() || !success_status {
        let message = if env.is_none() && !success_status {
            format!("HTTP {http_status} without a Shopee envelope")
        } else {
            message
        };
        return Err(from_answer(
            &FailedAnswer {
                api,
                shop_id,
                http_status,
                code: &code,
                message: &message,
                request_id: &request_id,
                retry_after,
            },
            now,
        ));
    }
    let Some(whole) = whole else {
        return Err(Error::Decode {
            api,
            request_id,
            detail: "the body is not JSON".to_owned(),
        });
    };
    let warning = env.and_then(|e| e.warning).filter(|w| !is_empty_warning(w));
    let payload = if endpoint.top_level {
        whole
    } else {
        match whole {
            Value::Object(mut m) => m.remove("response").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    };
    Ok(Answer {
        request_id,
        warning,
        payload,
    })
}

fn is_empty_warning(w: &Value) -> bool {
    match w {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::error::ErrorKind;

    const GET_EP: Endpoint = Endpoint::get("/api/v2/order/get_order_detail");
    const POST_EP: Endpoint = Endpoint::post("/api/v2/product/update_price");

    fn shop() -> ShopAuth<'static> {
        ShopAuth {
            shop_id: ShopId::new(14701711).unwrap(),
            access_token: "59777174636562737266615546704c6d",
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-26T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn get_puts_everything_in_the_query() {
        let params = json!({"order_sn_list": "A1,B2", "item_status": ["NORMAL", "UNLIST"], "cursor": "", "nothing": null});
        let r = build_request(
            "http://h/",
            2001887,
            "key",
            &GET_EP,
            Some(shop()),
            1655714431,
            &params,
        );
        assert_eq!(r.url, "http://h/api/v2/order/get_order_detail");
        assert!(r.body.is_none());
        let statuses: Vec<&str> = r
            .query
            .iter()
            .filter(|(k, _)| k == "item_status")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(statuses, ["NORMAL", "UNLIST"], "an array is a repeated key");
        let q: std::collections::HashMap<_, _> = r.query.iter().cloned().collect();
        assert_eq!(q["partner_id"], "2001887");
        assert_eq!(q["timestamp"], "1655714431");
        assert_eq!(q["shop_id"], "14701711");
        assert_eq!(q["access_token"], "59777174636562737266615546704c6d");
        assert_eq!(q["order_sn_list"], "A1,B2");
        assert_eq!(q["cursor"], "");
        assert!(!q.contains_key("nothing"));
        let expected = sign::sign_shop(
            "key",
            2001887,
            "/api/v2/order/get_order_detail",
            1655714431,
            "59777174636562737266615546704c6d",
            14701711,
        );
        assert_eq!(q["sign"], expected);
    }

    #[test]
    fn post_keeps_params_in_the_body() {
        let params = json!({"item_id": 1, "price_list": [{"model_id": 0, "original_price": 12.9}]});
        let r = build_request("http://h", 1, "key", &POST_EP, Some(shop()), 100, &params);
        assert_eq!(r.body.as_ref(), Some(&params));
        let keys: Vec<_> = r.query.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["partner_id", "timestamp", "sign", "access_token", "shop_id"]
        );
    }

    #[test]
    fn public_calls_sign_without_token_or_shop() {
        let ep = Endpoint::post("/api/v2/auth/token/get").public().top_level();
        let r = build_request("http://h", 7, "key", &ep, None, 100, &json!({"code": "c"}));
        let keys: Vec<_> = r.query.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["partner_id", "timestamp", "sign"]);
        assert_eq!(
            r.query[2].1,
            sign::sign_public("key", 7, "/api/v2/auth/token/get", 100)
        );
    }

    #[test]
    fn reads_success_and_errors_whatever_the_status() {
        let ok = br#"{"request_id":"r1","error":"","message":"","response":{"more":false}}"#;
        let a = read_answer(&GET_EP, None, 200, None, ok, now()).unwrap();
        assert_eq!(a.request_id, "r1");
        assert_eq!(a.payload, json!({"more": false}));

        let busy = br#"{"request_id":"r2","error":"error_system_busy","message":"busy"}"#;
        let e = read_answer(&GET_EP, None, 200, None, busy, now()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Retryable);
        assert_eq!(e.request_id(), Some("r2"));

        let perm = br#"{"request_id":"r3","error":"error_param","message":"bad"}"#;
        let e = read_answer(&GET_EP, None, 400, None, perm, now()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);

        let e = read_answer(&GET_EP, None, 502, None, b"<html>bad gateway</html>", now()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Retryable);
        let e = read_answer(&GET_EP, None, 429, Some(Duration::from_secs(2)), b"", now()).unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        let e = read_answer(&GET_EP, None, 200, None, b"not json", now()).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }));
        // error: null counts as success.
        let a = read_answer(
            &GET_EP,
            None,
            200,
            None,
            br#"{"error":null,"response":{}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(a.payload, json!({}));
    }

    #[test]
    fn top_level_endpoints_keep_the_whole_body() {
        let ep = Endpoint::post("/api/v2/auth/token/get").public().top_level();
        let body =
            br#"{"request_id":"r","error":"","access_token":"a","refresh_token":"b","expire_in":14400}"#;
        let a = read_answer(&ep, None, 200, None, body, now()).unwrap();
        assert_eq!(a.payload["expire_in"], 14400);
    }

    proptest! {
        #[test]
        fn signature_is_always_in_the_query(path in "/api/v2/[a-z_]{1,20}/[a-z_]{1,20}", ts in 0i64..4_000_000_000, post in any::<bool>(), token in "[a-f0-9]{32}") {
            let path: &'static str = Box::leak(path.into_boxed_str());
            let ep = if post { Endpoint::post(path) } else { Endpoint::get(path) };
            let auth = ShopAuth { shop_id: ShopId::new(5).unwrap(), access_token: &token };
            let r = build_request("http://h", 9, "k", &ep, Some(auth), ts, &json!({"a": 1}));
            let sign = r.query.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.clone()).unwrap();
            prop_assert_eq!(sign, sign::sign_shop("k", 9, path, ts, &token, 5));
            prop_assert_eq!(r.body.is_some(), post);
            prop_assert_eq!(r.query.iter().any(|(k, _)| k == "a"), !post);
        }

        #[test]
        fn any_error_code_fails_the_call(code in "[a-z_.]{1,30}", status in 200u16..600) {
            let body = serde_json::to_vec(&json!({"request_id": "x", "error": code, "message": "m", "response": {}})).unwrap();
            prop_assert!(read_answer(&GET_EP, None, status, None, &body, now()).is_err());
        }
    }
}
