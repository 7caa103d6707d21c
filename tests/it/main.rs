//! mlhook's integration tests, one binary: each module was once its own test
//! file. One binary links once (the suite's clean build and its disk use were
//! dominated by linking 20-odd binaries) and shares the fixtures in `common`.
//!
//! Run one area with a module filter: `cargo test --test it delivery::`.

mod common;

mod api;
mod bench_smoke;
mod cli;
mod console;
mod delivery;
mod faults_crash;
mod faults_disk;
mod faults_fuzz;
mod faults_slow_clients;
mod formats;
mod fuzz;
mod layers;
mod log;
mod metrics;
mod mlflow;
mod netguard;
mod nodes;
mod openapi;
mod python_client;
mod security;
mod startup;
mod store_conformance;
