//! The event catalog, read-only: every type with its schema, example and test payload.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use crate::catalog::EventType;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/event-types", get(list))
        .route("/v1/event-types/{event_type}", get(show))
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventTypeList<'a> {
    data: Vec<&'a EventType>,
}

#[utoipa::path(
    get,
    path = "/v1/event-types",
    tag = "event-types",
    responses((status = 200, description = "The event catalog", body = EventTypeList))
)]
async fn list(_caller: Caller, State(state): State<AppState>) -> Json<serde_json::Value> {
    let list = EventTypeList {
        data: state.catalog.list().collect(),
    };
    Json(serde_json::to_value(list).expect("catalog serialises"))
}

#[utoipa::path(
    get,
    path = "/v1/event-types/{event_type}",
    tag = "event-types",
    responses((status = 200, description = "One event type with its schema, example and test payload", body = crate::catalog::EventType))
)]
async fn show(
    _caller: Caller,
    State(state): State<AppState>,
    Path(event_type): Path<String>,
) -> Result<Json<EventType>, ApiError> {
    state
        .catalog
        .get(&event_type)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("event type"))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show))]
pub struct Doc;
