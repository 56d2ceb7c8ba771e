//! The runtime every seller-backend binary shares: typed configuration from the environment (declared once, with
//! clap), the command line (`--help`, `serve`, `migrate`), telemetry (tracing, OTLP, Prometheus), the health and metrics endpoints, graceful
//! shutdown with one cancellation token, and the connections to PostgreSQL, Redis, Pub/Sub and Kafka.
//!
//! A binary declares its variables as a `clap::Args` struct (flattening the shared groups of [`config`]) with a
//! `TryFrom` into its runtime config; its `main` parses them with [`cli::parse`], then calls [`cli::run`] with a
//! closure that builds its adapters and serves until the [`CancellationToken`](tokio_util::sync::CancellationToken)
//! fires.
//!
//! Background loops run on [`periodic::Periodic`] (a named task every interval, with jitter, backoff on errors,
//! metrics and a bounded grace at shutdown); every retry delay comes from [`backoff::delay`].

pub mod backoff;
pub mod cli;
pub mod config;
pub mod db;
pub mod health;
pub mod kafka;
pub mod periodic;
pub mod pubsub;
pub mod redis;
pub mod shopee;
pub mod shutdown;
pub mod telemetry;

pub use tokio_util::sync::CancellationToken;
