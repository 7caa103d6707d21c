//! Model registry family: Comet model registry webhooks, and the `TEST` event type,
//! which is Comet's test payload shape.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::describe::{list_of, push_field, text_of, version_label};
use super::{
    Description, EventType, Family, Object, ObjectRef, PrepareContext, Rules, Span, Spec, Tone,
    Violation, fill_absent, object_schema, str_field,
};

const TAG_CHANGED: &str = "MODEL_TAG_CHANGED";
const TEST: &str = "TEST";

/// Comet's triggers, in its document's order.
const TRIGGERS: [&str; 4] = [
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_DELETED",
    TAG_CHANGED,
    "MODEL_STATUS_CHANGED",
];

/// The field order of every Comet payload.
const ORDER: [&str; 10] = [
    "eventTrigger",
    "workspaceName",
    "registryModelName",
    "version",
    "tags",
    "deletedTags",
    "status",
    "oldStatus",
    "createdAt",
    "sourceExperimentKey",
];

/// Shown in the catalogue's copy of the test payload; `Catalog::test_payload`
/// replaces it with "now minus one hour" as Comet does (2023-12-31T23:00:00Z).
const SAMPLE_TEST_CREATED_AT: i64 = 1_704_063_600;

pub(super) fn specs() -> Vec<Spec> {
    TRIGGERS
        .iter()
        .map(|name| spec(name, Family::ModelRegistry))
        .collect()
}

pub(super) fn test_specs() -> Vec<Spec> {
    vec![spec(TEST, Family::Test)]
}

fn spec(name: &str, family: Family) -> Spec {
    let example = if name == TEST {
        test_payload()
    } else {
        example(name)
    };
    let event_type = EventType {
        name: name.to_owned(),
        family,
        description: description(name).to_owned(),
        schema: schema(name),
        example,
        // Comet's "Test Webhook" button always sends the TEST trigger.
        test_payload: test_payload(),
    };
    Spec {
        event_type,
        rules: Rules {
            fill,
            check,
            object,
            refresh,
            describe,
        },
    }
}

fn description(name: &str) -> &'static str {
    match name {
        "MODEL_VERSION_CREATED" => "A new model version was registered (Comet model registry).",
        "MODEL_VERSION_DELETED" => "A model version was deleted (Comet model registry).",
        TAG_CHANGED => "Tags were added to or removed from a model version (Comet model registry).",
        "MODEL_STATUS_CHANGED" => {
            "A model version's status change was approved or forced (Comet model registry)."
        }
        _ => "A test notification, shaped like a Comet model registry webhook.",
    }
}

/// Only tag changes (and Comet's test payload) carry deleted tags and an old status;
/// Comet documents `[]` and `null` for them everywhere else.
fn carries_changes(name: &str) -> bool {
    name == TAG_CHANGED || name == TEST
}

/// Receivers read every documented field, so optional ones are filled with their
/// "nothing" value: no deleted tags, no (old) status, no source experiment.
fn fill(name: &str, fields: &mut Object, _: &PrepareContext<'_>) {
    fill_absent(fields, &ORDER, "eventTrigger", Value::from(name));
    fill_absent(fields, &ORDER, "deletedTags", json!([]));
    fill_absent(fields, &ORDER, "status", Value::Null);
    fill_absent(fields, &ORDER, "oldStatus", Value::Null);
    fill_absent(fields, &ORDER, "sourceExperimentKey", Value::Null);
}

/// Comet's per-trigger rules, phrased for people; the schema encodes them too.
fn check(name: &str, fields: &Object) -> Vec<Violation> {
    let mut violations = Vec::new();
    if carries_changes(name) {
        return violations;
    }
    // A non-array is left to the schema, which says "expected array".
    if fields
        .get("deletedTags")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty())
    {
        let message = format!("must be empty except for {TAG_CHANGED}");
        violations.push(Violation::new("/payload/deletedTags", message));
    }
    if fields.get("oldStatus").is_some_and(|s| !s.is_null()) {
        let message = format!("must be null except for {TAG_CHANGED}");
        violations.push(Violation::new("/payload/oldStatus", message));
    }
    violations
}

/// "Model churn v3 moved Staging → Production", "Model churn v3 created", …
pub(super) fn describe(name: &str, fields: &Object, _project: &str) -> Option<Description> {
    let model = text_of(fields, "registryModelName").unwrap_or_else(|| "(unnamed)".to_owned());
    let version = text_of(fields, "version").unwrap_or_default();
    let v = version_label(&version);
    let workspace = text_of(fields, "workspaceName");
    let status = text_of(fields, "status");
    let old_status = text_of(fields, "oldStatus");
    let tags = list_of(fields.get("tags"), 25);
    let deleted = list_of(fields.get("deletedTags"), 25);
    let subject = format!("model {model} {v}").trim_end().to_owned();
    let in_workspace = workspace
        .as_deref()
        .map(|w| format!(" in workspace {w}"))
        .unwrap_or_default();
    let moved = match (&old_status, &status) {
        (Some(old), Some(new)) => format!("moved {old} → {new}"),
        (None, Some(new)) => format!("moved to {new}"),
        _ => "changed status".to_owned(),
    };
    let (title, summary, tone) = match name {
        "MODEL_VERSION_CREATED" => (
            format!("Model {model} {v} created"),
            format!("Version {version} of model {model} was registered{in_workspace}."),
            Tone::Good,
        ),
        "MODEL_VERSION_DELETED" => (
            format!("Model {model} {v} deleted"),
            format!("Version {version} of model {model} was deleted{in_workspace}."),
            Tone::Neutral,
        ),
        TAG_CHANGED => {
            let mut summary = format!("The tags of {subject}{in_workspace} changed");
            match (&tags, &deleted) {
                (Some(t), Some(d)) => summary.push_str(&format!(": now {t}; removed {d}.")),
                (Some(t), None) => summary.push_str(&format!(": now {t}.")),
                (None, Some(d)) => summary.push_str(&format!(": removed {d}.")),
                (None, None) => summary.push('.'),
            }
            (
                format!("Model {model} {v} tags changed"),
                summary,
                Tone::Neutral,
            )
        }
        "MODEL_STATUS_CHANGED" => (
            format!("Model {model} {v} {moved}"),
            format!("The status of {subject}{in_workspace} {moved}."),
            Tone::Neutral,
        ),
        _ => (
            format!("Test: {subject} {moved}"),
            format!(
                "A test notification from mlhook, shaped like a Comet model registry webhook, \
                 about {subject}{in_workspace}."
            ),
            Tone::Neutral,
        ),
    };
    let mut out = Vec::new();
    push_field(&mut out, "Model", Some(model.clone()));
    push_field(&mut out, "Version", Some(version));
    push_field(&mut out, "Workspace", workspace);
    push_field(&mut out, "Status", status);
    push_field(&mut out, "Previous status", old_status);
    push_field(&mut out, "Tags", tags);
    push_field(&mut out, "Removed tags", deleted);
    push_field(
        &mut out,
        "Source experiment",
        text_of(fields, "sourceExperimentKey"),
    );
    Some(Description {
        title: title.replace("  ", " "),
        summary: vec![Span::text(summary)],
        fields: out,
        link: None,
        tone,
    })
}

fn object(_: &str, fields: &Object) -> Option<ObjectRef> {
    Some(ObjectRef {
        object_type: "model".to_owned(),
        name: Some(str_field(fields, "registryModelName")?.to_owned()),
        version: Some(str_field(fields, "version")?.to_owned()),
    })
}

/// Comet's test payload is created "now minus one hour", in UTC seconds.
fn refresh(payload: &mut Value, now: DateTime<Utc>) {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("createdAt".to_owned(), json!(now.timestamp() - 3600));
    }
}

fn schema(name: &str) -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let nullable = json!({"type": ["string", "null"]});
    let (deleted_tags, old_status) = if carries_changes(name) {
        (strings.clone(), nullable.clone())
    } else {
        let empty = json!({"type": "array", "items": {"type": "string"}, "maxItems": 0});
        (empty, json!({"type": "null"}))
    };
    let properties = json!({
        "eventTrigger": {"const": name, "description": "Filled in by mlhook when absent."},
        "workspaceName": {"type": "string"},
        "registryModelName": {"type": "string"},
        "version": {"type": "string"},
        "tags": strings,
        "deletedTags": deleted_tags,
        "status": nullable,
        "oldStatus": old_status,
        "createdAt": {"type": "integer", "description": "Version creation time, UTC seconds."},
        "sourceExperimentKey": nullable,
    });
    let required = [
        "workspaceName",
        "registryModelName",
        "version",
        "tags",
        "createdAt",
    ];
    let description = format!("Comet model registry {name} webhook body.");
    object_schema(name, &description, properties, &required)
}

fn example(name: &str) -> Value {
    let tag_changed = name == TAG_CHANGED;
    json!({
        "eventTrigger": name,
        "workspaceName": "acme-ml",
        "registryModelName": "churn-classifier",
        "version": "1.4.0",
        "tags": if tag_changed { json!(["production"]) } else { json!(["production", "candidate"]) },
        "deletedTags": if tag_changed { json!(["candidate"]) } else { json!([]) },
        "status": "Production",
        "oldStatus": if tag_changed { json!("Production") } else { Value::Null },
        "createdAt": 1_706_191_450,
        "sourceExperimentKey": "2b9a6f3c1d8e4f70a5c6b7d8e9f01234",
    })
}

/// Comet's documented test payload.
fn test_payload() -> Value {
    json!({
        "eventTrigger": TEST,
        "workspaceName": "my-workspace",
        "registryModelName": "my-model",
        "version": "1.2.3",
        "tags": ["addedTag", "marketing"],
        "deletedTags": ["deletedTag"],
        "status": "Staging",
        "oldStatus": "Development",
        "createdAt": SAMPLE_TEST_CREATED_AT,
        "sourceExperimentKey": "711e50b9e477498b91d32c024ffc802e",
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CTX, keys, v, violations};
    use super::super::{Catalog, ObjectRef};
    use super::*;
    use chrono::TimeZone;

    /// A payload laid out as Comet's field table documents it.
    const DOCUMENT: &str = r#"{
        "eventTrigger": "MODEL_VERSION_CREATED",
        "workspaceName": "ws",
        "registryModelName": "fraud",
        "version": "2.0.1",
        "tags": ["a"],
        "deletedTags": [],
        "status": null,
        "oldStatus": null,
        "createdAt": 1706191450,
        "sourceExperimentKey": null
    }"#;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    fn minimal() -> Value {
        json!({
            "workspaceName": "ws", "registryModelName": "fraud", "version": "2.0.1",
            "tags": ["a"], "createdAt": 1706191450
        })
    }

    #[test]
    fn document_shaped_payload_is_accepted_byte_identical() {
        let original = document();
        let prepared = Catalog::builtin()
            .prepare("MODEL_VERSION_CREATED", original.clone(), &CTX)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&prepared.payload).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }

    #[test]
    fn minimal_payload_is_completed_in_document_order() {
        let prepared = Catalog::builtin()
            .prepare("MODEL_VERSION_CREATED", minimal(), &CTX)
            .unwrap();
        assert_eq!(prepared.payload, document());
        assert_eq!(keys(&prepared.payload), ORDER);
    }

    #[test]
    fn filled_fields_keep_client_extras_in_place() {
        let mut payload = minimal();
        payload["extra"] = json!(true);
        payload["status"] = json!("Staging");
        let prepared = Catalog::builtin()
            .prepare("MODEL_STATUS_CHANGED", payload, &CTX)
            .unwrap();
        assert_eq!(
            keys(&prepared.payload),
            [
                "eventTrigger",
                "workspaceName",
                "registryModelName",
                "version",
                "tags",
                "deletedTags",
                "createdAt",
                "sourceExperimentKey",
                "extra",
                "status",
                "oldStatus"
            ]
        );
    }

    #[test]
    fn wrong_trigger_is_rejected() {
        assert_eq!(
            violations(&Catalog::builtin(), "MODEL_VERSION_DELETED", document()),
            [v(
                "/payload/eventTrigger",
                r#"must be "MODEL_VERSION_DELETED""#
            )]
        );
    }

    #[test]
    fn wrong_types_are_reported_together() {
        let payload = json!({
            "workspaceName": "ws", "version": 2, "tags": "a", "createdAt": "yesterday",
            "status": 1
        });
        let got = violations(&Catalog::builtin(), "MODEL_TAG_CHANGED", payload);
        let expected = [
            v("/payload", r#"missing required field "registryModelName""#),
            v("/payload/version", "expected string"),
            v("/payload/tags", "expected array"),
            v("/payload/status", "expected string or null"),
            v("/payload/createdAt", "expected integer"),
        ];
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for e in expected {
            assert!(got.contains(&e), "{e:?} not in {got:?}");
        }
    }

    #[test]
    fn deleted_tags_only_on_tag_changes() {
        let catalog = Catalog::builtin();
        let mut payload = minimal();
        payload["deletedTags"] = json!(["old"]);
        payload["oldStatus"] = json!("Staging");
        assert_eq!(
            violations(&catalog, "MODEL_VERSION_CREATED", payload.clone()),
            [
                v(
                    "/payload/deletedTags",
                    "must be empty except for MODEL_TAG_CHANGED"
                ),
                v(
                    "/payload/oldStatus",
                    "must be null except for MODEL_TAG_CHANGED"
                ),
            ]
        );
        let prepared = catalog
            .prepare("MODEL_TAG_CHANGED", payload.clone(), &CTX)
            .unwrap();
        assert_eq!(prepared.payload["deletedTags"], json!(["old"]));
        assert!(catalog.prepare("TEST", payload, &CTX).is_ok());
    }

    #[test]
    fn deleted_tags_of_wrong_type_say_so() {
        let mut payload = minimal();
        payload["deletedTags"] = json!("old");
        assert_eq!(
            violations(&Catalog::builtin(), "MODEL_STATUS_CHANGED", payload),
            [v("/payload/deletedTags", "expected array")]
        );
    }

    #[test]
    fn object_is_the_model_version() {
        let prepared = Catalog::builtin()
            .prepare("MODEL_TAG_CHANGED", minimal(), &CTX)
            .unwrap();
        let expected = ObjectRef {
            object_type: "model".into(),
            name: Some("fraud".into()),
            version: Some("2.0.1".into()),
        };
        assert_eq!(prepared.object, Some(expected));
    }

    #[test]
    fn test_payload_is_comets_an_hour_old() {
        let catalog = Catalog::builtin();
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        for name in TRIGGERS.iter().chain(&[TEST]) {
            let payload = catalog.test_payload(name, now).unwrap();
            assert_eq!(payload["createdAt"], now.timestamp() - 3600);
            assert_eq!(payload["eventTrigger"], "TEST");
            assert_eq!(payload["version"], "1.2.3");
            assert_eq!(payload["tags"], json!(["addedTag", "marketing"]));
            assert_eq!(payload["deletedTags"], json!(["deletedTag"]));
            assert_eq!(payload["status"], "Staging");
            assert_eq!(payload["oldStatus"], "Development");
            assert_eq!(
                payload["sourceExperimentKey"],
                "711e50b9e477498b91d32c024ffc802e"
            );
            assert_eq!(keys(&payload), ORDER);
        }
    }
}
