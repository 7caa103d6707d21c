//! mlhook's own events about delivery health, subscribed to like any other
//! event (a Slack channel for on-call, say). `"*"` does not include them: a
//! webhook opts in by naming them.

use serde_json::{Value, json};

use super::describe::{push_field, text_of};
use super::{
    Description, EventType, Family, Object, ObjectRef, PrepareContext, Rules, Span, Spec, Tone,
    no_check, no_refresh, object_schema,
};

pub const WEBHOOK_DISABLED: &str = "mlhook.webhook.disabled";
pub const DELIVERY_EXHAUSTED: &str = "mlhook.delivery.exhausted";
pub const DELIVERY_RECOVERED: &str = "mlhook.delivery.recovered";

pub(super) fn specs() -> Vec<Spec> {
    vec![
        spec(
            WEBHOOK_DISABLED,
            "mlhook disabled a webhook that kept failing (no success within the failure window \
             with an exhausted delivery) or whose endpoint answered 410 Gone.",
            json!({
                "webhook_id": {"type": "string"},
                "webhook_name": {"type": "string"},
                "reason": {"type": "string"},
                "disabled_at": {"type": "string", "description": "RFC 3339 time."}
            }),
            &["webhook_id", "webhook_name", "reason", "disabled_at"],
            json!({"webhook_id": "wh_0193", "webhook_name": "churn releases",
                   "reason": "the endpoint answered 410 Gone", "disabled_at": "2026-11-25T12:00:00.000Z"}),
        ),
        spec(
            DELIVERY_EXHAUSTED,
            "A delivery failed on its last scheduled attempt; it is not retried again unless recovered.",
            json!({
                "delivery_id": {"type": "string"},
                "webhook_id": {"type": "string"},
                "webhook_name": {"type": "string"},
                "event_id": {"type": "string"},
                "event_type": {"type": "string"},
                "attempts": {"type": "integer"},
                "last_status_code": {"type": ["integer", "null"]},
                "last_error": {"type": ["string", "null"]}
            }),
            &[
                "delivery_id",
                "webhook_id",
                "webhook_name",
                "event_id",
                "event_type",
                "attempts",
            ],
            json!({"delivery_id": "msg_0193", "webhook_id": "wh_0193", "webhook_name": "churn releases",
                   "event_id": "evt_0193", "event_type": "MODEL_VERSION_CREATED", "attempts": 8,
                   "last_status_code": 500, "last_error": "receiver answered 500 Internal Server Error"}),
        ),
        spec(
            DELIVERY_RECOVERED,
            "A webhook's endpoint accepted a delivery again after failed attempts.",
            json!({
                "delivery_id": {"type": "string"},
                "webhook_id": {"type": "string"},
                "webhook_name": {"type": "string"},
                "event_id": {"type": "string"},
                "event_type": {"type": "string"},
                "recovered_at": {"type": "string", "description": "RFC 3339 time."}
            }),
            &[
                "delivery_id",
                "webhook_id",
                "webhook_name",
                "event_id",
                "event_type",
                "recovered_at",
            ],
            json!({"delivery_id": "msg_0193", "webhook_id": "wh_0193", "webhook_name": "churn releases",
                   "event_id": "evt_0193", "event_type": "MODEL_VERSION_CREATED",
                   "recovered_at": "2026-11-25T12:00:00.000Z"}),
        ),
    ]
}

fn spec(
    name: &str,
    description: &str,
    properties: Value,
    required: &[&str],
    example: Value,
) -> Spec {
    let schema = object_schema(name, description, properties, required);
    let mut test_payload = example.clone();
    test_payload["webhook_name"] = json!("mlhook test");
    Spec {
        event_type: EventType {
            name: name.to_owned(),
            family: Family::Operational,
            description: description.to_owned(),
            schema,
            example,
            test_payload,
        },
        rules: Rules {
            fill: no_fill,
            check: no_check,
            object: no_object,
            refresh: no_refresh,
            describe,
        },
    }
}

fn no_fill(_: &str, _: &mut Object, _: &PrepareContext<'_>) {}

fn no_object(_: &str, _: &Object) -> Option<ObjectRef> {
    None
}

/// "Webhook churn releases disabled", "Delivery to churn releases failed after 8 attempts", …
pub(super) fn describe(name: &str, fields: &Object, _project: &str) -> Option<Description> {
    let get = |key: &str| text_of(fields, key);
    let webhook = get("webhook_name")
        .or_else(|| get("webhook_id"))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    let id = get("webhook_id").unwrap_or_default();
    let mut out = Vec::new();
    push_field(&mut out, "Webhook", Some(format!("{webhook} ({id})")));
    let (title, summary, tone) = match name {
        WEBHOOK_DISABLED => {
            let reason = get("reason").unwrap_or_else(|| "no reason given".to_owned());
            push_field(&mut out, "Reason", Some(reason.clone()));
            push_field(&mut out, "Disabled at", get("disabled_at"));
            (
                format!("Webhook {webhook} disabled"),
                format!("mlhook disabled webhook {webhook}: {reason}."),
                Tone::Bad,
            )
        }
        DELIVERY_EXHAUSTED => {
            let attempts = get("attempts").unwrap_or_else(|| "all".to_owned());
            let last = match (get("last_status_code"), get("last_error")) {
                (_, Some(error)) => format!("; last error: {error}"),
                (Some(code), None) => format!("; last answer: {code}"),
                (None, None) => String::new(),
            };
            let event_type = get("event_type").unwrap_or_else(|| "an".to_owned());
            push_field(&mut out, "Event type", get("event_type"));
            push_field(&mut out, "Event", get("event_id"));
            push_field(&mut out, "Delivery", get("delivery_id"));
            push_field(&mut out, "Attempts", get("attempts"));
            push_field(&mut out, "Last status", get("last_status_code"));
            (
                format!("Delivery to {webhook} failed after {attempts} attempts"),
                format!(
                    "mlhook gave up delivering {event_type} event to webhook {webhook} after \
                     {attempts} attempts{last}."
                ),
                Tone::Bad,
            )
        }
        DELIVERY_RECOVERED => {
            push_field(&mut out, "Event type", get("event_type"));
            push_field(&mut out, "Delivery", get("delivery_id"));
            push_field(&mut out, "Recovered at", get("recovered_at"));
            (
                format!("Webhook {webhook} recovered"),
                format!("Webhook {webhook} accepted a delivery again after failed attempts."),
                Tone::Good,
            )
        }
        _ => return None,
    };
    Some(Description {
        title,
        summary: vec![Span::text(summary)],
        fields: out,
        link: None,
        tone,
    })
}
