//! Formats and dry runs for forms: the list of delivery formats with their
//! settings (what drives the console's webhook form), a preview of the body
//! a webhook configuration would send, and a check of an event payload
//! against its type. Nothing here is stored or sent anywhere.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Caller;
use super::{ApiJson, AppState};
use crate::catalog::{CatalogError, ObjectRef, PrepareContext};
use crate::error::{ApiError, FieldError};
use crate::formats::github::GithubInput;
use crate::formats::{EventData, FormatInfo};
use crate::ids::{EventId, ProjectId, now_millis};
use crate::webhook::{Format, Webhook, WebhookInput};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/formats", get(list))
        .route("/v1/formats/preview", post(preview))
        .route(
            "/v1/event-types/{event_type}/validate",
            post(validate_payload),
        )
}

#[derive(Serialize, utoipa::ToSchema)]
struct FormatList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<FormatInfo>,
}

/// Every format with its title, how success is judged, its default rate
/// limit and its settings (JSON pointers into the webhook, secret or not).
#[utoipa::path(
    get,
    path = "/v1/formats",
    tag = "formats",
    responses((status = 200, description = "Every delivery format and its settings", body = FormatList))
)]
async fn list(_caller: Caller) -> Json<FormatList> {
    Json(FormatList {
        data: crate::formats::registry(),
    })
}

/// What a preview needs: the format and its non-secret settings. Secrets,
/// headers and the URL play no part in a body and are not asked for.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PreviewInput {
    #[serde(default)]
    format: Format,
    /// `template` only: the JSON template (or its text).
    #[serde(default)]
    #[schema(schema_with = crate::validation::json_value_schema)]
    template: Option<Value>,
    /// `github_dispatch` only: the repository (the token is not needed).
    #[serde(default)]
    github_repository: Option<String>,
    /// The webhook's event types; the template is checked against each.
    #[serde(default)]
    events: Vec<String>,
    /// The type whose example is rendered [default: the first of `events`].
    #[serde(default)]
    #[schema(schema_with = super::schemas::known_event_type_or_null)]
    event_type: Option<String>,
    #[serde(default)]
    include_result: bool,
    /// As a webhook's: 1 to 200 characters, not only whitespace.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Preview {
    event_type: String,
    content_type: &'static str,
    /// Set when the format decides the URL (GitHub).
    url: Option<String>,
    /// The body, as it would be sent.
    body: String,
}

/// Renders the body a webhook of this configuration would send for the
/// event type's example payload. A template that does not render is a 400
/// whose `field` points into `/template`, as on save.
#[utoipa::path(
    post,
    path = "/v1/formats/preview",
    tag = "formats",
    request_body = PreviewInput,
    responses(
        (status = 200, description = "The body that would be sent", body = Preview),
        (status = 400, description = "The configuration does not render; `field` names the place", body = crate::error::ErrorBody)
    )
)]
async fn preview(
    _caller: Caller,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<PreviewInput>,
) -> Result<Json<Preview>, ApiError> {
    let event_type = input
        .event_type
        .clone()
        .or_else(|| {
            state
                .catalog
                .first_listed(&input.events)
                .map(|t| t.name.clone())
        })
        .unwrap_or_else(|| "TEST".to_string());
    let Some(known) = state.catalog.get(&event_type) else {
        return Err(ApiError::invalid_field(
            "/event_type",
            format!("unknown event type {event_type:?}"),
        ));
    };
    let events = if input.events.is_empty() {
        vec![event_type.clone()]
    } else {
        input.events
    };
    let github = (input.format == Format::GithubDispatch).then(|| GithubInput {
        repository: input
            .github_repository
            .unwrap_or_else(|| "owner/repo".to_string()),
        // A stand-in: the body does not depend on it, and nothing is sent.
        token: Some("preview".to_string()),
        api_url: None,
    });
    let webhook_input = WebhookInput {
        name: Some(input.name.unwrap_or_else(|| "preview".to_string())),
        description: None,
        url: github
            .is_none()
            .then(|| "https://preview.invalid/".to_string()),
        events,
        allow_unknown: false,
        scope: None,
        headers: Vec::new(),
        secret: None,
        include_result: input.include_result,
        enabled: true,
        format: input.format,
        github,
        template: input.template,
        rate_limit: None,
        signing_scheme: Default::default(),
        mlflow_shape: Default::default(),
    };
    let preview = ProjectId::from("preview");
    let webhook = Webhook::create(webhook_input, &preview, &state.catalog, now_millis())
        .map_err(ApiError::violations)?;
    let ctx = PrepareContext {
        project_id: "preview",
    };
    let payload = state
        .catalog
        .prepare(&known.name, known.example.clone(), &ctx)
        .map(|p| p.payload)
        .unwrap_or_else(|_| known.example.clone());
    let event = EventData::new(
        EventId::generate(),
        preview,
        known.name.clone(),
        payload.to_string(),
        Some(known.family),
        None,
    );
    let rendered = crate::formats::render(&webhook, &event)
        .map_err(|e| ApiError::invalid_field(render_field(input.format), e.to_string()))?;
    Ok(Json(Preview {
        event_type: known.name.clone(),
        content_type: rendered.content_type,
        url: rendered.url,
        body: String::from_utf8_lossy(&rendered.body).into_owned(),
    }))
}

/// Where a render failure belongs in the form.
fn render_field(format: Format) -> &'static str {
    match format {
        Format::Template => "/template",
        Format::GithubDispatch => "/github",
        _ => "/format",
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PayloadInput {
    #[schema(schema_with = crate::validation::json_value_schema)]
    payload: Value,
    /// The project it would be sent to: some payloads mention it (UbiOps `text`).
    #[serde(default)]
    project: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PayloadCheck {
    /// The payload would be accepted by `POST …/events`.
    valid: bool,
    /// Every problem, each `field` a JSON pointer rooted like the events
    /// route's body (`/payload/version`).
    violations: Vec<FieldError>,
    /// When valid: the payload as it would be stored (fixed fields filled in).
    payload: Option<Value>,
    /// When valid: the object it is about, which scopes match against.
    object: Option<ObjectRef>,
}

/// Checks a payload as `POST /v1/projects/{p}/events` would, without
/// storing it: for forms that validate as the user types.
#[utoipa::path(
    post,
    path = "/v1/event-types/{event_type}/validate",
    tag = "event-types",
    params(("event_type" = String, Path, description = "e.g. MODEL_VERSION_CREATED")),
    request_body = PayloadInput,
    responses(
        (status = 200, description = "Whether the payload is valid, and every violation", body = PayloadCheck),
        (status = 404, description = "No such event type", body = crate::error::ErrorBody)
    )
)]
async fn validate_payload(
    caller: Caller,
    State(state): State<AppState>,
    Path(event_type): Path<String>,
    ApiJson(input): ApiJson<PayloadInput>,
) -> Result<Json<PayloadCheck>, ApiError> {
    if !state.catalog.contains(&event_type) {
        return Err(ApiError::not_found("event type"));
    }
    let project_id = match input.project {
        Some(project) => caller.project_id(&state, &project.into())?,
        None => "project".into(),
    };
    let ctx = PrepareContext {
        project_id: &project_id,
    };
    let check = match state.catalog.prepare(&event_type, input.payload, &ctx) {
        Ok(prepared) => PayloadCheck {
            valid: true,
            violations: Vec::new(),
            payload: Some(prepared.payload),
            object: prepared.object,
        },
        Err(CatalogError::Invalid(violations)) => PayloadCheck {
            valid: false,
            violations: violations.into_iter().map(FieldError::from).collect(),
            payload: None,
            object: None,
        },
        Err(e @ CatalogError::UnknownEventType(_)) => return Err(e.into()),
    };
    Ok(Json(check))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, preview, validate_payload))]
pub struct Doc;
