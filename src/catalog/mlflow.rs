//! MLflow family: the webhooks MLflow 3.x sends from its model registry,
//! prompt registry and AI gateway, as native `mlflow.<entity>.<action>` types.
//!
//! The payload of each is MLflow's body exactly: `{"entity", "action",
//! "timestamp", "data"}` (plus `"workspace"` when MLflow runs with workspaces).
//! Events arrive through an MLflow source (`crate::sources`), which also
//! publishes the Comet-shaped counterpart where one exists; a client may post
//! them to `POST /events` too.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::describe::{push_field, text_of, version_label};
use super::{
    Description, EventType, Family, Object, ObjectRef, PrepareContext, Rules, Span, Spec, Tone,
    fill_absent, no_check, object_schema, str_field,
};

/// Every native type is `mlflow.<entity>.<action>`.
pub const PREFIX: &str = "mlflow.";

/// The field order of MLflow's body.
const ORDER: [&str; 5] = ["entity", "action", "timestamp", "data", "workspace"];

/// Shown in the catalogue's examples; a test payload takes the time of sending.
const SAMPLE_TIMESTAMP: &str = "2026-01-15T10:30:00.123456+00:00";

/// The native event type of an MLflow entity and action.
pub fn event_type(entity: &str, action: &str) -> String {
    format!("{PREFIX}{entity}.{action}")
}

/// One MLflow event: its entity and action, what it means, and its `data`.
struct Def {
    entity: &'static str,
    action: &'static str,
    description: &'static str,
    /// `(field, schema)` in MLflow's order.
    fields: &'static [(&'static str, Kind)],
    required: &'static [&'static str],
}

/// The JSON types MLflow's payload fields take.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    StrOrNull,
    /// `{key: value}` string pairs.
    Tags,
    Number,
    Integer,
}

impl Kind {
    fn schema(self) -> Value {
        match self {
            Kind::Str => json!({"type": "string"}),
            Kind::StrOrNull => json!({"type": ["string", "null"]}),
            Kind::Tags => json!({"type": "object", "additionalProperties": {"type": "string"}}),
            Kind::Number => json!({"type": "number"}),
            Kind::Integer => json!({"type": "integer"}),
        }
    }
}

use Kind::{Integer, Number, Str, StrOrNull, Tags};

/// MLflow 3.17's events, in the order of its `VALID_ENTITY_ACTIONS`.
const DEFS: [Def; 15] = [
    Def {
        entity: "registered_model",
        action: "created",
        description: "A registered model was created in the MLflow model registry.",
        fields: &[("name", Str), ("tags", Tags), ("description", StrOrNull)],
        required: &["name"],
    },
    Def {
        entity: "model_version",
        action: "created",
        description: "A model version was created in the MLflow model registry.",
        fields: &[
            ("name", Str),
            ("version", Str),
            ("source", Str),
            ("run_id", StrOrNull),
            ("tags", Tags),
            ("description", StrOrNull),
        ],
        required: &["name", "version"],
    },
    Def {
        entity: "model_version_tag",
        action: "set",
        description: "A tag was set on a model version in the MLflow model registry.",
        fields: &[
            ("name", Str),
            ("version", Str),
            ("key", Str),
            ("value", Str),
        ],
        required: &["name", "version", "key"],
    },
    Def {
        entity: "model_version_tag",
        action: "deleted",
        description: "A tag was deleted from a model version in the MLflow model registry.",
        fields: &[("name", Str), ("version", Str), ("key", Str)],
        required: &["name", "version", "key"],
    },
    Def {
        entity: "model_version_alias",
        action: "created",
        description: "An alias was set on a model version in the MLflow model registry.",
        fields: &[("name", Str), ("alias", Str), ("version", Str)],
        required: &["name", "alias", "version"],
    },
    Def {
        entity: "model_version_alias",
        action: "deleted",
        description: "An alias was deleted from a registered model in the MLflow model registry.",
        fields: &[("name", Str), ("alias", Str)],
        required: &["name", "alias"],
    },
    Def {
        entity: "prompt",
        action: "created",
        description: "A prompt was created in the MLflow prompt registry.",
        fields: &[("name", Str), ("tags", Tags), ("description", StrOrNull)],
        required: &["name"],
    },
    Def {
        entity: "prompt_version",
        action: "created",
        description: "A prompt version was created in the MLflow prompt registry.",
        fields: &[
            ("name", Str),
            ("version", Str),
            ("template", StrOrNull),
            ("tags", Tags),
            ("description", StrOrNull),
        ],
        required: &["name", "version"],
    },
    Def {
        entity: "prompt_tag",
        action: "set",
        description: "A tag was set on a prompt in the MLflow prompt registry.",
        fields: &[("name", Str), ("key", Str), ("value", Str)],
        required: &["name", "key"],
    },
    Def {
        entity: "prompt_tag",
        action: "deleted",
        description: "A tag was deleted from a prompt in the MLflow prompt registry.",
        fields: &[("name", Str), ("key", Str)],
        required: &["name", "key"],
    },
    Def {
        entity: "prompt_version_tag",
        action: "set",
        description: "A tag was set on a prompt version in the MLflow prompt registry.",
        fields: &[
            ("name", Str),
            ("version", Str),
            ("key", Str),
            ("value", Str),
        ],
        required: &["name", "version", "key"],
    },
    Def {
        entity: "prompt_version_tag",
        action: "deleted",
        description: "A tag was deleted from a prompt version in the MLflow prompt registry.",
        fields: &[("name", Str), ("version", Str), ("key", Str)],
        required: &["name", "version", "key"],
    },
    Def {
        entity: "prompt_alias",
        action: "created",
        description: "An alias was set on a prompt version in the MLflow prompt registry.",
        fields: &[("name", Str), ("alias", Str), ("version", Str)],
        required: &["name", "alias", "version"],
    },
    Def {
        entity: "prompt_alias",
        action: "deleted",
        description: "An alias was deleted from a prompt in the MLflow prompt registry.",
        fields: &[("name", Str), ("alias", Str)],
        required: &["name", "alias"],
    },
    Def {
        entity: "budget_policy",
        action: "exceeded",
        description: "Spending through the MLflow AI gateway exceeded a budget policy.",
        fields: &[
            ("budget_policy_id", Str),
            ("budget_unit", Str),
            ("budget_amount", Number),
            ("current_spend", Number),
            ("duration_unit", Str),
            ("duration_value", Integer),
            ("target_scope", Str),
            ("workspace", Str),
            ("target_value", StrOrNull),
            ("window_start", Integer),
        ],
        required: &["budget_policy_id", "budget_amount", "current_spend"],
    },
];

pub(super) fn specs() -> Vec<Spec> {
    DEFS.iter().map(spec).collect()
}

fn spec(def: &Def) -> Spec {
    let name = event_type(def.entity, def.action);
    let example = envelope(def, example_data(def.entity, def.action));
    let event_type = EventType {
        description: def.description.to_owned(),
        schema: schema(&name, def),
        // MLflow's own "test" sends its example payload.
        test_payload: example.clone(),
        example,
        name,
        family: Family::Mlflow,
    };
    Spec {
        event_type,
        rules: Rules {
            fill,
            check: no_check,
            object,
            refresh,
            describe,
        },
    }
}

/// The entity and action of a native type name, when it is one.
fn split(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(PREFIX)?.split_once('.')
}

/// A client posting a native event may leave out the entity and action the
/// type already names; MLflow always sends them.
fn fill(name: &str, fields: &mut Object, _: &PrepareContext<'_>) {
    if let Some((entity, action)) = split(name) {
        fill_absent(fields, &ORDER, "entity", Value::from(entity));
        fill_absent(fields, &ORDER, "action", Value::from(action));
    }
}

/// What an MLflow event is about: the registered model (with the version when
/// the event names one), the prompt, or the budget policy.
fn object(name: &str, fields: &Object) -> Option<ObjectRef> {
    let (entity, _) = split(name)?;
    let data = fields.get("data")?.as_object()?;
    let (object_type, key) = match entity {
        "budget_policy" => ("budget_policy", "budget_policy_id"),
        e if e.starts_with("prompt") => ("prompt", "name"),
        _ => ("model", "name"),
    };
    Some(ObjectRef {
        object_type: object_type.to_owned(),
        name: Some(str_field(data, key)?.to_owned()),
        version: str_field(data, "version").map(str::to_owned),
    })
}

/// A test payload is stamped with the time it is sent, as MLflow's test is.
fn refresh(payload: &mut Value, now: DateTime<Utc>) {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("timestamp".to_owned(), json!(iso_timestamp(now)));
    }
}

/// MLflow's `datetime.now(timezone.utc).isoformat()`: microseconds, `+00:00`.
fn iso_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

fn schema(name: &str, def: &Def) -> Value {
    let mut data_properties = serde_json::Map::new();
    for (field, kind) in def.fields {
        data_properties.insert((*field).to_owned(), kind.schema());
    }
    let properties = json!({
        "entity": {"const": def.entity, "description": "Filled in by mlhook when absent."},
        "action": {"const": def.action, "description": "Filled in by mlhook when absent."},
        "timestamp": {"type": "string", "description": "When MLflow sent the event, ISO 8601."},
        "data": {
            "type": "object",
            "properties": data_properties,
            "required": def.required,
        },
        "workspace": {
            "type": "string",
            "description": "The MLflow workspace, when MLflow runs with workspaces enabled."
        },
    });
    let description = format!(
        "The body MLflow sends for its {}.{} webhook event.",
        def.entity, def.action
    );
    object_schema(
        name,
        &description,
        properties,
        &["entity", "action", "timestamp", "data"],
    )
}

fn envelope(def: &Def, data: Value) -> Value {
    json!({
        "entity": def.entity,
        "action": def.action,
        "timestamp": SAMPLE_TIMESTAMP,
        "data": data,
    })
}

/// Whether `data` is what MLflow's `test_webhook` sends for `entity.action`:
/// its example payload, to the letter. MLflow marks a test no other way (the
/// same headers, the same envelope), and a real change is never all
/// `example_model` / `example_key` / `example_value`.
pub fn is_test_data(entity: &str, action: &str, data: &Value) -> bool {
    DEFS.iter()
        .any(|def| def.entity == entity && def.action == action)
        && *data == example_data(entity, action)
}

/// MLflow's own example payloads (`mlflow.webhooks.types`), which its test sends.
fn example_data(entity: &str, action: &str) -> Value {
    let tags = json!({"example_key": "example_value"});
    match (entity, action) {
        ("registered_model", _) => json!({
            "name": "example_model", "tags": tags, "description": "An example registered model"
        }),
        ("model_version", _) => json!({
            "name": "example_model", "version": "1", "source": "models:/123",
            "run_id": "abcd1234abcd5678", "tags": tags, "description": "An example model version"
        }),
        ("model_version_tag", "set") => json!({
            "name": "example_model", "version": "1", "key": "example_key", "value": "example_value"
        }),
        ("model_version_tag", _) => {
            json!({"name": "example_model", "version": "1", "key": "example_key"})
        }
        ("model_version_alias", "created") => {
            json!({"name": "example_model", "alias": "example_alias", "version": "1"})
        }
        ("model_version_alias", _) => json!({"name": "example_model", "alias": "example_alias"}),
        ("prompt", _) => json!({
            "name": "example_prompt", "tags": tags, "description": "An example prompt"
        }),
        ("prompt_version", _) => json!({
            "name": "example_prompt", "version": "1", "template": "Hello {{name}}!",
            "tags": tags, "description": "An example prompt version"
        }),
        ("prompt_tag", "set") => {
            json!({"name": "example_prompt", "key": "example_key", "value": "example_value"})
        }
        ("prompt_tag", _) => json!({"name": "example_prompt", "key": "example_key"}),
        ("prompt_version_tag", "set") => json!({
            "name": "example_prompt", "version": "1", "key": "example_key", "value": "example_value"
        }),
        ("prompt_version_tag", _) => {
            json!({"name": "example_prompt", "version": "1", "key": "example_key"})
        }
        ("prompt_alias", "created") => {
            json!({"name": "example_prompt", "alias": "example_alias", "version": "1"})
        }
        ("prompt_alias", _) => json!({"name": "example_prompt", "alias": "example_alias"}),
        _ => json!({
            "budget_policy_id": "bp-abc123", "budget_unit": "USD", "budget_amount": 100.0,
            "current_spend": 105.5, "duration_unit": "MONTHS", "duration_value": 1,
            "target_scope": "ENDPOINT", "workspace": "default", "target_value": "ep-abc123",
            "window_start": 1_704_067_200_000_i64
        }),
    }
}

/// "MLflow: model churn v3 created", "MLflow: alias champion → model churn v3", …
pub(super) fn describe(name: &str, fields: &Object, _project: &str) -> Option<Description> {
    let (entity, action) = split(name)?;
    let empty = Object::new();
    let data = fields
        .get("data")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let get = |key: &str| text_of(data, key);
    let what = if entity.starts_with("prompt") {
        "prompt"
    } else {
        "model"
    };
    let subject_name = get("name").unwrap_or_else(|| "(unnamed)".to_owned());
    let version = get("version");
    let subject = match &version {
        Some(v) => format!("{what} {subject_name} {}", version_label(v)),
        None => format!("{what} {subject_name}"),
    };
    let key = get("key").unwrap_or_default();
    let tag = match get("value").filter(|v| !v.is_empty()) {
        Some(value) => format!("{key}={value}"),
        None => key.clone(),
    };
    let alias = get("alias").unwrap_or_default();
    let (title, summary, tone) = match (entity, action) {
        ("budget_policy", _) => {
            let id = get("budget_policy_id").unwrap_or_else(|| "(unnamed)".to_owned());
            let unit = get("budget_unit").unwrap_or_default();
            let spend = get("current_spend").unwrap_or_default();
            let amount = get("budget_amount").unwrap_or_default();
            (
                format!("MLflow: budget policy {id} exceeded"),
                format!("Spending reached {spend} {unit}, over the budget of {amount} {unit}."),
                Tone::Bad,
            )
        }
        ("registered_model" | "prompt" | "model_version" | "prompt_version", _) => (
            format!("MLflow: {subject} created"),
            format!("{} was created in MLflow.", capitalise(&subject)),
            Tone::Good,
        ),
        (_, "set") => (
            format!("MLflow: tag {tag} set on {subject}"),
            format!("Tag {tag} was set on {subject} in MLflow."),
            Tone::Neutral,
        ),
        (e, "created") if e.ends_with("alias") => (
            format!("MLflow: alias {alias} → {subject}"),
            format!("Alias {alias} now points to {subject} in MLflow."),
            Tone::Neutral,
        ),
        (e, "deleted") if e.ends_with("alias") => (
            format!("MLflow: alias {alias} of {subject} deleted"),
            format!("Alias {alias} of {subject} was deleted in MLflow."),
            Tone::Neutral,
        ),
        (_, "deleted") => (
            format!("MLflow: tag {key} deleted from {subject}"),
            format!("Tag {key} was deleted from {subject} in MLflow."),
            Tone::Neutral,
        ),
        _ => return None,
    };
    let mut out = Vec::new();
    if entity == "budget_policy" {
        for (label, key) in [
            ("Budget policy", "budget_policy_id"),
            ("Current spend", "current_spend"),
            ("Budget", "budget_amount"),
            ("Unit", "budget_unit"),
            ("Scope", "target_scope"),
            ("Target", "target_value"),
        ] {
            push_field(&mut out, label, get(key));
        }
    } else {
        push_field(&mut out, capitalise(what).as_str(), get("name"));
        push_field(&mut out, "Version", version);
        push_field(&mut out, "Alias", get("alias"));
        push_field(&mut out, "Tag", get("key").map(|_| tag));
        push_field(&mut out, "Source", get("source"));
        push_field(&mut out, "Run", get("run_id"));
        push_field(&mut out, "Description", get("description"));
    }
    push_field(&mut out, "Workspace", text_of(fields, "workspace"));
    Some(Description {
        title,
        summary: vec![Span::text(summary)],
        fields: out,
        link: None,
        tone,
    })
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Catalog;
    use super::super::tests::{CTX, keys, v, violations};
    use super::*;
    use chrono::TimeZone;

    /// A body as MLflow 3.17.2 sends it for a new model version.
    const SENT: &str = r#"{"entity": "model_version", "action": "created", "timestamp": "2026-11-25T10:00:00.123456+00:00", "data": {"name": "churn", "version": "3", "source": "s3://bucket/churn/3", "run_id": "9f1c", "tags": {"team": "fraud"}, "description": null}}"#;

    fn sent() -> Value {
        serde_json::from_str(SENT).unwrap()
    }

    #[test]
    fn every_mlflow_event_has_a_native_type() {
        let catalog = Catalog::builtin();
        let names: Vec<&str> = catalog
            .list()
            .filter(|t| t.family == Family::Mlflow)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names.len(), DEFS.len());
        for def in &DEFS {
            assert!(names.contains(&event_type(def.entity, def.action).as_str()));
        }
        assert!(names.iter().all(|n| n.starts_with(PREFIX)));
    }

    #[test]
    fn mlflow_body_is_stored_as_sent() {
        let prepared = Catalog::builtin()
            .prepare("mlflow.model_version.created", sent(), &CTX)
            .unwrap();
        assert_eq!(prepared.payload, sent());
        assert_eq!(
            keys(&prepared.payload),
            ["entity", "action", "timestamp", "data"]
        );
        assert_eq!(
            prepared.object,
            Some(ObjectRef {
                object_type: "model".into(),
                name: Some("churn".into()),
                version: Some("3".into()),
            })
        );
    }

    #[test]
    fn entity_and_action_are_filled_and_must_agree() {
        let catalog = Catalog::builtin();
        let mut body = sent();
        let fields = body.as_object_mut().unwrap();
        fields.remove("entity");
        fields.remove("action");
        let prepared = catalog
            .prepare("mlflow.model_version.created", body, &CTX)
            .unwrap();
        assert_eq!(prepared.payload, sent());
        assert_eq!(
            violations(&catalog, "mlflow.registered_model.created", sent()),
            [v("/payload/entity", r#"must be "registered_model""#)]
        );
        let mut deleted = sent();
        deleted["action"] = json!("deleted");
        assert_eq!(
            violations(&catalog, "mlflow.model_version.created", deleted),
            [v("/payload/action", r#"must be "created""#)]
        );
    }

    #[test]
    fn data_fields_are_checked() {
        let catalog = Catalog::builtin();
        let body = json!({"entity": "model_version_tag", "action": "set",
                          "timestamp": "t", "data": {"name": "m", "version": 3, "value": 1}});
        let got = violations(&catalog, "mlflow.model_version_tag.set", body);
        for expected in [
            v("/payload/data", r#"missing required field "key""#),
            v("/payload/data/version", "expected string"),
            v("/payload/data/value", "expected string"),
        ] {
            assert!(got.contains(&expected), "{expected:?} not in {got:?}");
        }
        let no_data = json!({"timestamp": "t"});
        assert_eq!(
            violations(&catalog, "mlflow.prompt.created", no_data),
            [v("/payload", r#"missing required field "data""#)]
        );
    }

    #[test]
    fn objects_are_the_model_the_prompt_or_the_policy() {
        let catalog = Catalog::builtin();
        let object = |name: &str| {
            let t = catalog.get(name).unwrap();
            catalog
                .prepare(name, t.example.clone(), &CTX)
                .unwrap()
                .object
                .unwrap()
        };
        let alias = object("mlflow.model_version_alias.deleted");
        assert_eq!(
            (alias.object_type.as_str(), alias.name.as_deref()),
            ("model", Some("example_model"))
        );
        assert_eq!(alias.version, None);
        assert_eq!(
            object("mlflow.prompt_version.created").object_type,
            "prompt"
        );
        assert_eq!(
            object("mlflow.budget_policy.exceeded").name.as_deref(),
            Some("bp-abc123")
        );
    }

    #[test]
    fn mlflow_test_data_is_told_from_a_real_change() {
        let example = example_data("model_version", "created");
        assert!(is_test_data("model_version", "created", &example));
        let mut real = example.clone();
        real["name"] = json!("churn");
        assert!(!is_test_data("model_version", "created", &real));
        assert!(
            !is_test_data("model_version", "deleted", &example),
            "no such event"
        );
        let tag = example_data("model_version_tag", "set");
        assert!(
            !is_test_data("model_version", "created", &tag),
            "another event's example"
        );
    }

    #[test]
    fn test_payload_is_stamped_now_like_mlflow() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let payload = Catalog::builtin()
            .test_payload("mlflow.model_version.created", now)
            .unwrap();
        assert_eq!(payload["timestamp"], "2026-03-01T12:00:00.000000+00:00");
        assert_eq!(payload["data"]["name"], "example_model");
    }

    #[test]
    fn descriptions_read_well() {
        let catalog = Catalog::builtin();
        let title =
            |name: &str, payload: Value| Catalog::global().describe(name, "p", &payload).title;
        assert_eq!(
            title("mlflow.model_version.created", sent()),
            "MLflow: model churn v3 created"
        );
        let tag =
            json!({"data": {"name": "churn", "version": "3", "key": "stage", "value": "prod"}});
        assert_eq!(
            title("mlflow.model_version_tag.set", tag),
            "MLflow: tag stage=prod set on model churn v3"
        );
        let alias = json!({"data": {"name": "churn", "version": "3", "alias": "champion"}});
        assert_eq!(
            title("mlflow.model_version_alias.created", alias),
            "MLflow: alias champion → model churn v3"
        );
        let d = Catalog::global().describe(
            "mlflow.budget_policy.exceeded",
            "p",
            &catalog
                .get("mlflow.budget_policy.exceeded")
                .unwrap()
                .example,
        );
        assert_eq!(d.title, "MLflow: budget policy bp-abc123 exceeded");
        assert_eq!(d.tone, Tone::Bad);
        let d = Catalog::global().describe("mlflow.model_version.created", "p", &sent());
        assert!(
            d.fields
                .iter()
                .any(|f| f.name == "Source" && f.value == "s3://bucket/churn/3")
        );
    }
}
