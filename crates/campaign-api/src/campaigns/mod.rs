//! Campaigns in SKU terms, run on Shopee as one discount per shop.
//!
//! Creation: validate (Shopee's rules and ours) -> resolve hubs to shops and SKUs to (item, model) -> record the
//! campaign, its shops and items in PostgreSQL -> per shop: `add_discount`, store the `discount_id` at once, then
//! `add_discount_item` in batches of <= 50. A failure between the two is resumed (after an unknown outcome the
//! discount's items are read back and only the missing ones sent again; a retry with the same `Idempotency-Key` after
//! a crash continues from the recorded state) or compensated (`delete_discount`, retried by the reconcile loop if
//! Shopee refuses): a discount we created is always recorded, and never left half-made on Shopee (R15).
//!
//! One layer a file, each with one reason to change:
//! - [`http`]: the axum handlers (extract, call the layers below, answer) and their OpenAPI entries;
//! - [`validate`]: the request shapes and their validation into typed commands (no lookups);
//! - [`resolve`]: the lookups that turn a command into per-shop plans (hubs, mappings, current prices);
//! - [`plan`]: what to do on Shopee per shop, as pure functions (batches, item shapes, what an answer means);
//! - [`execute`]: the Shopee calls of a creation, resumed or compensated;
//! - [`change`]: the Shopee calls of a PATCH, an end or a delete;
//! - [`store`]: the SQL;
//! - [`view`]: the JSON views;
//! - [`state`]: the campaign, shop and item states and their stored spelling.

pub mod change;
pub mod execute;
pub mod http;
pub mod plan;
pub mod resolve;
pub mod state;
pub mod store;
pub mod validate;
pub mod view;

pub use http::{create, detail, end, list, remove, update};
pub use validate::{MAX_ITEMS, MAX_PERIOD, MIN_LEAD, MIN_PERIOD};

/// The Idempotency-Key scope of a creation.
pub const SCOPE: &str = "POST /v1/campaigns";
