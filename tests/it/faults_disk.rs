//! Fault suite, disk full: the data directory on a small tmpfs this test
//! mounts (root is needed; CI runs as root), filled by a filler file.
//!
//! While the disk is full, ingest answers 503 and never 2xx for an event it
//! did not store, and /readyz answers 503; within 5 s of the filler's removal
//! every write path works again without a restart (ingest, a webhook write,
//! lease renewal, disabling on 410, recover and the claims that deliver what
//! it recovered), and every event answered 202 reaches its receiver.
//!
//! Without root, set MLHOOK_TEST_SKIP_TMPFS to the reason to skip; otherwise
//! a failed mount fails the test.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::{ADMIN, Receiver, Reply, Server};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// How long every write path may take to work again once space returns.
const RECOVERY: Duration = Duration::from_secs(5);

/// A tmpfs mounted on a fresh directory, unmounted when dropped (a failing
/// test too).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) when MLHOOK_TEST_SKIP_TMPFS is set.
    fn mount(size_mib: u32) -> Option<Tmpfs> {
        if let Ok(reason) = std::env::var("MLHOOK_TEST_SKIP_TMPFS") {
            eprintln!("skipped: MLHOOK_TEST_SKIP_TMPFS={reason}");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "could not mount a tmpfs on {} ({status}): this suite needs root; \
             set MLHOOK_TEST_SKIP_TMPFS to the reason to skip it",
            dir.path().display()
        );
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still busy (a server that has not exited yet): detach it.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A file that takes every free byte of its volume until removed.
struct Filler {
    path: PathBuf,
}

impl Filler {
    fn fill(volume: &Path) -> Filler {
        let path = volume.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler created");
        // Large writes first, then pages, until nothing more fits.
        for chunk in [1 << 20, 4096] {
            let block = vec![0xa5u8; chunk];
            while file.write_all(&block).is_ok() {}
        }
        let _ = file.sync_all();
        Filler { path }
    }

    fn remove(self) {
        std::fs::remove_file(&self.path).expect("filler removed");
    }
}

/// Every delivery id a receiver saw.
fn seen(receivers: &[&Receiver]) -> HashSet<String> {
    receivers
        .iter()
        .flat_map(|r| r.received())
        .map(|r| r.header("webhook-id").to_string())
        .collect()
}

fn delivery_ids(accepted: &Value) -> Vec<String> {
    accepted["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliveries in {accepted}"))
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// Sends one event; answers its status and body.
async fn send(server: &Server, event_type: &str, payload: &Value) -> (StatusCode, Value) {
    server
        .post(
            "/v1/projects/p/events",
            json!({"type": event_type, "payload": payload}),
        )
        .await
}

async fn readyz(server: &Server) -> (StatusCode, Value) {
    server.request("GET", "/readyz", None, None).await
}

/// A counter or histogram count of the `/metrics` text, 0 when absent.
async fn metric(server: &Server, series: &str) -> f64 {
    let (status, text) = server.request("GET", "/metrics", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let text = text.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `check` until it holds or `RECOVERY` has passed since `since`;
/// answers how long it took.
async fn within_recovery<F, Fut>(since: Instant, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < RECOVERY,
            "{what}: not working again {RECOVERY:?} after space returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const SERVER_FLAGS: [&str; 8] = [
    "--retry-schedule",
    "100ms,200ms",
    "--retry-jitter",
    "0",
    "--lease-duration",
    "1s",
    "--scan-interval",
    "200ms",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_writes_and_every_write_path_recovers_within_seconds() {
    let Some(volume) = Tmpfs::mount(32) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &volume.path().join("data"),
        &logs.path().join("server.log"),
        &SERVER_FLAGS,
    )
    .await;
    let test_payload = server.get("/v1/event-types/TEST").await.1["example"].clone();
    let model_payload = json!({
        "eventTrigger": "MODEL_VERSION_CREATED", "workspaceName": "ws",
        "registryModelName": "fraud", "version": "2.0.1", "tags": [], "deletedTags": [],
        "status": null, "oldStatus": null, "createdAt": 1706191450, "sourceExperimentKey": null
    });
    server.create_project("p").await;

    // TEST events go to `fast` and to `flaky`, which fails until told
    // otherwise (its deliveries are exhausted, then recovered and claimed);
    // MODEL_VERSION_CREATED to `slow`, which holds its deliveries (and their
    // leases) for 3 s, and to `gone`, which answers 410 after 1.5 s.
    let fast = Receiver::start().await;
    let flaky_ok = Arc::new(AtomicBool::new(false));
    let flaky = Receiver::start_with({
        let ok = flaky_ok.clone();
        move |_, _| Reply::status(if ok.load(Ordering::SeqCst) { 200 } else { 500 })
    })
    .await;
    let slow = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(200)
    })
    .await;
    let gone = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_millis(1500),
        ..Reply::status(410)
    })
    .await;
    let hook = |receiver: &Receiver, event: &str| json!({"url": format!("{}/hook", receiver.url), "events": [event]});
    let fast_hook = server.create_webhook("p", hook(&fast, "TEST")).await;
    let flaky_hook = server.create_webhook("p", hook(&flaky, "TEST")).await;
    server
        .create_webhook("p", hook(&slow, "MODEL_VERSION_CREATED"))
        .await;
    let gone_hook = server
        .create_webhook("p", hook(&gone, "MODEL_VERSION_CREATED"))
        .await;
    let mut accepted: Vec<String> = Vec::new();
    for _ in 0..5 {
        accepted.extend(delivery_ids(
            &server.send_event("p", "TEST", test_payload.clone()).await,
        ));
    }
    // In flight to `slow` and `gone` while the disk fills: their leases are
    // renewed (and fail), and `gone`'s 410 comes while nothing can be written.
    accepted.extend(delivery_ids(
        &server
            .send_event("p", "MODEL_VERSION_CREATED", model_payload.clone())
            .await,
    ));

    let filler = Filler::fill(volume.path());
    let full_since = Instant::now();
    let mut refused = 0;
    let mut stored_while_full = 0;
    while full_since.elapsed() < Duration::from_secs(3) || refused < 10 {
        assert!(
            full_since.elapsed() < Duration::from_secs(20),
            "ingest never answered 503 on a full disk"
        );
        let (status, body) = send(&server, "TEST", &test_payload).await;
        match status {
            StatusCode::ACCEPTED => {
                // Only an event the store holds may be answered 202: it must
                // arrive like any other.
                stored_while_full += 1;
                accepted.extend(delivery_ids(&body));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
            }
            other => panic!("ingest on a full disk answered {other}: {body}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["reason"], "store full", "{body}");
    // Reads still work.
    let (status, body) = server.get("/v1/projects/p/webhooks").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .patch(
            &format!(
                "/v1/projects/p/webhooks/{}",
                fast_hook["id"].as_str().unwrap()
            ),
            json!({"description": "written while full"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // The faults that broke sqlx's writer connection did happen: lease
    // renewals failed while the disk was full.
    let lease_failures = metric(
        &server,
        "mlhook_store_write_errors_total{writer=\"leases\"}",
    )
    .await;
    assert!(lease_failures > 0.0, "no lease renewal failed while full");
    eprintln!(
        "full for {:?}: {refused} refused, {stored_while_full} stored",
        full_since.elapsed()
    );

    filler.remove();
    let space_back = Instant::now();
    let srv = &server;
    let leases = "mlhook_store_write_duration_seconds_count{writer=\"leases\"}";
    let leases_before = metric(srv, leases).await;
    let ready_in = within_recovery(space_back, "/readyz", || async move {
        readyz(srv).await.0 == StatusCode::OK
    })
    .await;
    let ingested = &RefCell::new(Vec::new());
    let model_payload = &model_payload;
    let ingest_in = within_recovery(space_back, "ingest", || async move {
        let (status, body) = send(srv, "MODEL_VERSION_CREATED", model_payload).await;
        if status == StatusCode::ACCEPTED {
            ingested.borrow_mut().extend(delivery_ids(&body));
        }
        status == StatusCode::ACCEPTED
    })
    .await;
    accepted.extend(ingested.take());
    let fast_path = &format!(
        "/v1/projects/p/webhooks/{}",
        fast_hook["id"].as_str().unwrap()
    );
    let webhook_write_in = within_recovery(space_back, "a webhook write", || async move {
        srv.patch(fast_path, json!({"description": "after"}))
            .await
            .0
            == StatusCode::OK
    })
    .await;
    let gone_path = &format!(
        "/v1/projects/p/webhooks/{}",
        gone_hook["id"].as_str().unwrap()
    );
    let disable_in = within_recovery(space_back, "disabling on 410", || async move {
        srv.get(gone_path).await.1["enabled"] == false
    })
    .await;
    // The event just ingested is held by `slow` for 3 s: its lease is renewed.
    let leases_in = within_recovery(space_back, "lease renewal", || async move {
        metric(srv, leases).await > leases_before
    })
    .await;
    flaky_ok.store(true, Ordering::SeqCst);
    let flaky_before = flaky.count();
    let recover_path = &format!(
        "/v1/projects/p/webhooks/{}/recover",
        flaky_hook["id"].as_str().unwrap()
    );
    let recover_in = within_recovery(space_back, "recover", || async move {
        srv.post(recover_path, json!({"since": "1h"})).await.0 == StatusCode::OK
    })
    .await;
    let flaky_ref = &flaky;
    let claims_in = within_recovery(
        space_back,
        "claims delivering recovered deliveries",
        || async move { flaky_ref.count() > flaky_before },
    )
    .await;
    eprintln!(
        "back after space returned: ready {ready_in:?}, ingest {ingest_in:?}, webhook write \
         {webhook_write_in:?}, disable {disable_in:?}, lease renewal {leases_in:?}, recover \
         {recover_in:?}, claims {claims_in:?}"
    );

    // Nothing answered 202 is lost: every delivery reaches its receiver.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let arrived = seen(&[&fast, &flaky, &slow, &gone]);
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|id| !arrived.contains(*id))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} accepted deliveries never arrived, e.g. {:?}\n{}",
            missing.len(),
            accepted.len(),
            missing.first(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !server.log().contains("non-zero transaction depth"),
        "sqlx's writer connection was left inside a transaction"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_on_a_full_disk_serves_reads_refuses_writes_and_recovers() {
    let Some(volume) = Tmpfs::mount(24) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(
        &volume.path().join("data"),
        &logs.path().join("server.log"),
        &SERVER_FLAGS,
    )
    .await;
    let payload = server.get("/v1/event-types/TEST").await.1["example"].clone();
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/hook", receiver.url), "events": ["TEST"]}),
        )
        .await;
    let mut accepted = delivery_ids(&server.send_event("p", "TEST", payload.clone()).await);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(server.terminate().success());

    let filler = Filler::fill(volume.path());
    server.restart_listening();
    let (status, body) = readyz(&server).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{body}\n{}",
        server.log()
    );
    assert_eq!(body["reason"], "store full", "{body}");
    let (status, body) = server.get("/v1/projects/p").await;
    assert_eq!(status, StatusCode::OK, "reads work on a full disk: {body}");
    for _ in 0..3 {
        let (status, body) = send(&server, "TEST", &payload).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }

    filler.remove();
    let space_back = Instant::now();
    let srv = &server;
    let ready_in = within_recovery(space_back, "/readyz", || async move {
        readyz(srv).await.0 == StatusCode::OK
    })
    .await;
    let ingested = &RefCell::new(Vec::new());
    let payload = &payload;
    let ingest_in = within_recovery(space_back, "ingest", || async move {
        let (status, body) = send(srv, "TEST", payload).await;
        if status == StatusCode::ACCEPTED {
            ingested.borrow_mut().extend(delivery_ids(&body));
        }
        status == StatusCode::ACCEPTED
    })
    .await;
    accepted.extend(ingested.take());
    eprintln!("back after space returned: ready {ready_in:?}, ingest {ingest_in:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepted.iter().all(|id| seen(&[&receiver]).contains(id)) {
        assert!(Instant::now() < deadline, "an accepted event never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
