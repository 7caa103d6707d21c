//! Fault suite, crash: `kill -9` at random moments under a steady stream of
//! single and batch ingests, to a receiver that fails a share of requests,
//! restarting on the same data directory each time. Every event answered
//! 2xx must reach the receiver at least once; a second success of the same
//! delivery may only straddle a kill.
//!
//! CI size: 5 kills. `MLHOOK_CRASH_KILLS=25` (scripts/crash-soak.sh) runs more
//! and prints the same figures.

use crate::common::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Every fifth request is answered 500.
const FAIL_EVERY: usize = 5;
/// Events per batch request.
const BATCH: usize = 10;

/// What the receiver answered 2xx to: delivery id → the times it did.
type Successes = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// The stream's shared state: where the server is now, and what it accepted.
struct Stream {
    base: Mutex<String>,
    accepted: Mutex<Vec<String>>,
    refused: AtomicUsize,
    stop: AtomicBool,
}

impl Stream {
    fn base(&self) -> String {
        self.base.lock().unwrap().clone()
    }

    fn accept(&self, answer: &Value) {
        let ids = answer["deliveries"].as_array().cloned().unwrap_or_default();
        let mut accepted = self.accepted.lock().unwrap();
        accepted.extend(ids.iter().filter_map(|d| d.as_str().map(str::to_string)));
    }
}

fn event(i: usize) -> Value {
    json!({"type": "RUN_COMPLETED", "payload": {
        "header": {"model_name": format!("model-{i}"), "model_id": i, "notification_type": "RUN_COMPLETED"},
        "payload": {
            "run": {"started_at": "2024-01-25T14:04:10.157236"},
            "performance_alerts": {"cbpe": [{"metric_name": "specificity"}]},
            "other_alerts": {"univariate_drift": [{"metric_name": "country"}]},
            "success": ["unseen_values", "missing_values"],
            "report_link": "https://test.app.nannyml.com/model/1"
        }
    }})
}

/// One sender: alternates single events and batches until stopped. Only an
/// answer read whole counts as accepted (a kill can cut it off).
async fn send_loop(stream: Arc<Stream>, worker: usize, next: Arc<AtomicUsize>) {
    let client = reqwest::Client::new();
    let mut round = 0usize;
    while !stream.stop.load(Ordering::SeqCst) {
        round += 1;
        let batch = (worker + round).is_multiple_of(3);
        let (path, body, n) = if batch {
            let first = next.fetch_add(BATCH, Ordering::SeqCst);
            let events: Vec<Value> = (first..first + BATCH).map(event).collect();
            ("events/batch", json!({"events": events}), BATCH)
        } else {
            ("events", event(next.fetch_add(1, Ordering::SeqCst)), 1)
        };
        let sent = client
            .post(format!("{}/v1/projects/p/{path}", stream.base()))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let answer = match sent {
            Ok(resp) if resp.status() == 400 => {
                panic!("refused: {}", resp.text().await.unwrap_or_default())
            }
            Ok(resp) if resp.status() == 202 => resp
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
            _ => None,
        };
        match answer {
            Some(answer) if batch => {
                let events = answer["events"].as_array().cloned().unwrap_or_default();
                assert_eq!(events.len(), n, "a batch answered for part of its events");
                events.iter().for_each(|e| stream.accept(e));
            }
            Some(answer) => stream.accept(&answer),
            None => {
                stream.refused.fetch_add(n, Ordering::SeqCst);
                // Down between a kill and a restart: try again shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A receiver that fails every `FAIL_EVERY`-th request with 500 and notes
/// when it answered 2xx to which delivery.
async fn flaky_receiver(successes: Successes) -> Receiver {
    Receiver::start_with(move |n, request| {
        if n % FAIL_EVERY == FAIL_EVERY - 1 {
            return Reply::status(500);
        }
        successes
            .lock()
            .unwrap()
            .entry(request.header("webhook-id").to_string())
            .or_default()
            .push(request.at);
        Reply::status(200)
    })
    .await
}

/// A pseudo-random number in `range` (xorshift; seeded from the clock and
/// printed, so a failing run can be told apart).
fn next_in(state: &mut u64, range: std::ops::Range<u64>) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    range.start + *state % (range.end - range.start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_at_random_moments_loses_no_accepted_event() {
    let kills: usize = std::env::var("MLHOOK_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash run: {kills} kills, seed {seed}");
    // Enough retries that a delivery failing by chance is never exhausted.
    let schedule = ["100ms"; 12].join(",");
    let mut server = Server::start_with(&[
        "--retry-schedule",
        &schedule,
        "--retry-jitter",
        "0",
        "--scan-interval",
        "100ms",
        "--lane-concurrency",
        "4",
    ])
    .await;
    let successes: Successes = Arc::default();
    let receiver = flaky_receiver(successes.clone()).await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/hook", receiver.url), "events": ["*"]}),
        )
        .await;

    let stream = Arc::new(Stream {
        base: Mutex::new(server.base.clone()),
        accepted: Mutex::default(),
        refused: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..4)
        .map(|w| tokio::spawn(send_loop(stream.clone(), w, next.clone())))
        .collect();

    let mut killed_at = Vec::new();
    let started = Instant::now();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(next_in(&mut seed, 200..1500))).await;
        server.kill9();
        killed_at.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(next_in(&mut seed, 0..300))).await;
        server.restart().await;
        *stream.base.lock().unwrap() = server.base.clone();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream.stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.unwrap();
    }
    let accepted: Vec<String> = stream.accepted.lock().unwrap().clone();
    assert!(!accepted.is_empty(), "no event was accepted");

    // Everything accepted arrives, however many kills it went through.
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let missing: Vec<String> = {
            let got = successes.lock().unwrap();
            accepted
                .iter()
                .filter(|id| !got.contains_key(*id))
                .cloned()
                .collect()
        };
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let got = successes.lock().unwrap().clone();
    let duplicated: Vec<(&String, &Vec<Instant>)> =
        got.iter().filter(|(_, times)| times.len() > 1).collect();
    let extra: usize = duplicated.iter().map(|(_, t)| t.len() - 1).sum();
    eprintln!(
        "crash run: {kills} kills in {:.1} s; {} deliveries accepted, {} refused or cut off; \
         {} requests received ({} answered 500); {} delivered twice or more ({extra} extra \
         successes, {:.3} % of accepted); {} missing",
        started.elapsed().as_secs_f64(),
        accepted.len(),
        stream.refused.load(Ordering::SeqCst),
        receiver.count(),
        receiver.count() / FAIL_EVERY,
        duplicated.len(),
        100.0 * extra as f64 / accepted.len() as f64,
        missing.len(),
    );
    assert!(
        missing.is_empty(),
        "{} accepted deliveries never arrived, e.g. {:?}; log:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        server.log()
    );
    // A second success of one delivery straddles a kill: the first was not
    // yet recorded when the process died.
    for (id, times) in &duplicated {
        for pair in times.windows(2) {
            assert!(
                killed_at.iter().any(|k| pair[0] <= *k && *k <= pair[1]),
                "{id} succeeded twice with no kill in between"
            );
        }
    }
}
