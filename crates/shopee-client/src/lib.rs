//! A typed client for the Shopee Open Platform v2 (the crate README follows).
//!
//! - [`ShopeeClient`]: every API the service uses, with signing, retries, shared rate limits and tokens.
//! - [`sign`]: request signing and the verification of pushes and quotation calls.
//! - [`Error`]: one error type; [`Error::kind`] says what to do about it.
#![doc = include_str!("../README.md")]

pub mod api;
mod client;
pub mod config;
pub mod envelope;
pub mod error;
pub mod ratelimit;
pub mod retry;
pub mod sign;
pub mod token;

pub use client::{ClientBuilder, ShopeeClient};
pub use config::{ClientConfig, RateLimitConfig, RetryPolicy};
pub use error::{Error, ErrorKind, Result};
pub use ratelimit::RateLimiter;
pub use token::{NewTokens, ShopAuthorization, TokenCipher, TokenPair, TokenStore};
