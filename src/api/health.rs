//! Liveness and readiness, without auth (for load balancers and orchestrators).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Object))
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The service can accept events: the store answers and takes writes;
/// otherwise 503 so traffic goes elsewhere.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "The store answers and takes writes", body = Object), (status = 503, description = "The store does not answer, or refuses writes (its disk is full)", body = Object))
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness check failed");
        return unavailable("store unreachable");
    }
    if let Err(e) = state.store.check_writable().await {
        tracing::warn!(error = %e, "readiness check failed: the store refuses writes");
        let reason = if e.is_no_space() {
            "store full"
        } else {
            "store refuses writes"
        };
        return unavailable(reason);
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}

fn unavailable(reason: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "reason": reason})),
    )
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz))]
pub struct Doc;
