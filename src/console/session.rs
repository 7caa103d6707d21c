//! The console's session: the token a person signed in with, kept in an
//! HttpOnly, SameSite=Strict cookie (never in a URL, never readable by
//! script), and the CSRF rules for requests that the cookie authenticates.
//!
//! Sign-in checks the token exactly as a bearer token is checked (same
//! lookup, same failed-authentication limit) and answers who it is.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::api::auth::{Access, Caller};
use crate::api::{ApiJson, AppState};
use crate::error::ApiError;

/// The cookie's name.
pub const COOKIE_NAME: &str = "mlhook_session";
/// The header every state-changing console request carries. A cross-site
/// form cannot send it, and a cross-site `fetch` that tries needs a CORS
/// preflight mlhook never grants.
pub const CSRF_HEADER: &str = "x-mlhook-console";

/// The token of a console session, for the `Caller` extractor: read only
/// when the request has no `Authorization` header. A cookie-authenticated
/// request that may change something must carry `X-Mlhook-Console: 1` and,
/// when the browser names an `Origin`, come from this very host.
pub fn session_token(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(token) = cookie_token(&parts.headers) else {
        return Ok(None);
    };
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        check_same_origin(&parts.headers)?;
    }
    Ok(Some(token))
}

/// The decoded `mlhook_session` cookie, if the request carries one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| URL_SAFE_NO_PAD.decode(value.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|token| !token.is_empty())
}

/// The CSRF check: the console's header, and no foreign `Origin`.
fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let marked = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if !marked {
        return Err(csrf_refused(
            "a request authenticated by the console's cookie must send X-Mlhook-Console: 1",
        ));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .and_then(|u| {
                let host = u.host_str()?.to_ascii_lowercase();
                Some(match u.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            });
        let served_as = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(|h| h.trim().to_ascii_lowercase())
        };
        let same = origin_host.is_some()
            && (origin_host == served_as(HOST.as_str())
                || origin_host == served_as("x-forwarded-host"));
        if !same {
            return Err(csrf_refused("the request comes from another origin"));
        }
    }
    Ok(())
}

fn csrf_refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "csrf_check_failed", message)
}

/// Whether the browser reached us over https (directly or through a proxy
/// that says so): the cookie is then marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    forwarded || origin
}

fn set_cookie(value: &str, max_age: Option<u32>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    token: String,
}

/// Who the session belongs to, as the console shows it.
#[derive(Serialize)]
pub struct Who {
    /// `admin` or `project`.
    access: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<String>,
    /// `write` or `read` for a project token.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    /// The token's prefix and kind, never the token.
    actor: String,
}

impl Who {
    fn of(caller: &Caller) -> Who {
        let (access, project_id, kind) = match &caller.access {
            Access::Admin => ("admin", None, None),
            Access::Project { project_id, kind } => {
                ("project", Some(project_id.clone()), Some(kind.as_str()))
            }
        };
        Who {
            access,
            project_id,
            kind,
            actor: caller.actor.clone(),
        }
    }
}

/// `POST /console/session {"token"}`: checks the token like a bearer token
/// and, when it is valid, keeps it in the session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(input): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    // Sign-in changes which account the browser acts as: same CSRF rules.
    check_same_origin(&parts.headers)?;
    let token = input.token.trim();
    let mut check = parts.clone();
    check.method = Method::GET;
    check.headers.remove(COOKIE);
    let bearer =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ApiError::unauthorized())?;
    check.headers.insert(AUTHORIZATION, bearer);
    let caller = Caller::from_request_parts(&mut check, &state).await?;
    let secure = over_https(&parts.headers);
    let mut response = Json(Who::of(&caller)).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        set_cookie(&URL_SAFE_NO_PAD.encode(token), None, secure),
    );
    Ok(response)
}

/// `GET /console/session`: who is signed in; 401 when nobody is. A browser
/// without a cookie is not a failed authentication (no count against it).
pub async fn current(
    State(state): State<AppState>,
    mut parts: Parts,
) -> Result<Json<Who>, ApiError> {
    if cookie_token(&parts.headers).is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not signed in",
        ));
    }
    parts.headers.remove(AUTHORIZATION);
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    Ok(Json(Who::of(&caller)))
}

/// `DELETE /console/session`: signs out (the cookie is cleared).
pub async fn sign_out(headers: HeaderMap) -> Result<Response, ApiError> {
    check_same_origin(&headers)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie("", Some(0), over_https(&headers)));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().method(method).uri("/v1/x");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn cookie(token: &str) -> String {
        format!("other=1; {COOKIE_NAME}={}", URL_SAFE_NO_PAD.encode(token))
    }

    #[test]
    fn reads_the_cookie_among_others() {
        let c = cookie("mlh_abc");
        let p = parts(Method::GET, &[("cookie", &c)]);
        assert_eq!(session_token(&p).unwrap().as_deref(), Some("mlh_abc"));
        let none = parts(Method::GET, &[("cookie", "other=1")]);
        assert_eq!(session_token(&none).unwrap(), None);
    }

    #[test]
    fn writes_need_the_console_header_and_the_same_origin() {
        let c = cookie("mlh_abc");
        let bare = parts(Method::POST, &[("cookie", &c), ("host", "h:8080")]);
        assert_eq!(session_token(&bare).unwrap_err().code, "csrf_check_failed");
        let marked = parts(
            Method::POST,
            &[("cookie", &c), ("host", "h:8080"), (CSRF_HEADER, "1")],
        );
        assert!(session_token(&marked).unwrap().is_some());
        let same = parts(
            Method::DELETE,
            &[
                ("cookie", &c),
                ("host", "h:8080"),
                (CSRF_HEADER, "1"),
                ("origin", "http://h:8080"),
            ],
        );
        assert!(session_token(&same).unwrap().is_some());
        let foreign = parts(
            Method::PATCH,
            &[
                ("cookie", &c),
                ("host", "h:8080"),
                (CSRF_HEADER, "1"),
                ("origin", "http://evil.example"),
            ],
        );
        assert_eq!(
            session_token(&foreign).unwrap_err().code,
            "csrf_check_failed"
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let plain = set_cookie("abc", None, false);
        let text = plain.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(!text.contains("Secure"));
        let https = HeaderMap::from_iter([(
            axum::http::HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("https"),
        )]);
        assert!(over_https(&https));
        assert!(
            set_cookie("abc", None, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
