//! What validation answers: a [`FieldError`] names the field at fault (a
//! JSON pointer into the request body) and says what is wrong there.
//!
//! It lives below every module that validates input (`webhook`, `formats`,
//! `sources`) so that none of them needs the API's error module; `error`
//! turns a list of them into the one JSON error shape.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Adds an error about `field` to `errors`.
pub fn push(errors: &mut Vec<FieldError>, field: impl Into<String>, message: impl Into<String>) {
    errors.push(FieldError::new(field, message));
}

/// The longest destination URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A destination must be an absolute http(s) URL with a host and no
/// credentials. Answers the URL normalised, or as sent when it is refused.
pub fn check_url(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let mut fail = |m: &str| push(errors, field, m);
    if raw.len() > MAX_URL_LEN {
        fail("must be at most 2048 characters");
        return raw.to_string();
    }
    match url::Url::parse(raw.trim()) {
        Err(e) => fail(&format!("not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => fail("scheme must be http or https"),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => fail("must name a host"),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            fail("must not hold credentials; send them in a header or the secret")
        }
        Ok(u) => return u.to_string(),
    }
    raw.to_string()
}

/// `deserialize_with` for a PATCH field that `null` clears: tells "absent"
/// (`None`, with `#[serde(default)]`) from "null" (`Some(None)`).
pub fn present_or_null<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The name of the API document's schema component for any JSON value
/// (integers within 64 bits: `api::schemas` builds it).
pub const JSON_VALUE: &str = "JsonValue";

/// A field that takes any JSON value, as the API document describes it: a
/// reference to component `JsonValue`.
pub fn json_value_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::RefOr::Ref(utoipa::openapi::Ref::from_schema_name(JSON_VALUE))
}
