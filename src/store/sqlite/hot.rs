//! The statements of the embedded store's hot path, run on the writer
//! thread (`writer`): each is a prepared statement executed once per row,
//! which within one transaction costs less than building a multi-row
//! statement of a new shape for every batch.
//!
//! Rows are inserted with `VALUES`, after a lookup of their own, never with
//! `INSERT … SELECT`: SQLite gives a statement that may write several rows a
//! statement journal, a copy of every page before the statement first changes
//! it (in memory, `temp_store = MEMORY`), and on the hot path those copies were
//! a large share of the writer thread's time (docs/performance.md).
//!
//! The connection does not enforce foreign keys (see `writer::open`): a
//! statement whose row refers to another looks that row up first.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use super::super::idempotency::{self, Answer, Fingerprint, KeyOf, StoredKey};
use super::super::rows::to_json;
use super::super::{AttemptRecord, DeliveryStatus, Inserted, NewEvent, StoreError, StoreResult};
use crate::ids::{DeliveryId, ProjectId};

/// Events and their deliveries, all or none; events of a project deleted
/// meanwhile, repeats of an idempotency key and requests refused for one
/// are answered, not written.
pub(super) fn insert_events(
    conn: &Connection,
    events: &[NewEvent],
    window_ms: i64,
) -> StoreResult<Vec<Inserted>> {
    let live = live_projects(conn, events)?;
    let answers = resolve_idempotency(conn, events, &live, window_ms)?;
    let mut event_row = conn.prepare_cached(
        "INSERT INTO events (id, project_id, event_type, object, payload, is_test, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (e, _) in events
        .iter()
        .zip(&answers)
        .filter(|(_, a)| **a == Inserted::Created)
    {
        event_row.execute(params![
            e.id.as_str(),
            e.project_id.as_str(),
            e.event_type,
            e.object.as_ref().map(to_json),
            e.payload,
            e.is_test,
            e.created_at
        ])?;
        insert_deliveries(conn, e)?;
    }
    Ok(answers)
}

/// More deliveries of a stored event (a replay): none, and `NotFound`, when
/// the event was deleted since it was read (retention, or its project).
pub(super) fn insert_more_deliveries(conn: &Connection, event: &NewEvent) -> StoreResult<()> {
    let mut event_exists = conn.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
    if !event_exists.exists([event.id.as_str()])? {
        return Err(StoreError::NotFound);
    }
    insert_deliveries(conn, event)
}

/// Whether webhook ?1 still exists: rows for one deleted meanwhile are left out.
const WEBHOOK_EXISTS: &str = "SELECT 1 FROM webhooks WHERE id = ?1";

/// Pending delivery rows of `event`, due at its creation unless deferred. A
/// delivery to a webhook deleted since the event was routed is left out,
/// rather than failing every event of the group on a foreign key.
fn insert_deliveries(conn: &Connection, event: &NewEvent) -> StoreResult<()> {
    let mut webhook_exists = conn.prepare_cached(WEBHOOK_EXISTS)?;
    let mut row = conn.prepare_cached(
        "INSERT INTO deliveries (id, project_id, event_id, webhook_id, event_type, status, is_test, \
         attempts, next_attempt_at, lease_until, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10, ?10)",
    )?;
    for d in &event.deliveries {
        if !webhook_exists.exists([d.webhook_id.as_str()])? {
            continue;
        }
        row.execute(params![
            d.id.as_str(),
            event.project_id.as_str(),
            event.id.as_str(),
            d.webhook_id.as_str(),
            event.event_type,
            DeliveryStatus::Pending.as_str(),
            event.is_test,
            d.due_at(event),
            d.lease_until(event),
            event.created_at
        ])?;
    }
    Ok(())
}

/// The projects of this batch that still exist: an event of a project deleted
/// a moment ago must not fail the whole batch on a foreign key.
fn live_projects(conn: &Connection, events: &[NewEvent]) -> StoreResult<HashSet<ProjectId>> {
    let mut exists = conn.prepare_cached("SELECT 1 FROM projects WHERE id = ?1")?;
    let mut live = HashSet::new();
    for e in events {
        if !live.contains(&e.project_id) && exists.exists([e.project_id.as_str()])? {
            live.insert(e.project_id.clone());
        }
    }
    Ok(live)
}

/// Decides each event against the idempotency keys (`idempotency::decide`),
/// remembers the keys of the events to be written, and reads the deliveries
/// of the stored events that are repeated.
fn resolve_idempotency(
    conn: &Connection,
    events: &[NewEvent],
    live_projects: &HashSet<ProjectId>,
    window_ms: i64,
) -> StoreResult<Vec<Inserted>> {
    let stored = stored_keys(conn, events, live_projects, window_ms)?;
    let decisions = idempotency::decide(events, live_projects, &stored);
    let mut remember = conn.prepare_cached(
        "REPLACE INTO idempotency_keys (project_id, key, event_id, created_at, fingerprint) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for &i in &decisions.claims {
        let e = &events[i];
        let key = e.idempotency_key.as_ref().expect("a claim has a key");
        remember.execute(params![
            e.project_id.as_str(),
            key.key,
            e.id.as_str(),
            e.created_at,
            key.fingerprint.as_bytes()
        ])?;
    }
    let mut deliveries =
        conn.prepare_cached("SELECT id FROM deliveries WHERE event_id = ?1 ORDER BY id")?;
    decisions
        .answers
        .into_iter()
        .map(|answer| match answer {
            Answer::Decided(inserted) => Ok(inserted),
            Answer::ReplayOfStored(event_id) => {
                let delivery_ids = deliveries
                    .query_map([event_id.as_str()], |r| r.get::<_, String>(0))?
                    .map(|id| id.map(DeliveryId::from))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Inserted::Repeated {
                    event_id,
                    delivery_ids,
                })
            }
        })
        .collect()
}

/// The keys of this write that a row holds within its window (measured from
/// the first event giving the key).
fn stored_keys<'a>(
    conn: &Connection,
    events: &'a [NewEvent],
    live_projects: &HashSet<ProjectId>,
    window_ms: i64,
) -> StoreResult<HashMap<KeyOf<'a>, StoredKey>> {
    let mut read = conn.prepare_cached(
        "SELECT event_id, created_at, fingerprint FROM idempotency_keys \
         WHERE project_id = ?1 AND key = ?2",
    )?;
    let mut seen = HashSet::new();
    let mut stored = HashMap::new();
    for e in events
        .iter()
        .filter(|e| live_projects.contains(&e.project_id))
    {
        let Some(key) = idempotency::key_of(e) else {
            continue;
        };
        if !seen.insert(key) {
            continue;
        }
        let row: Option<(String, i64, Option<Vec<u8>>)> = read
            .query_row(params![key.0, key.1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((event_id, created_at, fingerprint)) = row else {
            continue;
        };
        if created_at <= e.created_at - window_ms {
            continue;
        }
        let fingerprint = fingerprint
            .as_deref()
            .map(Fingerprint::from_stored)
            .transpose()?;
        stored.insert(
            key,
            StoredKey {
                event_id: event_id.into(),
                fingerprint,
            },
        );
    }
    Ok(stored)
}

/// Each attempt's row, then its delivery takes the state the attempt led to;
/// one after the other, so that two outcomes of one delivery in a batch (its
/// lease ran out and it was claimed again meanwhile) get attempt numbers of
/// their own and both count.
pub(super) fn record_attempts(
    conn: &Connection,
    attempts: &[AttemptRecord],
    now: i64,
) -> StoreResult<()> {
    // A delivery that succeeded meanwhile (a redeliver) stays succeeded; one
    // paused meanwhile (its webhook was disabled) stays paused unless this
    // attempt succeeded. Every right-hand side reads the row as it was.
    let mut state = conn.prepare_cached(
        "UPDATE deliveries SET \
         status = CASE WHEN status = 'succeeded' THEN 'succeeded' \
                       WHEN status = 'paused' AND ?2 <> 'succeeded' THEN 'paused' \
                       ELSE ?2 END, \
         next_attempt_at = CASE WHEN status IN ('succeeded', 'paused') THEN NULL ELSE ?3 END, \
         attempts = attempts + 1, lease_until = ?4, last_status_code = ?5, updated_at = ?6 \
         WHERE id = ?1",
    )?;
    for a in attempts {
        insert_attempt(conn, a)?;
        state.execute(params![
            a.delivery_id.as_str(),
            a.status.as_str(),
            a.next_attempt_at,
            a.lease_until,
            a.response_status,
            now
        ])?;
    }
    note_activity(conn, attempts)
}

/// A redeliver or test send: recorded, never retried; a success ends the
/// delivery's schedule, a failure leaves it as it was.
pub(super) fn record_manual_attempt(
    conn: &Connection,
    a: &AttemptRecord,
    now: i64,
) -> StoreResult<()> {
    insert_attempt(conn, a)?;
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?1, last_status_code = ?2, updated_at = ?3, attempts = attempts + 1, \
         next_attempt_at = CASE WHEN ?4 THEN NULL ELSE next_attempt_at END WHERE id = ?5",
    )?
    .execute(params![
        a.status.as_str(),
        a.response_status,
        now,
        a.succeeded,
        a.delivery_id.as_str()
    ])?;
    note_activity(conn, std::slice::from_ref(a))
}

/// Moves each webhook's last success and last failure forward to the newest
/// of `attempts`: one row per webhook of the batch, in id order (a webhook
/// deleted meanwhile gets none).
fn note_activity(conn: &Connection, attempts: &[AttemptRecord]) -> StoreResult<()> {
    let mut newest: BTreeMap<&str, (Option<i64>, Option<i64>)> = BTreeMap::new();
    for a in attempts {
        let (success, failure) = newest.entry(&a.webhook_id).or_default();
        let slot = if a.succeeded { success } else { failure };
        *slot = (*slot).max(Some(a.started_at));
    }
    // SQLite's two-argument MAX is NULL when either is: COALESCE keeps the
    // one that is set.
    let mut webhook_exists = conn.prepare_cached(WEBHOOK_EXISTS)?;
    let mut row = conn.prepare_cached(
        "INSERT INTO webhook_activity (webhook_id, last_success_at, last_failure_at) \
         VALUES (?1, ?2, ?3) \
         ON CONFLICT (webhook_id) DO UPDATE SET \
         last_success_at = COALESCE(MAX(last_success_at, excluded.last_success_at), last_success_at, excluded.last_success_at), \
         last_failure_at = COALESCE(MAX(last_failure_at, excluded.last_failure_at), last_failure_at, excluded.last_failure_at)",
    )?;
    for (webhook_id, (success, failure)) in newest {
        if webhook_exists.exists([webhook_id])? {
            row.execute(params![webhook_id, success, failure])?;
        }
    }
    Ok(())
}

/// A row for a delivery deleted meanwhile (webhook or project gone) is
/// dropped. The attempt number comes from the delivery's own count, so
/// automatic and manual attempts never share a number.
fn insert_attempt(conn: &Connection, a: &AttemptRecord) -> StoreResult<()> {
    let attempts_made: Option<i64> = conn
        .prepare_cached("SELECT attempts FROM deliveries WHERE id = ?1")?
        .query_row([a.delivery_id.as_str()], |r| r.get(0))
        .optional()?;
    let Some(attempts_made) = attempts_made else {
        return Ok(());
    };
    let mut row = conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, attempt, webhook_id, manual, started_at, duration_ms, \
         request_url, request_headers, request_body, succeeded, response_status, response_headers, \
         response_body, response_truncated, error_kind, error_message, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    row.execute(params![
        a.delivery_id.as_str(),
        attempts_made + 1,
        a.webhook_id.as_str(),
        a.manual,
        a.started_at,
        a.duration_ms,
        a.request_url,
        a.request_headers,
        a.request_body,
        a.succeeded,
        a.response_status,
        a.response_headers,
        a.response_body,
        a.response_truncated,
        a.error_kind,
        a.error_message,
        a.next_attempt_at
    ])?;
    Ok(())
}
