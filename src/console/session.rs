//! The console's session: the token a person signed in with, kept in an
//! HttpOnly, SameSite=Strict cookie (never in a URL, never readable by
//! script). Signing in and out sets and clears it; how a request is
//! authenticated by it, and its CSRF rules, are `api::session_cookie`.
//!
//! Sign-in checks the token exactly as a bearer token is checked (same
//! lookup, same failed-authentication limit) and answers who it is.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::api::auth::{Access, Caller};
use crate::api::session_cookie::{COOKIE_NAME, check_same_origin, cookie_token};
use crate::api::{ApiJson, AppState};
use crate::error::ApiError;

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
                ("project", Some(project_id.to_string()), Some(kind.as_str()))
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
