//! The REST API: routes, the JSON body extractor, and the application state
//! that handlers share. One file per resource; each holds its routes and
//! request/answer types.

pub mod auth;
mod event_types;
mod events;
mod health;
mod projects;
mod webhooks;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::Router;
use serde::de::DeserializeOwned;

use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::ingest::Ingestor;
use crate::store::Store;
use crate::subscriptions::Subscriptions;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub subscriptions: Arc<Subscriptions>,
    pub ingestor: Ingestor,
    /// Hash of `MLHOOK_ADMIN_TOKEN`, when the operator set one.
    pub admin_token_hash: Option<String>,
    pub token_cache: Arc<auth::TokenCache>,
    pub max_body_bytes: usize,
    /// Lease given to deliveries this node creates and sends from memory.
    pub lease_ms: i64,
}

pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(projects::routes())
        .merge(event_types::routes())
        .merge(webhooks::routes())
        .merge(events::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}

/// `Json` whose rejections speak the API's error shape, naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A body that may be empty (then the defaults apply) or JSON.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_field("/", e.to_string()))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => data_error(&e.body_text()),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("body is not valid JSON: {}", source_text(&e)))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        other => ApiError::new(other.status(), "invalid_request", other.body_text()),
    }
}

fn source_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

/// serde's message names the path as `a.b[2].c: …`; the API names fields as JSON pointers.
fn data_error(text: &str) -> ApiError {
    let detail = text.strip_prefix("Failed to deserialize the JSON body into the target type: ").unwrap_or(text);
    match detail.split_once(": ") {
        Some((path, message)) if !path.contains(' ') => ApiError::invalid_field(to_pointer(path), message),
        _ => ApiError::invalid_field("/", detail),
    }
}

fn to_pointer(path: &str) -> String {
    let mut pointer = String::new();
    for part in path.split('.') {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            pointer.push('/');
            pointer.push_str(name);
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            pointer.push('/');
            pointer.push_str(index.trim_end_matches(']'));
        }
    }
    if pointer.is_empty() { "/".to_string() } else { pointer }
}

pub fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than the configured limit")
}

#[cfg(test)]
mod tests {
    use super::to_pointer;

    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(to_pointer("events[3].payload"), "/events/3/payload");
        assert_eq!(to_pointer("headers[0].key"), "/headers/0/key");
        assert_eq!(to_pointer("url"), "/url");
        assert_eq!(to_pointer("."), "/");
    }
}
