//! The MLflow bridge: sources, MLflow's signature and replay checks, the
//! mapping to the Comet payloads, and a real MLflow 3.17.2 server end to end.
//!
//! The end-to-end test needs MLflow in a virtualenv: `scripts/test` installs it and
//! sets `MLHOOK_TEST_MLFLOW` to its `mlflow` executable. Without it the test
//! says SKIP on the terminal (not in captured output) and passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Receiver, Reply, Server, now_secs};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE};
use serde_json::{Value, json};

const SECRET: &str = "mlflow-shared-secret-0123456789";

/// MLflow's body for a new version of `model`, as `json.dumps` writes it.
fn version_created(model: &str, version: &str) -> String {
    let body = json!({
        "entity": "model_version", "action": "created",
        "timestamp": "2026-11-25T10:00:00.123456+00:00",
        "data": {"name": model, "version": version, "source": format!("s3://bucket/{model}/{version}"),
                 "run_id": "0a1b2c3d", "tags": {"team": "fraud"}, "description": null}
    });
    python_dumps(&body)
}

/// `json.dumps` separators (", " and ": "), so bodies look like MLflow's.
fn python_dumps(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut ser).unwrap();
    String::from_utf8(out)
        .unwrap()
        .replace(",\n", ", ")
        .replace('\n', "")
}

/// MLflow's `_generate_hmac_signature`, computed with `ring`, not mlhook's code.
fn mlflow_signature(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let content = format!("{delivery_id}.{timestamp}.{body}");
    format!(
        "v1,{}",
        B64.encode(ring::hmac::sign(&key, content.as_bytes()).as_ref())
    )
}

fn uuid4() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// One MLflow-like request: delivery id, timestamp, signature and body.
struct Delivery {
    id: String,
    timestamp: String,
    signature: Option<String>,
    body: String,
}

impl Delivery {
    fn signed(secret: &str, body: String) -> Delivery {
        Delivery::signed_at(secret, body, now_secs())
    }

    fn signed_at(secret: &str, body: String, timestamp: i64) -> Delivery {
        let id = uuid4();
        let timestamp = timestamp.to_string();
        let signature = Some(mlflow_signature(secret, &id, &timestamp, &body));
        Delivery {
            id,
            timestamp,
            signature,
            body,
        }
    }

    async fn send(&self, url: &str) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("x-mlflow-delivery-id", &self.id)
            .header("x-mlflow-timestamp", &self.timestamp);
        if let Some(signature) = &self.signature {
            request = request.header("x-mlflow-signature", signature);
        }
        let response = request
            .body(self.body.clone())
            .send()
            .await
            .expect("mlhook answers");
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Creates a source; answers (id, URL to paste into MLflow).
async fn create_source(server: &Server, project: &str, body: Value) -> (String, String) {
    let (status, source) = server
        .post(&format!("/v1/projects/{project}/sources"), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let id = source["id"].as_str().unwrap().to_string();
    let url = source["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&server.base), "{url} is on {}", server.base);
    assert!(url.ends_with(&format!("/v1/projects/{project}/sources/{id}/mlflow")));
    (id, url)
}

async fn event_types(server: &Server, project: &str) -> Vec<String> {
    let (status, events) = server.get(&format!("/v1/projects/{project}/events")).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn source_log(server: &Server, project: &str, source: &str) -> Vec<Value> {
    let (status, log) = server
        .get(&format!("/v1/projects/{project}/sources/{source}/log"))
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn signature_timestamp_and_replay_checks_refuse_and_log() {
    let mut server = Server::start().await;
    server.create_project("ml").await;
    let (source, url) =
        create_source(&server, "ml", json!({"name": "registry", "secret": SECRET})).await;

    // A good delivery: the native event and its Comet counterpart, stored.
    let good = Delivery::signed(SECRET, version_created("churn", "3"));
    let (status, answer) = good.send(&url).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["delivery_id"], good.id.as_str());
    let types: Vec<&str> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["mlflow.model_version.created", "MODEL_VERSION_CREATED"]
    );

    let wrong_secret = Delivery::signed(
        "another-secret-of-some-length",
        version_created("churn", "4"),
    );
    let mut altered = Delivery::signed(SECRET, version_created("churn", "5"));
    altered.body = altered.body.replace("\"5\"", "\"6\"");
    let stale = Delivery::signed_at(SECRET, version_created("churn", "7"), now_secs() - 360);
    let mut unsigned = Delivery::signed(SECRET, version_created("churn", "8"));
    unsigned.signature = None;
    let unknown = Delivery::signed(
        SECRET,
        r#"{"entity": "model_version", "action": "exploded", "timestamp": "t", "data": {}}"#.into(),
    );
    let malformed = Delivery::signed(SECRET, r#"{"entity": "model_version", "#.into());
    let invalid = Delivery::signed(
        SECRET,
        r#"{"entity": "model_version_tag", "action": "set", "timestamp": "t", "data": {"name": "churn"}}"#.into(),
    );
    let cases = [
        (&good, 409, "replayed_delivery", "already accepted"),
        (&wrong_secret, 401, "invalid_signature", "secret differs"),
        (&altered, 401, "invalid_signature", "altered"),
        (&stale, 401, "stale_timestamp", "360 s old"),
        (&unsigned, 401, "missing_signature", "X-MLflow-Signature"),
        (
            &unknown,
            400,
            "unknown_event_type",
            "model_version.exploded",
        ),
        (&malformed, 400, "malformed_body", "not valid JSON"),
        (&invalid, 400, "validation_failed", "/data"),
    ];
    for (delivery, status, code, words) in &cases {
        let (got, answer) = delivery.send(&url).await;
        assert_eq!(got.as_u16(), *status, "{code}: {answer}");
        assert_eq!(answer["error"]["code"], *code, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{code}: {message}");
    }
    // A schema error points into the body MLflow sent.
    let (_, answer) = invalid.send(&url).await;
    let field = answer["error"]["field"].as_str().unwrap_or_default();
    assert!(field.starts_with("/data"), "{answer}");
    assert!(!answer.to_string().contains("/payload"), "{answer}");

    // Nothing refused became an event.
    assert_eq!(
        event_types(&server, "ml").await,
        ["MODEL_VERSION_CREATED", "mlflow.model_version.created"]
    );
    // The source's own log has every refusal, newest first, with its reason.
    let log = source_log(&server, "ml", &source).await;
    let codes: Vec<&str> = log.iter().map(|r| r["code"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = cases.iter().map(|c| c.2).collect();
    expected.reverse();
    expected.insert(0, "validation_failed"); // sent again just above
    assert_eq!(codes, expected);
    // What was refused can be read: the body as sent, once the request got that far.
    assert_eq!(log[0]["body"], invalid.body.as_str(), "{:?}", log[0]);
    assert!(
        log.iter()
            .any(|r| r["code"] == "invalid_signature" && r["body"] == wrong_secret.body.as_str()),
        "a body signed with the wrong secret is kept: {log:?}"
    );
    let unsigned_entry = log
        .iter()
        .find(|r| r["code"] == "missing_signature")
        .unwrap();
    assert_eq!(
        unsigned_entry["body"],
        unsigned.body.as_str(),
        "{unsigned_entry}"
    );
    let replay = log.last().unwrap();
    assert_eq!(replay["delivery_id"], good.id.as_str());
    assert_eq!(replay["status"], 409);
    assert_eq!(replay["event_type"], "mlflow.model_version.created");
    assert!(replay["reason"].as_str().unwrap().contains(&good.id));
    assert!(log.iter().all(|r| r["at"].as_str().is_some()));

    // The replay check is durable: after a restart the id is still refused.
    server.terminate();
    server.restart().await;
    let url = url.replace(url.split("/v1/").next().unwrap(), &server.base);
    let (status, answer) = good.send(&url).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (_, show) = server
        .get(&format!("/v1/projects/ml/sources/{source}"))
        .await;
    assert_eq!(show["activity"]["accepted_last_7d"], 1, "{show}");
    assert_eq!(show["activity"]["rejections_logged"], 10, "{show}");
}

#[tokio::test]
async fn concurrent_identical_deliveries_are_stored_once() {
    let server = Server::start().await;
    server.create_project("ml").await;
    let (_, url) = create_source(&server, "ml", json!({"name": "r", "secret": SECRET})).await;
    let delivery = Delivery::signed(SECRET, version_created("churn", "1"));
    let answers = futures::future::join_all((0..8).map(|_| delivery.send(&url))).await;
    let accepted = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    let replayed = answers
        .iter()
        .filter(|(s, a)| *s == StatusCode::CONFLICT && a["error"]["code"] == "replayed_delivery")
        .count();
    assert_eq!((accepted, replayed), (1, 7), "{answers:?}");
    assert_eq!(event_types(&server, "ml").await.len(), 2);
}

/// A source's secret changes without losing a request: the replaced secret
/// verifies for its grace period, then no more; the change is audited and
/// no answer holds either secret.
#[tokio::test]
async fn a_changed_secret_keeps_the_old_one_for_its_grace_period() {
    const NEW: &str = "the-next-mlflow-shared-secret";
    const NEWER: &str = "the-newest-mlflow-shared-secret";
    let server = Server::start().await;
    server.create_project("ml").await;
    let (id, url) = create_source(&server, "ml", json!({"name": "prod", "secret": SECRET})).await;
    let path = format!("/v1/projects/ml/sources/{id}");
    let sent_with = |secret: &'static str, version: &'static str| {
        let url = url.clone();
        async move {
            Delivery::signed(secret, version_created("churn", version))
                .send(&url)
                .await
                .0
        }
    };

    let (status, changed) = server
        .patch(
            &path,
            json!({"name": "prod registry", "secret": NEW, "secret_grace_period": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "prod registry");
    assert!(
        changed["previous_secret_expires_at"].is_string(),
        "{changed}"
    );
    assert!(!changed.to_string().contains(NEW) && !changed.to_string().contains(SECRET));
    // MLflow still signing with the old secret is not refused meanwhile.
    assert_eq!(sent_with(SECRET, "1").await, StatusCode::ACCEPTED);
    assert_eq!(sent_with(NEW, "2").await, StatusCode::ACCEPTED);

    // With no grace, the replaced secret stops at once.
    let (status, changed) = server
        .patch(&path, json!({"secret": NEWER, "secret_grace_period": "0s"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(sent_with(NEW, "3").await, StatusCode::UNAUTHORIZED);
    assert_eq!(sent_with(SECRET, "4").await, StatusCode::UNAUTHORIZED);
    assert_eq!(sent_with(NEWER, "5").await, StatusCode::ACCEPTED);

    for (body, field) in [
        (
            json!({"secret": NEW, "secret_grace_period": "8d"}),
            "/secret_grace_period",
        ),
        (json!({"secret": "short"}), "/secret"),
        (
            json!({"timestamp_tolerance_secs": 0}),
            "/timestamp_tolerance_secs",
        ),
        (json!({"name": " "}), "/name"),
    ] {
        let (status, error) = server.patch(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (_, audit) = server.get("/v1/projects/ml/audit").await;
    let updates: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "source.updated")
        .collect();
    assert_eq!(updates.len(), 2, "{audit}");
    assert_eq!(updates[0]["changes"]["secret"], "changed");
    assert_eq!(
        updates[1]["changes"]["name"]["to"], "prod registry",
        "{audit}"
    );
    for secret in [SECRET, NEW, NEWER] {
        assert!(
            !audit.to_string().contains(secret),
            "the audit log holds a secret"
        );
    }
}

#[tokio::test]
async fn sources_are_managed_with_tokens_and_keep_their_secret() {
    let server = Server::start().await;
    server.create_project("ml").await;
    server.create_project("other").await;

    let (status, error) = server
        .post("/v1/projects/ml/sources", json!({"name": "r"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["field"], "/secret");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unsigned")
    );

    let (signed, _) = create_source(
        &server,
        "ml",
        json!({"name": "prod registry", "secret": SECRET, "timestamp_tolerance_secs": 60,
               "workspace_name": "prod"}),
    )
    .await;
    let (unsigned, unsigned_url) =
        create_source(&server, "ml", json!({"name": "lab", "unsigned": true})).await;

    let (status, list) = server.get("/v1/projects/ml/sources").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(SECRET), "{list}");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], signed.as_str());
    assert_eq!(data[0]["secret_set"], true);
    assert_eq!(data[0]["timestamp_tolerance_secs"], 60);
    assert_eq!(data[0]["workspace_name"], "prod");
    assert_eq!(data[0]["kind"], "mlflow");
    assert_eq!(data[1]["secret_set"], false);
    assert_eq!(data[1]["timestamp_tolerance_secs"], 300);
    let (_, shown) = server
        .get(&format!("/v1/projects/ml/sources/{signed}"))
        .await;
    assert!(!shown.to_string().contains(SECRET), "{shown}");
    // Another project does not see them.
    let (status, _) = server
        .get(&format!("/v1/projects/other/sources/{signed}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A read token reads; only a write token creates or deletes.
    let (_, read) = server
        .post("/v1/projects/ml/tokens", json!({"kind": "read"}))
        .await;
    let read = read["token"].as_str().unwrap().to_string();
    let (status, _) = server
        .request("GET", "/v1/projects/ml/sources", Some(&read), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"name": "x", "unsigned": true});
    let (status, _) = server
        .request("POST", "/v1/projects/ml/sources", Some(&read), Some(&body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let path = format!("/v1/projects/ml/sources/{unsigned}");
    let (status, _) = server.request("DELETE", &path, Some(&read), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .request("POST", "/v1/projects/ml/sources", None, Some(&body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An unsigned source needs no signature, but still the headers and the window.
    let mut plain = Delivery::signed(SECRET, version_created("churn", "1"));
    plain.signature = None;
    let (status, answer) = plain.send(&unsigned_url).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let old = Delivery::signed_at(SECRET, version_created("churn", "2"), now_secs() - 600);
    let (status, _) = old.send(&unsigned_url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Deleted: the receiving route is gone with it.
    let (status, _) = server.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let again = Delivery::signed(SECRET, version_created("churn", "3"));
    let (status, answer) = again.send(&unsigned_url).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

    // The audit log has both changes, never the secret.
    let (status, audit) = server.get("/v1/projects/ml/audit").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert!(!audit.to_string().contains(SECRET), "{audit}");
    let actions: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["target_id"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("source.created", signed.as_str()),
        ("source.created", unsigned.as_str()),
        ("source.deleted", unsigned.as_str()),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} not in {actions:?}"
        );
    }
}

#[tokio::test]
async fn per_model_webhooks_get_the_comet_shape_unchanged() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("ml").await;
    server
        .create_webhook(
            "ml",
            json!({"url": format!("{}/churn", receiver.url),
                   "events": ["MODEL_VERSION_CREATED", "MODEL_TAG_CHANGED"],
                   "scope": {"object_type": "model", "object_name": "churn"}}),
        )
        .await;
    let (_, url) = create_source(
        &server,
        "ml",
        json!({"name": "registry", "secret": SECRET, "workspace_name": "prod"}),
    )
    .await;
    for body in [
        version_created("fraud", "1"),
        version_created("churn", "2"),
        python_dumps(&json!({"entity": "model_version_tag", "action": "deleted",
            "timestamp": "2026-11-25T10:05:00.000000+00:00",
            "data": {"name": "churn", "version": "2", "key": "candidate"}})),
    ] {
        let (status, answer) = Delivery::signed(SECRET, body).send(&url).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    receiver.wait_for(2, Duration::from_secs(10)).await;
    let got = receiver.settle(Duration::from_millis(300)).await.len();
    assert_eq!(got, 2, "only churn's events reach the churn webhook");
    let bodies: Vec<Value> = receiver.received().iter().map(|r| r.json()).collect();
    let created = bodies
        .iter()
        .find(|b| b["eventTrigger"] == "MODEL_VERSION_CREATED")
        .expect("MODEL_VERSION_CREATED delivered");
    assert_eq!(
        created,
        &json!({
            "eventTrigger": "MODEL_VERSION_CREATED", "workspaceName": "prod",
            "registryModelName": "churn", "version": "2", "tags": ["team=fraud"],
            "deletedTags": [], "status": null, "oldStatus": null,
            "createdAt": 1_795_600_800, "sourceExperimentKey": "0a1b2c3d"
        })
    );
    let tag = bodies
        .iter()
        .find(|b| b["eventTrigger"] == "MODEL_TAG_CHANGED")
        .expect("MODEL_TAG_CHANGED delivered");
    assert_eq!(tag["tags"], json!([]));
    assert_eq!(tag["deletedTags"], json!(["candidate"]));
    assert_eq!(tag["createdAt"], 1_795_601_100);
}

/// A webhook on `*` hears both an MLflow change and its Comet twin; it gets
/// the shape it chose, one by default.
#[tokio::test]
async fn a_webhook_on_everything_gets_one_shape_of_each_change() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("ml").await;
    for (path, shape) in [
        ("/default", None),
        ("/comet", Some("comet")),
        ("/both", Some("both")),
    ] {
        let mut config = json!({"url": format!("{}{path}", receiver.url), "events": ["*"]});
        if let Some(shape) = shape {
            config["mlflow_shape"] = json!(shape);
        }
        let created = server.create_webhook("ml", config).await;
        assert_eq!(
            created["mlflow_shape"],
            shape.unwrap_or("native"),
            "{created}"
        );
    }
    // Listing only the Comet type, it gets that type whatever the default.
    server
        .create_webhook(
            "ml",
            json!({"url": format!("{}/listed", receiver.url), "events": ["MODEL_VERSION_CREATED"]}),
        )
        .await;
    let (_, url) =
        create_source(&server, "ml", json!({"name": "registry", "secret": SECRET})).await;
    let (status, answer) = Delivery::signed(SECRET, version_created("churn", "2"))
        .send(&url)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    receiver.wait_for(5, Duration::from_secs(10)).await;
    let got = receiver.settle(Duration::from_millis(500)).await;
    let shapes_at = |path: &str| -> Vec<&str> {
        let mut shapes: Vec<&str> = got
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                if r.json()["entity"].is_string() {
                    "native"
                } else {
                    "comet"
                }
            })
            .collect();
        shapes.sort_unstable();
        shapes
    };
    assert_eq!(shapes_at("/default"), ["native"]);
    assert_eq!(shapes_at("/comet"), ["comet"]);
    assert_eq!(shapes_at("/both"), ["comet", "native"]);
    assert_eq!(shapes_at("/listed"), ["comet"]);
}

/// A receiver that answers `/slack` as Slack's incoming webhooks do (200
/// "ok", which the slack format expects) and everything else 200.
async fn slack_answering_receiver() -> Receiver {
    Receiver::start_with(|_, request| {
        let mut reply = Reply::status(200);
        if request.path == "/slack" {
            reply.body = "ok".to_string();
        }
        reply
    })
    .await
}

/// MLflow's own tags (`_mlflow…`) are its bookkeeping: a chat channel gets
/// no message for them, a program still gets the event.
#[tokio::test]
async fn mlflow_internal_tags_reach_programs_but_not_chat_channels() {
    let server = Server::start().await;
    let receiver = slack_answering_receiver().await;
    server.create_project("ml").await;
    for (path, format) in [("/json", "json"), ("/slack", "slack")] {
        server
            .create_webhook(
                "ml",
                json!({"url": format!("{}{path}", receiver.url), "events": ["*"], "format": format}),
            )
            .await;
    }
    let (_, url) =
        create_source(&server, "ml", json!({"name": "registry", "secret": SECRET})).await;
    let tag = |key: &str| {
        python_dumps(&json!({"entity": "prompt_tag", "action": "set",
            "timestamp": "2026-11-25T10:05:00.000000+00:00",
            "data": {"name": "summariser", "key": key, "value": "1,2"}}))
    };
    for body in [tag("_mlflow_experiment_ids"), tag("owner")] {
        let (status, answer) = Delivery::signed(SECRET, body).send(&url).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    receiver.wait_for(3, Duration::from_secs(10)).await;
    let got = receiver.settle(Duration::from_millis(500)).await;
    let keys_at = |path: &str| -> Vec<String> {
        got.iter()
            .filter(|r| r.path == path)
            .map(|r| r.json().to_string())
            .collect()
    };
    let json_bodies = keys_at("/json");
    assert_eq!(json_bodies.len(), 2, "{json_bodies:?}");
    let slack = keys_at("/slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(
        slack[0].contains("owner") && !slack[0].contains("_mlflow"),
        "{slack:?}"
    );
}

// ---- A real MLflow server ----

/// The `mlflow` executable of the virtualenv `scripts/test` makes, if there is one.
fn mlflow_executable() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("MLHOOK_TEST_MLFLOW") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "MLHOOK_TEST_MLFLOW={} does not exist",
                path.display()
            ))
        };
    }
    if let Ok(reason) = std::env::var("MLHOOK_TEST_MLFLOW_SKIP") {
        return Err(reason);
    }
    let default = PathBuf::from("/opt/mlhook-mlflow-venv/bin/mlflow");
    if default.is_file() {
        return Ok(default);
    }
    Err(
        "MLflow is not installed: run scripts/test, which installs mlflow==3.17.2 into a \
         virtualenv and sets MLHOOK_TEST_MLFLOW"
            .to_string(),
    )
}

/// Said on the terminal itself: libtest captures `println!` of passing tests.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A running `mlflow server`, killed when dropped.
struct MlflowServer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // `mlflow server` runs uvicorn and its job runners in its own process
        // group (set at spawn), and takes its time over SIGTERM: kill them all.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// MLflow's three settings for webhooks to a local mlhook.
fn mlflow_env(command: &mut Command, encryption_key: &str) {
    command
        .env("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
        .env("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
        .env("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", encryption_key)
        .env("MLFLOW_TRACKING_INSECURE_TLS", "false")
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("MLFLOW_TRACKING_URI");
}

async fn start_mlflow(mlflow: &Path, dir: &Path, encryption_key: &str) -> MlflowServer {
    let port = free_port();
    let log = dir.join("mlflow-server.log");
    let mut command = Command::new(mlflow);
    command
        .arg("server")
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--default-artifact-root")
        .arg(dir.join("artifacts"))
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .arg("--workers")
        .arg("1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ));
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    mlflow_env(&mut command, encryption_key);
    let child = command.spawn().expect("mlflow server starts");
    let server = MlflowServer {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(format!("{}/health", server.url)).send().await
            && r.status() == 200
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "mlflow server never answered /health; log:\n{}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What a user does with the MLflow client: a webhook to mlhook with the
/// shared secret, a model, a version, a tag, an alias, and MLflow's test.
const CLIENT_SCRIPT: &str = r#"
import json, sys
from mlflow import MlflowClient

tracking_uri, hook_url, secret = sys.argv[1:4]
client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
hook = client.create_webhook(
    name="mlhook",
    url=hook_url,
    events=[
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_alias.created",
    ],
    secret=secret,
)
client.create_registered_model("churn")
version = client.create_model_version(name="churn", source="s3://bucket/churn/1")
client.set_model_version_tag("churn", version.version, "validation", "passed")
client.set_registered_model_alias("churn", "champion", version.version)
test = client.test_webhook(hook.webhook_id, event="model_version.created")
print(json.dumps({
    "webhook_id": hook.webhook_id,
    "version": version.version,
    "test_success": test.success,
    "test_status": test.response_status,
    "test_error": test.error_message,
}))
"#;

#[tokio::test]
async fn a_real_mlflow_server_feeds_comet_native_and_slack_webhooks() {
    let mlflow = match mlflow_executable() {
        Ok(path) => path,
        Err(reason) => {
            say(&format!(
                "SKIP a_real_mlflow_server_feeds_comet_native_and_slack_webhooks: {reason}"
            ));
            return;
        }
    };
    let python = mlflow.with_file_name("python");
    let dir = tempfile::tempdir().unwrap();
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let encryption_key = URL_SAFE.encode(key);

    // mlhook: a project, three webhooks, and the MLflow source.
    let server = Server::start().await;
    let receiver = slack_answering_receiver().await;
    server.create_project("ml").await;
    server
        .create_webhook(
            "ml",
            json!({"name": "comet receiver", "url": format!("{}/comet", receiver.url),
                   "events": ["MODEL_VERSION_CREATED", "MODEL_TAG_CHANGED"],
                   "scope": {"object_type": "model", "object_name": "churn"}}),
        )
        .await;
    server
        .create_webhook(
            "ml",
            json!({"name": "native", "url": format!("{}/native", receiver.url),
                   "events": ["mlflow.registered_model.created", "mlflow.model_version.created",
                              "mlflow.model_version_tag.set", "mlflow.model_version_alias.created"],
                   "scope": {"object_type": "model", "object_name": "churn"}}),
        )
        .await;
    server
        .create_webhook(
            "ml",
            json!({"name": "slack", "url": format!("{}/slack", receiver.url), "format": "slack",
                   "events": ["MODEL_VERSION_CREATED", "mlflow.model_version_alias.created"],
                   "scope": {"object_type": "model", "object_name": "churn"}}),
        )
        .await;
    // Every event, unscoped, one shape of each change (native, the
    // default): MLflow's test event must not reach it.
    server
        .create_webhook(
            "ml",
            json!({"name": "everything", "url": format!("{}/all", receiver.url), "events": ["*"]}),
        )
        .await;
    let (source, hook_url) = create_source(
        &server,
        "ml",
        json!({"name": "mlflow", "secret": SECRET, "workspace_name": "ml-platform"}),
    )
    .await;

    let started = Instant::now();
    let mlflow_server = start_mlflow(&mlflow, dir.path(), &encryption_key).await;
    say(&format!("mlflow server ready in {:?}", started.elapsed()));

    // The user's side, with MLflow's own client.
    let script = dir.path().join("client.py");
    std::fs::write(&script, CLIENT_SCRIPT).unwrap();
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg(&mlflow_server.url)
        .arg(&hook_url)
        .arg(SECRET);
    mlflow_env(&mut command, &encryption_key);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "client script failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&mlflow_server.log).unwrap_or_default()
    );
    let result: Value = serde_json::from_slice(
        output
            .stdout
            .split(|b| *b == b'\n')
            .rfind(|line| line.starts_with(b"{"))
            .expect("the script prints its result"),
    )
    .unwrap();
    // MLflow's test button got mlhook's 2xx; the test event is stored as a
    // test and sent nowhere.
    assert_eq!(result["test_success"], true, "{result}");
    assert_eq!(result["test_status"], 202, "{result}");
    let version = result["version"].as_str().unwrap().to_string();

    // comet: 2, native: 4, slack: 2, everything: 4 (native only).
    let all = receiver.wait_for(12, Duration::from_secs(60)).await;
    let all = {
        let later = receiver.settle(Duration::from_millis(500)).await;
        if later.len() > all.len() { later } else { all }
    };
    let at = |path: &str| -> Vec<Value> {
        all.iter()
            .filter(|r| r.path == path)
            .map(|r| r.json())
            .collect()
    };
    let (comet, native, slack) = (at("/comet"), at("/native"), at("/slack"));
    assert_eq!(
        (comet.len(), native.len(), slack.len()),
        (2, 4, 2),
        "{all:?}"
    );
    let everything = at("/all");
    assert_eq!(everything.len(), 4, "{everything:?}");
    assert!(
        everything.iter().all(|b| b["entity"].is_string()),
        "{everything:?}"
    );
    assert!(
        everything
            .iter()
            .all(|b| b["data"]["name"] != "example_model"
                && b["registryModelName"] != "example_model"),
        "MLflow's test event was delivered: {everything:?}"
    );

    let created = comet
        .iter()
        .find(|b| b["eventTrigger"] == "MODEL_VERSION_CREATED")
        .expect("Comet MODEL_VERSION_CREATED");
    let keys: Vec<&str> = created
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
    assert_eq!(created["registryModelName"], "churn");
    assert_eq!(created["workspaceName"], "ml-platform");
    assert_eq!(created["version"], version.as_str());
    assert_eq!(created["tags"], json!([]));
    assert!((created["createdAt"].as_i64().unwrap() - now_secs()).abs() < 600);
    let tagged = comet
        .iter()
        .find(|b| b["eventTrigger"] == "MODEL_TAG_CHANGED")
        .expect("Comet MODEL_TAG_CHANGED");
    assert_eq!(tagged["tags"], json!(["validation=passed"]));
    assert_eq!(tagged["deletedTags"], json!([]));

    let native_of = |entity: &str| {
        native
            .iter()
            .find(|b| b["entity"] == entity)
            .unwrap_or_else(|| panic!("native {entity} delivered: {native:?}"))
    };
    let version_body = native_of("model_version");
    assert_eq!(version_body["action"], "created");
    assert_eq!(version_body["data"]["name"], "churn");
    assert_eq!(version_body["data"]["source"], "s3://bucket/churn/1");
    assert_eq!(native_of("registered_model")["data"]["name"], "churn");
    assert_eq!(native_of("model_version_tag")["data"]["key"], "validation");
    let alias = native_of("model_version_alias");
    assert_eq!(alias["data"]["alias"], "champion");
    assert_eq!(alias["data"]["version"], version.as_str());

    let texts: Vec<&str> = slack.iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("Model churn v{version} created"))),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("MLflow: alias champion → model churn v{version}"))),
        "{texts:?}"
    );

    // mlhook kept what MLflow does not: every event, and no refusal.
    let (_, shown) = server
        .get(&format!("/v1/projects/ml/sources/{source}"))
        .await;
    assert_eq!(shown["activity"]["accepted_last_7d"], 5, "{shown}");
    assert!(source_log(&server, "ml", &source).await.is_empty());
    let types = event_types(&server, "ml").await;
    for t in [
        "mlflow.registered_model.created",
        "mlflow.model_version.created",
        "mlflow.model_version_tag.set",
        "mlflow.model_version_alias.created",
        "MODEL_VERSION_CREATED",
        "MODEL_TAG_CHANGED",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} not among {types:?}");
    }
    assert_eq!(types.len(), 8, "{types:?}");
    let (_, events) = server.get("/v1/projects/ml/events").await;
    let tests: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["is_test"] == true)
        .collect();
    assert_eq!(
        tests.len(),
        2,
        "the native test event and its Comet twin: {events}"
    );
    for event in tests {
        let id = event["id"].as_str().unwrap();
        let (_, shown) = server.get(&format!("/v1/projects/ml/events/{id}")).await;
        assert_eq!(shown["deliveries"], json!([]), "{shown}");
    }
    say(&format!(
        "mlflow end to end: {} deliveries in {:?}",
        all.len(),
        started.elapsed()
    ));
    drop(mlflow_server);
}
