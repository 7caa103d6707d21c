//! What a delivery's body looks like at its destination. Each format renders
//! an event for a webhook; signing, headers, retries and the log are the same
//! for all of them.
//!
//! The one interface: [`render`] answers a [`Rendered`] — the body and its
//! content type, optionally a URL that replaces the webhook's and headers the
//! format adds (each flagged when secret, so the log masks it), and how to
//! judge the receiver's answer ([`Acceptance`]). [`registry`] lists the
//! formats with their settings, for a console's form.
//!
//! | format | body | module |
//! |---|---|---|
//! | `json` | the vendor's payload, verbatim | [`json`] |
//! | `slack` | an incoming-webhook message with Block Kit blocks | [`slack`] |
//! | `teams` | a Workflows message with an Adaptive Card 1.4 | [`teams`] |
//! | `discord` | an execute-webhook message with one embed | [`discord`] |
//! | `github_dispatch` | a `repository_dispatch` request | [`github`] |
//! | `template` | the webhook's own JSON template, filled in | [`template`] |

pub mod discord;
pub mod github;
pub mod json;
pub mod slack;
pub mod teams;
pub mod template;
mod text;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, Description, Family, ObjectRef};
use crate::ids::{EventId, ProjectId};
use crate::rate_limit::RateLimit;

pub use text::units;

/// How the body of a delivery is rendered; see `formats` for each one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Slack,
    Teams,
    Discord,
    GithubDispatch,
    Template,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Json,
        Format::Slack,
        Format::Teams,
        Format::Discord,
        Format::GithubDispatch,
        Format::Template,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Teams => "teams",
            Format::Discord => "discord",
            Format::GithubDispatch => "github_dispatch",
            Format::Template => "template",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// A message for people in a chat channel, not a body for a program.
    pub fn is_chat(self) -> bool {
        matches!(self, Format::Slack | Format::Teams | Format::Discord)
    }

    /// The provider's documented pace, used when a webhook sets no `rate_limit`.
    pub fn default_rate_limit(self) -> Option<RateLimit> {
        match self {
            // Slack: about one message per second per incoming webhook.
            Format::Slack => Some(RateLimit::per_second(1)),
            // Discord: 5 requests per 2 seconds per webhook.
            Format::Discord => Some(RateLimit::per_second(2)),
            // Teams: 4 requests per second per connector/workflow.
            Format::Teams => Some(RateLimit::per_second(4)),
            Format::Json | Format::GithubDispatch | Format::Template => None,
        }
    }
}

/// Settings only some formats have; stored as one JSON column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FormatConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<github::GithubConfig>,
    /// The `template` format's JSON template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<serde_json::Value>,
}

/// What a format needs to know about the webhook it renders for; a webhook
/// gives it with `Target::from(&webhook)`.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub webhook_id: &'a str,
    pub webhook_name: &'a str,
    pub format: Format,
    /// The request family's `result` goes out (see [`json`]).
    pub include_result: bool,
    pub settings: &'a FormatConfig,
}

/// The event as the delivery path sees it: shared by every delivery of it.
#[derive(Debug)]
pub struct EventData {
    pub id: EventId,
    pub project_id: ProjectId,
    pub event_type: String,
    pub family: Option<Family>,
    /// The normalised payload, compact JSON.
    pub payload: String,
    /// The project's base for relative links in the payload, if it set one.
    pub link_base: Option<String>,
}

impl EventData {
    /// The one constructor: ingest builds it for a new event, the engine for
    /// a stored one (a claim, a replay, a redeliver) and for a test.
    pub fn new(
        id: EventId,
        project_id: ProjectId,
        event_type: String,
        payload: String,
        family: Option<Family>,
        link_base: Option<String>,
    ) -> EventData {
        EventData {
            id,
            project_id,
            event_type,
            family,
            payload,
            link_base,
        }
    }

    /// When the event was accepted: the time in its UUIDv7 id (`evt_<hex>`);
    /// `None` for an id of another shape.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        let hex = self.id.rsplit('_').next()?;
        let millis = i64::from_str_radix(hex.get(..12)?, 16).ok()?;
        DateTime::from_timestamp_millis(millis)
    }
}

/// A header a format adds; a secret one reads `********` in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    pub name: &'static str,
    pub value: String,
    pub secret: bool,
}

/// How the receiver's answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// Any 2xx.
    Success,
    /// Slack incoming webhooks: 200 with the body `ok`; anything else
    /// (`invalid_payload`, `no_text`, a 2xx other than 200…) failed.
    SlackOk,
}

impl Acceptance {
    /// `Err` with the reason when a 2xx answer is not a success for this
    /// destination; non-2xx answers are failures before this is asked.
    pub fn judge(self, status: u16, body: &str) -> Result<(), String> {
        match self {
            Acceptance::Success => Ok(()),
            Acceptance::SlackOk if status == 200 && body.trim() == "ok" => Ok(()),
            Acceptance::SlackOk => {
                let shown: String = body.trim().chars().take(200).collect();
                Err(format!(
                    "Slack answered {status} with body {shown:?}, not 200 \"ok\""
                ))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub content_type: &'static str,
    /// Sent here instead of the webhook's `url` (GitHub derives its own).
    pub url: Option<String>,
    pub headers: Vec<ExtraHeader>,
    pub accept: Acceptance,
}

impl Rendered {
    fn json(body: &Value) -> Rendered {
        Rendered {
            body: Bytes::from(serde_json::to_vec(body).expect("a JSON value always serialises")),
            content_type: "application/json",
            url: None,
            headers: Vec::new(),
            accept: Acceptance::Success,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("stored payload is not valid JSON: {0}")]
    BadPayload(#[from] serde_json::Error),
    #[error("the webhook's {0} settings are missing")]
    MissingConfig(&'static str),
    #[error("template: {0}")]
    Template(String),
}

/// Renders `event` in the webhook's format.
pub fn render<'a>(
    webhook: impl Into<Target<'a>>,
    event: &EventData,
) -> Result<Rendered, RenderError> {
    let target = webhook.into();
    match target.format {
        Format::Json => json::render(&target, event),
        Format::Slack => Ok(slack::render(&Context::new(&target, event)?)),
        Format::Teams => Ok(teams::render(&Context::new(&target, event)?)),
        Format::Discord => Ok(discord::render(&Context::new(&target, event)?)),
        Format::GithubDispatch => github::render(&target, &Context::new(&target, event)?),
        Format::Template => template::render(&target, &Context::new(&target, event)?),
    }
}

/// What every format but `json` works from.
#[derive(Debug, Clone)]
pub struct Context {
    pub event_id: String,
    pub event_type: String,
    pub family: Option<Family>,
    pub project_id: String,
    pub time: DateTime<Utc>,
    /// The payload as the `json` format would send it (UbiOps `result`
    /// only when asked for and small).
    pub payload: Value,
    pub object: Option<ObjectRef>,
    pub description: Description,
    pub webhook_id: String,
    pub webhook_name: String,
}

impl Context {
    pub fn new(webhook: &Target, event: &EventData) -> Result<Context, RenderError> {
        let payload: Value = serde_json::from_slice(&json::render(webhook, event)?.body)?;
        Ok(Context::from_parts(webhook, event, payload))
    }

    fn from_parts(webhook: &Target, event: &EventData, payload: Value) -> Context {
        let catalog = Catalog::global();
        let mut description = catalog.describe(&event.event_type, &event.project_id, &payload);
        if description.link.is_none() {
            description.link =
                relative_link(&payload)
                    .zip(event.link_base.as_deref())
                    .map(|(path, base)| {
                        format!(
                            "{}/{}",
                            base.trim_end_matches('/'),
                            path.trim_start_matches('/')
                        )
                    });
        }
        Context {
            event_id: event.id.to_string(),
            event_type: event.event_type.clone(),
            family: event.family,
            project_id: event.project_id.to_string(),
            time: event.time().unwrap_or_else(Utc::now),
            object: catalog.object_of(&event.event_type, &payload),
            payload,
            description,
            webhook_id: webhook.webhook_id.to_string(),
            webhook_name: webhook.webhook_name.to_string(),
        }
    }

    /// `2024-01-25T14:04:10Z`: seconds, UTC, as every chat format accepts.
    pub fn time_text(&self) -> String {
        self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// A link the payload gives relative to the vendor's site (Valohai's `url`,
/// a relative NannyML `report_link`), for the project's base URL to complete.
fn relative_link(payload: &Value) -> Option<&str> {
    let candidates = [payload.get("url"), payload.pointer("/payload/report_link")];
    candidates
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|link| link.starts_with('/'))
}

/// One setting of a format, for a console's form.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigField {
    /// Where it goes in the webhook, as a JSON pointer.
    pub pointer: &'static str,
    /// string, url, json
    pub kind: &'static str,
    pub required: bool,
    /// Write-only: never shown by a read, masked in the log.
    pub secret: bool,
    pub description: &'static str,
}

/// A format as the registry lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FormatInfo {
    pub format: Format,
    pub title: &'static str,
    pub description: &'static str,
    /// `required`, or `derived` (from the format's settings).
    pub url: &'static str,
    pub success: &'static str,
    pub default_rate_limit: Option<RateLimit>,
    pub fields: Vec<ConfigField>,
    pub docs: &'static str,
}

/// Every format, with what a webhook of it needs.
pub fn registry() -> Vec<FormatInfo> {
    Format::ALL.into_iter().map(info).collect()
}

fn info(format: Format) -> FormatInfo {
    let url_field = |description| ConfigField {
        pointer: "/url",
        kind: "url",
        required: true,
        secret: false,
        description,
    };
    let (title, description, success, fields, docs) = match format {
        Format::Json => (
            "JSON",
            "The event payload exactly as the vendor documents it.",
            "any 2xx",
            vec![url_field("The receiver's URL.")],
            "docs/destinations/json.md",
        ),
        Format::Slack => (
            "Slack",
            "A Slack incoming-webhook message: header, summary with links, key fields, context.",
            "200 with body ok",
            vec![url_field(
                "The incoming webhook URL (https://hooks.slack.com/services/…); it is a credential.",
            )],
            "docs/destinations/slack.md",
        ),
        Format::Teams => (
            "Microsoft Teams",
            "A Teams Workflows message holding an Adaptive Card 1.4.",
            "any 2xx (Workflows answer 202)",
            vec![url_field(
                "The URL of a Teams workflow started by \"When a Teams webhook request is received\".",
            )],
            "docs/destinations/teams.md",
        ),
        Format::Discord => (
            "Discord",
            "A Discord webhook message with one embed; mentions are never pinged.",
            "any 2xx (Discord answers 204)",
            vec![url_field(
                "The channel webhook URL (https://discord.com/api/webhooks/…).",
            )],
            "docs/destinations/discord.md",
        ),
        Format::GithubDispatch => (
            "GitHub Actions (repository_dispatch)",
            "Starts GitHub Actions workflows that listen to repository_dispatch.",
            "204 (any 2xx)",
            vec![
                ConfigField {
                    pointer: "/github/repository",
                    kind: "string",
                    required: true,
                    secret: false,
                    description: "owner/repo",
                },
                ConfigField {
                    pointer: "/github/token",
                    kind: "string",
                    required: true,
                    secret: true,
                    description: "A token allowed to write the repository's contents \
                                  (fine-grained: Contents read and write).",
                },
                ConfigField {
                    pointer: "/github/api_url",
                    kind: "url",
                    required: false,
                    secret: false,
                    description: "The API base URL; default https://api.github.com \
                                  (GitHub Enterprise: https://HOST/api/v3).",
                },
            ],
            "docs/destinations/github.md",
        ),
        Format::Template => (
            "Custom JSON template",
            "The webhook's own JSON document with {{ placeholders }} filled in.",
            "any 2xx",
            vec![
                url_field("The receiver's URL."),
                ConfigField {
                    pointer: "/template",
                    kind: "json",
                    required: true,
                    secret: false,
                    description: "A JSON object or array (or its text) whose strings may hold \
                                  {{ event.type }}, {{ payload.… }}, {{ summary }}, …",
                },
            ],
            "docs/destinations/template.md",
        ),
    };
    FormatInfo {
        format,
        title,
        description,
        url: if format == Format::GithubDispatch {
            "derived"
        } else {
            "required"
        },
        success,
        default_rate_limit: format.default_rate_limit(),
        fields,
        docs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_comes_from_the_uuid7_id() {
        let event = EventData {
            id: "evt_018d40a1b2c37000800000000000beef".into(),
            project_id: "p".into(),
            event_type: "TEST".into(),
            family: None,
            payload: "{}".into(),
            link_base: None,
        };
        assert_eq!(
            event.time().unwrap().timestamp_millis(),
            0x018d40a1b2c3,
            "{:?}",
            event.time()
        );
        let odd = EventData {
            id: "nope".into(),
            ..event
        };
        assert!(odd.time().is_none());
    }

    #[test]
    fn slack_acceptance_needs_200_ok() {
        let a = Acceptance::SlackOk;
        assert!(a.judge(200, "ok").is_ok());
        assert!(a.judge(200, "ok\n").is_ok());
        assert!(a.judge(200, "invalid_payload").is_err());
        assert!(a.judge(204, "").is_err());
        assert!(Acceptance::Success.judge(204, "").is_ok());
    }

    #[test]
    fn registry_lists_every_format_once() {
        let listed: Vec<Format> = registry().iter().map(|f| f.format).collect();
        assert_eq!(listed, Format::ALL);
        let github = info(Format::GithubDispatch);
        assert_eq!(github.url, "derived");
        assert!(
            github
                .fields
                .iter()
                .any(|f| f.pointer == "/github/token" && f.secret)
        );
        let shown = serde_json::to_value(registry()).unwrap();
        assert_eq!(shown[1]["format"], "slack");
        assert_eq!(shown[1]["default_rate_limit"]["per_second"], 1);
    }
}
