//! Monitoring family: NannyML Cloud's `RUN_COMPLETED` notification.

use serde_json::{Value, json};

use super::describe::{is_web_url, join_capped, list_of, push_field, text_of};
use super::{
    Description, EventType, Family, Object, ObjectRef, PrepareContext, Rules, Span, Spec, Tone,
    fill_absent, no_check, no_refresh, object_schema, str_field,
};

const RUN_COMPLETED: &str = "RUN_COMPLETED";

/// The header's field order in NannyML's document, where a filled-in
/// `notification_type` belongs.
const HEADER_ORDER: [&str; 3] = ["model_name", "model_id", "notification_type"];

pub(super) fn specs() -> Vec<Spec> {
    let event_type = EventType {
        name: RUN_COMPLETED.to_owned(),
        family: Family::Monitoring,
        description: "A monitoring run of a model completed, successfully or not, with the \
                      alerts it raised (NannyML Cloud)."
            .to_owned(),
        schema: schema(),
        example: document_example(),
        test_payload: test_payload(),
    };
    let rules = Rules {
        fill,
        check: no_check,
        object,
        refresh: no_refresh,
        describe,
    };
    vec![Spec { event_type, rules }]
}

/// The discriminator sits in the header; with no header object there is nothing to
/// fill, and the schema reports the header instead.
fn fill(name: &str, fields: &mut Object, _: &PrepareContext<'_>) {
    if let Some(Value::Object(header)) = fields.get_mut("header") {
        fill_absent(
            header,
            &HEADER_ORDER,
            "notification_type",
            Value::from(name),
        );
    }
}

/// "Monitoring run of model churn raised 2 alerts", with the alerts named.
pub(super) fn describe(_: &str, fields: &Object, _project: &str) -> Option<Description> {
    let header = fields.get("header").and_then(Value::as_object);
    let body = fields.get("payload").and_then(Value::as_object);
    let model = header
        .and_then(|h| text_of(h, "model_name"))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let alerts = body.map(alerts_of).unwrap_or_default();
    let passed = body.and_then(|b| b.get("success"));
    let started = body
        .and_then(|b| b.get("run"))
        .and_then(Value::as_object)
        .and_then(|r| text_of(r, "started_at"));
    let names: Vec<&str> = alerts.iter().map(String::as_str).collect();
    let (title, summary, tone) = match alerts.len() {
        0 => (
            format!("Monitoring run of model {model}: no alerts"),
            format!("The monitoring run of model {model} completed without alerts."),
            Tone::Good,
        ),
        n => {
            let plural = if n == 1 { "alert" } else { "alerts" };
            let named = join_capped(&names, 10).unwrap_or_default();
            (
                format!("Monitoring run of model {model} raised {n} {plural}"),
                format!("The monitoring run of model {model} raised {n} {plural}: {named}."),
                Tone::Bad,
            )
        }
    };
    let mut out = Vec::new();
    let id = header.and_then(|h| text_of(h, "model_id"));
    push_field(
        &mut out,
        "Model",
        Some(match id {
            Some(id) => format!("{model} (id {id})"),
            None => model.clone(),
        }),
    );
    push_field(&mut out, "Run started", started);
    push_field(&mut out, "Alerts", join_capped(&names, 25));
    push_field(&mut out, "Passed checks", list_of(passed, 25));
    Some(Description {
        title,
        summary: vec![Span::text(summary)],
        fields: out,
        link: body
            .and_then(|b| text_of(b, "report_link"))
            .filter(|l| is_web_url(l)),
        tone,
    })
}

/// "metric (method)" for every alert, performance alerts first.
fn alerts_of(body: &Object) -> Vec<String> {
    let mut alerts = Vec::new();
    for group in ["performance_alerts", "other_alerts"] {
        let Some(by_kind) = body.get(group).and_then(Value::as_object) else {
            continue;
        };
        for (kind, list) in by_kind {
            for alert in list.as_array().into_iter().flatten() {
                if let Some(metric) = alert.get("metric_name").and_then(Value::as_str) {
                    alerts.push(format!("{metric} ({kind})"));
                }
            }
        }
    }
    alerts
}

fn object(_: &str, fields: &Object) -> Option<ObjectRef> {
    let model = str_field(fields.get("header")?.as_object()?, "model_name")?;
    Some(ObjectRef {
        object_type: "model".to_owned(),
        name: Some(model.to_owned()),
        version: None,
    })
}

fn schema() -> Value {
    let properties = json!({
        "header": {
            "type": "object",
            "description": "Which model the notification is about.",
            "properties": {
                "model_name": {"type": "string"},
                "model_id": {"type": ["integer", "string"]},
                "notification_type": {
                    "const": RUN_COMPLETED,
                    "description": "Filled in by mlhook when absent."
                }
            },
            "required": ["model_name", "model_id"]
        },
        "payload": {
            "type": "object",
            "properties": {
                "run": {
                    "type": "object",
                    "properties": {"started_at": {"type": "string"}}
                },
                "performance_alerts": alerts("Performance alerts by estimation method."),
                "other_alerts": alerts("Other alerts by kind, e.g. univariate_drift."),
                "success": {
                    "type": "array",
                    "description": "Checks that passed.",
                    "items": {"type": "string"}
                },
                "report_link": {"type": "string"}
            },
            "required": ["run", "report_link"]
        }
    });
    let description = "NannyML Cloud RUN_COMPLETED webhook body.";
    object_schema(
        RUN_COMPLETED,
        description,
        properties,
        &["header", "payload"],
    )
}

/// An object whose values are lists of `{"metric_name": ...}` alerts.
fn alerts(description: &str) -> Value {
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"metric_name": {"type": "string"}},
                "required": ["metric_name"]
            }
        }
    })
}

/// Verbatim from NannyML's webhook document.
fn document_example() -> Value {
    json!({
        "header": {
            "model_name": "test",
            "model_id": 28740,
            "notification_type": "RUN_COMPLETED"
        },
        "payload": {
            "run": {
                "started_at": "2024-01-25T14:04:10.157236"
            },
            "performance_alerts": {
                "cbpe": [
                    {
                        "metric_name": "specificity"
                    }
                ]
            },
            "other_alerts": {
                "univariate_drift": [
                    {
                        "metric_name": "country"
                    }
                ]
            },
            "success": [
                "unseen_values",
                "missing_values"
            ],
            "report_link": "https://test.app.nannyml.com/model/1"
        }
    })
}

/// The document's example, recognisably about a test model.
fn test_payload() -> Value {
    let mut payload = document_example();
    payload["header"]["model_name"] = json!("mlhook-test-model");
    payload["header"]["model_id"] = json!(0);
    payload
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CTX, v, violations};
    use super::super::{Catalog, ObjectRef};
    use super::*;

    const DOCUMENT: &str = r#"{
        "header": {"model_name": "test", "model_id": 28740, "notification_type": "RUN_COMPLETED"},
        "payload": {
            "run": {"started_at": "2024-01-25T14:04:10.157236"},
            "performance_alerts": {"cbpe": [{"metric_name": "specificity"}]},
            "other_alerts": {"univariate_drift": [{"metric_name": "country"}]},
            "success": ["unseen_values", "missing_values"],
            "report_link": "https://test.app.nannyml.com/model/1"
        }
    }"#;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    #[test]
    fn document_example_is_accepted_byte_identical() {
        let original = document();
        let prepared = Catalog::builtin()
            .prepare(RUN_COMPLETED, original.clone(), &CTX)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&prepared.payload).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
        assert_eq!(original, document_example());
    }

    #[test]
    fn notification_type_is_filled_after_model_id() {
        let mut payload = document();
        payload["header"]
            .as_object_mut()
            .unwrap()
            .shift_remove("notification_type");
        // A client extra after model_id stays after the filled-in field.
        payload["header"]["team"] = json!("risk");
        let prepared = Catalog::builtin()
            .prepare(RUN_COMPLETED, payload, &CTX)
            .unwrap();
        let header = prepared.payload["header"].as_object().unwrap();
        let keys: Vec<&str> = header.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["model_name", "model_id", "notification_type", "team"]
        );
        assert_eq!(header["notification_type"], RUN_COMPLETED);
    }

    #[test]
    fn wrong_notification_type_is_rejected() {
        let mut payload = document();
        payload["header"]["notification_type"] = json!("RUN_FAILED");
        assert_eq!(
            violations(&Catalog::builtin(), RUN_COMPLETED, payload),
            [v(
                "/payload/header/notification_type",
                r#"must be "RUN_COMPLETED""#
            )]
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let payload = json!({
            "header": {"model_name": 7},
            "payload": {
                "run": {},
                "performance_alerts": {"cbpe": [{"metric": "x"}]},
                "other_alerts": {"drift": "country"},
                "success": ["ok", 1]
            }
        });
        let mut got = violations(&Catalog::builtin(), RUN_COMPLETED, payload);
        got.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        assert_eq!(
            got,
            [
                v("/payload/header", r#"missing required field "model_id""#),
                v("/payload/header/model_name", "expected string"),
                v(
                    "/payload/payload",
                    r#"missing required field "report_link""#
                ),
                v("/payload/payload/other_alerts/drift", "expected array"),
                v(
                    "/payload/payload/performance_alerts/cbpe/0",
                    r#"missing required field "metric_name""#
                ),
                v("/payload/payload/success/1", "expected string"),
            ]
        );
    }

    #[test]
    fn model_id_may_be_a_string() {
        let mut payload = document();
        payload["header"]["model_id"] = json!("28740");
        assert!(
            Catalog::builtin()
                .prepare(RUN_COMPLETED, payload, &CTX)
                .is_ok()
        );
        let mut payload = document();
        payload["header"]["model_id"] = json!(1.5);
        assert_eq!(
            violations(&Catalog::builtin(), RUN_COMPLETED, payload),
            [v("/payload/header/model_id", "expected integer or string")]
        );
    }

    #[test]
    fn missing_header_is_reported_not_filled() {
        let payload = json!({"payload": {"run": {}, "report_link": "x"}});
        assert_eq!(
            violations(&Catalog::builtin(), RUN_COMPLETED, payload),
            [v("/payload", r#"missing required field "header""#)]
        );
    }

    #[test]
    fn object_is_the_model() {
        let prepared = Catalog::builtin()
            .prepare(RUN_COMPLETED, document(), &CTX)
            .unwrap();
        let expected = ObjectRef {
            object_type: "model".into(),
            name: Some("test".into()),
            version: None,
        };
        assert_eq!(prepared.object, Some(expected));
    }

    #[test]
    fn test_payload_names_the_test_model() {
        let catalog = Catalog::builtin();
        let payload = catalog
            .test_payload(RUN_COMPLETED, chrono::Utc::now())
            .unwrap();
        assert_eq!(payload["header"]["model_name"], "mlhook-test-model");
        assert_eq!(payload["header"]["notification_type"], RUN_COMPLETED);
    }
}
