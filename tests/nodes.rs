//! Several nodes on one PostgreSQL database, and PostgreSQL going away:
//! real `mlhook serve` processes, a real receiver, a fresh database per test
//! (on 127.0.0.1:5432), and for the outage a private PostgreSQL server that
//! the test stops and starts.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::pg::{PrivateServer, TestDatabase, with_database};
use common::{ADMIN, Received, Receiver, Reply, Server, flags};
use serde_json::{Value, json};

/// Short leases and scans, so a dead node's work moves within seconds.
const LEASE: &str = "3s";

fn payload(i: usize) -> Value {
    json!({"workspaceName": "ml", "registryModelName": "churn", "version": i.to_string(),
           "tags": [], "createdAt": 1795600000, "sourceExperimentKey": null})
}

/// A node on `database_url`; every node of a test shares the key file.
async fn node(database_url: &str, key_file: &std::path::Path) -> Server {
    Server::start_with(&flags(&[
        "--database-url",
        database_url,
        "--secret-key-file",
        key_file.to_str().unwrap(),
        "--lease-duration",
        LEASE,
        "--scan-interval",
        "200ms",
        "--db-pool-size",
        "4",
    ]))
    .await
}

/// One event; its delivery ids when answered 202, else the status and the
/// Retry-After header (None when the node could not be reached at all).
async fn post_event(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    i: usize,
) -> Result<Vec<String>, Option<(u16, Option<String>)>> {
    let response = client
        .post(format!("{base}/v1/projects/{project}/events"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(json!({"type": "MODEL_VERSION_CREATED", "payload": payload(i)}).to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|_| None)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status == 202 {
        Ok(body["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect())
    } else {
        assert!(
            !(200..300).contains(&status),
            "a 2xx must list its deliveries: {body}"
        );
        Err(Some((status, retry_after)))
    }
}

/// Arrivals per `webhook-id`.
fn arrivals(received: &[Received]) -> HashMap<String, Vec<Instant>> {
    let mut by_id: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in received {
        by_id
            .entry(r.header("webhook-id").to_string())
            .or_default()
            .push(r.at);
    }
    by_id
}

/// Waits until every id in `ids` arrived at least once.
async fn wait_for_ids(receiver: &Receiver, ids: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = arrivals(&receiver.received());
        let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged deliveries never arrived, e.g. {:?}",
            missing.len(),
            ids.len(),
            &missing[..missing.len().min(3)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup(server: &Server, receiver: &Receiver) -> String {
    server.create_project("team").await;
    let hook = server
        .create_webhook(
            "team",
            json!({"url": format!("{}/hook", receiver.url), "events": ["*"]}),
        )
        .await;
    hook["id"].as_str().unwrap().to_string()
}

/// Waits until `server` routes the project's events to `expected` webhooks.
async fn routed_within(server: &Server, expected: usize, within: Duration) -> Duration {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(ids) = post_event(&client, &server.base, "team", 0).await
            && ids.len() == expected
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{} did not route to {expected} webhook(s) within {within:?}",
            server.base
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_a_stream_and_one_dies() {
    let db = TestDatabase::create().await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("secret.key");
    // Fast at first; slow later, so that the node killed has work queued.
    let slow = Arc::new(AtomicBool::new(false));
    let receiver = {
        let slow = slow.clone();
        Receiver::start_with(move |_, _| Reply {
            delay: Duration::from_millis(if slow.load(Ordering::SeqCst) { 500 } else { 5 }),
            ..Reply::status(200)
        })
        .await
    };
    let mut a = node(&db.url, &key_file).await;
    let b = node(&db.url, &key_file).await;
    setup(&a, &receiver).await;
    routed_within(&b, 1, Duration::from_secs(2)).await;

    // A stream to both nodes at once: every delivery arrives exactly once.
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let base = if i % 2 == 0 { &a.base } else { &b.base }.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            post_event(&client, &base, "team", i).await
        }));
        if i % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        acknowledged.extend(t.await.unwrap().expect("both nodes accept"));
    }
    // The routing probes of `routed_within` went out too.
    let probes: Vec<String> = arrivals(&receiver.received()).into_keys().collect();
    acknowledged.extend(probes);
    wait_for_ids(&receiver, &acknowledged, Duration::from_secs(30)).await;
    let seen = arrivals(&receiver.settle(Duration::from_millis(1500)).await);
    let twice: Vec<(&String, usize)> = seen
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(id, at)| (id, at.len()))
        .collect();
    assert!(
        twice.is_empty(),
        "deliveries sent more than once: {twice:?}"
    );

    // The stream again; one node is killed (SIGKILL) half-way. The other
    // finishes every delivery the dead one had acknowledged.
    slow.store(true, Ordering::SeqCst);
    let mut tasks = Vec::new();
    let mut killed_at = None;
    for i in 0..400 {
        let on_a = i % 2 == 0;
        let base = if on_a { &a.base } else { &b.base }.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            (on_a, post_event(&client, &base, "team", i).await)
        }));
        if i == 200 {
            // A has deliveries in flight and queued: kill it.
            tokio::time::sleep(Duration::from_millis(30)).await;
            a.kill9();
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let killed_at = killed_at.unwrap();
    let (mut second, mut from_a) = (Vec::new(), Vec::new());
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            (on_a, Ok(ids)) => {
                if on_a {
                    from_a.extend(ids.iter().cloned());
                }
                second.extend(ids);
            }
            (_, Err(_)) => refused += 1,
        }
    }
    assert!(
        refused > 0,
        "the killed node should have refused some events"
    );
    assert!(second.len() >= 200, "the living node kept accepting");
    wait_for_ids(&receiver, &second, Duration::from_secs(60)).await;
    let seen = arrivals(&receiver.settle(Duration::from_secs(2)).await);
    // A delivery the dead node sent but could not record is sent again by
    // the other (at least once) — never more often, and never twice while
    // both nodes lived.
    for id in &second {
        let times = &seen[id];
        assert!(times.len() <= 2, "{id} arrived {} times", times.len());
        if times.len() == 2 {
            assert!(
                times[0] < killed_at + Duration::from_millis(500),
                "{id} was sent twice, the first time after the kill"
            );
        }
    }
    // The other node did take over: some of A's deliveries arrived only
    // after A's leases ran out.
    let taken_over = from_a
        .iter()
        .filter(|id| {
            seen[*id]
                .iter()
                .all(|t| *t > killed_at + Duration::from_secs(1))
        })
        .count();
    let resent = second.iter().filter(|id| seen[*id].len() == 2).count();
    eprintln!(
        "A acknowledged {} before the kill; B sent {taken_over} of them after it, \
         {resent} of them a second time (sent by A, unrecorded)",
        from_a.len()
    );
    assert!(taken_over > 0, "nothing of A's was left to take over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_changes_reach_the_other_node_within_a_second() {
    let db = TestDatabase::create().await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("secret.key");
    let receiver = Receiver::start().await;
    let a = node(&db.url, &key_file).await;
    let b = node(&db.url, &key_file).await;
    let second = Duration::from_secs(1);

    // A project made on A is known to B (its events are accepted there).
    a.create_project("team").await;
    routed_within(&b, 0, second).await;

    // A webhook made on A is routed by B.
    let hook = a
        .create_webhook(
            "team",
            json!({"url": format!("{}/hook", receiver.url), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let took = routed_within(&b, 1, second).await;
    eprintln!("created on A, routed by B after {took:?}");

    // Disabled on A: B stops routing to it; enabled again: B routes again.
    let path = format!("/v1/projects/team/webhooks/{id}");
    let (status, _) = a.patch(&path, json!({"enabled": false})).await;
    assert_eq!(status, 200);
    routed_within(&b, 0, second).await;
    let (status, _) = a.patch(&path, json!({"enabled": true})).await;
    assert_eq!(status, 200);
    routed_within(&b, 1, second).await;

    // Deleted on A: B never routes to it again.
    let (status, _) = a.delete(&path).await;
    assert_eq!(status, 204);
    let took = routed_within(&b, 0, second).await;
    eprintln!("deleted on A, dropped by B after {took:?}");
    let client = reqwest::Client::new();
    for i in 0..20 {
        let ids = post_event(&client, &b.base, "team", i).await.unwrap();
        assert!(ids.is_empty(), "B still routes to the deleted webhook");
    }
    let before = receiver.count();
    assert_eq!(
        receiver.settle(Duration::from_millis(500)).await.len(),
        before
    );

    // A project deleted on A is gone on B too.
    let (status, _) = a.delete("/v1/projects/team").await;
    assert_eq!(status, 204);
    let start = Instant::now();
    loop {
        let (status, _) = b
            .post(
                "/v1/projects/team/events",
                json!({"type": "MODEL_VERSION_CREATED", "payload": payload(0)}),
            )
            .await;
        if status == 404 {
            break;
        }
        assert!(
            start.elapsed() < second,
            "B still accepts events of a deleted project"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stops_and_starts_mid_stream() {
    let pg = PrivateServer::start();
    let db = TestDatabase::create_on(&pg.url("postgres")).await;
    let url = with_database(&pg.url("postgres"), &db.name);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("secret.key");
    let receiver = Receiver::start().await;
    let server = node(&url, &key_file).await;
    setup(&server, &receiver).await;

    // A steady stream of events, whatever the database does.
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let streamer = {
        let (base, stop, client) = (server.base.clone(), stop.clone(), client.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let (base, client) = (base.clone(), client.clone());
                tasks.push(tokio::spawn(async move {
                    post_event(&client, &base, "team", i).await
                }));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tasks
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.pg_ctl_stop();
    let stopped_at = Instant::now();
    // Down: not ready, and ingest answers 503 with Retry-After.
    let mut not_ready = false;
    while stopped_at.elapsed() < Duration::from_secs(6) {
        let (status, _) = server.request("GET", "/readyz", None, None).await;
        if status == 503 {
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(not_ready, "readyz kept answering 200 without a database");
    let down = post_event(&client, &server.base, "team", 9999).await;
    match down {
        Err(Some((503, Some(retry_after)))) => assert!(retry_after.parse::<u32>().is_ok()),
        other => panic!("ingest without a database answered {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.pg_ctl_start();
    let restarted_at = Instant::now();

    // Up again: ready by itself, and the stream goes on.
    loop {
        let (status, _) = server.request("GET", "/readyz", None, None).await;
        if status == 200 {
            break;
        }
        assert!(
            restarted_at.elapsed() < Duration::from_secs(30),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    let (mut unavailable, mut other) = (0, Vec::new());
    for t in streamer.await.unwrap() {
        match t.await.unwrap() {
            Ok(ids) => acknowledged.extend(ids),
            Err(Some((503, Some(_)))) => unavailable += 1,
            Err(e) => other.push(e),
        }
    }
    assert!(other.is_empty(), "answers other than 202 or 503: {other:?}");
    assert!(unavailable > 0, "no 503 while the database was down");
    assert!(
        acknowledged.len() > 50,
        "the stream was accepted before and after"
    );
    // Every event that got a 202 is delivered: the ones in memory during the
    // outage, and the ones whose records waited for the database.
    wait_for_ids(&receiver, &acknowledged, Duration::from_secs(90)).await;
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{} acknowledged and delivered, {unavailable} answered 503 while down",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_alone_then_start_without_migrating() {
    let db = TestDatabase::create().await;
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mlhook"))
            .args(args)
            .env_remove("MLHOOK_DATABASE_URL")
            .output()
            .expect("mlhook runs")
    };
    let serve_skipping = || {
        run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--database-url",
            &db.url,
            "--skip-migrations",
        ])
    };
    // Nothing applied yet: a start that may not migrate refuses, saying what to do.
    let refused = serve_skipping();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("mlhook migrate"), "{stderr}");

    let first = run(&["migrate", "--database-url", &db.url]);
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("migrations applied: 1, 2, 3, 4"));
    let again = run(&["migrate", "--database-url", &db.url]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "migrations: up to date"
    );

    // Migrated: the node starts with --skip-migrations.
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(&flags(&[
        "--database-url",
        &db.url,
        "--skip-migrations",
        "--secret-key-file",
        keys.path().join("secret.key").to_str().unwrap(),
    ]))
    .await;
    server.create_project("team").await;

    // Over TLS: the machine's PostgreSQL has ssl = on (Debian's default);
    // sslmode=require fails unless the connection is encrypted.
    let mut tls = url::Url::parse(&db.url).unwrap();
    tls.query_pairs_mut().append_pair("sslmode", "require");
    let over_tls = run(&["migrate", "--database-url", tls.as_str()]);
    assert!(over_tls.status.success(), "{over_tls:?}");
    assert_eq!(
        String::from_utf8_lossy(&over_tls.stdout).trim(),
        "migrations: up to date"
    );

    // The same command migrates a SQLite data directory.
    let sqlite = run(&["migrate", "--data-dir", data.path().to_str().unwrap()]);
    assert!(sqlite.status.success(), "{sqlite:?}");
    assert!(data.path().join("mlhook.db").exists());
}
