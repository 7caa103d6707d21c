//! Requests authenticated by the console's session cookie (set by
//! `console::session` at sign-in): reading the cookie, and the CSRF rules
//! such a request must follow. The `Caller` extractor asks here when a
//! request has no `Authorization` header.

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
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
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
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
}
