//! The OpenAPI 3.1 document, generated from the handlers' annotations: each
//! resource file describes its own routes (its `Doc`), merged here, plus what
//! every `/v1` route shares — bearer authentication and the error answers.
//! Served at `GET /openapi.json`, rendered at `GET /docs` (Swagger UI embedded
//! in the binary: no network needed).

use std::sync::OnceLock;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mlhook",
        description = "Durable, signed webhooks for machine-learning platforms. Every `/v1` route takes `Authorization: Bearer <token>`. Errors share one shape (`ErrorBody`); `field` is a JSON pointer into the request body.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

/// The whole document, built once.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        for part in [
            super::health::Doc::openapi(),
            super::projects::Doc::openapi(),
            super::tokens::Doc::openapi(),
            super::audit::Doc::openapi(),
            super::event_types::Doc::openapi(),
            super::webhooks::Doc::openapi(),
            super::events::Doc::openapi(),
            super::deliveries::Doc::openapi(),
            super::sources::Doc::openapi(),
            super::metrics::Doc::openapi(),
            super::formats::Doc::openapi(),
        ] {
            doc.merge(part);
        }
        add_shared_answers(&mut doc);
        let mut doc = serde_json::to_value(doc).expect("the document serialises");
        doc["components"]["schemas"][super::schemas::JSON_VALUE] =
            super::schemas::json_value_component();
        super::schemas::state_text_rules(&mut doc);
        doc
    })
}

/// `/openapi.json` and the Swagger UI at `/docs`, which reads it from there.
pub fn routes() -> Router<AppState> {
    let ui: Router<AppState> = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"))
        .into();
    ui.route("/openapi.json", get(serve_document))
}

/// The document is built on its first request, not at start: a service
/// that is never asked for it does not keep it in memory (idle RSS).
async fn serve_document() -> Json<&'static serde_json::Value> {
    Json(document())
}

/// Bearer authentication and the error answers every `/v1` route can give.
fn add_shared_answers(doc: &mut utoipa::openapi::OpenApi) {
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            qualify_operation_id(operation);
            may_refuse_body(operation);
            may_refuse_query(operation);
            // An operation that states its own security (`security(())`: none,
            // like the MLflow source's receiving route) keeps it.
            if path.starts_with("/v1/") && operation.security.is_none() {
                authenticate(operation);
            }
            if takes_bearer(operation) {
                may_refuse_token(operation);
            }
        }
    }
}

/// Handlers are named `list`, `show`… in every resource file: the id a
/// client generator uses becomes `webhooks_list`, unique in the document.
fn qualify_operation_id(operation: &mut Operation) {
    let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned();
    if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
        *id = format!("{}_{id}", tag.replace('-', "_"));
    }
}

/// A body can be refused: every operation that takes one may answer 400,
/// and one whose body is required (`ApiJson`) answers 415 to a body that is
/// not sent as JSON. An optional body (`ApiJsonOrDefault`) is read whatever
/// its content type says.
fn may_refuse_body(operation: &mut Operation) {
    let Some(body) = &operation.request_body else {
        return;
    };
    let required = matches!(body.required, Some(Required::True));
    add_answer(
        operation,
        "400",
        "Invalid request; `field` names the JSON pointer at fault",
    );
    if required {
        add_answer(
            operation,
            "415",
            "The body was not sent as JSON (`Content-Type: application/json`)",
        );
    }
}

/// Query parameters are parsed strictly: an unknown one, or a value of the
/// wrong type or out of bounds, is a 400 naming `query` or the parameter.
fn may_refuse_query(operation: &mut Operation) {
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    if has_query {
        add_answer(
            operation,
            "400",
            "Invalid query; `field` names the parameter at fault",
        );
    }
}

fn bearer() -> SecurityRequirement {
    SecurityRequirement::new("bearer", Vec::<String>::new())
}

fn takes_bearer(operation: &Operation) -> bool {
    operation.security.iter().flatten().any(|r| *r == bearer())
}

fn authenticate(operation: &mut Operation) {
    operation.security = Some(vec![bearer()]);
    add_answer(
        operation,
        "404",
        "Not found — also what another project's token gets",
    );
}

/// What any route taking a bearer token may answer before it looks at the
/// request: the token is checked, with the store when it is not the admin's.
fn may_refuse_token(operation: &mut Operation) {
    let shared = [
        ("401", "Missing, unknown or revoked token"),
        (
            "403",
            "The token may not do this (read-only, or not the admin)",
        ),
        (
            "429",
            "Too many failed authentications from this address; see Retry-After",
        ),
        ("503", "The store is unavailable; see Retry-After"),
    ];
    for (status, description) in shared {
        add_answer(operation, status, description);
    }
}

/// Adds an error answer unless the operation describes that status itself.
fn add_answer(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| error_answer(description));
}

fn error_answer(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}
