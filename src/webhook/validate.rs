//! Validation: `Webhook::create` and `Webhook::apply` turn what a client sent
//! into a valid webhook, or answer every field at fault (JSON pointers, in
//! the order the fields are documented).

use super::input::{HeaderInput, WebhookInput, WebhookPatch};
use super::model::{Header, OBJECT_TYPES, Scope, Webhook};
use crate::catalog::{Catalog, pattern};
use crate::formats::github::GithubInput;
use crate::formats::{self, Format, FormatConfig};
use crate::ids::{ProjectId, WebhookId};
use crate::validation::{FieldError, check_url, push as field_error};

const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
];

impl Webhook {
    /// Builds a new webhook from a create request, or every field error found.
    pub fn create(
        input: WebhookInput,
        project_id: &ProjectId,
        catalog: &Catalog,
        now: i64,
    ) -> Result<Webhook, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_events(&input.events, input.allow_unknown, catalog, &mut errors);
        let scope = input.scope.unwrap_or_default();
        check_scope(&scope, &mut errors);
        let headers = resolve_headers(input.headers, &[], &mut errors);
        let mut webhook = Webhook {
            id: WebhookId::generate(),
            project_id: project_id.clone(),
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
            mlflow_shape: input.mlflow_shape,
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
        next.mlflow_shape = patch.mlflow_shape.unwrap_or(next.mlflow_shape);
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
            config.github = formats::github::resolve(sent.github, kept.github.as_ref(), errors);
        } else if sent.github.is_some() {
            field_error(errors, "/github", "is only for format github_dispatch");
        }
        if self.format == Format::Template {
            config.template = match sent.template {
                Some(t) => formats::template::parse(t, errors),
                None => kept.template,
            };
            match &config.template {
                Some(t) => {
                    let listener = formats::template::Listener {
                        target: self.target(),
                        project_id: &self.project_id,
                        events: &self.events,
                    };
                    formats::template::check(t, &listener, catalog, errors)
                }
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
                if formats::github::SETS_HEADERS
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
    use crate::catalog::ObjectRef;
    use crate::rate_limit::RateLimit;

    fn input(json: serde_json::Value) -> WebhookInput {
        serde_json::from_value(json).unwrap()
    }

    fn create(json: serde_json::Value) -> Result<Webhook, Vec<FieldError>> {
        Webhook::create(input(json), &"p".into(), &Catalog::builtin(), 0)
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
