//! mlhook: durable, signed webhook delivery for machine-learning platforms.
//!
//! A map of the crate, in the order an event travels:
//! - [`api`]: the REST routes, auth and the one JSON error shape;
//! - [`catalog`]: the built-in event types, their schemas and validation;
//! - [`subscriptions`]: which webhooks want which events (in memory);
//! - [`ingest`]: group-commit writes of accepted events and their deliveries;
//! - [`store`]: the storage interface and its SQLite implementation;
//! - [`delivery`]: lanes, sender, retry policy, recorder, scheduler;
//! - [`formats`] and [`signing`]: the body and the Standard Webhooks signature.

pub mod api;
pub mod backoff;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod connections;
pub mod console;
pub mod delivery;
pub mod error;
pub mod formats;
pub mod ids;
pub mod ingest;
pub mod integral;
pub mod metrics;
pub mod netguard;
pub mod rate_limit;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod signing;
pub mod sources;
pub mod store;
pub mod subscriptions;
pub mod validation;
pub mod webhook;
