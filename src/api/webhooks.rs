//! Webhooks of a project. Reads show `WebhookView` (no secrets); the signing
//! secret is shown at creation and on its own explicit request only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::auth::Caller;
use super::{ApiJson, AppState};
use crate::error::ApiError;
use crate::ids::now_millis;
use crate::webhook::{Webhook, WebhookInput, WebhookPatch, WebhookView};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/webhooks", get(list).post(create))
        .route("/v1/projects/{project}/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/projects/{project}/webhooks/{id}/signing-secret", get(signing_secret))
}

#[derive(Serialize)]
struct WebhookList {
    data: Vec<WebhookView>,
}

#[derive(Serialize)]
struct CreatedWebhook {
    #[serde(flatten)]
    webhook: WebhookView,
    /// Shown here and by `GET …/signing-secret` only.
    signing_secret: String,
}

#[derive(Serialize)]
struct SigningSecret {
    signing_secret: String,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<String>,
) -> Result<Json<WebhookList>, ApiError> {
    let project = caller.project(&state, &project).await?;
    let webhooks = state.store.list_webhooks(&project.id).await?;
    Ok(Json(WebhookList { data: webhooks.iter().map(Webhook::view).collect() }))
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<String>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let project = caller.project(&state, &project).await?;
    let webhook = Webhook::create(input, &project.id, &state.catalog, now_millis()).map_err(ApiError::violations)?;
    state.store.create_webhook(&webhook).await?;
    state.subscriptions.refresh_project(&*state.store, &project.id).await?;
    let created = CreatedWebhook { webhook: webhook.view(), signing_secret: webhook.signing_secret.clone() };
    Ok((StatusCode::CREATED, Json(created)))
}

async fn load(caller: &Caller, state: &AppState, project: &str, id: &str) -> Result<Webhook, ApiError> {
    let project = caller.project(state, project).await?;
    state.store.get_webhook(&project.id, id).await?.ok_or_else(|| ApiError::not_found("webhook"))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(load(&caller, &state, &project, &id).await?.view()))
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    let mut webhook = load(&caller, &state, &project, &id).await?;
    webhook.apply(patch, &state.catalog, now_millis()).map_err(ApiError::violations)?;
    state.store.update_webhook(&webhook).await?;
    state.subscriptions.refresh_project(&*state.store, &webhook.project_id).await?;
    Ok(Json(webhook.view()))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let webhook = load(&caller, &state, &project, &id).await?;
    state.store.delete_webhook(&webhook.project_id, &webhook.id).await?;
    state.subscriptions.refresh_project(&*state.store, &webhook.project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn signing_secret(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<SigningSecret>, ApiError> {
    let webhook = load(&caller, &state, &project, &id).await?;
    Ok(Json(SigningSecret { signing_secret: webhook.signing_secret }))
}
