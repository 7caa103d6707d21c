//! The web console: a static page, one stylesheet and a few ES modules of
//! our own, compiled into the binary and served by `mlhook serve` at `/`.
//! The page calls the REST API (`/v1/...`) with `fetch`; the only routes of
//! its own are the assets and the session (sign in and out, see
//! [`session`]). No build step, no CDN: it works offline.
//!
//! Every console answer carries a strict Content-Security-Policy (scripts,
//! styles and connections from this origin only; no inline script) and is
//! never framed.

pub mod session;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::api::AppState;
use crate::error::ApiError;

/// What the console's answers allow the browser to do.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console. The page itself is `index.html`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/forms.js", JS),
    asset!("js/sending.js", JS),
    asset!("js/json.js", JS),
    asset!("js/patterns.js", JS),
    asset!("js/viewer.js", JS),
    asset!("js/editor.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/pages/signin.js", JS),
    asset!("js/pages/projects.js", JS),
    asset!("js/pages/webhooks.js", JS),
    asset!("js/pages/webhook_form.js", JS),
    asset!("js/pages/webhook_detail.js", JS),
    asset!("js/pages/deliveries.js", JS),
    asset!("js/pages/catalog.js", JS),
    asset!("js/pages/events.js", JS),
    asset!("js/pages/project_settings.js", JS),
    asset!("js/pages/sources.js", JS),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/console/assets/{*path}", get(asset))
        .route(
            "/console/session",
            get(session::current)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .layer(axum::middleware::map_response(protect))
}

/// The page: every console screen is this one document (the screen is in
/// the URL's fragment, `/#/p/fraud-team/webhooks`).
async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return ApiError::not_found("console file").into_response();
    };
    let etag = &etags()[index];
    let fresh = request
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // Revalidated on every load: a new binary's files are never stale.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(ETAG, HeaderValue::from_str(etag).expect("hex etag"));
    response
}

/// A strong ETag per asset: the hash of its bytes, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.body))[..20]))
            .collect()
    })
}

/// The security headers of every console answer.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type() {
        for a in ASSETS {
            let response = serve(a.path, &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK, "{}", a.path);
            assert_eq!(response.headers()[CONTENT_TYPE], a.content_type);
        }
        let missing = serve("nope.js", &HeaderMap::new());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn an_unchanged_asset_is_not_sent_again() {
        let first = serve("console.css", &HeaderMap::new());
        let etag = first.headers()[ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(IF_NONE_MATCH, etag);
        assert_eq!(
            serve("console.css", &request).status(),
            StatusCode::NOT_MODIFIED
        );
    }

    #[test]
    fn the_page_loads_only_files_that_exist_and_no_inline_script() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(!page.contains("<script>"), "inline script in index.html");
        for reference in page.split("/console/assets/").skip(1) {
            let path = reference.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "{path} is not embedded"
            );
        }
        // Every module a module imports is embedded too.
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line.split(['\'', '"']).nth(1).unwrap();
                let resolved = resolve(dir, target);
                assert!(
                    ASSETS.iter().any(|x| x.path == resolved),
                    "{} imports {target} ({resolved}), which is not embedded",
                    a.path
                );
            }
        }
    }

    /// `./x.js` or `../x.js` relative to `dir`.
    fn resolve(dir: &str, target: &str) -> String {
        let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        for piece in target.split('/') {
            match piece {
                "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        parts.join("/")
    }
}
