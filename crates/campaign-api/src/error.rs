//! One error type for every handler, answered as `{"error": {"code", "message"}}` (plus `details` when a
//! per-item explanation helps). Internal causes are logged once here and never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request cannot be read.
    BadRequest(String),
    /// 401: no valid bearer token.
    Unauthorized,
    /// 404.
    NotFound(String),
    /// 405.
    MethodNotAllowed,
    /// 409: the resource is not in a state that allows it.
    Conflict(String),
    /// 413.
    PayloadTooLarge,
    /// 422: readable, but breaks a rule (Shopee's or ours); `details` says which items.
    Unprocessable { message: String, details: Option<Value> },
    /// 502: Shopee refused or failed.
    Shopee(String),
    /// 503: a dependency is down; retry.
    Unavailable(String),
    /// 500: logged, never described to the caller.
    Internal(String),
}

impl ApiError {
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Unprocessable {
            message: message.into(),
            details: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Shopee(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unprocessable { .. } => "unprocessable",
            Self::Shopee(_) => "shopee_error",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let message = match self {
            Self::BadRequest(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::Shopee(m)
            | Self::Unavailable(m) => m.clone(),
            Self::Unprocessable { message, .. } => message.clone(),
            Self::Unauthorized => {
                "a valid bearer token is required: send `Authorization: Bearer <token>` with a token from CAMPAIGN_API_TOKENS".into()
            }
            Self::PayloadTooLarge => "the request body is too large".into(),
            Self::MethodNotAllowed => "this route does not take that method".into(),
            Self::Internal(_) => "internal error; it has been logged".into(),
        };
        let mut body = json!({"error": {"code": self.code(), "message": message}});
        if let Self::Unprocessable {
            details: Some(details),
            ..
        } = self
        {
            body["error"]["details"] = details.clone();
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(error = %cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "dependency unavailable"),
            Self::Shopee(cause) => tracing::warn!(error = %cause, "Shopee call failed"),
            _ => {}
        }
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(format!("database: {e}"))
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<product_mapping::Error> for ApiError {
    fn from(e: product_mapping::Error) -> Self {
        match e {
            product_mapping::Error::Database(db) => db.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<shopee_client::Error> for ApiError {
    fn from(e: shopee_client::Error) -> Self {
        match e.kind() {
            shopee_client::ErrorKind::Retryable => Self::Unavailable(e.to_string()),
            _ => Self::Shopee(e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNPROCESSABLE_ENTITY => Self::unprocessable(r.body_text()),
            _ => Self::BadRequest(r.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

/// `axum::Json` whose rejections answer in our error shape.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// `axum::extract::Query` whose rejections answer in our error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// `axum::extract::Path` whose rejections answer in our error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParam<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;
