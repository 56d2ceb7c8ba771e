//! Bearer tokens from `CAMPAIGN_API_TOKENS`, compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The allowed tokens, kept only as SHA-256 digests so every comparison has the same length and no token is held
/// in plain text after start-up.
#[derive(Clone)]
pub struct Tokens(Arc<Vec<[u8; 32]>>);

impl Tokens {
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(
            tokens
                .into_iter()
                .map(|t| Sha256::digest(t.as_bytes()).into())
                .collect(),
        ))
    }

    /// Compares against every token without stopping at the first match.
    pub fn allows(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let mut ok = subtle::Choice::from(0);
        for t in self.0.iter() {
            ok |= t.ct_eq(&digest);
        }
        ok.into()
    }
}

/// Middleware: 401 unless `Authorization: Bearer <token>` holds an allowed token.
pub async fn require_bearer(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token) if !token.is_empty() && tokens.allows(token) => next.run(request).await,
        _ => {
            metrics::counter!("campaign_api_unauthorized_total").increment(1);
            let mut resp = ApiError::Unauthorized.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_tokens_pass() {
        let t = Tokens::new(["first-token-0123456789", "second-token-0123456789"]);
        assert!(t.allows("first-token-0123456789"));
        assert!(t.allows("second-token-0123456789"));
        assert!(!t.allows("first-token-012345678"));
        assert!(!t.allows(""));
    }
}
