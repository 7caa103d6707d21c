//! mlhook-bench: the benchmark harness. It starts everything itself on
//! 127.0.0.1 — `mlhook serve` (the binary next to this one) on a fresh data
//! directory and a fast receiver that records arrival time per `webhook-id` —
//! runs bounded loads, stops everything, and prints a table plus a JSON file.
//!
//! `cargo run --release --bin mlhook-bench -- [SCENARIO|all] [--smoke] [--database-url URL]`
//! With `--database-url postgres://…/postgres` the service runs on PostgreSQL:
//! each run creates a database of its own on that server and drops it after.
//! Scenarios: wire, ingest, end-to-end, deliver, latency, fanout, slow-neighbour, log-query.

mod harness;
mod scenarios;

use std::path::PathBuf;

/// The sizes of one run: full (for the docs) or smoke (for the test suite).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub wire_requests: usize,
    pub ingest_events: usize,
    pub batch_events: usize,
    pub e2e_events: usize,
    pub backlog: usize,
    pub latency_rate: usize,
    pub latency_seconds: u64,
    pub fanout_webhooks: usize,
    pub fanout_events: usize,
    pub neighbour_events: usize,
    pub neighbour_delay_ms: u64,
    pub log_rows: usize,
    pub log_queries: usize,
}

const FULL: Scale = Scale {
    wire_requests: 200_000,
    ingest_events: 100_000,
    batch_events: 200_000,
    e2e_events: 50_000,
    backlog: 100_000,
    latency_rate: 1_000,
    latency_seconds: 30,
    fanout_webhooks: 1_000,
    fanout_events: 100,
    neighbour_events: 10_000,
    neighbour_delay_ms: 10_000,
    log_rows: 1_000_000,
    log_queries: 200,
};

const SMOKE: Scale = Scale {
    wire_requests: 500,
    ingest_events: 300,
    batch_events: 2_000,
    e2e_events: 300,
    backlog: 500,
    latency_rate: 100,
    latency_seconds: 1,
    fanout_webhooks: 20,
    fanout_events: 5,
    neighbour_events: 200,
    neighbour_delay_ms: 500,
    log_rows: 3_000,
    log_queries: 10,
};

pub const SCENARIOS: [&str; 8] = [
    "wire",
    "ingest",
    "end-to-end",
    "deliver",
    "latency",
    "fanout",
    "slow-neighbour",
    "log-query",
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let database_url = args
        .iter()
        .position(|a| a == "--database-url")
        .map(|i| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("--database-url needs a postgres:// URL"))
        })
        .transpose()?;
    let chosen = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--database-url"))
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| "all".into());
    let names: Vec<&str> = if chosen == "all" {
        SCENARIOS.to_vec()
    } else {
        let name = SCENARIOS.iter().find(|s| **s == chosen);
        vec![*name.ok_or_else(|| {
            anyhow::anyhow!("unknown scenario {chosen:?}; one of {SCENARIOS:?} or all")
        })?]
    };
    let scale = if smoke { SMOKE } else { FULL };
    if let Some(url) = &database_url {
        harness::use_postgres(url.clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let figures = runtime.block_on(scenarios::run_all(&names, scale))?;
    harness::print_table(&figures);
    let out = PathBuf::from("bench-results");
    std::fs::create_dir_all(&out)?;
    let path = out.join(format!(
        "{chosen}{}{}.json",
        if database_url.is_some() {
            "-postgres"
        } else {
            ""
        },
        if smoke { "-smoke" } else { "" }
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&figures)?)?;
    println!("\nfigures written to {}", path.display());
    Ok(())
}
