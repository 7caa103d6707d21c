//! The webhook as reads show it: never a secret, never a protected value.

use serde::{Deserialize, Serialize};

use super::model::{Header, MlflowShape, Scope, Webhook};
use crate::formats::Format;
use crate::formats::github::GithubView;
use crate::rate_limit::RateLimit;
use crate::signing::Scheme;

impl Webhook {
    pub fn view(&self) -> WebhookView {
        WebhookView {
            id: self.id.to_string(),
            project_id: self.project_id.to_string(),
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
            mlflow_shape: self.mlflow_shape,
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
    pub mlflow_shape: MlflowShape,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}
