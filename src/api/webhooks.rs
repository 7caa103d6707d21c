//! Webhooks of a project. Reads show `WebhookView` (no secrets); the signing
//! secret is shown at creation and on its own explicit request only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use serde::Deserialize;

use super::auth::Caller;
use super::deliveries::SendOutcome;
use super::{ApiJson, ApiJsonOrDefault, AppState, audit, parse_time};
use crate::error::ApiError;
use crate::ids::{DeliveryId, ProjectId, WebhookId, millis_to_rfc3339, now_millis};
use crate::store::StatusCounts;
use crate::webhook::{Scheme, Webhook, WebhookInput, WebhookPatch, WebhookView};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/webhooks", get(list).post(create))
        .route(
            "/v1/projects/{project}/webhooks/{id}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/v1/projects/{project}/webhooks/{id}/signing-secret",
            get(signing_secret),
        )
        .route(
            "/v1/projects/{project}/webhooks/{id}/signing-secret/rotate",
            post(rotate_signing_secret),
        )
        .route("/v1/projects/{project}/webhooks/{id}/stats", get(stats))
        .route("/v1/projects/{project}/webhooks/{id}/test", post(test))
        .route(
            "/v1/projects/{project}/webhooks/{id}/recover",
            post(recover),
        )
        .route("/v1/projects/{project}/webhooks/validate", post(validate))
        .route(
            "/v1/projects/{project}/webhooks/{id}/validate",
            post(validate_changes),
        )
}

#[derive(Serialize, utoipa::ToSchema)]
struct WebhookList {
    data: Vec<WebhookView>,
}

/// The webhook as every read shows it, plus the HMAC secret (shown once
/// here): the view already names the scheme and any public key.
#[derive(Serialize, utoipa::ToSchema)]
struct CreatedWebhook {
    #[serde(flatten)]
    webhook: WebhookView,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

/// What a receiver verifies with. For HMAC that is the shared `whsec_`
/// secret, shown at creation and on explicit request only; for ed25519 the
/// `whpk_` public key (the `whsk_` secret is never shown).
#[derive(Serialize, utoipa::ToSchema)]
struct SigningKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_public_key: Option<String>,
    signing_scheme: Scheme,
    /// During a rotation: until when the previous key signs too.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_key_expires_at: Option<String>,
}

impl SigningKey {
    fn of(webhook: &Webhook) -> SigningKey {
        let scheme = webhook.signing_scheme();
        SigningKey {
            signing_secret: (scheme == Scheme::HmacSha256).then(|| webhook.signing_secret.clone()),
            signing_public_key: webhook.signing_public_key(),
            signing_scheme: scheme,
            previous_key_expires_at: webhook
                .previous_signing
                .as_ref()
                .map(|p| millis_to_rfc3339(p.expires_at)),
        }
    }
}

/// `POST …/signing-secret/rotate`; both fields optional.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateInput {
    /// Switch scheme on rotation; default: keep the current one.
    signing_scheme: Option<Scheme>,
    /// How long the old key keeps signing, e.g. "1h" or "0s" [default: the
    /// server's --signing-grace-period]; at most 30 days.
    grace_period: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/webhooks",
    tag = "webhooks",
    params(("project" = String, Path)),
    responses((status = 200, description = "Webhooks of the project (no secrets)", body = WebhookList))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
) -> Result<Json<WebhookList>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let webhooks = state.store.list_webhooks(&project.id).await?;
    Ok(Json(WebhookList {
        data: webhooks.iter().map(Webhook::view).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project}/webhooks",
    tag = "webhooks",
    params(("project" = String, Path)),
    request_body = WebhookInput,
    responses((status = 201, description = "Created; the signing secret (HMAC) or public key (ed25519) is in this answer", body = CreatedWebhook))
)]
async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let project = caller.project(&state, &project).await?;
    let webhook = Webhook::create(input, &project.id, &state.catalog, now_millis())
        .map_err(ApiError::violations)?;
    check_destination(&state, &webhook)?;
    state.store.create_webhook(&webhook).await?;
    let view = webhook.view();
    let changes = serde_json::to_value(&view).expect("views serialise");
    changed(&state, &caller, &webhook, "webhook.created", changes).await?;
    let created = CreatedWebhook {
        webhook: view,
        signing_secret: SigningKey::of(&webhook).signing_secret,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The network guard's view of a destination at save time: what the URL
/// alone shows (scheme, IP-literal host). Host names are checked again on
/// every attempt, after resolution.
fn check_destination(state: &AppState, webhook: &Webhook) -> Result<(), ApiError> {
    let (field, url) = match &webhook.format_config.github {
        Some(github) => ("/github/api_url", github.dispatch_url()),
        None => ("/url", webhook.url.clone()),
    };
    state
        .network
        .check_url(&url)
        .map_err(|message| ApiError::invalid_field(field, message))
}

/// After a stored change to `webhook`: routing reads the store again (the
/// lanes send with what it holds), and the change goes to the audit log.
async fn changed(
    state: &AppState,
    caller: &Caller,
    webhook: &Webhook,
    action: &str,
    changes: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .subscriptions
        .refresh_webhooks(&*state.store, &webhook.project_id)
        .await?;
    audit::record(
        state,
        caller,
        &webhook.project_id,
        action,
        &webhook.id,
        changes,
    )
    .await;
    Ok(())
}

async fn load(
    caller: &Caller,
    state: &AppState,
    project: &ProjectId,
    id: &WebhookId,
) -> Result<Webhook, ApiError> {
    let project = caller.project(state, project).await?;
    state
        .store
        .get_webhook(&project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/webhooks/{id}",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The webhook (no secrets)", body = WebhookView))
)]
async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(load(&caller, &state, &project, &id).await?.view()))
}

#[utoipa::path(
    patch,
    path = "/v1/projects/{project}/webhooks/{id}",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    request_body = WebhookPatch,
    responses((status = 200, description = "Updated", body = WebhookView))
)]
async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    let mut webhook = load(&caller, &state, &project, &id).await?;
    let before = webhook.clone();
    let was_enabled = webhook.enabled;
    webhook
        .apply(patch, &state.catalog, now_millis())
        .map_err(ApiError::violations)?;
    check_destination(&state, &webhook)?;
    state.store.update_webhook(&webhook).await?;
    if was_enabled && !webhook.enabled {
        // Kept as `paused` until the webhook is enabled again and recovered.
        state.store.pause_webhook_deliveries(&webhook.id).await?;
    }
    let changes = audit::webhook_changes(&before, &webhook);
    changed(&state, &caller, &webhook, "webhook.updated", changes).await?;
    Ok(Json(webhook.view()))
}

#[utoipa::path(
    delete,
    path = "/v1/projects/{project}/webhooks/{id}",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
) -> Result<StatusCode, ApiError> {
    let webhook = load(&caller, &state, &project, &id).await?;
    state
        .store
        .delete_webhook(&webhook.project_id, &webhook.id)
        .await?;
    let changes = serde_json::json!({"name": webhook.name, "url": webhook.url});
    changed(&state, &caller, &webhook, "webhook.deleted", changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/webhooks/{id}/signing-secret",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "What receivers verify with", body = SigningKey))
)]
async fn signing_secret(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
) -> Result<Json<SigningKey>, ApiError> {
    caller.require_write()?;
    let webhook = load(&caller, &state, &project, &id).await?;
    Ok(Json(SigningKey::of(&webhook)))
}

/// A new signing key; the old one keeps signing (a second signature in the
/// same header) for the grace period, so receivers can switch without a gap.
/// The answer names the scheme (and an ed25519 public key) but not an HMAC
/// secret: that is read with `GET …/signing-secret`, like any other time.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/webhooks/{id}/signing-secret/rotate",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    request_body = Option<RotateInput>,
    responses((status = 200, description = "A new key (an HMAC secret is read with GET …/signing-secret); the old one signs too until the grace period ends", body = SigningKey))
)]
async fn rotate_signing_secret(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
    ApiJsonOrDefault(input): ApiJsonOrDefault<RotateInput>,
) -> Result<Json<SigningKey>, ApiError> {
    let mut webhook = load(&caller, &state, &project, &id).await?;
    let grace_ms = match &input.grace_period {
        None => state.signing_grace_ms,
        Some(text) => super::grace_period_ms("/grace_period", text, MAX_GRACE_DAYS)?,
    };
    let before = webhook.clone();
    webhook.rotate_signing_key(input.signing_scheme, grace_ms, now_millis());
    state.store.update_webhook(&webhook).await?;
    let changes = audit::webhook_changes(&before, &webhook);
    changed(
        &state,
        &caller,
        &webhook,
        "webhook.signing_key_rotated",
        changes,
    )
    .await?;
    let mut key = SigningKey::of(&webhook);
    key.signing_secret = None;
    Ok(Json(key))
}

/// The longest grace period a rotated signing key may have.
const MAX_GRACE_DAYS: i64 = 30;

#[derive(Serialize, utoipa::ToSchema)]
struct WindowStats {
    pending: u64,
    succeeded: u64,
    failed: u64,
    exhausted: u64,
    paused: u64,
    /// Succeeded over finished-or-failing deliveries; null when there were none.
    success_rate: Option<f64>,
}

impl From<StatusCounts> for WindowStats {
    fn from(c: StatusCounts) -> Self {
        let judged = c.succeeded + c.failed + c.exhausted;
        let success_rate = (judged > 0).then(|| c.succeeded as f64 / judged as f64);
        WindowStats {
            pending: c.pending,
            succeeded: c.succeeded,
            failed: c.failed,
            exhausted: c.exhausted,
            paused: c.paused,
            success_rate,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct StatsView {
    webhook_id: String,
    last_hour: WindowStats,
    last_day: WindowStats,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
}

/// Counts by status and success rate over the last hour and day.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/webhooks/{id}/stats",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Counts and success rate over the last hour and day", body = StatsView))
)]
async fn stats(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
) -> Result<Json<StatsView>, ApiError> {
    let webhook = load(&caller, &state, &project, &id).await?;
    let s = state.store.webhook_stats(&webhook.id, now_millis()).await?;
    Ok(Json(StatsView {
        webhook_id: webhook.id.into_string(),
        last_hour: s.last_hour.into(),
        last_day: s.last_day.into(),
        last_success_at: s.last_success_at.map(millis_to_rfc3339),
        last_failure_at: s.last_failure_at.map(millis_to_rfc3339),
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestInput {
    /// The type whose test payload is sent [default: the webhook's first].
    #[schema(schema_with = super::schemas::known_event_type_or_null)]
    event_type: Option<String>,
}

/// Sends the event family's test payload now and answers what was sent and
/// what came back; the send is recorded in the delivery log as a test.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/webhooks/{id}/test",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    request_body = Option<TestInput>,
    responses((status = 200, description = "What was sent and what came back", body = SendOutcome))
)]
async fn test(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
    super::ApiJsonOrDefault(input): super::ApiJsonOrDefault<TestInput>,
) -> Result<Json<SendOutcome>, ApiError> {
    let webhook = load(&caller, &state, &project, &id).await?;
    let (delivery_id, result) = state.ingestor.send_test(&webhook, input.event_type).await?;
    Ok(Json(SendOutcome::new(&result, Some(delivery_id))))
}

/// The wizard's check before save: the same send for a configuration that
/// is not stored; nothing is recorded.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/webhooks/validate",
    tag = "webhooks",
    params(("project" = String, Path)),
    request_body = WebhookInput,
    responses((status = 200, description = "The test send for an unsaved configuration; nothing stored", body = SendOutcome))
)]
async fn validate(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Json<SendOutcome>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let webhook = Webhook::create(input, &project.id, &state.catalog, now_millis())
        .map_err(ApiError::violations)?;
    send_unsaved(&state, &webhook).await
}

/// The same check for an edit in progress: the stored webhook with the
/// patch applied, so protected values, the secret and the GitHub token need
/// not be typed again; nothing is stored.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/webhooks/{id}/validate",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    request_body = Option<WebhookPatch>,
    responses((status = 200, description = "The test send for the webhook as it would be after the patch; nothing stored", body = SendOutcome))
)]
async fn validate_changes(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
    ApiJsonOrDefault(patch): ApiJsonOrDefault<WebhookPatch>,
) -> Result<Json<SendOutcome>, ApiError> {
    let mut webhook = load(&caller, &state, &project, &id).await?;
    webhook
        .apply(patch, &state.catalog, now_millis())
        .map_err(ApiError::violations)?;
    send_unsaved(&state, &webhook).await
}

/// Sends the test payload to a configuration that is not (or not yet) stored.
async fn send_unsaved(state: &AppState, webhook: &Webhook) -> Result<Json<SendOutcome>, ApiError> {
    check_destination(state, webhook)?;
    let event = state.engine.test_event(webhook, None)?;
    let result = state
        .engine
        .send_now(webhook, &event, &DeliveryId::generate())
        .await;
    Ok(Json(SendOutcome::new(&result, None)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RecoverInput {
    /// An RFC 3339 time or a duration ago (`2h`).
    since: String,
    until: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Recovered {
    recovered: u64,
}

/// Re-queues the webhook's failed, exhausted and paused deliveries created in
/// the window, with a fresh retry schedule.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/webhooks/{id}/recover",
    tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    request_body = RecoverInput,
    responses((status = 200, description = "Failed, exhausted and paused deliveries re-queued", body = Recovered), (status = 409, description = "Conflict", body = crate::error::ErrorBody))
)]
async fn recover(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, WebhookId)>,
    ApiJson(input): ApiJson<RecoverInput>,
) -> Result<Json<Recovered>, ApiError> {
    let webhook = load(&caller, &state, &project, &id).await?;
    if !webhook.enabled {
        return Err(ApiError::conflict(
            "the webhook is disabled: enable it (PATCH enabled: true) before recovering",
        ));
    }
    let since = parse_time("/since", &input.since)?;
    let until = input
        .until
        .as_deref()
        .map(|t| parse_time("/until", t))
        .transpose()?;
    let recovered = state
        .store
        .recover_deliveries(&webhook.id, since, until, now_millis())
        .await?;
    state.engine.wake_scheduler();
    Ok(Json(Recovered { recovered }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    show,
    update,
    remove,
    signing_secret,
    rotate_signing_secret,
    stats,
    test,
    validate,
    recover,
    validate_changes
))]
pub struct Doc;
