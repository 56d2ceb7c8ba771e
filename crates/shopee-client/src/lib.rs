//! A typed client for the Shopee Open Platform v2. See README.md.

pub mod sign;
