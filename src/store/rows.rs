//! What both stores do the same way between Rust values and rows: JSON
//! columns, time bounds as id bounds, counts by status, idempotent repeats.

use super::{DeliveryStatus, Inserted, NewEvent, StatusCounts, StoreError, StoreResult};

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serialises")
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Ids are `<prefix>_<UUIDv7 hex>`, whose first 12 hex digits are the
/// creation time in milliseconds: a time bound is an id bound, and a page
/// filtered by time still walks the `(…, id)` indexes.
pub(super) fn id_bound(prefix: &str, millis: i64) -> String {
    format!("{prefix}_{:012x}", millis.max(0))
}

/// The answer to a repeat (an event whose idempotency key was seen): the
/// first one's ids.
pub(super) fn repeat_of(first: &NewEvent) -> Inserted {
    Inserted::Repeated {
        event_id: first.id.clone(),
        delivery_ids: first.deliveries.iter().map(|d| d.id.clone()).collect(),
    }
}

/// Counts from `(status, count)` rows of a `GROUP BY status`.
pub(super) fn counts_by_status(rows: impl IntoIterator<Item = (String, i64)>) -> StatusCounts {
    let mut counts = StatusCounts::default();
    for (status, n) in rows {
        let n = n as u64;
        match DeliveryStatus::parse(&status) {
            Some(DeliveryStatus::Pending) => counts.pending = n,
            Some(DeliveryStatus::Succeeded) => counts.succeeded = n,
            Some(DeliveryStatus::Failed) => counts.failed = n,
            Some(DeliveryStatus::Exhausted) => counts.exhausted = n,
            Some(DeliveryStatus::Paused) => counts.paused = n,
            None => {}
        }
    }
    counts
}
