//! `/metrics` and the logs, against the real `mlhook` binary: counters move
//! as events are delivered and fail, nothing secret or unbounded shows, and
//! JSON log lines carry the request id and the delivery id.

use crate::common::*;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "Bearer metrics-s3cr3t-token";
const PROTECTED: &str = "protected-value-9931";
const PLAIN: &str = "plain-header-value-5531";
const EVENTS_ROUTE: &str = "/v1/projects/{project}/events";

/// GET /metrics with `token`; answers status and text.
async fn scrape_with(server: &Server, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.base));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.text().await.unwrap())
}

async fn scrape(server: &Server) -> String {
    let (status, text) = scrape_with(server, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    text
}

/// The value of one series (name and labels exactly as encoded); 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("{series}: {v}")))
        .next()
        .unwrap_or(0.0)
}

/// Scrapes until `done` holds of the text; panics with the last one after 10 s.
async fn scrape_until(server: &Server, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(server).await;
        if done(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("metrics never showed {what}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn test_example(server: &Server) -> Value {
    let (status, body) = server.get("/v1/event-types/TEST").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["example"].clone()
}

/// Every string in a JSON value, for the "no payload values" check.
fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn counters_move_as_events_are_delivered_and_fail() {
    let server = Server::start().await;
    let ok = Receiver::start().await;
    let bad = Receiver::start_with(|_, _| Reply::status(500)).await;
    server.create_project("metrics-a").await;
    let mut signing_secrets = Vec::new();
    for (name, receiver) in [("ok", &ok), ("bad", &bad)] {
        let hook = server
            .create_webhook(
                "metrics-a",
                json!({
                    "name": name,
                    "url": format!("{}/hooks/{name}-path-4471", receiver.url),
                    "events": ["TEST"],
                    "secret": SECRET,
                    "headers": [
                        {"key": "X-Api-Key", "value": PROTECTED, "protected": true},
                        {"key": "X-Plain", "value": PLAIN},
                    ],
                }),
            )
            .await;
        signing_secrets.push(hook["signing_secret"].as_str().unwrap().to_string());
    }
    let example = test_example(&server).await;

    // Without a token, /metrics is closed; a project token is not enough.
    assert_eq!(scrape_with(&server, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, created) = server
        .post("/v1/projects/metrics-a/tokens", json!({"name": "ci"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let project_token = created["token"].as_str().unwrap();
    assert_eq!(
        scrape_with(&server, Some(project_token)).await.0,
        StatusCode::FORBIDDEN
    );

    let before = scrape(&server).await;
    // The store's counts: read at this first scrape.
    assert_eq!(value(&before, "mlhook_webhooks{state=\"enabled\"}"), 2.0);
    assert_eq!(value(&before, "mlhook_webhooks{state=\"disabled\"}"), 0.0);
    assert_eq!(value(&before, "mlhook_queue_pending"), 0.0);
    assert_eq!(value(&before, "mlhook_queue_due"), 0.0);

    for _ in 0..2 {
        server
            .send_event("metrics-a", "TEST", example.clone())
            .await;
    }
    // 2 successes; 2 deliveries × 3 attempts (100ms, 200ms retries) that fail.
    ok.wait_for(2, Duration::from_secs(10)).await;
    bad.wait_for(6, Duration::from_secs(10)).await;

    let delta = |after: &str, series: &str| value(after, series) - value(&before, series);
    let exhausted = "mlhook_deliveries_total{outcome=\"exhausted\"}";
    let announced = "mlhook_events_ingested_total{project=\"metrics-a\",event_type=\"mlhook.delivery.exhausted\"}";
    let after = scrape_until(&server, "both deliveries exhausted and announced", |text| {
        delta(text, exhausted) >= 2.0 && delta(text, announced) >= 2.0
    })
    .await;

    let expected = [
        (
            "mlhook_events_ingested_total{project=\"metrics-a\",event_type=\"TEST\"}",
            2.0,
        ),
        (announced, 2.0),
        ("mlhook_deliveries_created_total", 4.0),
        ("mlhook_deliveries_total{outcome=\"succeeded\"}", 2.0),
        ("mlhook_deliveries_total{outcome=\"failed\"}", 4.0),
        (exhausted, 2.0),
        (
            "mlhook_attempt_duration_seconds_count{outcome=\"succeeded\"}",
            2.0,
        ),
        (
            "mlhook_attempt_duration_seconds_count{outcome=\"failed\"}",
            6.0,
        ),
        ("mlhook_attempt_errors_total{kind=\"http_status\"}", 6.0),
        (
            &format!(
                "mlhook_http_requests_total{{method=\"POST\",route=\"{EVENTS_ROUTE}\",status=\"202\"}}"
            ),
            2.0,
        ),
        (
            &format!(
                "mlhook_http_request_duration_seconds_count{{method=\"POST\",route=\"{EVENTS_ROUTE}\"}}"
            ),
            2.0,
        ),
        ("mlhook_webhooks_disabled_total", 0.0),
    ];
    for (series, want) in expected {
        assert_eq!(delta(&after, series), want, "{series}\n{after}");
    }
    // Group commits: every event and every attempt went through a batch.
    assert!(
        delta(
            &after,
            "mlhook_store_write_batch_size_sum{writer=\"ingest\"}"
        ) >= 4.0
    );
    assert!(
        delta(
            &after,
            "mlhook_store_write_batch_size_sum{writer=\"recorder\"}"
        ) >= 8.0
    );
    assert!(
        delta(
            &after,
            "mlhook_store_write_duration_seconds_count{writer=\"recorder\"}"
        ) >= 1.0
    );
    assert_eq!(value(&after, "mlhook_attempts_in_flight"), 0.0);
    assert_eq!(value(&after, "mlhook_lanes_busy"), 0.0);
    assert_eq!(value(&after, "mlhook_lane_queued"), 0.0);
    assert_eq!(value(&after, "mlhook_lanes"), 2.0);
    // Unmatched paths share one label; the raw path never shows.
    let (status, _) = server.get("/no/such/route-8812").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = scrape_until(&server, "the unmatched request", |text| {
        value(
            text,
            "mlhook_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
        ) >= 1.0
    })
    .await;
    assert!(!text.contains("route-8812"));

    // No URL, header value, secret or payload value anywhere.
    let mut forbidden = vec![
        ok.url.clone(),
        bad.url.clone(),
        "127.0.0.1".to_string(),
        "path-4471".to_string(),
        SECRET.to_string(),
        "metrics-s3cr3t".to_string(),
        PROTECTED.to_string(),
        PLAIN.to_string(),
        ADMIN.to_string(),
        project_token.to_string(),
        "whsec_".to_string(),
    ];
    forbidden.extend(signing_secrets);
    let mut payload_strings = Vec::new();
    strings_in(&example, &mut payload_strings);
    forbidden.extend(payload_strings.into_iter().filter(|s| s.len() >= 6));
    for needle in &forbidden {
        assert!(!text.contains(needle.as_str()), "{needle:?} in:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("://"), "a URL in {line}");
    }
}

#[tokio::test]
async fn json_logs_carry_request_and_delivery_ids_and_the_queue_is_counted() {
    let server = Server::start_with(&[
        "--retry-schedule",
        "1h",
        "--retry-jitter",
        "0",
        "--log-format",
        "json",
        "--metrics-public",
    ])
    .await;
    let bad = Receiver::start_with(|_, _| Reply::status(500)).await;
    server.create_project("metrics-b").await;
    server
        .create_webhook(
            "metrics-b",
            json!({"url": format!("{}/hook", bad.url), "events": ["TEST"]}),
        )
        .await;
    let example = test_example(&server).await;

    let client = reqwest::Client::new();
    let request_id = "metrics-test-req-7f3a";
    let response = client
        .post(format!("{}/v1/projects/metrics-b/events", server.base))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("x-request-id", request_id)
        .header("content-type", "application/json")
        .body(json!({"type": "TEST", "payload": example}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], request_id);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let delivery_id = body["deliveries"][0].as_str().unwrap().to_string();

    // No id, or one that is not sane: the answer carries a new UUID.
    for sent in [
        None,
        Some("has spaces and \"quotes\""),
        Some(&*"x".repeat(200)),
    ] {
        let mut request = client.get(format!("{}/healthz", server.base));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }

    // The attempt fails; its retry is an hour away: pending, not due.
    bad.wait_for(1, Duration::from_secs(10)).await;
    server
        .poll_until(
            &format!("/v1/projects/metrics-b/deliveries/{delivery_id}"),
            Duration::from_secs(10),
            "failed",
            |d| d["status"] == "failed",
        )
        .await;
    let (status, text) = scrape_with(&server, None).await;
    assert_eq!(status, StatusCode::OK, "--metrics-public needs no token");
    assert_eq!(value(&text, "mlhook_queue_pending"), 1.0, "{text}");
    assert_eq!(value(&text, "mlhook_queue_due"), 0.0, "{text}");

    // Every stderr line is JSON; the request's lines carry its id and route,
    // the attempt's lines the delivery id.
    let span_field = |line: &Value, field: &str| -> Vec<String> {
        let mut spans: Vec<&Value> = line["spans"].as_array().into_iter().flatten().collect();
        spans.push(&line["span"]);
        let mut values: Vec<String> = spans
            .iter()
            .filter_map(|s| s[field].as_str().map(str::to_string))
            .collect();
        values.dedup();
        values
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        let lines: Vec<Value> = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let request_line = lines
            .iter()
            .find(|l| span_field(l, "request_id").contains(&request_id.to_string()));
        let delivery_line = lines
            .iter()
            .find(|l| span_field(l, "delivery_id").contains(&delivery_id));
        if let (Some(request_line), Some(delivery_line)) = (request_line, delivery_line) {
            assert_eq!(span_field(request_line, "route"), [EVENTS_ROUTE]);
            assert_eq!(span_field(request_line, "method"), ["POST"]);
            assert!(!span_field(delivery_line, "webhook_id").is_empty());
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "no log line with request id {request_id} and delivery id {delivery_id}:\n{log}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
