//! `cost`: the service's own CPU instructions per event, end to end (ingest,
//! store, delivery, the attempt's record), counted by callgrind.
//!
//! A rate moves with the machine: on a shared virtual machine the same build
//! measures a fifth faster or slower from one minute to the next, and one
//! day's machine ran at half the speed of the day before. An instruction
//! count does not, so two builds compare within a percent or two. It counts
//! user space only: the kernel's work for sockets and fsync is not in it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Scale;
use crate::harness::{Figure, Receiver, Service, fig};
use crate::scenarios::PATIENCE;

/// Concurrent senders: enough to fill group commits a little, few enough
/// that the service under callgrind (about fifty times slower) keeps up.
const SENDERS: usize = 8;
/// callgrind's file, in the service's data directory.
const DUMP: &str = "callgrind.out";

pub async fn cost(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    require("valgrind")?;
    require("callgrind_control")?;
    let receiver = Receiver::start(Duration::ZERO).await?;
    let service = Service::start_under(|data_dir| {
        vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", data_dir.join(DUMP).display()),
            "--log-file=/dev/null".into(),
        ]
    })?;
    service.setup(&[format!("{}/hook", receiver.base)]).await?;
    // Start-up and first use (schema compilation, connection set-up) are
    // left out: the counters are zeroed after a warm-up.
    service.send_events(scale.cost_warmup, SENDERS).await?;
    receiver
        .wait_for_arrivals(scale.cost_warmup, PATIENCE)
        .await?;
    settle().await;
    control("-z", service.pid())?;
    service.send_events(scale.cost_events, SENDERS).await?;
    receiver
        .wait_for_arrivals(scale.cost_warmup + scale.cost_events, PATIENCE)
        .await?;
    settle().await;
    control("-d", service.pid())?;
    // The first dump goes to `<file>.1`, the one at exit (none: the service
    // is killed) to `<file>`; both go with the data directory.
    let instructions = dumped_total(&service.data_dir().join(format!("{DUMP}.1"))).await?;
    Ok(vec![fig(
        "cost",
        &format!("instructions per event, end to end (callgrind, {SENDERS} senders)"),
        instructions as f64 / scale.cost_events as f64,
        "instructions",
    )])
}

/// The last outcomes are recorded a moment after the receiver has them.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn require(tool: &str) -> anyhow::Result<()> {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    anyhow::ensure!(
        found,
        "the cost scenario needs {tool} (apt-get install valgrind)"
    );
    Ok(())
}

/// `callgrind_control -z` zeroes the counters, `-d` writes them to a file.
fn control(option: &str, pid: u32) -> anyhow::Result<()> {
    let output = Command::new("callgrind_control")
        .args([option, &pid.to_string()])
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "callgrind_control {option} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The `totals:` line of a dump, once callgrind has finished writing it.
async fn dumped_total(path: &Path) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(total) = text.lines().find_map(|l| l.strip_prefix("totals: ")) {
            return Ok(total.trim().parse()?);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "callgrind wrote no totals to {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
