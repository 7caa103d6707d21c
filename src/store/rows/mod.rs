//! What both stores do the same way between Rust values and rows.
//!
//! Each table's columns as read are a plain struct (`*Columns`, derived
//! `sqlx::FromRow` for any sqlx row), turned into the domain type with
//! `TryFrom`; the statements both stores run alike are written once in
//! `Shared`, with `$n` placeholders, which SQLite reads as PostgreSQL does.
//! What is left in `sqlite` and `postgres` is what really differs: the hot
//! path, claims and leases, and the SQL each database words its own way.
//!
//! Integer widths: PostgreSQL's INTEGER columns are read as `i32`, which
//! SQLite's 64-bit integers decode to as well (range-checked), its BIGINT
//! columns as `i64`; no column had to change.

mod account;
mod events;
mod shared;
mod source;
mod webhook;

pub(super) use events::DueColumns;
pub(super) use shared::Shared;

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

/// A row read as its columns (`C`), then turned into the domain type.
pub(super) fn decode<'r, R, C, T>(row: &'r R) -> StoreResult<T>
where
    R: sqlx::Row,
    C: sqlx::FromRow<'r, R>,
    T: TryFrom<C, Error = StoreError>,
{
    T::try_from(C::from_row(row)?)
}

/// A column that holds one of a fixed set of names (`parse` answers `None`
/// for any other): anything else is a corrupt row.
fn parse_name<T>(what: &str, name: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
    parse(name).ok_or_else(|| StoreError::Corrupt(format!("{what} {name}")))
}

/// A count or status code read from an INTEGER column: never negative.
fn unsigned<T: TryFrom<i32>>(column: &str, value: i32) -> StoreResult<T> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column}: {value}")))
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
