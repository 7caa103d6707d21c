//! The statements of the shared store's hot path: new events with their
//! deliveries, and attempt outcomes. Each statement takes a whole batch as
//! arrays (`UNNEST`), so it has one fixed text whatever the batch size and
//! costs one round trip per batch, not per row. They run in the caller's
//! transaction, all or none.

use std::collections::{HashMap, HashSet};

use super::super::idempotency::{self, Answer, Fingerprint, KeyOf, StoredKey};
use super::super::rows::to_json;
use super::super::{AttemptRecord, Inserted, NewEvent, StoreError, StoreResult};
use super::Tx;
use crate::ids::{EventId, ProjectId, WebhookId};

/// Events and their deliveries, leased to `node`; events of a project
/// deleted meanwhile, repeats of an idempotency key and requests refused for
/// one are answered, not written.
pub(super) async fn insert_events(
    tx: &mut Tx<'_>,
    events: &[NewEvent],
    window_ms: i64,
    node: &str,
) -> StoreResult<Vec<Inserted>> {
    let live = live_projects(tx, events).await?;
    let answers = resolve_idempotency(tx, events, &live, window_ms).await?;
    let created: Vec<&NewEvent> = events
        .iter()
        .zip(&answers)
        .filter(|(_, a)| **a == Inserted::Created)
        .map(|(e, _)| e)
        .collect();
    insert_event_rows(tx, &created).await?;
    insert_delivery_rows(tx, &created, node).await?;
    Ok(answers)
}

/// More deliveries of a stored event (a replay), leased to `node`: none, and
/// `NotFound`, when the event was deleted since it was read (retention, or
/// its project). The lock keeps it until these rows are in.
pub(super) async fn insert_more_deliveries(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    node: &str,
) -> StoreResult<()> {
    let event_exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM events WHERE id = $1 FOR KEY SHARE")
            .bind(&event.id)
            .fetch_optional(&mut **tx)
            .await?;
    if event_exists.is_none() {
        return Err(StoreError::NotFound);
    }
    insert_delivery_rows(tx, &[event], node).await
}

/// Each attempt's row, then its delivery takes the state the attempt led to
/// (a short retry stays leased to `node`); a batch holding two outcomes of
/// one delivery writes them one after the other (`one_per_delivery`).
pub(super) async fn record_attempts(
    tx: &mut Tx<'_>,
    attempts: &[AttemptRecord],
    now: i64,
    node: &str,
) -> StoreResult<()> {
    for round in one_per_delivery(attempts) {
        insert_attempt_rows(tx, &round).await?;
        update_delivery_states(tx, &round, now, node).await?;
    }
    Ok(())
}

/// A redeliver or test send: recorded, never retried; a success ends the
/// delivery's schedule, a failure leaves it as it was.
pub(super) async fn record_manual_attempt(
    tx: &mut Tx<'_>,
    a: &AttemptRecord,
    now: i64,
) -> StoreResult<()> {
    insert_attempt_rows(tx, &[a]).await?;
    sqlx::query(
        "UPDATE deliveries SET status = $1, last_status_code = $2, updated_at = $3, attempts = attempts + 1, \
         next_attempt_at = CASE WHEN $4 THEN NULL ELSE next_attempt_at END WHERE id = $5",
    )
    .bind(a.status.as_str())
    .bind(a.response_status.map(i32::from))
    .bind(now)
    .bind(a.succeeded)
    .bind(&a.delivery_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Decides each event against the idempotency keys (`idempotency::decide`).
/// Each key of the write is first claimed for its first event with one
/// upsert, in key order on every node, so two nodes taking the same key at
/// once agree (one waits for the other's commit) instead of failing on the
/// primary key; a live row is left as it is, locked, and read. A claim whose
/// request was then refused is handed on or taken back before the commit.
async fn resolve_idempotency(
    tx: &mut Tx<'_>,
    events: &[NewEvent],
    live_projects: &HashSet<ProjectId>,
    window_ms: i64,
) -> StoreResult<Vec<Inserted>> {
    let mut first_with: HashMap<KeyOf<'_>, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(key) = idempotency::key_of(e)
            && live_projects.contains(&e.project_id)
        {
            first_with.entry(key).or_insert(i);
        }
    }
    let mut keys: Vec<(KeyOf<'_>, usize)> = first_with.into_iter().collect();
    keys.sort_unstable();
    let mut claimed: HashMap<KeyOf<'_>, usize> = HashMap::new();
    let mut stored: HashMap<KeyOf<'_>, StoredKey> = HashMap::new();
    for (key, i) in keys {
        match claim_key(tx, &events[i], window_ms).await? {
            None => {
                claimed.insert(key, i);
            }
            Some(row) => {
                stored.insert(key, row);
            }
        }
    }
    let decisions = idempotency::decide(events, live_projects, &stored);
    settle_claims(tx, events, &decisions.claims, claimed).await?;
    let mut answers = Vec::with_capacity(events.len());
    for answer in decisions.answers {
        answers.push(match answer {
            Answer::Decided(inserted) => inserted,
            Answer::ReplayOfStored(event_id) => {
                let delivery_ids =
                    sqlx::query_scalar("SELECT id FROM deliveries WHERE event_id = $1 ORDER BY id")
                        .bind(&event_id)
                        .fetch_all(&mut **tx)
                        .await?;
                Inserted::Repeated {
                    event_id,
                    delivery_ids,
                }
            }
        });
    }
    Ok(answers)
}

/// Claims `event`'s key (`None`), or answers the live row that holds it.
async fn claim_key(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    window_ms: i64,
) -> StoreResult<Option<StoredKey>> {
    let key = event
        .idempotency_key
        .as_ref()
        .expect("only keyed events claim");
    let won: Option<String> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (project_id, key, event_id, created_at, fingerprint) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (project_id, key) DO UPDATE SET event_id = EXCLUDED.event_id, \
         created_at = EXCLUDED.created_at, fingerprint = EXCLUDED.fingerprint \
         WHERE idempotency_keys.created_at <= EXCLUDED.created_at - $6 \
         RETURNING event_id",
    )
    .bind(&event.project_id)
    .bind(&key.key)
    .bind(&event.id)
    .bind(event.created_at)
    .bind(key.fingerprint.as_bytes())
    .bind(window_ms)
    .fetch_optional(&mut **tx)
    .await?;
    if won.is_some() {
        return Ok(None);
    }
    let (event_id, fingerprint): (EventId, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT event_id, fingerprint FROM idempotency_keys WHERE project_id = $1 AND key = $2",
    )
    .bind(&event.project_id)
    .bind(&key.key)
    .fetch_one(&mut **tx)
    .await?;
    let fingerprint = fingerprint
        .as_deref()
        .map(Fingerprint::from_stored)
        .transpose()?;
    Ok(Some(StoredKey {
        event_id,
        fingerprint,
    }))
}

/// Makes each claimed key's row name the event that keeps it: the one
/// claimed it, another of this write (the first one's request was refused),
/// or none (every request giving it was refused: the row goes, which also
/// forgets the expired row it may have replaced).
async fn settle_claims(
    tx: &mut Tx<'_>,
    events: &[NewEvent],
    kept: &[usize],
    mut claimed: HashMap<KeyOf<'_>, usize>,
) -> StoreResult<()> {
    for &i in kept {
        let e = &events[i];
        let key = idempotency::key_of(e).expect("a claim has a key");
        if claimed.remove(&key) == Some(i) {
            continue;
        }
        let fingerprint = e.idempotency_key.as_ref().map(|k| k.fingerprint.as_bytes());
        sqlx::query(
            "UPDATE idempotency_keys SET event_id = $3, created_at = $4, fingerprint = $5 \
             WHERE project_id = $1 AND key = $2",
        )
        .bind(key.0)
        .bind(key.1)
        .bind(&e.id)
        .bind(e.created_at)
        .bind(fingerprint)
        .execute(&mut **tx)
        .await?;
    }
    for ((project_id, key), _) in claimed {
        sqlx::query("DELETE FROM idempotency_keys WHERE project_id = $1 AND key = $2")
            .bind(project_id)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The projects of this batch that still exist, locked against deletion
/// until the commit: an event of a project deleted a moment ago (on any
/// node) is answered `ProjectGone` rather than failing the whole batch.
async fn live_projects(tx: &mut Tx<'_>, events: &[NewEvent]) -> StoreResult<HashSet<ProjectId>> {
    let wanted: HashSet<&str> = events.iter().map(|e| e.project_id.as_str()).collect();
    let wanted: Vec<&str> = wanted.into_iter().collect();
    let live: Vec<ProjectId> =
        sqlx::query_scalar("SELECT id FROM projects WHERE id = ANY($1) FOR KEY SHARE")
            .bind(&wanted)
            .fetch_all(&mut **tx)
            .await?;
    Ok(live.into_iter().collect())
}

async fn insert_event_rows(tx: &mut Tx<'_>, events: &[&NewEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut projects = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut objects = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut tests = Vec::with_capacity(events.len());
    let mut created = Vec::with_capacity(events.len());
    for e in events {
        ids.push(e.id.as_str());
        projects.push(e.project_id.as_str());
        types.push(e.event_type.as_str());
        objects.push(e.object.as_ref().map(to_json));
        payloads.push(e.payload.as_str());
        tests.push(e.is_test);
        created.push(e.created_at);
    }
    sqlx::query(
        "INSERT INTO events (id, project_id, event_type, object, payload, is_test, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bigint[])",
    )
    .bind(&ids)
    .bind(&projects)
    .bind(&types)
    .bind(&objects)
    .bind(&payloads)
    .bind(&tests)
    .bind(&created)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the deliveries, leased to this node. Deliveries to a webhook
/// deleted meanwhile (another node's routing may lag by a moment) are left
/// out instead of failing the batch on the foreign key; the webhooks that
/// remain are locked against deletion until the commit.
async fn insert_delivery_rows(
    tx: &mut Tx<'_>,
    events: &[&NewEvent],
    node: &str,
) -> StoreResult<()> {
    let wanted: HashSet<&str> = events
        .iter()
        .flat_map(|e| e.deliveries.iter().map(|d| d.webhook_id.as_str()))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut wanted: Vec<&str> = wanted.into_iter().collect();
    wanted.sort_unstable();
    let live: Vec<WebhookId> =
        sqlx::query_scalar("SELECT id FROM webhooks WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
            .bind(&wanted)
            .fetch_all(&mut **tx)
            .await?;
    let live: HashSet<WebhookId> = live.into_iter().collect();
    let mut ids = Vec::new();
    let mut projects = Vec::new();
    let mut event_ids = Vec::new();
    let mut webhooks = Vec::new();
    let mut types = Vec::new();
    let mut tests = Vec::new();
    let mut due = Vec::new();
    let mut leases = Vec::new();
    let mut created = Vec::new();
    for e in events {
        for d in e.deliveries.iter().filter(|d| live.contains(&d.webhook_id)) {
            ids.push(d.id.as_str());
            projects.push(e.project_id.as_str());
            event_ids.push(e.id.as_str());
            webhooks.push(d.webhook_id.as_str());
            types.push(e.event_type.as_str());
            tests.push(e.is_test);
            due.push(d.due_at(e));
            leases.push(d.lease_until(e));
            created.push(e.created_at);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO deliveries (id, project_id, event_id, webhook_id, event_type, is_test, \
         next_attempt_at, lease_until, created_at, status, attempts, lease_owner, updated_at) \
         SELECT v.*, 'pending', 0, CASE WHEN v.lease_until IS NULL THEN NULL ELSE $10 END, \
         v.created_at FROM UNNEST($1::text[], $2::text[], $3::text[], \
         $4::text[], $5::text[], $6::bool[], $7::bigint[], $8::bigint[], $9::bigint[]) \
         AS v(id, project_id, event_id, webhook_id, event_type, is_test, next_attempt_at, lease_until, created_at)",
    )
    .bind(&ids)
    .bind(&projects)
    .bind(&event_ids)
    .bind(&webhooks)
    .bind(&types)
    .bind(&tests)
    .bind(&due)
    .bind(&leases)
    .bind(&created)
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Attempt rows for deliveries deleted meanwhile (webhook or project gone)
/// are dropped, rather than failing the whole batch on a foreign key. The
/// attempt number comes from the delivery's own count, so automatic and
/// manual attempts never share a number.
async fn insert_attempt_rows(tx: &mut Tx<'_>, attempts: &[&AttemptRecord]) -> StoreResult<()> {
    let n = attempts.len();
    let mut delivery = Vec::with_capacity(n);
    let mut webhook = Vec::with_capacity(n);
    let mut manual = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut duration = Vec::with_capacity(n);
    let mut url = Vec::with_capacity(n);
    let mut req_headers = Vec::with_capacity(n);
    let mut req_body = Vec::with_capacity(n);
    let mut succeeded = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut resp_headers = Vec::with_capacity(n);
    let mut resp_body = Vec::with_capacity(n);
    let mut truncated = Vec::with_capacity(n);
    let mut error_kind = Vec::with_capacity(n);
    let mut error_message = Vec::with_capacity(n);
    let mut next = Vec::with_capacity(n);
    for a in attempts {
        delivery.push(a.delivery_id.as_str());
        webhook.push(a.webhook_id.as_str());
        manual.push(a.manual);
        started.push(a.started_at);
        duration.push(a.duration_ms);
        url.push(a.request_url.as_str());
        req_headers.push(a.request_headers.as_str());
        req_body.push(a.request_body.as_deref());
        succeeded.push(a.succeeded);
        status.push(a.response_status.map(i32::from));
        resp_headers.push(a.response_headers.as_deref());
        resp_body.push(a.response_body.as_deref());
        truncated.push(a.response_truncated);
        error_kind.push(a.error_kind.as_deref());
        error_message.push(a.error_message.as_deref());
        next.push(a.next_attempt_at);
    }
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, webhook_id, manual, started_at, duration_ms, \
         request_url, request_headers, request_body, succeeded, response_status, response_headers, \
         response_body, response_truncated, error_kind, error_message, next_attempt_at) \
         SELECT v.delivery_id, d.attempts + 1, v.webhook_id, v.manual, v.started_at, v.duration_ms, \
                v.request_url, v.request_headers, v.request_body, v.succeeded, v.response_status, \
                v.response_headers, v.response_body, v.response_truncated, v.error_kind, \
                v.error_message, v.next_attempt_at \
         FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::bigint[], $5::bigint[], $6::text[], \
                     $7::text[], $8::text[], $9::bool[], $10::int[], $11::text[], $12::text[], \
                     $13::bool[], $14::text[], $15::text[], $16::bigint[]) WITH ORDINALITY \
              AS v(delivery_id, webhook_id, manual, started_at, duration_ms, request_url, \
                   request_headers, request_body, succeeded, response_status, response_headers, \
                   response_body, response_truncated, error_kind, error_message, next_attempt_at, ord) \
         JOIN deliveries d ON d.id = v.delivery_id \
         ORDER BY v.ord",
    )
    .bind(&delivery)
    .bind(&webhook)
    .bind(&manual)
    .bind(&started)
    .bind(&duration)
    .bind(&url)
    .bind(&req_headers)
    .bind(&req_body)
    .bind(&succeeded)
    .bind(&status)
    .bind(&resp_headers)
    .bind(&resp_body)
    .bind(&truncated)
    .bind(&error_kind)
    .bind(&error_message)
    .bind(&next)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Splits a batch into rounds in which each delivery appears once, in order.
/// One `UPDATE … FROM UNNEST` changes a row once however often its id is
/// listed, and every listed attempt would read the same count: two outcomes
/// of one delivery (its lease ran out and it was claimed again) must go in
/// one after the other. Nearly every batch is a single round.
fn one_per_delivery(attempts: &[AttemptRecord]) -> Vec<Vec<&AttemptRecord>> {
    let mut rounds: Vec<Vec<&AttemptRecord>> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(attempts.len());
    for a in attempts {
        let times = seen.entry(a.delivery_id.as_str()).or_insert(0);
        if rounds.len() == *times {
            rounds.push(Vec::new());
        }
        rounds[*times].push(a);
        *times += 1;
    }
    rounds
}

/// One statement: each delivery takes the state its attempt led to.
async fn update_delivery_states(
    tx: &mut Tx<'_>,
    attempts: &[&AttemptRecord],
    now: i64,
    node: &str,
) -> StoreResult<()> {
    let ids: Vec<&str> = attempts.iter().map(|a| a.delivery_id.as_str()).collect();
    let statuses: Vec<&str> = attempts.iter().map(|a| a.status.as_str()).collect();
    let next: Vec<Option<i64>> = attempts.iter().map(|a| a.next_attempt_at).collect();
    let leases: Vec<Option<i64>> = attempts.iter().map(|a| a.lease_until).collect();
    let codes: Vec<Option<i32>> = attempts
        .iter()
        .map(|a| a.response_status.map(i32::from))
        .collect();
    // A delivery that succeeded meanwhile (a redeliver) stays succeeded; one
    // paused meanwhile (its webhook was disabled) stays paused unless this
    // attempt succeeded. A short retry stays leased to this node.
    sqlx::query(
        "UPDATE deliveries SET \
         status = CASE WHEN deliveries.status = 'succeeded' THEN 'succeeded' \
                       WHEN deliveries.status = 'paused' AND v.status <> 'succeeded' THEN 'paused' \
                       ELSE v.status END, \
         next_attempt_at = CASE WHEN deliveries.status IN ('succeeded', 'paused') THEN NULL \
                                ELSE v.next_attempt_at END, \
         attempts = deliveries.attempts + 1, lease_until = v.lease_until, \
         lease_owner = CASE WHEN v.lease_until IS NULL THEN NULL ELSE $6 END, \
         last_status_code = v.code, updated_at = $7 \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::int[]) \
              AS v(id, status, next_attempt_at, lease_until, code) \
         WHERE deliveries.id = v.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&next)
    .bind(&leases)
    .bind(&codes)
    .bind(node)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
