//! The benchmark harness builds and runs a short version of every scenario,
//! so it never rots. Timings are not asserted: figures are for the docs.

use std::process::Command;

use crate::common;

#[test]
fn every_benchmark_scenario_runs_in_smoke_mode() {
    smoke(&[], "bench-results/all-smoke.json");
}

/// The harness's PostgreSQL path: it creates a database of its own on the
/// tests' server for each run and drops it after.
#[test]
fn every_benchmark_scenario_runs_in_smoke_mode_on_postgres() {
    let server = common::pg::admin_url();
    smoke(
        &["--database-url", &server],
        "bench-results/all-postgres-smoke.json",
    );
}

/// Runs every scenario at smoke size: each prints a positive figure, and
/// the figures are written as JSON to `json_path`.
fn smoke(extra_args: &[&str], json_path: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_mlhook-bench"))
        .args(["all", "--smoke"])
        .args(extra_args)
        .output()
        .expect("mlhook-bench starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stdout}\n{stderr}");
    for scenario in [
        "wire",
        "ingest",
        "end-to-end",
        "deliver",
        "latency",
        "fanout",
        "slow-neighbour",
        "log-query",
        "held-backlog",
        "cost",
    ] {
        let row = stdout.lines().find(|l| l.starts_with(scenario));
        let row = row.unwrap_or_else(|| panic!("no figure for {scenario} in:\n{stdout}"));
        let value: f64 = row
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or(f64::NAN);
        assert!(
            value.is_finite() && value > 0.0,
            "{scenario}: no positive figure in {row:?}"
        );
    }
    let json = std::fs::read_to_string(json_path).expect("figures written as JSON");
    let figures: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(figures.as_array().is_some_and(|f| f.len() >= 9), "{json}");
}
