//! The benchmark harness builds and runs a short version of every scenario,
//! so it never rots. Timings are not asserted: figures are for the docs.

use std::process::Command;

#[test]
fn every_benchmark_scenario_runs_in_smoke_mode() {
    let output = Command::new(env!("CARGO_BIN_EXE_mlhook-bench"))
        .args(["all", "--smoke"])
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
    let json =
        std::fs::read_to_string("bench-results/all-smoke.json").expect("figures written as JSON");
    let figures: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(figures.as_array().is_some_and(|f| f.len() >= 8), "{json}");
}
