//! The delivery log: list with filters and cursor pages, one delivery with
//! every attempt (request as sent, secrets masked; response; error), and
//! redeliver.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Caller;
use super::{AppState, Page, page_limit, parse_query, time_window};
use crate::delivery::{HeadersJson, SendResult};
use crate::error::ApiError;
use crate::ids::{DeliveryId, EventId, ProjectId, WebhookId, millis_to_rfc3339};
use crate::store::{AttemptRow, DeliveryFilter, DeliveryRow, DeliveryStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/deliveries", get(list))
        .route("/v1/projects/{project}/deliveries/{id}", get(show))
        .route(
            "/v1/projects/{project}/deliveries/{id}/redeliver",
            post(redeliver),
        )
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    webhook_id: Option<String>,
    event_id: Option<String>,
    event_type: Option<String>,
    #[param(pattern = "^(pending|succeeded|failed|exhausted|paused)$")]
    status: Option<String>,
    /// An RFC 3339 time or a duration ago (`2h`); the pattern states a
    /// subset of what `parse_time` reads, which generated clients stay in.
    since: Option<String>,
    until: Option<String>,
    /// Items per page, 1 to 250 (`MAX_PAGE`) [default 50].
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A delivery as lists show it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub status: String,
    pub is_test: bool,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<u16>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        DeliveryView {
            id: d.id.into_string(),
            event_id: d.event_id.into_string(),
            webhook_id: d.webhook_id.into_string(),
            event_type: d.event_type,
            status: d.status,
            is_test: d.is_test,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(millis_to_rfc3339),
            last_status_code: d.last_status_code,
            created_at: millis_to_rfc3339(d.created_at),
            updated_at: millis_to_rfc3339(d.updated_at),
        }
    }
}

/// A delivery with its attempts, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryView,
    history: Vec<AttemptView>,
}

/// The request as sent: secret and protected header values read `********`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub method: &'static str,
    pub url: String,
    pub headers: Value,
    pub body: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResponseView {
    pub status: u16,
    pub headers: Value,
    pub body: String,
    /// The body was longer than the 64 KiB kept.
    pub truncated: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorView {
    pub kind: String,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    /// A redeliver or test: outside the retry schedule.
    pub manual: bool,
    pub started_at: String,
    pub duration_ms: i64,
    pub request: RequestView,
    pub response: Option<ResponseView>,
    pub error: Option<ErrorView>,
    pub next_attempt_at: Option<String>,
}

impl AttemptView {
    /// `payload` is the event's stored payload: the body, unless the attempt
    /// recorded a different one.
    fn from_row(a: AttemptRow, payload: &str) -> AttemptView {
        let json = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null)
        };
        AttemptView {
            attempt: a.attempt,
            manual: a.manual,
            started_at: millis_to_rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            request: RequestView {
                method: "POST",
                url: a.request_url,
                headers: json(Some(a.request_headers)),
                body: a.request_body.unwrap_or_else(|| payload.to_string()),
            },
            response: a.response_status.map(|status| ResponseView {
                status,
                headers: json(a.response_headers),
                body: a.response_body.unwrap_or_default(),
                truncated: a.response_truncated,
            }),
            error: a.error_kind.map(|kind| ErrorView {
                kind,
                message: a.error_message.unwrap_or_default(),
            }),
            next_attempt_at: a.next_attempt_at.map(millis_to_rfc3339),
        }
    }
}

/// What a synchronous send (test, validate, redeliver) answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SendOutcome {
    /// A 2xx came back.
    pub valid: bool,
    pub delivery_id: Option<String>,
    pub request: RequestView,
    pub response: Option<ResponseView>,
    pub error: Option<ErrorView>,
    pub duration_ms: i64,
}

impl SendOutcome {
    pub fn new(result: &SendResult, delivery_id: Option<DeliveryId>) -> SendOutcome {
        let pairs = |list: &[(String, String)]| {
            serde_json::to_value(HeadersJson::new(list)).expect("string pairs always serialise")
        };
        SendOutcome {
            valid: result.succeeded(),
            delivery_id: delivery_id.map(DeliveryId::into_string),
            request: RequestView {
                method: "POST",
                url: result.url.clone(),
                headers: pairs(&result.request_headers),
                body: String::from_utf8_lossy(&result.request_body).into_owned(),
            },
            response: result.status.map(|status| ResponseView {
                status,
                headers: pairs(&result.response_headers),
                body: result.response_body.clone().unwrap_or_default(),
                truncated: result.response_truncated,
            }),
            error: result.error.as_ref().map(|e| ErrorView {
                kind: e.kind.to_string(),
                message: e.message.clone(),
            }),
            duration_ms: result.duration.as_millis() as i64,
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/deliveries",
    tag = "deliveries",
    params(DeliveryQuery, ("project" = String, Path)),
    responses((status = 200, description = "The delivery log, newest first", body = Page<DeliveryView>))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let q: DeliveryQuery = parse_query(&uri)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "must be pending, succeeded, failed, exhausted or paused",
            )
        })?),
    };
    let limit = page_limit(q.limit)?;
    let (since, until) = time_window(q.since.as_deref(), q.until.as_deref())?;
    let filter = DeliveryFilter {
        project_id: project.id,
        webhook_id: q.webhook_id.map(WebhookId::from),
        event_id: q.event_id.map(EventId::from),
        event_type: q.event_type,
        status,
        since,
        until,
        cursor: q.cursor.map(DeliveryId::from),
        limit,
    };
    let rows = state.store.list_deliveries(&filter).await?;
    Ok(Json(Page::new(
        rows.into_iter().map(DeliveryView::from).collect(),
        limit,
        |d| d.id.clone(),
    )))
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/deliveries/{id}",
    tag = "deliveries",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "One delivery with every attempt (secrets masked)", body = DeliveryDetail))
)]
async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, DeliveryId)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let delivery = load_delivery(&state, &project.id, &id).await?;
    let payload = super::events::load_event(&state, &project.id, &delivery.event_id)
        .await?
        .payload;
    let attempts = state.store.delivery_attempts(&delivery.id).await?;
    let history = attempts
        .into_iter()
        .map(|a| AttemptView::from_row(a, &payload))
        .collect();
    Ok(Json(DeliveryDetail {
        delivery: delivery.into(),
        history,
    }))
}

/// A delivery of the project, or 404.
async fn load_delivery(
    state: &AppState,
    project_id: &ProjectId,
    id: &DeliveryId,
) -> Result<DeliveryRow, ApiError> {
    state
        .store
        .get_delivery(project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))
}

/// A new attempt now, whatever the delivery's state; it is not retried.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/deliveries/{id}/redeliver",
    tag = "deliveries",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "A manual attempt, sent now", body = SendOutcome))
)]
async fn redeliver(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, DeliveryId)>,
) -> Result<Json<SendOutcome>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let delivery = load_delivery(&state, &project.id, &id).await?;
    let result = state.engine.redeliver(&delivery).await?;
    Ok(Json(SendOutcome::new(&result, Some(delivery.id))))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, redeliver))]
pub struct Doc;
