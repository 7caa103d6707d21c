//! What a client sends to create (`WebhookInput`) or change (`WebhookPatch`)
//! a webhook, before validation.

use serde::Deserialize;

use super::model::{MlflowShape, Scope};
use crate::formats::Format;
use crate::formats::github::GithubInput;
use crate::rate_limit::RateLimit;
use crate::signing::Scheme;

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
    #[schema(schema_with = crate::validation::json_value_schema)]
    pub template: Option<serde_json::Value>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// `hmac_sha256` (default, `v1`) or `ed25519` (`v1a`).
    #[serde(default)]
    pub signing_scheme: Scheme,
    /// For MLflow's changes, when the webhook listens to both: the native
    /// event, its Comet-shaped twin, or both [default: native].
    #[serde(default)]
    pub mlflow_shape: MlflowShape,
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
    #[schema(min_items = 1)]
    pub events: Option<Vec<String>>,
    /// With `events`: accept names and patterns no known type matches yet.
    #[serde(default)]
    pub allow_unknown: bool,
    pub scope: Option<Scope>,
    pub headers: Option<Vec<HeaderInput>>,
    #[serde(default, deserialize_with = "crate::validation::present_or_null")]
    pub secret: Option<Option<String>>,
    pub include_result: Option<bool>,
    pub enabled: Option<bool>,
    pub format: Option<Format>,
    pub github: Option<GithubInput>,
    #[schema(schema_with = crate::validation::json_value_schema)]
    pub template: Option<serde_json::Value>,
    /// `null` returns to the format's default.
    #[serde(default, deserialize_with = "crate::validation::present_or_null")]
    pub rate_limit: Option<Option<RateLimit>>,
    pub mlflow_shape: Option<MlflowShape>,
}
