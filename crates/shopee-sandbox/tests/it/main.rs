//! Integration tests of the sandbox over real HTTP, signed with `shopee_client::sign`. One binary, one module per
//! area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod binary;
mod contract;
mod discounts;
mod faults;
mod logistics;
mod orders;
mod polygons;
mod products;
mod pushes;
mod support;
