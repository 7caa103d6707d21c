//! What a body's schema says that the derive attributes cannot spell alone:
//! the catalog's type names, a JSON value the API keeps as written, and the
//! text rules several bodies share.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

use crate::catalog::Catalog;

/// An RFC 3339 time or a duration ago (`2h`): a subset of what
/// `api::parse_time` reads, which generated clients stay in.
const TIME: &str = "^([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])|0|[0-9]{1,4}[smhd])$";

/// How long a source's replaced secret still verifies: one number and
/// unit, at most 7 days.
const SECRET_GRACE_PERIOD: &str =
    "^([0-9]{1,5}s|[0-9]{1,4}m|([0-9]{1,2}|1[0-5][0-9]|16[0-8])h|[0-7]d)$";

/// A project's link base: http(s), a host of letters, digits, dots and
/// hyphens, an optional port (1 to 65535), a path of visible ASCII.
pub const LINK_BASE: &str = "^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$";

/// A signing key's grace period, one number and unit, at most 30 days: a
/// subset of what humantime reads.
const GRACE_PERIOD: &str =
    "^([0-9]{1,6}s|[0-9]{1,4}m|([0-9]{1,2}|[1-6][0-9]{2})h|([0-9]|[12][0-9]|30)d)$";

pub use crate::validation::JSON_VALUE;

/// An event type the catalog knows, or null (the route's default).
pub fn known_event_type_or_null() -> Schema {
    let names = Catalog::global().list().map(|t| t.name.clone());
    let values = std::iter::once(serde_json::Value::Null).chain(names.map(serde_json::Value::from));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .description(Some("An event type of the catalog (`GET /v1/event-types`)"))
        .into()
}

/// The `JsonValue` component, recursive through arrays and objects: an
/// integer beyond 64 bits is refused, since it would come back as a float.
/// Raw JSON: utoipa's types have no `not`.
pub fn json_value_component() -> serde_json::Value {
    let itself = serde_json::json!({"$ref": format!("#/components/schemas/{JSON_VALUE}")});
    serde_json::json!({
        "description": "Any JSON value; integers within 64 bits (send a larger one as a string: values are kept as written)",
        "anyOf": [
            {"type": ["null", "boolean", "string"]},
            {"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "array", "items": itself},
            {"type": "object", "additionalProperties": itself},
        ],
    })
}

/// Text rules that hold wherever a name appears, in a body or a query:
/// every `since` and `until` is a time, every `grace_period` a duration,
/// every `link_base_url` a link base.
/// Set on the built document, since utoipa's attributes take a literal
/// pattern only and these would be copied to each field.
pub fn state_text_rules(doc: &mut serde_json::Value) {
    use serde_json::Value;
    let pattern_of = |name: &str| match name {
        "since" | "until" => Some(TIME),
        "grace_period" => Some(GRACE_PERIOD),
        "secret_grace_period" => Some(SECRET_GRACE_PERIOD),
        "link_base_url" => Some(LINK_BASE),
        _ => None,
    };
    match doc {
        Value::Object(fields) => {
            // A query parameter: {"name": "since", "in": "query", "schema": {…}}.
            if let (Some(Value::String(name)), Some(Value::Object(schema))) =
                (fields.get("name").cloned(), fields.get_mut("schema"))
                && let Some(pattern) = pattern_of(&name)
            {
                schema.insert("pattern".into(), pattern.into());
            }
            // A body's properties: {"since": {"type": "string"}, …}.
            if let Some(Value::Object(properties)) = fields.get_mut("properties") {
                for (name, schema) in properties.iter_mut() {
                    if let (Some(pattern), Value::Object(schema)) = (pattern_of(name), schema) {
                        schema.insert("pattern".into(), pattern.into());
                    }
                }
            }
            fields.values_mut().for_each(state_text_rules);
        }
        Value::Array(items) => items.iter_mut().for_each(state_text_rules),
        _ => {}
    }
}
