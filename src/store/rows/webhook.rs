//! A webhook as its row holds it: secrets still sealed (`sealed` opens them),
//! JSON columns read in place and parsed.

use super::super::StoreError;
use super::{from_json, parse_name};
use crate::ids::{ProjectId, WebhookId};
use crate::webhook::{Format, MlflowShape, PreviousSigningKey, Webhook};

/// The columns `Shared::bind_webhook` binds, in its order ($1 … $22).
pub(super) const WEBHOOK_COLUMNS: &str = "id, project_id, name, description, url, format, events, scope, headers, secret, \
     signing_secret, include_result, enabled, disabled_reason, disabled_at, created_at, updated_at, \
     format_config, rate_limit, previous_signing_secret, previous_signing_expires_at, mlflow_shape";
pub(super) const WEBHOOK_VALUES: &str =
    "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22";

#[derive(sqlx::FromRow)]
pub(in crate::store) struct WebhookColumns<'r> {
    id: WebhookId,
    project_id: ProjectId,
    name: String,
    description: String,
    url: String,
    format: &'r str,
    events: &'r str,
    scope: &'r str,
    headers: &'r str,
    secret: Option<String>,
    signing_secret: String,
    include_result: bool,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    format_config: &'r str,
    rate_limit: Option<&'r str>,
    previous_signing_secret: Option<String>,
    previous_signing_expires_at: Option<i64>,
    mlflow_shape: &'r str,
}

impl TryFrom<WebhookColumns<'_>> for Webhook {
    type Error = StoreError;

    fn try_from(c: WebhookColumns<'_>) -> Result<Self, StoreError> {
        let previous_signing = c
            .previous_signing_secret
            .zip(c.previous_signing_expires_at)
            .map(|(key, expires_at)| PreviousSigningKey { key, expires_at });
        Ok(Webhook {
            id: c.id,
            project_id: c.project_id,
            name: c.name,
            description: c.description,
            url: c.url,
            format: parse_name("format", c.format, Format::parse)?,
            events: from_json("events", c.events)?,
            scope: from_json("scope", c.scope)?,
            headers: from_json("headers", c.headers)?,
            secret: c.secret,
            signing_secret: c.signing_secret,
            previous_signing,
            include_result: c.include_result,
            enabled: c.enabled,
            disabled_reason: c.disabled_reason,
            disabled_at: c.disabled_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            format_config: from_json("format_config", c.format_config)?,
            rate_limit: c
                .rate_limit
                .map(|text| from_json("rate_limit", text))
                .transpose()?,
            mlflow_shape: parse_name("mlflow_shape", c.mlflow_shape, MlflowShape::parse)?,
        })
    }
}
