//! Delivery log, test and validate, redeliver and recover, replay, the
//! failing-endpoint policy and mlhook's own operational events, against the
//! real `mlhook` binary and real receivers on 127.0.0.1.

use crate::common::*;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const MASK: &str = "********";
const SECRET: &str = "Bearer s3cr3t-receiver-token";
const PROTECTED: &str = "protected-value-8472";

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(s)
        .collect()
}

fn ids_of(list: &[Value]) -> Vec<String> {
    list.iter().map(|d| s(&d["id"])).collect()
}

fn set(ids: &[String]) -> HashSet<String> {
    ids.iter().cloned().collect()
}

/// Milliseconds since the epoch of an RFC 3339 time the API shows.
fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap_or_else(|| panic!("{rfc3339}")))
        .unwrap_or_else(|e| panic!("{rfc3339} is not RFC 3339: {e}"))
        .timestamp_millis()
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Percent-encodes what a query value cannot hold as is.
fn enc(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace(':', "%3A")
        .replace(' ', "%20")
}

/// NannyML's documented RUN_COMPLETED example, for a given model.
fn nannyml(model: &str) -> Value {
    json!({
        "header": {"model_name": model, "model_id": 28740, "notification_type": "RUN_COMPLETED"},
        "payload": {
            "run": {"started_at": "2024-01-25T14:04:10.157236"},
            "performance_alerts": {"cbpe": [{"metric_name": "specificity"}]},
            "other_alerts": {"univariate_drift": [{"metric_name": "country"}]},
            "success": ["unseen_values", "missing_values"],
            "report_link": "https://test.app.nannyml.com/model/1"
        }
    })
}

/// All ten Comet fields.
fn comet(model: &str, version: &str) -> Value {
    json!({
        "eventTrigger": "MODEL_VERSION_CREATED",
        "workspaceName": "acme-ml",
        "registryModelName": model,
        "version": version,
        "tags": ["production"],
        "deletedTags": [],
        "status": "Production",
        "oldStatus": null,
        "createdAt": 1706191450,
        "sourceExperimentKey": null
    })
}

/// A UbiOps deployment request with a result.
fn ubiops_with_result() -> Value {
    json!({
        "event": "deployment_request_completed",
        "deployment_id": "3f6c1a52-8d2e-4b7a-9c41-5e0d7b2a9f13",
        "deployment_name": "churn",
        "deployment_version_id": "b1d7e9c4-2a65-4f38-8e17-6c9a0d3b5e21",
        "deployment_version_name": "v1",
        "request_id": "7e2b4c91-5f3a-4d86-a0c7-19e8d6f2b435",
        "status": "completed",
        "result": {"prediction": "churn", "score": 0.93},
        "text": "Deployment request 7e2b4c91-5f3a-4d86-a0c7-19e8d6f2b435 finished for deployment churn v1 in project p"
    })
}

fn body_has(request: &Received, needle: &str) -> bool {
    text(&request.body).contains(needle)
}

/// A request with any token; answers status and the raw text of the answer.
async fn raw(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{}", server.base, path))
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("request reaches mlhook");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"))
}

async fn get_ok(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// One page of a list.
async fn page(server: &Server, path: &str) -> Value {
    let body = get_ok(server, path).await;
    assert!(body["data"].is_array(), "{path}: {body}");
    assert!(
        body.get("next_cursor").is_some(),
        "{path}: no next_cursor: {body}"
    );
    body
}

/// Every item of a list, following `next_cursor`.
async fn walk(server: &Server, path: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            None => format!("{path}{sep}limit={limit}"),
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
        };
        let body = page(server, &url).await;
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= limit as usize, "{url}: {body}");
        all.extend(data.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
    panic!("{path}: the page walk never ended");
}

async fn deliveries(server: &Server, project: &str, query: &str) -> Vec<Value> {
    let path = if query.is_empty() {
        format!("/v1/projects/{project}/deliveries?limit=250")
    } else {
        format!("/v1/projects/{project}/deliveries?{query}&limit=250")
    };
    let body = page(server, &path).await;
    body["data"].as_array().unwrap().clone()
}

async fn delivery(server: &Server, project: &str, id: &str) -> Value {
    get_ok(server, &format!("/v1/projects/{project}/deliveries/{id}")).await
}

/// Polls one delivery until `done`; answers its detail.
async fn wait_delivery(
    server: &Server,
    project: &str,
    id: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/projects/{project}/deliveries/{id}");
    server.poll_until(&path, timeout, what, done).await
}

async fn wait_status(server: &Server, project: &str, id: &str, status: &str) -> Value {
    wait_delivery(server, project, id, Duration::from_secs(6), status, |d| {
        d["status"] == status
    })
    .await
}

async fn webhook(server: &Server, project: &str, id: &str) -> Value {
    get_ok(server, &format!("/v1/projects/{project}/webhooks/{id}")).await
}

async fn wait_disabled(server: &Server, project: &str, id: &str, timeout: Duration) -> Value {
    let path = format!("/v1/projects/{project}/webhooks/{id}");
    server
        .poll_until(&path, timeout, "disabled", |w| w["enabled"] == false)
        .await
}

/// The delivery id of `event_id` for `webhook_id`.
async fn delivery_for(server: &Server, project: &str, event_id: &str, webhook_id: &str) -> String {
    let event = get_ok(server, &format!("/v1/projects/{project}/events/{event_id}")).await;
    let found: Vec<String> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["webhook_id"] == webhook_id)
        .map(|d| s(&d["id"]))
        .collect();
    assert_eq!(found.len(), 1, "{event}");
    found[0].clone()
}

async fn send(
    server: &Server,
    project: &str,
    event_type: &str,
    payload: Value,
) -> (String, Vec<String>) {
    let accepted = server.send_event(project, event_type, payload).await;
    (s(&accepted["id"]), strings(&accepted["deliveries"]))
}

/// Asserts a 400 whose error names `field` (as `field` or in a detail).
fn assert_400_naming(status: StatusCode, body: &Value, field: &str, context: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{context}: {body}");
    let error = &body["error"];
    let named = error_fields(error);
    assert!(
        named.iter().any(|f| f == field),
        "{context}: error does not name {field:?}: {body}"
    );
}

fn header<'a>(headers: &'a Value, name: &str) -> &'a Value {
    &headers[name]
}

/// Checks the synchronous answer shape of test, validate and redeliver.
fn assert_outcome_shape(answer: &Value, context: &str) {
    let keys: HashSet<&str> = answer
        .as_object()
        .unwrap_or_else(|| panic!("{context}: {answer}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: HashSet<&str> = [
        "valid",
        "delivery_id",
        "request",
        "response",
        "error",
        "duration_ms",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want, "{context}: {answer}");
    assert!(answer["valid"].is_boolean(), "{context}: {answer}");
    assert!(answer["duration_ms"].is_i64(), "{context}: {answer}");
    assert_eq!(answer["request"]["method"], "POST", "{context}: {answer}");
    assert!(
        answer["request"]["headers"].is_object(),
        "{context}: {answer}"
    );
    assert!(answer["request"]["body"].is_string(), "{context}: {answer}");
}

// ---------------------------------------------------------------------------
// 1. The delivery log: filters, order, pages
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn delivery_log_filters_by_webhook_event_type_and_every_status_newest_first() {
    let server = Server::start().await;
    let ok = Receiver::start().await;
    let bad = Receiver::start_with(|_, _| Reply::status(500)).await;
    // Answers long after the test ends: its delivery stays pending.
    let hanging = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_secs(25),
        ..Reply::status(200)
    })
    .await;
    // Retry-After an hour: the delivery stays failed with a retry due.
    let later = Receiver::start_with(|_, _| Reply {
        headers: vec![("retry-after", "3600".to_string())],
        ..Reply::status(429)
    })
    .await;
    server.create_project("p").await;
    server.create_project("q").await;
    let hook = |url: String, events: Value| json!({"url": url, "events": events});
    let a = s(&server
        .create_webhook("p", hook(format!("{}/a", ok.url), json!(["*"])))
        .await["id"]);
    let b = s(&server
        .create_webhook(
            "p",
            hook(format!("{}/b", bad.url), json!(["RUN_COMPLETED"])),
        )
        .await["id"]);
    let c = s(&server
        .create_webhook(
            "p",
            hook(
                format!("{}/c", hanging.url),
                json!(["MODEL_VERSION_CREATED"]),
            ),
        )
        .await["id"]);
    let d = s(&server
        .create_webhook(
            "p",
            hook(format!("{}/d", later.url), json!(["MODEL_VERSION_CREATED"])),
        )
        .await["id"]);
    let e = s(&server
        .create_webhook(
            "p",
            hook(format!("{}/e", later.url), json!(["MODEL_VERSION_CREATED"])),
        )
        .await["id"]);
    // Another project's deliveries never show in p's log.
    server
        .create_webhook("q", hook(format!("{}/q", ok.url), json!(["*"])))
        .await;
    server
        .send_event("q", "RUN_COMPLETED", nannyml("q-model"))
        .await;

    let (e1, d1) = send(&server, "p", "RUN_COMPLETED", nannyml("m1")).await;
    let (e2, d2) = send(&server, "p", "MODEL_VERSION_CREATED", comet("m2", "1")).await;
    let (e3, d3) = send(&server, "p", "RUN_COMPLETED", nannyml("m3")).await;
    assert_eq!((d1.len(), d2.len(), d3.len()), (2, 4, 2));

    let of = |event: &str, hook: &str| {
        let server = &server;
        let event = event.to_string();
        let hook = hook.to_string();
        async move { delivery_for(server, "p", &event, &hook).await }
    };
    let a1 = of(&e1, &a).await;
    let a2 = of(&e2, &a).await;
    let a3 = of(&e3, &a).await;
    let b1 = of(&e1, &b).await;
    let b3 = of(&e3, &b).await;
    let c2 = of(&e2, &c).await;
    let d2d = of(&e2, &d).await;
    let e2e = of(&e2, &e).await;
    for id in [&a1, &a2, &a3] {
        wait_status(&server, "p", id, "succeeded").await;
    }
    for id in [&b1, &b3] {
        wait_status(&server, "p", id, "exhausted").await;
    }
    wait_status(&server, "p", &e2e, "failed").await;
    wait_status(&server, "p", &d2d, "failed").await;
    // A client disabling a webhook pauses its unfinished deliveries.
    let (status, body) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{d}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_status(&server, "p", &d2d, "paused").await;
    hanging.wait_for(1, Duration::from_secs(5)).await;

    // Everything, newest first.
    let all = deliveries(&server, "p", "").await;
    let all_ids = ids_of(&all);
    let mut expected: Vec<String> = [d1.clone(), d2.clone(), d3.clone()].concat();
    expected.sort();
    expected.reverse();
    assert_eq!(all_ids, expected, "not every delivery, newest first");
    let position = |id: &str| all_ids.iter().position(|x| x == id).unwrap();
    assert!(position(&a3) < position(&a2) && position(&a2) < position(&a1));
    for view in &all {
        assert_eq!(view["is_test"], false, "{view}");
        assert!(
            view["created_at"].is_string() && view["updated_at"].is_string(),
            "{view}"
        );
        let event_of = |id: &str| {
            if d1.contains(&id.to_string()) {
                (&e1, "RUN_COMPLETED")
            } else if d2.contains(&id.to_string()) {
                (&e2, "MODEL_VERSION_CREATED")
            } else {
                (&e3, "RUN_COMPLETED")
            }
        };
        let (event_id, event_type) = event_of(view["id"].as_str().unwrap());
        assert_eq!(&view["event_id"], event_id.as_str(), "{view}");
        assert_eq!(view["event_type"], event_type, "{view}");
    }

    // By status: each of the five.
    let by_status = |status: &'static str| {
        let server = &server;
        async move {
            set(&ids_of(
                &deliveries(server, "p", &format!("status={status}")).await,
            ))
        }
    };
    assert_eq!(
        by_status("succeeded").await,
        set(&[a1.clone(), a2.clone(), a3.clone()])
    );
    assert_eq!(by_status("exhausted").await, set(&[b1.clone(), b3.clone()]));
    assert_eq!(by_status("pending").await, set(std::slice::from_ref(&c2)));
    assert_eq!(by_status("failed").await, set(std::slice::from_ref(&e2e)));
    assert_eq!(by_status("paused").await, set(std::slice::from_ref(&d2d)));
    let failed = delivery(&server, "p", &e2e).await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert_eq!(failed["last_status_code"], 429, "{failed}");
    let due = millis(&failed["next_attempt_at"]);
    assert!(
        due > now_millis() + 3_000_000,
        "retry not an hour ahead: {failed}"
    );
    let exhausted = delivery(&server, "p", &b1).await;
    assert_eq!(exhausted["attempts"], 3, "{exhausted}");
    assert_eq!(exhausted["last_status_code"], 500, "{exhausted}");
    assert!(exhausted["next_attempt_at"].is_null(), "{exhausted}");
    let pending = delivery(&server, "p", &c2).await;
    assert_eq!(pending["attempts"], 0, "{pending}");
    assert!(pending["last_status_code"].is_null(), "{pending}");

    // By webhook, event, type, and combined.
    let ids = |query: String| {
        let server = &server;
        async move { ids_of(&deliveries(server, "p", &query).await) }
    };
    assert_eq!(
        ids(format!("webhook_id={b}")).await,
        vec![b3.clone(), b1.clone()]
    );
    assert_eq!(set(&ids(format!("event_id={e2}")).await), set(&d2));
    assert_eq!(
        set(&ids("event_type=MODEL_VERSION_CREATED".to_string()).await),
        set(&d2)
    );
    assert_eq!(
        set(&ids("event_type=RUN_COMPLETED".to_string()).await),
        set(&[d1.clone(), d3.clone()].concat())
    );
    assert_eq!(
        ids("event_type=RUN_COMPLETED&status=succeeded".to_string()).await,
        vec![a3.clone(), a1.clone()]
    );
    assert_eq!(
        ids(format!("webhook_id={a}&event_id={e2}")).await,
        vec![a2.clone()]
    );
    assert!(
        ids(format!("webhook_id={b}&status=succeeded"))
            .await
            .is_empty()
    );
    assert!(
        ids("event_type=MODEL_VERSION_DELETED".to_string())
            .await
            .is_empty()
    );

    // An unknown status is refused naming `status`.
    let (status, body) = server.get("/v1/projects/p/deliveries?status=done").await;
    assert_400_naming(status, &body, "status", "status=done");
    let (status, body) = server
        .get("/v1/projects/p/deliveries?status=Succeeded")
        .await;
    assert_400_naming(status, &body, "status", "status=Succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn since_and_until_take_rfc3339_times_and_durations_ago() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/a", receiver.url), "events": ["*"]}),
        )
        .await;
    let mut first = Vec::new();
    let mut first_events = Vec::new();
    for i in 0..2 {
        let (event, ids) = send(&server, "p", "RUN_COMPLETED", nannyml(&format!("g1-{i}"))).await;
        first.extend(ids);
        first_events.push(event);
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mark = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut second = Vec::new();
    let mut second_events = Vec::new();
    for i in 0..2 {
        let (event, ids) = send(&server, "p", "RUN_COMPLETED", nannyml(&format!("g2-{i}"))).await;
        second.extend(ids);
        second_events.push(event);
    }

    let zulu = mark.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let plus_two = mark
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    assert!(plus_two.contains("+02:00"), "{plus_two}");
    let q = |query: String| {
        let server = &server;
        async move { set(&ids_of(&deliveries(server, "p", &query).await)) }
    };
    assert_eq!(q(format!("since={}", enc(&zulu))).await, set(&second));
    assert_eq!(q(format!("until={}", enc(&zulu))).await, set(&first));
    assert_eq!(q(format!("since={}", enc(&plus_two))).await, set(&second));
    assert_eq!(q(format!("until={}", enc(&plus_two))).await, set(&first));
    let all = set(&[first.clone(), second.clone()].concat());
    assert_eq!(q("since=1h".into()).await, all);
    assert!(q("until=1h".into()).await.is_empty());
    let long_ago = "2001-01-01T00:00:00Z";
    assert_eq!(q(format!("since={}", enc(long_ago))).await, all);
    assert!(q(format!("until={}", enc(long_ago))).await.is_empty());
    assert_eq!(
        q(format!("since={}&until={}", enc(long_ago), enc(&zulu))).await,
        set(&first)
    );

    // Durations ago: a third group 2.5 s after the others, asked for with a
    // 2 s window, so a loaded machine has margin on both sides.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (third_event, third) = send(&server, "p", "RUN_COMPLETED", nannyml("g3")).await;
    assert_eq!(q("since=2s".into()).await, set(&third));
    assert_eq!(q("until=2s".into()).await, all);

    // The event list takes the same filters.
    let events = |query: String| {
        let server = &server;
        async move {
            let body = page(server, &format!("/v1/projects/p/events?{query}")).await;
            set(&ids_of(body["data"].as_array().unwrap()))
        }
    };
    assert_eq!(
        events(format!("since={}", enc(&zulu))).await,
        set(&[second_events.clone(), vec![third_event.clone()]].concat())
    );
    assert_eq!(
        events(format!("until={}", enc(&zulu))).await,
        set(&first_events)
    );
    assert_eq!(
        events("since=2s".into()).await,
        set(std::slice::from_ref(&third_event))
    );

    for bad in ["yesterday", "2026-13-01T00:00:00Z", "-5m"] {
        let (status, body) = server
            .get(&format!("/v1/projects/p/deliveries?since={}", enc(bad)))
            .await;
        assert_400_naming(status, &body, "since", &format!("since={bad}"));
        let (status, body) = server
            .get(&format!("/v1/projects/p/deliveries?until={}", enc(bad)))
            .await;
        assert_400_naming(status, &body, "until", &format!("until={bad}"));
        let (status, body) = server
            .get(&format!("/v1/projects/p/events?since={}", enc(bad)))
            .await;
        assert_400_naming(status, &body, "since", &format!("events since={bad}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_walk_every_delivery_once_while_new_events_arrive() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/a", receiver.url), "events": ["*"]}),
        )
        .await;
    let events: Vec<Value> = (0..23)
        .map(|i| json!({"type": "RUN_COMPLETED", "payload": nannyml(&format!("m{i}"))}))
        .collect();
    let (status, body) = server
        .post("/v1/projects/p/events/batch", json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let snapshot = ids_of(&deliveries(&server, "p", "").await);
    assert_eq!(snapshot.len(), 23);
    let mut sorted = snapshot.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(snapshot, sorted, "not newest first");

    // Walk 5 at a time, publishing a new event before every page.
    let mut walked: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    let mut arrived: Vec<String> = Vec::new();
    loop {
        let path = match &cursor {
            None => "/v1/projects/p/deliveries?limit=5".to_string(),
            Some(c) => format!("/v1/projects/p/deliveries?limit=5&cursor={c}"),
        };
        let body = page(&server, &path).await;
        let data = body["data"].as_array().unwrap();
        sizes.push(data.len());
        walked.extend(ids_of(data));
        let (_, new) = send(&server, "p", "RUN_COMPLETED", nannyml("late")).await;
        arrived.extend(new);
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), data.last().and_then(|d| d["id"].as_str()));
                cursor = Some(next.to_string());
            }
            None => break,
        }
        assert!(sizes.len() < 20, "the walk never ends");
    }
    assert_eq!(sizes, vec![5, 5, 5, 5, 3]);
    assert_eq!(
        walked, snapshot,
        "the walk repeated, skipped, reordered or picked up new deliveries"
    );
    assert!(arrived.iter().all(|id| !walked.contains(id)));
    // The new ones are there, before the first page.
    let now = ids_of(&deliveries(&server, "p", "").await);
    assert_eq!(now.len(), 23 + arrived.len());
    assert_eq!(&now[arrived.len()..], snapshot.as_slice());

    // Exactly full last page: a cursor, then an empty page.
    let body = page(&server, "/v1/projects/p/deliveries?limit=250").await;
    assert!(body["next_cursor"].is_null(), "{body}");
    let total = now.len();
    let body = page(&server, &format!("/v1/projects/p/deliveries?limit={total}")).await;
    let last = s(&body["next_cursor"]);
    let rest = page(
        &server,
        &format!("/v1/projects/p/deliveries?limit={total}&cursor={last}"),
    )
    .await;
    assert!(rest["data"].as_array().unwrap().is_empty(), "{rest}");
    assert!(rest["next_cursor"].is_null(), "{rest}");
    // Default page size is 50, which holds them all here.
    let body = page(&server, "/v1/projects/p/deliveries").await;
    assert_eq!(body["data"].as_array().unwrap().len(), total);

    // Limits and unknown parameters.
    for limit in ["0", "251", "1000"] {
        let (status, body) = server
            .get(&format!("/v1/projects/p/deliveries?limit={limit}"))
            .await;
        assert_400_naming(status, &body, "limit", &format!("limit={limit}"));
        let (status, body) = server
            .get(&format!("/v1/projects/p/events?limit={limit}"))
            .await;
        assert_400_naming(status, &body, "limit", &format!("events limit={limit}"));
    }
    for query in [
        "limit=abc",
        "limit=-1",
        "foo=1",
        "webhook=wh_1",
        "status=failed&page=2",
    ] {
        for route in ["deliveries", "events"] {
            let (status, body) = server.get(&format!("/v1/projects/p/{route}?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route}?{query}: {body}");
            assert_eq!(
                body["error"]["code"], "invalid_request",
                "{route}?{query}: {body}"
            );
        }
    }
    let (_, body) = server.get("/v1/projects/p/deliveries?foo=1").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("foo"),
        "the unknown parameter is not named: {body}"
    );
    let (status, body) = server.get("/v1/projects/p/deliveries?limit=250").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.get("/v1/projects/p/deliveries?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    // The event list walks the same way.
    let event_snapshot = ids_of(&walk(&server, "/v1/projects/p/events", 250).await);
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/projects/p/events?limit=7".to_string(),
            Some(c) => format!("/v1/projects/p/events?limit=7&cursor={c}"),
        };
        let body = page(&server, &path).await;
        walked.extend(ids_of(body["data"].as_array().unwrap()));
        send(&server, "p", "RUN_COMPLETED", nannyml("later")).await;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, event_snapshot, "the event walk is not stable");
}

/// The docs promise: "new items sort before the first page and never appear in
/// later ones". A test send's delivery is written after the synchronous send,
/// under an id minted before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_test_send_is_logged_before_it_is_sent_and_walked_once() {
    let server = Server::start().await;
    let fast = Receiver::start().await;
    let slow = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_millis(1500),
        ..Reply::status(200)
    })
    .await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/fast", fast.url), "events": ["RUN_COMPLETED"]}),
        )
        .await;
    let slow_hook = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/slow", slow.url), "events": ["MODEL_VERSION_CREATED"]}),
        )
        .await["id"]);
    for i in 0..3 {
        send(&server, "p", "RUN_COMPLETED", nannyml(&format!("old{i}"))).await;
    }
    let base = server.base.clone();
    let test_call = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(format!("{base}/v1/projects/p/webhooks/{slow_hook}/test"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let answer: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        answer
    });
    slow.wait_for(1, Duration::from_secs(5)).await;
    for i in 0..3 {
        send(&server, "p", "RUN_COMPLETED", nannyml(&format!("new{i}"))).await;
    }
    let first = page(&server, "/v1/projects/p/deliveries?limit=2").await;
    let mut walked = ids_of(first["data"].as_array().unwrap());
    let snapshot = ids_of(&deliveries(&server, "p", "").await);
    // The test delivery is written before its send: already in the snapshot.
    assert_eq!(snapshot.len(), 7);
    let answer = test_call.await.unwrap();
    assert_eq!(answer["valid"], true, "{answer}");
    let test_delivery = s(&answer["delivery_id"]);
    // Now in the log…
    let shown = delivery(&server, "p", &test_delivery).await;
    assert_eq!(shown["is_test"], true, "{shown}");
    // …in its place by id: the walk meets it exactly once.
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let body = page(
            &server,
            &format!("/v1/projects/p/deliveries?limit=2&cursor={c}"),
        )
        .await;
        walked.extend(ids_of(body["data"].as_array().unwrap()));
        cursor = body["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(
        walked.iter().filter(|id| **id == test_delivery).count(),
        1,
        "{walked:?}"
    );
    assert_eq!(walked, snapshot);
}

// ---------------------------------------------------------------------------
// 2. One delivery with its history
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn delivery_detail_shows_each_attempt_with_masked_secrets_and_the_exact_body() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|n, _| {
        if n < 2 {
            Reply {
                headers: vec![("x-reason", format!("busy-{n}"))],
                body: format!("try later ({n})"),
                ..Reply::status(500)
            }
        } else {
            Reply {
                headers: vec![("x-receipt", "r-77".to_string())],
                body: "{\"ok\":true}".to_string(),
                ..Reply::status(200)
            }
        }
    })
    .await;
    server.create_project("p").await;
    let url = format!("{}/hook?team=ml", receiver.url);
    let created = server
        .create_webhook(
            "p",
            json!({
                "url": url,
                "events": ["MODEL_VERSION_CREATED"],
                "secret": SECRET,
                "headers": [
                    {"key": "X-Team", "value": "ml-platform"},
                    {"key": "X-Api-Key", "value": PROTECTED, "protected": true}
                ]
            }),
        )
        .await;
    let hook = s(&created["id"]);
    let payload = comet("churn", "7");
    let (event, ids) = send(&server, "p", "MODEL_VERSION_CREATED", payload.clone()).await;
    let id = ids[0].clone();
    receiver.wait_for(3, Duration::from_secs(5)).await;
    let detail = wait_delivery(
        &server,
        "p",
        &id,
        Duration::from_secs(5),
        "succeeded with 3 attempts",
        |d| d["status"] == "succeeded" && d["history"].as_array().is_some_and(|h| h.len() == 3),
    )
    .await;
    let got = receiver.received();
    assert_eq!(got.len(), 3);

    assert_eq!(detail["id"], id.as_str());
    assert_eq!(detail["event_id"], event.as_str());
    assert_eq!(detail["webhook_id"], hook.as_str());
    assert_eq!(detail["event_type"], "MODEL_VERSION_CREATED");
    assert_eq!(detail["attempts"], 3);
    assert_eq!(detail["last_status_code"], 200);
    assert_eq!(detail["is_test"], false);
    assert!(detail["next_attempt_at"].is_null(), "{detail}");
    let history = detail["history"].as_array().unwrap();
    let mut previous_start = 0;
    for (i, attempt) in history.iter().enumerate() {
        let context = format!("attempt {i}: {attempt}");
        assert_eq!(attempt["attempt"], i as u64 + 1, "{context}");
        assert_eq!(attempt["manual"], false, "{context}");
        let started = millis(&attempt["started_at"]);
        assert!(started >= previous_start, "{context}");
        previous_start = started;
        assert!(
            attempt["duration_ms"]
                .as_i64()
                .is_some_and(|d| (0..5000).contains(&d)),
            "{context}"
        );

        let request = &attempt["request"];
        assert_eq!(request["method"], "POST", "{context}");
        assert_eq!(request["url"], url.as_str(), "{context}");
        let headers = &request["headers"];
        assert_eq!(header(headers, "authorization"), MASK, "{context}");
        assert_eq!(header(headers, "x-api-key"), MASK, "{context}");
        assert_eq!(header(headers, "x-team"), "ml-platform", "{context}");
        assert_eq!(
            header(headers, "content-type"),
            "application/json",
            "{context}"
        );
        assert_eq!(header(headers, "webhook-id"), id.as_str(), "{context}");
        // The headers shown are the ones that went out on this attempt.
        assert_eq!(
            header(headers, "webhook-signature"),
            got[i].header("webhook-signature"),
            "{context}"
        );
        assert_eq!(
            header(headers, "webhook-timestamp"),
            got[i].header("webhook-timestamp"),
            "{context}"
        );
        assert!(
            s(header(headers, "webhook-signature")).starts_with("v1,"),
            "{context}"
        );
        assert_eq!(request["body"], text(&got[i].body).as_str(), "{context}");
        assert_eq!(request["body"], compact(&payload).as_str(), "{context}");

        let response = &attempt["response"];
        assert_eq!(response["truncated"], false, "{context}");
        if i < 2 {
            assert_eq!(response["status"], 500, "{context}");
            assert_eq!(
                response["body"],
                format!("try later ({i})").as_str(),
                "{context}"
            );
            assert_eq!(
                response["headers"]["x-reason"],
                format!("busy-{i}").as_str(),
                "{context}"
            );
            assert_eq!(attempt["error"]["kind"], "http_status", "{context}");
            assert!(s(&attempt["error"]["message"]).contains("500"), "{context}");
            let due = millis(&attempt["next_attempt_at"]);
            let want = if i == 0 { 100 } else { 200 };
            assert!(
                due >= started + want - 5
                    && due <= started + attempt["duration_ms"].as_i64().unwrap() + want + 1000,
                "{context}: next attempt not {want} ms after"
            );
        } else {
            assert_eq!(response["status"], 200, "{context}");
            assert_eq!(response["body"], "{\"ok\":true}", "{context}");
            assert_eq!(response["headers"]["x-receipt"], "r-77", "{context}");
            assert!(attempt["error"].is_null(), "{context}");
            assert!(attempt["next_attempt_at"].is_null(), "{context}");
        }
    }

    // The raw answers never hold the secret nor the protected value.
    let paths = [
        format!("/v1/projects/p/deliveries/{id}"),
        "/v1/projects/p/deliveries".to_string(),
        format!("/v1/projects/p/events/{event}"),
        format!("/v1/projects/p/webhooks/{hook}"),
    ];
    for path in paths {
        let (status, raw_text) = raw(&server, "GET", &path, ADMIN, None).await;
        assert_eq!(status, 200, "{path}: {raw_text}");
        assert!(
            !raw_text.contains("s3cr3t-receiver-token"),
            "{path} leaks the secret: {raw_text}"
        );
        assert!(
            !raw_text.contains(PROTECTED),
            "{path} leaks the protected header: {raw_text}"
        );
    }
    // Nor does the data directory's log.
    assert!(!server.log().contains("s3cr3t-receiver-token"));
    assert!(!server.log().contains(PROTECTED));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_body_is_the_rendered_body_when_it_differs_from_the_stored_payload() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/ubiops", receiver.url), "events": ["deployment_request_completed"]}),
        )
        .await;
    let payload = ubiops_with_result();
    let (event, ids) = send(
        &server,
        "p",
        "deployment_request_completed",
        payload.clone(),
    )
    .await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let sent = got[0].json();
    assert!(sent.get("result").is_none(), "the result went out: {sent}");
    let detail = wait_status(&server, "p", &ids[0], "succeeded").await;
    let body = &detail["history"][0]["request"]["body"];
    assert_eq!(
        body,
        text(&got[0].body).as_str(),
        "history body is not the bytes sent"
    );
    let stored = get_ok(&server, &format!("/v1/projects/p/events/{event}")).await;
    assert_eq!(stored["payload"]["result"], payload["result"], "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn attempt_errors_are_classified_and_long_response_bodies_truncated_at_64_kib() {
    let server = Server::start_with(&flags(&["--delivery-timeout", "500ms"])).await;
    let big = Receiver::start_with(|_, _| Reply {
        body: "x".repeat(100 * 1024),
        ..Reply::status(200)
    })
    .await;
    let exact = Receiver::start_with(|_, _| Reply {
        body: "y".repeat(64 * 1024),
        ..Reply::status(200)
    })
    .await;
    let slow = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(200)
    })
    .await;
    let teapot = Receiver::start_with(|_, _| Reply {
        body: "short and stout".into(),
        ..Reply::status(418)
    })
    .await;
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/hook")
    };
    server.create_project("p").await;
    let mut hooks = HashMap::new();
    for (name, url) in [
        ("big", format!("{}/big", big.url)),
        ("exact", format!("{}/exact", exact.url)),
        ("slow", format!("{}/slow", slow.url)),
        ("teapot", format!("{}/teapot", teapot.url)),
        ("closed", closed.clone()),
    ] {
        let w = server
            .create_webhook(
                "p",
                json!({"name": name, "url": url, "events": ["RUN_COMPLETED"]}),
            )
            .await;
        hooks.insert(name, s(&w["id"]));
    }
    let (event, _) = send(&server, "p", "RUN_COMPLETED", nannyml("errors")).await;
    let mut ids = HashMap::new();
    for (name, hook) in &hooks {
        ids.insert(*name, delivery_for(&server, "p", &event, hook).await);
    }
    let first_attempt = |name: &'static str| {
        let server = &server;
        let id = ids[name].clone();
        async move {
            let d = wait_delivery(server, "p", &id, Duration::from_secs(6), "attempted", |d| {
                d["history"].as_array().is_some_and(|h| !h.is_empty())
            })
            .await;
            d["history"][0].clone()
        }
    };

    let a = first_attempt("big").await;
    assert_eq!(a["response"]["status"], 200, "{a}");
    assert_eq!(a["response"]["truncated"], true, "{a}");
    assert_eq!(a["response"]["body"].as_str().unwrap().len(), 64 * 1024);
    assert_eq!(a["response"]["body"], "x".repeat(64 * 1024).as_str());
    assert!(a["error"].is_null(), "{a}");

    let a = first_attempt("exact").await;
    assert_eq!(a["response"]["truncated"], false, "{a}");
    assert_eq!(a["response"]["body"], "y".repeat(64 * 1024).as_str());

    let a = first_attempt("teapot").await;
    assert_eq!(a["response"]["status"], 418, "{a}");
    assert_eq!(a["response"]["body"], "short and stout", "{a}");
    assert_eq!(a["error"]["kind"], "http_status", "{a}");
    assert!(s(&a["error"]["message"]).contains("418"), "{a}");
    assert!(a["next_attempt_at"].is_string(), "a retry is due: {a}");

    let a = first_attempt("closed").await;
    assert!(a["response"].is_null(), "{a}");
    assert_eq!(a["error"]["kind"], "connect", "{a}");
    assert!(!s(&a["error"]["message"]).is_empty(), "{a}");
    assert!(a["next_attempt_at"].is_string(), "a retry is due: {a}");
    assert_eq!(a["request"]["url"], closed.as_str(), "{a}");

    let a = first_attempt("slow").await;
    assert!(a["response"].is_null(), "{a}");
    assert_eq!(a["error"]["kind"], "timeout", "{a}");
    let took = a["duration_ms"].as_i64().unwrap();
    assert!((450..2500).contains(&took), "timeout after {took} ms: {a}");
    assert!(a["next_attempt_at"].is_string(), "a retry is due: {a}");

    // The synchronous test answer truncates the same way.
    let (status, answer) = server
        .post(
            &format!("/v1/projects/p/webhooks/{}/test", hooks["big"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["response"]["truncated"], true);
    assert_eq!(
        answer["response"]["body"].as_str().unwrap().len(),
        64 * 1024
    );
    let (status, answer) = server
        .post(
            &format!("/v1/projects/p/webhooks/{}/test", hooks["closed"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], false);
    assert!(answer["response"].is_null(), "{answer}");
    assert_eq!(answer["error"]["kind"], "connect", "{answer}");
    let (status, answer) = server
        .post(
            &format!("/v1/projects/p/webhooks/{}/test", hooks["slow"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["error"]["kind"], "timeout", "{answer}");

    let (status, body) = server
        .get("/v1/projects/p/deliveries/msg_0000000000000000000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

// ---------------------------------------------------------------------------
// 3. Events
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn events_list_filters_and_pages_and_an_event_shows_its_deliveries_statuses() {
    let server = Server::start().await;
    let ok = Receiver::start().await;
    let bad = Receiver::start_with(|_, _| Reply::status(503)).await;
    server.create_project("p").await;
    let a = s(&server
        .create_webhook("p", json!({"url": format!("{}/a", ok.url), "events": ["RUN_COMPLETED", "MODEL_VERSION_CREATED"]}))
        .await["id"]);
    let b = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/b", bad.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let (e1, _) = send(&server, "p", "RUN_COMPLETED", nannyml("one")).await;
    let (e2, d2) = send(&server, "p", "MODEL_VERSION_CREATED", comet("two", "2")).await;
    let (e3, _) = send(&server, "p", "RUN_COMPLETED", nannyml("three")).await;
    assert_eq!(d2.len(), 1);

    let all = walk(&server, "/v1/projects/p/events", 2).await;
    assert_eq!(ids_of(&all), vec![e3.clone(), e2.clone(), e1.clone()]);
    assert_eq!(all[1]["type"], "MODEL_VERSION_CREATED");
    assert_eq!(all[1]["payload"], comet("two", "2"));
    assert_eq!(all[0]["is_test"], false);
    assert!(all[0]["created_at"].is_string());
    let first = page(&server, "/v1/projects/p/events?limit=2").await;
    assert_eq!(
        ids_of(first["data"].as_array().unwrap()),
        vec![e3.clone(), e2.clone()]
    );
    assert_eq!(first["next_cursor"], e2.as_str());
    let typed = walk(&server, "/v1/projects/p/events?event_type=RUN_COMPLETED", 1).await;
    assert_eq!(ids_of(&typed), vec![e3.clone(), e1.clone()]);
    let typed = walk(
        &server,
        "/v1/projects/p/events?event_type=MODEL_VERSION_CREATED",
        50,
    )
    .await;
    assert_eq!(ids_of(&typed), vec![e2.clone()]);

    // The event with the state of each delivery.
    let a1 = delivery_for(&server, "p", &e1, &a).await;
    let b1 = delivery_for(&server, "p", &e1, &b).await;
    wait_status(&server, "p", &a1, "succeeded").await;
    wait_status(&server, "p", &b1, "exhausted").await;
    let shown = get_ok(&server, &format!("/v1/projects/p/events/{e1}")).await;
    assert_eq!(shown["id"], e1.as_str());
    assert_eq!(shown["type"], "RUN_COMPLETED");
    assert_eq!(shown["payload"], nannyml("one"));
    let ds = shown["deliveries"].as_array().unwrap();
    assert_eq!(ds.len(), 2, "{shown}");
    for d in ds {
        if d["webhook_id"] == a.as_str() {
            assert_eq!(d["id"], a1.as_str());
            assert_eq!(d["status"], "succeeded", "{d}");
            assert_eq!(d["attempts"], 1, "{d}");
            assert_eq!(d["last_status_code"], 200, "{d}");
        } else {
            assert_eq!(d["id"], b1.as_str());
            assert_eq!(d["status"], "exhausted", "{d}");
            assert_eq!(d["attempts"], 3, "{d}");
            assert_eq!(d["last_status_code"], 503, "{d}");
            assert!(d["next_attempt_at"].is_null(), "{d}");
        }
    }
    let (status, body) = server
        .get("/v1/projects/p/events/evt_0000000000000000000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server
        .get("/v1/projects/p/events?event=RUN_COMPLETED")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

// ---------------------------------------------------------------------------
// 4. Stats
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_deliveries_by_status_with_success_rate_and_last_times() {
    let server = Server::start().await;
    let start = now_millis();
    let mixed =
        Receiver::start_with(|_, r| Reply::status(if body_has(r, "bad") { 500 } else { 200 }))
            .await;
    let other = Receiver::start().await;
    server.create_project("p").await;
    let w = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/w", mixed.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let o = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/o", other.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let idle = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/idle", other.url), "events": ["TEST"]}),
        )
        .await["id"]);

    let stats_of = |id: String| {
        let server = &server;
        async move { get_ok(server, &format!("/v1/projects/p/webhooks/{id}/stats")).await }
    };
    let empty = stats_of(idle.clone()).await;
    assert_eq!(empty["webhook_id"], idle.as_str());
    for window in ["last_hour", "last_day"] {
        assert_eq!(
            empty[window],
            json!({"pending": 0, "succeeded": 0, "failed": 0, "exhausted": 0, "paused": 0, "success_rate": null}),
            "{empty}"
        );
    }
    assert!(
        empty["last_success_at"].is_null() && empty["last_failure_at"].is_null(),
        "{empty}"
    );

    let mut mine = Vec::new();
    for model in ["ok-1", "bad-1", "ok-2", "ok-3"] {
        let (event, _) = send(&server, "p", "RUN_COMPLETED", nannyml(model)).await;
        mine.push((model, delivery_for(&server, "p", &event, &w).await));
    }
    for (model, id) in &mine {
        let want = if model.starts_with("ok") {
            "succeeded"
        } else {
            "exhausted"
        };
        wait_status(&server, "p", id, want).await;
    }
    other.wait_for(4, Duration::from_secs(5)).await;
    let stats = stats_of(w.clone()).await;
    assert_eq!(stats["webhook_id"], w.as_str());
    for window in ["last_hour", "last_day"] {
        let got = &stats[window];
        assert_eq!(got["succeeded"], 3, "{window}: {stats}");
        assert_eq!(got["exhausted"], 1, "{window}: {stats}");
        assert_eq!(got["failed"], 0, "{window}: {stats}");
        assert_eq!(got["pending"], 0, "{window}: {stats}");
        assert_eq!(got["paused"], 0, "{window}: {stats}");
        let rate = got["success_rate"].as_f64().unwrap();
        assert!((rate - 0.75).abs() < 1e-9, "{window}: {stats}");
    }
    let last_success = millis(&stats["last_success_at"]);
    let last_failure = millis(&stats["last_failure_at"]);
    let end = now_millis();
    assert!((start..=end).contains(&last_success), "{stats}");
    assert!((start..=end).contains(&last_failure), "{stats}");
    // The bad delivery's last attempt came after ok-1's success, and ok-3 succeeded after bad-1 started.
    let ok3 = delivery(&server, "p", &mine[3].1).await;
    assert_eq!(
        last_success,
        millis(&ok3["history"][0]["started_at"]),
        "{stats} {ok3}"
    );
    let bad = delivery(&server, "p", &mine[1].1).await;
    assert_eq!(
        last_failure,
        millis(&bad["history"][2]["started_at"]),
        "{stats} {bad}"
    );

    // Another webhook's deliveries are its own.
    let theirs = stats_of(o.clone()).await;
    assert_eq!(theirs["last_hour"]["succeeded"], 4, "{theirs}");
    assert_eq!(theirs["last_hour"]["exhausted"], 0, "{theirs}");
    assert_eq!(theirs["last_hour"]["success_rate"], 1.0, "{theirs}");
    assert!(theirs["last_failure_at"].is_null(), "{theirs}");

    let (status, body) = server
        .get("/v1/projects/p/webhooks/wh_0000000000000000/stats")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

// ---------------------------------------------------------------------------
// 5. Test sends
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_test_send_is_synchronous_signed_and_logged_as_a_test() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|_, _| Reply {
        body: "thanks".into(),
        headers: vec![("x-receiver", "wizard".to_string())],
        ..Reply::status(200)
    })
    .await;
    let no_content = Receiver::start_with(|_, _| Reply::status(204)).await;
    server.create_project("p").await;
    let created = server
        .create_webhook(
            "p",
            json!({
                "url": format!("{}/registry", receiver.url),
                "events": ["MODEL_VERSION_CREATED"],
                "secret": SECRET,
                "headers": [
                    {"key": "X-Team", "value": "ml-platform"},
                    {"key": "X-Api-Key", "value": PROTECTED, "protected": true}
                ]
            }),
        )
        .await;
    let hook = s(&created["id"]);
    let signing = s(&created["signing_secret"]);

    let (status, answer_text) = raw(
        &server,
        "POST",
        &format!("/v1/projects/p/webhooks/{hook}/test"),
        ADMIN,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 200, "{answer_text}");
    assert!(
        !answer_text.contains("s3cr3t-receiver-token"),
        "{answer_text}"
    );
    assert!(!answer_text.contains(PROTECTED), "{answer_text}");
    let answer = parse(&answer_text);
    assert_outcome_shape(&answer, "test");
    assert_eq!(answer["valid"], true, "{answer}");
    assert!(answer["error"].is_null(), "{answer}");
    let delivery_id = s(&answer["delivery_id"]);
    assert!(delivery_id.starts_with("msg_"), "{answer}");
    // Synchronous: the receiver already has it.
    let got = receiver.received();
    assert_eq!(got.len(), 1, "the test send was not made before answering");
    let request = &got[0];
    assert_eq!(request.path, "/registry");
    assert!(verify_signature(&signing, request), "test send not signed");
    assert_eq!(request.header("webhook-id"), delivery_id);
    assert_eq!(request.header("x-team"), "ml-platform");
    assert_eq!(request.header("x-api-key"), PROTECTED);
    assert_eq!(request.header("authorization"), SECRET);
    assert_eq!(request.header("content-type"), "application/json");
    let body = request.json();
    assert_eq!(body["eventTrigger"], "TEST", "{body}");
    assert_eq!(body["version"], "1.2.3", "{body}");
    let created_at = body["createdAt"].as_i64().expect("createdAt in seconds");
    assert!(
        (created_at - (now_secs() - 3600)).abs() <= 10,
        "createdAt {created_at} is not an hour ago"
    );
    assert_eq!(answer["request"]["body"], text(&request.body).as_str());
    assert_eq!(
        answer["request"]["url"],
        format!("{}/registry", receiver.url).as_str()
    );
    let shown = &answer["request"]["headers"];
    assert_eq!(shown["authorization"], MASK, "{answer}");
    assert_eq!(shown["x-api-key"], MASK, "{answer}");
    assert_eq!(shown["x-team"], "ml-platform", "{answer}");
    assert_eq!(shown["webhook-id"], delivery_id.as_str(), "{answer}");
    assert_eq!(
        shown["webhook-signature"],
        request.header("webhook-signature"),
        "{answer}"
    );
    assert_eq!(answer["response"]["status"], 200);
    assert_eq!(answer["response"]["body"], "thanks");
    assert_eq!(answer["response"]["headers"]["x-receiver"], "wizard");
    assert_eq!(answer["response"]["truncated"], false);

    // In the log, as a test.
    let logged = delivery(&server, "p", &delivery_id).await;
    assert_eq!(logged["is_test"], true, "{logged}");
    assert_eq!(logged["webhook_id"], hook.as_str(), "{logged}");
    assert_eq!(logged["status"], "succeeded", "{logged}");
    assert_eq!(logged["event_type"], "TEST", "{logged}");
    assert_eq!(logged["last_status_code"], 200, "{logged}");
    let history = logged["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{logged}");
    assert_eq!(history[0]["manual"], true, "{logged}");
    assert_eq!(history[0]["request"]["body"], text(&request.body).as_str());
    assert_eq!(history[0]["request"]["headers"]["authorization"], MASK);
    let listed = deliveries(&server, "p", &format!("webhook_id={hook}")).await;
    assert_eq!(ids_of(&listed), vec![delivery_id.clone()]);
    assert_eq!(listed[0]["is_test"], true);
    let (status, raw_log) = raw(
        &server,
        "GET",
        &format!("/v1/projects/p/deliveries/{delivery_id}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !raw_log.contains("s3cr3t-receiver-token") && !raw_log.contains(PROTECTED),
        "{raw_log}"
    );

    // Another family's test payload, on request; and an empty body means {}.
    let (status, answer) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/test"),
            json!({"event_type": "RUN_COMPLETED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let body = got[1].json();
    assert_eq!(
        body["header"]["notification_type"], "RUN_COMPLETED",
        "{body}"
    );
    assert!(verify_signature(&signing, &got[1]));
    let logged = delivery(&server, "p", answer["delivery_id"].as_str().unwrap()).await;
    assert_eq!(logged["event_type"], "RUN_COMPLETED", "{logged}");
    assert_eq!(logged["is_test"], true, "{logged}");
    let (status, answer) = server
        .request(
            "POST",
            &format!("/v1/projects/p/webhooks/{hook}/test"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(got[0].json()["eventTrigger"], "TEST");
    assert_eq!(receiver.received()[2].json()["eventTrigger"], "TEST");
    assert_eq!(answer["valid"], true);

    // 204 counts as valid.
    let quiet = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/quiet", no_content.url), "events": ["*"]}),
        )
        .await["id"]);
    let (status, answer) = server
        .post(&format!("/v1/projects/p/webhooks/{quiet}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["response"]["status"], 204, "{answer}");
    assert_eq!(answer["response"]["body"], "", "{answer}");
    assert_eq!(no_content.received()[0].json()["eventTrigger"], "TEST");

    // An unknown type is refused and nothing is sent.
    let before = receiver.count();
    let (status, body) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/test"),
            json!({"event_type": "NOPE"}),
        )
        .await;
    assert_400_naming(status, &body, "/event_type", "unknown test event type");
    let (status, body) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/test"),
            json!({"event": "TEST"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post(
            "/v1/projects/p/webhooks/wh_0000000000000000/test",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        receiver.settle(Duration::from_millis(200)).await.len(),
        before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_test_send_shows_the_answer_and_is_never_retried() {
    let server = Server::start_with(&flags(&["--scan-interval", "100ms"])).await;
    let receiver = Receiver::start_with(|_, _| Reply {
        body: "broken: database down".into(),
        ..Reply::status(500)
    })
    .await;
    server.create_project("p").await;
    let hook = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/x", receiver.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let (status, answer) = server
        .post(&format!("/v1/projects/p/webhooks/{hook}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_outcome_shape(&answer, "failing test");
    assert_eq!(answer["valid"], false, "{answer}");
    assert_eq!(answer["response"]["status"], 500, "{answer}");
    assert_eq!(
        answer["response"]["body"], "broken: database down",
        "{answer}"
    );
    assert_eq!(answer["error"]["kind"], "http_status", "{answer}");
    assert_eq!(
        receiver.received()[0].json()["header"]["notification_type"],
        "RUN_COMPLETED"
    );
    let id = s(&answer["delivery_id"]);

    // Well past the retry schedule (100 ms, 200 ms) and several scans: one request.
    assert_eq!(
        receiver.settle(Duration::from_millis(1000)).await.len(),
        1,
        "a test send was retried"
    );
    let logged = delivery(&server, "p", &id).await;
    assert_eq!(logged["is_test"], true, "{logged}");
    assert!(logged["next_attempt_at"].is_null(), "{logged}");
    assert_ne!(logged["status"], "pending", "{logged}");
    assert_ne!(logged["status"], "failed", "{logged}");
    assert_eq!(logged["history"].as_array().unwrap().len(), 1, "{logged}");
    assert_eq!(
        logged["history"][0]["response"]["body"],
        "broken: database down"
    );

    // A recover does not pick it up either.
    let (status, body) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/recover"),
            json!({"since": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"recovered": 0}));
    assert_eq!(
        receiver.settle(Duration::from_millis(600)).await.len(),
        1,
        "a test send was recovered"
    );
}

// ---------------------------------------------------------------------------
// 6. Validate
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn validate_sends_the_test_payload_for_an_unsaved_configuration_and_stores_nothing() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|_, r| Reply {
        body: "checked".into(),
        ..Reply::status(if r.path == "/down" { 503 } else { 200 })
    })
    .await;
    server.create_project("p").await;
    let existing = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/existing", receiver.url), "events": ["TEST"]}),
        )
        .await;
    let list_before = get_ok(&server, "/v1/projects/p/webhooks").await;

    let config = json!({
        "name": "wizard",
        "url": format!("{}/candidate", receiver.url),
        "events": ["MODEL_VERSION_CREATED"],
        "secret": SECRET,
        "headers": [
            {"key": "X-Team", "value": "ml-platform"},
            {"key": "X-Api-Key", "value": PROTECTED, "protected": true}
        ]
    });
    let (status, answer_text) = raw(
        &server,
        "POST",
        "/v1/projects/p/webhooks/validate",
        ADMIN,
        Some(&config),
    )
    .await;
    assert_eq!(status, 200, "{answer_text}");
    assert!(
        !answer_text.contains("s3cr3t-receiver-token"),
        "{answer_text}"
    );
    assert!(!answer_text.contains(PROTECTED), "{answer_text}");
    let answer = parse(&answer_text);
    assert_outcome_shape(&answer, "validate");
    assert_eq!(answer["valid"], true, "{answer}");
    assert!(answer["delivery_id"].is_null(), "{answer}");
    assert_eq!(answer["response"]["status"], 200);
    assert_eq!(answer["response"]["body"], "checked");
    assert_eq!(answer["request"]["headers"]["authorization"], MASK);
    assert_eq!(answer["request"]["headers"]["x-api-key"], MASK);
    assert_eq!(answer["request"]["headers"]["x-team"], "ml-platform");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.path, "/candidate");
    let body = request.json();
    assert_eq!(body["eventTrigger"], "TEST", "{body}");
    assert_eq!(body["version"], "1.2.3", "{body}");
    assert!(
        (body["createdAt"].as_i64().unwrap() - (now_secs() - 3600)).abs() <= 10,
        "{body}"
    );
    assert_eq!(request.header("authorization"), SECRET);
    assert_eq!(request.header("x-api-key"), PROTECTED);
    assert_eq!(request.header("x-team"), "ml-platform");
    assert!(request.header("webhook-signature").starts_with("v1,"));
    assert!(request.header("webhook-id").starts_with("msg_"));
    assert_eq!(answer["request"]["body"], text(&request.body).as_str());

    // A failing endpoint: valid false, the answer shown.
    let mut down = config.clone();
    down["url"] = json!(format!("{}/down", receiver.url));
    let (status, answer) = server.post("/v1/projects/p/webhooks/validate", down).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], false, "{answer}");
    assert_eq!(answer["response"]["status"], 503, "{answer}");
    assert_eq!(answer["response"]["body"], "checked", "{answer}");
    assert_eq!(answer["error"]["kind"], "http_status", "{answer}");

    // Invalid configurations: 400 naming the field, nothing sent.
    let cases = [
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            "/url",
        ),
        (json!({"url": "not a url", "events": ["*"]}), "/url"),
        (
            json!({"url": format!("{}/x", receiver.url), "events": ["NOPE"]}),
            "/events/0",
        ),
        (
            json!({"url": format!("{}/x", receiver.url), "events": []}),
            "/events",
        ),
        (json!({"events": ["*"]}), "/url"),
        (
            json!({"url": format!("{}/x", receiver.url), "events": ["*"], "colour": "red"}),
            "/colour",
        ),
        (
            json!({"url": format!("{}/x", receiver.url), "events": ["*"],
                   "headers": [{"key": "Content-Type", "value": "text/plain"}]}),
            "/headers/0/key",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = server
            .post("/v1/projects/p/webhooks/validate", body.clone())
            .await;
        assert_400_naming(status, &answer, field, &format!("validate {body}"));
    }
    assert_eq!(
        receiver.settle(Duration::from_millis(200)).await.len(),
        2,
        "an invalid configuration was sent"
    );

    // Nothing stored: same webhooks, no delivery, no event.
    assert_eq!(
        get_ok(&server, "/v1/projects/p/webhooks").await,
        list_before
    );
    assert_eq!(list_before["data"].as_array().unwrap().len(), 1);
    assert_eq!(list_before["data"][0]["id"], existing["id"]);
    assert!(deliveries(&server, "p", "").await.is_empty());
    let events = page(&server, "/v1/projects/p/events").await;
    assert!(events["data"].as_array().unwrap().is_empty(), "{events}");
    let stats = get_ok(
        &server,
        &format!("/v1/projects/p/webhooks/{}/stats", s(&existing["id"])),
    )
    .await;
    assert!(stats["last_success_at"].is_null(), "{stats}");

    // An edit in progress: the stored webhook with a patch, its protected
    // value and secret kept without being typed again; nothing is stored.
    let saved = server.create_webhook("p", config.clone()).await;
    let saved_path = format!("/v1/projects/p/webhooks/{}", saved["id"].as_str().unwrap());
    let (status, answer) = server
        .post(
            &format!("{saved_path}/validate"),
            json!({"url": format!("{}/edited", receiver.url)}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
    let edited = receiver.received().pop().unwrap();
    assert_eq!(edited.path, "/edited");
    assert_eq!(edited.header("authorization"), SECRET);
    assert_eq!(edited.header("x-api-key"), PROTECTED);
    let (_, unchanged) = server.get(&saved_path).await;
    assert_eq!(unchanged["url"], format!("{}/candidate", receiver.url));
    let (status, answer) = server
        .post(
            &format!("{saved_path}/validate"),
            json!({"events": ["NOPE"]}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "/events/0", "{answer}");
    let (_, deleted) = server.delete(&saved_path).await;
    assert!(deleted.is_null(), "{deleted}");
    let (_, events) = server.get("/v1/projects/p/events").await;
    assert!(events["data"].as_array().unwrap().is_empty(), "{events}");
}

// ---------------------------------------------------------------------------
// 7. Redeliver
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn redeliver_makes_a_manual_attempt_now_and_never_retries_it() {
    let server = Server::start_with(&flags(&["--scan-interval", "100ms"])).await;
    let working = Arc::new(AtomicBool::new(false));
    let receiver = {
        let working = working.clone();
        Receiver::start_with(move |_, _| {
            Reply::status(if working.load(Ordering::SeqCst) {
                200
            } else {
                500
            })
        })
        .await
    };
    server.create_project("p").await;
    let created = server
        .create_webhook("p", json!({"url": format!("{}/r", receiver.url), "events": ["RUN_COMPLETED"], "secret": SECRET}))
        .await;
    let signing = s(&created["signing_secret"]);
    let (event, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("redo")).await;
    let id = ids[0].clone();
    wait_status(&server, "p", &id, "exhausted").await;
    assert_eq!(receiver.settle(Duration::from_millis(300)).await.len(), 3);

    // The receiver works again: a redeliver succeeds at once.
    working.store(true, Ordering::SeqCst);
    let (status, answer_text) = raw(
        &server,
        "POST",
        &format!("/v1/projects/p/deliveries/{id}/redeliver"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer_text}");
    assert!(
        !answer_text.contains("s3cr3t-receiver-token"),
        "{answer_text}"
    );
    let answer = parse(&answer_text);
    assert_outcome_shape(&answer, "redeliver");
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["delivery_id"], id.as_str(), "{answer}");
    assert_eq!(answer["response"]["status"], 200, "{answer}");
    assert_eq!(
        answer["request"]["headers"]["authorization"], MASK,
        "{answer}"
    );
    assert_eq!(
        answer["request"]["body"],
        compact(&nannyml("redo")).as_str()
    );
    let got = receiver.received();
    assert_eq!(got.len(), 4, "the redeliver was not made before answering");
    assert_eq!(
        got[3].header("webhook-id"),
        id,
        "a redeliver keeps the delivery id"
    );
    assert!(verify_signature(&signing, &got[3]));
    assert_eq!(got[3].body, got[0].body);
    let shown = delivery(&server, "p", &id).await;
    assert_eq!(shown["status"], "succeeded", "{shown}");
    assert_eq!(shown["last_status_code"], 200, "{shown}");
    assert!(shown["next_attempt_at"].is_null(), "{shown}");
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{shown}");
    assert!(history[..3].iter().all(|a| a["manual"] == false), "{shown}");
    assert_eq!(history[3]["manual"], true, "{shown}");
    assert_eq!(history[3]["response"]["status"], 200, "{shown}");
    assert!(history[3]["error"].is_null(), "{shown}");
    assert!(history[3]["next_attempt_at"].is_null(), "{shown}");
    let event_view = get_ok(&server, &format!("/v1/projects/p/events/{event}")).await;
    assert_eq!(
        event_view["deliveries"][0]["status"], "succeeded",
        "{event_view}"
    );

    // A failing redeliver changes nothing and is not retried.
    working.store(false, Ordering::SeqCst);
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("still-broken")).await;
    let second = ids[0].clone();
    wait_status(&server, "p", &second, "exhausted").await;
    let before = receiver.settle(Duration::from_millis(300)).await.len();
    let (status, answer) = server
        .post(
            &format!("/v1/projects/p/deliveries/{second}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], false, "{answer}");
    assert_eq!(answer["response"]["status"], 500, "{answer}");
    assert_eq!(answer["error"]["kind"], "http_status", "{answer}");
    assert_eq!(receiver.count(), before + 1);
    assert_eq!(
        receiver.settle(Duration::from_millis(1000)).await.len(),
        before + 1,
        "a failed redeliver was retried"
    );
    let shown = delivery(&server, "p", &second).await;
    assert_eq!(shown["status"], "exhausted", "{shown}");
    assert!(shown["next_attempt_at"].is_null(), "{shown}");
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{shown}");
    assert_eq!(history[3]["manual"], true);
    assert_eq!(history[3]["error"]["kind"], "http_status");

    let (status, body) = server
        .post(
            "/v1/projects/p/deliveries/msg_0000000000000000/redeliver",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// docs/delivery.md: "A success marks the delivery succeeded and cancels any
/// scheduled retry".
#[tokio::test(flavor = "multi_thread")]
async fn a_successful_redeliver_cancels_the_scheduled_retry() {
    let server = Server::start_with(&["--retry-schedule", "1s,1s", "--retry-jitter", "0"]).await;
    let receiver = Receiver::start_with(|n, _| Reply::status(if n == 1 { 200 } else { 500 })).await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/r", receiver.url), "events": ["RUN_COMPLETED"]}),
        )
        .await;
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("cancel")).await;
    let id = ids[0].clone();
    let failed = wait_status(&server, "p", &id, "failed").await;
    assert!(failed["next_attempt_at"].is_string(), "{failed}");
    let (status, answer) = server
        .post(
            &format!("/v1/projects/p/deliveries/{id}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
    let shown = delivery(&server, "p", &id).await;
    assert_eq!(shown["status"], "succeeded", "{shown}");
    assert!(shown["next_attempt_at"].is_null(), "{shown}");

    // Past the time the cancelled retry was due.
    let got = receiver.settle(Duration::from_millis(1800)).await;
    let shown = delivery(&server, "p", &id).await;
    assert_eq!(
        got.len(),
        2,
        "the retry cancelled by the successful redeliver was still sent; delivery now: {shown}"
    );
    assert_eq!(shown["status"], "succeeded", "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn attempt_numbers_stay_unique_across_redelivers_and_recover() {
    let server = Server::start_with(&flags(&["--scan-interval", "100ms"])).await;
    let receiver = Receiver::start_with(|_, _| Reply::status(500)).await;
    server.create_project("p").await;
    let hook = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/r", receiver.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("numbers")).await;
    let id = ids[0].clone();
    wait_status(&server, "p", &id, "exhausted").await;
    for _ in 0..2 {
        let (status, answer) = server
            .post(
                &format!("/v1/projects/p/deliveries/{id}/redeliver"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, body) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/recover"),
            json!({"since": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovered"], 1);
    let shown = wait_delivery(
        &server,
        "p",
        &id,
        Duration::from_secs(5),
        "exhausted again",
        |d| d["status"] == "exhausted" && d["history"].as_array().is_some_and(|h| h.len() == 8),
    )
    .await;
    let numbers: Vec<u64> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    let manual: Vec<bool> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["manual"].as_bool().unwrap())
        .collect();
    assert_eq!(
        manual,
        [false, false, false, true, true, false, false, false],
        "{shown}"
    );
    let unique: HashSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "attempt numbers repeat in the history: {numbers:?} (manual: {manual:?})"
    );
}

// ---------------------------------------------------------------------------
// 8. Recover
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn recover_requeues_failed_and_exhausted_deliveries_in_the_window() {
    let server = Server::start_with(&flags(&["--scan-interval", "100ms"])).await;
    let working = Arc::new(AtomicBool::new(false));
    let receiver = {
        let working = working.clone();
        Receiver::start_with(move |_, r| {
            let ok = body_has(r, "always-ok") || working.load(Ordering::SeqCst);
            Reply::status(if ok { 200 } else { 500 })
        })
        .await
    };
    server.create_project("p").await;
    let hook = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/r", receiver.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let (_, ok_ids) = send(&server, "p", "RUN_COMPLETED", nannyml("always-ok")).await;
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("early")).await;
    let early = ids[0].clone();
    wait_status(&server, "p", &early, "exhausted").await;
    wait_status(&server, "p", &ok_ids[0], "succeeded").await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mark = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut late = Vec::new();
    for model in ["late-1", "late-2"] {
        let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml(model)).await;
        late.push(ids[0].clone());
    }
    for id in &late {
        wait_status(&server, "p", id, "exhausted").await;
    }
    let base = receiver.settle(Duration::from_millis(300)).await.len();
    assert_eq!(base, 1 + 3 * 3);

    let recover = |body: Value| {
        let server = &server;
        let hook = hook.clone();
        async move {
            server
                .post(&format!("/v1/projects/p/webhooks/{hook}/recover"), body)
                .await
        }
    };
    // Bad requests.
    let (status, body) = recover(json!({"since": "whenever"})).await;
    assert_400_naming(status, &body, "/since", "since=whenever");
    let (status, body) = recover(json!({})).await;
    assert_400_naming(status, &body, "/since", "no since");
    let (status, body) = recover(json!({"since": "1h", "until": "soon"})).await;
    assert_400_naming(status, &body, "/until", "until=soon");
    let (status, body) = server
        .post(
            "/v1/projects/p/webhooks/wh_0000000000000000/recover",
            json!({"since": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        receiver.settle(Duration::from_millis(300)).await.len(),
        base
    );

    // The window since the mark holds the two late ones only.
    working.store(true, Ordering::SeqCst);
    let (status, body) = recover(json!({"since": mark})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"recovered": 2}));
    for id in &late {
        let shown = wait_status(&server, "p", id, "succeeded").await;
        let history = shown["history"].as_array().unwrap();
        assert_eq!(history.len(), 4, "{shown}");
        assert_eq!(history[3]["manual"], false, "{shown}");
        assert_eq!(history[3]["response"]["status"], 200, "{shown}");
    }
    let got = receiver.settle(Duration::from_millis(400)).await;
    assert_eq!(got.len(), base + 2);
    let resent: HashSet<String> = got[base..]
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(resent, set(&late));
    assert_eq!(delivery(&server, "p", &early).await["status"], "exhausted");
    let ok = delivery(&server, "p", &ok_ids[0]).await;
    assert_eq!(
        ok["history"].as_array().unwrap().len(),
        1,
        "a succeeded delivery was recovered: {ok}"
    );

    // until bounds the window; the early one goes now.
    let (status, body) = recover(json!({"since": "1h", "until": mark})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"recovered": 1}));
    wait_status(&server, "p", &early, "succeeded").await;
    let (status, body) = recover(json!({"since": "1h"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"recovered": 0}));
    assert_eq!(
        receiver.settle(Duration::from_millis(400)).await.len(),
        base + 3
    );

    // A disabled webhook cannot be recovered.
    let (status, body) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{hook}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = recover(json!({"since": "1h"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
}

// ---------------------------------------------------------------------------
// 9. Replay
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn replay_delivers_an_event_to_a_webhook_created_after_it() {
    let server = Server::start().await;
    let first = Receiver::start().await;
    let second = Receiver::start().await;
    server.create_project("p").await;
    let w1 = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/one", first.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let payload = nannyml("replayed");
    let (event, original) = send(&server, "p", "RUN_COMPLETED", payload.clone()).await;
    first.wait_for(1, Duration::from_secs(5)).await;
    let created = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/two", second.url), "events": ["*"]}),
        )
        .await;
    let w2 = s(&created["id"]);
    assert_eq!(second.settle(Duration::from_millis(200)).await.len(), 0);

    let (status, answer) = server
        .post(&format!("/v1/projects/p/events/{event}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["id"], event.as_str(), "{answer}");
    let new_ids = strings(&answer["deliveries"]);
    assert_eq!(
        new_ids.len(),
        2,
        "one per webhook that matches now: {answer}"
    );
    assert!(new_ids.iter().all(|id| !original.contains(id)), "{answer}");
    let got = second.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].body, compact(&payload).into_bytes());
    assert!(verify_signature(&s(&created["signing_secret"]), &got[0]));
    let to_second = got[0].header("webhook-id").to_string();
    assert!(
        new_ids.contains(&to_second),
        "{to_second} not in {new_ids:?}"
    );
    let shown = wait_status(&server, "p", &to_second, "succeeded").await;
    assert_eq!(shown["webhook_id"], w2.as_str());
    assert_eq!(shown["event_id"], event.as_str());
    assert_eq!(
        shown["history"][0]["request"]["body"],
        compact(&payload).as_str()
    );
    let event_view = get_ok(&server, &format!("/v1/projects/p/events/{event}")).await;
    let all: HashSet<String> = ids_of(event_view["deliveries"].as_array().unwrap())
        .into_iter()
        .collect();
    assert_eq!(all, set(&[original.clone(), new_ids.clone()].concat()));
    assert_eq!(
        set(&ids_of(
            &deliveries(&server, "p", &format!("event_id={event}")).await
        )),
        all
    );
    assert_eq!(first.wait_for(2, Duration::from_secs(5)).await.len(), 2);
    assert_eq!(second.settle(Duration::from_millis(300)).await.len(), 1);

    // Only webhooks that match now: not a disabled one.
    let (status, body) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{w1}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, answer) = server
        .post(&format!("/v1/projects/p/events/{event}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let again = strings(&answer["deliveries"]);
    assert_eq!(again.len(), 1, "{answer}");
    second.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(first.settle(Duration::from_millis(300)).await.len(), 2);

    let (status, body) = server
        .post(
            "/v1/projects/p/events/evt_0000000000000000/replay",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

// ---------------------------------------------------------------------------
// 10. Failing endpoints
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_410_disables_the_webhook_and_pauses_its_deliveries_until_enabled_and_recovered() {
    let server = Server::start_with(&["--retry-schedule", "1s,1s", "--retry-jitter", "0"]).await;
    let healthy = Arc::new(AtomicBool::new(false));
    let endpoint = {
        let healthy = healthy.clone();
        Receiver::start_with(move |_, r| {
            if healthy.load(Ordering::SeqCst) {
                Reply::status(200)
            } else if body_has(r, "gone") {
                Reply::status(410)
            } else {
                Reply::status(500)
            }
        })
        .await
    };
    let alerts = Receiver::start().await;
    server.create_project("p").await;
    let hook = s(&server
        .create_webhook(
            "p",
            json!({"name": "flaky-endpoint", "url": format!("{}/e", endpoint.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/alerts", alerts.url), "events": ["mlhook.webhook.disabled"]}),
        )
        .await;

    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("first")).await;
    let first = ids[0].clone();
    wait_status(&server, "p", &first, "failed").await;
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("gone")).await;
    let gone = ids[0].clone();

    // Disabled, announced, with a reason and a time.
    let notice = alerts.wait_for(1, Duration::from_secs(5)).await[0].json();
    assert_eq!(notice["webhook_id"], hook.as_str(), "{notice}");
    let shown = webhook(&server, "p", &hook).await;
    assert_eq!(shown["enabled"], false, "{shown}");
    assert!(s(&shown["disabled_reason"]).contains("410"), "{shown}");
    let at = millis(&shown["disabled_at"]);
    assert!((now_millis() - at).abs() < 10_000, "{shown}");

    // Its unfinished deliveries are paused and not attempted.
    for id in [&first, &gone] {
        wait_status(&server, "p", id, "paused").await;
    }
    let paused = deliveries(&server, "p", &format!("webhook_id={hook}&status=paused")).await;
    assert_eq!(set(&ids_of(&paused)), set(&[first.clone(), gone.clone()]));
    // New events no longer match it.
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("while-disabled")).await;
    assert!(ids.is_empty(), "a disabled webhook got a delivery: {ids:?}");
    // Past the 1 s retries that were due.
    assert_eq!(
        endpoint.settle(Duration::from_millis(1600)).await.len(),
        2,
        "a paused delivery was sent"
    );
    for id in [&first, &gone] {
        let d = delivery(&server, "p", id).await;
        assert_eq!(d["status"], "paused", "{d}");
        assert!(d["next_attempt_at"].is_null(), "{d}");
    }
    let (status, body) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/recover"),
            json!({"since": "1h"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "recover of a disabled webhook: {body}"
    );

    // Enabled again: the state clears, but paused deliveries wait for a recover.
    healthy.store(true, Ordering::SeqCst);
    let (status, shown) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{hook}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["enabled"], true);
    assert!(
        shown["disabled_reason"].is_null() && shown["disabled_at"].is_null(),
        "{shown}"
    );
    assert_eq!(endpoint.settle(Duration::from_millis(1200)).await.len(), 2);
    let (status, body) = server
        .post(
            &format!("/v1/projects/p/webhooks/{hook}/recover"),
            json!({"since": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"recovered": 2}));
    for id in [&first, &gone] {
        wait_status(&server, "p", id, "succeeded").await;
    }
    let got = endpoint.settle(Duration::from_millis(300)).await;
    assert_eq!(
        got.len(),
        4,
        "the event sent while disabled went out, or a paused one twice"
    );
    let resent: HashSet<String> = got[2..]
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(resent, set(&[first.clone(), gone.clone()]));
    assert_eq!(alerts.count(), 1);
}

/// docs/delivery.md: when a webhook is disabled, "its unfinished deliveries
/// become paused". Here one of them is in flight at that moment, and its
/// failure comes back after the disable, with a retry more than a minute away.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_in_flight_when_its_webhook_is_disabled_ends_paused() {
    let server = Server::start_with(&["--retry-schedule", "2m", "--retry-jitter", "0"]).await;
    let endpoint = Receiver::start_with(|_, r| {
        if body_has(r, "gone") {
            Reply::status(410)
        } else {
            Reply {
                delay: Duration::from_millis(2000),
                ..Reply::status(500)
            }
        }
    })
    .await;
    server.create_project("p").await;
    let hook = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/e", endpoint.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("slow")).await;
    let slow = ids[0].clone();
    // The slow attempt is in flight; the next one answers 410 at once.
    endpoint.wait_for(1, Duration::from_secs(5)).await;
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("gone")).await;
    let gone = ids[0].clone();
    wait_disabled(&server, "p", &hook, Duration::from_secs(5)).await;
    wait_status(&server, "p", &gone, "paused").await;
    let in_flight = delivery(&server, "p", &slow).await;
    assert!(
        in_flight["history"].as_array().unwrap().is_empty(),
        "setup: the slow attempt ended before the disable: {in_flight}"
    );
    assert_eq!(in_flight["status"], "paused", "{in_flight}");

    // Its failure comes back after the disable.
    wait_delivery(
        &server,
        "p",
        &slow,
        Duration::from_secs(5),
        "attempted",
        |d| d["history"].as_array().is_some_and(|h| h.len() == 1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shown = delivery(&server, "p", &slow).await;
    assert_eq!(
        shown["status"], "paused",
        "a delivery of a disabled webhook is {} with next_attempt_at {}: {shown}",
        shown["status"], shown["next_attempt_at"]
    );
    assert!(shown["next_attempt_at"].is_null(), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_after_disables_a_webhook_exhausted_without_a_success_in_the_window() {
    let server = Server::start_with(&[
        "--retry-schedule",
        "20ms,20ms",
        "--retry-jitter",
        "0",
        "--disable-after",
        "4s",
    ])
    .await;
    let always_500 = Receiver::start_with(|_, _| Reply::status(500)).await;
    let patchy_endpoint =
        Receiver::start_with(|_, r| Reply::status(if body_has(r, "fine") { 200 } else { 500 }))
            .await;
    let alerts = Receiver::start().await;
    server.create_project("p").await;
    let created_at = Instant::now();
    let never = s(&server
        .create_webhook("p", json!({"name": "never-works", "url": format!("{}/n", always_500.url), "events": ["MODEL_VERSION_CREATED"]}))
        .await["id"]);
    let patchy = s(&server
        .create_webhook("p", json!({"name": "patchy", "url": format!("{}/p", patchy_endpoint.url), "events": ["RUN_COMPLETED"]}))
        .await["id"]);
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/alerts", alerts.url), "events": ["mlhook.webhook.disabled"]}),
        )
        .await;

    // Exhausted within the window after their creation: kept.
    let (_, ids) = send(&server, "p", "MODEL_VERSION_CREATED", comet("never", "1")).await;
    wait_status(&server, "p", &ids[0], "exhausted").await;
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("broken-1")).await;
    wait_status(&server, "p", &ids[0], "exhausted").await;
    assert!(
        created_at.elapsed() < Duration::from_millis(3400),
        "too slow to check the window"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        webhook(&server, "p", &never).await["enabled"],
        true,
        "disabled inside the window"
    );
    assert_eq!(
        webhook(&server, "p", &patchy).await["enabled"],
        true,
        "disabled inside the window"
    );

    // Past the window: the always-failing one, which never succeeded, is
    // disabled on its next exhaustion; the patchy one succeeds first and is kept.
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(created_at.elapsed())).await;
    let success_at = Instant::now();
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("fine")).await;
    wait_status(&server, "p", &ids[0], "succeeded").await;
    let (_, ids) = send(&server, "p", "MODEL_VERSION_CREATED", comet("never", "2")).await;
    wait_status(&server, "p", &ids[0], "exhausted").await;
    let shown = wait_disabled(&server, "p", &never, Duration::from_secs(10)).await;
    assert!(s(&shown["disabled_reason"]).len() > 5, "{shown}");
    assert!(!s(&shown["disabled_reason"]).contains("410"), "{shown}");
    assert!(
        (now_millis() - millis(&shown["disabled_at"])).abs() < 10_000,
        "{shown}"
    );
    let notice = alerts.wait_for(1, Duration::from_secs(5)).await[0].json();
    assert_eq!(notice["webhook_id"], never.as_str(), "{notice}");
    assert_eq!(notice["webhook_name"], "never-works", "{notice}");
    assert_eq!(notice["reason"], shown["disabled_reason"], "{notice}");
    assert_eq!(
        millis(&notice["disabled_at"]),
        millis(&shown["disabled_at"]),
        "{notice}"
    );
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("broken-2")).await;
    wait_status(&server, "p", &ids[0], "exhausted").await;
    assert!(
        success_at.elapsed() < Duration::from_millis(3400),
        "too slow to check the window"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        webhook(&server, "p", &patchy).await["enabled"],
        true,
        "disabled with a recent success"
    );
    let (_, ids) = send(&server, "p", "MODEL_VERSION_CREATED", comet("never", "3")).await;
    assert!(ids.is_empty(), "a disabled webhook got a delivery: {ids:?}");

    // Exhausted more than the window after its last success: disabled.
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(success_at.elapsed())).await;
    let (_, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("broken-3")).await;
    wait_status(&server, "p", &ids[0], "exhausted").await;
    let shown = wait_disabled(&server, "p", &patchy, Duration::from_secs(10)).await;
    assert!(!s(&shown["disabled_reason"]).contains("410"), "{shown}");
    let got = alerts.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].json()["webhook_id"], patchy.as_str());
    assert_eq!(alerts.settle(Duration::from_millis(200)).await.len(), 2);
}

// ---------------------------------------------------------------------------
// 11. Operational events
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn operational_events_reach_webhooks_that_name_them_and_not_wildcard_ones() {
    let server = Server::start().await;
    let mode = Arc::new(AtomicU8::new(0));
    let flaky = {
        let mode = mode.clone();
        Receiver::start_with(move |_, _| {
            Reply::status(match mode.load(Ordering::SeqCst) {
                0 => 500,
                1 => 200,
                _ => 410,
            })
        })
        .await
    };
    let on_call = Receiver::start().await;
    let everything = Receiver::start().await;
    server.create_project("p").await;
    let hook = s(&server
        .create_webhook("p", json!({"name": "flaky", "url": format!("{}/f", flaky.url), "events": ["RUN_COMPLETED"]}))
        .await["id"]);
    let watcher = server
        .create_webhook(
            "p",
            json!({"name": "on-call", "url": format!("{}/ops", on_call.url),
                   "events": ["mlhook.webhook.disabled", "mlhook.delivery.exhausted", "mlhook.delivery.recovered"]}),
        )
        .await;
    let watcher_secret = s(&watcher["signing_secret"]);
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/all", everything.url), "events": ["*"]}),
        )
        .await;

    // Exhausted.
    let (e1, _) = send(&server, "p", "RUN_COMPLETED", nannyml("one")).await;
    let d1 = delivery_for(&server, "p", &e1, &hook).await;
    let got = on_call.wait_for(1, Duration::from_secs(5)).await;
    assert!(verify_signature(&watcher_secret, &got[0]));
    let exhausted = got[0].json();
    assert_eq!(exhausted["delivery_id"], d1.as_str(), "{exhausted}");
    assert_eq!(exhausted["webhook_id"], hook.as_str(), "{exhausted}");
    assert_eq!(exhausted["webhook_name"], "flaky", "{exhausted}");
    assert_eq!(exhausted["event_id"], e1.as_str(), "{exhausted}");
    assert_eq!(exhausted["event_type"], "RUN_COMPLETED", "{exhausted}");
    assert_eq!(exhausted["attempts"], 3, "{exhausted}");
    assert_eq!(exhausted["last_status_code"], 500, "{exhausted}");
    assert!(s(&exhausted["last_error"]).contains("500"), "{exhausted}");

    // Recovered: the next success.
    mode.store(1, Ordering::SeqCst);
    let (e2, _) = send(&server, "p", "RUN_COMPLETED", nannyml("two")).await;
    let d2 = delivery_for(&server, "p", &e2, &hook).await;
    let got = on_call.wait_for(2, Duration::from_secs(5)).await;
    let recovered = got[1].json();
    assert_eq!(recovered["delivery_id"], d2.as_str(), "{recovered}");
    assert_eq!(recovered["webhook_id"], hook.as_str(), "{recovered}");
    assert_eq!(recovered["webhook_name"], "flaky", "{recovered}");
    assert_eq!(recovered["event_id"], e2.as_str(), "{recovered}");
    assert_eq!(recovered["event_type"], "RUN_COMPLETED", "{recovered}");
    assert!(
        (now_millis() - millis(&recovered["recovered_at"])).abs() < 10_000,
        "{recovered}"
    );
    // A further success is no recovery.
    let (e2b, _) = send(&server, "p", "RUN_COMPLETED", nannyml("two-b")).await;
    let d2b = delivery_for(&server, "p", &e2b, &hook).await;
    wait_status(&server, "p", &d2b, "succeeded").await;

    // Disabled: a 410.
    mode.store(2, Ordering::SeqCst);
    send(&server, "p", "RUN_COMPLETED", nannyml("three")).await;
    let got = on_call.wait_for(3, Duration::from_secs(5)).await;
    let disabled = got[2].json();
    assert_eq!(disabled["webhook_id"], hook.as_str(), "{disabled}");
    assert_eq!(disabled["webhook_name"], "flaky", "{disabled}");
    assert!(s(&disabled["reason"]).contains("410"), "{disabled}");
    let shown = webhook(&server, "p", &hook).await;
    assert_eq!(disabled["reason"], shown["disabled_reason"], "{shown}");
    assert_eq!(
        millis(&disabled["disabled_at"]),
        millis(&shown["disabled_at"])
    );

    // Exactly these three, as events of the project.
    assert_eq!(on_call.settle(Duration::from_millis(500)).await.len(), 3);
    for (event_type, body) in [
        ("mlhook.delivery.exhausted", &exhausted),
        ("mlhook.delivery.recovered", &recovered),
        ("mlhook.webhook.disabled", &disabled),
    ] {
        let list = page(
            &server,
            &format!("/v1/projects/p/events?event_type={event_type}"),
        )
        .await;
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{event_type}: {list}");
        assert_eq!(&data[0]["payload"], body, "{event_type}");
    }
    let watched = deliveries(&server, "p", &format!("webhook_id={}", s(&watcher["id"]))).await;
    assert_eq!(watched.len(), 3);
    // The wildcard webhook got the four platform events and nothing of mlhook's.
    let all = everything.received();
    assert_eq!(all.len(), 4, "the \"*\" webhook received mlhook events");
    for r in &all {
        let body = r.json();
        assert_eq!(
            body["header"]["notification_type"], "RUN_COMPLETED",
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_alert_channel_does_not_raise_events_about_itself() {
    let server = Server::start_with(&flags(&["--scan-interval", "100ms"])).await;
    let broken = Receiver::start_with(|_, _| Reply::status(500)).await;
    let broken_alerts = Receiver::start_with(|_, _| Reply::status(500)).await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/f", broken.url), "events": ["RUN_COMPLETED"]}),
        )
        .await;
    let watcher = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/ops", broken_alerts.url),
                   "events": ["mlhook.delivery.exhausted", "mlhook.delivery.recovered"]}),
        )
        .await["id"]);
    send(&server, "p", "RUN_COMPLETED", nannyml("x")).await;
    broken_alerts.wait_for(3, Duration::from_secs(5)).await;
    let watched = deliveries(&server, "p", &format!("webhook_id={watcher}")).await;
    assert_eq!(watched.len(), 1);
    wait_status(&server, "p", &s(&watched[0]["id"]), "exhausted").await;
    assert_eq!(
        broken_alerts.settle(Duration::from_millis(800)).await.len(),
        3
    );
    let list = page(
        &server,
        "/v1/projects/p/events?event_type=mlhook.delivery.exhausted",
    )
    .await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the alert channel's own exhausted delivery raised an event: {list}"
    );
}

// ---------------------------------------------------------------------------
// 12. Tenancy
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_project_token_cannot_reach_another_projects_log_or_steer_its_deliveries() {
    let server = Server::start().await;
    let mine = Receiver::start().await;
    let theirs = Receiver::start_with(|_, _| Reply::status(500)).await;
    server.create_project("p1").await;
    server.create_project("p2").await;
    server
        .create_webhook(
            "p1",
            json!({"url": format!("{}/mine", mine.url), "events": ["*"]}),
        )
        .await;
    let w2 = s(&server
        .create_webhook(
            "p2",
            json!({"url": format!("{}/theirs", theirs.url), "events": ["*"]}),
        )
        .await["id"]);
    let (e2, ids) = send(&server, "p2", "RUN_COMPLETED", nannyml("secret-model")).await;
    let d2 = ids[0].clone();
    wait_status(&server, "p2", &d2, "exhausted").await;
    let seen = theirs.settle(Duration::from_millis(200)).await.len();
    assert_eq!(seen, 3);
    let (status, token) = server
        .post("/v1/projects/p1/tokens", json!({"name": "ci"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token = s(&token["token"]);
    let p2_events = walk(&server, "/v1/projects/p2/events", 50).await;

    // The token works on its own project.
    let (status, text) = raw(&server, "GET", "/v1/projects/p1/deliveries", &token, None).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = raw(&server, "GET", "/v1/projects/p1/events", &token, None).await;
    assert_eq!(status, 200, "{text}");

    let validate = json!({"url": format!("{}/validate", theirs.url), "events": ["*"]});
    let routes: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "/v1/projects/{P}/deliveries", None),
        ("GET", "/v1/projects/{P}/deliveries?status=exhausted", None),
        ("GET", "/v1/projects/{P}/deliveries/{D}", None),
        (
            "POST",
            "/v1/projects/{P}/deliveries/{D}/redeliver",
            Some(json!({})),
        ),
        ("GET", "/v1/projects/{P}/events", None),
        ("GET", "/v1/projects/{P}/events/{E}", None),
        (
            "POST",
            "/v1/projects/{P}/events/{E}/replay",
            Some(json!({})),
        ),
        ("GET", "/v1/projects/{P}/webhooks/{W}/stats", None),
        (
            "POST",
            "/v1/projects/{P}/webhooks/{W}/test",
            Some(json!({})),
        ),
        ("POST", "/v1/projects/{P}/webhooks/validate", Some(validate)),
        (
            "POST",
            "/v1/projects/{P}/webhooks/{W}/recover",
            Some(json!({"since": "1h"})),
        ),
    ];
    for (method, template, body) in &routes {
        let path = |p: &str, d: &str, e: &str, w: &str| {
            template
                .replace("{P}", p)
                .replace("{D}", d)
                .replace("{E}", e)
                .replace("{W}", w)
        };
        let context = format!("{method} {template}");
        // Another project's path.
        let (status_other, text_other) = raw(
            &server,
            method,
            &path("p2", &d2, &e2, &w2),
            &token,
            body.as_ref(),
        )
        .await;
        let (status_missing, text_missing) = raw(
            &server,
            method,
            &path("no-such-project", &d2, &e2, &w2),
            &token,
            body.as_ref(),
        )
        .await;
        assert_eq!(status_other, 404, "{context}: {text_other}");
        assert_eq!(
            parse(&text_other)["error"]["code"],
            "not_found",
            "{context}"
        );
        assert_eq!(
            (status_other, &text_other),
            (status_missing, &text_missing),
            "{context}: the answer tells an existing project from a missing one"
        );
        if template.contains("{D}") || template.contains("{E}") || template.contains("{W}") {
            // Its ids under the token's own project.
            let (status_foreign, text_foreign) = raw(
                &server,
                method,
                &path("p1", &d2, &e2, &w2),
                &token,
                body.as_ref(),
            )
            .await;
            let (status_none, text_none) = raw(
                &server,
                method,
                &path(
                    "p1",
                    "msg_00000000000000000000000000000000",
                    "evt_00000000000000000000000000000000",
                    "wh_00000000000000000000000000000000",
                ),
                &token,
                body.as_ref(),
            )
            .await;
            assert_eq!(
                status_foreign, 404,
                "{context} with p2's ids under p1: {text_foreign}"
            );
            assert_eq!(
                (status_foreign, &text_foreign),
                (status_none, &text_none),
                "{context}: a foreign id answers unlike a missing one"
            );
        }
    }

    // Nothing was sent, re-queued or added in p2.
    assert_eq!(
        theirs.settle(Duration::from_millis(1500)).await.len(),
        seen,
        "a p2 endpoint was called"
    );
    let log = deliveries(&server, "p2", "").await;
    assert_eq!(ids_of(&log), vec![d2.clone()]);
    let shown = delivery(&server, "p2", &d2).await;
    assert_eq!(shown["status"], "exhausted", "{shown}");
    assert_eq!(shown["history"].as_array().unwrap().len(), 3, "{shown}");
    assert_eq!(walk(&server, "/v1/projects/p2/events", 50).await, p2_events);
    assert!(ids_of(&p2_events).contains(&e2));
    // The admin still sees p2's log; the token's own log holds nothing of p2.
    let own = deliveries(&server, "p1", "").await;
    assert!(own.iter().all(|d| d["id"] != d2.as_str()));
    let (status, text) = raw(
        &server,
        "GET",
        &format!("/v1/projects/p1/deliveries?event_id={e2}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        parse(&text)["data"].as_array().unwrap().is_empty(),
        "{text}"
    );
    let (status, text) = raw(
        &server,
        "GET",
        &format!("/v1/projects/p1/deliveries?webhook_id={w2}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        parse(&text)["data"].as_array().unwrap().is_empty(),
        "{text}"
    );
    assert_eq!(mine.count(), 0);
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_old_finished_events_and_keeps_unfinished_and_recent_ones() {
    let mut server = Server::start_with(&[
        "--retention",
        "2s",
        "--retry-schedule",
        "1h",
        "--retry-jitter",
        "0",
    ])
    .await;
    let ok = Receiver::start().await;
    let bad = Receiver::start_with(|_, _| Reply::status(500)).await;
    server.create_project("p").await;
    let a = s(&server
        .create_webhook(
            "p",
            json!({"url": format!("{}/a", ok.url), "events": ["RUN_COMPLETED"]}),
        )
        .await["id"]);
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/b", bad.url), "events": ["MODEL_VERSION_CREATED"]}),
        )
        .await;
    let (old_done, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("old")).await;
    let old_delivery = ids[0].clone();
    let (old_failing, ids) = send(&server, "p", "MODEL_VERSION_CREATED", comet("m", "1")).await;
    let failing_delivery = ids[0].clone();
    wait_status(&server, "p", &old_delivery, "succeeded").await;
    wait_status(&server, "p", &failing_delivery, "failed").await;
    let (status, answer) = server
        .post(&format!("/v1/projects/p/webhooks/{a}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let test_event = s(&delivery(&server, "p", &s(&answer["delivery_id"])).await["event_id"]);

    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (recent, ids) = send(&server, "p", "RUN_COMPLETED", nannyml("recent")).await;
    wait_status(&server, "p", &ids[0], "succeeded").await;
    // A purge round runs at start.
    server.kill9();
    server.restart().await;

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = server
            .get(&format!("/v1/projects/p/events/{old_done}"))
            .await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old finished event was never purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = server
        .get(&format!("/v1/projects/p/deliveries/{old_delivery}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "its delivery stayed: {body}");
    let (status, body) = server
        .get(&format!("/v1/projects/p/events/{test_event}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the old test event stayed: {body}"
    );
    let kept = get_ok(&server, &format!("/v1/projects/p/events/{old_failing}")).await;
    assert_eq!(kept["deliveries"][0]["status"], "failed", "{kept}");
    get_ok(&server, &format!("/v1/projects/p/events/{recent}")).await;
    let events = walk(&server, "/v1/projects/p/events", 50).await;
    assert_eq!(
        set(&ids_of(&events)),
        set(&[recent.clone(), old_failing.clone()])
    );
    let shown = delivery(&server, "p", &failing_delivery).await;
    assert_eq!(shown["history"].as_array().unwrap().len(), 1, "{shown}");
}
