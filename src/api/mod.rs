//! The REST API: routes, the JSON body extractor, and the application state
//! that handlers share. One file per resource; each holds its routes and
//! request/answer types.

mod audit;
pub mod auth;
mod deliveries;
mod event_types;
mod events;
mod formats;
mod health;
pub mod metrics;
mod numbers;
mod objects_only;
pub mod openapi;
mod projects;
mod schemas;
pub mod session_cookie;
mod sources;
mod tokens;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::ingest::Ingestor;
use crate::store::Store;
use crate::subscriptions::Subscriptions;
use objects_only::ObjectsOnly;

/// What every handler shares. Handlers and extractors clone it per request,
/// so it is one reference count: cloning a dozen `Arc`s and the token hashes
/// one by one on every request showed up in profiles (docs/performance.md).
#[derive(Clone)]
pub struct AppState(Arc<Resources>);

impl AppState {
    pub fn new(resources: Resources) -> AppState {
        AppState(Arc::new(resources))
    }
}

impl std::ops::Deref for AppState {
    type Target = Resources;

    fn deref(&self) -> &Resources {
        &self.0
    }
}

/// What the handlers reach through `AppState`.
pub struct Resources {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub subscriptions: Arc<Subscriptions>,
    pub ingestor: Ingestor,
    pub engine: Arc<crate::delivery::Engine>,
    /// Which destinations may be reached: checked again on every attempt.
    pub network: Arc<crate::netguard::NetworkPolicy>,
    /// Hash of `MLHOOK_ADMIN_TOKEN`, when the operator set one.
    pub admin_token_hash: Option<String>,
    pub token_cache: Arc<auth::TokenCache>,
    pub auth_failures: Arc<auth::AuthFailures>,
    /// How long a rotated-out signing key keeps signing.
    pub signing_grace_ms: i64,
    pub max_body_bytes: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who may read `/metrics`.
    pub metrics_access: metrics::MetricsAccess,
    /// PostgreSQL: how long a request may wait for the database, all its
    /// waits together, before its 503 (`--db-acquire-timeout`).
    pub db_wait: Option<std::time::Duration>,
}

/// Every route of the API, and `extra` (the console's) under the same
/// request ids, logs, metrics and limits.
pub fn router(state: AppState, extra: Router<AppState>) -> Router {
    let max_body = state.max_body_bytes;
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        .merge(projects::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(event_types::routes())
        .merge(webhooks::routes())
        .merge(events::routes())
        .merge(deliveries::routes())
        .merge(formats::routes())
        .merge(extra)
        .merge(sources::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bound_database_waits,
        ))
        // Outermost: request id, log span and metrics see every answer.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// Gives the request its budget for waiting on the database (see
/// `store::deadline`): while the database is unreachable, every route
/// answers 503 within it, whatever store calls it makes.
async fn bound_database_waits(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match state.db_wait {
        Some(bound) => crate::store::deadline::bounded(bound, next.run(request)).await,
        None => next.run(request).await,
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// A JSON body whose errors speak the API's error shape, naming the field
/// as a JSON pointer (`/headers/1/key`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        decode(&bytes).map(ApiJson)
    }
}

/// Like `ApiJson`, but an empty body, or a JSON `null` (what the document's
/// optional body allows), means the defaults; any content type.
pub struct ApiJsonOrDefault<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrDefault<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiJsonOrDefault(T::default()));
        }
        decode::<Option<T>>(&bytes).map(|v| ApiJsonOrDefault(v.unwrap_or_default()))
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(e.status(), "invalid_request", e.body_text())
            }
        })
}

/// Parses JSON, naming the exact place of a type error, unknown or missing field.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: &serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("body is not valid JSON: {e}"),
        )
    };
    // serde reads a struct from an array too (`[null, null]` as its fields
    // in order); every body is an object, as the document says, and so is
    // every object within it (`ObjectsOnly`).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::invalid_field(
            "",
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(ObjectsOnly(&mut de)).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return malformed(inner);
        }
        let message = strip_position(&inner.to_string());
        ApiError::invalid_field(pointer_of(e.path(), &message), message)
    })?;
    de.end().map_err(|e| malformed(&e))?;
    if let Some(field) = numbers::wide_integer(bytes) {
        return Err(ApiError::invalid_field(
            field,
            "integer beyond 64 bits: send it as a string (it would not be kept as written)",
        ));
    }
    Ok(value)
}

/// serde appends " at line 1 column 42"; the pointer already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The JSON pointer of an error: the path (which already ends in an unknown
/// field's name), plus the field a missing-field message names.
fn pointer_of(path: &serde_path_to_error::Path, message: &str) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push_str(&format!("/{}", escape(key)))
            }
            Segment::Unknown => {}
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.split('`').next()
    {
        pointer.push_str(&format!("/{}", escape(field)));
    }
    pointer
}

/// RFC 6901: `~` is `~0`, `/` is `~1` inside a pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// One page of a list, newest first; `next_cursor` fetches the next one.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A full page has a next cursor: the id of its last item.
    pub fn new(data: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if data.len() as u32 == limit {
            data.last().map(id)
        } else {
            None
        };
        Page { data, next_cursor }
    }
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 250;

pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        )),
    }
}

/// Query parameters into `T`; unknown or malformed ones are a 400 naming them.
pub fn parse_query<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    match axum::extract::Query::<T>::try_from_uri(uri) {
        Ok(axum::extract::Query(value)) => Ok(value),
        Err(e) => {
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize query string: ")
                .unwrap_or(&text)
                .to_string();
            Err(ApiError::invalid_field("query", detail))
        }
    }
}

/// A time given as RFC 3339 (`2026-11-25T10:00:00Z`) or as a duration ago (`2h`, `30m`).
pub fn parse_time(field: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    let Ok(ago) = humantime::parse_duration(text) else {
        return Err(ApiError::invalid_field(
            field,
            "must be an RFC 3339 time or a duration ago such as 2h",
        ));
    };
    i64::try_from(ago.as_millis())
        .ok()
        .and_then(|ago| crate::ids::now_millis().checked_sub(ago))
        .ok_or_else(|| ApiError::invalid_field(field, "the duration is out of range"))
}

/// A grace period such as `10m` or `0s`, in milliseconds, at most `max_days`
/// days: one reading for every body field that takes one. A duration too
/// long for the millisecond clock is refused like any other over the bound.
pub fn grace_period_ms(field: &str, text: &str, max_days: i64) -> Result<i64, ApiError> {
    let grace = humantime::parse_duration(text.trim()).map_err(|e| {
        ApiError::invalid_field(field, format!("must be a duration such as 10m or 0s: {e}"))
    })?;
    i64::try_from(grace.as_millis())
        .ok()
        .filter(|ms| *ms <= max_days * 24 * 3600 * 1000)
        .ok_or_else(|| ApiError::invalid_field(field, format!("must be at most {max_days} days")))
}

/// The `since` and `until` query parameters as millisecond bounds.
pub fn time_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let since = since.map(|t| parse_time("since", t)).transpose()?;
    let until = until.map(|t| parse_time("until", t)).transpose()?;
    Ok((since, until))
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the configured limit",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        headers: Vec<Header>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Header {
        key: String,
    }

    fn error_of(body: &str) -> ApiError {
        decode::<Input>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn errors_name_the_field_as_a_json_pointer() {
        let field = |body: &str| error_of(body).field;
        assert_eq!(
            field(r#"{"name": 1, "headers": []}"#).as_deref(),
            Some("/name")
        );
        assert_eq!(
            field(r#"{"name": "n", "headers": [{"key": "a"}, {"key": 2}]}"#).as_deref(),
            Some("/headers/1/key")
        );
        assert_eq!(
            field(r#"{"name": "n", "headers": [], "a/b~c": 1}"#).as_deref(),
            Some("/a~1b~0c")
        );
        assert_eq!(field(r#"{"headers": []}"#).as_deref(), Some("/name"));
    }

    #[test]
    fn durations_too_long_for_a_time_are_refused_by_name() {
        for text in ["99999999999999h", "9999999999999999999s"] {
            let error = parse_time("since", text).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("since"), "{text}");
        }
        assert!(parse_time("since", "2h").unwrap() < crate::ids::now_millis());
    }

    #[test]
    fn a_body_must_be_an_object_not_its_fields_in_an_array() {
        let error = error_of(r#" ["n", []]"#);
        assert_eq!(error.code, "invalid_request");
        assert_eq!(error.field.as_deref(), Some(""));
        assert!(decode::<Option<Input>>(b"null").unwrap().is_none());
    }

    #[test]
    fn broken_json_is_malformed() {
        assert_eq!(error_of(r#"{"name": "#).code, "malformed_json");
        assert_eq!(
            error_of(r#"{"name": "n", "headers": []} trailing"#).code,
            "malformed_json"
        );
    }
}
