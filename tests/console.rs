//! The web console in a real browser: headless Chromium, driven by
//! Playwright from `tests/console/console.test.mjs`, against a real
//! `mlhook serve` and a real receiver. This file starts both, runs the
//! Node script and checks it passed; the script takes the screenshots
//! (into `target/console-screenshots/`, kept by CI).
//!
//! Chromium (`/usr/bin/chromium`, or `MLHOOK_CHROMIUM`), Node and the
//! script's packages (`npm ci --prefix tests/console`) must be installed:
//! `.ci/run` does it. Without them the test fails, saying what is missing,
//! unless `MLHOOK_SKIP_BROWSER=1` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use common::{ADMIN, Receiver, Reply, Server};

/// The whole browser run may take this long at most.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("console-screenshots")
}

/// What the browser run needs, or what is missing and how to install it.
fn prerequisites() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("MLHOOK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!(
            "Chromium at {} (apt-get install chromium, or set MLHOOK_CHROMIUM)",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !node {
        missing.push("node (apt-get install nodejs npm)".to_string());
    }
    for package in ["playwright-core", "axe-core"] {
        if !console_dir().join("node_modules").join(package).exists() {
            missing.push(format!(
                "the npm package {package} (npm ci --prefix tests/console)"
            ));
        }
    }
    if missing.is_empty() {
        Ok(chromium)
    } else {
        Err(format!(
            "the console's browser test cannot run; missing: {}. `.ci/run` installs them; \
             set MLHOOK_SKIP_BROWSER=1 to skip this test on purpose.",
            missing.join("; ")
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    if std::env::var("MLHOOK_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("MLHOOK_SKIP_BROWSER=1: the console's browser test is skipped");
        return;
    }
    let chromium = prerequisites().unwrap_or_else(|message| panic!("{message}"));

    let server = Server::start().await;
    // The receiver answers what it was last told to: `/control/500` makes
    // it fail from then on, `/control/200` makes it succeed again.
    let answer = Arc::new(AtomicU16::new(200));
    let told = answer.clone();
    let receiver = Receiver::start_with(move |_, request| {
        if let Some(code) = request.path.strip_prefix("/control/") {
            told.store(code.parse().unwrap_or(200), Ordering::SeqCst);
            return Reply::status(204);
        }
        let status = told.load(Ordering::SeqCst);
        let mut reply = Reply::status(status);
        reply.headers = vec![("content-type", "application/json".to_string())];
        reply.body = if status < 300 {
            r#"{"received": true}"#.to_string()
        } else {
            r#"{"error": "the receiver fails on purpose"}"#.to_string()
        };
        reply
    })
    .await;

    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let mut command = tokio::process::Command::new("node");
    command
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("console.test.mjs")
        .current_dir(console_dir())
        .env("MLHOOK_URL", &server.base)
        .env("MLHOOK_ADMIN_TOKEN", ADMIN)
        .env("RECEIVER_URL", &receiver.url)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("the browser test ran longer than {BROWSER_TIMEOUT:?}"))
        .expect("node starts");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        let log = server.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "the browser test failed ({}); screenshots in {}; the server log ends:\n{}",
            output.status,
            shots.display(),
            tail.join("\n")
        );
    }

    // What the browser did reached the receiver: the header typed but never
    // added with + was sent, and so were the protected one and the secret.
    let deliveries: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| !r.path.starts_with("/control/"))
        .collect();
    assert!(
        deliveries.len() >= 4,
        "validate twice, test, the event and its redelivery: {} requests",
        deliveries.len()
    );
    for request in &deliveries {
        assert_eq!(request.header("x-team"), "ml-platform", "{request:?}");
        assert!(
            request.header("x-api-key").starts_with("protected-"),
            "{request:?}"
        );
        assert!(
            request.header("authorization").starts_with("secret-"),
            "{request:?}"
        );
    }
    for name in [
        "signin.png",
        "webhooks.png",
        "webhook-form.png",
        "webhook-detail.png",
        "deliveries.png",
        "delivery.png",
        "catalog.png",
    ] {
        assert!(shots.join(name).exists(), "no screenshot {name}");
    }
}
