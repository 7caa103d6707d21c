//! `template`: the webhook's own JSON document, with placeholders filled in.
//!
//! The template is JSON (an object or array, or the text of one). Its
//! strings may hold MiniJinja placeholders — `{{ event.type }}`,
//! `{{ payload.registryModelName }}`, `{{ object.name }}`, `{{ summary }}`,
//! `{{ title }}`, `{{ link }}`, filters like `| default("…")`, `{% if %}`:
//! - a string that is exactly one placeholder (`"{{ payload.tags }}"`) is
//!   replaced by the value itself, typed: an array stays an array, a number
//!   a number;
//! - any other string is rendered as text (`"Model {{ payload.version }}"`);
//!   lists and objects inside text are written as JSON, null as nothing.
//!
//! Because values are placed into the parsed document and serialised once,
//! every value is JSON-escaped and the output is always valid JSON — a
//! payload with quotes or newlines cannot break it. Keys are literal.
//!
//! The engine runs no code: no file or network access, no imports, strict
//! undefined values (a misspelt variable is an error, not an empty string),
//! and a fuel limit on instructions per string. A template is checked when
//! the webhook is saved by rendering it for the example and test payload of
//! every event type the webhook listens to; an error names the string's
//! JSON pointer, the line and column in it, and the event type.

use std::sync::OnceLock;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use serde_json::{Value, json};

use super::{Context, EventData, RenderError, Rendered, Target};
use crate::catalog::{Catalog, Family, pattern};
use crate::validation::{FieldError, push};

/// Instructions one string of a template may run.
const FUEL: u64 = 50_000;
/// The template as stored, serialised.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// A rendered body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Errors reported for one save at most.
const MAX_ERRORS: usize = 5;

/// Reads the client's `template`: a JSON object or array, or its text.
pub fn parse(input: Value, errors: &mut Vec<FieldError>) -> Option<Value> {
    let template = match input {
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v) => v,
            Err(e) => {
                push(errors, "/template", format!("is not valid JSON text: {e}"));
                return None;
            }
        },
        other => other,
    };
    if !(template.is_object() || template.is_array()) {
        push(
            errors,
            "/template",
            "must be a JSON object or array (or the text of one)",
        );
        return None;
    }
    if serde_json::to_vec(&template).map_or(0, |b| b.len()) > MAX_TEMPLATE_BYTES {
        push(errors, "/template", "must be at most 64 KiB");
        return None;
    }
    Some(template)
}

/// What a template is checked for at save: the webhook it renders for,
/// its project and the event types it listens to.
pub struct Listener<'a> {
    pub target: Target<'a>,
    pub project_id: &'a str,
    pub events: &'a [String],
}

/// Renders the template for the example and test payload of every event
/// type the webhook listens to; each failure is a field error naming where.
pub fn check(
    template: &Value,
    webhook: &Listener,
    catalog: &Catalog,
    errors: &mut Vec<FieldError>,
) {
    let mut found: Vec<FieldError> = Vec::new();
    for (event_type, family, payload) in samples(webhook.events, catalog) {
        let event = EventData::new(
            SAMPLE_EVENT_ID.into(),
            webhook.project_id.into(),
            event_type.clone(),
            payload.to_string(),
            family,
            None,
        );
        let ctx = match Context::new(&webhook.target, &event) {
            Ok(ctx) => ctx,
            Err(_) => continue,
        };
        if let Err(e) = fill(template, &variables(&ctx)) {
            if found.iter().any(|f| f.field == e.field) {
                continue;
            }
            found.push(FieldError {
                field: e.field,
                message: format!("{} (rendering {event_type})", e.message),
            });
            if found.len() >= MAX_ERRORS {
                break;
            }
        }
    }
    errors.extend(found);
}

/// A UUIDv7-shaped id at 2025-01-01T00:00:00Z, for save-time checks.
const SAMPLE_EVENT_ID: &str = "evt_01941f297c0070008000000000000000";

/// (event type, family, payload) to try a template with.
fn samples(events: &[String], catalog: &Catalog) -> Vec<(String, Option<Family>, Value)> {
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for t in catalog.list() {
        if !events.iter().any(|e| pattern::covers(e, &t.name)) {
            continue;
        }
        out.push((t.name.clone(), Some(t.family), t.example.clone()));
        if let Some(test) = catalog.test_payload(&t.name, now) {
            // The registry's test payload goes out as a TEST event (Comet's shape).
            let sent = test
                .get("eventTrigger")
                .and_then(Value::as_str)
                .filter(|s| catalog.contains(s))
                .unwrap_or(&t.name)
                .to_string();
            let family = catalog.get(&sent).map(|s| s.family);
            out.push((sent, family, test));
        }
    }
    out
}

pub fn render(webhook: &Target, ctx: &Context) -> Result<Rendered, RenderError> {
    let template = webhook
        .settings
        .template
        .as_ref()
        .ok_or(RenderError::MissingConfig("template"))?;
    let body = fill(template, &variables(ctx))
        .map_err(|e| RenderError::Template(format!("{}: {}", e.field, e.message)))?;
    let rendered = Rendered::json(&body);
    if rendered.body.len() > MAX_BODY_BYTES {
        return Err(RenderError::Template(format!(
            "the rendered body is {} bytes, more than {MAX_BODY_BYTES}",
            rendered.body.len()
        )));
    }
    Ok(rendered)
}

/// What a template can use.
pub fn variables(ctx: &Context) -> Value {
    let d = &ctx.description;
    let object = ctx.object.as_ref();
    json!({
        "event": {
            "id": ctx.event_id,
            "type": ctx.event_type,
            "family": ctx.family,
            "time": ctx.time_text(),
            "project": ctx.project_id,
        },
        "payload": ctx.payload,
        "object": {
            "type": object.map(|o| o.object_type.clone()),
            "name": object.and_then(|o| o.name.clone()),
            "version": object.and_then(|o| o.version.clone()),
        },
        "title": d.title,
        "summary": d.summary_text(),
        "link": d.link,
        "fields": d.fields,
        "tone": d.tone,
        "project": ctx.project_id,
        "webhook": {"id": ctx.webhook_id, "name": ctx.webhook_name},
    })
}

/// Where a template failed: the string's pointer and what went wrong.
#[derive(Debug)]
struct FillError {
    field: String,
    message: String,
}

/// The template with every string filled in from `vars`.
fn fill(template: &Value, vars: &Value) -> Result<Value, FillError> {
    let vars = minijinja::Value::from_serialize(vars);
    let mut pointer = String::from("/template");
    fill_value(template, &vars, &mut pointer)
}

fn fill_value(
    value: &Value,
    vars: &minijinja::Value,
    pointer: &mut String,
) -> Result<Value, FillError> {
    match value {
        Value::String(source) => fill_string(source, vars, pointer),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                out.push(fill_value(item, vars, pointer)?);
                pointer.truncate(len);
            }
            Ok(Value::Array(out))
        }
        Value::Object(fields) => {
            let mut out = serde_json::Map::with_capacity(fields.len());
            for (key, item) in fields {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                out.insert(key.clone(), fill_value(item, vars, pointer)?);
                pointer.truncate(len);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn fill_string(source: &str, vars: &minijinja::Value, pointer: &str) -> Result<Value, FillError> {
    if !(source.contains("{{") || source.contains("{%") || source.contains("{#")) {
        return Ok(Value::String(source.to_string()));
    }
    let fail = |e: Error| FillError {
        field: pointer.to_string(),
        message: describe_error(&e, source),
    };
    if is_one_placeholder(source) {
        let json_text = environments()
            .value
            .render_named_str(pointer, source.trim(), vars)
            .map_err(fail)?;
        return serde_json::from_str(&json_text).map_err(|e| FillError {
            field: pointer.to_string(),
            message: format!("the value is not JSON: {e}"),
        });
    }
    environments()
        .text
        .render_named_str(pointer, source, vars)
        .map(Value::String)
        .map_err(fail)
}

/// `{{ expr }}` and nothing else (surrounding spaces aside).
fn is_one_placeholder(source: &str) -> bool {
    let t = source.trim();
    t.starts_with("{{")
        && t.ends_with("}}")
        && t.matches("{{").count() == 1
        && t.matches("}}").count() == 1
        && !t.contains("{%")
        && !t.contains("{#")
}

/// "line 1, column 12: undefined value: …".
fn describe_error(e: &Error, source: &str) -> String {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if e.kind() == ErrorKind::UndefinedError {
        message.push_str(" (unknown variable or field; see docs/destinations/template.md)");
    }
    let position = match (e.line(), e.range()) {
        (_, Some(range)) if range.start <= source.len() => {
            let before = &source[..range.start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let what = source.get(range.clone()).unwrap_or("");
            format!("line {line}, column {column} ({what:?})")
        }
        (Some(line), _) => format!("line {line}"),
        _ => String::new(),
    };
    if position.is_empty() {
        message
    } else {
        format!("{position}: {message}")
    }
}

struct Environments {
    /// Writes values as text: strings as they are, lists and maps as JSON.
    text: Environment<'static>,
    /// Writes values as JSON, for strings that are one placeholder.
    value: Environment<'static>,
}

fn environments() -> &'static Environments {
    static ENVS: OnceLock<Environments> = OnceLock::new();
    ENVS.get_or_init(|| Environments {
        text: environment(write_text),
        value: environment(write_json),
    })
}

fn environment(
    formatter: fn(&mut Output, &State, &minijinja::Value) -> Result<(), Error>,
) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(formatter);
    env.set_fuel(Some(FUEL));
    env.set_debug(true);
    env.set_recursion_limit(64);
    env
}

fn undefined() -> Error {
    Error::new(ErrorKind::UndefinedError, "the value is undefined")
}

fn write_text(out: &mut Output, _: &State, value: &minijinja::Value) -> Result<(), Error> {
    let written = match value.kind() {
        ValueKind::Undefined => return Err(undefined()),
        ValueKind::None => Ok(()),
        ValueKind::String => out.write_str(value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            let text = serde_json::to_string(value)
                .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            out.write_str(&text)
        }
        _ => write!(out, "{value}"),
    };
    written.map_err(|_| Error::from(ErrorKind::WriteFailure))
}

fn write_json(out: &mut Output, _: &State, value: &minijinja::Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(undefined());
    }
    let text = serde_json::to_string(value)
        .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
    out.write_str(&text)
        .map_err(|_| Error::from(ErrorKind::WriteFailure))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Value {
        json!({
            "event": {"type": "MODEL_VERSION_CREATED"},
            "payload": {"registryModelName": "churn \"v2\"\n", "tags": ["a", "b"], "n": 3},
            "link": null,
            "summary": "Line with <html> & \"quotes\"",
        })
    }

    fn fill_ok(template: Value) -> Value {
        fill(&template, &vars()).unwrap()
    }

    #[test]
    fn text_placeholders_are_json_escaped_by_construction() {
        let out = fill_ok(json!({"text": "Model {{ payload.registryModelName }}: {{ summary }}"}));
        assert_eq!(
            out["text"],
            "Model churn \"v2\"\n: Line with <html> & \"quotes\""
        );
        // The body is valid JSON whatever the values hold.
        let text = serde_json::to_string(&out).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
    }

    #[test]
    fn a_lone_placeholder_keeps_the_value_type() {
        let out = fill_ok(json!({
            "tags": "{{ payload.tags }}", "n": " {{payload.n}} ", "link": "{{ link }}",
            "in_text": "tags: {{ payload.tags }}, link: [{{ link }}]", "kept": 5
        }));
        assert_eq!(out["tags"], json!(["a", "b"]));
        assert_eq!(out["n"], 3);
        assert_eq!(out["link"], Value::Null);
        assert_eq!(out["in_text"], r#"tags: ["a","b"], link: []"#);
        assert_eq!(out["kept"], 5);
    }

    #[test]
    fn control_flow_and_filters_work() {
        let out = fill_ok(json!([
            "{% for t in payload.tags %}#{{ t }}{% if not loop.last %} {% endif %}{% endfor %}",
            "{{ payload.missing | default('none') }}",
            "{% if payload.missing is defined %}yes{% else %}no{% endif %}",
            "{{ event.type | lower }}"
        ]));
        assert_eq!(out, json!(["#a #b", "none", "no", "model_version_created"]));
    }

    #[test]
    fn unknown_variables_are_errors_naming_the_place() {
        let err = fill(
            &json!({"a": {"b": ["ok", "x {{ payload.nope }}"]}}),
            &vars(),
        )
        .unwrap_err();
        assert_eq!(err.field, "/template/a/b/1");
        assert!(
            err.message.starts_with("line 1, column 6"),
            "{}",
            err.message
        );
        assert!(err.message.contains("undefined"), "{}", err.message);
        let err = fill(&json!({"a~/b": "{{ nope }}"}), &vars()).unwrap_err();
        assert_eq!(err.field, "/template/a~0~1b");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = fill(&json!({"a": "x\n{% if %}"}), &vars()).unwrap_err();
        assert_eq!(err.field, "/template/a");
        assert!(err.message.contains("line 2"), "{}", err.message);
        assert!(err.message.contains("syntax error"), "{}", err.message);
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let err = fill(
            &json!(
                "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
            ),
            &vars(),
        );
        // A bare string is not a template document, but fill() itself must stop.
        assert!(err.is_err());
    }

    #[test]
    fn no_file_access_or_imports() {
        for source in [
            "{% include 'etc/passwd' %}",
            "{% import 'x' as y %}",
            "{% extends 'base' %}",
        ] {
            assert!(fill(&json!({ "a": source }), &vars()).is_err(), "{source}");
        }
    }

    #[test]
    fn templates_are_parsed_from_text_or_taken_as_json() {
        let mut errors = Vec::new();
        assert_eq!(
            parse(json!("{\"a\": \"{{ title }}\"}"), &mut errors),
            Some(json!({"a": "{{ title }}"}))
        );
        assert_eq!(parse(json!({"a": 1}), &mut errors), Some(json!({"a": 1})));
        assert!(errors.is_empty());
        assert_eq!(parse(json!("{\"a\": {{ title }}}"), &mut errors), None);
        assert_eq!(errors[0].field, "/template");
        assert!(
            errors[0].message.contains("line 1 column 8"),
            "{:?}",
            errors
        );
        assert_eq!(parse(json!(5), &mut errors), None);
    }
}
