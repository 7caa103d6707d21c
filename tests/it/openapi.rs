//! The OpenAPI document: complete (every route the code registers is in it),
//! valid against the OpenAPI 3.1 schema (checked by an independent validator),
//! and its Swagger UI served without network access.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Routes that are deliberately not API operations: the document itself and
/// its viewer, and the web console's pages and assets (HTML, not JSON).
fn is_exempt(path: &str) -> bool {
    path == "/"
        || path.starts_with("/console")
        || path.starts_with("/docs")
        || path == "/openapi.json"
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every `.route("path", get(..).post(..))` in the sources, as (METHOD, path).
fn registered_routes() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (start, _) in text.match_indices(".route(") {
            let call = balanced_call(&text[start + ".route".len()..]);
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            let handlers = &call[call.find(',').unwrap_or(0)..];
            for method in ["get", "post", "patch", "put", "delete"] {
                let calls = [
                    format!("({method}("),
                    format!(" {method}("),
                    format!(".{method}("),
                ];
                if calls.iter().any(|c| handlers.contains(c.as_str())) {
                    routes.insert((method.to_uppercase(), path.to_string()));
                }
            }
        }
    }
    routes
}

/// The text of a parenthesised call starting at `text[0] == '('`.
fn balanced_call(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn every_registered_route_is_in_the_document_with_its_answers() {
    let server = Server::start().await;
    let (status, doc) = server.request("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");

    let registered = registered_routes();
    assert!(
        registered.len() > 30,
        "the scan found the routes: {registered:?}"
    );
    let documented = documented_routes(&doc);
    let missing: Vec<_> = registered
        .iter()
        .filter(|(_, path)| !is_exempt(path))
        .filter(|route| !documented.contains(*route))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&registered).collect();
    assert!(
        stale.is_empty(),
        "documented routes that do not exist: {stale:?}"
    );

    // Every operation names its success and, under /v1, the shared errors.
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method.to_lowercase()];
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} has no success answer"
        );
        let bearer = operation["security"]
            .as_array()
            .is_some_and(|alternatives| alternatives.iter().any(|a| a.get("bearer").is_some()));
        if bearer {
            let shared: &[&str] = if path.starts_with("/v1/") {
                &["401", "403", "404", "503"]
            } else {
                &["401", "403"]
            };
            for status in shared {
                assert!(
                    responses.contains_key(*status),
                    "{method} {path} lacks {status}"
                );
            }
        } else {
            // Only the health routes and the MLflow receiving route (signed by
            // MLflow itself) take no bearer token.
            let open = [
                "/healthz",
                "/readyz",
                "/v1/projects/{project}/sources/{id}/mlflow",
            ];
            assert!(
                open.contains(&path.as_str()),
                "{method} {path} has no bearer security"
            );
        }
    }
    // The bodies reference schemas that exist, with examples where it matters.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "WebhookInput",
        "WebhookView",
        "EventInput",
        "ErrorBody",
        "SendOutcome",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert!(schemas["ErrorBody"]["example"].is_object());
}

/// The document is valid OpenAPI 3.1, by `openapi-spec-validator` (Python),
/// an implementation independent of the one that wrote it. `scripts/test`
/// installs it into /opt/mlhook-tools-venv.
#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let validator = std::env::var("MLHOOK_OPENAPI_VALIDATOR")
        .unwrap_or_else(|_| "/opt/mlhook-tools-venv/bin/openapi-spec-validator".into());
    assert!(
        Path::new(&validator).exists(),
        "{validator} is missing: run scripts/test (or python3 -m venv /opt/mlhook-tools-venv && \
         /opt/mlhook-tools-venv/bin/pip install openapi-spec-validator)"
    );
    let server = Server::start().await;
    let (_, doc) = server.request("GET", "/openapi.json", None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(&validator)
        .args(["--schema", "3.1"])
        .arg(&file)
        .output()
        .expect("the validator runs");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "invalid OpenAPI 3.1:\n{report}");
    assert!(report.contains("OK"), "{report}");
}

#[tokio::test]
async fn the_swagger_ui_is_served_from_the_binary() {
    let server = Server::start().await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/docs/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "no asset from the network: {html}"
    );
    let script = client
        .get(format!("{}/docs/swagger-ui-bundle.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.unwrap().len() > 100_000);
}
