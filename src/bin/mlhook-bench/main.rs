//! mlhook-bench: the benchmark harness. It starts everything itself on
//! 127.0.0.1 — `mlhook serve` (the binary next to this one) on a fresh data
//! directory and a fast receiver that records arrival time per `webhook-id` —
//! runs bounded loads, stops everything, and prints a table plus a JSON file.
//!
//! `cargo run --release --bin mlhook-bench -- [SCENARIO|all] [--smoke] [--database-url URL]`
//! With `--database-url postgres://…/postgres` the service runs on PostgreSQL:
//! each run creates a database of its own on that server and drops it after.
//! Scenarios: wire, ingest, end-to-end, deliver, latency, fanout, slow-neighbour, log-query,
//! held-backlog, cost (instructions per event under callgrind; needs valgrind).

mod cost;
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
    pub held_backlog: usize,
    pub latency_rate: usize,
    pub latency_seconds: u64,
    pub fanout_webhooks: usize,
    pub fanout_events: usize,
    pub neighbour_events: usize,
    pub neighbour_delay_ms: u64,
    pub log_rows: usize,
    pub log_queries: usize,
    pub cost_warmup: usize,
    pub cost_events: usize,
}

const FULL: Scale = Scale {
    wire_requests: 200_000,
    ingest_events: 100_000,
    batch_events: 200_000,
    e2e_events: 50_000,
    backlog: 100_000,
    held_backlog: 1_000_000,
    latency_rate: 1_000,
    latency_seconds: 30,
    fanout_webhooks: 1_000,
    fanout_events: 100,
    neighbour_events: 10_000,
    neighbour_delay_ms: 10_000,
    log_rows: 1_000_000,
    log_queries: 200,
    cost_warmup: 300,
    cost_events: 2_000,
};

const SMOKE: Scale = Scale {
    wire_requests: 500,
    ingest_events: 300,
    batch_events: 2_000,
    e2e_events: 300,
    backlog: 500,
    held_backlog: 3_000,
    latency_rate: 100,
    latency_seconds: 1,
    fanout_webhooks: 20,
    fanout_events: 5,
    neighbour_events: 200,
    neighbour_delay_ms: 500,
    log_rows: 3_000,
    log_queries: 10,
    cost_warmup: 10,
    cost_events: 30,
};

pub const SCENARIOS: [&str; 10] = [
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
];

/// Runs bounded loads against `mlhook serve` on 127.0.0.1 and prints their figures.
#[derive(clap::Parser)]
#[command(
    name = "mlhook-bench",
    after_help = "Figures land in bench-results/<SCENARIO>.json."
)]
struct Args {
    /// The scenario to run, or all of them.
    #[arg(default_value = "all", value_parser = clap::builder::PossibleValuesParser::new(
        SCENARIOS.iter().copied().chain(["all"])
    ))]
    scenario: String,
    /// Tiny sizes, to check that every scenario still runs (the test suite uses this).
    #[arg(long)]
    smoke: bool,
    /// Run the service on this PostgreSQL server (postgres://…/postgres); each run creates a
    /// database of its own there and drops it after.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Pending deliveries for held-backlog (default: 1,000,000; 3,000 with --smoke): a
    /// few sizes side by side tell memory that grows with the backlog from a fixed cost.
    #[arg(long, value_name = "N")]
    backlog: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let Args {
        scenario: chosen,
        smoke,
        database_url,
        backlog,
    } = clap::Parser::parse();
    let names: Vec<&str> = match SCENARIOS.iter().find(|s| **s == chosen) {
        Some(name) => vec![*name],
        None => SCENARIOS.to_vec(),
    };
    let mut scale = if smoke { SMOKE } else { FULL };
    if let Some(backlog) = backlog {
        scale.held_backlog = backlog;
    }
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
