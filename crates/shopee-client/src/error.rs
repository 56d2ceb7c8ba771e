//! One error type for everything the client does, classified so a caller knows what to do next.
//!
//! Shopee answers errors in an envelope (`error`, `message`, `request_id`), with HTTP 200 or 4xx/5xx. The envelope's
//! `error` code decides the class; the HTTP status only decides when no code came back. No variant ever holds an
//! access token, refresh token, `sign` or partner key, and transport errors are stripped of their URL (which carries
//! the token and signature in its query).

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, TimeZone, Utc};
use domain::ShopId;

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Transient: the same call may succeed later (the client already retried with backoff).
    Retryable,
    /// The shop's access token was refused even after a refresh, or the shop has no usable tokens: the seller must
    /// authorize the app again (auth link).
    Auth,
    /// The daily quota is spent: wait until the instant carried by the error (00:00 UTC+8).
    Quota,
    /// Retrying the same request will fail the same way: fix the request, the data or the permission.
    Permanent,
}

impl ErrorKind {
    /// The label used in metrics (`outcome`) and spans.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Retryable => "retryable",
            ErrorKind::Auth => "auth",
            ErrorKind::Quota => "quota",
            ErrorKind::Permanent => "permanent",
        }
    }
}

/// What the transport layer failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    Connect,
    Timeout,
    /// The connection broke while sending or reading.
    Io,
}

/// Every failure of the Shopee client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Shopee (or the network in front of it) failed transiently: server errors, busy, rate limit, HTTP 429/5xx.
    #[error(
        "Shopee {api} failed transiently ({}: {message}; HTTP {}; request_id {request_id}); retry later with backoff",
        code_or_http(code),
        status_text(*http_status)
    )]
    Retryable {
        api: &'static str,
        code: String,
        message: String,
        request_id: String,
        http_status: Option<u16>,
        /// Shopee's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed, timed out or broke.
    #[error(
        "Shopee {api} could not be reached ({failure:?}: {detail}); check connectivity, it is retried with backoff"
    )]
    Transport {
        api: &'static str,
        failure: TransportFailure,
        detail: String,
    },
    /// The access token was refused after a refresh, or no valid token pair exists.
    #[error(
        "Shopee refused the credentials of shop {} on {api} ({code}: {message}; request_id {request_id}); the seller must authorize the app again",
        shop_id.map_or_else(|| "-".to_owned(), |s| s.to_string())
    )]
    Auth {
        api: &'static str,
        shop_id: Option<ShopId>,
        code: String,
        message: String,
        request_id: String,
    },
    /// No token pair is stored for the shop.
    #[error(
        "shop {shop_id} has no stored Shopee tokens; the seller must open the auth link and authorize the app"
    )]
    NotAuthorized { shop_id: ShopId },
    /// `error_limit`: the daily quota is spent.
    #[error(
        "Shopee daily quota spent on {api} (request_id {request_id}); wait until {reset_at} (00:00 UTC+8)"
    )]
    Quota {
        api: &'static str,
        request_id: String,
        reset_at: DateTime<Utc>,
    },
    /// Shopee refused the request for a reason a retry will not fix.
    #[error(
        "Shopee refused {api} ({}: {message}; HTTP {}; request_id {request_id}); fix the request or the data, retrying will not help",
        code_or_http(code),
        status_text(*http_status)
    )]
    Permanent {
        api: &'static str,
        code: String,
        message: String,
        request_id: String,
        http_status: Option<u16>,
    },
    /// The request broke one of Shopee's documented limits before it was sent.
    #[error("invalid request to Shopee {api}: {problem}")]
    InvalidRequest { api: &'static str, problem: String },
    /// Shopee answered success with a body we cannot read.
    #[error(
        "Shopee {api} answered a body this client cannot read ({detail}; request_id {request_id}); Shopee may have changed the API: report it"
    )]
    Decode {
        api: &'static str,
        request_id: String,
        detail: String,
    },
    /// The token table could not be read or written.
    #[error("token store failed ({0}); check DATABASE_URL and that PostgreSQL is up")]
    Storage(String),
    /// A stored token could not be decrypted.
    #[error(
        "stored tokens of shop {shop_id} cannot be decrypted; TOKEN_ENCRYPTION_KEY differs from the key they were written with"
    )]
    Crypto { shop_id: ShopId },
    /// The client was used in a way its configuration does not allow.
    #[error("shopee client misconfigured: {0}")]
    Config(String),
}

fn code_or_http(code: &str) -> &str {
    if code.is_empty() { "no error code" } else { code }
}

fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Retryable { .. } | Error::Transport { .. } | Error::Storage(_) => ErrorKind::Retryable,
            Error::Auth { .. } | Error::NotAuthorized { .. } | Error::Crypto { .. } => ErrorKind::Auth,
            Error::Quota { .. } => ErrorKind::Quota,
            Error::Permanent { .. }
            | Error::InvalidRequest { .. }
            | Error::Decode { .. }
            | Error::Config(_) => ErrorKind::Permanent,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Retryable
    }

    /// Shopee's error code, when the error came from Shopee's envelope.
    pub fn shopee_code(&self) -> Option<&str> {
        match self {
            Error::Retryable { code, .. } | Error::Auth { code, .. } | Error::Permanent { code, .. } => {
                Some(code.as_str()).filter(|c| !c.is_empty())
            }
            Error::Quota { .. } => Some("error_limit"),
            _ => None,
        }
    }

    /// Shopee's request id, when there was an answer.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Retryable { request_id, .. }
            | Error::Auth { request_id, .. }
            | Error::Quota { request_id, .. }
            | Error::Permanent { request_id, .. }
            | Error::Decode { request_id, .. } => Some(request_id.as_str()).filter(|r| !r.is_empty()),
            _ => None,
        }
    }

    /// How long Shopee asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when the answer means "this access token is not valid" (refresh once, then fail).
    pub(crate) fn is_invalid_token(&self) -> bool {
        matches!(self, Error::Auth { .. })
    }

    pub(crate) fn from_reqwest(api: &'static str, e: reqwest::Error) -> Self {
        let failure = if e.is_timeout() {
            TransportFailure::Timeout
        } else if e.is_connect() {
            TransportFailure::Connect
        } else {
            TransportFailure::Io
        };
        // The URL holds access_token and sign in its query: never keep it.
        let detail = e.without_url().to_string();
        Error::Transport { api, failure, detail }
    }
}

/// The class Shopee's `error` code belongs to, before the HTTP status is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    Retryable,
    InvalidToken,
    Quota,
    Permanent,
}

/// Codes worth retrying with backoff (shopee-api.md, "Errors worth retrying").
pub const RETRYABLE_CODES: &[&str] = &[
    "error_server",
    "error_inner",
    "error_system_busy",
    "error_network",
    "error_rate_limit",
    "logistics.error_too_many_invoke_function",
];

/// Classifies Shopee's `error` code (and `message`, for `error_auth`).
pub fn classify_code(code: &str, message: &str) -> CodeClass {
    if RETRYABLE_CODES.contains(&code) {
        return CodeClass::Retryable;
    }
    match code {
        "error_limit" => CodeClass::Quota,
        // Shopee's own spelling, and the generic auth error when it is about the access token.
        "invalid_acceess_token" | "invalid_access_token" => CodeClass::InvalidToken,
        "error_auth" if message.to_ascii_lowercase().contains("access_token") => CodeClass::InvalidToken,
        _ => CodeClass::Permanent,
    }
}

/// A Shopee answer that carried `error` (or a non-2xx HTTP status without one).
#[derive(Debug, Clone)]
pub(crate) struct FailedAnswer<'a> {
    pub api: &'static str,
    pub shop_id: Option<ShopId>,
    pub http_status: u16,
    pub code: &'a str,
    pub message: &'a str,
    pub request_id: &'a str,
    pub retry_after: Option<Duration>,
}

/// The error for a failed answer; `now` fixes the quota reset instant.
pub(crate) fn from_answer(a: &FailedAnswer<'_>, now: DateTime<Utc>) -> Error {
    let FailedAnswer {
        api,
        shop_id,
        http_status,
        code,
        message,
        request_id,
        retry_after,
    } = *a;
    let retryable = || Error::Retryable {
        api,
        code: code.to_owned(),
        message: message.to_owned(),
        request_id: request_id.to_owned(),
        http_status: Some(http_status),
        retry_after,
    };
    if code.is_empty() {
        // No code: the HTTP status decides.
        return if http_status == 429 || http_status >= 500 {
            retryable()
        } else {
            Error::Permanent {
                api,
                code: String::new(),
                message: message.to_owned(),
                request_id: request_id.to_owned(),
                http_status: Some(http_status),
            }
        };
    }
    match classify_code(code, message) {
        CodeClass::Retryable => retryable(),
        CodeClass::Quota => Error::Quota {
            api,
            request_id: request_id.to_owned(),
            reset_at: next_quota_reset(now),
        },
        CodeClass::InvalidToken => Error::Auth {
            api,
            shop_id,
            code: code.to_owned(),
            message: message.to_owned(),
            request_id: request_id.to_owned(),
        },
        // A code Shopee does not list as retryable is permanent even under 5xx: a retry would double an effect
        // Shopee says it refused for a reason. 429 without a retryable code is still a throttle.
        CodeClass::Permanent if http_status == 429 => retryable(),
        CodeClass::Permanent => Error::Permanent {
            api,
            code: code.to_owned(),
            message: message.to_owned(),
            request_id: request_id.to_owned(),
            http_status: Some(http_status),
        },
    }
}

/// The next 00:00 in UTC+8 strictly after `now`, when Shopee's daily quota resets.
pub fn next_quota_reset(now: DateTime<Utc>) -> DateTime<Utc> {
    let tz = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!());
    let local = now.with_timezone(&tz);
    let next_day = local.date_naive() + ChronoDuration::days(1);
    let midnight = next_day.and_hms_opt(0, 0, 0).unwrap_or_else(|| unreachable!());
    tz.from_local_datetime(&midnight)
        .single()
        .map_or(now + ChronoDuration::days(1), |d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn answer(status: u16, code: &str, message: &str) -> Error {
        from_answer(
            &FailedAnswer {
                api: "/api/v2/x",
                shop_id: ShopId::new(1).ok(),
                http_status: status,
                code,
                message,
                request_id: "req-1",
                retry_after: None,
            },
            at("2026-11-26T10:00:00Z"),
        )
    }

    #[test]
    fn retryable_codes_are_retryable_whatever_the_status() {
        for code in RETRYABLE_CODES {
            for status in [200, 400, 403, 429, 500, 503] {
                let e = answer(status, code, "m");
                assert_eq!(e.kind(), ErrorKind::Retryable, "{code} {status}");
                assert!(e.is_retryable());
            }
        }
    }

    #[test]
    fn http_status_decides_when_there_is_no_code() {
        assert!(answer(429, "", "").is_retryable());
        assert!(answer(500, "", "").is_retryable());
        assert!(answer(502, "", "").is_retryable());
        assert_eq!(answer(400, "", "").kind(), ErrorKind::Permanent);
        assert_eq!(answer(404, "", "").kind(), ErrorKind::Permanent);
        assert!(answer(429, "error_param", "").is_retryable());
    }

    #[test]
    fn token_errors_are_auth() {
        assert_eq!(
            answer(403, "error_auth", "Invalid access_token.").kind(),
            ErrorKind::Auth
        );
        assert_eq!(answer(200, "invalid_acceess_token", "").kind(), ErrorKind::Auth);
        assert!(answer(403, "error_auth", "Invalid access_token.").is_invalid_token());
        // error_auth about something else (e.g. the shop did not authorize this partner) is permanent.
        assert_eq!(
            answer(403, "error_auth", "no permission for this shop").kind(),
            ErrorKind::Permanent
        );
    }

    #[test]
    fn permanent_codes_carry_code_message_and_request_id() {
        for code in [
            "error_param",
            "error_sign",
            "error_permission",
            "error_cannot_update_price_in_promotion",
        ] {
            let e = answer(400, code, "what was wrong");
            assert_eq!(e.kind(), ErrorKind::Permanent);
            assert_eq!(e.shopee_code(), Some(code));
            assert_eq!(e.request_id(), Some("req-1"));
            let text = e.to_string();
            assert!(
                text.contains(code) && text.contains("what was wrong") && text.contains("req-1"),
                "{text}"
            );
            assert!(text.contains("retrying will not help"), "{text}");
        }
    }

    #[test]
    fn quota_resets_at_next_midnight_utc8() {
        let e = answer(200, "error_limit", "");
        // 10:00Z is 18:00 UTC+8: next midnight UTC+8 is 16:00Z the same day.
        match e {
            Error::Quota { reset_at, .. } => assert_eq!(reset_at, at("2026-11-26T16:00:00Z")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            next_quota_reset(at("2026-11-26T16:00:00Z")),
            at("2026-11-27T16:00:00Z")
        );
        assert_eq!(
            next_quota_reset(at("2026-11-26T15:59:59Z")),
            at("2026-11-26T16:00:00Z")
        );
    }

    proptest! {
        #[test]
        fn quota_reset_is_a_utc8_midnight_within_a_day(secs in 0i64..4_000_000_000) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let reset = next_quota_reset(now);
            prop_assert!(reset > now);
            prop_assert!(reset - now <= ChronoDuration::days(1));
            prop_assert_eq!((reset.timestamp() + 8 * 3600).rem_euclid(86_400), 0);
        }

        #[test]
        fn unknown_codes_are_never_retried_under_2xx_4xx(code in "[a-z_.]{1,30}", status in prop_oneof![Just(200u16), 400u16..429, 430u16..500]) {
            prop_assume!(!RETRYABLE_CODES.contains(&code.as_str()));
            let e = answer(status, &code, "m");
            prop_assert!(!e.is_retryable());
        }
    }
}
