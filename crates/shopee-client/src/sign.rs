//! Shopee request signing and the verification of what Shopee sends us (pushes, quotation calls).
//!
//! `sign` = lowercase hex (64 chars) of HMAC-SHA256(key = partner_key, message = base string):
//! - shop API: `partner_id + api_path + timestamp + access_token + shop_id`
//! - public API (auth, push config): `partner_id + api_path + timestamp`

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex HMAC-SHA256 of `message` under `key`.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    hex::encode(hmac_bytes(key, message))
}

fn hmac_bytes(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The base string of a shop-level API call.
pub fn shop_base_string(
    partner_id: u64,
    api_path: &str,
    timestamp: i64,
    access_token: &str,
    shop_id: u64,
) -> String {
    format!("{partner_id}{api_path}{timestamp}{access_token}{shop_id}")
}

/// The base string of a public API call (auth, push config) and of the quotation URL.
pub fn public_base_string(partner_id: u64, api_path: &str, timestamp: i64) -> String {
    format!("{partner_id}{api_path}{timestamp}")
}

/// `sign` for a shop-level API call.
pub fn sign_shop(
    partner_key: &str,
    partner_id: u64,
    api_path: &str,
    timestamp: i64,
    access_token: &str,
    shop_id: u64,
) -> String {
    hmac_hex(
        partner_key.as_bytes(),
        shop_base_string(partner_id, api_path, timestamp, access_token, shop_id).as_bytes(),
    )
}

/// `sign` for a public API call.
pub fn sign_public(partner_key: &str, partner_id: u64, api_path: &str, timestamp: i64) -> String {
    hmac_hex(
        partner_key.as_bytes(),
        public_base_string(partner_id, api_path, timestamp).as_bytes(),
    )
}

/// Compares a received hex signature with the expected MAC in constant time (case-insensitive hex).
fn verify_hex(received: &str, key: &[u8], message: &[u8]) -> bool {
    let expected = hmac_bytes(key, message);
    let mut decoded = [0u8; 32];
    if hex::decode_to_slice(received.trim().as_bytes(), &mut decoded).is_err() {
        return false;
    }
    bool::from(decoded.ct_eq(&expected))
}

/// What the push `Authorization` header is computed over.
/// (Unconfirmed in Shopee's docs: some accounts sign the body alone with a separate "live push partner key".)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushSignatureMode {
    /// `callback_url + "|" + raw_body` (Shopee's documented default).
    #[default]
    UrlAndBody,
    /// `raw_body` alone.
    BodyOnly,
}

/// Signs a push as Shopee does (used by the sandbox and tests).
pub fn sign_push(mode: PushSignatureMode, key: &str, callback_url: &str, raw_body: &[u8]) -> String {
    hmac_hex(key.as_bytes(), &push_message(mode, callback_url, raw_body))
}

fn push_message(mode: PushSignatureMode, callback_url: &str, raw_body: &[u8]) -> Vec<u8> {
    match mode {
        PushSignatureMode::UrlAndBody => {
            let mut m = Vec::with_capacity(callback_url.len() + 1 + raw_body.len());
            m.extend_from_slice(callback_url.as_bytes());
            m.push(b'|');
            m.extend_from_slice(raw_body);
            m
        }
        PushSignatureMode::BodyOnly => raw_body.to_vec(),
    }
}

/// Verifies a push `Authorization` header against the raw body bytes, in constant time.
pub fn verify_push(
    mode: PushSignatureMode,
    key: &str,
    callback_url: &str,
    raw_body: &[u8],
    authorization: &str,
) -> bool {
    verify_hex(
        authorization,
        key.as_bytes(),
        &push_message(mode, callback_url, raw_body),
    )
}

/// Why an inbound quotation call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundAuthError {
    #[error("partner_id does not match ours")]
    WrongPartner,
    #[error("timestamp is outside the accepted window")]
    Expired,
    #[error("signature does not match")]
    BadSignature,
}

/// What an inbound quotation call carried: its path and the `partner_id`, `timestamp`, `sign` query params.
#[derive(Debug, Clone, Copy)]
pub struct QuotationCall<'a> {
    /// The request path, e.g. `/shopee/quotation` (whether Shopee signs the full URL is unconfirmed).
    pub path: &'a str,
    pub partner_id: u64,
    pub timestamp: i64,
    pub sign: &'a str,
}

/// What a quotation call is checked against.
#[derive(Debug, Clone, Copy)]
pub struct QuotationCheck<'a> {
    pub partner_key: &'a str,
    pub expected_partner_id: u64,
    /// Unix seconds now.
    pub now: i64,
    /// Accepted distance between `timestamp` and `now`, in seconds.
    pub window_secs: i64,
}

/// Verifies the quotation URL call: `sign` = HMAC-SHA256(partner_key, partner_id + path + timestamp), with the
/// timestamp within `window_secs` of `now`.
pub fn verify_quotation(
    check: &QuotationCheck<'_>,
    call: &QuotationCall<'_>,
) -> Result<(), InboundAuthError> {
    if call.partner_id != check.expected_partner_id {
        return Err(InboundAuthError::WrongPartner);
    }
    if (check.now - call.timestamp).abs() > check.window_secs {
        return Err(InboundAuthError::Expired);
    }
    let base = public_base_string(call.partner_id, call.path, call.timestamp);
    if verify_hex(call.sign, check.partner_key.as_bytes(), base.as_bytes()) {
        Ok(())
    } else {
        Err(InboundAuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EXAMPLE_BASE: &str =
        "2001887/api/v2/shop/get_shop_info165571443159777174636562737266615546704c6d14701711";

    /// Shopee's documented example (shop/get_shop_info), and its HMAC computed independently (Python's hmac).
    #[test]
    fn documented_example() {
        let base = shop_base_string(
            2001887,
            "/api/v2/shop/get_shop_info",
            1655714431,
            "59777174636562737266615546704c6d",
            14701711,
        );
        assert_eq!(base, EXAMPLE_BASE);
        let sign = sign_shop(
            "test_partner_key",
            2001887,
            "/api/v2/shop/get_shop_info",
            1655714431,
            "59777174636562737266615546704c6d",
            14701711,
        );
        assert_eq!(
            sign,
            "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3"
        );
        assert_eq!(sign.len(), 64);
        assert!(
            sign.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
    }

    #[test]
    fn push_signature_over_url_and_raw_body() {
        let body = br#"{"code":3}"#;
        let sig = sign_push(
            PushSignatureMode::UrlAndBody,
            "k",
            "https://x.test/webhooks/shopee",
            body,
        );
        assert_eq!(
            sig,
            "c987009b6c09c1f0e50484a519cde394cc2c5b81e5e0a301d731571f3d9b60b9"
        );
        assert!(verify_push(
            PushSignatureMode::UrlAndBody,
            "k",
            "https://x.test/webhooks/shopee",
            body,
            &sig
        ));
        assert!(verify_push(
            PushSignatureMode::UrlAndBody,
            "k",
            "https://x.test/webhooks/shopee",
            body,
            &sig.to_uppercase()
        ));
        assert!(!verify_push(
            PushSignatureMode::BodyOnly,
            "k",
            "https://x.test/webhooks/shopee",
            body,
            &sig
        ));
        assert!(!verify_push(
            PushSignatureMode::UrlAndBody,
            "k",
            "https://x.test/other",
            body,
            &sig
        ));
        assert!(!verify_push(
            PushSignatureMode::UrlAndBody,
            "k",
            "https://x.test/webhooks/shopee",
            body,
            ""
        ));
        assert!(!verify_push(
            PushSignatureMode::UrlAndBody,
            "k",
            "https://x.test/webhooks/shopee",
            body,
            "zz"
        ));
    }

    #[test]
    fn quotation_signature_and_window() {
        let sign = sign_public("key", 7, "/shopee/quotation", 1_000);
        let check = |key, now| QuotationCheck {
            partner_key: key,
            expected_partner_id: 7,
            now,
            window_secs: 300,
        };
        let call = |partner_id| QuotationCall {
            path: "/shopee/quotation",
            partner_id,
            timestamp: 1_000,
            sign: &sign,
        };
        assert_eq!(verify_quotation(&check("key", 1_100), &call(7)), Ok(()));
        assert_eq!(
            verify_quotation(&check("key", 2_000), &call(7)),
            Err(InboundAuthError::Expired)
        );
        assert_eq!(
            verify_quotation(&check("key", 1_000), &call(8)),
            Err(InboundAuthError::WrongPartner)
        );
        assert_eq!(
            verify_quotation(&check("other", 1_000), &call(7)),
            Err(InboundAuthError::BadSignature)
        );
    }

    proptest! {
        /// Flipping any byte of the body, or any bit of the key, breaks the signature.
        #[test]
        fn any_change_breaks_a_push_signature(body in proptest::collection::vec(any::<u8>(), 1..256), idx in any::<usize>(), flip in 1u8..=255) {
            let sig = sign_push(PushSignatureMode::UrlAndBody, "key", "https://cb", &body);
            prop_assert!(verify_push(PushSignatureMode::UrlAndBody, "key", "https://cb", &body, &sig));
            let mut tampered = body.clone();
            let i = idx % tampered.len();
            tampered[i] ^= flip;
            prop_assert!(!verify_push(PushSignatureMode::UrlAndBody, "key", "https://cb", &tampered, &sig));
        }

        #[test]
        fn signatures_are_64_lowercase_hex(key in "\\PC{0,40}", path in "/api/v2/[a-z_/]{1,40}", ts in 0i64..4_000_000_000) {
            let s = sign_public(&key, 1, &path, ts);
            prop_assert_eq!(s.len(), 64);
            prop_assert!(s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        }
    }
}
