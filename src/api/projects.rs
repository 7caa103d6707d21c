//! Projects (namespaces) and their tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::{ApiJson, AppState, audit};
use crate::error::ApiError;
use crate::ids::{ProjectId, millis_to_rfc3339, now_millis};
use crate::store::Project;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list).post(create))
        .route(
            "/v1/projects/{project}",
            get(show).patch(update).delete(remove),
        )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "fraud-team", "name": "Fraud team", "link_base_url": "https://app.valohai.com"}))]
struct ProjectInput {
    /// A lowercase slug (`check_slug`): it appears in URLs and messages.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    id: String,
    /// 1 to 200 characters, not only whitespace (`check_name`; the pattern
    /// lists the characters Rust's `trim` removes).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    name: String,
    /// Where relative links in payloads point, e.g. `https://app.valohai.com`:
    /// an http(s) URL with a host name or IPv4 address, in ASCII.
    #[serde(default)]
    link_base_url: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProjectPatch {
    /// 1 to 200 characters, not only whitespace (`check_name`); absent or
    /// `null` keeps the name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    name: Option<String>,
    /// As on create; `null` removes it.
    #[serde(default, deserialize_with = "crate::validation::present_or_null")]
    link_base_url: Option<Option<String>>,
}

/// A link base must be an absolute http(s) URL, as the document's pattern
/// says: links are made by joining it with a payload's relative path.
fn check_link_base(url: Option<&str>) -> Result<(), ApiError> {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(super::schemas::LINK_BASE).expect("the link base pattern compiles")
    });
    match url {
        Some(url) if !PATTERN.is_match(url) => Err(ApiError::invalid_field(
            "/link_base_url",
            "must be an absolute http(s) URL: a host name or IPv4 address in ASCII, a port \
             from 1 to 65535, a path of visible characters",
        )),
        _ => Ok(()),
    }
}

#[derive(Serialize, Clone, utoipa::ToSchema)]
struct ProjectView {
    id: String,
    name: String,
    link_base_url: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        ProjectView {
            id: p.id.into_string(),
            name: p.name,
            link_base_url: p.link_base_url,
            created_at: millis_to_rfc3339(p.created_at),
            updated_at: millis_to_rfc3339(p.updated_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct ProjectList {
    data: Vec<ProjectView>,
}

/// A project id is a lowercase slug: it appears in URLs and messages.
fn check_slug(id: &str) -> Result<(), ApiError> {
    let valid = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "/id",
            "must be a lowercase slug: a-z, 0-9 and '-', 1 to 63 characters",
        ))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            "/name",
            "must be 1 to 200 characters",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/projects",
    tag = "projects",
    request_body = ProjectInput,
    responses((status = 201, description = "Created", body = ProjectView), (status = 409, description = "Conflict", body = crate::error::ErrorBody))
)]
async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ProjectInput>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require_admin()?;
    check_slug(&input.id)?;
    check_name(&input.name)?;
    check_link_base(input.link_base_url.as_deref())?;
    let now = now_millis();
    let project = Project {
        id: input.id.into(),
        name: input.name,
        link_base_url: input.link_base_url,
        created_at: now,
        updated_at: now,
    };
    state.store.create_project(&project).await?;
    state
        .subscriptions
        .project_saved(&project.id, project.link_base_url.clone());
    let id = project.id.clone();
    let view = ProjectView::from(project);
    let changes = serde_json::to_value(&view).expect("views serialise");
    audit::record(&state, &caller, &id, "project.created", &id, changes).await;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    responses((status = 200, description = "The projects the token may see", body = ProjectList))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ProjectList>, ApiError> {
    let projects = state.store.list_projects().await?;
    let data = projects
        .into_iter()
        .filter(|p| caller.may_see(&p.id))
        .map(ProjectView::from)
        .collect();
    Ok(Json(ProjectList { data }))
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}",
    tag = "projects",
    params(("project" = String, Path)),
    responses((status = 200, description = "The project", body = ProjectView))
)]
async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(caller.project(&state, &project).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/v1/projects/{project}",
    tag = "projects",
    params(("project" = String, Path)),
    request_body = ProjectPatch,
    responses((status = 200, description = "Updated", body = ProjectView))
)]
async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    ApiJson(patch): ApiJson<ProjectPatch>,
) -> Result<Json<ProjectView>, ApiError> {
    let mut project = caller.project(&state, &project).await?;
    let before = serde_json::to_value(ProjectView::from(project.clone())).expect("views serialise");
    if let Some(name) = patch.name {
        check_name(&name)?;
        project.name = name;
    }
    if let Some(link_base_url) = patch.link_base_url {
        check_link_base(link_base_url.as_deref())?;
        project.link_base_url = link_base_url;
    }
    project.updated_at = now_millis();
    state.store.update_project(&project).await?;
    state
        .subscriptions
        .project_saved(&project.id, project.link_base_url.clone());
    let id = project.id.clone();
    let view = ProjectView::from(project);
    let changes = audit::view_changes(
        before,
        serde_json::to_value(&view).expect("views serialise"),
    );
    audit::record(&state, &caller, &id, "project.updated", &id, changes.into()).await;
    Ok(Json(view))
}

/// Deletes the project with its webhooks, events, deliveries and tokens.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project}",
    tag = "projects",
    params(("project" = String, Path)),
    responses((status = 204, description = "Deleted with everything in it"))
)]
async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    if !state.store.delete_project(&project).await? {
        return Err(ApiError::not_found("project"));
    }
    // Forgotten, not re-read: routes that check a project from memory
    // would otherwise write rows for it (a foreign-key failure, a 503).
    state.subscriptions.project_deleted(&project);
    audit::record(
        &state,
        &caller,
        &project,
        "project.deleted",
        &project,
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, update, remove))]
pub struct Doc;
