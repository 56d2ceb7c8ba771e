//! `GET /shopee/auth/callback?code=..&shop_id=..`: the seller comes back from Shopee's authorization page. The code is
//! exchanged for tokens (stored encrypted by shopee-client) and a plain page says what happened. Codes are
//! single-use: a reload that fails because the code was already spent, for a shop that is authorized, still shows
//! success (nothing was broken: the stored tokens were not touched).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use domain::ShopId;
use serde::Deserialize;
use shopee_client::{ErrorKind, ShopeeClient};

#[derive(Clone)]
pub struct AuthState {
    pub shopee: ShopeeClient,
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub shop_id: Option<String>,
    #[serde(default)]
    pub main_account_id: Option<String>,
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{t}</h1><p>{x}</p></body></html>\n",
        t = escape(title),
        x = escape(text)
    );
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

fn valid_code(code: &str) -> bool {
    (1..=256).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tracing::instrument(name = "shop.authorize", skip_all, fields(shop.id, outcome))]
pub async fn callback(
    State(state): State<AuthState>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (resp, outcome) = handle(&state, query.ok().map(|Query(q)| q)).await;
    tracing::Span::current().record("outcome", outcome);
    metrics::counter!("shop_authorizations_total", "outcome" => outcome).increment(1);
    resp
}

async fn handle(state: &AuthState, q: Option<CallbackQuery>) -> (Response, &'static str) {
    let Some(q) = q else {
        return (
            page(
                StatusCode::BAD_REQUEST,
                "Authorization failed",
                "The link is malformed. Open the authorization link again.",
            ),
            "malformed",
        );
    };
    if q.main_account_id.is_some() && q.shop_id.is_none() {
        return (
            page(
                StatusCode::BAD_REQUEST,
                "Authorization not supported",
                "Main-account authorization is not supported: authorize each shop with its own account.",
            ),
            "main_account",
        );
    }
    let shop = q
        .shop_id
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(|s| ShopId::new(s).ok());
    let code = q.code.as_deref().filter(|c| valid_code(c));
    let (Some(shop), Some(code)) = (shop, code) else {
        return (
            page(
                StatusCode::BAD_REQUEST,
                "Authorization failed",
                "The link has no valid code and shop_id. Open the authorization link again.",
            ),
            "malformed",
        );
    };
    tracing::Span::current().record("shop.id", shop.get());
    match state.shopee.authorize_shop(shop, code, None).await {
        Ok(_) => (
            page(
                StatusCode::OK,
                "Shop connected",
                &format!("Shop {shop} is now connected to seller-backend. You can close this page."),
            ),
            "authorized",
        ),
        Err(e) => {
            let kind = e.kind();
            if kind != ErrorKind::Retryable && already_authorized(state, shop).await {
                // Typically a reload: the code was spent by the first load, which stored the tokens.
                tracing::info!(error = %e, "code refused for an already authorized shop: showing success");
                return (
                    page(
                        StatusCode::OK,
                        "Shop connected",
                        &format!(
                            "Shop {shop} is already connected to seller-backend. You can close this page."
                        ),
                    ),
                    "already_authorized",
                );
            }
            tracing::warn!(error = %e, "shop authorization failed");
            match kind {
                ErrorKind::Retryable => (
                    page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Authorization not finished",
                        "Shopee could not be reached. Reload this page in a minute; if it still fails, open the authorization link again.",
                    ),
                    "unavailable",
                ),
                _ => (
                    page(
                        StatusCode::BAD_REQUEST,
                        "Authorization failed",
                        "Shopee refused the authorization code (it is used, expired or for another shop). Open the authorization link again.",
                    ),
                    "refused",
                ),
            }
        }
    }
}

async fn already_authorized(state: &AuthState, shop: ShopId) -> bool {
    let Some(store) = state.shopee.token_store() else {
        return false;
    };
    let now = Utc::now();
    matches!(
        store.authorization(shop).await,
        Ok(Some(a)) if a.deauthorized_at.is_none()
            && a.refresh_expires_at.is_some_and(|t| t > now)
            && a.authorization_expires_at.is_none_or(|t| t > now)
    )
}
