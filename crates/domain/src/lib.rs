//! The seller-backend domain: values parsed at the edge and impossible to hold invalid, and the rules that decide
//! what happens to orders, catalog updates and deliveries. No I/O lives here.

pub mod catalog;
pub mod delivery;
pub mod ids;
pub mod mapping;
pub mod money;
pub mod order;

pub use ids::{HubId, ItemId, ModelId, OrderSn, ShopId, Sku};
pub use money::Money;

/// A value from outside that does not hold what it must.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {problem}")]
pub struct ParseError {
    pub what: &'static str,
    pub problem: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, problem: impl Into<String>) -> Self {
        Self {
            what,
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = ParseError> = std::result::Result<T, E>;
