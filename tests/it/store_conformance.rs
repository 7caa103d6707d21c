//! One conformance suite for every store: each test below is written once
//! against `&dyn Store` and runs twice, as `sqlite::<name>` (a temp data
//! directory) and `postgres::<name>` (a fresh database on the PostgreSQL at
//! 127.0.0.1:5432, created for the test and dropped after it).
//!
//! The PostgreSQL half never skips: without a server it fails and says so.
//! `cargo test --test store_conformance postgres::` runs one half.

use std::collections::HashSet;
use std::sync::Arc;

use mlhook::catalog::{Catalog, ObjectRef};
use mlhook::ids::{DeliveryId, EventId, ProjectId, TokenId, WebhookId, now_millis};
use mlhook::secrets::SecretBox;
use mlhook::sources::{PreviousSecret, Source, SourceKind, SourceRejection};
use mlhook::store::{
    AttemptRecord, AuditRecord, Deferral, DeliveryFilter, DeliveryStatus, EventFilter, Fingerprint,
    IdempotencyKey, Inserted, MetricCounts, NewDelivery, NewEvent, PgOptions, PostgresStore,
    Project, SqliteStore, Store, StoreError, StoreResult, TokenKind, TokenRecord,
};
use mlhook::webhook::{PreviousSigningKey, Webhook};
use serde_json::json;

use crate::common::pg::TestDatabase;

const KEY: [u8; 32] = [7; 32];
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Generates, for each test function, `sqlite::<name>` and `postgres::<name>`.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fixture = super::Fixture::sqlite().await;
                    super::$test(&fixture).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fixture = super::Fixture::postgres().await;
                    super::$test(&fixture).await;
                }
            )*
        }
    };
}

conformance!(
    projects,
    tokens,
    audit_log,
    webhooks_and_sealed_secrets,
    another_secret_key_is_refused,
    idempotency_keys,
    idempotency_key_reused_with_another_request,
    idempotency_requests_are_refused_whole,
    idempotency_keys_from_before_fingerprints,
    project_deleted_meanwhile,
    webhook_deleted_meanwhile,
    claims_and_leases,
    deferred_deliveries,
    two_claimers_never_share_a_delivery,
    attempts_and_delivery_states,
    two_outcomes_of_one_delivery_in_a_batch,
    manual_attempts,
    list_filters_and_cursor_paging,
    webhook_stats,
    disable_pause_recover,
    purge,
    replay_deliveries,
    sources,
    metric_counts,
);

/// Where a test's data lives; dropped (directory removed, database dropped)
/// after the test.
enum Backing {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

struct Fixture {
    store: Arc<dyn Store>,
    backing: Backing,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), Arc::new(SecretBox::new(KEY)))
            .await
            .expect("SQLite store opens");
        Fixture {
            store: Arc::new(store),
            backing: Backing::Sqlite(dir),
        }
    }

    async fn postgres() -> Fixture {
        let db = TestDatabase::create().await;
        let store = PostgresStore::connect(&pg_options(&db.url), Arc::new(SecretBox::new(KEY)))
            .await
            .expect("PostgreSQL store opens");
        Fixture {
            store: Arc::new(store),
            backing: Backing::Postgres(db),
        }
    }

    /// Another handle on the same data, with `key`: what a second node (or
    /// the next process) opens.
    async fn open_again(&self, key: [u8; 32]) -> StoreResult<Arc<dyn Store>> {
        let secrets = Arc::new(SecretBox::new(key));
        Ok(match &self.backing {
            Backing::Sqlite(dir) => Arc::new(SqliteStore::open(dir.path(), secrets).await?),
            Backing::Postgres(db) => {
                Arc::new(PostgresStore::connect(&pg_options(&db.url), secrets).await?)
            }
        })
    }

    /// Text as stored, read past the store: what a copy of the database shows.
    async fn raw_text(&self, sql: &str) -> Vec<Option<String>> {
        match &self.backing {
            Backing::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("mlhook.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            Backing::Postgres(db) => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
        }
    }
}

impl Fixture {
    /// Runs `sql` past the store: what an older release left in the database.
    async fn raw_execute(&self, sql: &str) {
        match &self.backing {
            Backing::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("mlhook.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backing::Postgres(db) => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }
}

fn pg_options(url: &str) -> PgOptions {
    PgOptions {
        pool_size: 4,
        ..PgOptions::new(url)
    }
}

// ---- Builders ----

/// An id of `prefix` created at `millis` (ids are time-ordered).
fn id_at<Id: From<String>>(prefix: &str, millis: i64) -> Id {
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}_{millis:012x}{}", &random[12..]).into()
}

fn project(id: &str) -> Project {
    let now = now_millis();
    Project {
        id: id.into(),
        name: format!("Project {id}"),
        link_base_url: None,
        created_at: now,
        updated_at: now,
    }
}

async fn with_project(store: &dyn Store, id: &str) {
    store.create_project(&project(id)).await.unwrap();
}

fn webhook(project_id: &str, config: serde_json::Value) -> Webhook {
    let catalog = Catalog::builtin();
    let input = serde_json::from_value(config).expect("webhook input");
    Webhook::create(input, &project_id.into(), &catalog, now_millis()).expect("valid webhook")
}

async fn with_webhook(store: &dyn Store, project_id: &str) -> Webhook {
    let w = webhook(
        project_id,
        json!({"url": "https://example.com/hook", "events": ["*"]}),
    );
    store.create_webhook(&w).await.unwrap();
    w
}

/// An event at `millis` with one delivery per webhook, leased until `lease_until`.
fn event_at(project_id: &str, webhooks: &[&WebhookId], millis: i64, lease_until: i64) -> NewEvent {
    NewEvent {
        id: id_at("evt", millis),
        project_id: project_id.into(),
        event_type: "MODEL_VERSION_CREATED".into(),
        object: Some(ObjectRef {
            object_type: "model".into(),
            name: Some("churn".into()),
            version: None,
        }),
        payload: r#"{"registryModelName":"churn","version":"3"}"#.into(),
        created_at: millis,
        idempotency_key: None,
        deliveries: webhooks
            .iter()
            .map(|w| NewDelivery {
                id: id_at("msg", millis),
                webhook_id: (*w).clone(),
                deferred_to: None,
            })
            .collect(),
        lease_until,
        is_test: false,
        request: 0,
    }
}

/// `event` with idempotency key `key`, fingerprinted as ingest does.
fn with_key(event: NewEvent, key: &str) -> NewEvent {
    let fingerprint = Fingerprint::of(&event.event_type, event.object.as_ref(), &event.payload);
    NewEvent {
        idempotency_key: Some(IdempotencyKey {
            key: key.into(),
            fingerprint,
        }),
        ..event
    }
}

/// Stores one event now, not leased (due at once); answers its delivery ids.
async fn due_event(
    store: &dyn Store,
    project_id: &str,
    webhooks: &[&WebhookId],
) -> Vec<DeliveryId> {
    let event = event_at(project_id, webhooks, now_millis(), 0);
    store
        .insert_events(std::slice::from_ref(&event), 0)
        .await
        .unwrap();
    event.deliveries.into_iter().map(|d| d.id).collect()
}

fn attempt(
    delivery_id: &DeliveryId,
    webhook_id: &WebhookId,
    status: DeliveryStatus,
) -> AttemptRecord {
    let succeeded = status == DeliveryStatus::Succeeded;
    AttemptRecord {
        delivery_id: delivery_id.clone(),
        webhook_id: webhook_id.clone(),
        attempt: 1,
        manual: false,
        started_at: now_millis(),
        duration_ms: 12,
        request_url: "https://example.com/hook".into(),
        request_headers: r#"{"webhook-id":"x","authorization":"********"}"#.into(),
        request_body: None,
        succeeded,
        response_status: Some(if succeeded { 200 } else { 500 }),
        response_headers: Some(r#"{"content-type":"text/plain"}"#.into()),
        response_body: Some(if succeeded { "ok" } else { "boom" }.into()),
        response_truncated: false,
        error_kind: (!succeeded).then(|| "http_status".to_string()),
        error_message: (!succeeded).then(|| "500 Internal Server Error".to_string()),
        status,
        next_attempt_at: None,
        lease_until: None,
    }
}

async fn delivery_status(store: &dyn Store, project_id: &str, id: &DeliveryId) -> String {
    store
        .get_delivery(&project_id.into(), id)
        .await
        .unwrap()
        .expect("delivery exists")
        .status
}

fn ids_of(due: &[mlhook::store::DueDelivery]) -> Vec<DeliveryId> {
    due.iter().map(|d| d.delivery_id.clone()).collect()
}

// ---- The tests ----

async fn projects(f: &Fixture) {
    let s = &*f.store;
    let alpha = project("alpha");
    s.create_project(&alpha).await.unwrap();
    assert!(matches!(
        s.create_project(&alpha).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_project(&project("beta")).await.unwrap();
    assert_eq!(
        s.get_project(&"alpha".into()).await.unwrap(),
        Some(alpha.clone())
    );
    assert_eq!(s.get_project(&"nope".into()).await.unwrap(), None);
    let ids: Vec<ProjectId> = s
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);

    let changed = Project {
        name: "Alpha team".into(),
        link_base_url: Some("https://app.valohai.com".into()),
        updated_at: alpha.updated_at + 5,
        ..alpha.clone()
    };
    s.update_project(&changed).await.unwrap();
    assert_eq!(s.get_project(&"alpha".into()).await.unwrap(), Some(changed));

    assert!(s.delete_project(&"alpha".into()).await.unwrap());
    assert!(!s.delete_project(&"alpha".into()).await.unwrap());
    assert_eq!(s.get_project(&"alpha".into()).await.unwrap(), None);
}

async fn tokens(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let now = now_millis();
    let token = |id: TokenId, project: Option<&str>, kind, revoked_at| TokenRecord {
        token_hash: format!("hash-of-{id}"),
        prefix: "mlh_abcdef".into(),
        name: Some(format!("token {id}")),
        id,
        project_id: project.map(ProjectId::from),
        kind,
        created_at: now,
        revoked_at,
    };
    assert!(!s.has_admin_token().await.unwrap());
    s.insert_token(&token(id_at("tok", now), None, TokenKind::Admin, Some(now)))
        .await
        .unwrap();
    assert!(
        !s.has_admin_token().await.unwrap(),
        "a revoked admin token does not count"
    );
    s.insert_token(&token(id_at("tok", now + 1), None, TokenKind::Admin, None))
        .await
        .unwrap();
    assert!(s.has_admin_token().await.unwrap());

    let write = token(id_at("tok", now + 2), Some("p"), TokenKind::Write, None);
    let read = token(id_at("tok", now + 3), Some("p"), TokenKind::Read, None);
    s.insert_token(&read).await.unwrap();
    s.insert_token(&write).await.unwrap();
    let found = s.find_token(&write.token_hash).await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.kind, found.project_id.as_deref()),
        (write.id.as_str(), TokenKind::Write, Some("p"))
    );
    assert_eq!(found.name, write.name);
    assert!(s.find_token("unknown").await.unwrap().is_none());

    assert!(
        !s.revoke_token(&"other".into(), &write.id, now + 10)
            .await
            .unwrap()
    );
    assert!(
        s.revoke_token(&"p".into(), &write.id, now + 10)
            .await
            .unwrap()
    );
    assert!(
        !s.revoke_token(&"p".into(), &write.id, now + 11)
            .await
            .unwrap(),
        "already revoked"
    );
    let listed = s.list_tokens(&"p".into()).await.unwrap();
    let summary: Vec<(TokenId, Option<i64>)> = listed
        .iter()
        .map(|t| (t.id.clone(), t.revoked_at))
        .collect();
    assert_eq!(
        summary,
        [(write.id.clone(), Some(now + 10)), (read.id.clone(), None)],
        "oldest first, revoked ones included"
    );
    // A deleted project takes its tokens with it.
    s.delete_project(&"p".into()).await.unwrap();
    assert!(s.find_token(&read.token_hash).await.unwrap().is_none());
}

async fn audit_log(f: &Fixture) {
    let s = &*f.store;
    let now = now_millis();
    let record = |i: i64, project: &str| AuditRecord {
        id: id_at("aud", now + i),
        project_id: Some(project.into()),
        at: now + i,
        actor: "mlh_ab12cd (write)".into(),
        action: "webhook.updated".into(),
        target_id: format!("wh_{i}"),
        changes: json!({"url": {"from": "a", "to": "b"}, "secret": "changed", "n": i}),
    };
    let records: Vec<AuditRecord> = (0..4).map(|i| record(i, "p")).collect();
    for r in &records {
        s.append_audit(r).await.unwrap();
    }
    s.append_audit(&record(9, "other")).await.unwrap();
    let page = s.list_audit(&"p".into(), None, 3).await.unwrap();
    assert_eq!(
        page,
        vec![records[3].clone(), records[2].clone(), records[1].clone()]
    );
    let rest = s
        .list_audit(&"p".into(), Some(&records[1].id), 3)
        .await
        .unwrap();
    assert_eq!(rest, vec![records[0].clone()]);
    assert!(
        s.list_audit(&"nobody".into(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn webhooks_and_sealed_secrets(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    with_project(s, "q").await;
    let mut w = webhook(
        "p",
        json!({
            "name": "releases", "url": "https://example.com/hook", "events": ["MODEL_VERSION_CREATED"],
            "scope": {"object_type": "model", "object_name": "churn"},
            "secret": "comet-secret-value",
            "headers": [{"key": "X-Api-Key", "value": "s3cr3t-header", "protected": true},
                        {"key": "X-Team", "value": "fraud"}],
            "rate_limit": {"per_second": 5}
        }),
    );
    w.previous_signing = Some(PreviousSigningKey {
        key: "whsec_cHJldmlvdXMta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXM=".into(),
        expires_at: now_millis() + DAY,
    });
    s.create_webhook(&w).await.unwrap();
    let other = with_webhook(s, "q").await;

    let read = s
        .get_webhook(&"p".into(), &w.id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        format!("{read:?}"),
        format!("{w:?}"),
        "every field round trips"
    );
    assert!(s.get_webhook(&"q".into(), &w.id).await.unwrap().is_none());

    // At rest, every secret is sealed: none is readable in the database.
    let sql = format!(
        "SELECT secret FROM webhooks WHERE id = '{0}' UNION ALL SELECT signing_secret FROM webhooks WHERE id = '{0}' \
         UNION ALL SELECT previous_signing_secret FROM webhooks WHERE id = '{0}' \
         UNION ALL SELECT headers FROM webhooks WHERE id = '{0}'",
        w.id
    );
    let stored = f.raw_text(&sql).await;
    let stored: Vec<String> = stored.into_iter().map(Option::unwrap).collect();
    for value in &stored[..3] {
        assert!(value.starts_with("sealed:v1:"), "{value}");
    }
    let all = stored.join(" ");
    for clear in [
        "comet-secret-value",
        "s3cr3t-header",
        w.signing_secret.as_str(),
        "cHJldmlvdXMta2V5",
    ] {
        assert!(!all.contains(clear), "{clear} is stored in clear");
    }
    assert!(
        all.contains("fraud"),
        "unprotected header values stay readable"
    );

    let mut listed: Vec<WebhookId> = s
        .list_webhooks(&"p".into())
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(listed, [w.id.clone()]);
    listed = s
        .list_all_webhooks()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    let mut expected = vec![w.id.clone(), other.id.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    let mut changed = read.clone();
    changed.url = "https://example.org/new".into();
    changed.enabled = false;
    changed.disabled_reason = Some("by hand".into());
    changed.secret = None;
    changed.rotate_signing_key(None, HOUR, now_millis());
    s.update_webhook(&changed).await.unwrap();
    let reread = s.get_webhook(&"p".into(), &w.id).await.unwrap().unwrap();
    assert_eq!(format!("{reread:?}"), format!("{changed:?}"));
    assert_eq!(
        reread.previous_signing.as_ref().map(|p| p.key.as_str()),
        Some(w.signing_secret.as_str()),
        "the rotated-out key is kept (sealed) and opened again"
    );

    assert!(!s.delete_webhook(&"q".into(), &w.id).await.unwrap());
    assert!(s.delete_webhook(&"p".into(), &w.id).await.unwrap());
    assert!(s.get_webhook(&"p".into(), &w.id).await.unwrap().is_none());
    s.delete_project(&"q".into()).await.unwrap();
    assert!(s.list_all_webhooks().await.unwrap().is_empty());
}

async fn another_secret_key_is_refused(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = webhook(
        "p",
        json!({"url": "https://example.com/hook", "events": ["*"], "secret": "top-secret"}),
    );
    s.create_webhook(&w).await.unwrap();
    let wrong = f.open_again([8; 32]).await;
    assert!(
        matches!(wrong, Err(StoreError::WrongSecretKey)),
        "a start with another key fails at open"
    );
    let again = f.open_again(KEY).await.expect("the same key opens");
    let read = again
        .get_webhook(&"p".into(), &w.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.secret.as_deref(), Some("top-secret"));
}

async fn idempotency_keys(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    with_project(s, "q").await;
    let wp = with_webhook(s, "p").await;
    let wq = with_webhook(s, "q").await;
    let now = now_millis();
    let window = 10 * MINUTE;
    let keyed = |project: &str, hook: &WebhookId, key: Option<&str>, at: i64| {
        let event = event_at(project, &[hook], at, at + MINUTE);
        match key {
            Some(key) => with_key(event, key),
            None => event,
        }
    };
    let first = keyed("p", &wp.id, Some("k1"), now);
    let plain = keyed("p", &wp.id, None, now);
    let repeat_in_batch = keyed("p", &wp.id, Some("k1"), now);
    let other_project = keyed("q", &wq.id, Some("k1"), now);
    let answers = s
        .insert_events(
            &[
                first.clone(),
                plain.clone(),
                repeat_in_batch.clone(),
                other_project.clone(),
            ],
            window,
        )
        .await
        .unwrap();
    let repeat_of_first = Inserted::Repeated {
        event_id: first.id.clone(),
        delivery_ids: vec![first.deliveries[0].id.clone()],
    };
    assert_eq!(
        answers,
        vec![
            Inserted::Created,
            Inserted::Created,
            repeat_of_first.clone(),
            Inserted::Created
        ]
    );
    assert!(
        s.get_event(&"p".into(), &repeat_in_batch.id)
            .await
            .unwrap()
            .is_none()
    );

    // Later batches: twice the same key (both the first answer), and the
    // key again once its window has passed (a new event).
    let later = keyed("p", &wp.id, Some("k1"), now + MINUTE);
    let later_too = keyed("p", &wp.id, Some("k1"), now + MINUTE);
    let answers = s
        .insert_events(&[later.clone(), later_too], window)
        .await
        .unwrap();
    assert_eq!(answers, vec![repeat_of_first.clone(), repeat_of_first]);
    assert!(s.get_event(&"p".into(), &later.id).await.unwrap().is_none());

    let expired = keyed("p", &wp.id, Some("k1"), now + window + MINUTE);
    let answers = s
        .insert_events(std::slice::from_ref(&expired), window)
        .await
        .unwrap();
    assert_eq!(answers, vec![Inserted::Created]);
    let after = keyed("p", &wp.id, Some("k1"), now + window + 2 * MINUTE);
    let answers = s.insert_events(&[after], window).await.unwrap();
    assert_eq!(
        answers,
        vec![Inserted::Repeated {
            event_id: expired.id.clone(),
            delivery_ids: vec![expired.deliveries[0].id.clone()],
        }]
    );

    // What was created is stored whole: the event and its delivery.
    let stored = s.get_event(&"p".into(), &first.id).await.unwrap().unwrap();
    assert_eq!(stored.payload, first.payload);
    assert_eq!(stored.object, first.object);
    assert_eq!(stored.created_at, first.created_at);
    let deliveries = s.event_deliveries(&plain.id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, "pending");
    assert_eq!(deliveries[0].event_type, "MODEL_VERSION_CREATED");
}

/// `event` about another model version: the same type, another payload.
fn other_payload(event: NewEvent) -> NewEvent {
    NewEvent {
        payload: r#"{"registryModelName":"churn","version":"4"}"#.into(),
        ..event
    }
}

/// In request number `n` of an `insert_events`.
fn in_request(n: u32, event: NewEvent) -> NewEvent {
    NewEvent {
        request: n,
        ..event
    }
}

async fn idempotency_key_reused_with_another_request(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let window = 10 * MINUTE;
    let at = |ms: i64| event_at("p", &[&w.id], now + ms, now + MINUTE);
    let first = with_key(at(0), "abc-123");
    assert_eq!(
        s.insert_events(std::slice::from_ref(&first), window)
            .await
            .unwrap(),
        vec![Inserted::Created]
    );
    let repeat_of_first = Inserted::Repeated {
        event_id: first.id.clone(),
        delivery_ids: vec![first.deliveries[0].id.clone()],
    };

    // The same request again: the first answer.
    let same = with_key(at(1), "abc-123");
    assert_eq!(
        s.insert_events(std::slice::from_ref(&same), window)
            .await
            .unwrap(),
        vec![repeat_of_first.clone()]
    );

    // Another payload, type or object with the key: refused, nothing stored.
    let payload = with_key(other_payload(at(2)), "abc-123");
    let event_type = with_key(
        NewEvent {
            event_type: "MODEL_VERSION_DELETED".into(),
            ..at(3)
        },
        "abc-123",
    );
    let object = with_key(
        NewEvent {
            object: None,
            ..at(4)
        },
        "abc-123",
    );
    for refused in [&payload, &event_type, &object] {
        assert_eq!(
            s.insert_events(std::slice::from_ref(refused), window)
                .await
                .unwrap(),
            vec![Inserted::KeyReused],
            "{}",
            refused.event_type
        );
        assert!(
            s.get_event(&"p".into(), &refused.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.get_delivery(&"p".into(), &refused.deliveries[0].id)
                .await
                .unwrap()
                .is_none()
        );
    }
    // The key still answers its first request.
    assert_eq!(
        s.insert_events(&[with_key(at(5), "abc-123")], window)
            .await
            .unwrap(),
        vec![repeat_of_first]
    );

    // Within one write: the first taker of a key decides for the others.
    let taker = in_request(1, with_key(at(6), "in-write"));
    let twin = in_request(2, with_key(at(7), "in-write"));
    let changed = in_request(3, with_key(other_payload(at(8)), "in-write"));
    let answers = s
        .insert_events(&[taker.clone(), twin, changed.clone()], window)
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            Inserted::Created,
            Inserted::Repeated {
                event_id: taker.id.clone(),
                delivery_ids: vec![taker.deliveries[0].id.clone()],
            },
            Inserted::KeyReused
        ]
    );
    assert!(
        s.get_event(&"p".into(), &changed.id)
            .await
            .unwrap()
            .is_none()
    );

    // Once the window has passed, the key is free for any request.
    let later = with_key(other_payload(at(window + MINUTE)), "abc-123");
    assert_eq!(
        s.insert_events(std::slice::from_ref(&later), window)
            .await
            .unwrap(),
        vec![Inserted::Created]
    );
}

async fn idempotency_requests_are_refused_whole(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let window = 10 * MINUTE;
    let at = |ms: i64| event_at("p", &[&w.id], now + ms, now + MINUTE);
    let taken = with_key(at(0), "taken");
    s.insert_events(std::slice::from_ref(&taken), window)
        .await
        .unwrap();

    // Request 1 reuses "taken" with another payload: all of it is refused,
    // its keys "fresh" and "shared" are not remembered. Request 2, in the
    // same write, takes "shared" itself; request 3 is untouched.
    let fresh = in_request(1, with_key(at(1), "fresh"));
    let shared_first = in_request(1, with_key(at(2), "shared"));
    let plain = in_request(1, at(3));
    let reuse = in_request(1, with_key(other_payload(at(4)), "taken"));
    let shared_then = in_request(2, with_key(other_payload(at(5)), "shared"));
    let other = in_request(3, at(6));
    let answers = s
        .insert_events(
            &[
                fresh.clone(),
                shared_first.clone(),
                plain.clone(),
                reuse.clone(),
                shared_then.clone(),
                other.clone(),
            ],
            window,
        )
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            Inserted::Withheld,
            Inserted::Withheld,
            Inserted::Withheld,
            Inserted::KeyReused,
            Inserted::Created,
            Inserted::Created
        ]
    );
    for gone in [&fresh, &shared_first, &plain, &reuse] {
        assert!(s.get_event(&"p".into(), &gone.id).await.unwrap().is_none());
    }
    for kept in [&shared_then, &other] {
        assert!(s.get_event(&"p".into(), &kept.id).await.unwrap().is_some());
    }

    // "fresh" was not remembered: another request may take it; "shared"
    // belongs to request 2's event.
    let fresh_again = with_key(other_payload(at(7)), "fresh");
    let shared_again = in_request(1, with_key(other_payload(at(8)), "shared"));
    let answers = s
        .insert_events(&[fresh_again, shared_again], window)
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            Inserted::Created,
            Inserted::Repeated {
                event_id: shared_then.id.clone(),
                delivery_ids: vec![shared_then.deliveries[0].id.clone()],
            }
        ]
    );
}

async fn idempotency_keys_from_before_fingerprints(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let window = 10 * MINUTE;
    let first = with_key(event_at("p", &[&w.id], now, 0), "legacy");
    s.insert_events(std::slice::from_ref(&first), window)
        .await
        .unwrap();
    // What a release before fingerprints stored.
    f.raw_execute("UPDATE idempotency_keys SET fingerprint = NULL")
        .await;
    let changed = with_key(other_payload(event_at("p", &[&w.id], now + 1, 0)), "legacy");
    assert_eq!(
        s.insert_events(std::slice::from_ref(&changed), window)
            .await
            .unwrap(),
        vec![Inserted::Repeated {
            event_id: first.id.clone(),
            delivery_ids: vec![first.deliveries[0].id.clone()],
        }]
    );
    assert!(
        s.get_event(&"p".into(), &changed.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn project_deleted_meanwhile(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let live = event_at("p", &[&w.id], now, 0);
    let gone = event_at("gone", &[], now, 0);
    let answers = s
        .insert_events(&[gone.clone(), live.clone()], 0)
        .await
        .unwrap();
    assert_eq!(answers, vec![Inserted::ProjectGone, Inserted::Created]);
    assert!(
        s.get_event(&"gone".into(), &gone.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.get_event(&"p".into(), &live.id).await.unwrap().is_some());
}

/// Routing happened before a webhook was deleted: the event is stored with
/// its other deliveries; the one to the deleted webhook is left out.
async fn webhook_deleted_meanwhile(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let kept = with_webhook(s, "p").await;
    let deleted = with_webhook(s, "p").await;
    assert!(s.delete_webhook(&"p".into(), &deleted.id).await.unwrap());
    let now = now_millis();
    let event = event_at("p", &[&kept.id, &deleted.id], now, 0);
    let answers = s
        .insert_events(std::slice::from_ref(&event), 0)
        .await
        .unwrap();
    assert_eq!(answers, vec![Inserted::Created]);
    let stored = s.event_deliveries(&event.id).await.unwrap();
    let webhooks: Vec<&str> = stored.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(webhooks, [kept.id.as_str()]);
}

async fn claims_and_leases(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let on = with_webhook(s, "p").await;
    let mut off = webhook(
        "p",
        json!({"url": "https://example.com/off", "events": ["*"], "enabled": false}),
    );
    off.enabled = false;
    s.create_webhook(&off).await.unwrap();
    let now = now_millis();

    // Held by the node that stored it: not claimable while the lease lasts.
    let held = event_at("p", &[&on.id], now - 5, now + MINUTE);
    // Not held (a crash, say), one delivery to an enabled and one to a disabled webhook.
    let free = event_at("p", &[&on.id, &off.id], now - 4, 0);
    // A test send is never due.
    let test = NewEvent {
        is_test: true,
        ..event_at("p", &[&on.id], now - 3, 0)
    };
    s.insert_events(&[held.clone(), free.clone(), test], 0)
        .await
        .unwrap();

    let lease = now + 30_000;
    let due = s.claim_due(now, 100, lease).await.unwrap();
    assert_eq!(ids_of(&due), [free.deliveries[0].id.clone()]);
    let d = &due[0];
    assert_eq!(
        (
            d.webhook_id.as_str(),
            d.project_id.as_str(),
            d.event_id.as_str()
        ),
        (on.id.as_str(), "p", free.id.as_str())
    );
    assert_eq!(
        (d.event_type.as_str(), d.payload.as_str()),
        ("MODEL_VERSION_CREATED", free.payload.as_str())
    );
    assert_eq!((d.attempts, d.retry_base), (0, 0));

    assert!(
        s.claim_due(now, 100, lease).await.unwrap().is_empty(),
        "claimed: leased"
    );
    // Renewed: still not claimable after the first lease ran out.
    s.renew_leases(&[free.deliveries[0].id.clone()], lease + MINUTE)
        .await
        .unwrap();
    assert!(
        s.claim_due(lease + 1, 100, lease + 2)
            .await
            .unwrap()
            .is_empty()
    );
    // Both leases run out: the held one and the renewed one come back.
    let later = lease + MINUTE + 1;
    let due = s.claim_due(later, 100, later + MINUTE).await.unwrap();
    assert_eq!(
        ids_of(&due),
        [held.deliveries[0].id.clone(), free.deliveries[0].id.clone()],
        "oldest due first"
    );

    // Released (a stopping node): claimable at once.
    assert!(s.release_all_leases().await.unwrap() >= 2);
    let due = s.claim_due(later, 1, later + MINUTE).await.unwrap();
    assert_eq!(ids_of(&due), [held.deliveries[0].id.clone()], "limit kept");
    let due = s.claim_due(later, 10, later + MINUTE).await.unwrap();
    assert_eq!(ids_of(&due), [free.deliveries[0].id.clone()]);

    // A retry scheduled ahead is not due before its time.
    let mut retry = attempt(&free.deliveries[0].id, &on.id, DeliveryStatus::Failed);
    retry.next_attempt_at = Some(later + HOUR);
    s.record_attempts(&[retry]).await.unwrap();
    assert!(
        s.claim_due(later + HOUR - 1, 10, later + 2 * HOUR)
            .await
            .unwrap()
            .into_iter()
            .all(|d| d.delivery_id != free.deliveries[0].id)
    );
    let due = s
        .claim_due(later + HOUR, 10, later + 2 * HOUR)
        .await
        .unwrap();
    let retried = due
        .iter()
        .find(|d| d.delivery_id == free.deliveries[0].id)
        .expect("due at its time");
    assert_eq!(retried.attempts, 1);
}

async fn deferred_deliveries(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let on = with_webhook(s, "p").await;
    let now = now_millis();
    // Held by this node (stored with its lease), as a lane's overflow is.
    let held = event_at("p", &[&on.id], now - 5, now + MINUTE);
    let done = event_at("p", &[&on.id], now - 4, now + MINUTE);
    s.insert_events(&[held.clone(), done.clone()], 0)
        .await
        .unwrap();
    let held_id = held.deliveries[0].id.clone();
    let done_id = done.deliveries[0].id.clone();
    s.record_attempts(&[attempt(&done_id, &on.id, DeliveryStatus::Succeeded)])
        .await
        .unwrap();

    let at = now + HOUR;
    let deferrals = [&held_id, &done_id].map(|id| Deferral {
        delivery_id: id.clone(),
        next_attempt_at: at,
    });
    s.defer_deliveries(&deferrals).await.unwrap();

    // Not due before its new time, although its lease is gone.
    assert!(
        s.claim_due(at - 1, 10, at + MINUTE)
            .await
            .unwrap()
            .is_empty()
    );
    let row = s
        .get_delivery(&"p".into(), &held_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.next_attempt_at),
        ("pending", Some(at))
    );
    // Due at its time, free to claim; a finished delivery never comes back.
    let due = s.claim_due(at, 10, at + MINUTE).await.unwrap();
    assert_eq!(ids_of(&due), [held_id]);
    assert_eq!(delivery_status(s, "p", &done_id).await, "succeeded");
    let row = s
        .get_delivery(&"p".into(), &done_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.next_attempt_at, None);

    // Deferred when written (its lane was full): due at its time, and not
    // leased (the event's lease, were it taken, would outlast that time).
    let later = at + HOUR;
    let mut born_deferred = event_at("p", &[&on.id], now - 3, later + DAY);
    born_deferred.deliveries[0].deferred_to = Some(later);
    let deferred_id = born_deferred.deliveries[0].id.clone();
    s.insert_events(&[born_deferred], 0).await.unwrap();
    let row = s
        .get_delivery(&"p".into(), &deferred_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.next_attempt_at),
        ("pending", Some(later))
    );
    let early = s.claim_due(later - 1, 10, later + MINUTE).await.unwrap();
    assert!(!ids_of(&early).contains(&deferred_id));
    let due = s.claim_due(later, 10, later + MINUTE).await.unwrap();
    assert!(ids_of(&due).contains(&deferred_id));
}

async fn two_claimers_never_share_a_delivery(f: &Fixture) {
    let first = f.store.clone();
    with_project(&*first, "p").await;
    let w = with_webhook(&*first, "p").await;
    let now = now_millis();
    let events: Vec<NewEvent> = (0..300)
        .map(|i| event_at("p", &[&w.id], now - 1000 + i, 0))
        .collect();
    first.insert_events(&events, 0).await.unwrap();
    let second = f.open_again(KEY).await.unwrap();

    let claim_all = |store: Arc<dyn Store>| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let due = store.claim_due(now, 7, now + HOUR).await.unwrap();
                if due.is_empty() {
                    return mine;
                }
                mine.extend(ids_of(&due));
                tokio::task::yield_now().await;
            }
        })
    };
    let (a, b) = (claim_all(first.clone()), claim_all(second.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let a_set: HashSet<&DeliveryId> = a.iter().collect();
    let b_set: HashSet<&DeliveryId> = b.iter().collect();
    assert_eq!(a_set.len(), a.len(), "one claimer got a delivery twice");
    assert!(
        a_set.is_disjoint(&b_set),
        "two claimers got the same delivery"
    );
    assert_eq!(
        a.len() + b.len(),
        300,
        "every due delivery was claimed once"
    );
}

async fn attempts_and_delivery_states(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let ids = due_event(s, "p", &[&w.id]).await;
    let more = due_event(s, "p", &[&w.id]).await;
    let third = due_event(s, "p", &[&w.id]).await;
    let paused = due_event(s, "p", &[&w.id]).await;
    let (retrying, done, exhausted) = (&ids[0], &more[0], &third[0]);
    s.pause_deliveries(std::slice::from_ref(&paused[0]))
        .await
        .unwrap();
    let now = now_millis();

    let mut failed = attempt(retrying, &w.id, DeliveryStatus::Failed);
    failed.next_attempt_at = Some(now + 5_000);
    // A short retry: this node keeps it in memory, leased past its time.
    failed.lease_until = Some(now + 65_000);
    failed.request_body = Some("{\"text\":\"rendered\"}".into());
    failed.response_truncated = true;
    let gone = attempt(
        &"msg_deleted_meanwhile".into(),
        &w.id,
        DeliveryStatus::Succeeded,
    );
    s.record_attempts(&[
        failed.clone(),
        attempt(done, &w.id, DeliveryStatus::Succeeded),
        attempt(exhausted, &w.id, DeliveryStatus::Exhausted),
        gone,
    ])
    .await
    .unwrap();

    let row = s
        .get_delivery(&"p".into(), retrying)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts, row.next_attempt_at),
        ("failed", 1, Some(now + 5_000))
    );
    assert_eq!(row.last_status_code, Some(500));
    assert!(row.updated_at >= now);
    let row = s.get_delivery(&"p".into(), done).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts, row.next_attempt_at),
        ("succeeded", 1, None)
    );
    assert_eq!(row.last_status_code, Some(200));
    assert_eq!(delivery_status(s, "p", exhausted).await, "exhausted");

    let log = s.delivery_attempts(retrying).await.unwrap();
    assert_eq!(log.len(), 1);
    let a = &log[0];
    assert_eq!((a.attempt, a.manual, a.succeeded), (1, false, false));
    assert_eq!(a.started_at, failed.started_at);
    assert_eq!(a.duration_ms, 12);
    assert_eq!(a.request_url, failed.request_url);
    assert_eq!(a.request_headers, failed.request_headers);
    assert_eq!(a.request_body, failed.request_body);
    assert_eq!(a.response_status, Some(500));
    assert_eq!(a.response_headers, failed.response_headers);
    assert_eq!(a.response_body.as_deref(), Some("boom"));
    assert!(a.response_truncated);
    assert_eq!(a.error_kind.as_deref(), Some("http_status"));
    assert_eq!(a.error_message, failed.error_message);
    assert_eq!(a.next_attempt_at, Some(now + 5_000));

    // Due, but held in memory by its node until the lease ends.
    assert!(
        s.claim_due(now + 5_001, 10, now + HOUR)
            .await
            .unwrap()
            .is_empty()
    );
    let due = s.claim_due(now + 65_001, 10, now + HOUR).await.unwrap();
    assert_eq!(ids_of(&due), std::slice::from_ref(retrying));
    assert_eq!(due[0].attempts, 1);

    // The second attempt is number 2, listed after the first.
    s.record_attempts(&[attempt(retrying, &w.id, DeliveryStatus::Succeeded)])
        .await
        .unwrap();
    let numbers: Vec<u32> = s
        .delivery_attempts(retrying)
        .await
        .unwrap()
        .iter()
        .map(|a| a.attempt)
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(delivery_status(s, "p", retrying).await, "succeeded");

    // A late failure never undoes a success.
    s.record_attempts(&[attempt(done, &w.id, DeliveryStatus::Failed)])
        .await
        .unwrap();
    let row = s.get_delivery(&"p".into(), done).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.next_attempt_at),
        ("succeeded", None)
    );

    // A paused delivery stays paused on a failure, and succeeds on a success.
    let mut late = attempt(&paused[0], &w.id, DeliveryStatus::Failed);
    late.next_attempt_at = Some(now + 1_000);
    s.record_attempts(&[late]).await.unwrap();
    let row = s
        .get_delivery(&"p".into(), &paused[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.next_attempt_at, row.attempts),
        ("paused", None, 1)
    );
    s.record_attempts(&[attempt(&paused[0], &w.id, DeliveryStatus::Succeeded)])
        .await
        .unwrap();
    assert_eq!(delivery_status(s, "p", &paused[0]).await, "succeeded");
}

/// Its lease ran out while the first send was still out, it was claimed
/// again, and both outcomes reached the recorder in one batch: each is an
/// attempt of its own, and the later one decides the state.
async fn two_outcomes_of_one_delivery_in_a_batch(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let id = &due_event(s, "p", &[&w.id]).await[0];
    let other = &due_event(s, "p", &[&w.id]).await[0];
    let mut failed = attempt(id, &w.id, DeliveryStatus::Failed);
    failed.next_attempt_at = Some(now_millis() + 5_000);
    s.record_attempts(&[
        failed,
        attempt(other, &w.id, DeliveryStatus::Succeeded),
        attempt(id, &w.id, DeliveryStatus::Succeeded),
    ])
    .await
    .unwrap();

    let log = s.delivery_attempts(id).await.unwrap();
    let outcomes: Vec<(u32, bool)> = log.iter().map(|a| (a.attempt, a.succeeded)).collect();
    assert_eq!(outcomes, [(1, false), (2, true)]);
    let row = s.get_delivery(&"p".into(), id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts, row.next_attempt_at),
        ("succeeded", 2, None)
    );
    let row = s.get_delivery(&"p".into(), other).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("succeeded", 1));
}

async fn manual_attempts(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let ids = due_event(s, "p", &[&w.id]).await;
    let now = now_millis();
    let mut failed = attempt(&ids[0], &w.id, DeliveryStatus::Failed);
    failed.next_attempt_at = Some(now + HOUR);
    s.record_attempts(&[failed]).await.unwrap();

    // A failed redeliver changes nothing but the log and the count.
    let mut manual = attempt(&ids[0], &w.id, DeliveryStatus::Failed);
    manual.manual = true;
    s.record_manual_attempt(&manual).await.unwrap();
    let row = s.get_delivery(&"p".into(), &ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts, row.next_attempt_at),
        ("failed", 2, Some(now + HOUR))
    );
    // A successful one finishes the delivery and cancels the scheduled retry.
    let mut manual = attempt(&ids[0], &w.id, DeliveryStatus::Succeeded);
    manual.manual = true;
    s.record_manual_attempt(&manual).await.unwrap();
    let row = s.get_delivery(&"p".into(), &ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.attempts, row.next_attempt_at),
        ("succeeded", 3, None)
    );
    let log: Vec<(u32, bool)> = s
        .delivery_attempts(&ids[0])
        .await
        .unwrap()
        .iter()
        .map(|a| (a.attempt, a.manual))
        .collect();
    assert_eq!(log, [(1, false), (2, true), (3, true)]);
}

async fn list_filters_and_cursor_paging(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    with_project(s, "q").await;
    let w1 = with_webhook(s, "p").await;
    let w2 = with_webhook(s, "p").await;
    let wq = with_webhook(s, "q").await;
    let base = now_millis() - 10 * MINUTE;
    let mut events = Vec::new();
    for i in 0..10 {
        let mut e = event_at("p", &[&w1.id, &w2.id], base + i * MINUTE, 0);
        if i % 2 == 1 {
            e.event_type = "MODEL_STATUS_CHANGED".into();
        }
        events.push(e);
    }
    events.push(event_at("q", &[&wq.id], base, 0));
    s.insert_events(&events, 0).await.unwrap();
    let filter = |limit| DeliveryFilter {
        project_id: "p".into(),
        limit,
        ..Default::default()
    };

    // Every delivery of the project, newest first, four per page.
    let mut all_ids: Vec<DeliveryId> = events[..10]
        .iter()
        .flat_map(|e| e.deliveries.iter().map(|d| d.id.clone()))
        .collect();
    all_ids.sort();
    all_ids.reverse();
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list_deliveries(&DeliveryFilter {
                cursor: cursor.clone(),
                ..filter(4)
            })
            .await
            .unwrap();
        assert!(page.len() <= 4);
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|d| d.id.clone());
        paged.extend(page.into_iter().map(|d| d.id));
    }
    assert_eq!(paged, all_ids);

    let count = |f: DeliveryFilter| async move { s.list_deliveries(&f).await.unwrap().len() };
    assert_eq!(
        count(DeliveryFilter {
            webhook_id: Some(w1.id.clone()),
            ..filter(100)
        })
        .await,
        10
    );
    assert_eq!(
        count(DeliveryFilter {
            event_id: Some(events[3].id.clone()),
            ..filter(100)
        })
        .await,
        2
    );
    assert_eq!(
        count(DeliveryFilter {
            event_type: Some("MODEL_STATUS_CHANGED".into()),
            ..filter(100)
        })
        .await,
        10
    );
    // Events 2..=4 by time: since is inclusive, until inclusive to the millisecond.
    assert_eq!(
        count(DeliveryFilter {
            since: Some(base + 2 * MINUTE),
            until: Some(base + 4 * MINUTE),
            ..filter(100)
        })
        .await,
        6
    );
    s.record_attempts(&[attempt(
        &events[0].deliveries[0].id,
        &w1.id,
        DeliveryStatus::Succeeded,
    )])
    .await
    .unwrap();
    let succeeded = s
        .list_deliveries(&DeliveryFilter {
            status: Some(DeliveryStatus::Succeeded),
            ..filter(100)
        })
        .await
        .unwrap();
    assert_eq!(
        succeeded.iter().map(|d| &d.id).collect::<Vec<_>>(),
        [&events[0].deliveries[0].id]
    );
    let row = &succeeded[0];
    assert_eq!(
        (row.project_id.as_str(), row.event_id.as_str()),
        ("p", events[0].id.as_str())
    );
    assert_eq!(
        count(DeliveryFilter {
            status: Some(DeliveryStatus::Pending),
            ..filter(100)
        })
        .await,
        19
    );

    // Events: the same paging and filters.
    let event_filter = EventFilter {
        project_id: "p".into(),
        event_type: Some("MODEL_VERSION_CREATED".into()),
        limit: 3,
        ..Default::default()
    };
    let page = s.list_events(&event_filter).await.unwrap();
    let expected: Vec<&EventId> = [8, 6, 4].iter().map(|i| &events[*i].id).collect();
    assert_eq!(page.iter().map(|e| &e.id).collect::<Vec<_>>(), expected);
    let next = s
        .list_events(&EventFilter {
            cursor: Some(page[2].id.clone()),
            ..event_filter.clone()
        })
        .await
        .unwrap();
    let expected: Vec<&EventId> = [2, 0].iter().map(|i| &events[*i].id).collect();
    assert_eq!(next.iter().map(|e| &e.id).collect::<Vec<_>>(), expected);
    let windowed = s
        .list_events(&EventFilter {
            project_id: "p".into(),
            since: Some(base + 5 * MINUTE),
            until: Some(base + 6 * MINUTE),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        windowed.iter().map(|e| &e.id).collect::<Vec<_>>(),
        [&events[6].id, &events[5].id]
    );
    assert!(!windowed[0].is_test);
}

async fn webhook_stats(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let old = event_at("p", &[&w.id], now - 2 * HOUR, 0);
    let recent: Vec<NewEvent> = (0..4)
        .map(|i| event_at("p", &[&w.id], now - 10 + i, now + HOUR))
        .collect();
    let mut all = recent.clone();
    all.push(old.clone());
    s.insert_events(&all, 0).await.unwrap();
    let delivery = |i: usize| recent[i].deliveries[0].id.clone();
    let mut ok = attempt(&delivery(0), &w.id, DeliveryStatus::Succeeded);
    ok.started_at = now - 100;
    let mut ok_too = attempt(&delivery(1), &w.id, DeliveryStatus::Succeeded);
    ok_too.started_at = now - 50;
    let mut failed = attempt(&delivery(2), &w.id, DeliveryStatus::Failed);
    failed.started_at = now - 70;
    failed.next_attempt_at = Some(now + HOUR);
    s.record_attempts(&[ok, ok_too, failed]).await.unwrap();

    let stats = s.webhook_stats(&w.id, now).await.unwrap();
    assert_eq!(
        (
            stats.last_hour.succeeded,
            stats.last_hour.failed,
            stats.last_hour.pending
        ),
        (2, 1, 1)
    );
    assert_eq!((stats.last_hour.exhausted, stats.last_hour.paused), (0, 0));
    assert_eq!(
        stats.last_day.pending, 2,
        "the two-hour-old delivery counts for the day only"
    );
    assert_eq!(stats.last_success_at, Some(now - 50));
    assert_eq!(stats.last_failure_at, Some(now - 70));
    assert_eq!(s.last_success_at(&w.id).await.unwrap(), Some(now - 50));

    // A later batch moves each time forward only: an older success (a slow
    // attempt recorded late) leaves the newer one, a newer failure replaces
    // the older one, and a batch without successes keeps the last success.
    let mut late = attempt(&delivery(3), &w.id, DeliveryStatus::Succeeded);
    late.started_at = now - 200;
    s.record_attempts(&[late]).await.unwrap();
    let mut newer_failure = attempt(&delivery(2), &w.id, DeliveryStatus::Failed);
    newer_failure.started_at = now - 20;
    newer_failure.next_attempt_at = Some(now + HOUR);
    s.record_attempts(&[newer_failure]).await.unwrap();
    let stats = s.webhook_stats(&w.id, now).await.unwrap();
    assert_eq!(
        (stats.last_success_at, stats.last_failure_at),
        (Some(now - 50), Some(now - 20))
    );
    assert_eq!(s.last_success_at(&w.id).await.unwrap(), Some(now - 50));

    let fresh = with_webhook(s, "p").await;
    assert_eq!(s.last_success_at(&fresh.id).await.unwrap(), None);
    assert_eq!(
        s.webhook_stats(&fresh.id, now).await.unwrap(),
        Default::default()
    );
}

async fn disable_pause_recover(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let events: Vec<NewEvent> = (0..4)
        .map(|i| event_at("p", &[&w.id], now - 4 + i, 0))
        .collect();
    let test = NewEvent {
        is_test: true,
        ..event_at("p", &[&w.id], now, 0)
    };
    let mut all = events.clone();
    all.push(test.clone());
    s.insert_events(&all, 0).await.unwrap();
    let d = |i: usize| events[i].deliveries[0].id.clone();
    let mut failed = attempt(&d(1), &w.id, DeliveryStatus::Failed);
    failed.next_attempt_at = Some(now + HOUR);
    s.record_attempts(&[
        failed,
        attempt(&d(2), &w.id, DeliveryStatus::Succeeded),
        attempt(&d(3), &w.id, DeliveryStatus::Exhausted),
        attempt(&test.deliveries[0].id, &w.id, DeliveryStatus::Exhausted),
    ])
    .await
    .unwrap();

    assert!(
        s.disable_webhook(&w.id, "gone for good", now)
            .await
            .unwrap()
    );
    assert!(
        !s.disable_webhook(&w.id, "again", now + 1).await.unwrap(),
        "already disabled"
    );
    let disabled = s.get_webhook(&"p".into(), &w.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("gone for good"));
    assert_eq!(disabled.disabled_at, Some(now));
    let statuses = |ids: Vec<DeliveryId>| async move {
        let mut out = Vec::new();
        for id in ids {
            let row = s.get_delivery(&"p".into(), &id).await.unwrap().unwrap();
            out.push((row.status, row.next_attempt_at.is_some()));
        }
        out
    };
    let four: Vec<DeliveryId> = (0..4).map(d).collect();
    assert_eq!(
        statuses(four.clone()).await,
        [
            ("paused".to_string(), false),
            ("paused".to_string(), false),
            ("succeeded".to_string(), false),
            ("exhausted".to_string(), false),
        ]
    );
    assert!(
        s.claim_due(now + DAY, 10, now + 2 * DAY)
            .await
            .unwrap()
            .is_empty()
    );

    // Enabled again and recovered: paused and exhausted ones are due now with
    // a fresh schedule; succeeded ones and test sends stay as they are.
    let mut enabled = disabled.clone();
    enabled.enabled = true;
    enabled.disabled_reason = None;
    enabled.disabled_at = None;
    s.update_webhook(&enabled).await.unwrap();
    let recovered = s
        .recover_deliveries(&w.id, now - MINUTE, None, now + 10)
        .await
        .unwrap();
    assert_eq!(recovered, 3);
    for id in [d(0), d(1), d(3)] {
        let row = s.get_delivery(&"p".into(), &id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.next_attempt_at),
            ("pending", Some(now + 10))
        );
        assert_eq!(row.retry_base, row.attempts);
    }
    assert_eq!(delivery_status(s, "p", &d(2)).await, "succeeded");
    assert_eq!(
        delivery_status(s, "p", &test.deliveries[0].id).await,
        "exhausted"
    );
    let due = s.claim_due(now + 10, 10, now + HOUR).await.unwrap();
    assert_eq!(due.len(), 3);
    assert_eq!(
        due.iter()
            .find(|x| x.delivery_id == d(3))
            .map(|x| x.retry_base),
        Some(1)
    );
    // Outside the window: nothing.
    assert_eq!(
        s.recover_deliveries(&w.id, now + MINUTE, None, now)
            .await
            .unwrap(),
        0
    );

    // Paused by a client's disable: pending and failed ones only.
    assert_eq!(s.pause_webhook_deliveries(&w.id).await.unwrap(), 3);
    assert_eq!(
        statuses(four)
            .await
            .iter()
            .filter(|(s, _)| s == "paused")
            .count(),
        3
    );
}

async fn purge(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w = with_webhook(s, "p").await;
    let now = now_millis();
    let old_done = event_at("p", &[&w.id], now - 40 * DAY, 0);
    let old_done_too = event_at("p", &[&w.id], now - 39 * DAY, 0);
    let old_pending = event_at("p", &[&w.id], now - 38 * DAY, 0);
    let new_done = event_at("p", &[&w.id], now - DAY, 0);
    let keyed = with_key(event_at("p", &[], now - 2 * DAY, 0), "old-key");
    s.insert_events(
        &[
            old_done.clone(),
            old_done_too.clone(),
            old_pending.clone(),
            new_done.clone(),
            keyed.clone(),
        ],
        DAY,
    )
    .await
    .unwrap();
    let finished: Vec<AttemptRecord> = [&old_done, &old_done_too, &new_done]
        .iter()
        .map(|e| attempt(&e.deliveries[0].id, &w.id, DeliveryStatus::Succeeded))
        .collect();
    s.record_attempts(&finished).await.unwrap();

    let cutoff = now - 30 * DAY;
    assert_eq!(s.purge_before(cutoff, now - 3 * DAY, 1).await.unwrap(), 1);
    assert_eq!(s.purge_before(cutoff, now - 3 * DAY, 500).await.unwrap(), 1);
    assert_eq!(s.purge_before(cutoff, now - 3 * DAY, 500).await.unwrap(), 0);
    for gone in [&old_done, &old_done_too] {
        assert!(s.get_event(&"p".into(), &gone.id).await.unwrap().is_none());
        let id = &gone.deliveries[0].id;
        assert!(s.get_delivery(&"p".into(), id).await.unwrap().is_none());
        assert!(s.delivery_attempts(id).await.unwrap().is_empty());
    }
    assert!(
        s.get_event(&"p".into(), &old_pending.id)
            .await
            .unwrap()
            .is_some(),
        "unfinished deliveries keep their event"
    );
    assert!(
        s.get_event(&"p".into(), &new_done.id)
            .await
            .unwrap()
            .is_some()
    );

    // The idempotency key is remembered until its cutoff, then forgotten.
    let again = |at: i64| with_key(event_at("p", &[], at, 0), "old-key");
    let answer = s.insert_events(&[again(now)], 3 * DAY).await.unwrap();
    assert!(matches!(answer[0], Inserted::Repeated { .. }));
    s.purge_before(cutoff, now - DAY, 500).await.unwrap();
    let answer = s.insert_events(&[again(now)], 3 * DAY).await.unwrap();
    assert_eq!(answer, vec![Inserted::Created]);
}

async fn replay_deliveries(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let w1 = with_webhook(s, "p").await;
    let w2 = with_webhook(s, "p").await;
    let ids = due_event(s, "p", &[&w1.id]).await;
    let event_id = s
        .get_delivery(&"p".into(), &ids[0])
        .await
        .unwrap()
        .unwrap()
        .event_id;
    let event = s.get_event(&"p".into(), &event_id).await.unwrap().unwrap();
    let now = now_millis();
    let replayed = NewDelivery::new(w2.id.clone());
    s.insert_deliveries(&event, std::slice::from_ref(&replayed), now + HOUR)
        .await
        .unwrap();
    let rows = s.event_deliveries(&event_id).await.unwrap();
    assert_eq!(
        rows.iter().map(|d| &d.id).collect::<Vec<_>>(),
        [&ids[0], &replayed.id]
    );
    let row = &rows[1];
    assert_eq!(
        (row.webhook_id.as_str(), row.status.as_str(), row.attempts),
        (w2.id.as_str(), "pending", 0)
    );
    assert_eq!(row.event_type, event.event_type);
    // Leased to the node that replays it: claimed by nobody else meanwhile.
    let due = s.claim_due(now + 1, 10, now + HOUR).await.unwrap();
    assert_eq!(ids_of(&due), [ids[0].clone()]);
    let due = s
        .claim_due(now + HOUR + 1, 10, now + 2 * HOUR)
        .await
        .unwrap();
    assert!(ids_of(&due).contains(&replayed.id));

    // An event deleted since it was read (its project went) gets none.
    s.delete_project(&"p".into()).await.unwrap();
    let late = NewDelivery::new(w2.id.clone());
    let answer = s
        .insert_deliveries(&event, std::slice::from_ref(&late), now + HOUR)
        .await;
    assert!(matches!(answer, Err(StoreError::NotFound)), "{answer:?}");
    assert!(s.event_deliveries(&event_id).await.unwrap().is_empty());
}

async fn sources(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    with_project(s, "q").await;
    let now = now_millis();
    let source = |at: i64, project: &str| Source {
        id: id_at("src", at),
        project_id: project.into(),
        kind: SourceKind::Mlflow,
        name: format!("mlflow {at}"),
        secret: Some("a-shared-secret-of-length".into()),
        tolerance_secs: 300,
        workspace_name: Some("ml".into()),
        previous_secret: None,
        created_at: at,
        updated_at: at,
    };
    let first = source(now, "p");
    let second = Source {
        secret: None,
        workspace_name: None,
        ..source(now + 1, "p")
    };
    s.create_source(&second).await.unwrap();
    s.create_source(&first).await.unwrap();
    s.create_source(&source(now + 2, "q")).await.unwrap();
    assert_eq!(
        s.list_sources(&"p".into()).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        s.get_source(&"p".into(), &first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(s.get_source(&"q".into(), &first.id).await.unwrap(), None);
    let stored = f
        .raw_text(&format!(
            "SELECT secret FROM sources WHERE id = '{}'",
            first.id
        ))
        .await;
    let stored = stored[0].as_deref().unwrap_or_default();
    assert!(
        stored.starts_with("sealed:v1:") && !stored.contains("a-shared-secret"),
        "a source's secret is sealed at rest: {stored}"
    );

    // A change of secret keeps the old one, sealed too, with its expiry.
    let changed = Source {
        name: "renamed".into(),
        secret: Some("the-next-shared-secret".into()),
        previous_secret: Some(PreviousSecret {
            secret: "a-shared-secret-of-length".into(),
            expires_at: now + HOUR,
        }),
        updated_at: now + 5,
        ..first.clone()
    };
    assert!(s.update_source(&changed).await.unwrap());
    assert_eq!(
        s.get_source(&"p".into(), &first.id).await.unwrap(),
        Some(changed.clone())
    );
    let stored = f
        .raw_text(&format!(
            "SELECT previous_secret FROM sources WHERE id = '{}'",
            first.id
        ))
        .await;
    let stored = stored[0].as_deref().unwrap_or_default();
    assert!(
        stored.starts_with("sealed:v1:") && !stored.contains("a-shared-secret"),
        "the replaced secret is sealed at rest too: {stored}"
    );
    let elsewhere = Source {
        project_id: "q".into(),
        ..changed.clone()
    };
    assert!(
        !s.update_source(&elsewhere).await.unwrap(),
        "another project's id"
    );
    assert!(s.update_source(&first).await.unwrap());

    assert!(
        s.record_source_delivery(&first.id, "d-1", &"evt_1".into(), now - DAY, now - 7 * DAY)
            .await
            .unwrap()
    );
    assert!(
        !s.record_source_delivery(&first.id, "d-1", &"evt_2".into(), now, now - 7 * DAY)
            .await
            .unwrap(),
        "a repeat keeps the first record"
    );
    assert_eq!(
        s.source_delivery_accepted(&first.id, "d-1").await.unwrap(),
        Some(now - DAY)
    );
    assert!(
        s.record_source_delivery(&first.id, "d-2", &"evt_3".into(), now, now - 7 * DAY)
            .await
            .unwrap()
    );
    // Recording forgets what was accepted before the retention.
    assert!(
        s.record_source_delivery(&second.id, "d-3", &"evt_4".into(), now, now - HOUR)
            .await
            .unwrap()
    );
    assert_eq!(
        s.source_delivery_accepted(&first.id, "d-1").await.unwrap(),
        None
    );

    let rejection = |i: i64| SourceRejection {
        source_id: first.id.clone(),
        at: now + i,
        status: 401,
        code: "invalid_signature".into(),
        reason: format!("signature {i} does not match"),
        delivery_id: Some(format!("d-{i}")),
        event_type: (i % 2 == 0).then(|| "registered_model.created".to_string()),
        body: (i % 2 == 1).then(|| format!(r#"{{"entity": "model_version", "n": {i}}}"#)),
    };
    for i in 0..5 {
        s.record_source_rejection(&rejection(i), 3).await.unwrap();
    }
    let ghost = SourceRejection {
        source_id: "src_none".into(),
        ..rejection(9)
    };
    s.record_source_rejection(&ghost, 3).await.unwrap();
    assert_eq!(
        s.source_rejections(&first.id, 10).await.unwrap(),
        vec![rejection(4), rejection(3), rejection(2)],
        "the newest three are kept"
    );
    assert_eq!(
        s.source_rejections(&first.id, 1).await.unwrap(),
        vec![rejection(4)]
    );

    let activity = s.source_activity(&first.id, now - HOUR).await.unwrap();
    assert_eq!(
        (activity.accepted, activity.last_accepted_at),
        (1, Some(now))
    );
    assert_eq!(
        (activity.rejected, activity.last_rejected_at),
        (3, Some(now + 4))
    );

    assert!(s.delete_source(&"p".into(), &first.id).await.unwrap());
    assert!(!s.delete_source(&"p".into(), &first.id).await.unwrap());
    assert!(s.source_rejections(&first.id, 10).await.unwrap().is_empty());
    assert_eq!(
        s.source_activity(&first.id, 0).await.unwrap(),
        Default::default()
    );
}

async fn metric_counts(f: &Fixture) {
    let s = &*f.store;
    with_project(s, "p").await;
    let on = with_webhook(s, "p").await;
    let mut off = webhook(
        "p",
        json!({"url": "https://example.com/off", "events": ["*"], "enabled": false}),
    );
    off.enabled = false;
    s.create_webhook(&off).await.unwrap();
    let now = now_millis();
    let events: Vec<NewEvent> = (0..3)
        .map(|i| event_at("p", &[&on.id], now - 10 + i, 0))
        .collect();
    s.insert_events(&events, 0).await.unwrap();
    let mut later = attempt(&events[0].deliveries[0].id, &on.id, DeliveryStatus::Failed);
    later.next_attempt_at = Some(now + HOUR);
    s.record_attempts(&[
        later,
        attempt(
            &events[1].deliveries[0].id,
            &on.id,
            DeliveryStatus::Succeeded,
        ),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.count_for_metrics(now).await.unwrap(),
        MetricCounts {
            pending: 2,
            due: 1,
            webhooks_enabled: 1,
            webhooks_disabled: 1,
        }
    );
}

/// A database from before migration 4 keeps each webhook's last success and
/// failure: the upgrade fills `webhook_activity` from the attempts it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_keeps_last_success_and_failure() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("mlhook.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let mut up_to_3 = sqlx::migrate!("migrations/sqlite");
    up_to_3.migrations = up_to_3
        .migrations
        .iter()
        .filter(|m| m.version <= 3)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    up_to_3.run(&pool).await.unwrap();

    let w = webhook(
        "p",
        json!({"url": "https://example.com/hook", "events": ["*"]}),
    );
    let quiet = webhook(
        "p",
        json!({"url": "https://example.com/quiet", "events": ["*"]}),
    );
    sqlx::query("INSERT INTO projects (id, name, created_at, updated_at) VALUES ('p', 'P', 0, 0)")
        .execute(&pool)
        .await
        .unwrap();
    for hook in [&w, &quiet] {
        sqlx::query(
            "INSERT INTO webhooks (id, project_id, name, url, format, events, scope, headers, \
             signing_secret, created_at, updated_at) VALUES (?, 'p', 'hook', ?, 'json', ?, ?, '[]', ?, 0, 0)",
        )
        .bind(&hook.id)
        .bind(&hook.url)
        .bind(serde_json::to_string(&hook.events).unwrap())
        .bind(serde_json::to_string(&hook.scope).unwrap())
        .bind(&hook.signing_secret)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO events (id, project_id, event_type, payload, created_at) \
         VALUES ('evt_1', 'p', 'MODEL_VERSION_CREATED', '{}', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO deliveries (id, project_id, event_id, webhook_id, event_type, status, created_at, updated_at) \
         VALUES ('msg_1', 'p', 'evt_1', ?, 'MODEL_VERSION_CREATED', 'failed', 0, 0)",
    )
    .bind(&w.id)
    .execute(&pool)
    .await
    .unwrap();
    for (attempt, started_at, succeeded) in [(1, 100, 1), (2, 300, 1), (3, 200, 0), (4, 400, 0)] {
        sqlx::query(
            "INSERT INTO attempts (delivery_id, attempt, webhook_id, started_at, duration_ms, \
             request_url, request_headers, succeeded) VALUES ('msg_1', ?, ?, ?, 1, 'u', '{}', ?)",
        )
        .bind(attempt)
        .bind(&w.id)
        .bind(started_at)
        .bind(succeeded)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = SqliteStore::open(dir.path(), Arc::new(SecretBox::new(KEY)))
        .await
        .expect("the upgrade applies");
    let stats = store.webhook_stats(&w.id, now_millis()).await.unwrap();
    assert_eq!(
        (stats.last_success_at, stats.last_failure_at),
        (Some(300), Some(400))
    );
    assert_eq!(store.last_success_at(&w.id).await.unwrap(), Some(300));
    assert_eq!(store.last_success_at(&quiet.id).await.unwrap(), None);
}
