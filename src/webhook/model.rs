//! The stored webhook: where it sends, which events it wants, how it signs.

use serde::{Deserialize, Serialize};

use crate::catalog::{ObjectRef, pattern};
use crate::formats::{self, Format, FormatConfig};
use crate::ids::{ProjectId, WebhookId};
use crate::rate_limit::RateLimit;
use crate::signing::Scheme;

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

/// Which shape of an MLflow change a webhook gets when it listens to both:
/// MLflow's own event (`mlflow.*`), its Comet-shaped twin
/// (`MODEL_VERSION_CREATED`, `MODEL_TAG_CHANGED`), or both. One by default,
/// so that `"events": ["*"]` posts one chat message per change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MlflowShape {
    #[default]
    Native,
    Comet,
    Both,
}

impl MlflowShape {
    pub const ALL: [MlflowShape; 3] = [MlflowShape::Native, MlflowShape::Comet, MlflowShape::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            MlflowShape::Native => "native",
            MlflowShape::Comet => "comet",
            MlflowShape::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<MlflowShape> {
        MlflowShape::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether a webhook with this choice keeps the delivery of an MLflow
    /// change's native event (`native`) or of its Comet twin, when it has both.
    pub fn keeps(self, native: bool) -> bool {
        match self {
            MlflowShape::Both => true,
            MlflowShape::Native => native,
            MlflowShape::Comet => !native,
        }
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
    pub id: WebhookId,
    pub project_id: ProjectId,
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
    pub mlflow_shape: MlflowShape,
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

    /// What the webhook's format renders with.
    pub fn target(&self) -> formats::Target<'_> {
        formats::Target {
            webhook_id: &self.id,
            webhook_name: &self.name,
            format: self.format,
            include_result: self.include_result,
            settings: &self.format_config,
        }
    }
}

impl<'a> From<&'a Webhook> for formats::Target<'a> {
    fn from(webhook: &'a Webhook) -> Self {
        webhook.target()
    }
}
