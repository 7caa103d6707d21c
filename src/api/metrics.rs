//! `GET /metrics` (Prometheus text, or OpenMetrics when asked for) and the
//! layer every API request passes: its request id, its log span and its
//! count and latency in the metrics.

use std::time::Instant;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;
use tracing::Instrument;

use super::AppState;
use super::auth::{Caller, hash_token};
use crate::error::ApiError;
use crate::metrics::{OPENMETRICS_TEXT, PROMETHEUS_TEXT};

/// Who may read `/metrics`.
#[derive(Clone, Debug)]
pub enum MetricsAccess {
    /// No token (`--metrics-public`): for a scraper on a trusted network.
    Public,
    /// The admin token, or the metrics-only token when one is set
    /// (`MLHOOK_METRICS_TOKEN`, kept as its hash).
    Token { metrics_token_hash: Option<String> },
}

impl MetricsAccess {
    /// `public` is `--metrics-public`; `metrics_token` is `MLHOOK_METRICS_TOKEN`.
    pub fn new(public: bool, metrics_token: Option<&str>) -> MetricsAccess {
        if public {
            return MetricsAccess::Public;
        }
        MetricsAccess::Token {
            metrics_token_hash: metrics_token.map(hash_token),
        }
    }
}

pub const X_REQUEST_ID: &str = "x-request-id";

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// Every metric; the store's counts are at most 10 s old.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition (OpenMetrics when the Accept header asks for it); see docs/operations.md for every metric", content_type = "text/plain", body = String),
        (status = 401, description = "No token, and --metrics-public is not set", body = crate::error::ErrorBody),
        (status = 403, description = "Neither the admin token nor MLHOOK_METRICS_TOKEN", body = crate::error::ErrorBody)
    )
)]
async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    authorize(&state, &mut parts).await?;
    state.metrics.refresh_store_counts(&*state.store).await;
    let openmetrics = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        OPENMETRICS_TEXT
    } else {
        PROMETHEUS_TEXT
    };
    let body = state.metrics.encode(openmetrics);
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Open with `--metrics-public`; otherwise the metrics token or the admin token.
async fn authorize(state: &AppState, parts: &mut Parts) -> Result<(), ApiError> {
    let metrics_token_hash = match &state.metrics_access {
        MetricsAccess::Public => return Ok(()),
        MetricsAccess::Token { metrics_token_hash } => metrics_token_hash.as_deref(),
    };
    if let Some(hash) = metrics_token_hash
        && is_metrics_token(&parts.headers, hash)
    {
        return Ok(());
    }
    Caller::from_request_parts(parts, state)
        .await?
        .require_admin()
}

fn is_metrics_token(headers: &HeaderMap, hash: &str) -> bool {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    token.is_some_and(|t| bool::from(hash_token(t).as_bytes().ct_eq(hash.as_bytes())))
}

/// The request id, log span and metrics of every API request. A client's
/// `x-request-id` is kept when it is sane (1–128 characters of
/// `A-Za-z0-9-_.:/+=@`), otherwise replaced by a new UUID; the answer
/// carries it, and so does every log line written while handling it.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let id_header = HeaderValue::from_str(&id).expect("a sane request id is a valid header");
    request
        .headers_mut()
        .insert(X_REQUEST_ID, id_header.clone());
    let method = request.method().clone();
    // The route template (`/v1/projects/{project}/events`), never the raw path.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route_name = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request", request_id = %id, method = %method, route = route_name
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        let latency_ms = took.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, latency_ms, "request failed");
        } else {
            tracing::debug!(status, latency_ms, "request finished");
        }
    });
    response.headers_mut().insert(X_REQUEST_ID, id_header);
    state.metrics.http_request(
        method.as_str(),
        route.as_ref().map(MatchedPath::as_str),
        status,
        took,
    );
    response
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn a_sane_client_request_id_is_kept_and_others_replaced() {
        let kept = request_id(&headers(&[(X_REQUEST_ID, "req-42.abc:def")]));
        assert_eq!(kept, "req-42.abc:def");
        for insane in ["", "has space", "quote\"", &"x".repeat(129)] {
            let id = request_id(&headers(&[(X_REQUEST_ID, insane)]));
            assert_ne!(id, insane);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(&HeaderMap::new())).is_ok());
    }

    #[test]
    fn the_metrics_token_is_compared_by_hash() {
        let hash = hash_token("mlh_metrics");
        assert!(is_metrics_token(
            &headers(&[("authorization", "Bearer mlh_metrics")]),
            &hash
        ));
        assert!(is_metrics_token(
            &headers(&[("authorization", "bearer  mlh_metrics ")]),
            &hash
        ));
        assert!(!is_metrics_token(
            &headers(&[("authorization", "Bearer mlh_other")]),
            &hash
        ));
        assert!(!is_metrics_token(
            &headers(&[("authorization", "Basic mlh_metrics")]),
            &hash
        ));
        assert!(!is_metrics_token(&HeaderMap::new(), &hash));
    }
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(scrape))]
pub struct Doc;
