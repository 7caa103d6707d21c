//! Requests family: UbiOps deployment and pipeline request webhooks.

use serde_json::{Map, Value, json};

use super::describe::{push_field, text_of};
use super::{
    Description, EventType, Family, Object, ObjectRef, PrepareContext, Rules, Span, Spec, Tone,
    fill_absent, no_check, no_refresh, object_schema, str_field,
};

/// The four request events UbiOps documents, in its order.
const PHASES: [&str; 4] = ["started", "finished", "completed", "failed"];

/// Field order of UbiOps' payload, per object kind.
const DEPLOYMENT_ORDER: [&str; 9] = [
    "event",
    "deployment_id",
    "deployment_name",
    "deployment_version_id",
    "deployment_version_name",
    "request_id",
    "status",
    "result",
    "text",
];
const PIPELINE_ORDER: [&str; 9] = [
    "event",
    "pipeline_id",
    "pipeline_name",
    "pipeline_version_id",
    "pipeline_version_name",
    "request_id",
    "status",
    "result",
    "text",
];

/// The object a UbiOps webhook is tied to.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Deployment,
    Pipeline,
}

impl Kind {
    /// Event names are `<kind>_request_<phase>`.
    fn of(event: &str) -> (Kind, &str) {
        let (kind, phase) = event.split_once("_request_").expect("a UbiOps event name");
        let kind = if kind == "pipeline" {
            Kind::Pipeline
        } else {
            Kind::Deployment
        };
        (kind, phase)
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::Pipeline => "pipeline",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::Pipeline => "Pipeline",
        }
    }

    fn order(self) -> &'static [&'static str; 9] {
        match self {
            Kind::Deployment => &DEPLOYMENT_ORDER,
            Kind::Pipeline => &PIPELINE_ORDER,
        }
    }

    /// `<kind>_id`, `<kind>_name`, `<kind>_version_id`, `<kind>_version_name`.
    fn identity_fields(self) -> &'static [&'static str] {
        &self.order()[1..5]
    }
}

pub(super) fn specs() -> Vec<Spec> {
    let rules = Rules {
        fill,
        check: no_check,
        object,
        refresh: no_refresh,
        describe,
    };
    [Kind::Deployment, Kind::Pipeline]
        .into_iter()
        .flat_map(|kind| PHASES.map(|phase| format!("{}_request_{phase}", kind.key())))
        .map(|name| Spec {
            event_type: event_type(&name),
            rules,
        })
        .collect()
}

fn event_type(name: &str) -> EventType {
    let (kind, phase) = Kind::of(name);
    let description = format!(
        "A request to a UbiOps {} {} (UbiOps).",
        kind.key(),
        match phase {
            "started" => "started processing",
            "finished" => "finished, successfully or not",
            "completed" => "completed successfully",
            _ => "failed",
        }
    );
    EventType {
        name: name.to_owned(),
        family: Family::Requests,
        description,
        schema: schema(name),
        example: sample(name, &EXAMPLE_IDS[kind as usize], ""),
        test_payload: sample(name, &TEST_IDS[kind as usize], "Test: "),
    }
}

fn fill(name: &str, fields: &mut Object, ctx: &PrepareContext<'_>) {
    let order = Kind::of(name).0.order();
    fill_absent(fields, order, "event", Value::from(name));
    // A present text is the vendor's own wording (it may name the vendor's project), so
    // it is only ever added, never checked.
    if !fields.contains_key("text")
        && let Some(text) = text(name, fields, ctx.project_id)
    {
        fill_absent(fields, order, "text", Value::from(text));
    }
}

/// UbiOps' sentence, e.g. "Deployment request <id> finished for deployment <name>
/// <version> in project <project>"; `None` when a field it needs is missing.
fn text(name: &str, fields: &Object, project: &str) -> Option<String> {
    let (kind, phase) = Kind::of(name);
    let [_, object_name, _, version_name] = kind.identity_fields() else {
        unreachable!()
    };
    // UbiOps' own example says "finished" for a completed request.
    let verb = if phase == "completed" {
        "finished"
    } else {
        phase
    };
    Some(format!(
        "{} request {} {verb} for {} {} {} in project {project}",
        kind.label(),
        str_field(fields, "request_id")?,
        kind.key(),
        str_field(fields, object_name)?,
        str_field(fields, version_name)?,
    ))
}

/// "Deployment request abc failed for deployment scorer v2 in project fraud-team";
/// the summary is UbiOps' own `text` when the payload has one.
pub(super) fn describe(name: &str, fields: &Object, project: &str) -> Option<Description> {
    if !name.contains("_request_") {
        return None;
    }
    let (kind, phase) = Kind::of(name);
    let [_, object_name, _, version_name] = kind.identity_fields() else {
        unreachable!()
    };
    let unknown = || "?".to_owned();
    let object = text_of(fields, object_name).unwrap_or_else(unknown);
    let version = text_of(fields, version_name).unwrap_or_else(unknown);
    let request = text_of(fields, "request_id").unwrap_or_else(unknown);
    let status = text_of(fields, "status");
    let title = format!(
        "{} request {request} {phase} for {} {object} {version} in project {project}",
        kind.label(),
        kind.key()
    );
    let summary = text_of(fields, "text").unwrap_or_else(|| format!("{title}."));
    let tone = match (phase, status.as_deref()) {
        ("failed", _) | (_, Some("failed")) => Tone::Bad,
        ("completed", _) | ("finished", Some("completed")) => Tone::Good,
        _ => Tone::Neutral,
    };
    let mut out = Vec::new();
    push_field(&mut out, kind.label(), Some(object));
    push_field(&mut out, "Version", Some(version));
    push_field(&mut out, "Request", Some(request));
    push_field(&mut out, "Status", status);
    push_field(&mut out, "Project", Some(project.to_owned()));
    Some(Description {
        title,
        summary: vec![Span::text(summary)],
        fields: out,
        link: None,
        tone,
    })
}

fn object(name: &str, fields: &Object) -> Option<ObjectRef> {
    let kind = Kind::of(name).0;
    let [_, object_name, _, version_name] = kind.identity_fields() else {
        unreachable!()
    };
    Some(ObjectRef {
        object_type: kind.key().to_owned(),
        name: Some(str_field(fields, object_name)?.to_owned()),
        version: Some(str_field(fields, version_name)?.to_owned()),
    })
}

fn schema(name: &str) -> Value {
    let kind = Kind::of(name).0;
    let mut properties = Map::new();
    properties.insert(
        "event".to_owned(),
        json!({"const": name, "description": "Filled in by mlhook when absent."}),
    );
    for field in kind
        .identity_fields()
        .iter()
        .chain(&["request_id", "status"])
    {
        properties.insert((*field).to_owned(), json!({"type": "string"}));
    }
    properties.insert(
        "result".to_owned(),
        json!({"description": "The request's result, any JSON; only sent when small (UbiOps: <= 16 kB)."}),
    );
    properties.insert(
        "text".to_owned(),
        json!({"type": "string", "description": "Filled in by mlhook when absent."}),
    );
    let mut required: Vec<&str> = kind.identity_fields().to_vec();
    required.extend(["request_id", "status"]);
    let description = format!("UbiOps {name} webhook body.");
    object_schema(name, &description, Value::Object(properties), &required)
}

/// Identity values for an example: object id, name, version id, version name,
/// request id, and the project the sentence names.
type Ids = [&'static str; 6];

const EXAMPLE_IDS: [Ids; 2] = [
    [
        "3f6c1a52-8d2e-4b7a-9c41-5e0d7b2a9f13",
        "churn-model",
        "b1d7e9c4-2a65-4f38-8e17-6c9a0d3b5e21",
        "v1",
        "7e2b4c91-5f3a-4d86-a0c7-19e8d6f2b435",
        "acme-production",
    ],
    [
        "9a4e2f10-6b3c-4d58-8f27-0c1e5d7a9b36",
        "scoring-pipeline",
        "5c8d1e6f-3a97-4b20-9e54-2f7a0b6c8d13",
        "v2",
        "e4f19a27-8c5d-4b63-a0e2-6d3b7f915c48",
        "acme-production",
    ],
];

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";
const TEST_IDS: [Ids; 2] = [
    [
        NIL_UUID,
        "mlhook-test-deployment",
        NIL_UUID,
        "v1",
        NIL_UUID,
        "mlhook-test-project",
    ],
    [
        NIL_UUID,
        "mlhook-test-pipeline",
        NIL_UUID,
        "v1",
        NIL_UUID,
        "mlhook-test-project",
    ],
];

/// A complete payload as UbiOps would send it, with `prefix` before the text.
fn sample(name: &str, ids: &Ids, prefix: &str) -> Value {
    let (kind, phase) = Kind::of(name);
    let mut fields = Map::new();
    fields.insert("event".to_owned(), Value::from(name));
    let keys = kind.identity_fields().iter().chain(&["request_id"]);
    for (key, value) in keys.zip(ids) {
        fields.insert((*key).to_owned(), Value::from(*value));
    }
    // "started" means the request moved to status processing; "finished" covers
    // success, shown here as such.
    let status = match phase {
        "started" => "processing",
        "failed" => "failed",
        _ => "completed",
    };
    fields.insert("status".to_owned(), Value::from(status));
    if status == "completed" {
        fields.insert(
            "result".to_owned(),
            json!({"prediction": "churn", "probability": 0.87}),
        );
    }
    let text = text(name, &fields, ids[5]).expect("sample has every field");
    fields.insert("text".to_owned(), Value::from(format!("{prefix}{text}")));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CTX, keys, v, violations};
    use super::super::{Catalog, PrepareContext};
    use super::*;

    /// UbiOps' documented example, with the braces it omits and its comment removed.
    const DOCUMENT: &str = r#"{
        "event": "deployment_request_completed",
        "deployment_id": "<uuid>",
        "deployment_name": "<uuid>",
        "deployment_version_id": "<uuid>",
        "deployment_version_name": "<uuid>",
        "request_id": "<uuid>",
        "status": "completed",
        "result": "...",
        "text": "Deployment request <uuid> finished for deployment <name> <version> in project <project-name>"
    }"#;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    fn without(mut payload: Value, key: &str) -> Value {
        payload.as_object_mut().unwrap().shift_remove(key);
        payload
    }

    #[test]
    fn document_example_is_accepted_byte_identical() {
        let original = document();
        let prepared = Catalog::builtin()
            .prepare("deployment_request_completed", original.clone(), &CTX)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&prepared.payload).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }

    #[test]
    fn event_and_text_are_filled_in_place() {
        let payload = without(without(document(), "event"), "text");
        let ctx = PrepareContext { project_id: "acme" };
        let prepared = Catalog::builtin()
            .prepare("deployment_request_completed", payload, &ctx)
            .unwrap();
        assert_eq!(keys(&prepared.payload), keys(&document()));
        assert_eq!(prepared.payload["event"], "deployment_request_completed");
        assert_eq!(
            prepared.payload["text"],
            "Deployment request <uuid> finished for deployment <uuid> <uuid> in project acme"
        );
    }

    #[test]
    fn text_follows_status_when_result_is_absent() {
        let payload = json!({
            "pipeline_id": "p1", "pipeline_name": "scoring", "pipeline_version_id": "pv1",
            "pipeline_version_name": "v3", "request_id": "r9", "status": "failed", "extra": 1
        });
        let prepared = Catalog::builtin()
            .prepare("pipeline_request_failed", payload, &CTX)
            .unwrap();
        assert_eq!(
            keys(&prepared.payload),
            [
                "event",
                "pipeline_id",
                "pipeline_name",
                "pipeline_version_id",
                "pipeline_version_name",
                "request_id",
                "status",
                "text",
                "extra"
            ]
        );
        assert_eq!(
            prepared.payload["text"],
            "Pipeline request r9 failed for pipeline scoring v3 in project acme"
        );
    }

    #[test]
    fn text_verb_per_event() {
        let catalog = Catalog::builtin();
        for (phase, verb) in [
            ("started", "started"),
            ("finished", "finished"),
            ("completed", "finished"),
            ("failed", "failed"),
        ] {
            let name = format!("deployment_request_{phase}");
            let payload = without(without(document(), "event"), "text");
            let prepared = catalog.prepare(&name, payload, &CTX).unwrap();
            let text = prepared.payload["text"].as_str().unwrap().to_owned();
            assert!(
                text.starts_with(&format!("Deployment request <uuid> {verb} for")),
                "{text}"
            );
        }
    }

    #[test]
    fn present_text_is_kept_as_sent() {
        let mut payload = without(document(), "event");
        payload["text"] = json!("anything the vendor wrote");
        let prepared = Catalog::builtin()
            .prepare("deployment_request_completed", payload, &CTX)
            .unwrap();
        assert_eq!(prepared.payload["text"], "anything the vendor wrote");
    }

    #[test]
    fn wrong_event_is_rejected() {
        let catalog = Catalog::builtin();
        assert_eq!(
            violations(&catalog, "deployment_request_failed", document()),
            [v(
                "/payload/event",
                r#"must be "deployment_request_failed""#
            )]
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let payload = json!({"deployment_id": 1, "deployment_name": "m", "status": ["x"]});
        let got = violations(&Catalog::builtin(), "deployment_request_started", payload);
        let expected = [
            v("/payload/deployment_id", "expected string"),
            v("/payload/status", "expected string"),
            v(
                "/payload",
                r#"missing required field "deployment_version_id""#,
            ),
            v(
                "/payload",
                r#"missing required field "deployment_version_name""#,
            ),
            v("/payload", r#"missing required field "request_id""#),
        ];
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for e in expected {
            assert!(got.contains(&e), "{e:?} not in {got:?}");
        }
    }

    #[test]
    fn result_may_be_any_json() {
        let catalog = Catalog::builtin();
        for result in [json!(null), json!(1), json!({"a": [1]}), json!("x")] {
            let mut payload = document();
            payload["result"] = result;
            assert!(
                catalog
                    .prepare("deployment_request_completed", payload, &CTX)
                    .is_ok()
            );
        }
    }

    #[test]
    fn pipeline_fields_are_required_for_pipelines() {
        let mut got = violations(&Catalog::builtin(), "pipeline_request_started", document());
        got.sort_by(|a, b| a.message.cmp(&b.message));
        assert_eq!(
            got,
            [
                v("/payload", r#"missing required field "pipeline_id""#),
                v("/payload", r#"missing required field "pipeline_name""#),
                v(
                    "/payload",
                    r#"missing required field "pipeline_version_id""#
                ),
                v(
                    "/payload",
                    r#"missing required field "pipeline_version_name""#
                ),
                v("/payload/event", r#"must be "pipeline_request_started""#),
            ]
        );
    }

    #[test]
    fn object_is_the_deployment_or_pipeline_version() {
        let catalog = Catalog::builtin();
        let prepared = catalog
            .prepare("deployment_request_completed", document(), &CTX)
            .unwrap();
        let expected = ObjectRef {
            object_type: "deployment".into(),
            name: Some("<uuid>".into()),
            version: Some("<uuid>".into()),
        };
        assert_eq!(prepared.object, Some(expected));
        let example = catalog
            .get("pipeline_request_finished")
            .unwrap()
            .example
            .clone();
        let prepared = catalog
            .prepare("pipeline_request_finished", example, &CTX)
            .unwrap();
        let expected = ObjectRef {
            object_type: "pipeline".into(),
            name: Some("scoring-pipeline".into()),
            version: Some("v2".into()),
        };
        assert_eq!(prepared.object, Some(expected));
    }

    #[test]
    fn test_payload_text_is_marked() {
        let catalog = Catalog::builtin();
        for t in catalog.list().filter(|t| t.family == Family::Requests) {
            let payload = catalog.test_payload(&t.name, chrono::Utc::now()).unwrap();
            assert!(
                payload["text"].as_str().unwrap().starts_with("Test: "),
                "{}",
                t.name
            );
            assert_eq!(payload["event"], t.name.as_str());
        }
    }
}
