//! Several nodes on one PostgreSQL database, and PostgreSQL going away:
//! real `mlhook serve` processes, a real receiver, a fresh database per test
//! (on 127.0.0.1:5432), and for the outage a private PostgreSQL server that
//! the test stops and starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::pg::{PrivateServer, TestDatabase, with_database};
use crate::common::{ADMIN, Received, Receiver, Reply, Server, flags};
use serde_json::{Value, json};

/// Short leases and scans, so a dead node's work moves within seconds.
const LEASE: &str = "3s";

fn payload(i: usize) -> Value {
    json!({"workspaceName": "ml", "registryModelName": "churn", "version": i.to_string(),
           "tags": [], "createdAt": 1795600000, "sourceExperimentKey": null})
}

/// A node on `database_url`; every node of a test shares the key file.
async fn node(database_url: &str, key_file: &std::path::Path) -> Server {
    node_with(database_url, key_file, &flags(&["--lease-duration", LEASE])).await
}

/// A node with the settings of `node` but the lease and the retries, plus `extra`.
async fn node_with(database_url: &str, key_file: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "--database-url",
        database_url,
        "--secret-key-file",
        key_file.to_str().unwrap(),
        "--scan-interval",
        "200ms",
        "--db-pool-size",
        "4",
    ];
    args.extend_from_slice(extra);
    Server::start_with(&args).await
}

/// One request; its status, its Retry-After header and how long it took.
async fn timed(
    client: &reqwest::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let mut request = client
        .request(method.parse().unwrap(), url)
        .bearer_auth(ADMIN)
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = response.bytes().await;
    (status, retry_after, started.elapsed())
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

/// The outage test's `--db-acquire-timeout`: every request waits at most
/// this long for the database, whatever it does, before its 503.
const DB_WAIT: Duration = Duration::from_secs(3);
/// What a loaded test machine may add to it.
const SLACK: Duration = Duration::from_millis(1500);

/// While the database is down, one request of each route family (ingest,
/// single and batch; webhook writes; reads), all at once: each is answered
/// 503 with Retry-After within `DB_WAIT`.
async fn every_route_answers_503_in_time(client: &reqwest::Client, base: &str, hook: &str) {
    let event = json!({"type": "MODEL_VERSION_CREATED", "payload": payload(9999)});
    let hooks = format!("{base}/v1/projects/team/webhooks");
    let probes = [
        (
            "single ingest",
            "POST",
            format!("{base}/v1/projects/team/events"),
            Some(event.clone()),
        ),
        (
            "batch ingest",
            "POST",
            format!("{base}/v1/projects/team/events/batch"),
            Some(json!({"events": [event.clone(), event]})),
        ),
        (
            "webhook create",
            "POST",
            hooks.clone(),
            Some(json!({"url": "http://127.0.0.1:9/x", "events": ["*"]})),
        ),
        (
            "webhook update",
            "PATCH",
            format!("{hooks}/{hook}"),
            Some(json!({"enabled": false})),
        ),
        ("webhook list", "GET", hooks.clone(), None),
        (
            "delivery log",
            "GET",
            format!("{base}/v1/projects/team/deliveries"),
            None,
        ),
        (
            "event list",
            "GET",
            format!("{base}/v1/projects/team/events"),
            None,
        ),
    ];
    let tasks: Vec<_> = probes
        .into_iter()
        .map(|(name, method, url, body)| {
            let client = client.clone();
            tokio::spawn(async move { (name, timed(&client, method, url, body).await) })
        })
        .collect();
    for task in tasks {
        let (name, (status, retry_after, took)) = task.await.unwrap();
        eprintln!("{name} without a database: {status} after {took:?}");
        assert_eq!(status, 503, "{name} without a database");
        assert!(
            retry_after.is_some_and(|r| r.parse::<u32>().is_ok()),
            "{name}: 503 without Retry-After"
        );
        assert!(
            took <= DB_WAIT + SLACK,
            "{name} answered after {took:?}, more than the {DB_WAIT:?} bound"
        );
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
    let server = node_with(
        &url,
        &key_file,
        &flags(&["--lease-duration", LEASE, "--db-acquire-timeout", "3s"]),
    )
    .await;
    let hook = setup(&server, &receiver).await;

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
                    let started = Instant::now();
                    let answer = post_event(&client, &base, "team", i).await;
                    (answer, started.elapsed())
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
    every_route_answers_503_in_time(&client, &server.base, &hook).await;
    // Long enough for the stream's requests to queue behind batches that
    // wait for the database: they must not wait for those too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    every_route_answers_503_in_time(&client, &server.base, &hook).await;
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
    let mut slowest_503 = Duration::ZERO;
    for t in streamer.await.unwrap() {
        match t.await.unwrap() {
            (Ok(ids), _) => acknowledged.extend(ids),
            (Err(Some((503, Some(_)))), took) => {
                unavailable += 1;
                slowest_503 = slowest_503.max(took);
            }
            (Err(e), _) => other.push(e),
        }
    }
    eprintln!("the stream's slowest 503 took {slowest_503:?}");
    assert!(
        slowest_503 <= DB_WAIT + SLACK,
        "an event post waited {slowest_503:?} for its 503, more than the {DB_WAIT:?} bound"
    );
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

/// The node-death test's `--node-timeout`, and its heartbeat period (a fifth).
const NODE_TIMEOUT: Duration = Duration::from_secs(3);
const HEARTBEAT: Duration = Duration::from_millis(600);

/// Posts `n` events to `server` and waits until each delivery's first
/// attempt (answered 500) arrived and had time to be recorded.
async fn first_attempts_failed(server: &Server, receiver: &Receiver, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.extend(post_event(&client, &server.base, "team", i).await.unwrap());
    }
    wait_for_ids(receiver, &ids, Duration::from_secs(10)).await;
    // The recorder's group commit, well within the 2-s retry.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ids
}

/// Arrivals of each of `ids` after `since`.
fn arrived_after(
    receiver: &Receiver,
    ids: &[String],
    since: Instant,
) -> HashMap<String, Vec<Instant>> {
    let seen = arrivals(&receiver.received());
    ids.iter()
        .map(|id| {
            let after = seen
                .get(id)
                .into_iter()
                .flatten()
                .filter(|t| **t > since)
                .copied();
            (id.clone(), after.collect())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_or_stalled_nodes_retries_move_within_the_node_timeout() {
    let db = TestDatabase::create().await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("secret.key");
    // Each delivery's first attempt fails; its retry, 2 s later, succeeds.
    let seen_once = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let receiver = {
        let seen_once = seen_once.clone();
        Receiver::start_with(move |_, received| {
            let first = seen_once
                .lock()
                .unwrap()
                .insert(received.header("webhook-id").to_string());
            Reply::status(if first { 500 } else { 200 })
        })
        .await
    };
    // A lease far longer than the test: only the heartbeat can move the work.
    let settings = [
        "--lease-duration",
        "120s",
        "--node-timeout",
        "3s",
        "--retry-schedule",
        "2s,2s",
        "--retry-jitter",
        "0",
    ];
    let mut a = node_with(&db.url, &key_file, &settings).await;
    let b = node_with(&db.url, &key_file, &settings).await;
    setup(&a, &receiver).await;
    routed_within(&b, 1, Duration::from_secs(2)).await;
    let bound = NODE_TIMEOUT + HEARTBEAT + SLACK;

    // A stalls (SIGSTOP) with retries waiting in its memory: B sends them
    // once A's heartbeat is older than the node timeout. A, woken, learns it
    // was taken for dead and sends none of them again.
    let ids = first_attempts_failed(&a, &receiver, 20).await;
    a.signal("STOP");
    let stalled_at = Instant::now();
    wait_for_ids_after(&receiver, &ids, stalled_at, Duration::from_secs(30)).await;
    let took = latest_first(&arrived_after(&receiver, &ids, stalled_at)) - stalled_at;
    eprintln!("A stalled: B sent its retries within {took:?}");
    assert!(
        took <= bound + Duration::from_secs(2),
        "retries of a stalled node took {took:?}"
    );
    a.signal("CONT");
    tokio::time::sleep(NODE_TIMEOUT).await;
    for (id, times) in arrived_after(&receiver, &ids, stalled_at) {
        assert_eq!(
            times.len(),
            1,
            "{id}: the stalled node sent it again after waking"
        );
    }
    assert!(
        a.log().contains("taken for dead"),
        "A did not notice it was taken for dead"
    );

    // A (alive again) takes new events; then it is killed (SIGKILL) with
    // retries due 2 s after their first attempt. B sends them within the
    // node timeout and one heartbeat, never the 120-s lease.
    let ids = first_attempts_failed(&a, &receiver, 20).await;
    a.kill9();
    let killed_at = Instant::now();
    wait_for_ids_after(&receiver, &ids, killed_at, Duration::from_secs(30)).await;
    let after = arrived_after(&receiver, &ids, killed_at);
    let took = latest_first(&after) - killed_at;
    eprintln!("A killed: B sent its retries within {took:?}");
    assert!(
        took <= bound,
        "retries of a dead node took {took:?}, over {bound:?}"
    );
    receiver.settle(Duration::from_secs(1)).await;
    let seen = arrivals(&receiver.received());
    for id in &ids {
        // The failed first attempt, then B's retry: nothing was in flight
        // at the kill, so nothing more.
        assert_eq!(seen[id].len(), 2, "{id} arrived {} times", seen[id].len());
    }
    assert!(
        b.log().contains("nodes found dead"),
        "B never logged A's death"
    );
}

/// Waits until each of `ids` arrived again after `since`.
async fn wait_for_ids_after(
    receiver: &Receiver,
    ids: &[String],
    since: Instant,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let after = arrived_after(receiver, ids, since);
        let missing = after.values().filter(|t| t.is_empty()).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} retries never arrived after {:?}",
            ids.len(),
            since
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The latest of the first arrivals.
fn latest_first(after: &HashMap<String, Vec<Instant>>) -> Instant {
    after
        .values()
        .map(|t| *t.iter().min().expect("arrived"))
        .max()
        .expect("some ids")
}
