//! The audit log: every change to projects, tokens and webhooks, with who
//! made it (the token's prefix) and what changed (secrets only as "changed").

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::{AppState, Page, page_limit, parse_query};
use crate::error::ApiError;
use crate::ids::{ProjectId, millis_to_rfc3339, new_id, now_millis};
use crate::store::AuditRecord;
use crate::webhook::Webhook;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/projects/{project}/audit", get(list))
}

/// Records one change. The change is already stored when this runs; a
/// failed audit write is logged, not turned into a failed request.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    project_id: &ProjectId,
    action: &str,
    target_id: &str,
    changes: Value,
) {
    let record = AuditRecord {
        id: new_id("aud"),
        project_id: Some(project_id.clone()),
        at: now_millis(),
        actor: caller.actor.clone(),
        action: action.to_string(),
        target_id: target_id.to_string(),
        changes,
    };
    if let Err(error) = state.store.append_audit(&record).await {
        tracing::error!(%error, action, target_id, "audit record not written");
    }
}

/// What changed between two versions of a webhook: fields of the public
/// view as `{"from", "to"}`, secret material only as `"changed"`.
pub fn webhook_changes(before: &Webhook, after: &Webhook) -> Value {
    let mut changes = view_changes(
        serde_json::to_value(before.view()).expect("views serialise"),
        serde_json::to_value(after.view()).expect("views serialise"),
    );
    let mut secret_changed = |field: &str, changed: bool| {
        if changed {
            changes.insert(field.into(), json!("changed"));
        }
    };
    secret_changed("secret", before.secret != after.secret);
    secret_changed(
        "protected_header_values",
        protected_values(before) != protected_values(after),
    );
    secret_changed(
        "github.token",
        before.format_config.github.as_ref().map(|g| &g.token)
            != after.format_config.github.as_ref().map(|g| &g.token),
    );
    secret_changed("signing_key", before.signing_secret != after.signing_secret);
    Value::Object(changes)
}

fn protected_values(w: &Webhook) -> Vec<(&str, &str)> {
    w.headers
        .iter()
        .filter(|h| h.protected)
        .map(|h| (h.key.as_str(), h.value.as_str()))
        .collect()
}

/// Top-level fields of two JSON objects that differ, as `{"from", "to"}`;
/// `updated_at`, which every change moves, is not one of them.
pub fn view_changes(before: Value, after: Value) -> Map<String, Value> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Map::new();
    };
    after
        .into_iter()
        .filter(|(key, value)| key != "updated_at" && before.get(key) != Some(value))
        .map(|(key, to)| {
            let from = before.get(&key).cloned().unwrap_or(Value::Null);
            (key, json!({"from": from, "to": to}))
        })
        .collect()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries per page, 1 to 250 (`MAX_PAGE`) [default 50].
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditView {
    id: String,
    at: String,
    actor: String,
    action: String,
    target_id: String,
    changes: Value,
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/audit",
    tag = "audit",
    params(AuditQuery, ("project" = String, Path)),
    responses((status = 200, description = "Changes to the project, its tokens and webhooks, newest first", body = Page<AuditView>))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<AuditView>>, ApiError> {
    // The admin may read the history of a project deleted since.
    let project = match caller.is_admin() {
        true => project,
        false => caller.project_id(&state, &project)?,
    };
    let query: AuditQuery = parse_query(&uri)?;
    let limit = page_limit(query.limit)?;
    let records = state
        .store
        .list_audit(&project, query.cursor.as_deref(), limit)
        .await?;
    let data = records
        .into_iter()
        .map(|r| AuditView {
            id: r.id,
            at: millis_to_rfc3339(r.at),
            actor: r.actor,
            action: r.action,
            target_id: r.target_id,
            changes: r.changes,
        })
        .collect();
    Ok(Json(Page::new(data, limit, |v| v.id.clone())))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;
