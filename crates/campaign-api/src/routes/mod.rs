//! The non-campaign routes of the internal API.

pub mod catalog;
pub mod dead_letters;
pub mod mappings;
pub mod orders;
pub mod shops;
