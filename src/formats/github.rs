//! `github_dispatch`: a `repository_dispatch` request that starts GitHub
//! Actions workflows (`on: repository_dispatch: types: [<event type>]`).
//!
//! `POST {api_url}/repos/{owner}/{repo}/dispatches` with
//! `Accept: application/vnd.github+json`, `Authorization: Bearer <token>`
//! (masked in the log) and `X-GitHub-Api-Version: 2022-11-28`; the body is
//! `{"event_type": <event type, ≤ 100 chars>, "client_payload": {...}}`.
//!
//! GitHub rejects a `client_payload` with more than 10 top-level properties
//! or over 65,535 characters. Ours has at most 9 whatever the payload (the
//! payload is nested under `payload`), and when it would be too large the
//! payload's long strings and arrays are cut, step by step, until it fits
//! (`"truncated": true` says so). GitHub answers 204.

use serde_json::{Map, Value, json};

use super::text::truncate;
use super::{Context, ExtraHeader, RenderError, Rendered};
use crate::webhook::Webhook;

pub const API_VERSION: &str = "2022-11-28";
pub const ACCEPT: &str = "application/vnd.github+json";
/// Headers this format sets; a webhook may not configure them.
pub const SETS_HEADERS: [&str; 3] = ["authorization", "accept", "x-github-api-version"];
pub const MAX_EVENT_TYPE: usize = 100;
pub const MAX_TOP_LEVEL: usize = 10;
/// GitHub: "the payload cannot be more than 65535 characters"; we count
/// bytes (never fewer than characters) and keep a margin.
pub const MAX_CLIENT_PAYLOAD_BYTES: usize = 65_000;

pub fn render(webhook: &Webhook, ctx: &Context) -> Result<Rendered, RenderError> {
    let github = webhook
        .format_config
        .github
        .as_ref()
        .ok_or(RenderError::MissingConfig("github"))?;
    let mut rendered = Rendered::json(&body(ctx));
    rendered.url = Some(github.dispatch_url());
    rendered.headers = vec![
        ExtraHeader {
            name: "accept",
            value: ACCEPT.to_string(),
            secret: false,
        },
        ExtraHeader {
            name: "authorization",
            value: format!("Bearer {}", github.token),
            secret: true,
        },
        ExtraHeader {
            name: "x-github-api-version",
            value: API_VERSION.to_string(),
            secret: false,
        },
    ];
    Ok(rendered)
}

pub fn body(ctx: &Context) -> Value {
    json!({
        "event_type": truncate(&ctx.event_type, MAX_EVENT_TYPE),
        "client_payload": client_payload(ctx),
    })
}

fn client_payload(ctx: &Context) -> Value {
    let d = &ctx.description;
    let mut base = Map::new();
    base.insert("event_id".into(), json!(ctx.event_id));
    base.insert("event_type".into(), json!(ctx.event_type));
    base.insert("project".into(), json!(truncate(&ctx.project_id, 200)));
    base.insert("time".into(), json!(ctx.time_text()));
    base.insert("title".into(), json!(truncate(&d.title, 1000)));
    base.insert("summary".into(), json!(truncate(&d.summary_text(), 2000)));
    if let Some(link) = &d.link {
        base.insert("link".into(), json!(truncate(link, 2000)));
    }
    let with = |payload: Value, truncated: bool| {
        let mut fields = base.clone();
        fields.insert("payload".into(), payload);
        if truncated {
            fields.insert("truncated".into(), json!(true));
        }
        Value::Object(fields)
    };
    let fits = |v: &Value| serde_json::to_vec(v).is_ok_and(|b| b.len() <= MAX_CLIENT_PAYLOAD_BYTES);
    let whole = with(ctx.payload.clone(), false);
    if fits(&whole) {
        return whole;
    }
    // Cut long strings and long arrays/objects harder until it fits.
    let (mut max_string, mut max_items) = (8192usize, 256usize);
    while max_string > 8 {
        let cut = with(shrink(&ctx.payload, max_string, max_items), true);
        if fits(&cut) {
            return cut;
        }
        max_string /= 2;
        max_items = (max_items / 2).max(1);
    }
    with(Value::Null, true)
}

/// `value` with strings cut to `max_string` characters and arrays and
/// objects to their first `max_items` entries.
fn shrink(value: &Value, max_string: usize, max_items: usize) -> Value {
    match value {
        Value::String(s) => Value::String(truncate(s, max_string)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .take(max_items)
                .map(|v| shrink(v, max_string, max_items))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .take(max_items)
                .map(|(k, v)| (truncate(k, max_string), shrink(v, max_string, max_items)))
                .collect(),
        ),
        other => other.clone(),
    }
}
