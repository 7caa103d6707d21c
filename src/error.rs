//! The one error shape every API answer uses:
//! `{"error": {"code", "message", "field"?, "details"?: [{"field", "message"}]}}`.
//!
//! Modules below the API raise their own typed errors; `ApiError` is where they
//! meet HTTP. A store failure is logged and answered as 503 without internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::catalog::{CatalogError, Violation};
use crate::delivery::ManualError;
use crate::ingest::{IngestError, TestError};
use crate::store::StoreError;

pub use crate::validation::FieldError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<FieldError>,
    /// Sent as `Retry-After` (seconds) on 429/503 answers.
    pub retry_after_secs: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 400 naming the field (a JSON pointer into the request body) at fault.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: format!("{field}: {message}"),
            details: vec![FieldError {
                field: field.clone(),
                message,
            }],
            field: Some(field),
            retry_after_secs: None,
        }
    }

    /// 400 listing every violation found, the first one as `field`.
    pub fn violations(details: Vec<FieldError>) -> Self {
        let message = details
            .iter()
            .map(|d| format!("{}: {}", d.field, d.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "validation_failed",
            message,
            field: details.first().map(|d| d.field.clone()),
            details,
            retry_after_secs: None,
        }
    }

    /// 503 with `Retry-After`: the store could not take the request now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        );
        error.retry_after_secs = Some(1);
        error
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token in the Authorization header",
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// Re-roots every field pointer under `prefix` (e.g. `/events/3`).
    pub fn nested_under(self, prefix: &str) -> Self {
        self.rerooted(|f| format!("{prefix}{f}"))
    }

    /// The same error with each field pointer passed through `reroot`, and
    /// the message rebuilt from them.
    pub fn rerooted(mut self, reroot: impl Fn(&str) -> String) -> Self {
        self.field = self.field.as_deref().map(&reroot);
        for d in &mut self.details {
            d.field = reroot(&d.field);
        }
        if !self.details.is_empty() {
            let first = ApiError::violations(std::mem::take(&mut self.details));
            self.message = first.message;
            self.details = first.details;
        }
        self
    }
}

/// The error shape as the OpenAPI document describes it (`Body` is what is sent).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "/url: must be an http or https URL", "field": "/url", "details": [{"field": "/url", "message": "must be an http or https URL"}]}}))]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `validation_failed`, `unauthorized`, `not_found`, …
    code: String,
    message: String,
    /// JSON pointer into the request body (or `query`) at fault; absent
    /// when the error is not about one field.
    #[schema(nullable = false)]
    field: Option<String>,
    /// Every field at fault, when the request broke field rules; absent
    /// otherwise (as `field`: the answer leaves out what it does not have).
    #[schema(nullable = false)]
    details: Option<Vec<FieldError>>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: BodyInner<'a>,
}

#[derive(Serialize)]
struct BodyInner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: BodyInner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                details: &self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => ApiError::conflict(what),
            StoreError::NotFound => ApiError::not_found("resource"),
            full if full.is_no_space() => {
                tracing::error!(error = %full, "store error");
                ApiError::unavailable(
                    "the store has no space left: nothing was written; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::unavailable("the store could not complete the request; retry later")
            }
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::UnknownEventType(name) => {
                ApiError::invalid_field("/type", format!("unknown event type {name:?}"))
            }
            CatalogError::Invalid(violations) => {
                ApiError::violations(violations.into_iter().map(FieldError::from).collect())
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        tracing::error!(error = %err, "ingest failed");
        match err {
            IngestError::Stopped => {
                ApiError::unavailable("the service is shutting down; retry later")
            }
            IngestError::Store(_) | IngestError::TimedOut => ApiError::unavailable(
                "the event could not be stored; nothing was accepted, retry later",
            ),
        }
    }
}

impl From<ManualError> for ApiError {
    fn from(err: ManualError) -> Self {
        match err {
            ManualError::Missing(what) => ApiError::not_found(what),
            ManualError::UnknownEventType(name) => {
                ApiError::invalid_field("/event_type", format!("unknown event type {name:?}"))
            }
            ManualError::Store(e) => e.into(),
        }
    }
}

impl From<TestError> for ApiError {
    fn from(err: TestError) -> Self {
        match err {
            TestError::Attempt(e) => e.into(),
            TestError::Ingest(e) => e.into(),
        }
    }
}

impl From<Violation> for FieldError {
    fn from(v: Violation) -> Self {
        FieldError {
            field: v.pointer,
            message: v.message,
        }
    }
}
