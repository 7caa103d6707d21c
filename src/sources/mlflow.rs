//! MLflow's webhooks, received: the signature and timestamp checks, the
//! body's event type, and the Comet-shaped counterpart of an event.
//!
//! MLflow 3.x signs `"{delivery_id}.{timestamp}.{body}"` with HMAC-SHA256,
//! keyed by the webhook's secret as UTF-8 bytes, and sends
//! `X-MLflow-Signature: v1,<base64>`; the timestamp is unix seconds in
//! `X-MLflow-Timestamp`; the delivery id a fresh uuid4 per event, kept by its
//! (urllib3) retries, which resend the very same request.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::catalog::{Catalog, mlflow as native};

pub const DELIVERY_ID_HEADER: &str = "x-mlflow-delivery-id";
pub const TIMESTAMP_HEADER: &str = "x-mlflow-timestamp";
pub const SIGNATURE_HEADER: &str = "x-mlflow-signature";

const MAX_DELIVERY_ID: usize = 128;

/// Why a request was refused: an HTTP status, a stable code, and a message
/// that tells the MLflow operator what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Reject {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Reject {
        Reject {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The delivery headers of a request, checked for shape.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryHeaders<'a> {
    pub delivery_id: &'a str,
    /// As sent: the signed content holds this text, not a reformatted number.
    pub timestamp_text: &'a str,
    pub timestamp: i64,
    pub signature: Option<&'a str>,
}

/// Reads the delivery id, timestamp and signature (absent headers are `None`).
pub fn delivery_headers<'a>(
    delivery_id: Option<&'a str>,
    timestamp: Option<&'a str>,
    signature: Option<&'a str>,
) -> Result<DeliveryHeaders<'a>, Reject> {
    let missing = |name: &str| {
        Reject::new(
            400,
            "missing_header",
            format!("the {name} header is missing; is this request from an MLflow webhook?"),
        )
    };
    let delivery_id = delivery_id.ok_or_else(|| missing("X-MLflow-Delivery-Id"))?;
    if delivery_id.is_empty()
        || delivery_id.len() > MAX_DELIVERY_ID
        || !delivery_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Reject::new(
            400,
            "invalid_header",
            "X-MLflow-Delivery-Id must be 1 to 128 visible ASCII characters",
        ));
    }
    let timestamp_text = timestamp.ok_or_else(|| missing("X-MLflow-Timestamp"))?;
    let timestamp = timestamp_text
        .parse::<i64>()
        .ok()
        .filter(|_| timestamp_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Reject::new(
                400,
                "invalid_header",
                "X-MLflow-Timestamp must be unix seconds",
            )
        })?;
    Ok(DeliveryHeaders {
        delivery_id,
        timestamp_text,
        timestamp,
        signature,
    })
}

/// Checks MLflow's signature in constant time: any `v1,` signature of the
/// (space-separated) header value may match.
pub fn verify_signature(
    secret: &str,
    headers: &DeliveryHeaders<'_>,
    body: &[u8],
) -> Result<(), Reject> {
    let Some(header) = headers.signature else {
        return Err(Reject::new(
            401,
            "missing_signature",
            "the X-MLflow-Signature header is missing, but this source has a secret: create the \
             MLflow webhook with the same secret",
        ));
    };
    let expected = signature(secret, headers.delivery_id, headers.timestamp_text, body);
    let mut matched = subtle::Choice::from(0);
    for candidate in header.split_whitespace() {
        if let Some(bytes) = candidate
            .strip_prefix("v1,")
            .and_then(|b64| B64.decode(b64).ok())
        {
            // Lengths are public (a SHA-256 tag is 32 bytes); contents are not.
            matched |= expected.as_slice().ct_eq(bytes.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(Reject::new(
            401,
            "invalid_signature",
            "X-MLflow-Signature does not match: the MLflow webhook's secret differs from this \
             source's, or the request was altered on the way",
        ))
    }
}

/// The raw HMAC-SHA256 of `"{delivery_id}.{timestamp}.{body}"`.
fn signature(secret: &str, delivery_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(delivery_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The `X-MLflow-Signature` value MLflow would send (for tests and tools).
pub fn sign(secret: &str, delivery_id: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v1,{}",
        B64.encode(signature(secret, delivery_id, timestamp, body))
    )
}

/// The timestamp must be within `tolerance_secs` of `now_secs`, either way.
pub fn check_timestamp(timestamp: i64, now_secs: i64, tolerance_secs: u32) -> Result<(), Reject> {
    let skew = now_secs.saturating_sub(timestamp);
    if skew.unsigned_abs() <= u64::from(tolerance_secs) {
        return Ok(());
    }
    let when = if skew > 0 {
        format!("{skew} s old")
    } else {
        format!("{} s in the future", -skew)
    };
    Err(Reject::new(
        401,
        "stale_timestamp",
        format!(
            "X-MLflow-Timestamp is {when}; this source accepts {tolerance_secs} s either way \
             (check the clocks of the MLflow server and of mlhook)"
        ),
    ))
}

/// A body that parsed, with the native event type it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub event_type: String,
    pub body: Value,
    /// Sent by MLflow's `test_webhook` (its example payload): a test event,
    /// stored as such and delivered to no webhook.
    pub is_test: bool,
}

/// Parses MLflow's `{"entity", "action", "timestamp", "data"}` and finds its
/// native type in the catalogue.
pub fn parse_body(body: &[u8], catalog: &Catalog) -> Result<Received, Reject> {
    let malformed = |message: String| Reject::new(400, "malformed_body", message);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(fields) = &value else {
        return Err(malformed("the body must be a JSON object".into()));
    };
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    let (Some(entity), Some(action)) = (text("entity"), text("action")) else {
        return Err(malformed(
            "the body must name the event in \"entity\" and \"action\" (strings), as MLflow does"
                .into(),
        ));
    };
    let event_type = native::event_type(entity, action);
    if !catalog.contains(&event_type) {
        let named: String = format!("{entity}.{action}").chars().take(100).collect();
        return Err(Reject::new(
            400,
            "unknown_event_type",
            format!(
                "unknown MLflow event {named}: mlhook knows the events of MLflow 3.x \
                 (see GET /v1/event-types)"
            ),
        ));
    }
    let is_test = fields
        .get("data")
        .is_some_and(|data| native::is_test_data(entity, action, data));
    Ok(Received {
        event_type,
        body: value,
        is_test,
    })
}

/// Whether the body sets or deletes one of MLflow's own tags (`_mlflow…`,
/// such as the `_mlflow_experiment_ids` MLflow puts on prompts): bookkeeping
/// of MLflow's, which a chat channel has no use for.
pub fn is_internal_tag_event(body: &Value) -> bool {
    let entity = body.get("entity").and_then(Value::as_str).unwrap_or("");
    let key = body
        .pointer("/data/key")
        .and_then(Value::as_str)
        .unwrap_or("");
    entity.ends_with("_tag") && key.starts_with("_mlflow")
}

/// The event time of a body: its ISO 8601 `timestamp`, else `fallback_secs`.
pub fn event_time_secs(body: &Value, fallback_secs: i64) -> i64 {
    body.get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(fallback_secs, |t| t.timestamp())
}

/// The Comet model-registry event with the same meaning, where there is one:
/// `model_version.created` → `MODEL_VERSION_CREATED`, a model version tag set
/// or deleted → `MODEL_TAG_CHANGED`. `workspace` is the Comet
/// `workspaceName`; `created_at` is in unix seconds.
pub fn comet_counterpart(
    event_type: &str,
    body: &Value,
    workspace: &str,
    created_at: i64,
) -> Option<(&'static str, Value)> {
    let data = body.get("data")?.as_object()?;
    let text = |key: &str| data.get(key).and_then(Value::as_str);
    let (name, version) = (text("name")?, text("version")?);
    let workspace = body
        .get("workspace")
        .and_then(Value::as_str)
        .unwrap_or(workspace);
    let (trigger, tags, deleted, experiment) = match event_type {
        "mlflow.model_version.created" => (
            "MODEL_VERSION_CREATED",
            tag_labels(data.get("tags")),
            Vec::new(),
            text("run_id"),
        ),
        "mlflow.model_version_tag.set" => {
            let key = text("key")?;
            let label = label(key, text("value").unwrap_or(""));
            ("MODEL_TAG_CHANGED", vec![label], Vec::new(), None)
        }
        "mlflow.model_version_tag.deleted" => (
            "MODEL_TAG_CHANGED",
            Vec::new(),
            vec![text("key")?.to_string()],
            None,
        ),
        _ => return None,
    };
    let payload = json!({
        "eventTrigger": trigger,
        "workspaceName": workspace,
        "registryModelName": name,
        "version": version,
        "tags": tags,
        "deletedTags": deleted,
        "status": null,
        "oldStatus": null,
        "createdAt": created_at,
        "sourceExperimentKey": experiment,
    });
    Some((trigger, payload))
}

/// MLflow tags are key/value pairs, Comet's plain strings: `key=value`, or
/// `key` alone when the value is empty.
fn label(key: &str, value: &str) -> String {
    if value.is_empty() {
        key.to_string()
    } else {
        format!("{key}={value}")
    }
}

fn tag_labels(tags: Option<&Value>) -> Vec<String> {
    let empty = Map::new();
    tags.and_then(Value::as_object)
        .unwrap_or(&empty)
        .iter()
        .map(|(k, v)| label(k, v.as_str().unwrap_or("")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "an-mlflow-webhook-secret";
    /// Signed by MLflow 3.17.2's `_generate_hmac_signature` with `SECRET`.
    const BODY: &str = r#"{"entity": "model_version", "action": "created", "timestamp": "2026-11-25T10:00:00.123456+00:00", "data": {"name": "churn", "version": "3", "source": "s3://bucket/churn/3", "run_id": "9f1c", "tags": {"team": "fraud", "candidate": ""}, "description": null}}"#;

    fn headers<'a>(signature: &'a str) -> DeliveryHeaders<'a> {
        delivery_headers(
            Some("4c1f3a52-6a0e-4d5b-9f3e-2a1b0c9d8e7f"),
            Some("1795600000"),
            Some(signature),
        )
        .unwrap()
    }

    /// Independent of `sign`: Python's
    /// `base64.b64encode(hmac.new(secret, f"{id}.{ts}.{body}", sha256).digest())`.
    fn python_signature() -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
        let content = format!("4c1f3a52-6a0e-4d5b-9f3e-2a1b0c9d8e7f.1795600000.{BODY}");
        let tag = ring::hmac::sign(&key, content.as_bytes());
        format!("v1,{}", B64.encode(tag.as_ref()))
    }

    #[test]
    fn mlflows_signature_verifies() {
        let signature = python_signature();
        assert_eq!(
            sign(
                SECRET,
                "4c1f3a52-6a0e-4d5b-9f3e-2a1b0c9d8e7f",
                "1795600000",
                BODY.as_bytes()
            ),
            signature
        );
        assert_eq!(
            verify_signature(SECRET, &headers(&signature), BODY.as_bytes()),
            Ok(())
        );
        // One of several space-separated signatures is enough (a rotation).
        let several = format!("v1,AAAA {signature}");
        assert!(verify_signature(SECRET, &headers(&several), BODY.as_bytes()).is_ok());
    }

    #[test]
    fn wrong_secret_altered_body_or_missing_signature_fail() {
        let signature = python_signature();
        let code = |r: Result<(), Reject>| r.unwrap_err().code;
        assert_eq!(
            code(verify_signature(
                "another-secret-entirely",
                &headers(&signature),
                BODY.as_bytes()
            )),
            "invalid_signature"
        );
        let altered = BODY.replace("\"3\"", "\"4\"");
        assert_eq!(
            code(verify_signature(
                SECRET,
                &headers(&signature),
                altered.as_bytes()
            )),
            "invalid_signature"
        );
        let mut bare = headers(&signature);
        bare.signature = None;
        assert_eq!(
            code(verify_signature(SECRET, &bare, BODY.as_bytes())),
            "missing_signature"
        );
        for junk in ["", "v1,", "v1,!!!", "v2,abc", &signature[3..]] {
            assert_eq!(
                code(verify_signature(SECRET, &headers(junk), BODY.as_bytes())),
                "invalid_signature",
                "{junk}"
            );
        }
        // The timestamp is signed too.
        let mut later = headers(&signature);
        later.timestamp_text = "1795600001";
        assert!(verify_signature(SECRET, &later, BODY.as_bytes()).is_err());
    }

    #[test]
    fn headers_are_required_and_checked() {
        let code = |id, ts| delivery_headers(id, ts, None).unwrap_err().code;
        assert_eq!(code(None, Some("1")), "missing_header");
        assert_eq!(code(Some("d"), None), "missing_header");
        assert_eq!(code(Some(""), Some("1")), "invalid_header");
        assert_eq!(code(Some("a b"), Some("1")), "invalid_header");
        assert_eq!(code(Some("d"), Some("-5")), "invalid_header");
        assert_eq!(code(Some("d"), Some("1.5")), "invalid_header");
        assert_eq!(code(Some("d"), Some("+5")), "invalid_header");
    }

    #[test]
    fn timestamp_window_applies_both_ways() {
        assert!(check_timestamp(1000, 1300, 300).is_ok());
        assert!(check_timestamp(1300, 1000, 300).is_ok());
        let old = check_timestamp(1000, 1360, 300).unwrap_err();
        assert_eq!((old.status, old.code), (401, "stale_timestamp"));
        assert!(old.message.contains("360 s old"), "{}", old.message);
        let ahead = check_timestamp(2000, 1000, 300).unwrap_err();
        assert!(ahead.message.contains("1000 s in the future"));
    }

    #[test]
    fn bodies_name_a_known_event() {
        let catalog = Catalog::builtin();
        let got = parse_body(BODY.as_bytes(), &catalog).unwrap();
        assert_eq!(got.event_type, "mlflow.model_version.created");
        let code = |body: &str| parse_body(body.as_bytes(), &catalog).unwrap_err().code;
        assert_eq!(code("{"), "malformed_body");
        assert_eq!(code("[]"), "malformed_body");
        assert_eq!(code(r#"{"entity": "model_version"}"#), "malformed_body");
        assert_eq!(
            code(r#"{"entity": "model_version", "action": "exploded", "data": {}}"#),
            "unknown_event_type"
        );
        assert_eq!(
            code(r#"{"entity": "x.y", "action": "z", "data": {}}"#),
            "unknown_event_type"
        );
    }

    #[test]
    fn a_new_version_becomes_model_version_created() {
        let body: Value = serde_json::from_str(BODY).unwrap();
        let at = event_time_secs(&body, 0);
        assert_eq!(at, 1_795_600_800);
        let (trigger, payload) =
            comet_counterpart("mlflow.model_version.created", &body, "ml", at).unwrap();
        assert_eq!(trigger, "MODEL_VERSION_CREATED");
        assert_eq!(
            payload,
            json!({
                "eventTrigger": "MODEL_VERSION_CREATED", "workspaceName": "ml",
                "registryModelName": "churn", "version": "3",
                "tags": ["team=fraud", "candidate"], "deletedTags": [], "status": null,
                "oldStatus": null, "createdAt": 1_795_600_800, "sourceExperimentKey": "9f1c"
            })
        );
        let prepared = Catalog::builtin()
            .prepare(
                trigger,
                payload.clone(),
                &crate::catalog::PrepareContext { project_id: "p" },
            )
            .unwrap();
        assert_eq!(
            prepared.payload, payload,
            "valid Comet payload, delivered as built"
        );
    }

    #[test]
    fn tag_changes_become_model_tag_changed() {
        let set = json!({"entity": "model_version_tag", "action": "set", "timestamp": "x",
                         "workspace": "team-a",
                         "data": {"name": "churn", "version": "3", "key": "stage", "value": "prod"}});
        let (trigger, payload) =
            comet_counterpart("mlflow.model_version_tag.set", &set, "ml", 7).unwrap();
        assert_eq!(trigger, "MODEL_TAG_CHANGED");
        assert_eq!(payload["tags"], json!(["stage=prod"]));
        assert_eq!(payload["deletedTags"], json!([]));
        assert_eq!(
            payload["workspaceName"], "team-a",
            "MLflow's workspace wins"
        );
        let deleted = json!({"data": {"name": "churn", "version": "3", "key": "stage"}});
        let (_, payload) =
            comet_counterpart("mlflow.model_version_tag.deleted", &deleted, "ml", 7).unwrap();
        assert_eq!(
            (&payload["tags"], &payload["deletedTags"]),
            (&json!([]), &json!(["stage"]))
        );
        let catalog = Catalog::builtin();
        let ctx = crate::catalog::PrepareContext { project_id: "p" };
        assert!(catalog.prepare(trigger, payload, &ctx).is_ok());
    }

    #[test]
    fn mlflows_own_tags_are_told_apart() {
        let tag = |entity: &str, key: &str| json!({"entity": entity, "action": "set", "data": {"name": "p", "key": key}});
        assert!(is_internal_tag_event(&tag(
            "prompt_tag",
            "_mlflow_experiment_ids"
        )));
        assert!(is_internal_tag_event(&tag(
            "model_version_tag",
            "_mlflow.x"
        )));
        assert!(!is_internal_tag_event(&tag("prompt_tag", "owner")));
        assert!(!is_internal_tag_event(&tag(
            "prompt",
            "_mlflow_experiment_ids"
        )));
    }

    #[test]
    fn events_without_a_counterpart_have_none() {
        let catalog = Catalog::builtin();
        for t in catalog
            .list()
            .filter(|t| t.name.starts_with(native::PREFIX))
        {
            let mapped = comet_counterpart(&t.name, &t.example, "ml", 1).is_some();
            let expected = matches!(
                t.name.as_str(),
                "mlflow.model_version.created"
                    | "mlflow.model_version_tag.set"
                    | "mlflow.model_version_tag.deleted"
            );
            assert_eq!(mapped, expected, "{}", t.name);
        }
    }
}
