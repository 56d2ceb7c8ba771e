//! The non-campaign routes of the internal API.

pub mod catalog;
pub mod dead_letters;
pub mod mappings;
pub mod orders;
pub mod shops;

use crate::text_enum::text_enum;

text_enum! {
    /// `mapping_discovery_jobs.status` and `content_sync_jobs.status` (run by catalog-sync-worker).
    pub enum JobStatus {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}
