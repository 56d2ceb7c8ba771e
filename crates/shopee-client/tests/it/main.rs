//! The client over real HTTP against the Shopee sandbox, with real PostgreSQL (one database per test) and real
//! Redis (one key prefix per test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apis;
mod logging;
mod rate_limit;
mod retries;
mod support;
mod tokens;
