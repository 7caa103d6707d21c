//! A project's tokens: create (the token is shown in that answer only),
//! list (prefix and times, never the token), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Caller, generate_token};
use super::{AppState, audit};
use crate::error::ApiError;
use crate::ids::{ProjectId, TokenId, millis_to_rfc3339, now_millis};
use crate::store::{TokenKind, TokenRecord};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project}/tokens", get(list).post(create))
        .route("/v1/projects/{project}/tokens/{id}", delete(revoke))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenInput {
    #[serde(default)]
    #[schema(max_length = 200)]
    name: Option<String>,
    /// `write` (default) or `read`.
    #[serde(default)]
    #[schema(pattern = "^(write|read)$")]
    kind: Option<String>,
}

/// A token as lists show it.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenView {
    id: String,
    prefix: String,
    kind: &'static str,
    project_id: Option<String>,
    name: Option<String>,
    created_at: String,
    revoked_at: Option<String>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        TokenView {
            id: t.id.into_string(),
            prefix: t.prefix,
            kind: t.kind.as_str(),
            project_id: t.project_id.map(ProjectId::into_string),
            name: t.name,
            created_at: millis_to_rfc3339(t.created_at),
            revoked_at: t.revoked_at.map(millis_to_rfc3339),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedToken {
    /// The token itself: shown in this answer only.
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TokenList {
    data: Vec<TokenView>,
    next_cursor: Option<String>,
}

fn parse_kind(kind: Option<&str>) -> Result<TokenKind, ApiError> {
    match kind {
        None | Some("write") => Ok(TokenKind::Write),
        Some("read") => Ok(TokenKind::Read),
        Some(_) => Err(ApiError::invalid_field(
            "/kind",
            "must be \"write\" or \"read\"",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project}/tokens",
    tag = "tokens",
    params(("project" = String, Path)),
    request_body = Option<TokenInput>,
    responses((status = 201, description = "Created; `token` appears in this answer only", body = CreatedToken))
)]
async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
    super::ApiJsonOrDefault(input): super::ApiJsonOrDefault<TokenInput>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let project = caller.project_id(&state, &project)?;
    let kind = parse_kind(input.kind.as_deref())?;
    if let Some(name) = &input.name
        && name.chars().count() > 200
    {
        return Err(ApiError::invalid_field(
            "/name",
            "must be at most 200 characters",
        ));
    }
    let (token, record) = generate_token(kind, Some(&project), input.name);
    state.store.insert_token(&record).await?;
    let changes = json!({"prefix": record.prefix, "kind": kind.as_str(), "name": record.name});
    audit::record(
        &state,
        &caller,
        &project,
        "token.created",
        &record.id,
        changes,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            view: record.into(),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/projects/{project}/tokens",
    tag = "tokens",
    params(("project" = String, Path)),
    responses((status = 200, description = "Tokens of the project: prefixes, never the tokens", body = TokenList))
)]
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(project): Path<ProjectId>,
) -> Result<Json<TokenList>, ApiError> {
    let project = caller.project_id(&state, &project)?;
    let tokens = state.store.list_tokens(&project).await?;
    Ok(Json(TokenList {
        data: tokens.into_iter().map(TokenView::from).collect(),
        next_cursor: None,
    }))
}

/// Revokes at once on this node; other nodes stop accepting the token
/// within their token cache's lifetime (5 s).
#[utoipa::path(
    delete,
    path = "/v1/projects/{project}/tokens/{id}",
    tag = "tokens",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Revoked"))
)]
async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path((project, id)): Path<(ProjectId, TokenId)>,
) -> Result<StatusCode, ApiError> {
    let project = caller.project_id(&state, &project)?;
    if !state
        .store
        .revoke_token(&project, &id, now_millis())
        .await?
    {
        return Err(ApiError::not_found("token"));
    }
    state.token_cache.clear();
    audit::record(&state, &caller, &project, "token.revoked", &id, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, revoke))]
pub struct Doc;
