//! Destination formats: golden bodies for each format and event family,
//! every body checked against the provider's published rules (also with
//! oversized payloads), and end to end runs of the real binary against local
//! servers standing in for Slack, Teams, Discord and GitHub; rate limits.
//!
//! Golden files live in tests/golden/<format>/<event type>.json. After an
//! intended change, regenerate them with `UPDATE_GOLDEN=1 cargo test --test
//! formats golden` and review the diff by eye.

use crate::common::*;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mlhook::catalog::{Catalog, PrepareContext};
use mlhook::formats::{self, EventData, Rendered};
use mlhook::webhook::{Webhook, WebhookInput};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Provider rules, written from the providers' documents (not from our code)
// ---------------------------------------------------------------------------

/// Characters as the providers' limits count them; UTF-16 units are never
/// fewer than code points, so passing this passes either count.
fn len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn str_at<'a>(v: &'a Value, what: &str, errors: &mut Vec<String>) -> &'a str {
    match v.as_str() {
        Some(s) => s,
        None => {
            errors.push(format!("{what}: not a string: {v}"));
            ""
        }
    }
}

fn limit(errors: &mut Vec<String>, what: &str, text: &str, max: usize) {
    if len(text) > max {
        errors.push(format!("{what}: {} > {max} characters", len(text)));
    }
    if text.trim().is_empty() {
        errors.push(format!("{what}: empty"));
    }
}

/// Slack Block Kit for incoming webhooks.
fn slack_violations(body: &Value) -> Vec<String> {
    let mut e = Vec::new();
    if let Some(text) = body.get("text") {
        let text = str_at(text, "text", &mut e);
        limit(&mut e, "text", text, 40_000);
    }
    let Some(blocks) = body["blocks"].as_array() else {
        return vec!["blocks: missing".into()];
    };
    if blocks.is_empty() || blocks.len() > 50 {
        e.push(format!("blocks: {} (1..=50)", blocks.len()));
    }
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("blocks/{i}");
        match b["type"].as_str() {
            Some("header") => {
                if b["text"]["type"] != "plain_text" {
                    e.push(format!("{at}: header text must be plain_text"));
                }
                let t = str_at(&b["text"]["text"], &at, &mut e);
                limit(&mut e, &at, t, 150);
            }
            Some("section") => {
                if b.get("text").is_none() && b.get("fields").is_none() {
                    e.push(format!("{at}: section needs text or fields"));
                }
                if let Some(text) = b.get("text") {
                    if !matches!(text["type"].as_str(), Some("mrkdwn" | "plain_text")) {
                        e.push(format!("{at}: bad text type"));
                    }
                    let t = str_at(&text["text"], &at, &mut e);
                    limit(&mut e, &format!("{at}/text"), t, 3000);
                    check_mrkdwn(&mut e, &at, t);
                }
                if let Some(fields) = b.get("fields") {
                    let fields = fields.as_array().cloned().unwrap_or_default();
                    if fields.is_empty() || fields.len() > 10 {
                        e.push(format!("{at}: {} fields (1..=10)", fields.len()));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        let t = str_at(&f["text"], &at, &mut e);
                        limit(&mut e, &format!("{at}/fields/{j}"), t, 2000);
                        check_mrkdwn(&mut e, &at, t);
                    }
                }
            }
            Some("context") => {
                let elements = b["elements"].as_array().cloned().unwrap_or_default();
                if elements.is_empty() || elements.len() > 10 {
                    e.push(format!(
                        "{at}: {} context elements (1..=10)",
                        elements.len()
                    ));
                }
                for el in &elements {
                    let t = str_at(&el["text"], &at, &mut e);
                    limit(&mut e, &at, t, 3000);
                }
            }
            other => e.push(format!("{at}: unexpected block type {other:?}")),
        }
    }
    e
}

/// mrkdwn: `<` only opens a link or a special (`<!date…>`), `&` only an entity.
fn check_mrkdwn(e: &mut Vec<String>, at: &str, text: &str) {
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        let Some(end) = rest[i..].find('>') else {
            e.push(format!("{at}: unclosed <"));
            return;
        };
        let inner = &rest[i + 1..i + end];
        if !(inner.starts_with("http") || inner.starts_with('!')) || inner.contains('<') {
            e.push(format!("{at}: stray < in {inner:?}"));
        }
        rest = &rest[i + end + 1..];
    }
    for (i, _) in text.match_indices('&') {
        let tail = &text[i..];
        if !(tail.starts_with("&amp;") || tail.starts_with("&lt;") || tail.starts_with("&gt;")) {
            e.push(format!("{at}: unescaped &"));
        }
    }
}

/// Teams Workflows message with an Adaptive Card 1.4.
fn teams_violations(body: &Value) -> Vec<String> {
    let mut e = Vec::new();
    if body["type"] != "message" {
        e.push("type must be message".into());
    }
    let attachments = body["attachments"].as_array().cloned().unwrap_or_default();
    if attachments.len() != 1 {
        e.push(format!("{} attachments", attachments.len()));
        return e;
    }
    let a = &attachments[0];
    if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
        e.push("contentType".into());
    }
    let card = &a["content"];
    if card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
        e.push("content must be an AdaptiveCard 1.4".into());
    }
    let items = card["body"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        e.push("card body empty".into());
    }
    for (i, item) in items.iter().enumerate() {
        match item["type"].as_str() {
            Some("TextBlock") => {
                let t = str_at(&item["text"], &format!("body/{i}"), &mut e);
                if t.is_empty() {
                    e.push(format!("body/{i}: empty text"));
                }
            }
            Some("FactSet") => {
                for f in item["facts"].as_array().into_iter().flatten() {
                    str_at(&f["title"], "fact title", &mut e);
                    str_at(&f["value"], "fact value", &mut e);
                }
            }
            other => e.push(format!("body/{i}: unexpected element {other:?}")),
        }
    }
    for action in card["actions"].as_array().into_iter().flatten() {
        if action["type"] != "Action.OpenUrl" || !action["url"].is_string() {
            e.push("actions must be Action.OpenUrl with a url".into());
        }
    }
    let size = serde_json::to_vec(body).unwrap().len();
    if size > 28 * 1024 {
        e.push(format!("message is {size} bytes, over Teams' 28 KB"));
    }
    e
}

/// Discord execute-webhook body.
fn discord_violations(body: &Value) -> Vec<String> {
    let mut e = Vec::new();
    let content = body["content"].as_str().unwrap_or("");
    if len(content) > 2000 {
        e.push(format!("content {} > 2000", len(content)));
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if content.is_empty() && embeds.is_empty() {
        e.push("needs content or embeds".into());
    }
    if embeds.len() > 10 {
        e.push(format!("{} embeds > 10", embeds.len()));
    }
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        let at = format!("embeds/{i}");
        let mut count = |field: &str, text: &str, max: usize| {
            if len(text) > max {
                e.push(format!("{at}/{field}: {} > {max}", len(text)));
            }
            total += len(text);
        };
        count("title", embed["title"].as_str().unwrap_or(""), 256);
        count(
            "description",
            embed["description"].as_str().unwrap_or(""),
            4096,
        );
        count(
            "footer",
            embed["footer"]["text"].as_str().unwrap_or(""),
            2048,
        );
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        for f in &fields {
            let name = f["name"].as_str().unwrap_or("");
            let value = f["value"].as_str().unwrap_or("");
            count("field name", name, 256);
            count("field value", value, 1024);
            if name.is_empty() || value.is_empty() {
                count("field", "empty name or value", 0);
            }
        }
        if fields.len() > 25 {
            count("fields", &format!("{} fields > 25", fields.len()), 0);
        }
        if let Some(url) = embed.get("url") {
            let ok = url.as_str().and_then(|u| url::Url::parse(u).ok());
            if ok.is_none() {
                e.push(format!("{at}: url is not a URL"));
            }
        }
    }
    if total > 6000 {
        e.push(format!("embeds total {total} > 6000"));
    }
    if body["allowed_mentions"]["parse"] != json!([]) {
        e.push("allowed_mentions must disable pings".into());
    }
    e
}

/// GitHub `POST /repos/{owner}/{repo}/dispatches`.
fn github_violations(body: &Value) -> Vec<String> {
    let mut e = Vec::new();
    let event_type = body["event_type"].as_str().unwrap_or("");
    if event_type.is_empty() || event_type.chars().count() > 100 {
        e.push(format!("event_type length {}", event_type.chars().count()));
    }
    match body["client_payload"].as_object() {
        None => e.push("client_payload must be an object".into()),
        Some(p) => {
            if p.len() > 10 {
                e.push(format!(
                    "client_payload has {} top-level properties",
                    p.len()
                ));
            }
            let chars = serde_json::to_string(&body["client_payload"])
                .unwrap()
                .chars()
                .count();
            if chars > 65_535 {
                e.push(format!("client_payload is {chars} characters"));
            }
        }
    }
    e
}

fn violations(format: &str, body: &Value) -> Vec<String> {
    match format {
        "slack" => slack_violations(body),
        "teams" => teams_violations(body),
        "discord" => discord_violations(body),
        "github_dispatch" => github_violations(body),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Rendering in process
// ---------------------------------------------------------------------------

const FORMATS: [&str; 6] = [
    "json",
    "slack",
    "teams",
    "discord",
    "github_dispatch",
    "template",
];

/// One event type per family (and TEST), plus the ones whose shape differs most.
const GOLDEN_TYPES: [&str; 8] = [
    "RUN_COMPLETED",
    "deployment_request_failed",
    "MODEL_STATUS_CHANGED",
    "MODEL_TAG_CHANGED",
    "execution_completed",
    "pipeline_failed",
    "TEST",
    "mlhook.delivery.exhausted",
];

/// An event id whose UUIDv7 time is 2024-01-25T12:58:34.701Z.
const EVENT_ID: &str = "evt_018d40b3634d7000800000000000beef";

const TEMPLATE: &str = r#"{
  "title": "{{ title }}",
  "text": "[{{ event.type }}] {{ summary }}{% if link %} — {{ link }}{% endif %}",
  "event": {"id": "{{ event.id }}", "type": "{{ event.type }}", "at": "{{ event.time }}"},
  "object": "{{ object }}",
  "fields": "{{ fields }}",
  "link": "{{ link }}",
  "project": "{{ project }}",
  "webhook": "{{ webhook.name }}"
}"#;

fn webhook(format: &str) -> Webhook {
    let mut config = json!({
        "name": "golden", "url": "https://receiver.example/hook", "events": ["*", "mlhook.delivery.exhausted"],
        "format": format,
    });
    match format {
        "github_dispatch" => {
            config.as_object_mut().unwrap().remove("url");
            config["github"] = json!({"repository": "acme/ml-ops", "token": "ghp_golden"});
        }
        "template" => config["template"] = json!(TEMPLATE),
        _ => {}
    }
    let input: WebhookInput = serde_json::from_value(config).unwrap();
    let mut w = Webhook::create(input, &"fraud-team".into(), &Catalog::builtin(), 0)
        .unwrap_or_else(|e| panic!("{format}: {e:?}"));
    w.id = "wh_golden".into();
    w
}

fn event(catalog: &Catalog, event_type: &str, payload: Value) -> EventData {
    let ctx = PrepareContext {
        project_id: "fraud-team",
    };
    let prepared = catalog
        .prepare(event_type, payload, &ctx)
        .unwrap_or_else(|e| panic!("{event_type}: {e:?}"));
    EventData::new(
        EVENT_ID.into(),
        "fraud-team".into(),
        event_type.into(),
        prepared.payload.to_string(),
        catalog.get(event_type).map(|t| t.family),
        None,
    )
}

fn render(format: &str, event: &EventData) -> (Rendered, Value) {
    let rendered = formats::render(&webhook(format), event)
        .unwrap_or_else(|e| panic!("{format} {}: {e}", event.event_type));
    let body: Value = serde_json::from_slice(&rendered.body)
        .unwrap_or_else(|e| panic!("{format} {}: not JSON: {e}", event.event_type));
    (rendered, body)
}

fn golden_path(format: &str, event_type: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format)
        .join(format!("{event_type}.json"))
}

#[test]
fn golden_bodies_for_every_format_and_family() {
    let catalog = Catalog::builtin();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for format in FORMATS {
        for event_type in GOLDEN_TYPES {
            let example = catalog.get(event_type).unwrap().example.clone();
            let (_, body) = render(format, &event(&catalog, event_type, example));
            let problems = violations(format, &body);
            assert!(problems.is_empty(), "{format} {event_type}: {problems:?}");
            let text = serde_json::to_string_pretty(&body).unwrap() + "\n";
            let path = golden_path(format, event_type);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != text {
                mismatches.push(format!("{}\n--- got ---\n{text}", path.display()));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "bodies differ from tests/golden (UPDATE_GOLDEN=1 to accept after review):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn json_format_is_the_payload_verbatim() {
    let catalog = Catalog::builtin();
    for event_type in GOLDEN_TYPES {
        let example = catalog.get(event_type).unwrap().example.clone();
        let e = event(&catalog, event_type, example);
        let (rendered, _) = render("json", &e);
        assert_eq!(rendered.body, e.payload.as_bytes(), "{event_type}");
    }
}

/// Payloads far beyond what fits a chat message.
fn oversized(catalog: &Catalog) -> Vec<EventData> {
    let long = |n: usize| "x".repeat(n);
    let emoji_and_markup = "😀 <b>&amp; *bold* _i_ [x](y) | > `c` ".repeat(200);
    let tags: Vec<String> = (0..200)
        .map(|i| format!("tag-{i:03}-{}", "t".repeat(20)))
        .collect();
    let many_tags: Vec<String> = (0..6000).map(|i| format!("tag-{i:05}-padding")).collect();
    let alerts: Vec<Value> = (0..300)
        .map(|i| json!({"metric_name": format!("feature_{i}_{}", long(30))}))
        .collect();
    let mut wide = serde_json::Map::new();
    for i in 0..40 {
        wide.insert(format!("extra_{i}"), json!(long(100)));
    }
    let mut ubiops_wide = json!({
        "deployment_id": "d", "deployment_name": "scorer", "deployment_version_id": "dv",
        "deployment_version_name": "v2", "request_id": "abc", "status": "failed",
    });
    ubiops_wide.as_object_mut().unwrap().extend(wide);
    let cases = [
        (
            "MODEL_TAG_CHANGED",
            json!({"workspaceName": "acme", "registryModelName": long(5000), "version": long(300),
                   "tags": tags, "deletedTags": ["old"], "status": long(2000),
                   "oldStatus": emoji_and_markup, "createdAt": 1706191450}),
        ),
        (
            "MODEL_VERSION_CREATED",
            json!({"workspaceName": "acme", "registryModelName": "churn", "version": "3",
                   "tags": many_tags, "createdAt": 1706191450}),
        ),
        (
            "deployment_request_failed",
            json!({"deployment_id": "d", "deployment_name": "scorer", "deployment_version_id": "dv",
                   "deployment_version_name": "v2", "request_id": "abc", "status": "failed",
                   "text": format!("Traceback: {}", "<error> & \"boom\"\n".repeat(300))}),
        ),
        ("deployment_request_failed", ubiops_wide),
        (
            "execution_failed",
            json!({"project": "p", "title": long(5000),
                   "body": format!("Execution [{}](https://app.valohai.com/{}) failed: {}",
                                   long(3000), long(1500), long(5000)),
                   "url": format!("https://app.valohai.com/{}", long(5000)),
                   "data": {"valohai.project-name": long(400), "valohai.creator-name": long(3000)}}),
        ),
        (
            "RUN_COMPLETED",
            json!({"header": {"model_name": long(5000), "model_id": 1},
                   "payload": {"run": {"started_at": "2024-01-25T14:04:10"},
                               "performance_alerts": {"cbpe": alerts.clone()},
                               "other_alerts": {"univariate_drift": alerts},
                               "success": ["a"], "report_link": "https://app.nannyml.com/r/1"}}),
        ),
        (
            "mlhook.delivery.exhausted",
            json!({"delivery_id": "msg_1", "webhook_id": "wh_1", "webhook_name": long(500),
                   "event_id": "evt_1", "event_type": "RUN_COMPLETED", "attempts": 8,
                   "last_status_code": 500, "last_error": long(5000)}),
        ),
    ];
    cases
        .into_iter()
        .map(|(t, p)| event(catalog, t, p))
        .collect()
}

#[test]
fn oversized_payloads_stay_within_every_providers_rules() {
    let catalog = Catalog::builtin();
    for e in oversized(&catalog) {
        for format in FORMATS {
            let (_, body) = render(format, &e);
            let problems = violations(format, &body);
            assert!(
                problems.is_empty(),
                "{format} {}: {problems:?}",
                e.event_type
            );
        }
    }
}

#[test]
fn long_text_is_cut_with_an_ellipsis() {
    let catalog = Catalog::builtin();
    let cases = oversized(&catalog);
    let (_, slack) = render("slack", &cases[0]);
    let header = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(len(header), 150, "{header}");
    assert!(header.ends_with('…'));
    let (_, discord) = render("discord", &cases[2]);
    let description = discord["embeds"][0]["description"].as_str().unwrap();
    assert!(description.ends_with('…'), "{description}");
    // GitHub nests and trims: the 6,000 tags no longer all fit.
    let (_, github) = render("github_dispatch", &cases[1]);
    assert_eq!(github["client_payload"]["truncated"], true);
    let kept = github["client_payload"]["payload"]["tags"]
        .as_array()
        .unwrap()
        .len();
    assert!(kept > 0 && kept < 6000, "{kept}");
    // A payload with 46 top-level fields is nested: still ≤ 10 properties.
    let (_, github) = render("github_dispatch", &cases[3]);
    assert!(github["client_payload"].as_object().unwrap().len() <= 10);
    assert_eq!(
        github["client_payload"]["payload"]["extra_39"],
        "x".repeat(100)
    );
}

#[test]
fn github_request_goes_to_the_dispatch_url_with_masked_token() {
    let catalog = Catalog::builtin();
    let e = event(
        &catalog,
        "MODEL_STATUS_CHANGED",
        catalog.get("MODEL_STATUS_CHANGED").unwrap().example.clone(),
    );
    let (rendered, body) = render("github_dispatch", &e);
    assert_eq!(
        rendered.url.as_deref(),
        Some("https://api.github.com/repos/acme/ml-ops/dispatches")
    );
    let auth = rendered
        .headers
        .iter()
        .find(|h| h.name == "authorization")
        .unwrap();
    assert_eq!(auth.value, "Bearer ghp_golden");
    assert!(auth.secret);
    assert_eq!(body["event_type"], "MODEL_STATUS_CHANGED");
    assert_eq!(
        body["client_payload"]["payload"]["registryModelName"],
        "churn-classifier"
    );
}

// ---------------------------------------------------------------------------
// End to end: the real binary against local stand-ins
// ---------------------------------------------------------------------------

async fn setup() -> Server {
    let server = Server::start().await;
    server.create_project("p").await;
    server
}

fn example(event_type: &str) -> Value {
    Catalog::builtin().get(event_type).unwrap().example.clone()
}

/// Polls a delivery until its status is one of `statuses`.
async fn wait_status(server: &Server, delivery_id: &str, statuses: &[&str]) -> Value {
    let path = format!("/v1/projects/p/deliveries/{delivery_id}");
    let what = format!("one of {statuses:?}");
    server
        .poll_until(&path, Duration::from_secs(20), &what, |d| {
            statuses.iter().any(|s| d["status"] == *s)
        })
        .await
}

fn delivery_id(accepted: &Value) -> String {
    accepted["deliveries"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn slack_receives_blocks_and_only_ok_is_success() {
    let server = setup().await;
    // The stand-in answers like Slack: "ok", or an error word with 200/400.
    let slack = Receiver::start_with(|_, r| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let mut reply = Reply::status(200);
        reply.body = if slack_violations(&body).is_empty() {
            "ok".into()
        } else {
            "invalid_blocks".into()
        };
        reply
    })
    .await;
    let hook = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/services/T0/B0/x", slack.url), "events": ["MODEL_STATUS_CHANGED"], "format": "slack"}),
        )
        .await;
    assert_eq!(hook["effective_rate_limit"], json!({"per_second": 1}));
    let accepted = server
        .send_event("p", "MODEL_STATUS_CHANGED", example("MODEL_STATUS_CHANGED"))
        .await;
    let got = slack.wait_for(1, Duration::from_secs(10)).await;
    let request = &got[0];
    assert_eq!(request.path, "/services/T0/B0/x");
    assert_eq!(request.header("content-type"), "application/json");
    assert!(verify_signature(
        hook["signing_secret"].as_str().unwrap(),
        request
    ));
    let body = request.json();
    assert!(slack_violations(&body).is_empty(), "{body}");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "Model churn-classifier v1.4.0 moved to Production"
    );
    let d = wait_status(&server, &delivery_id(&accepted), &["succeeded"]).await;
    assert_eq!(d["attempts"], 1);

    // A Slack that answers 200 with anything but "ok" has refused the message.
    let refusing = Receiver::start_with(|_, _| {
        let mut reply = Reply::status(200);
        reply.body = "invalid_payload".into();
        reply
    })
    .await;
    server
        .create_webhook(
            "p",
            json!({"url": refusing.url, "events": ["MODEL_VERSION_DELETED"], "format": "slack",
                   "rate_limit": {"per_second": 50}}),
        )
        .await;
    let accepted = server
        .send_event(
            "p",
            "MODEL_VERSION_DELETED",
            example("MODEL_VERSION_DELETED"),
        )
        .await;
    let d = wait_status(&server, &delivery_id(&accepted), &["exhausted"]).await;
    let history = d["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{d}");
    assert_eq!(history[0]["error"]["kind"], "rejected", "{d}");
    assert!(
        history[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_payload")
    );
}

#[tokio::test]
async fn teams_and_discord_receive_valid_messages() {
    let server = setup().await;
    let teams = Receiver::start_with(|_, _| Reply::status(202)).await;
    let discord = Receiver::start_with(|_, _| Reply::status(204)).await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/workflows/x", teams.url), "events": ["RUN_COMPLETED"], "format": "teams"}),
        )
        .await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/api/webhooks/1/t", discord.url), "events": ["RUN_COMPLETED"], "format": "discord"}),
        )
        .await;
    let accepted = server
        .send_event("p", "RUN_COMPLETED", example("RUN_COMPLETED"))
        .await;
    let t = teams.wait_for(1, Duration::from_secs(10)).await[0].json();
    assert!(teams_violations(&t).is_empty(), "{t}");
    let card = &t["attachments"][0]["content"];
    assert_eq!(
        card["actions"][0]["url"],
        "https://test.app.nannyml.com/model/1"
    );
    let d = discord.wait_for(1, Duration::from_secs(10)).await[0].json();
    assert!(discord_violations(&d).is_empty(), "{d}");
    assert_eq!(
        d["embeds"][0]["url"],
        "https://test.app.nannyml.com/model/1"
    );
    for id in accepted["deliveries"].as_array().unwrap() {
        wait_status(&server, id.as_str().unwrap(), &["succeeded"]).await;
    }
}

#[tokio::test]
async fn github_dispatch_posts_to_the_repository_with_the_token_never_shown() {
    let server = setup().await;
    let github = Receiver::start_with(|_, _| Reply::status(204)).await;
    let hook = server
        .create_webhook(
            "p",
            json!({"events": ["MODEL_VERSION_CREATED"], "format": "github_dispatch",
                   "github": {"repository": "acme/ml-ops", "token": "ghp_s3cr3t", "api_url": github.url}}),
        )
        .await;
    assert_eq!(hook["name"], "acme/ml-ops");
    assert_eq!(
        hook["url"],
        format!("{}/repos/acme/ml-ops/dispatches", github.url)
    );
    assert_eq!(
        hook["github"],
        json!({"repository": "acme/ml-ops", "api_url": github.url, "has_token": true})
    );
    assert!(!hook.to_string().contains("ghp_s3cr3t"), "{hook}");
    let id = hook["id"].as_str().unwrap();
    let (_, shown) = server.get(&format!("/v1/projects/p/webhooks/{id}")).await;
    assert!(!shown.to_string().contains("ghp_s3cr3t"), "{shown}");

    let accepted = server
        .send_event(
            "p",
            "MODEL_VERSION_CREATED",
            example("MODEL_VERSION_CREATED"),
        )
        .await;
    let got = github.wait_for(1, Duration::from_secs(10)).await;
    let r = &got[0];
    assert_eq!(r.path, "/repos/acme/ml-ops/dispatches");
    assert_eq!(r.header("accept"), "application/vnd.github+json");
    assert_eq!(r.header("authorization"), "Bearer ghp_s3cr3t");
    assert_eq!(r.header("x-github-api-version"), "2022-11-28");
    let body = r.json();
    assert!(github_violations(&body).is_empty(), "{body}");
    assert_eq!(body["event_type"], "MODEL_VERSION_CREATED");
    assert_eq!(
        body["client_payload"]["payload"],
        example("MODEL_VERSION_CREATED")
    );

    // The log shows the request as sent, the token masked.
    let d = wait_status(&server, &delivery_id(&accepted), &["succeeded"]).await;
    let request = &d["history"][0]["request"];
    assert_eq!(request["headers"]["authorization"], "********");
    assert_eq!(
        request["url"],
        format!("{}/repos/acme/ml-ops/dispatches", github.url)
    );
    assert!(!d.to_string().contains("ghp_s3cr3t"));

    // An update without the token keeps it; the URL cannot be set by hand.
    let (status, patched) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{id}"),
            json!({"github": {"repository": "acme/other", "api_url": github.url}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["github"]["has_token"], true);
    let (status, answer) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{id}"),
            json!({"url": "https://example.com/x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "/url");
    server
        .send_event(
            "p",
            "MODEL_VERSION_CREATED",
            example("MODEL_VERSION_CREATED"),
        )
        .await;
    let got = github.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].path, "/repos/acme/other/dispatches");
    assert_eq!(got[1].header("authorization"), "Bearer ghp_s3cr3t");
}

#[tokio::test]
async fn github_dispatch_needs_its_settings() {
    let server = setup().await;
    for (body, field) in [
        (
            json!({"events": ["*"], "format": "github_dispatch"}),
            "/github",
        ),
        (
            json!({"events": ["*"], "format": "github_dispatch", "github": {"repository": "nope", "token": "t"}}),
            "/github/repository",
        ),
        (
            json!({"events": ["*"], "format": "github_dispatch", "github": {"repository": "a/b"}}),
            "/github/token",
        ),
        (
            json!({"events": ["*"], "format": "github_dispatch", "secret": "s",
                   "github": {"repository": "a/b", "token": "t"}}),
            "/secret",
        ),
        (
            json!({"url": "https://x.example/", "events": ["*"], "github": {"repository": "a/b", "token": "t"}}),
            "/github",
        ),
    ] {
        let (status, answer) = server.post("/v1/projects/p/webhooks", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
}

#[tokio::test]
async fn templates_are_checked_on_save_and_rendered_escaped() {
    let server = setup().await;
    let receiver = Receiver::start().await;
    let url = format!("{}/custom", receiver.url);
    // An unknown variable: 400 naming the string and the position in it.
    let (status, answer) = server
        .post(
            "/v1/projects/p/webhooks",
            json!({"url": url, "events": ["MODEL_VERSION_CREATED"], "format": "template",
                   "template": {"msg": {"text": "Model {{ payload.registryModelNam }}"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "/template/msg/text", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 1, column 10"), "{message}");
    // Template text that is not JSON: 400 with its line and column.
    let (status, answer) = server
        .post(
            "/v1/projects/p/webhooks",
            json!({"url": url, "events": ["*"], "format": "template",
                   "template": "{\n  \"text\": {{ summary }}\n}"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "/template");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2 column"),
        "{answer}"
    );
    // A field another subscribed type lacks is an error too, unless guarded.
    let (status, answer) = server
        .post(
            "/v1/projects/p/webhooks",
            json!({"url": url, "events": ["*"], "format": "template",
                   "template": {"m": "{{ payload.registryModelName }}"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rendering")
    );

    server
        .create_webhook(
            "p",
            json!({"url": url, "events": ["*"], "format": "template",
                   "template": {"text": "{{ title }}: {{ payload.registryModelName | default('-') }}",
                                "tags": "{{ payload.tags | default([]) }}",
                                "type": "{{ event.type }}", "object": "{{ object.name }}"}}),
        )
        .await;
    let mut payload = example("MODEL_VERSION_CREATED");
    payload["registryModelName"] = json!("churn \"quoted\"\n{{ not a placeholder }}");
    server
        .send_event("p", "MODEL_VERSION_CREATED", payload)
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let body = got[0].json();
    assert_eq!(
        body["text"],
        "Model churn \"quoted\"\n{{ not a placeholder }} v1.4.0 created: churn \"quoted\"\n{{ not a placeholder }}"
    );
    assert_eq!(body["tags"], json!(["production", "candidate"]));
    assert_eq!(body["type"], "MODEL_VERSION_CREATED");
    assert_eq!(body["object"], "churn \"quoted\"\n{{ not a placeholder }}");
}

/// The most requests that arrived within any `window`.
fn busiest(times: &[Instant], window: Duration) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn rate_limit_spaces_deliveries_and_loses_none() {
    let server = setup().await;
    let receiver = Receiver::start().await;
    server
        .create_webhook(
            "p",
            json!({"url": receiver.url, "events": ["TEST"], "rate_limit": {"per_second": 5}}),
        )
        .await;
    let n = 15;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(delivery_id(
            &server.send_event("p", "TEST", example("TEST")).await,
        ));
    }
    let got = receiver.wait_for(n, Duration::from_secs(30)).await;
    let mut times: Vec<Instant> = got.iter().map(|r| r.at).collect();
    times.sort();
    let span = times[n - 1] - times[0];
    // 14 gaps of 200 ms; a generous margin either way.
    assert!(span >= Duration::from_millis(2000), "{span:?}");
    assert!(span <= Duration::from_secs(10), "{span:?}");
    let peak = busiest(&times, Duration::from_secs(1));
    assert!(peak <= 6, "{peak} requests within one second");
    // Waiting is not failing: each delivery succeeded on its first attempt.
    for id in &ids {
        let d = wait_status(&server, id, &["succeeded"]).await;
        assert_eq!(d["attempts"], 1, "{d}");
    }
    assert_eq!(receiver.settle(Duration::from_millis(300)).await.len(), n);
}

/// A webhook paced at one a minute: lifting the limit (or making it faster)
/// lets the waiting deliveries go at once, not at the old pace's next slot.
#[tokio::test]
async fn a_changed_rate_limit_applies_at_once() {
    let server = setup().await;
    let receiver = Receiver::start().await;
    let hook = server
        .create_webhook(
            "p",
            json!({"url": receiver.url, "events": ["TEST"], "rate_limit": {"per_minute": 1}}),
        )
        .await;
    let path = format!("/v1/projects/p/webhooks/{}", hook["id"].as_str().unwrap());
    for _ in 0..4 {
        server.send_event("p", "TEST", example("TEST")).await;
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(receiver.settle(Duration::from_millis(500)).await.len(), 1);

    // Faster: the next slot is a second after the last start, not a minute.
    let (status, body) = server
        .patch(&path, json!({"rate_limit": {"per_second": 1}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let changed = Instant::now();
    receiver.wait_for(2, Duration::from_secs(5)).await;
    assert!(
        changed.elapsed() < Duration::from_secs(3),
        "{:?}",
        changed.elapsed()
    );

    // Lifted: the rest go at once.
    let (status, body) = server.patch(&path, json!({"rate_limit": null})).await;
    assert_eq!(status, 200, "{body}");
    let lifted = Instant::now();
    receiver.wait_for(4, Duration::from_secs(5)).await;
    assert!(
        lifted.elapsed() < Duration::from_secs(2),
        "{:?}",
        lifted.elapsed()
    );
}

#[tokio::test]
async fn slack_default_pace_is_one_a_second() {
    let server = setup().await;
    let slack = Receiver::start_with(|_, _| {
        let mut reply = Reply::status(200);
        reply.body = "ok".into();
        reply
    })
    .await;
    server
        .create_webhook(
            "p",
            json!({"url": slack.url, "events": ["TEST"], "format": "slack"}),
        )
        .await;
    for _ in 0..3 {
        server.send_event("p", "TEST", example("TEST")).await;
    }
    let got = slack.wait_for(3, Duration::from_secs(15)).await;
    let span = got[2].at - got[0].at;
    assert!(span >= Duration::from_millis(1600), "{span:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_holds_the_whole_lane() {
    let server = setup().await;
    let receiver = Receiver::start_with(|n, _| {
        if n == 0 {
            let mut reply = Reply::status(429);
            reply.headers.push(("retry-after", "1".into()));
            reply
        } else {
            Reply::status(200)
        }
    })
    .await;
    server
        .create_webhook(
            "p",
            json!({"url": receiver.url, "events": ["TEST"], "rate_limit": {"per_second": 10}}),
        )
        .await;
    let first = delivery_id(&server.send_event("p", "TEST", example("TEST")).await);
    let second = delivery_id(&server.send_event("p", "TEST", example("TEST")).await);
    let got = receiver.wait_for(3, Duration::from_secs(15)).await;
    // The second delivery was not the one refused, yet it waited out the hold.
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
    assert_eq!(got[1].header("webhook-id"), second);
    let d = wait_status(&server, &first, &["succeeded"]).await;
    assert_eq!(d["attempts"], 2);
    let d = wait_status(&server, &second, &["succeeded"]).await;
    assert_eq!(d["attempts"], 1);
}

#[tokio::test]
async fn rate_limits_are_validated_and_shown() {
    let server = setup().await;
    for (limit, field) in [
        (json!({"per_second": 0}), "/rate_limit/per_second"),
        (json!({"per_minute": 100000}), "/rate_limit/per_minute"),
        (json!({"per_second": 1, "per_minute": 1}), "/rate_limit"),
        (json!({}), "/rate_limit"),
        (json!({"per_hour": 1}), "/rate_limit/per_hour"),
    ] {
        let (status, answer) = server
            .post(
                "/v1/projects/p/webhooks",
                json!({"url": "https://x.example/", "events": ["*"], "rate_limit": limit}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limit}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{limit}: {answer}");
    }
    let hook = server
        .create_webhook(
            "p",
            json!({"url": "https://x.example/", "events": ["*"], "format": "discord",
                   "rate_limit": {"per_minute": 30}}),
        )
        .await;
    assert_eq!(hook["rate_limit"], json!({"per_minute": 30}));
    assert_eq!(hook["effective_rate_limit"], json!({"per_minute": 30}));
    let id = hook["id"].as_str().unwrap();
    let (_, patched) = server
        .patch(
            &format!("/v1/projects/p/webhooks/{id}"),
            json!({"rate_limit": null}),
        )
        .await;
    assert_eq!(patched["rate_limit"], Value::Null);
    assert_eq!(patched["effective_rate_limit"], json!({"per_second": 2}));
}

/// The example of docs/destinations/template.md, as documented.
#[test]
fn the_documented_template_example_renders_as_shown() {
    let catalog = Catalog::builtin();
    let input: WebhookInput = serde_json::from_value(json!({
        "url": "https://incidents.example.com/api/alerts",
        "events": ["RUN_COMPLETED", "deployment_request_failed"],
        "format": "template",
        "template": {
            "source": "mlhook",
            "severity": "{% if tone == 'bad' %}high{% else %}info{% endif %}",
            "title": "{{ title }}",
            "message": "[{{ event.type }}] {{ summary }}{% if link %} — {{ link }}{% endif %}",
            "object": "{{ object }}",
            "details": "{{ fields }}",
            "at": "{{ event.time }}"
        }
    }))
    .unwrap();
    let w = Webhook::create(input, &"fraud-team".into(), &catalog, 0).unwrap();
    let e = event(&catalog, "RUN_COMPLETED", example("RUN_COMPLETED"));
    let body: Value = serde_json::from_slice(&formats::render(&w, &e).unwrap().body).unwrap();
    assert_eq!(
        body,
        json!({"source": "mlhook", "severity": "high", "title": "Monitoring run of model test raised 2 alerts",
         "message": "[RUN_COMPLETED] The monitoring run of model test raised 2 alerts: specificity (cbpe), country (univariate_drift). — https://test.app.nannyml.com/model/1",
         "object": {"type": "model", "name": "test", "version": null},
         "details": [{"name": "Model", "value": "test (id 28740)"}, {"name": "Run started", "value": "2024-01-25T14:04:10.157236"},
                     {"name": "Alerts", "value": "specificity (cbpe), country (univariate_drift)"},
                     {"name": "Passed checks", "value": "unseen_values, missing_values"}],
         "at": "2024-01-25T12:58:34Z"})
    );
    // The documented error for a misspelt field.
    let input: WebhookInput = serde_json::from_value(json!({
        "url": "https://x.example/", "events": ["MODEL_VERSION_CREATED"], "format": "template",
        "template": {"msg": {"text": "Model {{ payload.registryModelNam }}"}}
    }))
    .unwrap();
    let errors = Webhook::create(input, &"p".into(), &catalog, 0).unwrap_err();
    assert_eq!(errors[0].field, "/template/msg/text");
    assert_eq!(
        errors[0].message,
        "line 1, column 10 (\"payload.registryModelNam\"): undefined value (unknown variable or \
         field; see docs/destinations/template.md) (rendering MODEL_VERSION_CREATED)"
    );
}

#[tokio::test]
async fn a_project_link_base_completes_relative_payload_links() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|_, _| Reply {
        body: "ok".into(),
        ..Reply::status(200)
    })
    .await;
    let (status, body) = server
        .post(
            "/v1/projects",
            json!({"id": "v", "name": "Valohai", "link_base_url": "http"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "/link_base_url");
    let (status, body) = server
        .post(
            "/v1/projects",
            json!({"id": "v", "name": "Valohai", "link_base_url": "https://app.valohai.com/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["link_base_url"], "https://app.valohai.com/");
    server
        .create_webhook(
            "v",
            json!({"url": format!("{}/slack", receiver.url), "events": ["*"], "format": "slack"}),
        )
        .await;
    server
        .send_event(
            "v",
            "execution_completed",
            json!({"project": "p-1", "body": "finished", "url": "/p/demo/x/execution/42/",
            "data": {"valohai.project-name": "demo/x", "valohai.execution-counter": 42}}),
        )
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got[0].body).to_string();
    assert!(
        text.contains("https://app.valohai.com/p/demo/x/execution/42/"),
        "{text}"
    );
    // Removing the base leaves relative links out again.
    let (status, body) = server
        .patch("/v1/projects/v", json!({"link_base_url": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["link_base_url"].is_null(), "{body}");
}
