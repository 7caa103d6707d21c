//! Accepting events: validate against the catalog, route to the matching
//! webhooks, and store the event with all its deliveries before answering 202.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::{ApiJson, AppState, Page, page_limit, parse_query, time_window};
use crate::catalog::ObjectRef;
use crate::error::{ApiError, FieldError};
use crate::ids::{DeliveryId, EventId, ProjectId, now_millis};
use crate::ingest::{Accepted, EventRequest, Submission};
use crate::store::{EventFilter, EventRow};
use crate::webhook::OBJECT_TYPES;

/// Events per batch request at most.
const MAX_BATCH: usize = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/events", get(list).post(create))
        .route("/v1/projects/{project}/events/batch", post(create_batch))
        .route("/v1/projects/{project}/events/{id}", get(show))
        .route("/v1/projects/{project}/events/{id}/replay", post(replay))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "MODEL_VERSION_CREATED", "payload": {"eventTrigger": "MODEL_VERSION_CREATED", "workspaceName": "ml-team", "registryModelName": "churn", "version": "1.4.0", "tags": ["candidate"], "deletedTags": [], "status": null, "oldStatus": null, "createdAt": 1706191450, "sourceExperimentKey": null}, "idempotency_key": "registry-7f3a"}))]
struct EventInput {
    #[serde(rename = "type")]
    event_type: String,
    /// The vendor's body, checked against the type's schema (`GET
    /// /v1/event-types/{type}`).
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    #[serde(default)]
    object: Option<ObjectRef>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchInput {
    /// 1 to 1000 (`MAX_BATCH`).
    #[schema(min_items = 1, max_items = 1000)]
    events: Vec<EventInput>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AcceptedView {
    id: String,
    deliveries: Vec<String>,
}

impl AcceptedView {
    fn new(event_id: EventId, delivery_ids: Vec<DeliveryId>) -> AcceptedView {
        AcceptedView {
            id: event_id.into_string(),
            deliveries: delivery_ids
                .into_iter()
                .map(DeliveryId::into_string)
                .collect(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BatchAccepted {
    events: Vec<AcceptedView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    object: Option<ObjectRef>,
    #[schema(value_type = Object)]
    payload: Box<serde_json::value::RawValue>,
    is_test: bool,
    created_at: String,
}

impl EventView {
    fn new(event: EventRow) -> Result<EventView, ApiError> {
        let payload = serde_json::value::RawValue::from_string(event.payload)
            .map_err(|e| ApiError::from(crate::store::StoreError::Corrupt(e.to_string())))?;
        Ok(EventView {
            id: event.id.into_string(),
            event_type: event.event_type,
            object: event.object,
            payload,
            is_test: event.is_test,
            created_at: crate::ids::millis_to_rfc3339(event.created_at),
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventDetail {
    #[serde(flatten)]
    event: EventView,
    deliveries: Vec<DeliveryStatusView>,
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    event_type: Option<String>,
    /// An RFC 3339 time or a duration ago (`2h`); the pattern states a
    /// subset of what `parse_time` reads, which generated clients stay in.
    since: Option<String>,
    until: Option<String>,
    /// Items per page, 1 to 250 (`MAX_PAGE`) [default 50].
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Events newest first, with filters and cursor pages.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/events",
    tag = "events",
    params(EventQuery, ("project" = String, Path)),
    responses((status = 200, description = "Events, newest first", body = Page<EventView>))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<EventView>>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let q: EventQuery = parse_query(&uri)?;
    let limit = page_limit(q.limit)?;
    let (since, until) = time_window(q.since.as_deref(), q.until.as_deref())?;
    let filter = EventFilter {
        project_id: project.id,
        event_type: q.event_type,
        since,
        until,
        cursor: q.cursor.map(EventId::from),
        limit,
    };
    let rows = state.store.list_events(&filter).await?;
    let views = rows
        .into_iter()
        .map(EventView::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Page::new(views, limit, |e| e.id.clone())))
}

/// Delivers an event again to the webhooks that match it now (one created
/// after the event, say): new deliveries, sent like any other.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/events/{id}/replay",
    tag = "events",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 202, description = "Delivered again to the webhooks matching it now", body = AcceptedView))
)]
async fn replay(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, EventId)>,
) -> Result<(StatusCode, Json<AcceptedView>), ApiError> {
    let project = caller.project(&state, &project).await?;
    let event = load_event(&state, &project.id, &id).await?;
    let replayed = state.ingestor.replay(event).await?;
    let view = AcceptedView::new(replayed.event_id, replayed.delivery_ids);
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryStatusView {
    id: String,
    webhook_id: String,
    status: String,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_status_code: Option<u16>,
}

/// An event with the state of each of its deliveries.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/events/{id}",
    tag = "events",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The event and the state of each delivery", body = EventDetail))
)]
async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, EventId)>,
) -> Result<Json<EventDetail>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let event = load_event(&state, &project.id, &id).await?;
    let deliveries = state.store.event_deliveries(&event.id).await?;
    Ok(Json(EventDetail {
        event: EventView::new(event)?,
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryStatusView {
                id: d.id.into_string(),
                webhook_id: d.webhook_id.into_string(),
                status: d.status,
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at.map(crate::ids::millis_to_rfc3339),
                last_status_code: d.last_status_code,
            })
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project}/events",
    tag = "events",
    params(("idempotency-key" = Option<String>, Header, min_length = 1, max_length = 255, description = "Same as the body's idempotency_key (which wins when both are given): for 24 hours, the same key with the same request answers the first event; with a different request, 422"), ("project" = String, Path)),
    request_body = EventInput,
    responses(
        (status = 202, description = "Stored with its deliveries, or, for an idempotency key already given with the same request, the first event's answer (nothing stored again)", body = AcceptedView,
            headers(("idempotent-replayed" = String, description = "`true` when this answers an earlier request with the same idempotency key; absent otherwise"))),
        (status = 422, description = "The idempotency key was given within 24 hours with a different request (type, object or payload): `code` is `idempotency_key_reused`, `field` is `/idempotency_key`; nothing was stored", body = crate::error::ErrorBody)
    )
)]
async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    IdempotencyHeader(header_key): IdempotencyHeader,
    ApiJson(mut input): ApiJson<EventInput>,
) -> Result<Response, ApiError> {
    let project_id = caller.project_id(&state, &project)?;
    if input.idempotency_key.is_none() {
        input.idempotency_key = header_key;
    }
    let submission = prepare(&state, &project_id, input, now_millis())?;
    let mut accepted = state.ingestor.ingest(vec![submission]).await?;
    let (view, repeated) = match answer(accepted.remove(0))? {
        Answer::Stored(view, repeated) => (view, repeated),
        Answer::Refused | Answer::Withheld => {
            return Err(key_reused(vec![FieldError {
                field: "/idempotency_key".into(),
                message: KEY_REUSED.into(),
            }]));
        }
    };
    let mut response = (StatusCode::ACCEPTED, Json(view)).into_response();
    if repeated {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project}/events/batch",
    tag = "events",
    params(("project" = String, Path)),
    request_body = BatchInput,
    responses(
        (status = 202, description = "All stored, or none; an event whose idempotency key was already given with the same request answers that first event", body = BatchAccepted),
        (status = 422, description = "Events whose idempotency key was given within 24 hours with a different request, each named in `details` (`/events/{i}/idempotency_key`); `code` is `idempotency_key_reused`; nothing of the batch was stored", body = crate::error::ErrorBody)
    )
)]
async fn create_batch(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    ApiJson(input): ApiJson<BatchInput>,
) -> Result<(StatusCode, Json<BatchAccepted>), ApiError> {
    let project_id = caller.project_id(&state, &project)?;
    if input.events.is_empty() || input.events.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "/events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    let now = now_millis();
    let mut submissions = Vec::with_capacity(input.events.len());
    let mut errors: Vec<FieldError> = Vec::new();
    for (i, event) in input.events.into_iter().enumerate() {
        match prepare(&state, &project_id, event, now) {
            Ok(s) => submissions.push(s),
            Err(e) => errors.extend(e.nested_under(&format!("/events/{i}")).details),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::violations(errors));
    }
    let accepted = state.ingestor.ingest(submissions).await?;
    let mut events = Vec::with_capacity(accepted.len());
    let mut refused = Vec::new();
    for (i, a) in accepted.into_iter().enumerate() {
        match answer(a)? {
            Answer::Stored(view, _) => events.push(view),
            Answer::Refused => refused.push(FieldError {
                field: format!("/events/{i}/idempotency_key"),
                message: KEY_REUSED.into(),
            }),
            Answer::Withheld => {}
        }
    }
    if !refused.is_empty() {
        return Err(key_reused(refused));
    }
    Ok((StatusCode::ACCEPTED, Json(BatchAccepted { events })))
}

/// The `Idempotency-Key` header, read where it is: the `HeaderMap` extractor
/// would copy every header of the request.
struct IdempotencyHeader(Option<String>);

impl<S: Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyHeader(None));
        };
        let text = value.to_str().map_err(|_| {
            ApiError::invalid_field(
                "/idempotency_key",
                "the Idempotency-Key header must be visible ASCII",
            )
        })?;
        // Checked even when the body's key wins: a request the document
        // calls invalid is refused, whatever else it holds.
        if text.is_empty() || text.len() > MAX_IDEMPOTENCY_KEY {
            return Err(ApiError::invalid_field(
                "/idempotency_key",
                format!("the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
            ));
        }
        Ok(IdempotencyHeader(Some(text.to_string())))
    }
}

/// Validates one event and decides its deliveries; nothing is written yet.
fn prepare(
    state: &AppState,
    project_id: &ProjectId,
    input: EventInput,
    now: i64,
) -> Result<Submission, ApiError> {
    if let Some(key) = &input.idempotency_key
        && (key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(ApiError::invalid_field(
            "/idempotency_key",
            "must be 1 to 255 characters",
        ));
    }
    if input.event_type.starts_with("mlhook.") {
        return Err(ApiError::invalid_field(
            "/type",
            "mlhook.* events are raised by mlhook itself",
        ));
    }
    if let Some(object) = &input.object
        && !OBJECT_TYPES.contains(&object.object_type.as_str())
    {
        return Err(ApiError::invalid_field(
            "/object/type",
            format!("must be one of {}", OBJECT_TYPES.join(", ")),
        ));
    }
    let request = EventRequest {
        event_type: input.event_type,
        payload: input.payload,
        object: input.object,
        idempotency_key: input.idempotency_key,
    };
    Ok(state.ingestor.prepare(project_id, request, now)?)
}

/// An event of the project, or 404.
pub(super) async fn load_event(
    state: &AppState,
    project_id: &ProjectId,
    id: &EventId,
) -> Result<EventRow, ApiError> {
    state
        .store
        .get_event(project_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))
}

/// What became of one event of a request.
enum Answer {
    /// Stored, or (`true`) a repeat: the answer to an earlier request with its key.
    Stored(AcceptedView, bool),
    /// Refused for its idempotency key: nothing of its request was stored.
    Refused,
    /// Not stored because another event of its request was refused.
    Withheld,
}

fn answer(accepted: Accepted) -> Result<Answer, ApiError> {
    match accepted {
        Accepted::Created {
            event_id,
            delivery_ids,
        } => Ok(Answer::Stored(
            AcceptedView::new(event_id, delivery_ids),
            false,
        )),
        Accepted::Repeated {
            event_id,
            delivery_ids,
        } => Ok(Answer::Stored(
            AcceptedView::new(event_id, delivery_ids),
            true,
        )),
        Accepted::KeyReused => Ok(Answer::Refused),
        Accepted::Withheld => Ok(Answer::Withheld),
        Accepted::ProjectGone => Err(ApiError::not_found("project")),
    }
}

const KEY_REUSED: &str = "this Idempotency-Key was given within the last 24 hours with a \
     different request (type, object or payload): send the first request unchanged to get its \
     answer, or a new key for a new event";

/// 422: the keys named in `details` were reused; nothing was stored.
fn key_reused(details: Vec<FieldError>) -> ApiError {
    let mut error = ApiError::violations(details);
    error.status = StatusCode::UNPROCESSABLE_ENTITY;
    error.code = "idempotency_key_reused";
    error.message = format!("{}; nothing was stored", error.message);
    error
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, create_batch, show, replay))]
pub struct Doc;
