//! The non-campaign routes of the internal API.

pub mod catalog;
pub mod dead_letters;
pub mod mappings;
pub mod orders;
pub mod shops;

/// `mapping_discovery_jobs.status` and `content_sync_jobs.status` (run by catalog-sync-worker).
pub use pg_enum::JobStatus;
