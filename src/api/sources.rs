//! Sources of a project, and the route MLflow posts its webhooks to.
//!
//! Managing sources takes a bearer token like every `/v1` route (write to
//! create or delete, read to look). The receiving route takes none: MLflow's
//! HMAC signature with the source's shared secret is the authentication.
//! Every refused request lands in the source's own log, never in the store's
//! events; an accepted one is answered only after its events and their
//! deliveries are on disk, so MLflow's retries can never lose or double one.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::{ApiJson, AppState, audit, parse_query};
use crate::error::ApiError;
use crate::ids::{DeliveryId, ProjectId, SourceId, WebhookId, millis_to_rfc3339, now_millis};
use crate::ingest::{Accepted, EventRequest, Submission};
use crate::sources::mlflow::{self, Reject};
use crate::sources::{
    DEFAULT_SECRET_GRACE_MS, MAX_KEPT_BODY, MAX_SECRET_GRACE_DAYS, REJECTIONS_KEPT,
    SEEN_RETENTION_MS, Source, SourceInput, SourceKind, SourcePatch, SourceRejection, SourceView,
};
use crate::webhook::MlflowShape;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/sources", get(list).post(create))
        .route(
            "/v1/projects/{project}/sources/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/projects/{project}/sources/{id}/log", get(log))
        .route("/v1/projects/{project}/sources/{id}/mlflow", post(receive))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SourceList {
    data: Vec<SourceView>,
}

/// A source with the URL to paste into MLflow, as this request reached mlhook.
#[derive(Serialize, utoipa::ToSchema)]
struct SourceAnswer {
    #[serde(flatten)]
    source: SourceView,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    activity: Option<ActivityView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ActivityView {
    /// Deliveries accepted within the replay retention (7 days).
    accepted_last_7d: u64,
    last_accepted_at: Option<String>,
    /// Refused requests in the log (the newest 100 are kept).
    rejections_logged: u64,
    last_rejected_at: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/sources",
    tag = "sources",
    params(("project" = String, Path)),
    responses((status = 200, description = "Sources of the project (no secrets)", body = SourceList))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
) -> Result<Json<SourceList>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let sources = state.store.list_sources(&project.id).await?;
    Ok(Json(SourceList {
        data: sources.iter().map(Source::view).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project}/sources",
    tag = "sources",
    params(("project" = String, Path)),
    request_body = SourceInput,
    responses((status = 201, description = "Created; `url` is what to paste into the MLflow webhook", body = SourceAnswer))
)]
async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<SourceInput>,
) -> Result<(StatusCode, Json<SourceAnswer>), ApiError> {
    caller.require_write()?;
    let project = caller.project(&state, &project).await?;
    let source = Source::create(input, &project.id, now_millis()).map_err(ApiError::violations)?;
    state.store.create_source(&source).await?;
    let view = source.view();
    let changes = serde_json::to_value(&view).expect("views serialise");
    audit::record(
        &state,
        &caller,
        &project.id,
        "source.created",
        &source.id,
        changes,
    )
    .await;
    let answer = SourceAnswer {
        url: public_url(&headers, &source.path()),
        source: view,
        activity: None,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn load(
    caller: &Caller,
    state: &AppState,
    project: &ProjectId,
    id: &SourceId,
) -> Result<Source, ApiError> {
    let project = caller.project(state, project).await?;
    state
        .store
        .get_source(&project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("source"))
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/sources/{id}",
    tag = "sources",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The source, its URL and what it received lately", body = SourceAnswer))
)]
async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, SourceId)>,
    headers: HeaderMap,
) -> Result<Json<SourceAnswer>, ApiError> {
    let source = load(&caller, &state, &project, &id).await?;
    let activity = state
        .store
        .source_activity(&source.id, now_millis() - SEEN_RETENTION_MS)
        .await?;
    Ok(Json(SourceAnswer {
        url: public_url(&headers, &source.path()),
        source: source.view(),
        activity: Some(ActivityView {
            accepted_last_7d: activity.accepted,
            last_accepted_at: activity.last_accepted_at.map(millis_to_rfc3339),
            rejections_logged: activity.rejected,
            last_rejected_at: activity.last_rejected_at.map(millis_to_rfc3339),
        }),
    }))
}

/// Changes a source. A new secret replaces the old one, which keeps
/// verifying for the grace period: MLflow, which caches its webhook settings
/// for a minute, is not refused while it catches up.
#[utoipa::path(
    patch,
    path = "/v1/projects/{project}/sources/{id}",
    tag = "sources",
    params(("project" = String, Path), ("id" = String, Path)),
    request_body = SourcePatch,
    responses((status = 200, description = "The source as changed (no secret; `previous_secret_expires_at` while the old one still verifies)", body = SourceAnswer))
)]
async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, SourceId)>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<SourcePatch>,
) -> Result<Json<SourceAnswer>, ApiError> {
    caller.require_write()?;
    let source = load(&caller, &state, &project, &id).await?;
    let grace_ms = match patch.secret_grace_period.as_deref() {
        None => DEFAULT_SECRET_GRACE_MS,
        Some(text) => super::grace_period_ms("/secret_grace_period", text, MAX_SECRET_GRACE_DAYS)?,
    };
    let secret_changed = patch.secret.is_some();
    let changed = source
        .apply(patch, grace_ms, now_millis())
        .map_err(ApiError::violations)?;
    if !state.store.update_source(&changed).await? {
        return Err(ApiError::not_found("source"));
    }
    let view = changed.view();
    // Fields as {"from", "to"}, the secret only as "changed" (as for webhooks).
    let mut changes = audit::view_changes(
        serde_json::to_value(source.view()).expect("views serialise"),
        serde_json::to_value(&view).expect("views serialise"),
    );
    if secret_changed {
        changes.insert("secret".into(), "changed".into());
    }
    let changes = serde_json::Value::Object(changes);
    audit::record(
        &state,
        &caller,
        &changed.project_id,
        "source.updated",
        &changed.id,
        changes,
    )
    .await;
    Ok(Json(SourceAnswer {
        url: public_url(&headers, &changed.path()),
        source: view,
        activity: None,
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/projects/{project}/sources/{id}",
    tag = "sources",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Deleted, with its log; its URL answers 404 from now on"))
)]
async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, SourceId)>,
) -> Result<StatusCode, ApiError> {
    caller.require_write()?;
    let source = load(&caller, &state, &project, &id).await?;
    if !state
        .store
        .delete_source(&source.project_id, &source.id)
        .await?
    {
        return Err(ApiError::not_found("source"));
    }
    let changes = serde_json::json!({"name": source.name, "kind": source.kind});
    audit::record(
        &state,
        &caller,
        &source.project_id,
        "source.deleted",
        &source.id,
        changes,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// Rejections to show, 1 to 100 (`REJECTIONS_KEPT`) [default 100].
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LogPage {
    data: Vec<SourceRejection>,
}

/// The source's own log: the last requests it refused, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/sources/{id}/log",
    tag = "sources",
    params(LogQuery, ("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Refused requests, newest first (the last 100 are kept)", body = LogPage))
)]
async fn log(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, SourceId)>,
    uri: axum::http::Uri,
) -> Result<Json<LogPage>, ApiError> {
    let source = load(&caller, &state, &project, &id).await?;
    let q: LogQuery = parse_query(&uri)?;
    let limit = q.limit.unwrap_or(REJECTIONS_KEPT);
    if !(1..=REJECTIONS_KEPT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {REJECTIONS_KEPT}"),
        ));
    }
    let data = state.store.source_rejections(&source.id, limit).await?;
    Ok(Json(LogPage { data }))
}

/// The URL of `path` on this service, as the caller reached it (a proxy's
/// `X-Forwarded-Proto` and `X-Forwarded-Host` win).
fn public_url(headers: &HeaderMap, path: &str) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("localhost");
    format!("{scheme}://{host}{path}")
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReceivedView {
    delivery_id: String,
    events: Vec<ReceivedEvent>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ReceivedEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    deliveries: Vec<String>,
}

/// What the log records of a request besides its reason, as far as it was read.
#[derive(Default)]
struct Seen {
    delivery_id: Option<String>,
    event_type: Option<String>,
    /// The body, once read (a shared handle: no copy unless it is refused).
    body: Option<Bytes>,
}

/// `POST /v1/projects/{p}/sources/{id}/mlflow`: one MLflow webhook delivery.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/sources/{id}/mlflow",
    tag = "sources",
    description = "Where MLflow 3.x posts its webhooks. No bearer token: the `X-MLflow-Signature` HMAC with the source's secret authenticates the request. Answered only once the events and their deliveries are stored.",
    security(()),
    params(
        ("X-MLflow-Delivery-Id" = String, Header, description = "MLflow's delivery id; a second request with it is refused (409)"),
        ("X-MLflow-Timestamp" = String, Header, description = "Unix seconds; must be within the source's tolerance of now"),
        ("X-MLflow-Signature" = Option<String>, Header, description = "`v1,<base64 HMAC-SHA256(secret, \"{id}.{timestamp}.{body}\")>`; required unless the source is unsigned"),
        ("project" = String, Path),
        ("id" = String, Path),
    ),
    request_body(content = serde_json::Value, description = "MLflow's body: `{entity, action, timestamp, data}`"),
    responses(
        (status = 202, description = "Stored: the native event and, where there is one, its Comet counterpart", body = ReceivedView),
        (status = 400, description = "Missing header, malformed body, unknown event or invalid payload", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong signature, or a timestamp outside the window", body = crate::error::ErrorBody),
        (status = 404, description = "No such source", body = crate::error::ErrorBody),
        (status = 409, description = "This delivery id was already accepted", body = crate::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed authentications from this address; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "Not stored; MLflow retries", body = crate::error::ErrorBody),
    )
)]
async fn receive(
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, SourceId)>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ReceivedView>), ApiError> {
    // Guessing source ids or signatures is slowed like guessing tokens.
    let client = super::auth::connected_address(&extensions);
    state.auth_failures.check(client)?;
    let source = state
        .store
        .get_source(&project, &id)
        .await?
        .filter(|s| s.kind == SourceKind::Mlflow);
    let Some(source) = source else {
        state.auth_failures.record(client);
        return Err(ApiError::not_found("source"));
    };
    let mut seen = Seen::default();
    match accept(&state, &source, &headers, body, &mut seen).await {
        Ok(view) => Ok((StatusCode::ACCEPTED, Json(view))),
        Err(error) => {
            // A 5xx is mlhook's trouble, not the request's: MLflow retries it.
            if error.status == StatusCode::UNAUTHORIZED {
                state.auth_failures.record(client);
            }
            if error.status.is_client_error() {
                record_rejection(&state, &source, &error, seen).await;
            }
            Err(error)
        }
    }
}

async fn accept(
    state: &AppState,
    source: &Source,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    seen: &mut Seen,
) -> Result<ReceivedView, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = mlflow::delivery_headers(
        header(mlflow::DELIVERY_ID_HEADER),
        header(mlflow::TIMESTAMP_HEADER),
        header(mlflow::SIGNATURE_HEADER),
    )
    .map_err(rejected)?;
    seen.delivery_id = Some(delivery.delivery_id.to_string());
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            super::too_large()
        } else {
            ApiError::new(e.status(), "invalid_request", e.body_text())
        }
    })?;
    // Kept for the log, should the request be refused: what MLflow will not send again.
    seen.body = Some(body.clone());
    // Authenticate before reading anything else of the request: with the
    // secret, or with the one it replaced while its grace period lasts.
    let now = now_millis();
    if source.secret.is_some() {
        let mut verdicts = source
            .secrets_at(now)
            .map(|secret| mlflow::verify_signature(secret, &delivery, &body));
        let first = verdicts.next().expect("a signed source has a secret");
        if let Err(reject) = first
            && !verdicts.any(|v| v.is_ok())
        {
            return Err(rejected(reject));
        }
    }
    mlflow::check_timestamp(delivery.timestamp, now / 1000, source.tolerance_secs)
        .map_err(rejected)?;
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "MLflow sends Content-Type: application/json; so must this request",
        ));
    }
    let received = mlflow::parse_body(&body, &state.catalog).map_err(rejected)?;
    seen.event_type = Some(received.event_type.clone());
    if let Some(at) = state
        .store
        .source_delivery_accepted(&source.id, delivery.delivery_id)
        .await?
    {
        return Err(replayed(delivery.delivery_id, Some(at)));
    }
    let submissions = submissions(state, source, &delivery, received, now)?;
    let accepted = ingest(state, submissions).await?;
    let mut event_ids = Vec::with_capacity(accepted.len());
    let mut events = Vec::with_capacity(accepted.len());
    for (accepted, event_type) in accepted {
        match accepted {
            Accepted::Created {
                event_id,
                delivery_ids,
            } => {
                event_ids.push(event_id.clone());
                events.push(ReceivedEvent {
                    id: event_id.into_string(),
                    event_type,
                    deliveries: delivery_ids
                        .into_iter()
                        .map(DeliveryId::into_string)
                        .collect(),
                });
            }
            // Written together, so all were replayed: a concurrent twin won.
            // Or an event came out different from the twin's (a Comet
            // counterpart without a body timestamp takes the delivery's, the
            // source's workspace was renamed): the delivery is the same.
            Accepted::Repeated { .. } | Accepted::KeyReused | Accepted::Withheld => {
                return Err(replayed(delivery.delivery_id, None));
            }
            Accepted::ProjectGone => return Err(ApiError::not_found("source")),
        }
    }
    let remembered = state
        .store
        .record_source_delivery(
            &source.id,
            delivery.delivery_id,
            &event_ids[0],
            now,
            now - SEEN_RETENTION_MS,
        )
        .await;
    if let Err(e) = remembered {
        // The events are stored; their idempotency keys still refuse a
        // replay for 24 hours, far beyond the timestamp window.
        tracing::warn!(error = %e, source = %source.id, "could not remember an accepted MLflow delivery id");
    }
    Ok(ReceivedView {
        delivery_id: delivery.delivery_id.to_string(),
        events,
    })
}

/// The native event and, where MLflow's event has one, its Comet-shaped
/// counterpart: one ingest request, so one transaction (all or nothing).
/// Each carries an idempotency key derived from the delivery id, which the
/// store checks inside that transaction under its primary key.
fn submissions(
    state: &AppState,
    source: &Source,
    delivery: &mlflow::DeliveryHeaders<'_>,
    received: mlflow::Received,
    now: i64,
) -> Result<Vec<(Submission, String)>, ApiError> {
    let key = format!("mlflow:{}:{}", source.id, delivery.delivery_id);
    let is_test = received.is_test;
    let internal_tag = mlflow::is_internal_tag_event(&received.body);
    let created_at = mlflow::event_time_secs(&received.body, delivery.timestamp);
    let workspace = source.workspace_name.as_deref().unwrap_or(&source.name);
    let counterpart =
        mlflow::comet_counterpart(&received.event_type, &received.body, workspace, created_at);
    let mut requests = vec![EventRequest {
        event_type: received.event_type,
        payload: received.body,
        object: None,
        idempotency_key: Some(key.clone()),
    }];
    if let Some((event_type, payload)) = counterpart {
        requests.push(EventRequest {
            event_type: event_type.to_string(),
            payload,
            object: None,
            idempotency_key: Some(format!("{key}:comet")),
        });
    }
    let mut prepared = requests
        .into_iter()
        .map(|request| prepare(state, source, request, now))
        .collect::<Result<Vec<_>, ApiError>>()?;
    for (submission, _) in &mut prepared {
        if is_test {
            as_test(submission);
        }
        if internal_tag {
            without_chat(state, submission);
        }
    }
    if let [(native, _), (twin, _)] = prepared.as_mut_slice() {
        one_shape_each(state, native, twin);
    }
    Ok(prepared)
}

/// One event of the delivery, validated and routed; its errors point into
/// the body MLflow sent.
fn prepare(
    state: &AppState,
    source: &Source,
    request: EventRequest,
    now: i64,
) -> Result<(Submission, String), ApiError> {
    let event_type = request.event_type.clone();
    let submission = state
        .ingestor
        .prepare(&source.project_id, request, now)
        .map_err(|e| {
            let mut error = ApiError::from(e);
            if event_type.starts_with(crate::catalog::mlflow::PREFIX) {
                // Pointers into the body MLflow sent, not into the events
                // route's `payload` that carries it here.
                error = error
                    .rerooted(|field| field.strip_prefix("/payload").unwrap_or(field).to_string());
            }
            error.message = format!("the body does not match {event_type}: {}", error.message);
            error
        })?;
    Ok((submission, event_type))
}

/// MLflow's test event is stored as a test and routed to no webhook: an
/// operator checking the MLflow side must not post to real channels.
fn as_test(submission: &mut Submission) {
    submission.event.is_test = true;
    submission.event.deliveries.clear();
}

/// An event about one of MLflow's own tags goes to no chat format: it is
/// MLflow's bookkeeping, noise in a channel. Programs still get it.
fn without_chat(state: &AppState, submission: &mut Submission) {
    submission.event.deliveries.retain(|d| {
        state
            .subscriptions
            .get(&d.webhook_id)
            .is_none_or(|w| !w.format.is_chat())
    });
}

/// A webhook that listens to both an MLflow change's native event and its
/// Comet twin gets the shape it chose (`mlflow_shape`), not both unless it
/// asked: one chat message per change.
fn one_shape_each(state: &AppState, native: &mut Submission, twin: &mut Submission) {
    let in_both: Vec<WebhookId> = native
        .event
        .deliveries
        .iter()
        .filter(|d| {
            twin.event
                .deliveries
                .iter()
                .any(|t| t.webhook_id == d.webhook_id)
        })
        .map(|d| d.webhook_id.clone())
        .collect();
    let shape = |webhook_id: &WebhookId| {
        state
            .subscriptions
            .get(webhook_id)
            .map_or(MlflowShape::default(), |w| w.mlflow_shape)
    };
    let keep = |webhook_id: &WebhookId, native: bool| {
        !in_both.contains(webhook_id) || shape(webhook_id).keeps(native)
    };
    native
        .event
        .deliveries
        .retain(|d| keep(&d.webhook_id, true));
    twin.event.deliveries.retain(|d| keep(&d.webhook_id, false));
}

async fn ingest(
    state: &AppState,
    submissions: Vec<(Submission, String)>,
) -> Result<Vec<(Accepted, String)>, ApiError> {
    let (submissions, types): (Vec<Submission>, Vec<String>) = submissions.into_iter().unzip();
    let accepted = state.ingestor.ingest(submissions).await?;
    Ok(accepted.into_iter().zip(types).collect())
}

fn rejected(reject: Reject) -> ApiError {
    let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, reject.code, reject.message)
}

fn replayed(delivery_id: &str, accepted_at: Option<i64>) -> ApiError {
    let when = accepted_at
        .map(|at| format!(" at {}", millis_to_rfc3339(at)))
        .unwrap_or_default();
    ApiError::new(
        StatusCode::CONFLICT,
        "replayed_delivery",
        format!("delivery {delivery_id} was already accepted{when}; it is not stored again"),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A reason can quote the request (an unknown event's name): the log keeps
/// at most this many characters of it.
const MAX_REASON: usize = 1000;

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Appends to the source's log; a failure here must not change the answer.
async fn record_rejection(state: &AppState, source: &Source, error: &ApiError, seen: Seen) {
    let rejection = SourceRejection {
        source_id: source.id.clone(),
        at: now_millis(),
        status: error.status.as_u16(),
        code: error.code.to_string(),
        reason: clip(&error.message, MAX_REASON),
        delivery_id: seen.delivery_id,
        event_type: seen.event_type,
        body: seen
            .body
            .filter(|b| b.len() <= MAX_KEPT_BODY)
            .and_then(|b| String::from_utf8(b.to_vec()).ok()),
    };
    tracing::info!(source = %source.id, code = error.code, reason = %error.message, "MLflow delivery refused");
    if let Err(e) = state
        .store
        .record_source_rejection(&rejection, REJECTIONS_KEPT)
        .await
    {
        tracing::warn!(error = %e, source = %source.id, "could not log a refused MLflow delivery");
    }
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, show, update, remove, log, receive))]
pub struct Doc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_clipped() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 2), "éé…");
    }

    #[test]
    fn the_url_follows_the_request_and_its_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert_eq!(public_url(&headers, "/p"), "http://127.0.0.1:8080/p");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        headers.insert(
            "x-forwarded-host",
            "hooks.example.com, inner".parse().unwrap(),
        );
        assert_eq!(public_url(&headers, "/p"), "https://hooks.example.com/p");
    }
}
