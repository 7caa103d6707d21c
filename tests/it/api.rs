//! Integration tests of the REST API against the real `mlhook` binary.
//!
//! Each test starts its own server (fresh data directory) and, where deliveries
//! matter, a real receiver on 127.0.0.1. Checks that need no isolation share a
//! server inside one test to keep the suite fast.

use crate::common::*;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A request with arbitrary headers and a raw body; answers status and raw text.
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{}{}", server.base, path));
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().await.expect("request reaches mlhook");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// `request` with a token, answering the raw text of the answer too.
async fn call_as(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    call(
        server,
        method,
        path,
        &[("authorization", format!("Bearer {token}"))],
        body.map(Value::to_string),
    )
    .await
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"))
}

/// Asserts the API's error shape:
/// `{"error": {"code", "message", "field"?, "details"?: [{"field", "message"}]}}`.
fn assert_error_shape(body: &Value, context: &str) {
    let top = body
        .as_object()
        .unwrap_or_else(|| panic!("{context}: error body is not an object: {body}"));
    assert_eq!(
        top.keys().collect::<Vec<_>>(),
        ["error"],
        "{context}: {body}"
    );
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{context}: `error` is not an object: {body}"));
    for key in error.keys() {
        assert!(
            ["code", "message", "field", "details"].contains(&key.as_str()),
            "{context}: unexpected key {key}: {body}"
        );
    }
    assert!(
        error
            .get("code")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty()),
        "{context}: code: {body}"
    );
    assert!(
        error
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "{context}: message: {body}"
    );
    if let Some(field) = error.get("field") {
        assert!(
            field.as_str().is_some_and(|f| f.starts_with('/')),
            "{context}: field is not a JSON pointer: {body}"
        );
    }
    if let Some(details) = error.get("details") {
        let details = details
            .as_array()
            .unwrap_or_else(|| panic!("{context}: details: {body}"));
        assert!(!details.is_empty(), "{context}: empty details: {body}");
        for d in details {
            let d = d
                .as_object()
                .unwrap_or_else(|| panic!("{context}: detail: {body}"));
            assert_eq!(d.len(), 2, "{context}: detail keys: {body}");
            assert!(
                d["field"].as_str().is_some_and(|f| f.starts_with('/')),
                "{context}: detail field: {body}"
            );
            assert!(
                d["message"].as_str().is_some(),
                "{context}: detail message: {body}"
            );
        }
    }
}

/// Asserts `status` and the error shape, answering the `error` object.
fn expect_error(status: impl Into<u16>, body: &Value, want: u16, context: &str) -> Value {
    let status = status.into();
    assert_eq!(status, want, "{context}: {body}");
    assert_error_shape(body, context);
    body["error"].clone()
}

fn status_u16(s: StatusCode) -> u16 {
    s.as_u16()
}

/// Whether the error names `field`, as a JSON pointer or (for serde's
/// missing/unknown field errors on the root object) by name in its message.
fn names_field(error: &Value, pointer: &str) -> bool {
    if error_fields(error).iter().any(|f| f == pointer) {
        return true;
    }
    let name = pointer.rsplit('/').next().unwrap();
    let quoted = format!("`{name}`");
    error["message"]
        .as_str()
        .is_some_and(|m| m.contains(&quoted))
        || error["details"].as_array().is_some_and(|ds| {
            ds.iter()
                .any(|d| d["message"].as_str().is_some_and(|m| m.contains(&quoted)))
        })
}

/// A valid Comet `MODEL_VERSION_CREATED` payload (all ten documented fields).
fn comet_payload() -> Value {
    json!({
        "eventTrigger": "MODEL_VERSION_CREATED",
        "workspaceName": "ws",
        "registryModelName": "fraud",
        "version": "2.0.1",
        "tags": ["a"],
        "deletedTags": [],
        "status": null,
        "oldStatus": null,
        "createdAt": 1706191450,
        "sourceExperimentKey": null
    })
}

fn comet_event() -> Value {
    json!({"type": "MODEL_VERSION_CREATED", "payload": comet_payload()})
}

async fn create_token(server: &Server, project: &str, body: Value) -> String {
    let (status, answer) = server
        .post(&format!("/v1/projects/{project}/tokens"), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let token = answer["token"]
        .as_str()
        .expect("token in the answer")
        .to_string();
    assert!(token.starts_with("mlh_"), "{answer}");
    assert_eq!(answer["project_id"], project);
    token
}

async fn webhook_count(server: &Server, project: &str) -> usize {
    let (status, list) = server
        .get(&format!("/v1/projects/{project}/webhooks"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["data"].as_array().expect("data array").len()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const QUIET: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// 1. Health
// ---------------------------------------------------------------------------

#[tokio::test]
async fn health_and_readiness_answer_200_without_a_token() {
    let server = Server::start().await;
    let (status, body) = server.request("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    let (status, body) = server.request("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    // A bogus token does not matter either: these routes take none.
    let (status, _) = server.request("GET", "/healthz", Some("wrong"), None).await;
    assert_eq!(status, StatusCode::OK);
}

// ---------------------------------------------------------------------------
// 2. Auth
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_v1_route_answers_401_without_valid_bearer_credentials() {
    // Every failure here comes from one address: lift the limit on failed
    // authentication (tests/it/security.rs checks it).
    let server = Server::start_with(&flags(&["--auth-failures-per-minute", "100000"])).await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server
        .create_webhook(
            "p",
            json!({"name": "orig", "url": format!("{}/hook", receiver.url), "events": ["*"]}),
        )
        .await;
    let wid = hook["id"].as_str().unwrap().to_string();
    let event = server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    let eid = event["id"].as_str().unwrap().to_string();
    receiver.wait_for(1, Duration::from_secs(5)).await;

    let hook_body = json!({"url": format!("{}/other", receiver.url), "events": ["*"]});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/projects".into(), None),
        (
            "POST",
            "/v1/projects".into(),
            Some(json!({"id": "intruder", "name": "x"})),
        ),
        ("GET", "/v1/projects/p".into(), None),
        (
            "PATCH",
            "/v1/projects/p".into(),
            Some(json!({"name": "hacked"})),
        ),
        ("DELETE", "/v1/projects/p".into(), None),
        ("POST", "/v1/projects/p/tokens".into(), Some(json!({}))),
        ("GET", "/v1/event-types".into(), None),
        ("GET", "/v1/event-types/MODEL_VERSION_CREATED".into(), None),
        ("GET", "/v1/projects/p/webhooks".into(), None),
        ("POST", "/v1/projects/p/webhooks".into(), Some(hook_body)),
        ("GET", format!("/v1/projects/p/webhooks/{wid}"), None),
        (
            "PATCH",
            format!("/v1/projects/p/webhooks/{wid}"),
            Some(json!({"name": "hacked"})),
        ),
        ("DELETE", format!("/v1/projects/p/webhooks/{wid}"), None),
        (
            "GET",
            format!("/v1/projects/p/webhooks/{wid}/signing-secret"),
            None,
        ),
        ("POST", "/v1/projects/p/events".into(), Some(comet_event())),
        (
            "POST",
            "/v1/projects/p/events/batch".into(),
            Some(json!({"events": [comet_event()]})),
        ),
        ("GET", format!("/v1/projects/p/events/{eid}"), None),
    ];
    let basic_admin = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN}"));
    let credentials: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no Authorization header", vec![]),
        (
            "wrong bearer token",
            vec![("authorization", "Bearer not-a-real-token".to_string())],
        ),
        (
            "wrong mlh_ token",
            vec![(
                "authorization",
                "Bearer mlh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
            )],
        ),
        (
            "empty bearer",
            vec![("authorization", "Bearer ".to_string())],
        ),
        (
            "Basic with user:admin-token",
            vec![("authorization", format!("Basic {basic_admin}"))],
        ),
        (
            "Basic carrying the admin token itself",
            vec![("authorization", format!("Basic {ADMIN}"))],
        ),
        (
            "admin token without a scheme",
            vec![("authorization", ADMIN.to_string())],
        ),
    ];
    for (method, path, body) in &routes {
        for (what, headers) in &credentials {
            let (status, text) = call(
                &server,
                method,
                path,
                headers,
                body.as_ref().map(Value::to_string),
            )
            .await;
            let context = format!("{method} {path} with {what}");
            let error = expect_error(status, &parse(&text), 401, &context);
            assert_eq!(error["code"], "unauthorized", "{context}");
        }
    }

    // Nothing was changed by any of those requests.
    let (_, projects) = server.get("/v1/projects").await;
    let ids: Vec<&str> = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p"]);
    assert_eq!(projects["data"][0]["name"], "Project p");
    let (status, shown) = server.get(&format!("/v1/projects/p/webhooks/{wid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["name"], "orig");
    assert_eq!(webhook_count(&server, "p").await, 1);
    assert_eq!(
        receiver.settle(QUIET).await.len(),
        1,
        "an unauthenticated event was delivered"
    );
}

#[tokio::test]
async fn a_project_token_is_confined_to_its_project_and_hides_others() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    let other_receiver = Receiver::start().await;
    server.create_project("p1").await;
    server.create_project("p2").await;
    let w2 = server
        .create_webhook("p2", json!({"name": "p2-hook", "url": format!("{}/p2", other_receiver.url), "events": ["*"]}))
        .await;
    let w2 = w2["id"].as_str().unwrap().to_string();
    let e2 = server
        .send_event("p2", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    let e2 = e2["id"].as_str().unwrap().to_string();
    other_receiver.wait_for(1, Duration::from_secs(5)).await;

    let token = create_token(&server, "p1", json!({"name": "ci"})).await;

    // The token works on its own project.
    let (status, text) = call_as(&server, "GET", "/v1/projects/p1", &token, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["id"], "p1");
    let (status, text) = call_as(
        &server,
        "PATCH",
        "/v1/projects/p1",
        &token,
        Some(&json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["name"], "Renamed");
    let hook_config = json!({"url": format!("{}/p1", receiver.url), "events": ["*"]});
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects/p1/webhooks",
        &token,
        Some(&hook_config),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let w1 = parse(&text)["id"].as_str().unwrap().to_string();
    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p1/webhooks/{w1}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = call_as(&server, "GET", "/v1/projects/p1/webhooks", &token, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["data"].as_array().unwrap().len(), 1);
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects/p1/events",
        &token,
        Some(&comet_event()),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    let e1 = parse(&text)["id"].as_str().unwrap().to_string();
    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p1/events/{e1}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = call_as(&server, "GET", "/v1/event-types", &token, None).await;
    assert_eq!(status, 200, "{text}");
    receiver.wait_for(1, Duration::from_secs(5)).await;

    // Listing projects shows only its own.
    let (status, text) = call_as(&server, "GET", "/v1/projects", &token, None).await;
    assert_eq!(status, 200, "{text}");
    let ids: Vec<String> = parse(&text)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["p1"]);

    // Another project's routes answer exactly as a project that does not exist.
    let hook_body = json!({"url": format!("{}/stolen", receiver.url), "events": ["*"]});
    let routes: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "/v1/projects/{P}", None),
        ("PATCH", "/v1/projects/{P}", Some(json!({"name": "hacked"}))),
        ("POST", "/v1/projects/{P}/tokens", Some(json!({}))),
        ("GET", "/v1/projects/{P}/webhooks", None),
        ("POST", "/v1/projects/{P}/webhooks", Some(hook_body)),
        ("GET", "/v1/projects/{P}/webhooks/{W}", None),
        (
            "PATCH",
            "/v1/projects/{P}/webhooks/{W}",
            Some(json!({"name": "hacked"})),
        ),
        ("DELETE", "/v1/projects/{P}/webhooks/{W}", None),
        ("GET", "/v1/projects/{P}/webhooks/{W}/signing-secret", None),
        ("POST", "/v1/projects/{P}/events", Some(comet_event())),
        (
            "POST",
            "/v1/projects/{P}/events/batch",
            Some(json!({"events": [comet_event()]})),
        ),
        ("GET", "/v1/projects/{P}/events/{E}", None),
    ];
    for (method, template, body) in &routes {
        let path_for = |p: &str| {
            template
                .replace("{P}", p)
                .replace("{W}", &w2)
                .replace("{E}", &e2)
        };
        let (status_other, text_other) =
            call_as(&server, method, &path_for("p2"), &token, body.as_ref()).await;
        let (status_missing, text_missing) = call_as(
            &server,
            method,
            &path_for("no-such-project"),
            &token,
            body.as_ref(),
        )
        .await;
        let context = format!("{method} {template} with another project's token");
        let error = expect_error(status_other, &parse(&text_other), 404, &context);
        assert_eq!(error["code"], "not_found", "{context}");
        assert_eq!(
            status_missing, 404,
            "{context} (missing project): {text_missing}"
        );
        assert_eq!(
            text_other, text_missing,
            "{context}: answer reveals that the project exists"
        );
    }

    // Projects are created and deleted by the admin only.
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects",
        &token,
        Some(&json!({"id": "p3", "name": "three"})),
    )
    .await;
    let error = expect_error(
        status,
        &parse(&text),
        403,
        "create project with project token",
    );
    assert_eq!(error["code"], "forbidden");
    let (status, text) = call_as(&server, "DELETE", "/v1/projects/p1", &token, None).await;
    expect_error(
        status,
        &parse(&text),
        403,
        "delete own project with project token",
    );
    let (status_other, text_other) =
        call_as(&server, "DELETE", "/v1/projects/p2", &token, None).await;
    let (status_missing, text_missing) = call_as(
        &server,
        "DELETE",
        "/v1/projects/no-such-project",
        &token,
        None,
    )
    .await;
    assert!(
        status_other == 403 || status_other == 404,
        "delete another project: {status_other} {text_other}"
    );
    assert_eq!(
        (status_other, &text_other),
        (status_missing, &text_missing),
        "delete reveals existence"
    );

    // Nothing of p2 (nor p3) changed.
    let (_, projects) = server.get("/v1/projects").await;
    let ids: Vec<&str> = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p1", "p2"]);
    let (status, p2) = server.get("/v1/projects/p2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p2["name"], "Project p2");
    let (status, hook) = server.get(&format!("/v1/projects/p2/webhooks/{w2}")).await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(hook["name"], "p2-hook");
    assert_eq!(webhook_count(&server, "p2").await, 1);
    assert_eq!(webhook_count(&server, "p1").await, 1);
    assert_eq!(
        other_receiver.settle(QUIET).await.len(),
        1,
        "an event reached p2 through p1's token"
    );
    assert!(
        receiver.received().iter().all(|r| r.path == "/p1"),
        "a webhook was created in p2 via p1's token"
    );
}

#[tokio::test]
async fn a_read_token_can_read_but_not_write() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server
        .create_webhook(
            "p",
            json!({"name": "orig", "url": format!("{}/hook", receiver.url), "events": ["*"]}),
        )
        .await;
    let wid = hook["id"].as_str().unwrap().to_string();
    let event = server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    let eid = event["id"].as_str().unwrap().to_string();
    receiver.wait_for(1, Duration::from_secs(5)).await;

    let (status, created) = server
        .post("/v1/projects/p/tokens", json!({"kind": "read"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["kind"], "read");
    let token = created["token"].as_str().unwrap().to_string();

    for path in [
        "/v1/projects".to_string(),
        "/v1/projects/p".to_string(),
        "/v1/projects/p/webhooks".to_string(),
        format!("/v1/projects/p/webhooks/{wid}"),
        format!("/v1/projects/p/events/{eid}"),
        "/v1/event-types".to_string(),
        "/v1/event-types/TEST".to_string(),
    ] {
        let (status, text) = call_as(&server, "GET", &path, &token, None).await;
        assert_eq!(status, 200, "GET {path} with a read token: {text}");
    }

    let writes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/v1/projects".into(),
            Some(json!({"id": "q", "name": "q"})),
        ),
        (
            "PATCH",
            "/v1/projects/p".into(),
            Some(json!({"name": "hacked"})),
        ),
        ("DELETE", "/v1/projects/p".into(), None),
        ("POST", "/v1/projects/p/tokens".into(), Some(json!({}))),
        (
            "POST",
            "/v1/projects/p/tokens".into(),
            Some(json!({"kind": "read"})),
        ),
        (
            "POST",
            "/v1/projects/p/webhooks".into(),
            Some(json!({"url": format!("{}/x", receiver.url), "events": ["*"]})),
        ),
        (
            "PATCH",
            format!("/v1/projects/p/webhooks/{wid}"),
            Some(json!({"name": "hacked"})),
        ),
        ("DELETE", format!("/v1/projects/p/webhooks/{wid}"), None),
        ("POST", "/v1/projects/p/events".into(), Some(comet_event())),
        (
            "POST",
            "/v1/projects/p/events/batch".into(),
            Some(json!({"events": [comet_event()]})),
        ),
    ];
    for (method, path, body) in &writes {
        let (status, text) = call_as(&server, method, path, &token, body.as_ref()).await;
        let context = format!("{method} {path} with a read token");
        let error = expect_error(status, &parse(&text), 403, &context);
        assert_eq!(error["code"], "forbidden", "{context}");
    }

    // Nothing changed.
    let (_, project) = server.get("/v1/projects/p").await;
    assert_eq!(project["name"], "Project p");
    let (_, projects) = server.get("/v1/projects").await;
    assert_eq!(projects["data"].as_array().unwrap().len(), 1);
    let (status, shown) = server.get(&format!("/v1/projects/p/webhooks/{wid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["name"], "orig");
    assert_eq!(webhook_count(&server, "p").await, 1);
    assert_eq!(
        receiver.settle(QUIET).await.len(),
        1,
        "a read token published an event"
    );
}

#[tokio::test]
async fn tokens_are_not_stored_in_clear_in_the_data_directory() {
    let server = Server::start().await;
    let marker = "Distinctive Project Name 7731";
    let (status, body) = server
        .post("/v1/projects", json!({"id": "p", "name": marker}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let write = create_token(&server, "p", json!({"name": "writer"})).await;
    let read = create_token(&server, "p", json!({"kind": "read"})).await;
    // Use both, so any cache or log path has seen them.
    for token in [&write, &read] {
        let (status, text) = call_as(&server, "GET", "/v1/projects/p", token, None).await;
        assert_eq!(status, 200, "{text}");
    }
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects/p/events",
        &write,
        Some(&comet_event()),
    )
    .await;
    assert_eq!(status, 202, "{text}");

    let files = files_under(&server.data_dir);
    let mut all = Vec::new();
    for f in &files {
        all.push((f.clone(), std::fs::read(f).unwrap_or_default()));
    }
    // The scan does see what the service stores (so the check below can fail).
    assert!(
        all.iter()
            .any(|(_, bytes)| contains(bytes, marker.as_bytes())),
        "stored data not found in {files:?}"
    );
    for (path, bytes) in &all {
        for (what, secret) in [
            ("write token", write.as_str()),
            ("read token", read.as_str()),
            ("admin token", ADMIN),
        ] {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "the clear {what} is in {}",
                path.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Projects
// ---------------------------------------------------------------------------

#[tokio::test]
async fn projects_can_be_created_listed_shown_renamed_and_deleted() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;

    let (status, created) = server
        .post(
            "/v1/projects",
            json!({"id": "ml-team-1", "name": "ML team"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "ml-team-1");
    assert_eq!(created["name"], "ML team");
    assert!(
        created["created_at"].is_string() && created["updated_at"].is_string(),
        "{created}"
    );

    let (status, body) = server
        .post("/v1/projects", json!({"id": "ml-team-1", "name": "Again"}))
        .await;
    let error = expect_error(status_u16(status), &body, 409, "duplicate project id");
    assert_eq!(error["code"], "conflict");
    let (_, shown) = server.get("/v1/projects/ml-team-1").await;
    assert_eq!(
        shown["name"], "ML team",
        "a duplicate create overwrote the project"
    );

    let long = "a".repeat(64);
    for bad in [
        "Upper",
        "has space",
        "",
        long.as_str(),
        "-leading",
        "trailing-",
        "under_score",
        "dot.ted",
    ] {
        let (status, body) = server
            .post("/v1/projects", json!({"id": bad, "name": "x"}))
            .await;
        let error = expect_error(
            status_u16(status),
            &body,
            400,
            &format!("project id {bad:?}"),
        );
        assert_eq!(error["field"], "/id", "project id {bad:?}: {body}");
    }
    let max = "b".repeat(63);
    let (status, body) = server
        .post("/v1/projects", json!({"id": max, "name": "longest id"}))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a 63-character id is valid: {body}"
    );

    let (status, body) = server.post("/v1/projects", json!({"id": "no-name"})).await;
    let error = expect_error(status_u16(status), &body, 400, "missing name");
    assert!(
        names_field(&error, "/name"),
        "missing name is not named: {body}"
    );
    let (status, body) = server
        .post("/v1/projects", json!({"id": "blank-name", "name": "   "}))
        .await;
    let error = expect_error(status_u16(status), &body, 400, "blank name");
    assert_eq!(error["field"], "/name");
    let (status, body) = server.post("/v1/projects", json!({"name": "no id"})).await;
    let error = expect_error(status_u16(status), &body, 400, "missing id");
    assert!(
        names_field(&error, "/id"),
        "missing id is not named: {body}"
    );

    let (status, list) = server.get("/v1/projects").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "only the two valid projects exist: {list}");
    assert!(
        ids.contains(&"ml-team-1") && ids.contains(&max.as_str()),
        "{list}"
    );

    let (status, shown) = server.get("/v1/projects/ml-team-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["id"], "ml-team-1");
    assert_eq!(shown["name"], "ML team");

    let (status, patched) = server
        .patch("/v1/projects/ml-team-1", json!({"name": "Renamed team"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Renamed team");
    assert_eq!(patched["id"], "ml-team-1");
    let (_, shown) = server.get("/v1/projects/ml-team-1").await;
    assert_eq!(shown["name"], "Renamed team");
    let (status, body) = server
        .patch("/v1/projects/ml-team-1", json!({"name": ""}))
        .await;
    let error = expect_error(status_u16(status), &body, 400, "patch empty name");
    assert_eq!(error["field"], "/name");
    let (status, body) = server
        .patch("/v1/projects/no-such", json!({"name": "x"}))
        .await;
    expect_error(status_u16(status), &body, 404, "patch missing project");

    // Deleting removes the project...
    let (status, body) = server.delete("/v1/projects/ml-team-1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = server.get("/v1/projects/ml-team-1").await;
    let error = expect_error(status_u16(status), &body, 404, "deleted project");
    assert_eq!(error["code"], "not_found");
    let (status, body) = server.delete("/v1/projects/ml-team-1").await;
    expect_error(status_u16(status), &body, 404, "delete twice");
    let (_, list) = server.get("/v1/projects").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // ...and its webhooks: a project recreated with the same id has none, and
    // its events go nowhere.
    server.create_project("q").await;
    let hook = server
        .create_webhook(
            "q",
            json!({"url": format!("{}/q", receiver.url), "events": ["*"]}),
        )
        .await;
    let wid = hook["id"].as_str().unwrap();
    let (status, _) = server.delete("/v1/projects/q").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get(&format!("/v1/projects/q/webhooks/{wid}")).await;
    expect_error(
        status_u16(status),
        &body,
        404,
        "webhook of a deleted project",
    );
    server.create_project("q").await;
    let (status, body) = server.get(&format!("/v1/projects/q/webhooks/{wid}")).await;
    expect_error(
        status_u16(status),
        &body,
        404,
        "webhook of a deleted then recreated project",
    );
    assert_eq!(webhook_count(&server, "q").await, 0);
    let accepted = server
        .send_event("q", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    assert_eq!(
        accepted["deliveries"],
        json!([]),
        "an event was routed to a deleted webhook"
    );
    assert_eq!(receiver.settle(QUIET).await.len(), 0);
}

// ---------------------------------------------------------------------------
// 4. Webhooks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_hide_secrets_and_keep_protected_headers_across_updates() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let secret = "Bearer s3cr3t-value-91";
    let protected = "protected-hidden-value-42";
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects/p/webhooks",
        ADMIN,
        Some(&json!({
            "name": "first",
            "url": format!("{}/hook-a", receiver.url),
            "events": ["*"],
            "secret": secret,
            "headers": [
                {"key": "X-Token", "value": protected, "protected": true},
                {"key": "X-Team", "value": "ml-team"}
            ]
        })),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let created = parse(&text);
    let wid = created["id"].as_str().unwrap().to_string();
    let signing = created["signing_secret"]
        .as_str()
        .expect("signing_secret at creation")
        .to_string();
    let key = signing
        .strip_prefix("whsec_")
        .unwrap_or_else(|| panic!("signing secret {signing:?} lacks whsec_"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("signing secret is base64");
    assert_eq!(raw.len(), 32, "signing secret holds 32 bytes");
    assert_eq!(created["has_secret"], true);
    assert!(
        !text.contains(secret) && !text.contains(protected),
        "creation answer shows a secret: {text}"
    );
    assert_eq!(created["name"], "first");
    assert_eq!(created["enabled"], true);

    let no_secrets = |text: &str, what: &str| {
        assert!(
            !text.contains("s3cr3t-value-91"),
            "{what} shows the secret: {text}"
        );
        assert!(
            !text.contains(protected),
            "{what} shows a protected header value: {text}"
        );
        assert!(
            !text.contains(key),
            "{what} shows the signing secret: {text}"
        );
        assert!(
            !text.contains("signing_secret"),
            "{what} has a signing_secret field: {text}"
        );
    };
    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p/webhooks/{wid}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    no_secrets(&text, "GET webhook");
    let shown = parse(&text);
    assert_eq!(shown["has_secret"], true);
    assert_eq!(shown["id"], wid.as_str());
    let headers = shown["headers"].as_array().unwrap();
    assert_eq!(headers.len(), 2, "{shown}");
    assert_eq!(headers[0]["key"], "X-Token");
    assert_eq!(headers[0]["protected"], true);
    assert!(
        headers[0].get("value").is_none_or(Value::is_null),
        "{shown}"
    );
    assert_eq!(
        headers[1],
        json!({"key": "X-Team", "value": "ml-team", "protected": false})
    );
    let (status, text) = call_as(&server, "GET", "/v1/projects/p/webhooks", ADMIN, None).await;
    assert_eq!(status, 200, "{text}");
    no_secrets(&text, "list webhooks");
    assert!(
        text.contains("ml-team"),
        "an unprotected header value is not shown: {text}"
    );

    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p/webhooks/{wid}/signing-secret"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["signing_secret"], signing.as_str());

    // The configured secret and headers travel with a delivery.
    server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].path, "/hook-a");
    assert_eq!(got[0].header("x-token"), protected);
    assert_eq!(got[0].header("x-team"), "ml-team");
    assert_eq!(got[0].header("authorization"), secret);
    assert!(verify_signature(&signing, &got[0]));

    // PATCH: name, url, events, secret removed, protected header kept without its value.
    let patch = json!({
        "name": "second",
        "url": format!("{}/hook-b", receiver.url),
        "events": ["MODEL_VERSION_CREATED", "TEST"],
        "secret": null,
        "headers": [{"key": "X-Token", "protected": true}, {"key": "X-Team", "value": "ml-team-2"}]
    });
    let (status, text) = call_as(
        &server,
        "PATCH",
        &format!("/v1/projects/p/webhooks/{wid}"),
        ADMIN,
        Some(&patch),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    no_secrets(&text, "PATCH answer");
    let patched = parse(&text);
    assert_eq!(patched["name"], "second");
    assert_eq!(patched["url"], format!("{}/hook-b", receiver.url));
    assert_eq!(patched["events"], json!(["MODEL_VERSION_CREATED", "TEST"]));
    assert_eq!(patched["has_secret"], false);
    assert_eq!(patched["headers"][1]["value"], "ml-team-2");
    let (_, shown) = server.get(&format!("/v1/projects/p/webhooks/{wid}")).await;
    assert_eq!(shown["name"], "second");
    assert_eq!(shown["has_secret"], false);
    let (_, again) = server
        .get(&format!("/v1/projects/p/webhooks/{wid}/signing-secret"))
        .await;
    assert_eq!(
        again["signing_secret"],
        signing.as_str(),
        "PATCH changed the signing secret"
    );

    // Events not subscribed any more are not routed; subscribed ones carry the kept header.
    let accepted = server
        .send_event(
            "p",
            "execution_failed",
            example_of(&server, "execution_failed").await,
        )
        .await;
    assert_eq!(
        accepted["deliveries"],
        json!([]),
        "an unsubscribed event type was routed"
    );
    server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].path, "/hook-b");
    assert_eq!(
        got[1].header("x-token"),
        protected,
        "the protected header lost its value on PATCH"
    );
    assert_eq!(got[1].header("x-team"), "ml-team-2");
    assert!(
        got[1].headers.get("authorization").is_none(),
        "the removed secret is still sent"
    );
    assert!(verify_signature(&signing, &got[1]));

    // Disabling stops routing; enabling restores it.
    let (status, text) = call_as(
        &server,
        "PATCH",
        &format!("/v1/projects/p/webhooks/{wid}"),
        ADMIN,
        Some(&json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["enabled"], false);
    let accepted = server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    assert_eq!(
        accepted["deliveries"],
        json!([]),
        "a disabled webhook got a delivery"
    );
    let (status, text) = call_as(
        &server,
        "PATCH",
        &format!("/v1/projects/p/webhooks/{wid}"),
        ADMIN,
        Some(&json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["enabled"], true);
    let accepted = server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    assert_eq!(accepted["deliveries"].as_array().unwrap().len(), 1);
    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got[2].header("x-token"), protected);
    assert_eq!(receiver.settle(Duration::from_millis(200)).await.len(), 3);

    // DELETE, then 404 everywhere.
    let (status, body) = server
        .delete(&format!("/v1/projects/p/webhooks/{wid}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for (method, path) in [
        ("GET", format!("/v1/projects/p/webhooks/{wid}")),
        (
            "GET",
            format!("/v1/projects/p/webhooks/{wid}/signing-secret"),
        ),
        ("DELETE", format!("/v1/projects/p/webhooks/{wid}")),
    ] {
        let (status, body) = server.request(method, &path, Some(ADMIN), None).await;
        expect_error(
            status_u16(status),
            &body,
            404,
            &format!("{method} {path} after delete"),
        );
    }
    let (status, body) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{wid}"),
            json!({"name": "x"}),
        )
        .await;
    expect_error(status_u16(status), &body, 404, "PATCH after delete");
    assert_eq!(webhook_count(&server, "p").await, 0);
    let accepted = server
        .send_event("p", "MODEL_VERSION_CREATED", comet_payload())
        .await;
    assert_eq!(
        accepted["deliveries"],
        json!([]),
        "a deleted webhook got a delivery"
    );
}

async fn example_of(server: &Server, event_type: &str) -> Value {
    let (status, t) = server.get(&format!("/v1/event-types/{event_type}")).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t["example"].clone()
}

// ---------------------------------------------------------------------------
// 5. Webhook validation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn invalid_webhooks_are_refused_naming_the_field_and_nothing_is_stored() {
    let server = Server::start().await;
    server.create_project("p").await;
    let ok = "http://127.0.0.1:9/hook";
    let hook = |extra: Value| {
        let mut base = json!({"url": ok, "events": ["*"]});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    };
    let header = |key: &str| json!({"headers": [{"key": key, "value": "v"}]});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "ftp url",
            hook(json!({"url": "ftp://example.com/x"})),
            "/url",
        ),
        (
            "javascript url",
            hook(json!({"url": "javascript:alert(1)"})),
            "/url",
        ),
        (
            "file url",
            hook(json!({"url": "file:///etc/passwd"})),
            "/url",
        ),
        ("url without host", hook(json!({"url": "http://"})), "/url"),
        (
            "url without host and with a path",
            hook(json!({"url": "http:///"})),
            "/url",
        ),
        ("not a url", hook(json!({"url": "not a url"})), "/url"),
        ("relative url", hook(json!({"url": "/hook"})), "/url"),
        ("empty url", hook(json!({"url": ""})), "/url"),
        (
            "user and password in url",
            hook(json!({"url": "http://user:pass@127.0.0.1:9/x"})),
            "/url",
        ),
        (
            "user in url",
            hook(json!({"url": "https://user@example.com/x"})),
            "/url",
        ),
        (
            "unknown event type",
            hook(json!({"events": ["NOPE"]})),
            "/events/0",
        ),
        (
            "unknown event type after a known one",
            hook(json!({"events": ["TEST", "test"]})),
            "/events/1",
        ),
        ("empty events", hook(json!({"events": []})), "/events"),
        (
            "a pattern that covers no known type",
            hook(json!({"events": ["TEST", "no_such_*"]})),
            "/events/1",
        ),
        (
            "a character patterns do not have",
            hook(json!({"events": ["execution_?"]})),
            "/events/0",
        ),
        (
            "a regex is not a pattern",
            hook(json!({"events": ["execution_.+"], "allow_unknown": true})),
            "/events/0",
        ),
        (
            "an entry over 100 characters",
            hook(json!({"events": ["x".repeat(101)], "allow_unknown": true})),
            "/events/0",
        ),
        (
            "duplicate header, other case",
            hook(json!({"headers": [{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}]})),
            "/headers/1/key",
        ),
        ("reserved Host", hook(header("Host")), "/headers/0/key"),
        (
            "reserved Content-Length",
            hook(header("Content-Length")),
            "/headers/0/key",
        ),
        (
            "reserved Content-Type",
            hook(header("Content-Type")),
            "/headers/0/key",
        ),
        (
            "reserved content-type lowercase",
            hook(header("content-type")),
            "/headers/0/key",
        ),
        (
            "reserved Transfer-Encoding",
            hook(header("Transfer-Encoding")),
            "/headers/0/key",
        ),
        (
            "reserved webhook-id",
            hook(header("webhook-id")),
            "/headers/0/key",
        ),
        (
            "reserved Webhook-Signature",
            hook(header("Webhook-Signature")),
            "/headers/0/key",
        ),
        (
            "reserved Webhook-Timestamp",
            hook(header("Webhook-Timestamp")),
            "/headers/0/key",
        ),
        (
            "invalid header name",
            hook(header("bad header")),
            "/headers/0/key",
        ),
        (
            "header without value",
            hook(json!({"headers": [{"key": "X-A"}]})),
            "/headers/0/value",
        ),
        (
            "Authorization header with a secret",
            hook(json!({"secret": "s", "headers": [{"key": "authorization", "value": "x"}]})),
            "/headers/0/key",
        ),
        (
            "bad scope object_type",
            hook(json!({"scope": {"object_type": "galaxy"}})),
            "/scope/object_type",
        ),
        (
            "scope name without type",
            hook(json!({"scope": {"object_name": "churn"}})),
            "/scope/object_type",
        ),
        (
            "unknown scope field",
            hook(json!({"scope": {"object_type": "model", "colour": "red"}})),
            "/scope/colour",
        ),
        ("empty name", hook(json!({"name": " "})), "/name"),
        (
            "unknown top-level field",
            hook(json!({"colour": "red"})),
            "/colour",
        ),
        ("missing url", json!({"events": ["*"]}), "/url"),
        ("missing events", json!({"url": ok}), "/events"),
        ("url of the wrong type", hook(json!({"url": 5})), "/url"),
        ("unknown format", hook(json!({"format": "xml"})), "/format"),
    ];
    for (what, body, field) in &cases {
        let (status, answer) = server.post("/v1/projects/p/webhooks", body.clone()).await;
        let error = expect_error(status_u16(status), &answer, 400, what);
        assert!(
            names_field(&error, field),
            "{what}: expected the error to name {field}: {answer}"
        );
        assert_eq!(
            webhook_count(&server, "p").await,
            0,
            "{what}: a webhook was stored"
        );
    }
    // Unknown fields are named by a pointer, not only in prose.
    let (_, answer) = server
        .post("/v1/projects/p/webhooks", hook(json!({"colour": "red"})))
        .await;
    assert_eq!(answer["error"]["field"], "/colour", "{answer}");

    // Several faults are reported together.
    let (status, answer) = server
        .post(
            "/v1/projects/p/webhooks",
            json!({"url": "ftp://x", "events": ["NOPE"], "scope": {"object_type": "galaxy"},
                   "headers": [{"key": "Host", "value": "h"}]}),
        )
        .await;
    let error = expect_error(status_u16(status), &answer, 400, "several faults");
    let fields = error_fields(&error);
    for f in ["/url", "/events/0", "/scope/object_type", "/headers/0/key"] {
        assert!(fields.iter().any(|x| x == f), "{f} not reported: {answer}");
    }
    assert_eq!(webhook_count(&server, "p").await, 0);

    // A bad PATCH leaves the webhook as it was.
    let created = server
        .create_webhook("p", json!({"name": "keep", "url": ok, "events": ["TEST"]}))
        .await;
    let wid = created["id"].as_str().unwrap();
    for (what, patch, field) in [
        (
            "patch ftp url",
            json!({"url": "ftp://x", "name": "changed"}),
            "/url",
        ),
        (
            "patch empty events",
            json!({"events": [], "name": "changed"}),
            "/events",
        ),
        (
            "patch reserved header",
            json!({"headers": [{"key": "webhook-id", "value": "x"}], "name": "changed"}),
            "/headers/0/key",
        ),
        ("patch unknown field", json!({"colour": "red"}), "/colour"),
    ] {
        let (status, answer) = server
            .patch(&format!("/v1/projects/p/webhooks/{wid}"), patch)
            .await;
        let error = expect_error(status_u16(status), &answer, 400, what);
        assert!(
            names_field(&error, field),
            "{what}: expected {field}: {answer}"
        );
        let (_, shown) = server.get(&format!("/v1/projects/p/webhooks/{wid}")).await;
        assert_eq!(shown["name"], "keep", "{what} changed the webhook");
        assert_eq!(shown["url"], ok, "{what} changed the webhook");
        assert_eq!(
            shown["events"],
            json!(["TEST"]),
            "{what} changed the webhook"
        );
        assert_eq!(shown["headers"], json!([]), "{what} changed the webhook");
    }
}

// ---------------------------------------------------------------------------
// 6. Events: bad input
// ---------------------------------------------------------------------------

#[tokio::test]
async fn allow_unknown_keeps_types_and_patterns_that_do_not_exist_yet() {
    let server = Server::start().await;
    server.create_project("p").await;
    let events = json!(["TEAM_DRIFT_CHECK", "team.*", "execution_*"]);
    let config = json!({"url": "http://127.0.0.1:9/hook", "events": events});

    let (status, body) = server.post("/v1/projects/p/webhooks", config.clone()).await;
    let error = expect_error(status, &body, 400, "unknown type without allow_unknown");
    let mut fields = error_fields(&error);
    fields.dedup();
    assert_eq!(fields, ["/events/0", "/events/1"], "{body}");
    assert_eq!(webhook_count(&server, "p").await, 0);

    let mut allowed = config.clone();
    allowed["allow_unknown"] = json!(true);
    let (status, hook) = server.post("/v1/projects/p/webhooks", allowed).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["events"], events);
    assert!(hook.get("allow_unknown").is_none(), "not stored: {hook}");
    let path = format!("/v1/projects/p/webhooks/{}", hook["id"].as_str().unwrap());

    // A patch that leaves `events` alone does not judge them again ...
    let (status, body) = server.patch(&path, json!({"name": "renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], events);
    // ... one that sets them does, with or without allow_unknown.
    let (status, body) = server.patch(&path, json!({"events": ["team.*"]})).await;
    let error = expect_error(status, &body, 400, "pattern without allow_unknown");
    assert!(names_field(&error, "/events/0"), "{body}");
    let (status, body) = server
        .patch(&path, json!({"events": ["team.*"], "allow_unknown": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!(["team.*"]));
}

#[tokio::test]
async fn bad_events_are_refused_with_precise_errors_and_nothing_is_delivered() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook("p", json!({"url": format!("{}/hook", receiver.url), "events": ["*"], "include_result": true}))
        .await;
    let events = "/v1/projects/p/events";
    let batch = "/v1/projects/p/events/batch";

    // Malformed JSON.
    let malformed: [&[u8]; 4] = [
        b"{\"type\": ",
        b"not json",
        b"{\"type\": \"TEST\", \"payload\": {}",
        b"\xff\xfe",
    ];
    for bad in malformed {
        let (status, body) = server
            .post_raw(events, Some("application/json"), bad.to_vec())
            .await;
        let error = expect_error(
            status_u16(status),
            &body,
            400,
            &format!("malformed {bad:?}"),
        );
        assert_eq!(error["code"], "malformed_json", "{body}");
    }
    let (status, body) = server
        .post_raw(batch, Some("application/json"), b"{\"events\": [".to_vec())
        .await;
    let error = expect_error(status_u16(status), &body, 400, "malformed batch");
    assert_eq!(error["code"], "malformed_json");

    // Missing or wrong content type.
    let valid = comet_event().to_string().into_bytes();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, body) = server.post_raw(events, ct, valid.clone()).await;
        let error = expect_error(
            status_u16(status),
            &body,
            415,
            &format!("content type {ct:?}"),
        );
        assert_eq!(error["code"], "unsupported_media_type");
        let (status, body) = server
            .post_raw(
                batch,
                ct,
                json!({"events": [comet_event()]}).to_string().into_bytes(),
            )
            .await;
        expect_error(
            status_u16(status),
            &body,
            415,
            &format!("batch content type {ct:?}"),
        );
    }

    // Wrong types in the payload.
    let mut payload = comet_payload();
    payload["version"] = json!(2);
    let (status, body) = server
        .post(
            events,
            json!({"type": "MODEL_VERSION_CREATED", "payload": payload}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "version as a number");
    let details = error["details"].as_array().expect("details");
    assert!(
        details.contains(&json!({"field": "/payload/version", "message": "expected string"})),
        "details lack /payload/version: {body}"
    );
    assert_eq!(error["field"], "/payload/version");

    let mut payload = comet_payload();
    payload["tags"] = json!("a");
    payload["createdAt"] = json!("yesterday");
    let (status, body) = server
        .post(
            events,
            json!({"type": "MODEL_VERSION_CREATED", "payload": payload}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "several wrong types");
    let fields = error_fields(&error);
    assert!(
        fields.contains(&"/payload/tags".to_string())
            && fields.contains(&"/payload/createdAt".to_string()),
        "{body}"
    );

    // Missing required fields.
    let mut payload = comet_payload();
    payload.as_object_mut().unwrap().remove("registryModelName");
    payload.as_object_mut().unwrap().remove("createdAt");
    let (status, body) = server
        .post(
            events,
            json!({"type": "MODEL_VERSION_CREATED", "payload": payload}),
        )
        .await;
    let error = expect_error(
        status_u16(status),
        &body,
        400,
        "missing required payload fields",
    );
    let messages: Vec<String> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["field"].as_str().unwrap(),
                d["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("/payload ") && m.contains("registryModelName")),
        "{body}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("/payload ") && m.contains("createdAt")),
        "{body}"
    );

    let (status, body) = server
        .post(events, json!({"type": "RUN_COMPLETED", "payload": {}}))
        .await;
    let error = expect_error(
        status_u16(status),
        &body,
        400,
        "empty RUN_COMPLETED payload",
    );
    assert!(
        error_fields(&error)
            .iter()
            .all(|f| f.starts_with("/payload")),
        "{body}"
    );

    for payload in [json!([]), json!("x"), json!(null), json!(3)] {
        let (status, body) = server
            .post(events, json!({"type": "TEST", "payload": payload}))
            .await;
        let error = expect_error(
            status_u16(status),
            &body,
            400,
            &format!("payload {payload}"),
        );
        assert_eq!(error["field"], "/payload", "{body}");
    }
    let (status, body) = server.post(events, json!({"type": "TEST"})).await;
    let error = expect_error(status_u16(status), &body, 400, "no payload");
    assert!(names_field(&error, "/payload"), "{body}");
    let (status, body) = server
        .post(events, json!({"payload": comet_payload()}))
        .await;
    let error = expect_error(status_u16(status), &body, 400, "no type");
    assert!(names_field(&error, "/type"), "{body}");
    let (status, body) = server
        .post(events, json!({"type": 7, "payload": comet_payload()}))
        .await;
    let error = expect_error(status_u16(status), &body, 400, "type as a number");
    assert!(names_field(&error, "/type"), "{body}");
    let mut with_extra = comet_event();
    with_extra["colour"] = json!("red");
    let (status, body) = server.post(events, with_extra).await;
    let error = expect_error(status_u16(status), &body, 400, "unknown top-level field");
    assert_eq!(error["field"], "/colour", "{body}");

    // Unknown event type.
    let (status, body) = server
        .post(
            events,
            json!({"type": "MODEL_EXPLODED", "payload": comet_payload()}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "unknown type");
    assert_eq!(error["field"], "/type");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("MODEL_EXPLODED"),
        "{body}"
    );
    let (status, body) = server
        .post(
            events,
            json!({"type": "model_version_created", "payload": comet_payload()}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "type in the wrong case");
    assert_eq!(error["field"], "/type");

    // Discriminator disagreeing with the type.
    let mut payload = comet_payload();
    payload["eventTrigger"] = json!("MODEL_VERSION_DELETED");
    let (status, body) = server
        .post(
            events,
            json!({"type": "MODEL_VERSION_CREATED", "payload": payload}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "eventTrigger disagrees");
    assert!(
        error_fields(&error).contains(&"/payload/eventTrigger".to_string()),
        "{body}"
    );
    let mut ubiops = example_of(&server, "deployment_request_started").await;
    ubiops["event"] = json!("deployment_request_failed");
    let (status, body) = server
        .post(
            events,
            json!({"type": "deployment_request_started", "payload": ubiops}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "UbiOps event disagrees");
    assert!(
        error_fields(&error).contains(&"/payload/event".to_string()),
        "{body}"
    );
    let mut nannyml = example_of(&server, "RUN_COMPLETED").await;
    nannyml["header"]["notification_type"] = json!("SOMETHING_ELSE");
    let (status, body) = server
        .post(events, json!({"type": "RUN_COMPLETED", "payload": nannyml}))
        .await;
    let error = expect_error(
        status_u16(status),
        &body,
        400,
        "NannyML notification_type disagrees",
    );
    assert!(
        error_fields(&error)
            .iter()
            .any(|f| f.starts_with("/payload/header")),
        "{body}"
    );

    // Bad object and idempotency key.
    let mut with_object = comet_event();
    with_object["object"] = json!({"type": "galaxy", "name": "x"});
    let (status, body) = server.post(events, with_object).await;
    let error = expect_error(status_u16(status), &body, 400, "bad object type");
    assert_eq!(error["field"], "/object/type");
    let mut with_key = comet_event();
    with_key["idempotency_key"] = json!("");
    let (status, body) = server.post(events, with_key).await;
    let error = expect_error(status_u16(status), &body, 400, "empty idempotency key");
    assert_eq!(error["field"], "/idempotency_key");

    // Batch: one invalid event among valid ones refuses the whole batch.
    let mut bad = comet_payload();
    bad["version"] = json!(2);
    let (status, body) = server
        .post(
            batch,
            json!({"events": [
                comet_event(),
                comet_event(),
                {"type": "MODEL_VERSION_CREATED", "payload": bad},
                comet_event()
            ]}),
        )
        .await;
    let error = expect_error(
        status_u16(status),
        &body,
        400,
        "batch with one invalid event",
    );
    assert_eq!(error["field"], "/events/2/payload/version", "{body}");
    assert!(
        error["details"]
            .as_array()
            .unwrap()
            .contains(&json!({"field": "/events/2/payload/version", "message": "expected string"})),
        "{body}"
    );
    let (status, body) = server
        .post(
            batch,
            json!({"events": [comet_event(), {"type": "NOPE", "payload": {}}, comet_event()]}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "batch with an unknown type");
    assert_eq!(error["field"], "/events/1/type", "{body}");
    let (status, body) = server
        .post(batch, json!({"events": [comet_event(), {"type": "TEST"}]}))
        .await;
    let error = expect_error(
        status_u16(status),
        &body,
        400,
        "batch with an event lacking its payload",
    );
    assert!(
        error_fields(&error)
            .iter()
            .any(|f| f.starts_with("/events/1")),
        "{body}"
    );
    let mut two_bad = comet_payload();
    two_bad["eventTrigger"] = json!("TEST");
    let (status, body) = server
        .post(
            batch,
            json!({"events": [{"type": "MODEL_VERSION_CREATED", "payload": bad}, comet_event(),
                              {"type": "MODEL_VERSION_CREATED", "payload": two_bad}]}),
        )
        .await;
    let error = expect_error(
        status_u16(status),
        &body,
        400,
        "batch with two invalid events",
    );
    let fields = error_fields(&error);
    assert!(
        fields.contains(&"/events/0/payload/version".to_string()),
        "{body}"
    );
    assert!(
        fields.contains(&"/events/2/payload/eventTrigger".to_string()),
        "{body}"
    );

    let (status, body) = server.post(batch, json!({"events": []})).await;
    let error = expect_error(status_u16(status), &body, 400, "empty batch");
    assert_eq!(error["field"], "/events");
    let too_many: Vec<Value> = (0..1001).map(|_| comet_event()).collect();
    let (status, body) = server.post(batch, json!({"events": too_many})).await;
    let error = expect_error(status_u16(status), &body, 400, "1001 events");
    assert_eq!(error["field"], "/events");
    let (status, body) = server.post(batch, json!({})).await;
    let error = expect_error(status_u16(status), &body, 400, "batch without events");
    assert!(names_field(&error, "/events"), "{body}");

    // Unknown route and wrong method answer JSON too.
    for (method, path) in [
        ("GET", "/v1/nope"),
        ("GET", "/nope"),
        ("POST", "/v1/projects/p/things"),
        ("GET", "/v2/projects"),
    ] {
        let (status, text) = call_as(&server, method, path, ADMIN, None).await;
        expect_error(status, &parse(&text), 404, &format!("{method} {path}"));
    }
    for (method, path) in [
        ("PUT", "/v1/projects"),
        ("DELETE", "/v1/event-types"),
        ("PUT", "/v1/projects/p/events/batch"),
        ("DELETE", "/v1/projects/p/events"),
        ("POST", "/healthz"),
    ] {
        let (status, text) = call_as(&server, method, path, ADMIN, None).await;
        expect_error(status, &parse(&text), 405, &format!("{method} {path}"));
    }

    // Nothing of the above reached the receiver...
    assert_eq!(
        receiver.settle(QUIET).await.len(),
        0,
        "a refused event was delivered"
    );
    // ...while the webhook does work: a valid batch is delivered in full.
    let (status, body) = server
        .post(
            batch,
            json!({"events": [comet_event(), comet_event(), comet_event()]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 3);
    receiver.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(receiver.settle(Duration::from_millis(200)).await.len(), 3);
    // 1000 events is the largest batch (on a project without webhooks, to stay fast).
    server.create_project("q").await;
    let thousand: Vec<Value> = (0..1000).map(|_| comet_event()).collect();
    let (status, body) = server
        .post("/v1/projects/q/events/batch", json!({"events": thousand}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "1000 events: {body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 1000);
}

/// A 413 answer in the API's error shape with code `payload_too_large`.
fn expect_too_large(status: u16, text: &str, context: &str) {
    assert_eq!(status, 413, "{context}: {text}");
    let answer: Value = serde_json::from_str(text)
        .unwrap_or_else(|_| panic!("{context}: the 413 answer is not JSON: {text:?}"));
    let error = expect_error(status, &answer, 413, context);
    assert_eq!(error["code"], "payload_too_large", "{context}");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_in_the_error_shape() {
    let server = Server::start_with(&[
        "--max-body-size",
        "1KiB",
        "--retry-schedule",
        "100ms",
        "--retry-jitter",
        "0",
    ])
    .await;
    let receiver = Receiver::start().await;
    catch_all_webhook(&server, &receiver).await;
    let token = create_token(&server, "p", json!({})).await;

    let mut big = comet_payload();
    big["workspaceName"] = json!("w".repeat(2048));
    let big_event = json!({"type": "MODEL_VERSION_CREATED", "payload": big});
    let cases: Vec<(&str, &str, Value)> = vec![
        ("POST", "/v1/projects/p/events", big_event.clone()),
        (
            "POST",
            "/v1/projects/p/events/batch",
            json!({"events": [big_event.clone()]}),
        ),
        (
            "POST",
            "/v1/projects/p/webhooks",
            json!({"url": format!("{}/x", receiver.url), "events": ["*"], "description": "d".repeat(2048)}),
        ),
        (
            "POST",
            "/v1/projects",
            json!({"id": "big", "name": "n".repeat(2048)}),
        ),
        ("PATCH", "/v1/projects/p", json!({"name": "n".repeat(2048)})),
    ];
    for (method, path, body) in &cases {
        for who in [ADMIN, token.as_str()] {
            if path == &"/v1/projects" && who != ADMIN {
                continue;
            }
            let (status, text) = call_as(&server, method, path, who, Some(body)).await;
            expect_too_large(
                status,
                &text,
                &format!("{method} {path} with {} bytes", body.to_string().len()),
            );
        }
    }
    // Just under the limit is accepted.
    let mut fits = comet_payload();
    fits["workspaceName"] = json!("w".repeat(700));
    let fits = json!({"type": "MODEL_VERSION_CREATED", "payload": fits});
    assert!(fits.to_string().len() < 1024);
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects/p/events",
        &token,
        Some(&fits),
    )
    .await;
    assert_eq!(status, 202, "{text}");

    // Nothing oversized was stored or delivered.
    let (_, projects) = server.get("/v1/projects").await;
    assert_eq!(projects["data"].as_array().unwrap().len(), 1);
    assert_eq!(projects["data"][0]["name"], "Project p");
    assert_eq!(webhook_count(&server, "p").await, 1);
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].json()["workspaceName"], "w".repeat(700));
    assert_eq!(
        receiver.settle(QUIET).await.len(),
        1,
        "an oversized event was delivered"
    );
}

/// `POST …/tokens` reads its (optional) body itself; its body errors must still
/// look like every other route's.
#[tokio::test]
async fn the_token_route_reports_body_errors_like_every_other_route() {
    let server = Server::start_with(&["--max-body-size", "1KiB"]).await;
    server.create_project("p").await;
    let path = "/v1/projects/p/tokens";
    let mut problems = Vec::new();

    // Over the body limit: 413 in the error shape, as for POST /v1/projects.
    let big = json!({"name": "n".repeat(2048)});
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects",
        ADMIN,
        Some(&json!({"id": "q", "name": "n".repeat(2048)})),
    )
    .await;
    expect_too_large(status, &text, "POST /v1/projects with a 2 KiB body");
    let (status, text) = call_as(&server, "POST", path, ADMIN, Some(&big)).await;
    let ok = status == 413
        && serde_json::from_str::<Value>(&text)
            .is_ok_and(|v| v["error"]["code"] == "payload_too_large");
    if !ok {
        problems.push(format!(
            "2 KiB body: expected 413 {{\"error\": {{\"code\": \"payload_too_large\"…}}}}, got {status} {text:?}"
        ));
    }

    // Malformed JSON: 400 malformed_json, as for POST /v1/projects.
    let (status, body) = server
        .post_raw(
            "/v1/projects",
            Some("application/json"),
            b"not json".to_vec(),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "malformed project body");
    assert_eq!(error["code"], "malformed_json");
    let (status, body) = server
        .post_raw(path, Some("application/json"), b"not json".to_vec())
        .await;
    if status != StatusCode::BAD_REQUEST || body["error"]["code"] != "malformed_json" {
        problems.push(format!(
            "malformed JSON: expected 400 malformed_json, got {status} {body}"
        ));
    }

    // An unknown field is named by its pointer, as for POST /v1/projects.
    let (status, body) = server
        .post(
            "/v1/projects",
            json!({"id": "q", "name": "q", "colour": "red"}),
        )
        .await;
    let error = expect_error(status_u16(status), &body, 400, "unknown project field");
    assert_eq!(error["field"], "/colour");
    let (status, body) = server
        .post(path, json!({"name": "ci", "colour": "red"}))
        .await;
    if status != StatusCode::BAD_REQUEST || body["error"]["field"] != "/colour" {
        problems.push(format!(
            "unknown field `colour`: expected 400 with field /colour, got {status} {body}"
        ));
    }
    // A wrongly typed field is named by its pointer too.
    let (status, body) = server.post(path, json!({"name": 5})).await;
    if status != StatusCode::BAD_REQUEST || body["error"]["field"] != "/name" {
        problems.push(format!(
            "`name` as a number: expected 400 with field /name, got {status} {body}"
        ));
    }
    // Valid bodies still work: empty, and kind read.
    let (status, body) = server.post_raw(path, None, Vec::new()).await;
    assert_eq!(status, StatusCode::CREATED, "empty body: {body}");
    assert_eq!(body["kind"], "write");
    let (status, body) = server.post(path, json!({"kind": "admin"})).await;
    let error = expect_error(status_u16(status), &body, 400, "kind admin");
    assert_eq!(error["field"], "/kind");

    assert!(
        problems.is_empty(),
        "POST {path} body errors differ from the API's:\n{}",
        problems.join("\n")
    );
}

/// Error fields are JSON pointers (RFC 6901): a key holding `.` stays one
/// segment, `/` is escaped as `~1` and `~` as `~0`.
#[tokio::test]
async fn unknown_field_pointers_are_escaped_as_json_pointers() {
    let server = Server::start().await;
    server.create_project("p").await;
    let mut problems = Vec::new();
    for (key, pointer) in [
        ("colour", "/colour"),
        ("a.b", "/a.b"),
        ("a/b", "/a~1b"),
        ("a~b", "/a~0b"),
        ("x[0]", "/x[0]"),
    ] {
        let mut event = comet_event();
        event[key] = json!(1);
        let (status, body) = server.post("/v1/projects/p/events", event).await;
        let error = expect_error(
            status_u16(status),
            &body,
            400,
            &format!("unknown field {key:?}"),
        );
        if error["field"] != pointer {
            problems.push(format!(
                "unknown field {key:?}: expected field {pointer:?}, got {}",
                error["field"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn an_event_just_under_the_default_one_mib_limit_is_accepted() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    catch_all_webhook(&server, &receiver).await;
    let mut fits = comet_payload();
    fits["workspaceName"] = json!("w".repeat(1024 * 1024 - 1024));
    server.send_event("p", "MODEL_VERSION_CREATED", fits).await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        got[0].json()["workspaceName"].as_str().unwrap().len(),
        1024 * 1024 - 1024
    );
}

#[tokio::test]
async fn a_bad_idempotency_key_header_is_refused_in_the_error_shape() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    catch_all_webhook(&server, &receiver).await;
    // A header value with a non-ASCII byte (valid HTTP, not visible ASCII).
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/projects/p/events", server.base))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .body(comet_event().to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = parse(&resp.text().await.unwrap());
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        receiver.settle(QUIET).await.len(),
        0,
        "an event with a refused key was delivered"
    );
    // Every error names its field as a JSON pointer (or not at all).
    assert_error_shape(&body, "non-ASCII Idempotency-Key header");
}

/// The steps: one `Idempotency-Key`, twice with one payload, then
/// with another. The repeat answers the first event; the change is refused
/// with 422 and nothing of it is stored or delivered; the batch route says
/// which of its events were refused and stores none of them.
#[tokio::test]
async fn an_idempotency_key_reused_with_another_request_is_refused() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    catch_all_webhook(&server, &receiver).await;
    let event = |workspace: &str| {
        let mut e = comet_event();
        e["payload"]["workspaceName"] = json!(workspace);
        e
    };
    let send = |body: Value, key: Option<&str>| {
        let mut headers = vec![("authorization", format!("Bearer {ADMIN}"))];
        if let Some(key) = key {
            headers.push(("idempotency-key", key.to_string()));
        }
        let server = &server;
        async move {
            let client = reqwest::Client::new();
            let mut req = client
                .post(format!("{}/v1/projects/p/events", server.base))
                .header("content-type", "application/json")
                .body(body.to_string());
            for (k, v) in &headers {
                req = req.header(*k, v.as_str());
            }
            let resp = req.send().await.expect("request reaches mlhook");
            let status = resp.status().as_u16();
            let replayed = resp
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap().to_string());
            (status, replayed, parse(&resp.text().await.unwrap()))
        }
    };

    let (s1, r1, first) = send(event("p1"), Some("abc-123")).await;
    let (s2, r2, second) = send(event("p1"), Some("abc-123")).await;
    assert_eq!((s1, s2), (202, 202), "{first} {second}");
    assert_eq!(first, second);
    assert_eq!((r1, r2.as_deref()), (None, Some("true")));

    let (s3, r3, refused) = send(event("p2"), Some("abc-123")).await;
    let error = expect_error(s3, &refused, 422, "key reused with another payload");
    assert_eq!(r3, None);
    assert_eq!(error["code"], "idempotency_key_reused");
    assert_eq!(error["field"], "/idempotency_key");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );
    // The same through the body's field, and with another type.
    let mut in_body = event("p2");
    in_body["idempotency_key"] = json!("abc-123");
    let (s4, _, refused) = send(in_body, None).await;
    expect_error(s4, &refused, 422, "body key reused");
    let mut other_type = event("p1");
    other_type["type"] = json!("MODEL_VERSION_DELETED");
    other_type["payload"]["eventTrigger"] = json!("MODEL_VERSION_DELETED");
    let (s5, _, refused) = send(other_type, Some("abc-123")).await;
    expect_error(s5, &refused, 422, "key reused with another type");
    // The key still answers its first request.
    let (s6, r6, again) = send(event("p1"), Some("abc-123")).await;
    assert_eq!((s6, r6.as_deref()), (202, Some("true")));
    assert_eq!(again, first);

    // Batch: event 1 reuses the key, event 2 repeats a key inside the batch
    // with another payload. Both are named; none of the batch is stored, and
    // the keys of its other events are not remembered.
    let keyed = |workspace: &str, key: &str| {
        let mut e = event(workspace);
        e["idempotency_key"] = json!(key);
        e
    };
    let (status, refused) = server
        .post(
            "/v1/projects/p/events/batch",
            json!({"events": [keyed("p1", "fresh"), keyed("p2", "abc-123"), keyed("p3", "fresh"), event("p4")]}),
        )
        .await;
    let error = expect_error(status_u16(status), &refused, 422, "batch with reused keys");
    assert_eq!(error["code"], "idempotency_key_reused");
    let refused: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        refused,
        ["/events/1/idempotency_key", "/events/2/idempotency_key"]
    );
    let (_, events) = server.get("/v1/projects/p/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");

    // "fresh" was not taken by the refused batch.
    let (status, batch) = server
        .post(
            "/v1/projects/p/events/batch",
            json!({"events": [keyed("p5", "fresh"), keyed("p1", "abc-123")]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    assert_ne!(batch["events"][0]["id"], first["id"]);
    assert_eq!(batch["events"][1], first);

    // Delivered: the first event and the batch's new one, nothing refused.
    receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(receiver.settle(QUIET).await.len(), 2);
}

// ---------------------------------------------------------------------------
// 7. Event types
// ---------------------------------------------------------------------------

const BUILTIN: [(&str, &str); 22] = [
    ("RUN_COMPLETED", "monitoring"),
    ("deployment_request_started", "requests"),
    ("deployment_request_finished", "requests"),
    ("deployment_request_completed", "requests"),
    ("deployment_request_failed", "requests"),
    ("pipeline_request_started", "requests"),
    ("pipeline_request_finished", "requests"),
    ("pipeline_request_completed", "requests"),
    ("pipeline_request_failed", "requests"),
    ("MODEL_VERSION_CREATED", "model_registry"),
    ("MODEL_VERSION_DELETED", "model_registry"),
    ("MODEL_TAG_CHANGED", "model_registry"),
    ("MODEL_STATUS_CHANGED", "model_registry"),
    ("execution_completed", "executions"),
    ("execution_failed", "executions"),
    ("task_completed", "executions"),
    ("task_failed", "executions"),
    ("pipeline_completed", "executions"),
    ("pipeline_failed", "executions"),
    ("deployment_completed", "executions"),
    ("deployment_failed", "executions"),
    ("TEST", "test"),
];

#[tokio::test]
async fn the_event_catalog_lists_the_builtins_and_their_examples_are_accepted() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server
        .create_webhook("p", json!({"url": format!("{}/hook", receiver.url), "events": ["*"], "include_result": true}))
        .await;

    let (status, list) = server.get("/v1/event-types").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let types = list["data"].as_array().expect("data array");
    assert!(types.len() >= 22, "{} types listed", types.len());
    let by_name: HashMap<&str, &Value> = types
        .iter()
        .map(|t| (t["name"].as_str().expect("name"), t))
        .collect();
    assert_eq!(by_name.len(), types.len(), "duplicate names in the catalog");
    for (name, family) in BUILTIN {
        let t = by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not listed"));
        assert_eq!(t["family"], family, "{name}");
    }
    for t in types {
        let name = t["name"].as_str().unwrap();
        assert!(
            t["family"].as_str().is_some_and(|f| !f.is_empty()),
            "{name}: family"
        );
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: description"
        );
        assert!(
            t["schema"].is_object() && t["schema"]["properties"].is_object(),
            "{name}: schema"
        );
        assert!(t["example"].is_object(), "{name}: example");
        assert!(t["test_payload"].is_object(), "{name}: test_payload");
        // The single-type answer is the listed one.
        let (status, one) = server.get(&format!("/v1/event-types/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{name}: {one}");
        assert_eq!(&one, t, "{name}: show differs from list");
    }

    let (_, created) = server.get("/v1/event-types/MODEL_VERSION_CREATED").await;
    let props = created["schema"]["properties"]
        .as_object()
        .expect("schema properties");
    for field in [
        "eventTrigger",
        "workspaceName",
        "registryModelName",
        "version",
        "tags",
        "deletedTags",
        "status",
        "oldStatus",
        "createdAt",
        "sourceExperimentKey",
    ] {
        assert!(
            props.contains_key(field),
            "MODEL_VERSION_CREATED schema lacks {field}: {created}"
        );
    }
    assert_eq!(props.len(), 10, "{created}");
    for missing in ["NOPE", "test", "model_version_created"] {
        let (status, body) = server.get(&format!("/v1/event-types/{missing}")).await;
        let error = expect_error(
            status_u16(status),
            &body,
            404,
            &format!("event type {missing}"),
        );
        assert_eq!(error["code"], "not_found");
    }

    // Every listed type's example is accepted. The 22 built-ins (which "*"
    // subscribes to) are delivered exactly as published, and so are their test
    // payloads (Comet sends its test payload as a TEST event whatever the trigger).
    let builtin: HashSet<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    let mut expected: HashMap<String, (String, String)> = HashMap::new();
    let mut others = 0;
    for t in types {
        let name = t["name"].as_str().unwrap();
        let (status, body) = server
            .post(
                "/v1/projects/p/events",
                json!({"type": name, "payload": t["example"].clone()}),
            )
            .await;
        if name.starts_with("mlhook.") {
            // mlhook raises its own events; a client cannot forge them.
            let error = expect_error(status_u16(status), &body, 400, &format!("forged {name}"));
            assert_eq!(error["field"], "/type");
            continue;
        }
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "example of {name} refused: {body}"
        );
        let delivery = body["deliveries"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {body}"))
            .to_string();
        expected.insert(
            delivery,
            (format!("example of {name}"), t["example"].to_string()),
        );
        if !builtin.contains(name) {
            // Other families (MLflow's own bodies) reach "*" too, as published.
            others += 1;
            continue;
        }

        let as_type = if t["family"] == "model_registry" {
            "TEST"
        } else {
            name
        };
        let (status, body) = server
            .post(
                "/v1/projects/p/events",
                json!({"type": as_type, "payload": t["test_payload"].clone()}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "test payload of {name} (as {as_type}) refused: {body}"
        );
        let delivery = body["deliveries"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {body}"))
            .to_string();
        expected.insert(
            delivery,
            (
                format!("test payload of {name}"),
                t["test_payload"].to_string(),
            ),
        );
    }
    assert_eq!(expected.len(), 2 * builtin.len() + others);
    assert_eq!(builtin.len(), 22);
    let got = receiver
        .wait_for(expected.len(), Duration::from_secs(20))
        .await;
    let mut seen = HashSet::new();
    for r in &got {
        let id = r.header("webhook-id").to_string();
        let (what, body) = expected
            .get(&id)
            .unwrap_or_else(|| panic!("unexpected delivery {id}"));
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            body,
            "{what} was not delivered as published"
        );
        seen.insert(id);
    }
    assert_eq!(seen.len(), expected.len());
}

// ---------------------------------------------------------------------------
// 8. Event detail
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_event_shows_its_type_payload_and_deliveries_to_its_project_only() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    server.create_project("other").await;
    let w1 = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/one", receiver.url), "events": ["*"]}),
        )
        .await;
    let w2 = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/two", receiver.url), "events": ["MODEL_VERSION_CREATED"]}),
        )
        .await;
    let w3 = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/three", receiver.url), "events": ["TEST"]}),
        )
        .await;
    let w_other = server
        .create_webhook(
            "other",
            json!({"url": format!("{}/other", receiver.url), "events": ["*"]}),
        )
        .await;

    // A minimal payload: the derived fields are filled in.
    let minimal = json!({"workspaceName": "ws", "registryModelName": "fraud", "version": "2.0.1",
                         "tags": ["a"], "createdAt": 1706191450});
    let accepted = server
        .send_event("p", "MODEL_VERSION_CREATED", minimal)
        .await;
    let eid = accepted["id"].as_str().unwrap().to_string();
    let delivery_ids: HashSet<String> = accepted["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivery_ids.len(), 2, "{accepted}");
    receiver.wait_for(2, Duration::from_secs(5)).await;

    // Wait until both deliveries are recorded as succeeded.
    let deadline = Instant::now() + Duration::from_secs(5);
    let shown = loop {
        let (status, shown) = server.get(&format!("/v1/projects/p/events/{eid}")).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        let done = shown["deliveries"]
            .as_array()
            .is_some_and(|ds| ds.iter().all(|d| d["status"] == "succeeded"));
        if done || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(shown["id"], eid.as_str());
    assert_eq!(shown["type"], "MODEL_VERSION_CREATED");
    assert_eq!(
        shown["payload"],
        comet_payload(),
        "the stored payload is not the filled-in one"
    );
    assert_eq!(
        shown["object"],
        json!({"type": "model", "name": "fraud", "version": "2.0.1"})
    );
    assert!(shown["created_at"].is_string());
    let deliveries = shown["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{shown}");
    let shown_ids: HashSet<String> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown_ids, delivery_ids);
    let hooks: HashSet<&str> = deliveries
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        hooks,
        HashSet::from([w1["id"].as_str().unwrap(), w2["id"].as_str().unwrap()])
    );
    assert!(
        !hooks.contains(w3["id"].as_str().unwrap())
            && !hooks.contains(w_other["id"].as_str().unwrap())
    );
    for d in deliveries {
        assert_eq!(d["status"], "succeeded", "{shown}");
        assert_eq!(d["attempts"], 1, "{shown}");
        assert_eq!(d["last_status_code"], 200, "{shown}");
        assert!(d["next_attempt_at"].is_null(), "{shown}");
    }
    let paths: HashSet<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        HashSet::from(["/one".to_string(), "/two".to_string()])
    );

    // Its own project's token sees it; another project's token gets the same 404
    // as for a project that does not exist.
    let own = create_token(&server, "p", json!({"kind": "read"})).await;
    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p/events/{eid}"),
        &own,
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["id"], eid.as_str());
    let foreign = create_token(&server, "other", json!({})).await;
    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p/events/{eid}"),
        &foreign,
        None,
    )
    .await;
    let error = expect_error(status, &parse(&text), 404, "another project's token");
    assert!(!text.contains(&eid) && !text.contains("fraud"), "{text}");
    assert_eq!(error["code"], "not_found");
    let (_, missing) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/no-such/events/{eid}"),
        &foreign,
        None,
    )
    .await;
    assert_eq!(text, missing, "the answer reveals that project p exists");
    // Under another project's path, even the admin does not find it.
    let (status, body) = server
        .get(&format!("/v1/projects/other/events/{eid}"))
        .await;
    expect_error(
        status_u16(status),
        &body,
        404,
        "event under another project",
    );
    let (status, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/other/events/{eid}"),
        &foreign,
        None,
    )
    .await;
    expect_error(
        status,
        &parse(&text),
        404,
        "event under the caller's project",
    );
    let (status, body) = server.get("/v1/projects/p/events/evt_does_not_exist").await;
    expect_error(status_u16(status), &body, 404, "unknown event id");
}

/// Bodies are read as the document says: an array is never read as an
/// object at any depth, and an Idempotency-Key header out of bounds is
/// refused even when the body's key wins.
#[tokio::test]
async fn nested_objects_are_objects_and_header_keys_are_checked() {
    let server = Server::start().await;
    server.create_project("p").await;
    let cases = [
        (
            json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "scope": [null, null]}),
            "/scope",
        ),
        (
            json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "rate_limit": [60]}),
            "/rate_limit",
        ),
        (
            json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "headers": [["X-A", "1"]]}),
            "/headers/0",
        ),
    ];
    for (config, field) in cases {
        let (status, text) = call_as(
            &server,
            "POST",
            "/v1/projects/p/webhooks",
            ADMIN,
            Some(&config),
        )
        .await;
        let error = expect_error(status, &parse(&text), 400, "an array for an object");
        assert!(names_field(&error, field), "{field}: {error}");
    }
    let (_, listed) = server.get("/v1/projects/p/webhooks").await;
    assert_eq!(listed["data"], json!([]), "nothing was created");

    let mut event = comet_event();
    event["object"] = json!(["model", "churn"]);
    let (status, text) = call_as(
        &server,
        "POST",
        "/v1/projects/p/events",
        ADMIN,
        Some(&event),
    )
    .await;
    let error = expect_error(status, &parse(&text), 400, "an array for the object");
    assert!(names_field(&error, "/object"), "{error}");

    let mut keyed = comet_event();
    keyed["idempotency_key"] = json!("from-the-body");
    for header in [String::new(), "k".repeat(256)] {
        let (status, text) = call(
            &server,
            "POST",
            "/v1/projects/p/events",
            &[
                ("authorization", format!("Bearer {ADMIN}")),
                ("idempotency-key", header.clone()),
            ],
            Some(keyed.to_string()),
        )
        .await;
        let error = expect_error(status, &parse(&text), 400, "header key out of bounds");
        assert!(
            names_field(&error, "/idempotency_key"),
            "{header:?}: {error}"
        );
    }
}

/// Issue 22's smaller faults at the API edge: overflowing durations, integers
/// beyond 64 bits, and the create answer's duplicate keys.
#[tokio::test]
async fn overflowing_values_are_refused_by_name_and_answers_have_unique_keys() {
    let server = Server::start().await;
    server.create_project("p").await;
    for path in ["deliveries", "events"] {
        for since in ["99999999999999h", "9999999999999999999s"] {
            let url = format!("/v1/projects/p/{path}?since={since}");
            let (status, body) = call_as(&server, "GET", &url, ADMIN, None).await;
            assert_eq!(status, 400, "{url}: {body}");
            // A query parameter is named as itself, not as a body pointer.
            assert_eq!(parse(&body)["error"]["field"], "since", "{url}: {body}");
        }
    }

    // Kept as written or refused: never rewritten as a float.
    let with_numbers = |id: &str| {
        let mut event = comet_event();
        event["payload"]["bigId"] = json!("ID");
        event["payload"]["smallest"] = json!(i64::MIN);
        event.to_string().replace("\"ID\"", id)
    };
    let (status, text) = call(
        &server,
        "POST",
        "/v1/projects/p/events",
        &[("authorization", format!("Bearer {ADMIN}"))],
        Some(with_numbers("18446744073709551616")),
    )
    .await;
    let error = expect_error(status, &parse(&text), 400, "wide integer");
    assert!(names_field(&error, "/payload/bigId"), "{error}");
    let (_, events) = server.get("/v1/projects/p/events").await;
    assert_eq!(events["data"], json!([]), "nothing was stored");
    let (status, text) = call(
        &server,
        "POST",
        "/v1/projects/p/events",
        &[("authorization", format!("Bearer {ADMIN}"))],
        Some(with_numbers("18446744073709551615")),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    let id = parse(&text)["id"].as_str().unwrap().to_string();
    let (_, text) = call_as(
        &server,
        "GET",
        &format!("/v1/projects/p/events/{id}"),
        ADMIN,
        None,
    )
    .await;
    assert!(
        text.contains("18446744073709551615") && text.contains("-9223372036854775808"),
        "{text}"
    );

    // Each key once in the create answer (HMAC and ed25519).
    for scheme in ["hmac_sha256", "ed25519"] {
        let config =
            json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "signing_scheme": scheme});
        let (status, text) = call_as(
            &server,
            "POST",
            "/v1/projects/p/webhooks",
            ADMIN,
            Some(&config),
        )
        .await;
        assert_eq!(status, 201, "{text}");
        for key in ["\"signing_scheme\"", "\"signing_public_key\"", "\"id\""] {
            assert!(text.matches(key).count() <= 1, "{key} repeated: {text}");
        }
        assert_eq!(text.matches("\"signing_scheme\"").count(), 1, "{text}");
        let created = parse(&text);
        match scheme {
            "hmac_sha256" => assert!(created["signing_secret"].is_string(), "{text}"),
            _ => assert!(
                created["signing_public_key"].is_string()
                    && created.get("signing_secret").is_none(),
                "{text}"
            ),
        }
    }
}
