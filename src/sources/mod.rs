//! Sources: platforms that push their own webhooks to mlhook, which then
//! validates, routes, formats, retries and logs them like any event.
//!
//! One kind exists today, MLflow (`mlflow`): MLflow's model registry calls
//! `POST /v1/projects/{p}/sources/{id}/mlflow`; the request is authenticated by
//! MLflow's HMAC signature with the source's shared secret, not by a token.
//! As for webhooks, the stored `Source` holds the secret and the `SourceView`
//! that reads show has no field that could.

pub mod mlflow;

use serde::{Deserialize, Serialize};

use crate::ids::{ProjectId, SourceId};
use crate::secrets::{SecretBox, SecretsError};
use crate::validation::FieldError;

/// Timestamp tolerance when the client sets none: MLflow's retries (three,
/// with backoff, each re-sending the same timestamp) fit well inside it.
pub const DEFAULT_TOLERANCE_SECS: u32 = 300;
/// The widest tolerance a source may have. A replayed request is caught by the
/// delivery ids mlhook remembers, which must outlive the window by far.
pub const MAX_TOLERANCE_SECS: u32 = 3600;
/// How long accepted delivery ids are remembered for the replay check.
pub const SEEN_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Rejections kept per source, newest first.
pub const REJECTIONS_KEPT: u32 = 100;

const MAX_NAME: usize = 200;
const MIN_SECRET: usize = 16;
const MAX_SECRET: usize = 1024;
/// How long the secret before a change keeps verifying when the change
/// names no grace period: MLflow caches its webhook settings for 60 s.
pub const DEFAULT_SECRET_GRACE_MS: i64 = 10 * 60 * 1000;
/// The longest grace period a change of secret may ask for, in days.
pub const MAX_SECRET_GRACE_DAYS: i64 = 7;

/// Who sends to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    #[default]
    Mlflow,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Mlflow => "mlflow",
        }
    }

    pub fn parse(text: &str) -> Option<SourceKind> {
        (text == "mlflow").then_some(SourceKind::Mlflow)
    }
}

/// The stored source, secret included. Never serialised to a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub project_id: ProjectId,
    pub kind: SourceKind,
    pub name: String,
    /// The shared secret MLflow signs with; `None` only for a source created
    /// explicitly as unsigned.
    pub secret: Option<String>,
    /// How far `X-MLflow-Timestamp` may be from now, either way.
    pub tolerance_secs: u32,
    /// `workspaceName` of the Comet-shaped events when MLflow sends no workspace.
    pub workspace_name: Option<String>,
    /// The secret before the last change, still verifying until it expires.
    pub previous_secret: Option<PreviousSecret>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A changed-out secret and the end of its grace period.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousSecret {
    pub secret: String,
    pub expires_at: i64,
}

/// `PATCH /v1/projects/{p}/sources/{id}`: absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// A new secret (16 to 1024 bytes; write-only). The one it replaces
    /// keeps verifying for `secret_grace_period`, so MLflow's requests
    /// signed before it learns the new one are not refused.
    #[schema(min_length = 16, max_length = 1024)]
    pub secret: Option<String>,
    /// How long the replaced secret still verifies, e.g. "10m" or "0s"
    /// [default 10m; at most 7 days].
    pub secret_grace_period: Option<String>,
    #[serde(default, deserialize_with = "crate::integral::option_u32")]
    #[schema(minimum = 1, maximum = 3600)]
    pub timestamp_tolerance_secs: Option<u32>,
    /// `null` returns to the default (the source's name).
    #[serde(default, deserialize_with = "crate::validation::present_or_null")]
    pub workspace_name: Option<Option<String>>,
}

/// `POST /v1/projects/{p}/sources`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// Who sends: `mlflow` (the default and only kind today).
    #[serde(default)]
    pub kind: SourceKind,
    pub name: String,
    /// The secret set on the MLflow webhook (16 to 1024 bytes); write-only.
    #[serde(default)]
    pub secret: Option<String>,
    /// Must be `true` to create a source without a secret.
    #[serde(default)]
    pub unsigned: bool,
    /// How far `X-MLflow-Timestamp` may be from now, 1 to 3600 [default 300].
    #[serde(default, deserialize_with = "crate::integral::option_u32")]
    #[schema(minimum = 1, maximum = 3600)]
    pub timestamp_tolerance_secs: Option<u32>,
    /// `workspaceName` of the Comet-shaped events when MLflow sends no
    /// workspace [default: the source's name].
    #[serde(default)]
    pub workspace_name: Option<String>,
}

/// A source as every read shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub id: String,
    pub project_id: String,
    pub kind: SourceKind,
    pub name: String,
    pub secret_set: bool,
    pub timestamp_tolerance_secs: u32,
    pub workspace_name: Option<String>,
    /// After a change of secret: until when the replaced one still verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
    /// The path MLflow posts to, on this service's address.
    pub path: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One refused request, as the source's log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SourceRejection {
    #[serde(skip)]
    pub source_id: SourceId,
    #[serde(serialize_with = "as_rfc3339")]
    #[schema(value_type = String)]
    pub at: i64,
    pub status: u16,
    pub code: String,
    pub reason: String,
    pub delivery_id: Option<String>,
    pub event_type: Option<String>,
    /// The body as it was sent (UTF-8, at most `MAX_KEPT_BODY` bytes), when
    /// the request got that far: what was refused, and is not sent again.
    pub body: Option<String>,
}

/// The largest refused body a source's log keeps.
pub const MAX_KEPT_BODY: usize = 64 * 1024;

/// What a source received lately, for its view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceActivity {
    /// Delivery ids accepted within the replay retention.
    pub accepted: u64,
    pub last_accepted_at: Option<i64>,
    /// Rejections in the log (at most `REJECTIONS_KEPT`).
    pub rejected: u64,
    pub last_rejected_at: Option<i64>,
}

fn as_rfc3339<S: serde::Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::ids::millis_to_rfc3339(*millis))
}

impl Source {
    /// Builds a new source from a create request, or every field error found.
    pub fn create(
        input: SourceInput,
        project_id: &ProjectId,
        now: i64,
    ) -> Result<Source, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = checked_name(&input.name, &mut errors);
        match (&input.secret, input.unsigned) {
            (Some(_), true) => fail(
                &mut errors,
                "/unsigned",
                "a source with a secret is signed; leave one out",
            ),
            (None, false) => fail(
                &mut errors,
                "/secret",
                "required: the secret set on the MLflow webhook (or \"unsigned\": true to accept \
                 unsigned requests, authenticated by nothing but the URL)",
            ),
            (Some(secret), false) => check_secret(secret, &mut errors),
            (None, true) => {}
        }
        let tolerance = input
            .timestamp_tolerance_secs
            .unwrap_or(DEFAULT_TOLERANCE_SECS);
        check_tolerance(tolerance, &mut errors);
        let workspace_name = checked_workspace(input.workspace_name, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Source {
            id: SourceId::generate(),
            project_id: project_id.clone(),
            kind: input.kind,
            name,
            secret: input.secret,
            tolerance_secs: tolerance,
            workspace_name,
            previous_secret: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// The source with `patch` applied, or every field error found. A new
    /// secret keeps the one it replaces verifying for `grace_ms`.
    pub fn apply(
        &self,
        patch: SourcePatch,
        grace_ms: i64,
        now: i64,
    ) -> Result<Source, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            next.name = checked_name(name, &mut errors);
        }
        if let Some(secret) = patch.secret {
            check_secret(&secret, &mut errors);
            if self.secret.is_none() {
                fail(
                    &mut errors,
                    "/secret",
                    "this source was created unsigned; create a signed source instead",
                );
            }
            next.previous_secret = self.secret.clone().map(|old| PreviousSecret {
                secret: old,
                expires_at: now + grace_ms,
            });
            next.secret = Some(secret);
        }
        if let Some(tolerance) = patch.timestamp_tolerance_secs {
            check_tolerance(tolerance, &mut errors);
            next.tolerance_secs = tolerance;
        }
        if let Some(workspace) = patch.workspace_name {
            next.workspace_name = checked_workspace(workspace, &mut errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        next.updated_at = now;
        Ok(next)
    }

    /// The secrets a request received at `now` may be signed with: the
    /// current one, and the one before it while its grace period lasts.
    pub fn secrets_at(&self, now: i64) -> impl Iterator<Item = &str> {
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|p| p.expires_at > now)
            .map(|p| p.secret.as_str());
        self.secret.as_deref().into_iter().chain(previous)
    }

    /// Where the platform sends its webhooks, below this service's address.
    pub fn path(&self) -> String {
        format!(
            "/v1/projects/{}/sources/{}/{}",
            self.project_id,
            self.id,
            self.kind.as_str()
        )
    }

    /// A copy whose secrets are sealed, for a store to write (see `crate::secrets`).
    pub fn sealed(&self, secrets: &SecretBox) -> Source {
        let mut sealed = self.clone();
        sealed.secret = self.secret.as_deref().map(|s| secrets.seal(s));
        if let Some(previous) = &mut sealed.previous_secret {
            previous.secret = secrets.seal(&previous.secret);
        }
        sealed
    }

    /// Opens what `sealed` sealed; a clear value (none is written so) is kept.
    pub fn opened(mut self, secrets: &SecretBox) -> Result<Source, SecretsError> {
        let open = |stored: String| {
            if SecretBox::is_sealed(&stored) {
                secrets.open(&stored)
            } else {
                Ok(stored)
            }
        };
        self.secret = self.secret.take().map(open).transpose()?;
        if let Some(previous) = self.previous_secret.take() {
            self.previous_secret = Some(PreviousSecret {
                secret: open(previous.secret)?,
                expires_at: previous.expires_at,
            });
        }
        Ok(self)
    }

    pub fn view(&self) -> SourceView {
        SourceView {
            id: self.id.to_string(),
            project_id: self.project_id.to_string(),
            kind: self.kind,
            name: self.name.clone(),
            secret_set: self.secret.is_some(),
            timestamp_tolerance_secs: self.tolerance_secs,
            workspace_name: self.workspace_name.clone(),
            previous_secret_expires_at: self
                .previous_secret
                .as_ref()
                .map(|p| crate::ids::millis_to_rfc3339(p.expires_at)),
            path: self.path(),
            created_at: crate::ids::millis_to_rfc3339(self.created_at),
            updated_at: crate::ids::millis_to_rfc3339(self.updated_at),
        }
    }
}

fn fail(errors: &mut Vec<FieldError>, field: &str, message: &str) {
    errors.push(FieldError {
        field: field.to_string(),
        message: message.to_string(),
    });
}

fn checked_name(name: &str, errors: &mut Vec<FieldError>) -> String {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        fail(errors, "/name", "must be 1 to 200 characters");
    }
    name
}

fn check_secret(secret: &str, errors: &mut Vec<FieldError>) {
    if secret.len() < MIN_SECRET || secret.len() > MAX_SECRET {
        fail(errors, "/secret", "must be 16 to 1024 bytes");
    } else if secret.trim() != secret || secret.chars().any(char::is_control) {
        fail(
            errors,
            "/secret",
            "must not hold control characters or surrounding spaces",
        );
    }
}

fn check_tolerance(tolerance: u32, errors: &mut Vec<FieldError>) {
    if !(1..=MAX_TOLERANCE_SECS).contains(&tolerance) {
        fail(
            errors,
            "/timestamp_tolerance_secs",
            "must be 1 to 3600 seconds (default 300)",
        );
    }
}

fn checked_workspace(workspace: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let workspace = workspace.map(|w| w.trim().to_string());
    if workspace
        .as_ref()
        .is_some_and(|w| w.is_empty() || w.chars().count() > MAX_NAME)
    {
        fail(errors, "/workspace_name", "must be 1 to 200 characters");
    }
    workspace
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(body: serde_json::Value) -> Result<Source, Vec<FieldError>> {
        let input: SourceInput = serde_json::from_value(body).unwrap();
        Source::create(input, &ProjectId::from("p"), 1_000)
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_source_gets_defaults_and_a_path() {
        let s = create(json!({"name": " registry ", "secret": "0123456789abcdef"})).unwrap();
        assert_eq!(s.name, "registry");
        assert_eq!(s.kind, SourceKind::Mlflow);
        assert_eq!(s.tolerance_secs, 300);
        assert!(s.id.starts_with("src_"));
        assert_eq!(s.path(), format!("/v1/projects/p/sources/{}/mlflow", s.id));
    }

    #[test]
    fn a_secret_or_an_explicit_unsigned_is_required() {
        assert_eq!(
            fields(create(json!({"name": "r"})).unwrap_err()),
            ["/secret"]
        );
        let unsigned = create(json!({"name": "r", "unsigned": true})).unwrap();
        assert_eq!(unsigned.secret, None);
        assert_eq!(
            fields(
                create(json!({"name": "r", "unsigned": true, "secret": "0123456789abcdef"}))
                    .unwrap_err()
            ),
            ["/unsigned"]
        );
        assert_eq!(
            fields(
                create(json!({"name": "", "secret": "short", "timestamp_tolerance_secs": 0}))
                    .unwrap_err()
            ),
            ["/name", "/secret", "/timestamp_tolerance_secs"]
        );
    }

    #[test]
    fn the_secret_is_sealed_for_the_store() {
        let s = create(json!({"name": "r", "secret": "s3cr3t-s3cr3t-s3cr3t"})).unwrap();
        let secrets = SecretBox::new([7; 32]);
        let sealed = s.sealed(&secrets);
        let stored = sealed.secret.clone().unwrap();
        assert!(SecretBox::is_sealed(&stored) && !stored.contains("s3cr3t"));
        assert_eq!(sealed.opened(&secrets).unwrap(), s);
        assert!(s.sealed(&secrets).opened(&SecretBox::new([8; 32])).is_err());
        let unsigned = create(json!({"name": "r", "unsigned": true})).unwrap();
        assert_eq!(unsigned.sealed(&secrets).secret, None);
    }

    #[test]
    fn the_view_has_no_secret() {
        let s = create(json!({"name": "r", "secret": "s3cr3t-s3cr3t-s3cr3t"})).unwrap();
        let shown = serde_json::to_string(&s.view()).unwrap();
        assert!(!shown.contains("s3cr3t"));
        assert!(shown.contains(r#""secret_set":true"#));
    }
}
