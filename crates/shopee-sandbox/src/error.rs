//! The two error types: [`Error`] for the in-process and admin operations, [`ApiError`] for Shopee's envelope.

use axum::http::StatusCode;

/// What an in-process (or admin) operation on the sandbox can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Shopee error answer: HTTP status, `error` code and `message` of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            message: message.into(),
        }
    }

    /// `error_param`, HTTP 400.
    pub fn param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "error_param", message)
    }

    /// A business rule refused the call: HTTP 200 with the code (Shopee answers most business errors with 200).
    pub fn business(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, error, message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "error_not_found", what)
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;
