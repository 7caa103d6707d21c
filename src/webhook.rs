//! The webhook resource: what a client may send (`WebhookInput`, `WebhookPatch`),
//! what is stored (`Webhook`), and what the API may show (`WebhookView`).
//!
//! Secrets are kept out of the view by construction: `WebhookView` has no field
//! that could hold the secret or a protected header value.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::{Catalog, ObjectRef, pattern};
use crate::error::FieldError;
pub use crate::signing::Scheme;

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

/// The most deliveries per second or per minute a webhook is sent; more wait
/// in its lane (never dropped, never counted as failures).
/// Exactly one of the two is set (`check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, max_properties = 1)]
pub struct RateLimit {
    /// 1 to 1000 (`MAX_PER_SECOND`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::integral::option_u32"
    )]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub per_second: Option<u32>,
    /// 1 to 60000 (`MAX_PER_MINUTE`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::integral::option_u32"
    )]
    #[schema(nullable = false, minimum = 1, maximum = 60000)]
    pub per_minute: Option<u32>,
}

impl RateLimit {
    pub const MAX_PER_SECOND: u32 = 1000;
    pub const MAX_PER_MINUTE: u32 = 60_000;

    pub fn per_second(n: u32) -> RateLimit {
        RateLimit {
            per_second: Some(n),
            per_minute: None,
        }
    }

    pub fn per_minute(n: u32) -> RateLimit {
        RateLimit {
            per_second: None,
            per_minute: Some(n),
        }
    }

    /// The spacing between two sends.
    pub fn interval(&self) -> Duration {
        match (self.per_second, self.per_minute) {
            (Some(n), _) if n > 0 => Duration::from_secs(1) / n,
            (_, Some(n)) if n > 0 => Duration::from_secs(60) / n,
            _ => Duration::ZERO,
        }
    }

    fn check(&self, errors: &mut Vec<FieldError>) {
        match (self.per_second, self.per_minute) {
            (Some(n), None) if (1..=Self::MAX_PER_SECOND).contains(&n) => {}
            (None, Some(n)) if (1..=Self::MAX_PER_MINUTE).contains(&n) => {}
            (Some(_), None) => field_error(
                errors,
                "/rate_limit/per_second",
                format!("must be between 1 and {}", Self::MAX_PER_SECOND),
            ),
            (None, Some(_)) => field_error(
                errors,
                "/rate_limit/per_minute",
                format!("must be between 1 and {}", Self::MAX_PER_MINUTE),
            ),
            _ => field_error(
                errors,
                "/rate_limit",
                "must set exactly one of per_second or per_minute",
            ),
        }
    }
}

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

/// Settings only some formats have; stored as one JSON column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FormatConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubConfig>,
    /// The `template` format's JSON template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<serde_json::Value>,
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

/// What an event can be about; `prompt` and `budget_policy` come from MLflow.
pub const OBJECT_TYPES: [&str; 7] = [
    "model",
    "deployment",
    "pipeline",
    "experiment",
    "project",
    "prompt",
    "budget_policy",
];

/// Which objects' events a webhook wants; each field narrows when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Scope {
    fn matches(&self, object: Option<&ObjectRef>) -> bool {
        let wanted = [&self.object_type, &self.object_name, &self.version];
        if wanted.iter().all(|f| f.is_none()) {
            return true;
        }
        let Some(object) = object else { return false };
        let field_ok = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(w) => have == Some(w.as_str()),
        };
        field_ok(&self.object_type, Some(&object.object_type))
            && field_ok(&self.object_name, object.name.as_deref())
            && field_ok(&self.version, object.version.as_deref())
    }
}

/// A header sent with every delivery; a protected value is write-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    pub value: String,
    pub protected: bool,
}

/// The stored webhook, secrets included. Never serialised to a client.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub format: Format,
    pub events: Vec<String>,
    pub scope: Scope,
    pub headers: Vec<Header>,
    pub secret: Option<String>,
    /// The key deliveries are signed with: `whsec_…` (HMAC) or `whsk_…` (ed25519).
    pub signing_secret: String,
    /// The key before the last rotation, still signing until it expires.
    pub previous_signing: Option<PreviousSigningKey>,
    pub include_result: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The format's own settings (GitHub repository and token, template).
    pub format_config: FormatConfig,
    /// As set by the client; `None` means the format's default.
    pub rate_limit: Option<RateLimit>,
}

/// A rotated-out signing key and the end of its grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSigningKey {
    pub key: String,
    pub expires_at: i64,
}

impl Webhook {
    /// The keys that sign a request sent at `now`: the current one, and the
    /// previous one while its grace period lasts.
    pub fn signing_keys(&self, now: i64) -> impl Iterator<Item = &str> {
        let previous = self
            .previous_signing
            .as_ref()
            .filter(|p| p.expires_at > now)
            .map(|p| p.key.as_str());
        std::iter::once(self.signing_secret.as_str()).chain(previous)
    }

    pub fn signing_scheme(&self) -> Scheme {
        Scheme::of_key(&self.signing_secret)
    }

    /// Replaces the signing key with a fresh one (of `scheme`, else the same
    /// scheme); the old key keeps signing for `grace_ms`.
    pub fn rotate_signing_key(&mut self, scheme: Option<Scheme>, grace_ms: i64, now: i64) {
        let fresh = scheme.unwrap_or(self.signing_scheme()).generate();
        let old = std::mem::replace(&mut self.signing_secret, fresh);
        self.previous_signing = (grace_ms > 0).then(|| PreviousSigningKey {
            key: old,
            expires_at: now + grace_ms,
        });
        self.updated_at = now;
    }

    /// The public key receivers verify `v1a` signatures with (ed25519 only).
    pub fn signing_public_key(&self) -> Option<String> {
        crate::signing::public_key(&self.signing_secret)
            .ok()
            .flatten()
    }

    /// The pace deliveries go out at: the webhook's own, else its format's.
    pub fn effective_rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit.or_else(|| self.format.default_rate_limit())
    }

    /// Whether an event of `event_type` about `object` goes to this webhook:
    /// one of its `events` entries (names or patterns, see
    /// `catalog::pattern`) covers the type, and its scope the object.
    pub fn matches(&self, event_type: &str, object: Option<&ObjectRef>) -> bool {
        self.enabled
            && self.events.iter().any(|e| pattern::covers(e, event_type))
            && self.scope.matches(object)
    }

    pub fn view(&self) -> WebhookView {
        WebhookView {
            id: self.id.clone(),
            project_id: self.project_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            url: self.url.clone(),
            format: self.format,
            events: self.events.clone(),
            scope: self.scope.clone(),
            headers: self.headers.iter().map(HeaderView::from).collect(),
            has_secret: self.secret.is_some(),
            github: self.format_config.github.as_ref().map(|g| GithubView {
                repository: g.repository.clone(),
                api_url: g.api_url.clone(),
                has_token: !g.token.is_empty(),
            }),
            template: self.format_config.template.clone(),
            rate_limit: self.rate_limit,
            effective_rate_limit: self.effective_rate_limit(),
            signing_scheme: self.signing_scheme(),
            signing_public_key: self.signing_public_key(),
            previous_signing_key_expires_at: self
                .previous_signing
                .as_ref()
                .map(|p| crate::ids::millis_to_rfc3339(p.expires_at)),
            include_result: self.include_result,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            disabled_at: self.disabled_at.map(crate::ids::millis_to_rfc3339),
            created_at: crate::ids::millis_to_rfc3339(self.created_at),
            updated_at: crate::ids::millis_to_rfc3339(self.updated_at),
        }
    }
}

/// A header as the API shows it: the value only when not protected.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct HeaderView {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub protected: bool,
}

impl From<&Header> for HeaderView {
    fn from(h: &Header) -> Self {
        HeaderView {
            key: h.key.clone(),
            value: (!h.protected).then(|| h.value.clone()),
            protected: h.protected,
        }
    }
}

/// The webhook as every read shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub format: Format,
    pub events: Vec<String>,
    pub scope: Scope,
    pub headers: Vec<HeaderView>,
    pub has_secret: bool,
    /// `github_dispatch` only: repository and API URL; the token is never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubView>,
    /// `template` only: the JSON template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<serde_json::Value>,
    /// As set; null means the format's default.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// The pace that applies (the webhook's own or its format's default).
    #[serde(default)]
    pub effective_rate_limit: Option<RateLimit>,
    pub signing_scheme: Scheme,
    /// ed25519 only: the `whpk_` key receivers verify with (public by nature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_public_key: Option<String>,
    /// During a rotation: until when the previous key signs too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_key_expires_at: Option<String>,
    pub include_result: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A header as a client sends it; `value` may be left out on update to keep
/// the stored value of a protected header.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderInput {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub protected: bool,
}

/// `POST /v1/projects/{p}/webhooks`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "churn releases", "url": "https://hooks.example.com/ml", "events": ["MODEL_VERSION_CREATED", "MODEL_STATUS_CHANGED"], "scope": {"object_type": "model", "object_name": "churn"}, "headers": [{"key": "X-Api-Key", "value": "k-123", "protected": true}], "secret": "s3cr3t", "format": "json"}))]
pub struct WebhookInput {
    /// 1 to 200 characters, not only whitespace [default: the URL's host].
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Required except for `github_dispatch`, whose URL is derived.
    #[serde(default)]
    pub url: Option<String>,
    /// Event type names and patterns (`*` within an entry spans any run of
    /// characters: `execution_*`), or `["*"]` for every platform event.
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    /// Accept names and patterns that no known event type matches yet.
    /// Checked at save, never stored.
    #[serde(default)]
    pub allow_unknown: bool,
    #[serde(default)]
    pub scope: Option<Scope>,
    #[serde(default)]
    pub headers: Vec<HeaderInput>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub include_result: bool,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub github: Option<GithubInput>,
    #[serde(default)]
    pub template: Option<serde_json::Value>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// `hmac_sha256` (default, `v1`) or `ed25519` (`v1a`).
    #[serde(default)]
    pub signing_scheme: Scheme,
}

fn enabled_by_default() -> bool {
    true
}

/// `PATCH …/webhooks/{id}`: absent fields stay; `"secret": null` removes the secret.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// With `events`: accept names and patterns no known type matches yet.
    #[serde(default)]
    pub allow_unknown: bool,
    pub scope: Option<Scope>,
    pub headers: Option<Vec<HeaderInput>>,
    #[serde(default, deserialize_with = "present_or_null")]
    pub secret: Option<Option<String>>,
    pub include_result: Option<bool>,
    pub enabled: Option<bool>,
    pub format: Option<Format>,
    pub github: Option<GithubInput>,
    pub template: Option<serde_json::Value>,
    /// `null` returns to the format's default.
    #[serde(default, deserialize_with = "present_or_null")]
    pub rate_limit: Option<Option<RateLimit>>,
}

/// Tells "field absent" (None) from "field null" (Some(None)).
fn present_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
];
const MAX_URL_LEN: usize = 2048;

impl Webhook {
    /// Builds a new webhook from a create request, or every field error found.
    pub fn create(
        input: WebhookInput,
        project_id: &str,
        catalog: &Catalog,
        now: i64,
    ) -> Result<Webhook, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_events(&input.events, input.allow_unknown, catalog, &mut errors);
        let scope = input.scope.unwrap_or_default();
        check_scope(&scope, &mut errors);
        let headers = resolve_headers(input.headers, &[], &mut errors);
        let mut webhook = Webhook {
            id: crate::ids::new_id("wh"),
            project_id: project_id.to_string(),
            name: String::new(),
            description: input.description.unwrap_or_default(),
            url: String::new(),
            format: input.format,
            events: input.events,
            scope,
            headers,
            secret: input.secret,
            signing_secret: input.signing_scheme.generate(),
            previous_signing: None,
            include_result: input.include_result,
            enabled: input.enabled,
            disabled_reason: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            format_config: FormatConfig::default(),
            rate_limit: input.rate_limit,
        };
        let destination = Destination {
            url: input.url,
            github: input.github,
            template: input.template,
        };
        webhook.settle_destination(destination, None, catalog, &mut errors);
        webhook.name = input.name.unwrap_or_else(|| default_name(&webhook));
        check_text("/name", &webhook.name, 200, &mut errors);
        check_text_allow_empty("/description", &webhook.description, 2000, &mut errors);
        if !errors.is_empty() {
            return Err(in_field_order(errors));
        }
        Ok(webhook)
    }

    /// Applies a patch, validating the result as a whole.
    pub fn apply(
        &mut self,
        patch: WebhookPatch,
        catalog: &Catalog,
        now: i64,
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut next = self.clone();
        if let Some(events) = patch.events {
            check_events(&events, patch.allow_unknown, catalog, &mut errors);
            next.events = events;
        }
        if let Some(scope) = patch.scope {
            check_scope(&scope, &mut errors);
            next.scope = scope;
        }
        if let Some(headers) = patch.headers {
            next.headers = resolve_headers(headers, &self.headers, &mut errors);
        }
        if let Some(secret) = patch.secret {
            next.secret = secret;
        }
        if let Some(name) = patch.name {
            check_text("/name", &name, 200, &mut errors);
            next.name = name;
        }
        if let Some(description) = patch.description {
            check_text_allow_empty("/description", &description, 2000, &mut errors);
            next.description = description;
        }
        next.include_result = patch.include_result.unwrap_or(next.include_result);
        next.format = patch.format.unwrap_or(next.format);
        if let Some(rate_limit) = patch.rate_limit {
            next.rate_limit = rate_limit;
        }
        let destination = Destination {
            url: patch.url,
            github: patch.github,
            template: patch.template,
        };
        next.settle_destination(destination, Some(self), catalog, &mut errors);
        if let Some(enabled) = patch.enabled {
            next.enabled = enabled;
            if enabled {
                next.disabled_reason = None;
                next.disabled_at = None;
            }
        }
        if !errors.is_empty() {
            return Err(in_field_order(errors));
        }
        next.updated_at = now;
        *self = next;
        Ok(())
    }

    /// Works out the URL and the format's settings from what the client sent
    /// and, on update, what was stored; checks everything that depends on
    /// the format (secret, headers, template, rate limit).
    fn settle_destination(
        &mut self,
        sent: Destination,
        previous: Option<&Webhook>,
        catalog: &Catalog,
        errors: &mut Vec<FieldError>,
    ) {
        let kept = previous
            .filter(|p| p.format == self.format)
            .map(|p| p.format_config.clone())
            .unwrap_or_default();
        let mut config = FormatConfig::default();
        // GitHub: the URL is derived from the repository.
        if self.format == Format::GithubDispatch {
            config.github = resolve_github(sent.github, kept.github.as_ref(), errors);
        } else if sent.github.is_some() {
            field_error(errors, "/github", "is only for format github_dispatch");
        }
        if self.format == Format::Template {
            config.template = match sent.template {
                Some(t) => crate::formats::template::parse(t, errors),
                None => kept.template,
            };
            match &config.template {
                Some(t) => crate::formats::template::check(t, self, catalog, errors),
                None => field_error(errors, "/template", "is required for format template"),
            }
        } else if sent.template.is_some() {
            field_error(errors, "/template", "is only for format template");
        }
        match (&config.github, sent.url) {
            (Some(github), url) => {
                let derived = github.dispatch_url();
                if url.is_some_and(|u| u.trim() != derived) {
                    field_error(
                        errors,
                        "/url",
                        "is derived from github.repository and github.api_url for format \
                         github_dispatch; leave it out",
                    );
                }
                self.url = derived;
            }
            (None, Some(url)) => self.url = check_url("/url", &url, errors),
            (None, None) => {
                let was_derived = previous.is_none_or(|p| p.format == Format::GithubDispatch);
                if self.format == Format::GithubDispatch {
                    // Already reported under /github.
                } else if was_derived {
                    field_error(errors, "/url", "is required");
                }
            }
        }
        self.format_config = config;
        if let Some(rate_limit) = &self.rate_limit {
            rate_limit.check(errors);
        }
        check_secret(self.secret.as_deref(), &self.headers, errors);
        if self.format == Format::GithubDispatch {
            if self.secret.is_some() {
                field_error(
                    errors,
                    "/secret",
                    "github_dispatch sends github.token as Authorization; leave the secret out",
                );
            }
            for (i, h) in self.headers.iter().enumerate() {
                if crate::formats::github::SETS_HEADERS
                    .iter()
                    .any(|k| h.key.eq_ignore_ascii_case(k))
                {
                    field_error(
                        errors,
                        format!("/headers/{i}/key"),
                        format!("{:?} is set by the github_dispatch format", h.key),
                    );
                }
            }
        }
    }
}

/// The fields that together say where and how a webhook delivers.
struct Destination {
    url: Option<String>,
    github: Option<GithubInput>,
    template: Option<serde_json::Value>,
}

/// A repository is `owner/name`; the token is kept when left out on update.
fn resolve_github(
    sent: Option<GithubInput>,
    kept: Option<&GithubConfig>,
    errors: &mut Vec<FieldError>,
) -> Option<GithubConfig> {
    let Some(input) = sent else {
        if kept.is_none() {
            field_error(
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
        _ => field_error(errors, "/github/repository", "must be \"owner/repo\""),
    }
    let token = match (input.token, kept) {
        (Some(t), _) => t,
        (None, Some(k)) => k.token.clone(),
        (None, None) => {
            field_error(errors, "/github/token", "is required");
            String::new()
        }
    };
    if token.trim().is_empty() && !errors.iter().any(|e| e.field == "/github/token") {
        field_error(errors, "/github/token", "must not be empty");
    } else if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
        field_error(errors, "/github/token", "not a valid header value");
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

/// Errors in the order the fields are documented (stable within a field).
fn in_field_order(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    const ORDER: [&str; 11] = [
        "url",
        "events",
        "scope",
        "headers",
        "secret",
        "format",
        "github",
        "template",
        "rate_limit",
        "name",
        "description",
    ];
    let rank = |e: &FieldError| {
        let top = e
            .field
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        ORDER.iter().position(|k| *k == top).unwrap_or(ORDER.len())
    };
    errors.sort_by_key(rank);
    errors
}

fn field_error(errors: &mut Vec<FieldError>, field: impl Into<String>, message: impl Into<String>) {
    errors.push(FieldError {
        field: field.into(),
        message: message.into(),
    });
}

/// A destination must be an absolute http(s) URL with a host and no credentials.
fn check_url(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let mut fail = |m: &str| field_error(errors, field, m);
    if raw.len() > MAX_URL_LEN {
        fail("must be at most 2048 characters");
        return raw.to_string();
    }
    match url::Url::parse(raw.trim()) {
        Err(e) => fail(&format!("not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => fail("scheme must be http or https"),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => fail("must name a host"),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            fail("must not hold credentials; send them in a header or the secret")
        }
        Ok(u) => return u.to_string(),
    }
    raw.to_string()
}

fn check_events(
    events: &[String],
    allow_unknown: bool,
    catalog: &Catalog,
    errors: &mut Vec<FieldError>,
) {
    if events.is_empty() {
        field_error(
            errors,
            "/events",
            "must list at least one event type or pattern, or \"*\"",
        );
    }
    for (i, e) in events.iter().enumerate() {
        let problem = match pattern::check_syntax(e) {
            Err(syntax) => Some(syntax),
            Ok(()) if allow_unknown || catalog.covered_by(e).next().is_some() => None,
            Ok(()) if pattern::is_pattern(e) => Some(format!(
                "the pattern {e:?} matches no known event type (set allow_unknown to keep it)"
            )),
            Ok(()) => Some(format!(
                "unknown event type {e:?} (set allow_unknown to keep it)"
            )),
        };
        if let Some(message) = problem {
            field_error(errors, format!("/events/{i}"), message);
        }
    }
}

fn check_scope(scope: &Scope, errors: &mut Vec<FieldError>) {
    if let Some(t) = &scope.object_type
        && !OBJECT_TYPES.contains(&t.as_str())
    {
        field_error(
            errors,
            "/scope/object_type",
            format!("must be one of {}", OBJECT_TYPES.join(", ")),
        );
    }
    if scope.object_type.is_none() && (scope.object_name.is_some() || scope.version.is_some()) {
        field_error(
            errors,
            "/scope/object_type",
            "is required when object_name or version is set",
        );
    }
}

/// Validates header rows; a protected row without a value keeps the value it
/// had in `previous` (so an editor never needs to know the secret to keep it).
fn resolve_headers(
    input: Vec<HeaderInput>,
    previous: &[Header],
    errors: &mut Vec<FieldError>,
) -> Vec<Header> {
    let mut seen = std::collections::HashSet::new();
    let mut headers = Vec::with_capacity(input.len());
    for (i, h) in input.into_iter().enumerate() {
        let field = format!("/headers/{i}");
        let lower = h.key.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(h.key.as_bytes()).is_err() {
            field_error(errors, format!("{field}/key"), "not a valid header name");
        } else if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            field_error(
                errors,
                format!("{field}/key"),
                format!("{:?} is set by mlhook and cannot be configured", h.key),
            );
        } else if !seen.insert(lower.clone()) {
            field_error(
                errors,
                format!("{field}/key"),
                format!("duplicate header {:?}", h.key),
            );
        }
        let kept = previous
            .iter()
            .find(|p| p.protected && p.key.eq_ignore_ascii_case(&h.key));
        let value = match (h.value, kept) {
            (Some(v), _) => v,
            (None, Some(p)) if h.protected => p.value.clone(),
            (None, _) => {
                field_error(errors, format!("{field}/value"), "is required");
                continue;
            }
        };
        if reqwest::header::HeaderValue::from_str(&value).is_err() {
            field_error(errors, format!("{field}/value"), "not a valid header value");
        }
        headers.push(Header {
            key: h.key,
            value,
            protected: h.protected,
        });
    }
    headers
}

/// The secret travels as the Authorization header, so it cannot share it.
fn check_secret(secret: Option<&str>, headers: &[Header], errors: &mut Vec<FieldError>) {
    let Some(secret) = secret else { return };
    if reqwest::header::HeaderValue::from_str(secret).is_err() || secret.is_empty() {
        field_error(errors, "/secret", "must be a non-empty header value");
    }
    if let Some(i) = headers
        .iter()
        .position(|h| h.key.eq_ignore_ascii_case("authorization"))
    {
        field_error(
            errors,
            format!("/headers/{i}/key"),
            "Authorization is already sent as the secret",
        );
    }
}

fn check_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        field_error(errors, field, "must not be empty");
    }
    check_text_allow_empty(field, value, max, errors);
}

fn check_text_allow_empty(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.chars().count() > max {
        field_error(errors, field, format!("must be at most {max} characters"));
    }
}

/// The URL's host; a GitHub webhook's repository.
fn default_name(webhook: &Webhook) -> String {
    if let Some(github) = &webhook.format_config.github {
        return github.repository.clone();
    }
    url::Url::parse(&webhook.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "webhook".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> WebhookInput {
        serde_json::from_value(json).unwrap()
    }

    fn create(json: serde_json::Value) -> Result<Webhook, Vec<FieldError>> {
        Webhook::create(input(json), "p", &Catalog::builtin(), 0)
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn valid_webhook_gets_defaults_and_a_signing_secret() {
        let w =
            create(serde_json::json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})).unwrap();
        assert_eq!(w.name, "127.0.0.1");
        assert!(w.enabled);
        assert!(w.signing_secret.starts_with("whsec_"));
        assert_eq!(w.format, Format::Json);
    }

    #[test]
    fn bad_fields_are_each_named() {
        let errors = create(serde_json::json!({
            "url": "ftp://x", "events": ["NOPE"],
            "scope": {"object_type": "galaxy"},
            "headers": [{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}, {"key": "Webhook-Id", "value": "3"}]
        }))
        .unwrap_err();
        assert_eq!(
            fields(errors),
            [
                "/url",
                "/events/0",
                "/scope/object_type",
                "/headers/1/key",
                "/headers/2/key"
            ]
        );
    }

    #[test]
    fn empty_events_and_credentials_in_url_are_refused() {
        let errors =
            create(serde_json::json!({"url": "http://u:p@h/x", "events": []})).unwrap_err();
        assert_eq!(fields(errors), ["/url", "/events"]);
    }

    #[test]
    fn view_hides_protected_values_and_secret() {
        let w = create(serde_json::json!({
            "url": "http://h/x", "events": ["*"], "secret": "s3cr3t",
            "headers": [{"key": "X-Token", "value": "hidden", "protected": true}, {"key": "X-Team", "value": "ml"}]
        }))
        .unwrap();
        let shown = serde_json::to_string(&w.view()).unwrap();
        assert!(
            !shown.contains("hidden")
                && !shown.contains("s3cr3t")
                && !shown.contains(&w.signing_secret)
        );
        assert!(shown.contains("\"has_secret\":true") && shown.contains("\"value\":\"ml\""));
    }

    #[test]
    fn github_token_is_write_only_and_kept_on_update() {
        let catalog = Catalog::builtin();
        let mut w = create(serde_json::json!({
            "events": ["*"], "format": "github_dispatch",
            "github": {"repository": "acme/ml", "token": "ghp_hidden"}
        }))
        .unwrap();
        assert_eq!(w.url, "https://api.github.com/repos/acme/ml/dispatches");
        assert_eq!(w.name, "acme/ml");
        let shown = serde_json::to_string(&w.view()).unwrap();
        assert!(!shown.contains("ghp_hidden"), "{shown}");
        assert!(shown.contains(r#""has_token":true"#), "{shown}");
        let patch: WebhookPatch = serde_json::from_value(serde_json::json!({
            "github": {"repository": "acme/other", "api_url": "https://ghe.example/api/v3/"}
        }))
        .unwrap();
        w.apply(patch, &catalog, 1).unwrap();
        let github = w.format_config.github.as_ref().unwrap();
        assert_eq!(github.token, "ghp_hidden");
        assert_eq!(
            w.url,
            "https://ghe.example/api/v3/repos/acme/other/dispatches"
        );
        // Leaving the format drops its settings, token included, and needs a URL.
        let patch: WebhookPatch =
            serde_json::from_value(serde_json::json!({"format": "slack"})).unwrap();
        assert_eq!(fields(w.apply(patch, &catalog, 2).unwrap_err()), ["/url"]);
        let patch: WebhookPatch = serde_json::from_value(
            serde_json::json!({"format": "slack", "url": "https://hooks.slack.com/services/x"}),
        )
        .unwrap();
        w.apply(patch, &catalog, 3).unwrap();
        assert_eq!(w.format_config, FormatConfig::default());
        assert_eq!(w.effective_rate_limit(), Some(RateLimit::per_second(1)));
    }

    #[test]
    fn format_settings_belong_to_their_format() {
        let errors = create(serde_json::json!({
            "url": "http://h/x", "events": ["*"],
            "github": {"repository": "a/b", "token": "t"}, "template": {"a": 1}
        }))
        .unwrap_err();
        assert_eq!(fields(errors), ["/github", "/template"]);
        let errors = create(serde_json::json!({
            "url": "http://h/x", "events": ["*"], "format": "template"
        }))
        .unwrap_err();
        assert_eq!(fields(errors), ["/template"]);
        let errors = create(serde_json::json!({"events": ["*"], "format": "slack"})).unwrap_err();
        assert_eq!(fields(errors), ["/url"]);
    }

    #[test]
    fn patch_keeps_protected_value_when_left_out_and_null_removes_secret() {
        let catalog = Catalog::builtin();
        let mut w = create(serde_json::json!({
            "url": "http://h/x", "events": ["*"], "secret": "s",
            "headers": [{"key": "X-Token", "value": "hidden", "protected": true}]
        }))
        .unwrap();
        let patch: WebhookPatch = serde_json::from_value(serde_json::json!({
            "headers": [{"key": "X-Token", "protected": true}], "secret": null
        }))
        .unwrap();
        w.apply(patch, &catalog, 5).unwrap();
        assert_eq!(w.headers[0].value, "hidden");
        assert_eq!(w.secret, None);
        assert_eq!(w.updated_at, 5);
    }

    #[test]
    fn scope_narrows_by_each_field_set() {
        let mut w = create(
            serde_json::json!({"url": "http://h/x", "events": ["MODEL_VERSION_CREATED"],
            "scope": {"object_type": "model", "object_name": "churn"}}),
        )
        .unwrap();
        let churn = ObjectRef {
            object_type: "model".into(),
            name: Some("churn".into()),
            version: Some("3".into()),
        };
        let other = ObjectRef {
            name: Some("fraud".into()),
            ..churn.clone()
        };
        assert!(w.matches("MODEL_VERSION_CREATED", Some(&churn)));
        assert!(!w.matches("MODEL_VERSION_CREATED", Some(&other)));
        assert!(!w.matches("MODEL_VERSION_DELETED", Some(&churn)));
        assert!(!w.matches("MODEL_VERSION_CREATED", None));
        w.enabled = false;
        assert!(!w.matches("MODEL_VERSION_CREATED", Some(&churn)));
    }
}
