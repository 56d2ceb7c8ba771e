//! Shopee pushes and the inbox they wait in.
//!
//! [`Push::parse`] turns a verified raw body into a typed push (never trusting more than it checks);
//! [`Inbox`] stores it once (a repeat only increments `seen_count`) and hands pending rows to workers.

mod code;
mod parse;
mod store;

pub use code::PushCode;
pub use parse::{OrderStatusPush, Push, PushError, PushKind};
pub use store::{ClaimedPush, Inbox, Source, Stored};
