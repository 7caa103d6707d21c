//! The storage interface. Everything the service keeps goes through `Store`;
//! SQLite is the embedded default, PostgreSQL the shared one (several nodes
//! on one database). Both pass the same conformance suite
//! (tests/it/store_conformance.rs).
//!
//! The store knows rows, not HTTP and not formats. Writes on the hot path take
//! batches (`insert_events`, `record_attempts`) so callers can group-commit.

pub mod deadline;
mod idempotency;
pub mod migrate;
pub mod notify;
mod postgres;
mod rows;
pub mod sealed;
mod sqlite;

use async_trait::async_trait;

use crate::catalog::ObjectRef;
use crate::ids::{DeliveryId, EventId, ProjectId, SourceId, TokenId, WebhookId};
use crate::webhook::Webhook;

pub use idempotency::{Fingerprint, IdempotencyKey};
pub use postgres::{PgOptions, PostgresStore};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the embedded store's own writer connection (not sqlx's).
    #[error("database error: {0}")]
    Embedded(String),
    #[error("the store's writer has stopped")]
    WriterStopped,
    /// The disk holding the store has no space left: nothing was written.
    #[error("the store's disk is full: {0}")]
    NoSpace(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the secret key does not open this database's secrets: start with the MLHOOK_SECRET_KEY (or key file) it was written with"
    )]
    WrongSecretKey,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The write failed for lack of space (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`): it may succeed once space is freed.
    pub fn is_no_space(&self) -> bool {
        match self {
            StoreError::NoSpace(_) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("13" | "53100"))
            }
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::NoSpace(err.to_string()),
            _ => StoreError::Embedded(err.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// Where relative links in payloads point (e.g. `https://app.valohai.com`).
    pub link_base_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Admin,
    Write,
    Read,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Write => "write",
            TokenKind::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "admin" => Some(TokenKind::Admin),
            "write" => Some(TokenKind::Write),
            "read" => Some(TokenKind::Read),
            _ => None,
        }
    }
}

/// A token as stored: its hash, never the token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: TokenId,
    pub project_id: Option<ProjectId>,
    pub kind: TokenKind,
    pub token_hash: String,
    pub prefix: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// One change to a project, a token or a webhook, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: String,
    pub project_id: Option<ProjectId>,
    pub at: i64,
    /// Who: the token's prefix and kind (never the token).
    pub actor: String,
    /// What, e.g. `webhook.updated`.
    pub action: String,
    pub target_id: String,
    /// JSON: the fields that changed, secrets only as "changed".
    pub changes: serde_json::Value,
}

/// One accepted event and the deliveries it fans out to, written together.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub id: EventId,
    pub project_id: ProjectId,
    pub event_type: String,
    pub object: Option<ObjectRef>,
    pub payload: String,
    pub created_at: i64,
    pub idempotency_key: Option<IdempotencyKey>,
    pub deliveries: Vec<NewDelivery>,
    /// Deliveries are leased to this node until then: it sends them from memory.
    pub lease_until: i64,
    /// A test send: shown in the log as such, never retried.
    pub is_test: bool,
    /// Consecutive events of one `insert_events` with the same number are one
    /// client request, stored whole or not at all (see `Inserted::Withheld`).
    pub request: u32,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    /// Due then rather than at once, and not leased: its webhook's lane was
    /// full when the event was routed, so the delivery waits in the store
    /// (not in memory) until the lane can expect room.
    pub deferred_to: Option<i64>,
}

impl NewDelivery {
    /// A delivery of the event to `webhook_id`, due at once, with a new id.
    pub fn new(webhook_id: WebhookId) -> NewDelivery {
        NewDelivery {
            id: DeliveryId::generate(),
            webhook_id,
            deferred_to: None,
        }
    }

    /// When the delivery is first due, for an event created at `created_at`:
    /// never for a test send (recorded after it happened).
    pub fn due_at(&self, event: &NewEvent) -> Option<i64> {
        (!event.is_test).then_some(self.deferred_to.unwrap_or(event.created_at))
    }

    /// The lease it is written with: none when deferred (the scheduler claims
    /// it when due), else this node's, which sends it from memory.
    pub fn lease_until(&self, event: &NewEvent) -> Option<i64> {
        self.deferred_to.is_none().then_some(event.lease_until)
    }
}

/// The answer to one `NewEvent` in a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    Created,
    /// The idempotency key was seen within its window with the same request
    /// (a *repeat*): the first answer.
    Repeated {
        event_id: EventId,
        delivery_ids: Vec<DeliveryId>,
    },
    /// The idempotency key was given within its window with a different
    /// request (type, object or payload); nothing was written for it.
    KeyReused,
    /// Another event of its request was refused (`KeyReused`); nothing was
    /// written for it either.
    Withheld,
    /// The project was deleted meanwhile; nothing was written for it.
    ProjectGone,
}

/// Status of a delivery, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// Failed at least once; another attempt is scheduled.
    Failed,
    Exhausted,
    /// Waiting for its disabled webhook to be enabled and recovered.
    Paused,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Exhausted => "exhausted",
            DeliveryStatus::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            Self::Pending,
            Self::Succeeded,
            Self::Failed,
            Self::Exhausted,
            Self::Paused,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// A delivery ready to be attempted, with what the sender needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub retry_base: u32,
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub project_id: ProjectId,
    pub event_id: EventId,
    pub event_type: String,
    pub payload: String,
    pub attempts: u32,
}

/// A delivery a full lane could not take, and when it is due again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub delivery_id: DeliveryId,
    pub next_attempt_at: i64,
}

/// The outcome of one attempt and the delivery state it leads to.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub attempt: u32,
    /// A redeliver or test: recorded, never retried.
    pub manual: bool,
    pub started_at: i64,
    pub duration_ms: i64,
    pub request_url: String,
    /// JSON object of the request headers, secrets masked.
    pub request_headers: String,
    /// The body, when it is not the event's payload itself (other formats, results left out).
    pub request_body: Option<String>,
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    /// Still held in memory by this node until then (a short retry), or released.
    pub lease_until: Option<i64>,
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: EventId,
    pub project_id: ProjectId,
    pub event_type: String,
    pub object: Option<ObjectRef>,
    pub payload: String,
    pub is_test: bool,
    pub created_at: i64,
}

/// A delivery row as the log shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub project_id: ProjectId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    pub status: String,
    pub is_test: bool,
    pub attempts: u32,
    pub retry_base: u32,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<u16>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One recorded attempt, as the log shows it.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub attempt: u32,
    pub manual: bool,
    pub started_at: i64,
    pub duration_ms: i64,
    pub request_url: String,
    pub request_headers: String,
    pub request_body: Option<String>,
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub next_attempt_at: Option<i64>,
}

/// Filters of the delivery log; pages go newest first, before `cursor`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub project_id: ProjectId,
    pub webhook_id: Option<WebhookId>,
    pub event_id: Option<EventId>,
    pub event_type: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The last id of the previous page.
    pub cursor: Option<DeliveryId>,
    pub limit: u32,
}

/// Filters of the event list; newest first, before `cursor`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub project_id: ProjectId,
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub cursor: Option<EventId>,
    pub limit: u32,
}

/// Deliveries of one webhook by status, created since a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusCounts {
    pub pending: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub exhausted: u64,
    pub paused: u64,
}

/// What `webhook_stats` reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookStats {
    pub last_hour: StatusCounts,
    pub last_day: StatusCounts,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
}

/// What `count_for_metrics` reads: the queue's depth and the webhooks by state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricCounts {
    /// Unfinished deliveries: a next attempt is scheduled.
    pub pending: u64,
    /// Of those, the ones whose next attempt time has come.
    pub due: u64,
    pub webhooks_enabled: u64,
    pub webhooks_disabled: u64,
}

/// What a node's heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeBeat {
    /// One process owns the store: no other node to tell.
    Alone,
    /// This node's record was renewed.
    Renewed,
    /// This node's first heartbeat: its record is written.
    Registered,
    /// Another node found this one dead meanwhile: its leases are free for
    /// the others, and it goes on under a new name.
    TakenForDead,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether the store takes writes now, for readiness: `ping` shows only
    /// that it answers reads. A store that knows of no reason to refuse
    /// answers `Ok` without writing.
    async fn check_writable(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Forgets the leases of deliveries still to be sent (no other lease is
    /// ever read): a single-node store calls it at start, when no other
    /// process can hold one.
    async fn release_all_leases(&self) -> StoreResult<u64>;
    /// Records, by the database's clock, that this node is alive (several
    /// nodes: see `delivery::liveness`). One process on its own store has
    /// nobody to tell.
    async fn node_heartbeat(&self) -> StoreResult<NodeBeat> {
        Ok(NodeBeat::Alone)
    }
    /// Marks dead the other nodes whose last heartbeat is older than
    /// `timeout`, which frees all their leases at once; answers their names.
    async fn release_dead_nodes(&self, _timeout: std::time::Duration) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    async fn create_project(&self, project: &Project) -> StoreResult<()>;
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>>;
    async fn update_project(&self, project: &Project) -> StoreResult<()>;
    async fn delete_project(&self, id: &ProjectId) -> StoreResult<bool>;

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    async fn has_admin_token(&self) -> StoreResult<bool>;
    /// A project's tokens, oldest first, revoked ones included.
    async fn list_tokens(&self, project_id: &ProjectId) -> StoreResult<Vec<TokenRecord>>;
    /// Marks a token revoked; false when the project has no such live token.
    async fn revoke_token(
        &self,
        project_id: &ProjectId,
        token_id: &TokenId,
        at: i64,
    ) -> StoreResult<bool>;

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// A project's audit records, newest first, older than `before` (an id).
    async fn list_audit(
        &self,
        project_id: &ProjectId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    async fn create_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn delete_webhook(&self, project_id: &ProjectId, id: &WebhookId) -> StoreResult<bool>;
    async fn get_webhook(
        &self,
        project_id: &ProjectId,
        id: &WebhookId,
    ) -> StoreResult<Option<Webhook>>;
    async fn list_webhooks(&self, project_id: &ProjectId) -> StoreResult<Vec<Webhook>>;
    async fn list_all_webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// Writes a batch of events with their deliveries in one transaction;
    /// answers each in order. Idempotency keys are honoured for `window_ms`:
    /// a key repeated with the same request is answered with the first event,
    /// with another request it is refused along with the rest of its request.
    async fn insert_events(
        &self,
        events: &[NewEvent],
        window_ms: i64,
    ) -> StoreResult<Vec<Inserted>>;
    /// Claims up to `limit` due deliveries not leased by anyone, leasing them
    /// until `lease_until`.
    async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_until: i64,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Extends the lease of deliveries this node still holds.
    async fn renew_leases(&self, delivery_ids: &[DeliveryId], lease_until: i64) -> StoreResult<()>;
    /// Moves unfinished deliveries this node holds to a later time and drops
    /// their lease: they wait in the store, not in memory, until then.
    async fn defer_deliveries(&self, deferrals: &[Deferral]) -> StoreResult<()>;
    /// Writes attempt rows and the resulting delivery states in one transaction.
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> StoreResult<()>;
    async fn get_event(
        &self,
        project_id: &ProjectId,
        event_id: &EventId,
    ) -> StoreResult<Option<EventRow>>;
    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<EventRow>>;
    async fn list_deliveries(&self, filter: &DeliveryFilter) -> StoreResult<Vec<DeliveryRow>>;
    async fn get_delivery(
        &self,
        project_id: &ProjectId,
        delivery_id: &DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>>;
    async fn delivery_attempts(&self, delivery_id: &DeliveryId) -> StoreResult<Vec<AttemptRow>>;
    async fn webhook_stats(&self, webhook_id: &WebhookId, now: i64) -> StoreResult<WebhookStats>;
    /// Adds deliveries to an existing event (a replay), leased to this node;
    /// `NotFound` when the event was deleted since it was read.
    async fn insert_deliveries(
        &self,
        event: &EventRow,
        deliveries: &[NewDelivery],
        lease_until: i64,
    ) -> StoreResult<()>;
    /// Records a redeliver or test attempt and sets the delivery's status;
    /// a success also cancels any scheduled retry.
    async fn record_manual_attempt(&self, attempt: &AttemptRecord) -> StoreResult<()>;
    /// Marks deliveries paused (their webhook is disabled): no attempt until recovered.
    async fn pause_deliveries(&self, delivery_ids: &[DeliveryId]) -> StoreResult<()>;
    /// Disables an enabled webhook with a reason and pauses its unfinished
    /// deliveries, in one transaction; false when it was not enabled.
    async fn disable_webhook(
        &self,
        webhook_id: &WebhookId,
        reason: &str,
        at: i64,
    ) -> StoreResult<bool>;
    /// Pauses the unfinished deliveries of a webhook (disabled by a client).
    async fn pause_webhook_deliveries(&self, webhook_id: &WebhookId) -> StoreResult<u64>;
    /// Re-queues a webhook's failed, exhausted and paused deliveries created
    /// in the window, due now with a fresh retry schedule; answers how many.
    async fn recover_deliveries(
        &self,
        webhook_id: &WebhookId,
        since: i64,
        until: Option<i64>,
        now: i64,
    ) -> StoreResult<u64>;
    /// When a webhook last had a successful attempt.
    async fn last_success_at(&self, webhook_id: &WebhookId) -> StoreResult<Option<i64>>;
    /// Deletes up to `limit` events older than `cutoff` whose deliveries are all
    /// finished (with their deliveries and attempts), and expired idempotency keys.
    async fn purge_before(
        &self,
        cutoff: i64,
        idempotency_cutoff: i64,
        limit: u32,
    ) -> StoreResult<u64>;
    /// The deliveries of one event.
    async fn event_deliveries(&self, event_id: &EventId) -> StoreResult<Vec<DeliveryRow>>;

    /// Gauges for `/metrics`: read from indexes (deliveries_due), never a
    /// scan of the deliveries table; called at most every 10 s.
    async fn count_for_metrics(&self, now: i64) -> StoreResult<MetricCounts>;

    // ---- Sources (MLflow): see `crate::sources`. Plain SQL, for every store. ----

    async fn create_source(&self, source: &crate::sources::Source) -> StoreResult<()>;
    /// A project's sources, oldest first.
    async fn list_sources(
        &self,
        project_id: &ProjectId,
    ) -> StoreResult<Vec<crate::sources::Source>>;
    async fn get_source(
        &self,
        project_id: &ProjectId,
        id: &SourceId,
    ) -> StoreResult<Option<crate::sources::Source>>;
    /// Writes a changed source; `false` when it is gone.
    async fn update_source(&self, source: &crate::sources::Source) -> StoreResult<bool>;
    /// Deletes a source with its accepted delivery ids and its log.
    async fn delete_source(&self, project_id: &ProjectId, id: &SourceId) -> StoreResult<bool>;
    /// When the source accepted this delivery id, if it did (and still remembers it).
    /// A source's delivery ids are the sending platform's own (its
    /// `X-MLflow-Delivery-Id`, say), not mlhook's `DeliveryId`s: plain text.
    async fn source_delivery_accepted(
        &self,
        source_id: &SourceId,
        delivery_id: &str,
    ) -> StoreResult<Option<i64>>;
    /// Remembers an accepted delivery id (a repeat leaves the first record)
    /// and forgets every source's ids accepted before `forget_before`;
    /// answers whether the id was new.
    async fn record_source_delivery(
        &self,
        source_id: &SourceId,
        delivery_id: &str,
        event_id: &EventId,
        accepted_at: i64,
        forget_before: i64,
    ) -> StoreResult<bool>;
    /// Appends a refused request to the source's log, keeping its newest `keep`.
    async fn record_source_rejection(
        &self,
        rejection: &crate::sources::SourceRejection,
        keep: u32,
    ) -> StoreResult<()>;
    /// The source's log, newest first.
    async fn source_rejections(
        &self,
        source_id: &SourceId,
        limit: u32,
    ) -> StoreResult<Vec<crate::sources::SourceRejection>>;
    /// Accepted ids since `since` and the log's size, with the latest times.
    async fn source_activity(
        &self,
        source_id: &SourceId,
        since: i64,
    ) -> StoreResult<crate::sources::SourceActivity>;
}
