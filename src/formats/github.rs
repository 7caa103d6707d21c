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

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::text::truncate;
use super::{Context, ExtraHeader, RenderError, Rendered, Target};
use crate::validation::{FieldError, check_url, push};

pub const API_VERSION: &str = "2022-11-28";
pub const ACCEPT: &str = "application/vnd.github+json";
/// Headers this format sets; a webhook may not configure them.
pub const SETS_HEADERS: [&str; 3] = ["authorization", "accept", "x-github-api-version"];
pub const MAX_EVENT_TYPE: usize = 100;
pub const MAX_TOP_LEVEL: usize = 10;
/// GitHub: "the payload cannot be more than 65535 characters"; we count
/// bytes (never fewer than characters) and keep a margin.
pub const MAX_CLIENT_PAYLOAD_BYTES: usize = 65_000;

/// Where a `github_dispatch` webhook sends: the repository, its token
/// (write-only, like the secret) and the API base URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubConfig {
    pub repository: String,
    pub token: String,
    pub api_url: String,
}

pub const GITHUB_API_URL: &str = "https://api.github.com";

impl GithubConfig {
    /// `{api_url}/repos/{owner}/{repo}/dispatches`.
    pub fn dispatch_url(&self) -> String {
        format!(
            "{}/repos/{}/dispatches",
            self.api_url.trim_end_matches('/'),
            self.repository
        )
    }
}

/// `github` as a client sends it; `token` may be left out on update to keep
/// the stored one.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubInput {
    pub repository: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub api_url: Option<String>,
}

/// `github` as reads show it: never the token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct GithubView {
    pub repository: String,
    pub api_url: String,
    pub has_token: bool,
}

/// A repository is `owner/name`; the token is kept when left out on update.
pub fn resolve(
    sent: Option<GithubInput>,
    kept: Option<&GithubConfig>,
    errors: &mut Vec<FieldError>,
) -> Option<GithubConfig> {
    let Some(input) = sent else {
        if kept.is_none() {
            push(
                errors,
                "/github",
                "is required for format github_dispatch: {\"repository\": \"owner/repo\", \"token\": \"…\"}",
            );
        }
        return kept.cloned();
    };
    let valid_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let repository = input.repository.trim().to_string();
    match repository.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) && repository.len() <= 200 => {
        }
        _ => push(errors, "/github/repository", "must be \"owner/repo\""),
    }
    let token = match (input.token, kept) {
        (Some(t), _) => t,
        (None, Some(k)) => k.token.clone(),
        (None, None) => {
            push(errors, "/github/token", "is required");
            String::new()
        }
    };
    if token.trim().is_empty() && !errors.iter().any(|e| e.field == "/github/token") {
        push(errors, "/github/token", "must not be empty");
    } else if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
        push(errors, "/github/token", "not a valid header value");
    }
    let api_url = match input.api_url {
        Some(raw) => {
            let checked = check_url("/github/api_url", &raw, errors);
            checked.trim_end_matches('/').to_string()
        }
        None => GITHUB_API_URL.to_string(),
    };
    Some(GithubConfig {
        repository,
        token,
        api_url,
    })
}

pub fn render(webhook: &Target, ctx: &Context) -> Result<Rendered, RenderError> {
    let github = webhook
        .settings
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
