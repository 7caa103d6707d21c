//! Executions family: Valohai outgoing webhook notifications.

use serde_json::{Map, Value, json};

use super::describe::{is_web_url, markdown_spans, push_field, text_of};
use super::{
    Description, EventType, Family, Object, ObjectRef, PrepareContext, Rules, Span, Spec, Tone,
    fill_absent, no_check, no_refresh, object_schema, str_field,
};

/// What finished, in Valohai's order.
const KINDS: [&str; 4] = ["execution", "task", "pipeline", "deployment"];
const OUTCOMES: [&str; 2] = ["completed", "failed"];

/// Field order of Valohai's payload.
const ORDER: [&str; 6] = ["project", "title", "type", "body", "url", "data"];

/// The sample project the examples are about (from Valohai's document).
const PROJECT_ID: &str = "016f3203-4a8c-969e-078c-52ab66947746";
const PROJECT_NAME: &str = "demo/cool-tensorflow";

pub(super) fn specs() -> Vec<Spec> {
    let rules = Rules {
        fill,
        check: no_check,
        object,
        refresh: no_refresh,
        describe,
    };
    KINDS
        .iter()
        .flat_map(|kind| OUTCOMES.map(|outcome| format!("{kind}_{outcome}")))
        .map(|name| Spec {
            event_type: event_type(&name),
            rules,
        })
        .collect()
}

/// Event names are `<kind>_<outcome>`.
fn parse(name: &str) -> (&str, &str) {
    name.split_once('_').expect("a Valohai event name")
}

fn event_type(name: &str) -> EventType {
    let (kind, outcome) = parse(name);
    let example = if name == "execution_completed" {
        document_example()
    } else {
        sample(name, "")
    };
    EventType {
        name: name.to_owned(),
        family: Family::Executions,
        description: format!("A Valohai {kind} {outcome} (Valohai)."),
        schema: schema(name),
        example,
        test_payload: sample(name, "Test: "),
    }
}

fn fill(name: &str, fields: &mut Object, _: &PrepareContext<'_>) {
    fill_absent(fields, &ORDER, "type", Value::from(name));
    // A present title is the sender's wording, so it is only ever added, never checked.
    if !fields.contains_key("title")
        && let Some(title) = title(name, fields)
    {
        fill_absent(fields, &ORDER, "title", Value::from(title));
    }
}

/// Valohai's title, e.g. "Execution finished: demo/cool-tensorflow/#736 (completed)".
/// The subject falls back to the project name, then the project, as data allows.
fn title(name: &str, fields: &Object) -> Option<String> {
    let (kind, outcome) = parse(name);
    let data = fields.get("data").and_then(Value::as_object);
    let project_name = data.and_then(|d| str_field(d, "valohai.project-name"));
    let counter = data
        .and_then(|d| d.get(&format!("valohai.{kind}-counter")))
        .and_then(counter);
    let subject = match (project_name, counter) {
        (Some(project), Some(counter)) => format!("{project}/#{counter}"),
        (Some(project), None) => project.to_owned(),
        (None, _) => str_field(fields, "project")?.to_owned(),
    };
    Some(format!(
        "{} finished: {subject} ({outcome})",
        capitalized(kind)
    ))
}

/// Valohai sends counters as numbers; a string one is taken as is.
fn counter(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Valohai's own title and body (its markdown links kept as links).
pub(super) fn describe(name: &str, fields: &Object, _project: &str) -> Option<Description> {
    let (kind, outcome) = name.split_once('_')?;
    let title = text_of(fields, "title")
        .or_else(|| self::title(name, fields))
        .unwrap_or_else(|| format!("{} {outcome}", capitalized(kind)));
    let summary = match text_of(fields, "body") {
        Some(body) if !body.trim().is_empty() => markdown_spans(&body),
        _ => vec![Span::text(format!("{title}."))],
    };
    let data = fields.get("data").and_then(Value::as_object);
    let from_data = |key: &str| data.and_then(|d| text_of(d, key));
    let link = text_of(fields, "url")
        .filter(|u| is_web_url(u))
        .or_else(|| {
            summary.iter().find_map(|s| match s {
                Span::Link { url, .. } => Some(url.clone()),
                Span::Text { .. } => None,
            })
        });
    let mut out = Vec::new();
    push_field(
        &mut out,
        "Project",
        from_data("valohai.project-name").or_else(|| text_of(fields, "project")),
    );
    push_field(
        &mut out,
        "Status",
        from_data(&format!("valohai.{kind}-status")),
    );
    push_field(&mut out, "Step", from_data(&format!("valohai.{kind}-step")));
    let duration = data
        .and_then(|d| d.get(&format!("valohai.{kind}-duration")))
        .and_then(Value::as_f64)
        .map(duration_text);
    push_field(&mut out, "Duration", duration);
    push_field(&mut out, "Started by", from_data("valohai.creator-name"));
    let tone = if outcome == "failed" {
        Tone::Bad
    } else {
        Tone::Good
    };
    Some(Description {
        title,
        summary,
        fields: out,
        link,
        tone,
    })
}

/// 660.02 s → "11 min 0 s".
fn duration_text(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn object(_: &str, fields: &Object) -> Option<ObjectRef> {
    let project = str_field(fields, "project")?;
    Some(ObjectRef {
        object_type: "project".to_owned(),
        name: Some(project.to_owned()),
        version: None,
    })
}

fn schema(name: &str) -> Value {
    let properties = json!({
        "project": {"type": "string", "description": "The Valohai project id."},
        "title": {"type": "string", "description": "Filled in by mlhook when absent."},
        "type": {"const": name, "description": "Filled in by mlhook when absent."},
        "body": {"type": "string", "description": "Message text, often with markdown links."},
        "url": {"type": "string", "description": "Relative URL of the resource in Valohai."},
        "data": {"type": "object", "description": "Structured metadata, keys like valohai.project-name."}
    });
    let description = format!("Valohai {name} notification body.");
    object_schema(name, &description, properties, &["project", "data"])
}

/// Verbatim from Valohai's document.
fn document_example() -> Value {
    json!({
        "project": "016f3203-4a8c-969e-078c-52ab66947746",
        "title": "Execution finished: demo/cool-tensorflow/#736 (completed)",
        "type": "execution_completed",
        "body": "Execution [demo/cool-tensorflow/#736](https://app.demo.com/p/valohai/cool-tensorflow/execution/0178f482-8686-fb28-8af1-3d36af38079d/) (by demouser)\nfinished with duration 11:01.",
        "url": "/p/demo/cool-tensorflow/execution/0178f482-8686-fb28-8af1-3d36af38079d/",
        "data": {
            "valohai.execution-counter": 736,
            "valohai.execution-ctime": "2021-04-21T12:58:18.119973+00:00",
            "valohai.execution-duration": 660.0186445713043,
            "valohai.execution-id": "0178f482-8686-fb28-8af1-3d36af38079d",
            "valohai.execution-qtime": "2021-04-21T12:58:18.201116+00:00",
            "valohai.execution-status": "complete",
            "valohai.execution-step": "Train model (MNIST)",
            "valohai.execution-title": null,
            "valohai.project-id": "016f3203-4a8c-969e-078c-52ab66947746",
            "valohai.project-name": "demo/cool-tensorflow",
            "valohai.creator-id": 3323,
            "valohai.creator-name": "demouser",
            "valohai.commit-identifier": "4d34124453b680daa0ecb881bcf1bd735a3bf99d"
        }
    })
}

/// A complete payload in the document's style; a non-empty `prefix` marks a test,
/// both in the title and with `"mlhook.test": true` in data.
fn sample(name: &str, prefix: &str) -> Value {
    let (kind, outcome) = parse(name);
    let id = "0190a6e2-5b1c-7d3e-8f40-9a1b2c3d4e5f";
    let data = sample_data(kind, outcome, id, !prefix.is_empty());
    let mut fields = Map::new();
    fields.insert("project".to_owned(), Value::from(PROJECT_ID));
    fields.insert("data".to_owned(), Value::Object(data));
    let title = title(name, &fields).expect("sample has a project");
    let label = capitalized(kind);
    json!({
        "project": PROJECT_ID,
        "title": format!("{prefix}{title}"),
        "type": name,
        "body": format!("{label} [{PROJECT_NAME}](https://app.valohai.com/p/{PROJECT_NAME}/{kind}/{id}/) (by demouser)\n{outcome}."),
        "url": format!("/p/{PROJECT_NAME}/{kind}/{id}/"),
        "data": fields["data"],
    })
}

fn sample_data(kind: &str, outcome: &str, id: &str, test: bool) -> Map<String, Value> {
    let mut data = Map::new();
    let mut put = |key: String, value: Value| data.insert(key, value);
    // Deployments have no counter in Valohai; their title falls back to the project name.
    if kind != "deployment" {
        put(format!("valohai.{kind}-counter"), json!(737));
    }
    put(format!("valohai.{kind}-id"), json!(id));
    let status = if outcome == "completed" {
        "complete"
    } else {
        "error"
    };
    put(format!("valohai.{kind}-status"), json!(status));
    put("valohai.project-id".to_owned(), json!(PROJECT_ID));
    put("valohai.project-name".to_owned(), json!(PROJECT_NAME));
    put("valohai.creator-id".to_owned(), json!(3323));
    put("valohai.creator-name".to_owned(), json!("demouser"));
    if test {
        put("mlhook.test".to_owned(), json!(true));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CTX, keys, v, violations};
    use super::super::{Catalog, ObjectRef};
    use super::*;

    const DOCUMENT: &str = r#"{
"project": "016f3203-4a8c-969e-078c-52ab66947746",
"title": "Execution finished: demo/cool-tensorflow/#736 (completed)",
"type": "execution_completed",
"body": "Execution [demo/cool-tensorflow/#736](https://app.demo.com/p/valohai/cool-tensorflow/execution/0178f482-8686-fb28-8af1-3d36af38079d/) (by demouser)\nfinished with duration 11:01.",
"url": "/p/demo/cool-tensorflow/execution/0178f482-8686-fb28-8af1-3d36af38079d/",
"data": {
"valohai.execution-counter": 736,
"valohai.execution-ctime": "2021-04-21T12:58:18.119973+00:00",
"valohai.execution-duration": 660.0186445713043,
"valohai.execution-id": "0178f482-8686-fb28-8af1-3d36af38079d",
"valohai.execution-qtime": "2021-04-21T12:58:18.201116+00:00",
"valohai.execution-status": "complete",
"valohai.execution-step": "Train model (MNIST)",
"valohai.execution-title": null,
"valohai.project-id": "016f3203-4a8c-969e-078c-52ab66947746",
"valohai.project-name": "demo/cool-tensorflow",
"valohai.creator-id": 3323,
"valohai.creator-name": "demouser",
"valohai.commit-identifier": "4d34124453b680daa0ecb881bcf1bd735a3bf99d"
}
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
        let prepared = Catalog::builtin()
            .prepare("execution_completed", document(), &CTX)
            .unwrap();
        let sent: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(
            serde_json::to_string(&prepared.payload).unwrap(),
            serde_json::to_string(&sent).unwrap()
        );
        assert_eq!(sent, document_example());
    }

    #[test]
    fn document_title_is_derived_exactly() {
        let payload = without(without(document(), "title"), "type");
        let prepared = Catalog::builtin()
            .prepare("execution_completed", payload, &CTX)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&prepared.payload).unwrap(),
            serde_json::to_string(&document()).unwrap()
        );
    }

    #[test]
    fn title_falls_back_to_project_name_then_project() {
        let catalog = Catalog::builtin();
        let payload = json!({"project": "p-1", "data": {"valohai.project-name": "team/proj"}});
        let prepared = catalog.prepare("task_failed", payload, &CTX).unwrap();
        assert_eq!(
            prepared.payload["title"],
            "Task finished: team/proj (failed)"
        );
        assert_eq!(
            keys(&prepared.payload),
            ["project", "title", "type", "data"]
        );
        let payload = json!({"project": "p-1", "data": {"valohai.pipeline-counter": "12"}});
        let prepared = catalog
            .prepare("pipeline_completed", payload, &CTX)
            .unwrap();
        assert_eq!(
            prepared.payload["title"],
            "Pipeline finished: p-1 (completed)"
        );
    }

    #[test]
    fn counter_of_another_kind_is_ignored() {
        let payload = without(document(), "title");
        let prepared = Catalog::builtin()
            .prepare("deployment_failed", without(payload, "type"), &CTX)
            .unwrap();
        assert_eq!(
            prepared.payload["title"],
            "Deployment finished: demo/cool-tensorflow (failed)"
        );
    }

    #[test]
    fn present_title_is_kept() {
        let mut payload = document();
        payload["title"] = json!("whatever");
        let prepared = Catalog::builtin()
            .prepare("execution_completed", payload, &CTX)
            .unwrap();
        assert_eq!(prepared.payload["title"], "whatever");
    }

    #[test]
    fn wrong_type_is_rejected() {
        assert_eq!(
            violations(&Catalog::builtin(), "execution_failed", document()),
            [v("/payload/type", r#"must be "execution_failed""#)]
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let payload = json!({"title": 1, "body": false, "data": []});
        let got = violations(&Catalog::builtin(), "execution_failed", payload);
        let expected = [
            v("/payload", r#"missing required field "project""#),
            v("/payload/title", "expected string"),
            v("/payload/body", "expected string"),
            v("/payload/data", "expected object"),
        ];
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for e in expected {
            assert!(got.contains(&e), "{e:?} not in {got:?}");
        }
    }

    #[test]
    fn object_is_the_project() {
        let prepared = Catalog::builtin()
            .prepare("execution_completed", document(), &CTX)
            .unwrap();
        let expected = ObjectRef {
            object_type: "project".into(),
            name: Some("016f3203-4a8c-969e-078c-52ab66947746".into()),
            version: None,
        };
        assert_eq!(prepared.object, Some(expected));
    }

    #[test]
    fn test_payloads_are_marked() {
        let catalog = Catalog::builtin();
        for t in catalog.list().filter(|t| t.family == Family::Executions) {
            let payload = catalog.test_payload(&t.name, chrono::Utc::now()).unwrap();
            assert!(
                payload["title"].as_str().unwrap().starts_with("Test: "),
                "{}",
                t.name
            );
            assert_eq!(payload["data"]["mlhook.test"], true);
            assert_eq!(payload["type"], t.name.as_str());
        }
    }
}
