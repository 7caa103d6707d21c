//! Delivery integration tests: the real `mlhook` binary, real receivers on
//! 127.0.0.1, and the independent `standardwebhooks` crate as the verifier.

use crate::common::*;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A valid `whsec_` secret that no webhook has (the Standard Webhooks spec example).
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn compact(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn webhook_ids(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect()
}

async fn get_event(server: &Server, project: &str, id: &str) -> Value {
    let (status, body) = server
        .get(&format!("/v1/projects/{project}/events/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls the event until its only delivery satisfies `done`; answers that delivery.
async fn wait_delivery(
    server: &Server,
    project: &str,
    event_id: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/projects/{project}/events/{event_id}");
    let event = server
        .poll_until(&path, timeout, "the expected delivery state", |e| {
            done(&e["deliveries"][0])
        })
        .await;
    event["deliveries"][0].clone()
}

async fn wait_status(server: &Server, project: &str, event_id: &str, status: &str) -> Value {
    wait_delivery(server, project, event_id, Duration::from_secs(5), |d| {
        d["status"] == status
    })
    .await
}

/// A POST with extra request headers; answers status, response headers and JSON.
async fn post_with_headers(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{}", server.base, path))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request reaches mlhook");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Waits until every id in `wanted` arrived with `pred` true for one of its requests.
async fn wait_for_ids(
    receiver: &Receiver,
    wanted: &HashSet<String>,
    timeout: Duration,
    pred: impl Fn(&Received) -> bool,
) -> Vec<Received> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = receiver.received();
        let seen: HashSet<String> = got
            .iter()
            .filter(|r| pred(r))
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        let missing: Vec<&String> = wanted.iter().filter(|id| !seen.contains(*id)).collect();
        if missing.is_empty() {
            return got;
        }
        if Instant::now() > deadline {
            panic!(
                "{} of {} accepted deliveries never arrived, e.g. {:?}",
                missing.len(),
                wanted.len(),
                &missing[..missing.len().min(5)]
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// Vendor payloads (written out here, independently of the service's catalog)
// ---------------------------------------------------------------------------

/// NannyML Cloud's documented RUN_COMPLETED example.
fn nannyml_document() -> Value {
    json!({
        "header": {"model_name": "test", "model_id": 28740, "notification_type": "RUN_COMPLETED"},
        "payload": {
            "run": {"started_at": "2024-01-25T14:04:10.157236"},
            "performance_alerts": {"cbpe": [{"metric_name": "specificity"}]},
            "other_alerts": {"univariate_drift": [{"metric_name": "country"}]},
            "success": ["unseen_values", "missing_values"],
            "report_link": "https://test.app.nannyml.com/model/1"
        }
    })
}

fn nannyml_for(model: &str) -> Value {
    let mut payload = nannyml_document();
    payload["header"]["model_name"] = json!(model);
    payload
}

/// Valohai's documented execution_completed example.
fn valohai_document() -> Value {
    json!({
        "project": "016f3203-4a8c-969e-078c-52ab66947746",
        "title": "Execution finished: demo/cool-tensorflow/#736 (completed)",
        "type": "execution_completed",
        "body": "Execution [demo/cool-tensorflow/#736](https://app.demo.com/p/valohai/cool-tensorflow/execution/0178f482-8686-fb28-8af1-3d36af38079d/) (by demouser)\nfinished with duration 11:01.",
        "url": "/p/demo/cool-tensorflow/execution/0178f482-8686-fb28-8af1-3d36af38079d/",
        "data": {
            "valohai.execution-counter": 736,
            "valohai.execution-ctime": "2021-04-21T12:58:18.119973+00:00",
            "valohai.execution-duration": 660.0186445713043,
            "valohai.execution-id": "0178f482-8686-fb28-8af1-3d36af38079d",
            "valohai.execution-qtime": "2021-04-21T12:58:18.201116+00:00",
            "valohai.execution-status": "complete",
            "valohai.execution-step": "Train model (MNIST)",
            "valohai.execution-title": null,
            "valohai.project-id": "016f3203-4a8c-969e-078c-52ab66947746",
            "valohai.project-name": "demo/cool-tensorflow",
            "valohai.creator-id": 3323,
            "valohai.creator-name": "demouser",
            "valohai.commit-identifier": "4d34124453b680daa0ecb881bcf1bd735a3bf99d"
        }
    })
}

/// All 10 Comet fields, in the order of Comet's field table.
fn comet(trigger: &str, model: &str, version: &str) -> Value {
    json!({
        "eventTrigger": trigger,
        "workspaceName": "acme-ml",
        "registryModelName": model,
        "version": version,
        "tags": ["production", "candidate"],
        "deletedTags": [],
        "status": "Production",
        "oldStatus": null,
        "createdAt": 1706191450,
        "sourceExperimentKey": "2b9a6f3c1d8e4f70a5c6b7d8e9f01234"
    })
}

/// A complete UbiOps deployment request payload, in UbiOps' field order.
fn ubiops(event: &str, deployment: &str, version: &str, result: Option<Value>) -> Value {
    let mut payload = json!({
        "event": event,
        "deployment_id": "3f6c1a52-8d2e-4b7a-9c41-5e0d7b2a9f13",
        "deployment_name": deployment,
        "deployment_version_id": "b1d7e9c4-2a65-4f38-8e17-6c9a0d3b5e21",
        "deployment_version_name": version,
        "request_id": "7e2b4c91-5f3a-4d86-a0c7-19e8d6f2b435",
        "status": "completed",
    });
    if let Some(result) = result {
        payload["result"] = result;
    }
    payload["text"] = json!(format!(
        "Deployment request 7e2b4c91-5f3a-4d86-a0c7-19e8d6f2b435 finished for deployment {deployment} {version} in project acme-production"
    ));
    payload
}

// ---------------------------------------------------------------------------
// 1. Vendor families byte for byte, headers, signature
// ---------------------------------------------------------------------------

/// Sends `payload` as `event_type` to one webhook with custom headers and a
/// secret, and checks everything the receiver sees.
async fn assert_delivered_verbatim(event_type: &str, payload: Value) {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server
        .create_webhook(
            "p",
            json!({
                "url": format!("{}/hook", receiver.url),
                "events": [event_type],
                "include_result": true,
                "secret": "Bearer receiver-s3cr3t",
                "headers": [
                    {"key": "X-Team", "value": "ml-platform"},
                    {"key": "X-Api-Key", "value": "protected-value-123", "protected": true}
                ]
            }),
        )
        .await;
    let signing_secret = hook["signing_secret"].as_str().unwrap().to_string();

    let accepted = server.send_event("p", event_type, payload.clone()).await;
    let deliveries = ids(&accepted["deliveries"]);
    assert_eq!(deliveries.len(), 1, "{accepted}");

    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let request = &got[0];
    assert_eq!(request.path, "/hook");
    assert_eq!(
        text(&request.body),
        text(&compact(&payload)),
        "body is not the payload byte for byte"
    );
    assert_eq!(request.body.as_ref(), compact(&payload).as_slice());

    assert_eq!(request.header("content-type"), "application/json");
    assert!(
        request.header("user-agent").starts_with("mlhook/"),
        "user-agent {:?}",
        request.header("user-agent")
    );
    assert_eq!(request.header("webhook-id"), deliveries[0]);
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .parse()
        .expect("numeric webhook-timestamp");
    assert!(
        (timestamp - now_secs()).abs() <= 5,
        "webhook-timestamp {timestamp} is not now ({})",
        now_secs()
    );

    assert!(
        verify_signature(&signing_secret, request),
        "signature rejected: {:?}",
        request.header("webhook-signature")
    );
    assert!(
        !verify_signature(OTHER_SECRET, request),
        "signature accepted with another secret"
    );
    let mut tampered = request.clone();
    let mut body = tampered.body.to_vec();
    body.push(b' ');
    tampered.body = body.into();
    assert!(
        !verify_signature(&signing_secret, &tampered),
        "signature does not cover the body"
    );

    assert_eq!(request.header("x-team"), "ml-platform");
    assert_eq!(request.header("x-api-key"), "protected-value-123");
    assert_eq!(request.header("authorization"), "Bearer receiver-s3cr3t");

    // Exactly one request, and the delivery is recorded as succeeded.
    let delivery = wait_status(&server, "p", accepted["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 200);
    assert_eq!(receiver.settle(Duration::from_millis(300)).await.len(), 1);
}

#[tokio::test]
async fn nannyml_run_completed_document_example_arrives_verbatim() {
    // The document's example is the catalog's example too.
    let server = Server::start().await;
    let (status, body) = server.get("/v1/event-types/RUN_COMPLETED").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(compact(&body["example"]), compact(&nannyml_document()));
    drop(server);
    assert_delivered_verbatim("RUN_COMPLETED", nannyml_document()).await;
}

#[tokio::test]
async fn ubiops_deployment_request_completed_arrives_verbatim() {
    let payload = ubiops(
        "deployment_request_completed",
        "churn-model",
        "v1",
        Some(
            json!({"prediction": "churn", "probability": 0.87, "explanations": [1, 2.5, null, "é∑"]}),
        ),
    );
    assert_delivered_verbatim("deployment_request_completed", payload).await;
}

#[tokio::test]
async fn comet_model_version_created_all_fields_arrive_verbatim_in_document_order() {
    let payload = comet("MODEL_VERSION_CREATED", "churn-classifier", "1.4.0");
    let keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "eventTrigger",
            "workspaceName",
            "registryModelName",
            "version",
            "tags",
            "deletedTags",
            "status",
            "oldStatus",
            "createdAt",
            "sourceExperimentKey"
        ]
    );
    assert_delivered_verbatim("MODEL_VERSION_CREATED", payload).await;
}

#[tokio::test]
async fn valohai_execution_completed_document_example_arrives_verbatim() {
    let server = Server::start().await;
    let (status, body) = server.get("/v1/event-types/execution_completed").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(compact(&body["example"]), compact(&valohai_document()));
    drop(server);
    assert_delivered_verbatim("execution_completed", valohai_document()).await;
}

#[tokio::test]
async fn derived_fields_missing_from_the_payload_arrive_filled_in() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    catch_all_webhook(&server, &receiver).await;

    // Comet without eventTrigger: filled in first, the rest untouched.
    let full = comet("MODEL_VERSION_CREATED", "fraud", "2.0.1");
    let mut sent = full.clone();
    sent.as_object_mut().unwrap().shift_remove("eventTrigger");
    let comet_id =
        ids(&server.send_event("p", "MODEL_VERSION_CREATED", sent).await["deliveries"])[0].clone();

    // NannyML without notification_type: filled in after model_id.
    let mut sent = nannyml_document();
    sent["header"]
        .as_object_mut()
        .unwrap()
        .shift_remove("notification_type");
    let nannyml_id =
        ids(&server.send_event("p", "RUN_COMPLETED", sent).await["deliveries"])[0].clone();

    // Valohai without title and type: both derived in the document's wording.
    let mut sent = valohai_document();
    sent.as_object_mut().unwrap().shift_remove("title");
    sent.as_object_mut().unwrap().shift_remove("type");
    let valohai_id =
        ids(&server.send_event("p", "execution_completed", sent).await["deliveries"])[0].clone();

    // UbiOps without event and text: the text names this project.
    let mut sent = ubiops("deployment_request_failed", "dep", "v7", None);
    sent["status"] = json!("failed");
    sent.as_object_mut().unwrap().shift_remove("event");
    sent.as_object_mut().unwrap().shift_remove("text");
    let ubiops_id = ids(&server
        .send_event("p", "deployment_request_failed", sent.clone())
        .await["deliveries"])[0]
        .clone();
    let mut ubiops_expected = json!({"event": "deployment_request_failed"});
    for (k, v) in sent.as_object().unwrap() {
        ubiops_expected[k] = v.clone();
    }
    ubiops_expected["text"] = json!(
        "Deployment request 7e2b4c91-5f3a-4d86-a0c7-19e8d6f2b435 failed for deployment dep v7 in project p"
    );

    let expected: HashMap<String, Vec<u8>> = [
        (comet_id, compact(&full)),
        (nannyml_id, compact(&nannyml_document())),
        (valohai_id, compact(&valohai_document())),
        (ubiops_id, compact(&ubiops_expected)),
    ]
    .into_iter()
    .collect();
    let got = receiver.wait_for(4, Duration::from_secs(5)).await;
    for request in &got {
        let want = expected
            .get(request.header("webhook-id"))
            .expect("a known delivery id");
        assert_eq!(text(&request.body), text(want));
    }
    let arrived: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(arrived.len(), 4);
}

// ---------------------------------------------------------------------------
// 2. Routing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn events_are_routed_by_type_scope_and_enabled_state() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let url = |name: &str| format!("{}/{name}", receiver.url);
    let mut hooks: HashMap<String, String> = HashMap::new(); // webhook id -> name
    let mut create = async |name: &str, mut config: Value| {
        config["url"] = json!(url(name));
        let hook = server.create_webhook("p", config).await;
        hooks.insert(hook["id"].as_str().unwrap().to_string(), name.to_string());
        hook["id"].as_str().unwrap().to_string()
    };
    create(
        "model-churn",
        json!({"events": ["*"], "scope": {"object_type": "model", "object_name": "churn"}}),
    )
    .await;
    create(
        "churn-v2-created",
        json!({"events": ["MODEL_VERSION_CREATED"], "scope": {"object_type": "model", "object_name": "churn", "version": "2"}}),
    )
    .await;
    create("everything", json!({"events": ["*"]})).await;
    create("runs-only", json!({"events": ["RUN_COMPLETED"]})).await;
    // Patterns: `*` within a name spans any run of characters.
    create("executions", json!({"events": ["execution_*"]})).await;
    create("versions", json!({"events": ["MODEL_VERSION_*"]})).await;
    create(
        "disabled-at-create",
        json!({"events": ["*"], "enabled": false}),
    )
    .await;
    let patched = create("disabled-by-patch", json!({"events": ["*"]})).await;
    create("deployment-dep-v1", json!({"events": ["*"], "scope": {"object_type": "deployment", "object_name": "dep", "version": "v1"}}))
        .await;
    create(
        "valohai-project",
        json!({"events": ["*"], "scope": {"object_type": "project", "object_name": "016f3203-4a8c-969e-078c-52ab66947746"}}),
    )
    .await;

    // Every check: (event request, names of the webhooks that must get it).
    let mut sent: Vec<(Value, Vec<&str>)> = Vec::new();
    // Before the PATCH the webhook receives.
    sent.push((json!({"type": "MODEL_VERSION_CREATED", "payload": comet("MODEL_VERSION_CREATED", "other", "1")}), vec![
        "everything",
        "disabled-by-patch",
        "versions",
    ]));
    let mut expectations = Vec::new();
    for (request, want) in sent.drain(..) {
        let (status, body) = server.post("/v1/projects/p/events", request.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        expectations.push((request, body, want));
    }
    let (status, body) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{patched}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);

    sent.push((json!({"type": "MODEL_VERSION_CREATED", "payload": comet("MODEL_VERSION_CREATED", "churn", "2")}), vec![
        "model-churn",
        "churn-v2-created",
        "everything",
        "versions",
    ]));
    sent.push((json!({"type": "MODEL_VERSION_CREATED", "payload": comet("MODEL_VERSION_CREATED", "churn", "3")}), vec![
        "model-churn",
        "everything",
        "versions",
    ]));
    sent.push((json!({"type": "MODEL_VERSION_DELETED", "payload": comet("MODEL_VERSION_DELETED", "churn", "2")}), vec![
        "model-churn",
        "everything",
        "versions",
    ]));
    sent.push((json!({"type": "MODEL_VERSION_CREATED", "payload": comet("MODEL_VERSION_CREATED", "fraud", "2")}), vec!["everything", "versions"]));
    sent.push((
        json!({"type": "RUN_COMPLETED", "payload": nannyml_for("churn")}),
        vec!["model-churn", "everything", "runs-only"],
    ));
    sent.push((
        json!({"type": "RUN_COMPLETED", "payload": nannyml_for("fraud")}),
        vec!["everything", "runs-only"],
    ));
    sent.push((json!({"type": "deployment_request_completed", "payload": ubiops("deployment_request_completed", "dep", "v1", None)}), vec![
        "everything",
        "deployment-dep-v1",
    ]));
    sent.push((json!({"type": "deployment_request_completed", "payload": ubiops("deployment_request_completed", "dep", "v2", None)}), vec![
        "everything",
    ]));
    sent.push((
        json!({"type": "execution_completed", "payload": valohai_document()}),
        vec!["everything", "valohai-project", "executions"],
    ));
    // An explicit object replaces the derived one (the Valohai project).
    sent.push((
        json!({"type": "execution_completed", "payload": valohai_document(), "object": {"type": "model", "name": "churn"}}),
        vec!["model-churn", "everything", "executions"],
    ));
    sent.push((
        json!({"type": "execution_completed", "payload": valohai_document(), "object": {"type": "deployment", "name": "dep", "version": "v1"}}),
        vec!["everything", "deployment-dep-v1", "executions"],
    ));
    for (request, want) in sent {
        let (status, body) = server.post("/v1/projects/p/events", request.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        expectations.push((request, body, want));
    }

    // The 202 lists one delivery per matching webhook, and the event view agrees.
    let mut delivery_to_hook: HashMap<String, String> = HashMap::new();
    let mut total = 0;
    for (request, accepted, want) in &expectations {
        let deliveries = ids(&accepted["deliveries"]);
        let event = get_event(&server, "p", accepted["id"].as_str().unwrap()).await;
        let mut routed: Vec<&str> = Vec::new();
        for d in event["deliveries"].as_array().unwrap() {
            let name = hooks[d["webhook_id"].as_str().unwrap()].as_str();
            routed.push(name);
            delivery_to_hook.insert(d["id"].as_str().unwrap().to_string(), name.to_string());
        }
        let in_view: HashSet<String> = event["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            in_view,
            deliveries.iter().cloned().collect::<HashSet<_>>(),
            "202 deliveries differ from the event's"
        );
        assert_eq!(
            deliveries.len(),
            want.len(),
            "202 deliveries for {request}: {routed:?}, want {want:?}"
        );
        routed.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(routed, want, "routing of {request}");
        total += want.len();
    }

    // The receiver sees exactly those deliveries, each at its webhook's URL.
    receiver.wait_for(total, Duration::from_secs(5)).await;
    let got = receiver.settle(Duration::from_millis(400)).await;
    assert_eq!(
        got.len(),
        total,
        "extra deliveries arrived: {:?}",
        got.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let mut seen = HashSet::new();
    for request in &got {
        let id = request.header("webhook-id").to_string();
        let hook = delivery_to_hook
            .get(&id)
            .unwrap_or_else(|| panic!("unknown delivery {id} at {}", request.path));
        assert_eq!(request.path, format!("/{hook}"));
        assert!(seen.insert(id));
    }
    assert!(got.iter().all(|r| r.path != "/disabled-at-create"));
    assert_eq!(
        got.iter()
            .filter(|r| r.path == "/disabled-by-patch")
            .count(),
        1,
        "only the event before the PATCH"
    );
}

// ---------------------------------------------------------------------------
// 3. Idempotency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn idempotency_keys_give_one_event_and_the_same_answer() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    for name in ["a", "b"] {
        server
            .create_webhook(
                "p",
                json!({"url": format!("{}/{name}", receiver.url), "events": ["*"]}),
            )
            .await;
    }
    let request = |key: Option<&str>| {
        let mut r = json!({"type": "RUN_COMPLETED", "payload": nannyml_document()});
        if let Some(key) = key {
            r["idempotency_key"] = json!(key);
        }
        r
    };

    // Body field: the second answer repeats the first.
    let (s1, first) = server
        .post("/v1/projects/p/events", request(Some("k1")))
        .await;
    let (s2, second) = server
        .post("/v1/projects/p/events", request(Some("k1")))
        .await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(ids(&first["deliveries"]).len(), 2);
    assert_eq!(first, second, "a repeated key must answer the first answer");

    // Header: same, and the repeat is marked.
    let (h1, headers1, by_header) = post_with_headers(
        &server,
        "/v1/projects/p/events",
        &[("Idempotency-Key", "hk-1")],
        &request(None),
    )
    .await;
    let (h2, headers2, by_header_again) = post_with_headers(
        &server,
        "/v1/projects/p/events",
        &[("Idempotency-Key", "hk-1")],
        &request(None),
    )
    .await;
    assert_eq!((h1, h2), (202, 202));
    assert_eq!(by_header, by_header_again);
    assert_ne!(by_header["id"], first["id"]);
    assert!(headers1.get("idempotent-replayed").is_none());
    assert_eq!(
        headers2
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );

    // A different key is a different event.
    let (_, other) = server
        .post("/v1/projects/p/events", request(Some("k2")))
        .await;
    assert_ne!(other["id"], first["id"]);
    assert!(
        ids(&other["deliveries"])
            .iter()
            .all(|d| !ids(&first["deliveries"]).contains(d))
    );

    // Batch: a key repeated inside the batch, and a key seen before the batch.
    let (status, batch) = server
        .post(
            "/v1/projects/p/events/batch",
            json!({"events": [request(Some("b1")), request(Some("b2")), request(Some("b1")), request(Some("k1"))]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let events = batch["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0], events[2], "duplicate key inside one batch");
    assert_ne!(events[0]["id"], events[1]["id"]);
    assert_eq!(events[3], first, "key from an earlier request");

    // The same key sent by ten clients at once: one event, ten identical answers.
    let answers = futures::future::join_all(
        (0..10).map(|_| server.post("/v1/projects/p/events", request(Some("race")))),
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::ACCEPTED));
    let raced = answers[0].1.clone();
    assert!(
        answers.iter().all(|(_, a)| *a == raced),
        "concurrent repeats answered differently"
    );

    // Keys belong to a project: the same key elsewhere is a new event.
    server.create_project("q").await;
    server
        .create_webhook(
            "q",
            json!({"url": format!("{}/q", receiver.url), "events": ["*"]}),
        )
        .await;
    let (_, in_q) = server
        .post("/v1/projects/q/events", request(Some("k1")))
        .await;
    assert_ne!(in_q["id"], first["id"]);
    assert_eq!(ids(&in_q["deliveries"]).len(), 1);

    // Distinct events: k1, hk-1, k2, b1, b2, race — two webhooks each — and k1 in q.
    let distinct: HashSet<String> = [
        &first, &by_header, &other, &events[0], &events[1], &raced, &in_q,
    ]
    .iter()
    .flat_map(|e| ids(&e["deliveries"]))
    .collect();
    assert_eq!(distinct.len(), 13);
    receiver.wait_for(13, Duration::from_secs(5)).await;
    let got = receiver.settle(Duration::from_millis(400)).await;
    let arrived: Vec<String> = webhook_ids(&got);
    assert_eq!(arrived.len(), 13, "duplicates delivered: {arrived:?}");
    assert_eq!(arrived.into_iter().collect::<HashSet<_>>(), distinct);
}

// ---------------------------------------------------------------------------
// 4. include_result (UbiOps)
// ---------------------------------------------------------------------------

/// A result whose compact JSON is exactly `size` bytes.
fn result_of_size(size: usize) -> Value {
    let frame = compact(&json!({"prediction": "churn", "blob": ""})).len();
    let result = json!({"prediction": "churn", "blob": "x".repeat(size - frame)});
    assert_eq!(compact(&result).len(), size);
    result
}

#[tokio::test]
async fn include_result_keeps_results_up_to_16384_bytes() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let with = server
        .create_webhook("p", json!({"url": format!("{}/with", receiver.url), "events": ["*"], "include_result": true}))
        .await;
    let without = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/without", receiver.url), "events": ["*"]}),
        )
        .await;
    assert_eq!(without["include_result"], false);

    let at_limit = ubiops(
        "deployment_request_completed",
        "dep",
        "v1",
        Some(result_of_size(16_384)),
    );
    let over = ubiops(
        "deployment_request_completed",
        "dep",
        "v1",
        Some(result_of_size(16_385)),
    );
    let strip = |p: &Value| {
        let mut p = p.clone();
        p.as_object_mut().unwrap().shift_remove("result");
        p
    };
    let a = server
        .send_event("p", "deployment_request_completed", at_limit.clone())
        .await;
    let b = server
        .send_event("p", "deployment_request_completed", over.clone())
        .await;

    let mut expected: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    for (accepted, payload) in [(&a, &at_limit), (&b, &over)] {
        let event = get_event(&server, "p", accepted["id"].as_str().unwrap()).await;
        for d in event["deliveries"].as_array().unwrap() {
            let to_with = d["webhook_id"] == with["id"];
            let body = if to_with && payload == &at_limit {
                compact(payload)
            } else {
                compact(&strip(payload))
            };
            let path = if to_with { "/with" } else { "/without" };
            expected.insert(
                d["id"].as_str().unwrap().to_string(),
                (path.to_string(), body),
            );
        }
    }
    assert_eq!(expected.len(), 4);
    receiver.wait_for(4, Duration::from_secs(5)).await;
    let got = receiver.settle(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 4);
    for request in &got {
        let (path, body) = &expected[request.header("webhook-id")];
        assert_eq!(&request.path, path);
        let shown = |b: &[u8]| {
            let t = text(b);
            if t.len() > 300 {
                format!("{}…{} ({} bytes)", &t[..150], &t[t.len() - 150..], t.len())
            } else {
                t
            }
        };
        assert!(
            request.body.as_ref() == body.as_slice(),
            "{path}: got {}, want {}",
            shown(&request.body),
            shown(body)
        );
    }
    let with_result = got
        .iter()
        .filter(|r| r.json().get("result").is_some())
        .count();
    assert_eq!(
        with_result, 1,
        "only the 16,384-byte result to the include_result webhook"
    );
}

// ---------------------------------------------------------------------------
// 5. Retries
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn failing_twice_then_ok_takes_three_attempts_with_one_webhook_id() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|n, _| Reply::status(if n < 2 { 500 } else { 200 })).await;
    let hook = catch_all_webhook(&server, &receiver).await;
    let secret = hook["signing_secret"].as_str().unwrap();
    let payload = comet("MODEL_VERSION_CREATED", "churn", "1");
    let accepted = server
        .send_event("p", "MODEL_VERSION_CREATED", payload.clone())
        .await;
    let delivery_id = ids(&accepted["deliveries"])[0].clone();

    receiver.wait_for(3, Duration::from_secs(5)).await;
    let delivery = wait_status(&server, "p", accepted["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert_eq!(delivery["last_status_code"], 200);
    let got = receiver.settle(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 3);
    for request in &got {
        assert_eq!(request.header("webhook-id"), delivery_id);
        assert_eq!(request.body.as_ref(), compact(&payload).as_slice());
        assert!(verify_signature(secret, request));
    }
    // The schedule (100ms, then 200ms, no jitter) is kept.
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(
        gap1 >= Duration::from_millis(90),
        "first retry after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(190),
        "second retry after {gap2:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_a_failure_retried_not_followed() {
    let server = Server::start().await;
    let receiver = Receiver::start().await; // only to learn a URL for the Location
    let elsewhere = format!("{}/elsewhere", receiver.url);
    let redirecting = Receiver::start_with(move |n, _| {
        if n == 0 {
            Reply {
                headers: vec![("location", elsewhere.clone())],
                ..Reply::status(302)
            }
        } else {
            Reply::status(200)
        }
    })
    .await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/hook", redirecting.url), "events": ["*"]}),
        )
        .await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;

    let delivery = wait_status(&server, "p", accepted["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    let got = redirecting.settle(Duration::from_millis(400)).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.path == "/hook"));
    assert_eq!(receiver.count(), 0, "the redirect was followed");
    // Recorded as what it is, and retried on the schedule (100 ms).
    let (status, detail) = server
        .get(&format!(
            "/v1/projects/p/deliveries/{}",
            delivery["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let first = &detail["history"][0];
    assert_eq!(first["response"]["status"], 302, "{detail}");
    assert_eq!(first["error"]["kind"], "http_status", "{detail}");
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(90), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_delays_the_next_attempt_beyond_the_schedule() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|n, _| match n {
        0 => Reply {
            headers: vec![("retry-after", "1".to_string())],
            ..Reply::status(429)
        },
        1 => Reply {
            headers: vec![("retry-after", "1".to_string())],
            ..Reply::status(503)
        },
        _ => Reply::status(200),
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;

    let got = receiver.wait_for(3, Duration::from_secs(6)).await;
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(
        gap1 >= Duration::from_millis(950),
        "429 Retry-After: 1 was retried after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(950),
        "503 Retry-After: 1 was retried after {gap2:?}"
    );
    assert!(
        gap1 < Duration::from_secs(3) && gap2 < Duration::from_secs(3),
        "{gap1:?} {gap2:?}"
    );
    let delivery = wait_status(&server, "p", accepted["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(delivery["attempts"], 3);
}

/// A `Retry-After` too large for 64 bits is a long wait, held to the cap
/// (`--retry-after-max`), not ignored.
#[tokio::test(flavor = "multi_thread")]
async fn an_overflowing_retry_after_counts_as_the_cap() {
    let server = Server::start_with(&flags(&["--retry-after-max", "3s"])).await;
    let receiver = Receiver::start_with(|n, _| match n {
        0 => Reply {
            headers: vec![("retry-after", "99999999999999999999".to_string())],
            ..Reply::status(503)
        },
        _ => Reply::status(200),
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(2900) && gap < Duration::from_secs(6),
        "retried after {gap:?}, not after the 3 s cap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|n, _| {
        if n == 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(2);
            let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            Reply {
                headers: vec![("retry-after", date)],
                ..Reply::status(503)
            }
        } else {
            Reply::status(200)
        }
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(6)).await;
    let gap = got[1].at - got[0].at;
    // The date has whole seconds, so the wait is between 1 and 2 s.
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(4),
        "retried after {gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_capped_by_retry_after_max() {
    let server = Server::start_with(&flags(&["--retry-after-max", "500ms"])).await;
    let receiver = Receiver::start_with(|n, _| {
        if n == 0 {
            Reply {
                headers: vec![("retry-after", "30".to_string())],
                ..Reply::status(503)
            }
        } else {
            Reply::status(200)
        }
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(450) && gap < Duration::from_secs(3),
        "Retry-After: 30 capped at 500ms, retried after {gap:?}"
    );
    wait_status(&server, "p", accepted["id"].as_str().unwrap(), "succeeded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn always_failing_receiver_exhausts_after_three_attempts() {
    let server = Server::start_with(&flags(&["--scan-interval", "100ms"])).await;
    let receiver = Receiver::start_with(|_, _| Reply::status(500)).await;
    catch_all_webhook(&server, &receiver).await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;
    let event_id = accepted["id"].as_str().unwrap();

    receiver.wait_for(3, Duration::from_secs(5)).await;
    let delivery = wait_status(&server, "p", event_id, "exhausted").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert_eq!(delivery["last_status_code"], 500);
    assert!(delivery["next_attempt_at"].is_null(), "{delivery}");
    let got = receiver.settle(Duration::from_millis(1500)).await;
    assert_eq!(got.len(), 3, "attempts after exhaustion");
    assert_eq!(
        webhook_ids(&got).into_iter().collect::<HashSet<_>>().len(),
        1
    );
    let delivery = get_event(&server, "p", event_id).await["deliveries"][0].clone();
    assert_eq!(delivery["status"], "exhausted");
    assert_eq!(delivery["attempts"], 3);
}

/// How a misbehaving receiver answers, after reading the whole request.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// A 200 announcing 1,000 bytes, 100 of them sent, then a TCP reset.
    ResetMidBody,
    /// A 200 announcing 100 bytes, sent one every 200 ms.
    Dribble,
    /// A 500 whose body never ends, sent as fast as it is read.
    EndlessBody,
}

/// A raw TCP receiver on 127.0.0.1 for what an HTTP server library will not
/// do on purpose; answers its URL and the arrival time of each request.
async fn misbehaving_receiver(how: Misbehaviour) -> (String, Arc<Mutex<Vec<Instant>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                // The request: headers, then Content-Length bytes of body.
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                let body_start = loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..n]);
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < body_start + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.lock().unwrap().push(Instant::now());
                match how {
                    Misbehaviour::ResetMidBody => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                            .await;
                        let _ = socket.write_all(&[b'x'; 100]).await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        // Linger 0: closing sends RST, not FIN (and never
                        // blocks, which is why the method is deprecated).
                        #[allow(deprecated)]
                        let _ = socket.set_linger(Some(Duration::ZERO));
                        drop(socket);
                    }
                    Misbehaviour::Dribble => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                            .await;
                        for _ in 0..100 {
                            if socket.write_all(b"x").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    Misbehaviour::EndlessBody => {
                        let _ = socket
                            .write_all(
                                b"HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n",
                            )
                            .await;
                        let block = [b'z'; 8192];
                        while socket.write_all(&block).await.is_ok() {}
                    }
                }
            });
        }
    });
    (url, arrivals)
}

/// Sends one event to a webhook at `url` and waits until its delivery is
/// exhausted; checks that each of the three attempts (the test schedule:
/// 100 ms, then 200 ms) recorded `kind` and came on time. Answers the history.
async fn assert_failed_on_schedule(server: &Server, url: &str, kind: &str) -> Vec<Value> {
    server.create_project("p").await;
    server
        .create_webhook("p", json!({"url": url, "events": ["*"]}))
        .await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;
    let delivery_id = ids(&accepted["deliveries"])[0].clone();
    let path = format!("/v1/projects/p/deliveries/{delivery_id}");
    let detail = server
        .poll_until(&path, Duration::from_secs(20), "exhausted", |d| {
            d["status"] == "exhausted"
        })
        .await;
    let history = detail["history"].as_array().unwrap().clone();
    assert_eq!(history.len(), 3, "{detail}");
    let millis = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    for (i, attempt) in history.iter().enumerate() {
        assert_eq!(
            attempt["error"]["kind"],
            kind,
            "attempt {}: {attempt}",
            i + 1
        );
        assert!(
            !attempt["error"]["message"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{attempt}"
        );
    }
    for (i, wait) in [100, 200].into_iter().enumerate() {
        let (this, next) = (&history[i], &history[i + 1]);
        let ended = millis(&this["started_at"]) + this["duration_ms"].as_i64().unwrap();
        let gap = millis(&next["started_at"]) - ended;
        assert!(
            (wait - 10..wait + 1500).contains(&gap),
            "attempt {} came {gap} ms after attempt {} ended, not {wait}: {detail}",
            i + 2,
            i + 1
        );
        let planned = millis(&this["next_attempt_at"]) - ended;
        assert!(
            (wait - 2..wait + 50).contains(&planned),
            "the recorded next attempt is {planned} ms after the attempt, not {wait}: {this}"
        );
    }
    assert!(history[2]["next_attempt_at"].is_null(), "{detail}");
    history
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_in_the_middle_of_the_body_is_a_network_failure_retried_on_schedule() {
    let server = Server::start().await;
    let (url, arrivals) = misbehaving_receiver(Misbehaviour::ResetMidBody).await;
    let history = assert_failed_on_schedule(&server, &url, "network").await;
    // The status line arrived before the reset and is kept.
    assert_eq!(history[0]["response"]["status"], 200, "{:?}", history[0]);
    assert_eq!(arrivals.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dribbling_body_times_out_and_is_retried_on_schedule() {
    let server = Server::start_with(&flags(&["--delivery-timeout", "500ms"])).await;
    let (url, arrivals) = misbehaving_receiver(Misbehaviour::Dribble).await;
    let history = assert_failed_on_schedule(&server, &url, "timeout").await;
    for attempt in &history {
        let took = attempt["duration_ms"].as_i64().unwrap();
        assert!(
            (450..2500).contains(&took),
            "timed out after {took} ms: {attempt}"
        );
    }
    assert_eq!(arrivals.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_body_is_cut_at_64_kib_and_the_500_retried_on_schedule() {
    // A long timeout: the attempt must end by reading no more, not by timing out.
    let server = Server::start_with(&flags(&["--delivery-timeout", "30s"])).await;
    let (url, arrivals) = misbehaving_receiver(Misbehaviour::EndlessBody).await;
    let history = assert_failed_on_schedule(&server, &url, "http_status").await;
    for attempt in &history {
        assert_eq!(attempt["response"]["status"], 500, "{attempt}");
        assert_eq!(attempt["response"]["truncated"], true, "{attempt}");
        assert_eq!(
            attempt["response"]["body"].as_str().unwrap().len(),
            64 * 1024
        );
        let took = attempt["duration_ms"].as_i64().unwrap();
        assert!(took < 5_000, "reading the endless body took {took} ms");
    }
    assert_eq!(arrivals.lock().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------
// 6. Isolation
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let server = Server::start_with(&flags(&["--delivery-timeout", "30s"])).await;
    let hanging = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_secs(60),
        ..Reply::status(200)
    })
    .await;
    let healthy = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/hang", hanging.url), "events": ["*"]}),
        )
        .await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/ok", healthy.url), "events": ["*"]}),
        )
        .await;

    let answers = futures::future::join_all((0..50).map(|i| {
        let server = &server;
        async move {
            server
                .send_event("p", "RUN_COMPLETED", nannyml_for(&format!("model-{i}")))
                .await
        }
    }))
    .await;
    let sent_at = Instant::now();
    let all: HashSet<String> = answers.iter().flat_map(|a| ids(&a["deliveries"])).collect();
    assert_eq!(all.len(), 100);

    let got = healthy.wait_for(50, Duration::from_secs(3)).await;
    let took = sent_at.elapsed();
    let arrived: HashSet<String> = webhook_ids(&got).into_iter().collect();
    assert_eq!(arrived.len(), 50, "took {took:?}");
    assert!(arrived.is_subset(&all));
    assert!(hanging.count() >= 1, "the hanging receiver was never tried");
    assert!(
        webhook_ids(&hanging.received())
            .iter()
            .all(|id| !arrived.contains(id))
    );
}

// ---------------------------------------------------------------------------
// 7. Crash durability
// ---------------------------------------------------------------------------

/// Sends `total` events from `workers` concurrent senders to `base` until the
/// server goes away; answers the delivery ids of every event answered 202.
fn stream_events(
    base: String,
    total: usize,
    workers: usize,
    accepted: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let next = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let senders = (0..workers).map(|_| {
            let (client, base, next, accepted, failures) = (client.clone(), base.clone(), next.clone(), accepted.clone(), failures.clone());
            async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return;
                    }
                    let body = json!({"type": "RUN_COMPLETED", "payload": nannyml_for(&format!("model-{i}"))});
                    let sent = client
                        .post(format!("{base}/v1/projects/p/events"))
                        .header("authorization", format!("Bearer {ADMIN}"))
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .await;
                    let Ok(resp) = sent else {
                        failures.fetch_add(1, Ordering::SeqCst);
                        continue;
                    };
                    if resp.status() != 202 {
                        failures.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let Some(answer) = resp.bytes().await.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
                        // Killed between the status line and the body: not counted as accepted.
                        failures.fetch_add(1, Ordering::SeqCst);
                        continue;
                    };
                    accepted.lock().unwrap().extend(ids(&answer["deliveries"]));
                }
            }
        });
        futures::future::join_all(senders).await;
        failures.load(Ordering::SeqCst)
    })
}

async fn wait_accepted(accepted: &Mutex<Vec<String>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "the stream of events never got {n} answers"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_mid_stream_loses_no_accepted_event() {
    let mut server = Server::start_with(&flags(&[
        "--scan-interval",
        "100ms",
        "--lane-concurrency",
        "2",
    ]))
    .await;
    // A slightly slow receiver, so a backlog exists when the server dies.
    let receiver = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_millis(10),
        ..Reply::status(200)
    })
    .await;
    catch_all_webhook(&server, &receiver).await;

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stream = stream_events(server.base.clone(), 300, 8, accepted.clone());
    wait_accepted(&accepted, 100).await;
    server.kill9();
    let failures = stream.await.unwrap();
    let wanted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    let before = receiver.received().len();
    eprintln!(
        "accepted {} of 300 before the kill ({failures} refused); {before} requests had arrived",
        wanted.len()
    );

    server.restart().await;
    wait_for_ids(&receiver, &wanted, Duration::from_secs(10), |_| true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_while_the_receiver_is_down_delivers_everything_after_restart() {
    let schedule = vec!["300ms"; 30].join(",");
    let mut server = Server::start_with(&[
        "--retry-schedule",
        schedule.as_str(),
        "--retry-jitter",
        "0",
        "--scan-interval",
        "100ms",
    ])
    .await;
    let healthy = Arc::new(AtomicBool::new(false));
    let up = healthy.clone();
    let receiver = Receiver::start_with(move |_, _| {
        Reply::status(if up.load(Ordering::SeqCst) { 200 } else { 500 })
    })
    .await;
    catch_all_webhook(&server, &receiver).await;

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stream = stream_events(server.base.clone(), 150, 4, accepted.clone());
    wait_accepted(&accepted, 50).await;
    receiver.wait_for(20, Duration::from_secs(5)).await; // failures are under way
    server.kill9();
    stream.await.unwrap();
    let wanted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    eprintln!(
        "accepted {} before the kill; {} failed attempts had arrived",
        wanted.len(),
        receiver.count()
    );

    healthy.store(true, Ordering::SeqCst);
    let back_at = Instant::now();
    server.restart().await;
    wait_for_ids(&receiver, &wanted, Duration::from_secs(10), |r| {
        r.at > back_at
    })
    .await;
}

// ---------------------------------------------------------------------------
// 8. Graceful shutdown
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_attempt_in_flight_finish_and_records_it() {
    let mut server = Server::start_with(&flags(&[
        "--shutdown-grace",
        "5s",
        "--scan-interval",
        "100ms",
    ]))
    .await;
    let receiver = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_secs(1),
        ..Reply::status(200)
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", nannyml_document())
        .await;
    let event_id = accepted["id"].as_str().unwrap().to_string();

    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let status = server.terminate();
    let exited_after = got[0].at.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log()
    );
    assert!(
        exited_after >= Duration::from_millis(900),
        "exited {exited_after:?} after the request arrived: the attempt was cut short"
    );

    server.restart().await;
    let delivery = get_event(&server, "p", &event_id).await["deliveries"][0].clone();
    assert_eq!(
        delivery["status"], "succeeded",
        "outcome not recorded at shutdown: {delivery}"
    );
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 200);
    let got = receiver.settle(Duration::from_millis(1500)).await;
    assert_eq!(got.len(), 1, "re-sent after restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_keeps_queued_deliveries_pending_and_they_go_out_after_restart() {
    let mut server = Server::start_with(&flags(&[
        "--shutdown-grace",
        "5s",
        "--scan-interval",
        "100ms",
        "--lane-concurrency",
        "1",
    ]))
    .await;
    let receiver = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_millis(800),
        ..Reply::status(200)
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    let mut events = Vec::new();
    for i in 0..3 {
        let accepted = server
            .send_event("p", "RUN_COMPLETED", nannyml_for(&format!("m{i}")))
            .await;
        events.push((
            accepted["id"].as_str().unwrap().to_string(),
            ids(&accepted["deliveries"])[0].clone(),
        ));
    }

    // One in flight (lane concurrency 1), two queued.
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log()
    );
    let before = receiver.received();
    assert_eq!(
        before.len(),
        1,
        "queued deliveries were started during shutdown"
    );
    let first = before[0].header("webhook-id").to_string();

    server.restart().await;
    let wanted: HashSet<String> = events.iter().map(|(_, d)| d.clone()).collect();
    wait_for_ids(&receiver, &wanted, Duration::from_secs(6), |_| true).await;
    for (event_id, _) in &events {
        let delivery = wait_status(&server, "p", event_id, "succeeded").await;
        assert_eq!(delivery["attempts"], 1, "{delivery}");
    }
    let got = receiver.settle(Duration::from_millis(500)).await;
    assert_eq!(
        got.len(),
        3,
        "a delivery was sent twice: {:?}",
        webhook_ids(&got)
    );
    assert_eq!(
        got.iter()
            .filter(|r| r.header("webhook-id") == first)
            .count(),
        1,
        "the finished attempt was re-sent"
    );
}

// ---------------------------------------------------------------------------
// 9. Batch route
// ---------------------------------------------------------------------------

#[tokio::test]
async fn batch_route_accepts_and_delivers_every_event() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server.create_webhook("p", json!({"url": format!("{}/hook", receiver.url), "events": ["*"], "include_result": true})).await;
    let payloads = [
        ("RUN_COMPLETED", nannyml_document()),
        (
            "MODEL_VERSION_CREATED",
            comet("MODEL_VERSION_CREATED", "churn", "5"),
        ),
        (
            "deployment_request_completed",
            ubiops(
                "deployment_request_completed",
                "dep",
                "v1",
                Some(json!({"score": 1})),
            ),
        ),
        ("execution_completed", valohai_document()),
    ];
    let events: Vec<Value> = payloads
        .iter()
        .map(|(t, p)| json!({"type": t, "payload": p}))
        .collect();
    let (status, body) = server
        .post("/v1/projects/p/events/batch", json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let answered = body["events"].as_array().unwrap();
    assert_eq!(answered.len(), 4);
    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    for (answer, (event_type, payload)) in answered.iter().zip(&payloads) {
        let deliveries = ids(&answer["deliveries"]);
        assert_eq!(deliveries.len(), 1, "{answer}");
        let event = get_event(&server, "p", answer["id"].as_str().unwrap()).await;
        assert_eq!(
            event["type"], *event_type,
            "answers follow the request's order"
        );
        expected.insert(deliveries[0].clone(), compact(payload));
    }
    let ids_answered: HashSet<&str> = answered.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids_answered.len(), 4);

    receiver.wait_for(4, Duration::from_secs(5)).await;
    let got = receiver.settle(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 4);
    for request in &got {
        assert_eq!(
            text(&request.body),
            text(&expected[request.header("webhook-id")])
        );
    }
    for answer in answered {
        wait_status(&server, "p", answer["id"].as_str().unwrap(), "succeeded").await;
    }

    // One invalid event refuses the whole batch: nothing is stored or sent.
    let bad = json!({"events": [
        {"type": "RUN_COMPLETED", "payload": nannyml_document()},
        {"type": "RUN_COMPLETED", "payload": {"header": {}}}
    ]});
    let (status, body) = server.post("/v1/projects/p/events/batch", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["field"]
            .as_str()
            .unwrap_or("")
            .starts_with("/events/1"),
        "{body}"
    );
    assert_eq!(receiver.settle(Duration::from_millis(300)).await.len(), 4);
}

// ---------------------------------------------------------------------------
// 10. A held backlog
// ---------------------------------------------------------------------------

/// Posts `count` RUN_COMPLETED events in batches of 1,000; answers their delivery ids.
async fn post_batches(server: &Server, count: usize) -> Vec<String> {
    let mut delivery_ids = Vec::with_capacity(count);
    for first in (0..count).step_by(1000) {
        let events: Vec<Value> = (first..count.min(first + 1000))
            .map(
                |i| json!({"type": "RUN_COMPLETED", "payload": nannyml_for(&format!("model-{i}"))}),
            )
            .collect();
        let (status, body) = server
            .post("/v1/projects/p/events/batch", json!({"events": events}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        for answer in body["events"].as_array().unwrap() {
            delivery_ids.extend(ids(&answer["deliveries"]));
        }
    }
    delivery_ids
}

/// The value of an unlabelled gauge or counter in the service's /metrics.
async fn metric(server: &Server, name: &str) -> f64 {
    let (status, text) = server.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paced_webhooks_backlog_waits_in_the_store_not_in_memory() {
    let backlog: usize = std::env::var("MLHOOK_TEST_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/hook", receiver.url), "events": ["*"],
                   "rate_limit": {"per_minute": 1}}),
        )
        .await;

    // A first share, past the lane's in-memory queue: the service's size
    // with a full lane.
    post_batches(&server, 5_000).await;
    let with_full_lane = server.memory_mib("VmHWM:");
    let accepted = post_batches(&server, backlog - 5_000).await;
    assert_eq!(accepted.len(), backlog - 5_000);
    let peak = server.memory_mib("VmHWM:");
    eprintln!(
        "{backlog} pending on a webhook paced at 1/min: peak RSS {with_full_lane:.1} MiB \
         after 5,000, {peak:.1} MiB after all"
    );
    assert!(
        peak - with_full_lane < 16.0,
        "memory grew with the backlog: {with_full_lane:.1} → {peak:.1} MiB"
    );
    assert!(peak < 128.0, "peak RSS {peak:.1} MiB");
    let queued = metric(&server, "mlhook_lane_queued").await;
    assert!(queued <= 1_000.0, "{queued} deliveries queued in memory");
    // All but a lane's queue (and the few that left it) wait in the store.
    let deferred = metric(&server, "mlhook_lane_deferred_total").await;
    assert!(
        deferred >= (backlog - 1_010) as f64,
        "{deferred} of {backlog} deliveries deferred"
    );

    // The pace is kept, and the rest waits in the store, due one slot of
    // the pace after another.
    let got = receiver.settle(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1, "the pace allows one delivery a minute");
    let (status, last) = server
        .get("/v1/projects/p/deliveries?limit=1&status=pending")
        .await;
    assert_eq!(status, StatusCode::OK, "{last}");
    let next = last["data"][0]["next_attempt_at"]
        .as_str()
        .unwrap_or_default();
    let at =
        chrono::DateTime::parse_from_rfc3339(next).expect("a pending delivery has a next attempt");
    let ahead = at.timestamp() - now_secs();
    assert!(
        ahead > 3_600,
        "the newest delivery is due in {ahead} s: {last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_lanes_overflow_is_delivered_once_each() {
    let server = Server::start_with(&flags(&["--lane-concurrency", "2"])).await;
    let receiver = Receiver::start_with(|_, _| Reply {
        delay: Duration::from_millis(3),
        ..Reply::status(200)
    })
    .await;
    catch_all_webhook(&server, &receiver).await;
    // Three times what a lane queues in memory, faster than it sends.
    let accepted: HashSet<String> = post_batches(&server, 3_000).await.into_iter().collect();
    assert_eq!(accepted.len(), 3_000);
    receiver.wait_for(3_000, Duration::from_secs(60)).await;
    let got = receiver.settle(Duration::from_millis(1500)).await;
    let arrived = webhook_ids(&got);
    let distinct: HashSet<String> = arrived.iter().cloned().collect();
    assert_eq!(distinct, accepted);
    assert_eq!(arrived.len(), 3_000, "some deliveries were sent twice");
    let deferred = metric(&server, "mlhook_lane_deferred_total").await;
    assert!(deferred > 0.0, "the lane never overflowed");
}
