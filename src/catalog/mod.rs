//! The catalogue of built-in event types.
//!
//! Each event type mirrors one notification a vendor documents (NannyML Cloud, UbiOps,
//! Comet model registry, Valohai), so that a receiver written against the vendor's
//! document works unchanged when fed by mlhook. A client publishes a payload for an
//! event type; [`Catalog::prepare`] fills in the fields mlhook can derive (the
//! discriminator, descriptive text), checks the payload against the type's JSON
//! Schema plus the few rules a schema cannot phrase well, and works out which object
//! (model, deployment, project...) the event is about so subscriptions can be routed.
//!
//! The delivered body is the prepared payload exactly, which is why filling in never
//! reorders or rewrites what the client sent.

mod describe;
mod executions;
pub mod mlflow;
mod monitoring;
pub mod operational;
pub mod pattern;
mod registry;
mod requests;

pub use describe::{Description, Field, Span, Tone, is_web_url};

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The vendor family an event type comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Monitoring,
    Requests,
    ModelRegistry,
    Executions,
    Test,
    /// mlhook's own events about delivery health.
    Operational,
    /// MLflow's own webhook bodies, received through an MLflow source.
    Mlflow,
}

/// The object an event is about; subscriptions filter on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct ObjectRef {
    #[serde(rename = "type")]
    pub object_type: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
}

/// A built-in event type, as returned by `GET /v1/event-types/{type}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventType {
    pub name: String,
    pub family: Family,
    pub description: String,
    pub schema: Value,
    pub example: Value,
    pub test_payload: Value,
}

/// One problem with a client payload; `pointer` is rooted at the request body.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

impl Violation {
    fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("payload is invalid")]
    Invalid(Vec<Violation>),
}

/// A payload ready for delivery, plus the object it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    pub payload: Value,
    pub object: Option<ObjectRef>,
}

/// What `prepare` needs to know about the publishing side.
#[derive(Debug, Clone, Copy)]
pub struct PrepareContext<'a> {
    pub project_id: &'a str,
}

type Object = Map<String, Value>;

/// The behaviour a family attaches to each of its event types.
#[derive(Clone, Copy)]
struct Rules {
    /// Fills in derived fields that are absent; never fails, since a payload it cannot
    /// complete is left for the schema to reject with a precise pointer.
    fill: fn(&str, &mut Object, &PrepareContext<'_>),
    /// Rules the schema also encodes but whose schema messages would be cryptic
    /// (e.g. `maxItems: 0`); their violations replace the schema's at the same pointer.
    check: fn(&str, &Object) -> Vec<Violation>,
    /// The routing object of a payload that passed validation.
    object: fn(&str, &Object) -> Option<ObjectRef>,
    /// How people read an event of this type (title, summary, fields, link;
    /// the project id for the summary); `None` leaves the generic description.
    describe: fn(&str, &Object, &str) -> Option<Description>,
    /// Recomputes the time-dependent fields of a test payload.
    refresh: fn(&mut Value, DateTime<Utc>),
}

/// What a family module hands to the catalogue for one event type.
struct Spec {
    event_type: EventType,
    rules: Rules,
}

fn no_check(_: &str, _: &Object) -> Vec<Violation> {
    Vec::new()
}

fn no_refresh(_: &mut Value, _: DateTime<Utc>) {}

struct Entry {
    event_type: EventType,
    rules: Rules,
    /// Compiled on first use: a compiled validator carries the draft's
    /// meta-schemas (over a megabyte each), and most installations publish a
    /// few of the event types only.
    validator: std::sync::OnceLock<jsonschema::Validator>,
}

/// All known event types, with their schemas compiled once at start-up.
pub struct Catalog {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.list().map(|t| &t.name))
            .finish()
    }
}

impl Catalog {
    /// All built-in event types, family by family.
    pub fn builtin() -> Catalog {
        let specs = [
            monitoring::specs(),
            requests::specs(),
            registry::specs(),
            executions::specs(),
            registry::test_specs(),
            operational::specs(),
            mlflow::specs(),
        ];
        Self::from_specs(specs.into_iter().flatten())
    }

    fn from_specs(specs: impl Iterator<Item = Spec>) -> Catalog {
        let mut catalog = Catalog {
            entries: Vec::new(),
            by_name: HashMap::new(),
        };
        for Spec { event_type, rules } in specs {
            let index = catalog.entries.len();
            let previous = catalog.by_name.insert(event_type.name.clone(), index);
            assert!(
                previous.is_none(),
                "duplicate event type {}",
                event_type.name
            );
            catalog.entries.push(Entry {
                event_type,
                rules,
                validator: std::sync::OnceLock::new(),
            });
        }
        catalog
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    pub fn get(&self, name: &str) -> Option<&EventType> {
        self.entry(name).map(|e| &e.event_type)
    }

    /// Event types in a stable order: family by family, each family in document order.
    pub fn list(&self) -> impl Iterator<Item = &EventType> {
        self.entries.iter().map(|e| &e.event_type)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The event types an `events` entry (a name or a pattern) covers.
    pub fn covered_by<'a>(&'a self, entry: &'a str) -> impl Iterator<Item = &'a EventType> {
        self.list().filter(move |t| pattern::covers(entry, &t.name))
    }

    /// The first event type a list of entries names: its first known name,
    /// else the first type one of its patterns other than `*` covers.
    pub fn first_listed(&self, events: &[String]) -> Option<&EventType> {
        let named = events.iter().find_map(|e| self.get(e));
        named.or_else(|| {
            events
                .iter()
                .filter(|e| *e != "*")
                .find_map(|e| self.list().find(|t| pattern::covers(e, &t.name)))
        })
    }

    /// Validate a client payload for `event_type`, fill in derived fields, check
    /// agreement, derive the routing object.
    pub fn prepare(
        &self,
        event_type: &str,
        payload: Value,
        ctx: &PrepareContext,
    ) -> Result<PreparedEvent, CatalogError> {
        let entry = self
            .entry(event_type)
            .ok_or_else(|| CatalogError::UnknownEventType(event_type.to_owned()))?;
        let Value::Object(mut fields) = payload else {
            return Err(invalid_root());
        };
        let name = entry.event_type.name.as_str();
        // Fill first so that a payload missing only derived fields validates.
        (entry.rules.fill)(name, &mut fields, ctx);
        let payload = Value::Object(fields);
        let violations = entry.violations(&payload);
        if !violations.is_empty() {
            return Err(CatalogError::Invalid(violations));
        }
        let object = payload
            .as_object()
            .and_then(|f| (entry.rules.object)(name, f));
        Ok(PreparedEvent { payload, object })
    }

    /// The family's test payload for this event type, with time-dependent fields
    /// computed from `now`.
    pub fn test_payload(&self, event_type: &str, now: DateTime<Utc>) -> Option<Value> {
        let entry = self.entry(event_type)?;
        let mut payload = entry.event_type.test_payload.clone();
        (entry.rules.refresh)(&mut payload, now);
        Some(payload)
    }
}

impl Entry {
    fn validator(&self) -> &jsonschema::Validator {
        self.validator.get_or_init(|| {
            // Built-in schemas are part of the program: a broken one is a bug, not input.
            jsonschema::draft202012::new(&self.event_type.schema).unwrap_or_else(|e| {
                panic!("schema of {} does not compile: {e}", self.event_type.name)
            })
        })
    }

    /// Family rule violations first, then every schema violation not already
    /// reported at the same place by a rule.
    fn violations(&self, payload: &Value) -> Vec<Violation> {
        let name = self.event_type.name.as_str();
        let mut violations = match payload {
            Value::Object(fields) => (self.rules.check)(name, fields),
            _ => Vec::new(),
        };
        let from_schema: Vec<Violation> = self
            .validator()
            .iter_errors(payload)
            .map(|e| to_violation(&e))
            .filter(|v| !violations.iter().any(|r| r.pointer == v.pointer))
            .collect();
        violations.extend(from_schema);
        violations
    }
}

fn invalid_root() -> CatalogError {
    CatalogError::Invalid(vec![Violation::new("/payload", "expected object")])
}

/// Re-roots the error at the request body (`/payload/...`) and shortens its message.
fn to_violation(error: &jsonschema::ValidationError<'_>) -> Violation {
    let pointer = format!("/payload{}", error.instance_path.as_str());
    Violation::new(pointer, error_message(error))
}

fn error_message(error: &jsonschema::ValidationError<'_>) -> String {
    match &error.kind {
        ValidationErrorKind::Type {
            kind: TypeKind::Single(t),
        } => format!("expected {t}"),
        ValidationErrorKind::Type {
            kind: TypeKind::Multiple(set),
        } => {
            let mut names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
            // "string or null" reads better than the set's own order.
            names.sort_by_key(|n| n == "null");
            format!("expected {}", names.join(" or "))
        }
        ValidationErrorKind::Required { property } => {
            format!("missing required field {property}")
        }
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Enum { options } => format!("must be one of {}", list(options)),
        _ => error.to_string(),
    }
}

/// `"a", "b"` for an enum's options.
fn list(options: &Value) -> String {
    match options {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            items.join(", ")
        }
        other => other.to_string(),
    }
}

const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The common frame of every built-in schema. Derived fields appear in `properties`
/// but never in `required`; unknown fields are allowed because vendors add fields.
fn object_schema(title: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// Inserts `key` when absent, at its place in the vendor's field `order` relative
/// to the keys present; every key the client sent keeps its position.
fn fill_absent(fields: &mut Object, order: &[&str], key: &str, value: Value) {
    if fields.contains_key(key) {
        return;
    }
    let index = canonical_index(fields, order, key);
    fields.shift_insert(index, key.to_owned(), value);
}

/// Right after the nearest preceding canonical key that is present; failing that,
/// right before the nearest following one; failing that, at the end.
fn canonical_index(fields: &Object, order: &[&str], key: &str) -> usize {
    let rank = order
        .iter()
        .position(|k| *k == key)
        .unwrap_or_else(|| panic!("{key} is not in the canonical order"));
    let index_of = |k: &&str| fields.keys().position(|present| present == k);
    if let Some(i) = order[..rank].iter().rev().find_map(index_of) {
        return i + 1;
    }
    order[rank + 1..]
        .iter()
        .find_map(index_of)
        .unwrap_or(fields.len())
}

/// The string at `key`, if it is one.
fn str_field<'a>(fields: &'a Object, key: &str) -> Option<&'a str> {
    fields.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(super) const CTX: PrepareContext<'static> = PrepareContext { project_id: "acme" };

    /// The violations of an invalid payload; panics when it was accepted.
    pub(super) fn violations(
        catalog: &Catalog,
        event_type: &str,
        payload: Value,
    ) -> Vec<Violation> {
        match catalog.prepare(event_type, payload, &CTX) {
            Err(CatalogError::Invalid(v)) => v,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    pub(super) fn v(pointer: &str, message: &str) -> Violation {
        Violation::new(pointer, message)
    }

    /// The top-level keys of a prepared payload, in order.
    pub(super) fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn lists_every_type_family_by_family() {
        let catalog = Catalog::builtin();
        let names: Vec<&str> = catalog.list().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "RUN_COMPLETED",
                "deployment_request_started",
                "deployment_request_finished",
                "deployment_request_completed",
                "deployment_request_failed",
                "pipeline_request_started",
                "pipeline_request_finished",
                "pipeline_request_completed",
                "pipeline_request_failed",
                "MODEL_VERSION_CREATED",
                "MODEL_VERSION_DELETED",
                "MODEL_TAG_CHANGED",
                "MODEL_STATUS_CHANGED",
                "execution_completed",
                "execution_failed",
                "task_completed",
                "task_failed",
                "pipeline_completed",
                "pipeline_failed",
                "deployment_completed",
                "deployment_failed",
                "TEST",
                "mlhook.webhook.disabled",
                "mlhook.delivery.exhausted",
                "mlhook.delivery.recovered",
                "mlflow.registered_model.created",
                "mlflow.model_version.created",
                "mlflow.model_version_tag.set",
                "mlflow.model_version_tag.deleted",
                "mlflow.model_version_alias.created",
                "mlflow.model_version_alias.deleted",
                "mlflow.prompt.created",
                "mlflow.prompt_version.created",
                "mlflow.prompt_tag.set",
                "mlflow.prompt_tag.deleted",
                "mlflow.prompt_version_tag.set",
                "mlflow.prompt_version_tag.deleted",
                "mlflow.prompt_alias.created",
                "mlflow.prompt_alias.deleted",
                "mlflow.budget_policy.exceeded",
            ]
        );
        let families: Vec<Family> = catalog.list().map(|t| t.family).collect();
        assert!(families.is_sorted_by_key(|f| *f as u8), "{families:?}");
        assert!(catalog.contains("TEST") && !catalog.contains("test"));
        assert_eq!(
            catalog.get("task_failed").unwrap().family,
            Family::Executions
        );
        assert!(catalog.get("nope").is_none());
    }

    #[test]
    fn family_serializes_as_snake_case() {
        assert_eq!(json!(Family::ModelRegistry), json!("model_registry"));
        assert_eq!(json!(Family::Test), json!("test"));
        let t = Catalog::builtin().get("RUN_COMPLETED").unwrap().clone();
        let body = serde_json::to_value(&t).unwrap();
        assert_eq!(body["family"], "monitoring");
        assert_eq!(body["name"], "RUN_COMPLETED");
    }

    #[test]
    fn object_ref_omits_absent_parts() {
        let o = ObjectRef {
            object_type: "model".into(),
            name: Some("m".into()),
            version: None,
        };
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"type":"model","name":"m"}"#
        );
        let back: ObjectRef = serde_json::from_str(r#"{"type":"project"}"#).unwrap();
        assert_eq!(
            back,
            ObjectRef {
                object_type: "project".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn catalog_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Catalog>();
    }

    #[test]
    fn unknown_type_is_an_error() {
        let err = Catalog::builtin()
            .prepare("NOPE", json!({}), &CTX)
            .unwrap_err();
        assert!(matches!(&err, CatalogError::UnknownEventType(n) if n == "NOPE"));
        assert_eq!(err.to_string(), r#"unknown event type "NOPE""#);
    }

    #[test]
    fn non_object_payload_is_one_violation() {
        let catalog = Catalog::builtin();
        for payload in [json!([]), json!("x"), json!(null), json!(3)] {
            assert_eq!(
                violations(&catalog, "execution_failed", payload),
                [v("/payload", "expected object")]
            );
        }
    }

    #[test]
    fn every_built_in_schema_compiles() {
        // Validators are compiled lazily; a broken schema must fail here, not in production.
        for t in Catalog::builtin().list() {
            assert!(
                jsonschema::draft202012::new(&t.schema).is_ok(),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn schemas_share_the_documented_frame() {
        for t in Catalog::builtin().list() {
            let s = &t.schema;
            assert_eq!(s["$schema"], SCHEMA_DIALECT, "{}", t.name);
            assert_eq!(s["title"], t.name.as_str());
            assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
            assert!(t.description.ends_with('.'), "{}", t.name);
            assert_eq!(s["type"], "object");
            assert!(s["properties"].is_object() && s["required"].is_array());
            assert!(s.get("additionalProperties").is_none());
        }
    }

    #[test]
    fn every_example_is_valid_and_delivered_unchanged() {
        let catalog = Catalog::builtin();
        for t in catalog.list() {
            let prepared = catalog.prepare(&t.name, t.example.clone(), &CTX).unwrap();
            assert_eq!(
                serde_json::to_string(&prepared.payload).unwrap(),
                serde_json::to_string(&t.example).unwrap(),
                "{}",
                t.name
            );
            // mlhook's own events are about a webhook, not a routed object.
            let routed = t.family != Family::Operational;
            assert_eq!(prepared.object.is_some(), routed, "{}", t.name);
        }
    }

    /// Comet sends its test payload (trigger "TEST") whatever the webhook's triggers,
    /// so registry test payloads are valid TEST events rather than events of their type.
    #[test]
    fn every_test_payload_is_valid_and_delivered_unchanged() {
        let catalog = Catalog::builtin();
        for t in catalog.list() {
            let as_type = match t.family {
                Family::ModelRegistry => "TEST",
                _ => t.name.as_str(),
            };
            let prepared = catalog
                .prepare(as_type, t.test_payload.clone(), &CTX)
                .unwrap();
            assert_eq!(prepared.payload, t.test_payload, "{}", t.name);
            let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
            let fresh = catalog.test_payload(&t.name, now).unwrap();
            assert!(catalog.prepare(as_type, fresh, &CTX).is_ok(), "{}", t.name);
        }
    }

    #[test]
    fn test_payload_of_unknown_type_is_none() {
        assert!(
            Catalog::builtin()
                .test_payload("NOPE", Utc::now())
                .is_none()
        );
    }

    #[test]
    fn filled_keys_go_to_their_canonical_place() {
        let order = ["a", "b", "c", "d"];
        let mut fields = json!({"x": 0, "c": 3, "a": 1}).as_object().unwrap().clone();
        fill_absent(&mut fields, &order, "b", json!(2));
        fill_absent(&mut fields, &order, "d", json!(4));
        let got: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(got, ["x", "c", "d", "a", "b"]);
        // Nothing earlier present: goes before the next canonical key, after extras.
        let mut fields = json!({"x": 0, "c": 3}).as_object().unwrap().clone();
        fill_absent(&mut fields, &order, "a", json!(1));
        let got: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(got, ["x", "a", "c"]);
        // Present keys are never overwritten.
        fill_absent(&mut fields, &order, "a", json!(9));
        assert_eq!(fields["a"], 1);
    }

    #[test]
    fn messages_are_short() {
        let schema = json!({
            "type": "object",
            "properties": {
                "e": {"enum": ["a", "b"]},
                "n": {"type": ["string", "null"]},
                "m": {"minLength": 3}
            }
        });
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let instance = json!({"e": "c", "n": 1, "m": "x"});
        let got: Vec<Violation> = validator
            .iter_errors(&instance)
            .map(|e| to_violation(&e))
            .collect();
        assert_eq!(
            got,
            [
                v("/payload/e", r#"must be one of "a", "b""#),
                v("/payload/n", "expected string or null"),
                v("/payload/m", r#""x" is shorter than 3 characters"#),
            ]
        );
    }
}
