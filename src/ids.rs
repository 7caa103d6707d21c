//! Identifiers and clock helpers shared by every module.
//!
//! Ids are UUIDv7 (time-ordered) behind a short prefix naming the resource, so
//! sorting by id is sorting by creation time — the delivery log pages on that.

use uuid::Uuid;

/// A new time-ordered id such as `evt_0193…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 text for a millisecond timestamp, as the API shows times.
pub fn millis_to_rfc3339(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
