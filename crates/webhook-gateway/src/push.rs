//! `POST /webhooks/shopee`: verify the signature on the raw bytes, store, and only then answer 2xx.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use push_inbox::{Push, Stored};
use service_runtime::config::Secret;
use shopee_client::sign::{self, PushSignatureMode};

/// The largest push we accept. Shopee's pushes are a few hundred bytes.
pub const MAX_PUSH_BYTES: usize = 1024 * 1024;

pub struct PushVerifier {
    pub mode: PushSignatureMode,
    pub key: Secret,
    pub callback_url: String,
}

#[derive(Clone)]
pub struct PushState {
    pub writer: crate::inbox_writer::InboxWriter,
    pub verifier: Arc<PushVerifier>,
}

#[tracing::instrument(name = "push.receive", skip_all, fields(shop.id, push.code, order.sn, outcome))]
pub async fn receive(State(state): State<PushState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let (status, outcome) = match axum::body::to_bytes(body, MAX_PUSH_BYTES).await {
        Ok(body) => handle(&state, &headers, &body).await,
        // Over the limit (or the client went away mid-body): nothing is read further, nothing stored.
        Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
    };
    let span = tracing::Span::current();
    span.record("outcome", outcome);
    metrics::counter!("webhook_pushes_total", "outcome" => outcome).increment(1);
    metrics::histogram!("webhook_push_duration_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    if status.is_success() {
        // Shopee wants 2xx with an empty body.
        status.into_response()
    } else {
        let message = match outcome {
            "unauthorized" => "signature missing or invalid",
            "malformed" => "body is not a valid Shopee push",
            "too_large" => "body is larger than 1 MiB",
            _ => "cannot store the push right now; retry",
        };
        let body = serde_json::json!({"error": {"code": outcome, "message": message}});
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

async fn handle(state: &PushState, headers: &HeaderMap, body: &[u8]) -> (StatusCode, &'static str) {
    let verifier = &state.verifier;
    let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::UNAUTHORIZED, "unauthorized");
    };
    if !sign::verify_push(
        verifier.mode,
        verifier.key.expose(),
        &verifier.callback_url,
        body,
        authorization,
    ) {
        return (StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let push = match Push::parse(body) {
        Ok(push) => push,
        Err(e) => {
            tracing::debug!(error = %e, "signed push with a malformed body rejected");
            return (StatusCode::BAD_REQUEST, "malformed");
        }
    };
    let span = tracing::Span::current();
    if let Some(shop) = push.shop_id {
        span.record("shop.id", shop.get());
    }
    if let Some(code) = push.code {
        span.record("push.code", code);
    }
    if let Some(sn) = push.order_sn() {
        span.record("order.sn", sn.as_str());
    }
    let traceparent = service_runtime::telemetry::current_traceparent();
    match state.writer.store(push, traceparent).await {
        Ok(Stored::New) => (StatusCode::OK, "stored"),
        Ok(Stored::Duplicate) => (StatusCode::OK, "duplicate"),
        Err(e) => {
            tracing::error!(error = %e, "push not stored: answering 503 so Shopee retries");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}
