//! Typed requests and responses, one module per Shopee area. Every type serializes and deserializes, so the
//! sandbox and tests can reuse them. Unknown fields in answers are ignored; money stays a JSON number
//! (`serde_json::Number`) until converted with [`domain::Money::from_shopee_number`].

pub mod auth;
pub mod discount;
pub mod logistics;
pub mod media;
pub mod order;
pub mod product;
pub mod push;

/// Keeps the part of an answer this client does not model.
pub type Extra = serde_json::Map<String, serde_json::Value>;
