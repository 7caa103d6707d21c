//! The shared store: PostgreSQL, for one node or several on one database.
//!
//! Same rows and semantics as `SqliteStore` (the conformance suite runs the
//! same tests on both); what differs is that several processes may share the
//! tables:
//! - leases carry the node that holds them (`lease_owner`), so a node renews
//!   and releases only its own, and never clears another's at start;
//! - `claim_due` locks with `FOR UPDATE SKIP LOCKED`: two nodes scanning at
//!   the same moment never claim the same delivery;
//! - writes that concurrent nodes can race on (idempotency keys, a project or
//!   webhook deleted on another node) are settled by the database, not by a
//!   check in memory;
//! - a trigger announces every project and webhook change on the channel
//!   `mlhook_routing` (see `notify`), so every node's routing follows.
//!
//! Durability: PostgreSQL's default `synchronous_commit = on` — a commit is
//! flushed to the WAL before it returns, so an event answered 202 survives a
//! crash of the database server. Batches go in as arrays (`UNNEST`), so each
//! hot-path statement has one fixed text whatever the batch size (`hot`).
//! A node's heartbeat and the marks of dead nodes are in `nodes`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, QueryBuilder, Row};

use super::rows::{DueColumns, Shared, decode, id_bound};
use super::*;
use crate::secrets::SecretBox;
use crate::sources::{Source, SourceActivity, SourceRejection};
use crate::webhook::Webhook;

mod hot;
mod nodes;

/// The embedded migrations of migrations/postgres (the twins of migrations/sqlite).
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a caller waits for a pooled connection by default before the
/// store answers an error (the API's 503): an unreachable database fails
/// fast, not at the client's timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the database and how to use it.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?sslmode=…`
    pub url: String,
    /// Connections this node keeps at most.
    pub pool_size: u32,
    /// A statement running longer is cancelled by the server (0: no limit).
    pub statement_timeout: Duration,
    /// Longest wait for a connection; a caller with a deadline (see
    /// `deadline`) waits no longer than that either.
    pub acquire_timeout: Duration,
    /// Apply pending migrations at open; otherwise only check none is pending.
    pub run_migrations: bool,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            pool_size: 10,
            statement_timeout: Duration::from_secs(30),
            acquire_timeout: ACQUIRE_TIMEOUT,
            run_migrations: true,
        }
    }

    fn connect_options(&self) -> StoreResult<PgConnectOptions> {
        let ms = self.statement_timeout.as_millis().to_string();
        Ok(PgConnectOptions::from_str(&self.url)?
            .application_name("mlhook")
            .options([
                ("statement_timeout", ms.as_str()),
                // A transaction left open (a stalled node) must not hold row
                // locks for long either.
                ("idle_in_transaction_session_timeout", ms.as_str()),
            ]))
    }
}

pub struct PostgresStore {
    pool: PgPool,
    /// Seals webhook secrets before they are written, opens them when read.
    secrets: Arc<SecretBox>,
    /// This process's name on the leases it takes: `<host>/<pid>/<random>`;
    /// a new one after it was taken for dead (see `node_heartbeat`).
    node: std::sync::RwLock<String>,
    /// For the routing listener's own connection.
    connect_options: PgConnectOptions,
}

/// Applies the pending migrations; answers the versions it applied.
pub async fn migrate(url: &str) -> StoreResult<Vec<i64>> {
    let options = PgConnectOptions::from_str(url)?.application_name("mlhook migrate");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    let before = applied_versions(&pool).await?;
    MIGRATOR.run(&pool).await?;
    let after = applied_versions(&pool).await?;
    pool.close().await;
    Ok(after.difference(&before).copied().collect::<Vec<_>>())
}

async fn applied_versions(pool: &PgPool) -> StoreResult<std::collections::BTreeSet<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(Default::default());
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(versions.into_iter().collect())
}

impl PostgresStore {
    /// Connects, applies (or checks) migrations and checks the secret key.
    pub async fn connect(options: &PgOptions, secrets: Arc<SecretBox>) -> StoreResult<Self> {
        let connect_options = options.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options.clone())
            .await?;
        if options.run_migrations {
            MIGRATOR.run(&pool).await?;
        } else {
            let applied = applied_versions(&pool).await?;
            if let Some(missing) = MIGRATOR.iter().find(|m| !applied.contains(&m.version)) {
                return Err(StoreError::Corrupt(format!(
                    "migration {} ({}) is not applied: run `mlhook migrate` first",
                    missing.version, missing.description
                )));
            }
        }
        let store = PostgresStore {
            pool,
            secrets,
            node: std::sync::RwLock::new(nodes::new_name()),
            connect_options,
        };
        store.check_secret_key().await?;
        Ok(store)
    }

    /// A pooled connection, waited for until the caller's deadline at most
    /// (and the pool's acquire timeout in any case). Only the wait is cut
    /// short: nothing has been sent to the database yet.
    async fn conn(&self) -> StoreResult<PoolConnection<Postgres>> {
        match super::deadline::remaining() {
            None => Ok(self.pool.acquire().await?),
            Some(left) => tokio::time::timeout(left, self.pool.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(Into::into),
        }
    }

    /// This node's name on its leases.
    pub fn node(&self) -> String {
        self.node.read().expect("node name poisoned").clone()
    }

    /// Follows project and webhook changes made by any node (see `notify`).
    pub fn routing_changes(&self) -> super::notify::RoutingChanges {
        super::notify::RoutingChanges::start(self.connect_options.clone())
    }

    /// Closes the pool: connections end cleanly at the server.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every node must seal with the same key; one started with another key
    /// fails here, not as a corrupt row on its first delivery.
    async fn check_secret_key(&self) -> StoreResult<()> {
        const CHECK: &str = "mlhook secret key check";
        // Two nodes starting on a fresh database at once: the first insert wins
        // and both then check against it.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('secret_key_check', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(self.secrets.seal(CHECK))
        .execute(&mut *self.conn().await?)
        .await?;
        let sealed: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'secret_key_check'")
                .fetch_one(&mut *self.conn().await?)
                .await?;
        match self.secrets.open(&sealed) {
            Ok(text) if text == CHECK => Ok(()),
            _ => Err(StoreError::WrongSecretKey),
        }
    }

    fn open_webhook(&self, stored: Webhook) -> StoreResult<Webhook> {
        sealed::open_webhook(stored, &self.secrets)
    }
}

/// A transaction on a pooled connection.
type Tx<'c> = sqlx::Transaction<'c, Postgres>;

/// The statements both stores run alike.
type Sql = Shared<Postgres>;

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Releases this node's own leases only: other nodes may be alive and
    /// sending theirs. (Called at shutdown, so that what was queued here is
    /// picked up by the other nodes at once rather than after a lease.) The
    /// node's heartbeat row goes too: it has left, it did not die.
    async fn release_all_leases(&self) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = $1",
        )
        .bind(self.node())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(self.node())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn node_heartbeat(&self) -> StoreResult<NodeBeat> {
        let mut conn = self.conn().await?;
        if nodes::renew(&mut conn, &self.node()).await? {
            return Ok(NodeBeat::Renewed);
        }
        if nodes::register(&mut conn, &self.node()).await? {
            return Ok(NodeBeat::Registered);
        }
        // Taken for dead: every lease under the old name is free for the
        // others, so the leases from now on go under a new one.
        let fresh = nodes::new_name();
        nodes::register(&mut conn, &fresh).await?;
        *self.node.write().expect("node name poisoned") = fresh;
        Ok(NodeBeat::TakenForDead)
    }

    /// Marks the dead nodes (O(1) per node): their leases count as free
    /// from then on (`claim_due`), with no row of theirs rewritten. A
    /// heartbeat renewing the row at the same moment wins: the UPDATE waits
    /// for its commit and re-checks the row, now fresh. Marks older than
    /// any lease can last are forgotten.
    async fn release_dead_nodes(&self, timeout: Duration) -> StoreResult<Vec<String>> {
        nodes::mark_dead(&mut *self.conn().await?, timeout, &self.node()).await
    }

    async fn create_project(&self, p: &Project) -> StoreResult<()> {
        Sql::create_project(&mut *self.conn().await?, p).await
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        Sql::list_projects(&mut *self.conn().await?).await
    }

    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>> {
        Sql::get_project(&mut *self.conn().await?, id).await
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        Sql::update_project(&mut *self.conn().await?, p).await
    }

    async fn delete_project(&self, id: &ProjectId) -> StoreResult<bool> {
        Sql::delete_project(&mut *self.conn().await?, id).await
    }

    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        Sql::insert_token(&mut *self.conn().await?, t).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Sql::find_token(&mut *self.conn().await?, token_hash).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        Sql::has_admin_token(&mut *self.conn().await?).await
    }

    async fn list_tokens(&self, project_id: &ProjectId) -> StoreResult<Vec<TokenRecord>> {
        Sql::list_tokens(&mut *self.conn().await?, project_id).await
    }

    async fn revoke_token(
        &self,
        project_id: &ProjectId,
        token_id: &TokenId,
        at: i64,
    ) -> StoreResult<bool> {
        Sql::revoke_token(&mut *self.conn().await?, project_id, token_id, at).await
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        Sql::append_audit(&mut *self.conn().await?, r).await
    }

    async fn list_audit(
        &self,
        project_id: &ProjectId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut q = Sql::audit_page(project_id, before, limit);
        Sql::audit_from(q.build().fetch_all(&mut *self.conn().await?).await?)
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        Sql::insert_webhook(&mut *self.conn().await?, &sealed).await
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        Sql::update_webhook(&mut *self.conn().await?, &sealed).await
    }

    async fn delete_webhook(&self, project_id: &ProjectId, id: &WebhookId) -> StoreResult<bool> {
        Sql::delete_webhook(&mut *self.conn().await?, project_id, id).await
    }

    async fn get_webhook(
        &self,
        project_id: &ProjectId,
        id: &WebhookId,
    ) -> StoreResult<Option<Webhook>> {
        let stored = Sql::get_webhook(&mut *self.conn().await?, project_id, id).await?;
        stored.map(|w| self.open_webhook(w)).transpose()
    }

    async fn list_webhooks(&self, project_id: &ProjectId) -> StoreResult<Vec<Webhook>> {
        let stored = Sql::list_webhooks(&mut *self.conn().await?, Some(project_id)).await?;
        stored.into_iter().map(|w| self.open_webhook(w)).collect()
    }

    async fn list_all_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let stored = Sql::list_webhooks(&mut *self.conn().await?, None).await?;
        stored.into_iter().map(|w| self.open_webhook(w)).collect()
    }

    async fn insert_events(
        &self,
        events: &[NewEvent],
        window_ms: i64,
    ) -> StoreResult<Vec<Inserted>> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let answers = hot::insert_events(&mut tx, events, window_ms, &self.node()).await?;
        tx.commit().await?;
        Ok(answers)
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_until: i64,
    ) -> StoreResult<Vec<DueDelivery>> {
        // The inner SELECT locks the rows it picks and skips those another
        // node is claiming right now; a row claimed and committed meanwhile is
        // re-checked against the lease condition and skipped too. The index
        // walk passes the due deliveries that are held (leased); the scheduler
        // stops claiming at `MAX_HELD` held, which bounds it during a backlog.
        // (Indexing the lease end instead made every claim and renewal a
        // non-HOT update of all the table's indexes: slower overall.) A
        // lease of a node found dead is free: releasing them costs nothing
        // at the death, each is rewritten here when claimed.
        let rows = sqlx::query(
            "WITH due AS ( \
               SELECT d.id FROM deliveries d \
               JOIN webhooks w ON w.id = d.webhook_id AND w.enabled \
               WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1 \
                 AND (d.lease_until IS NULL OR d.lease_until < $1 \
                      OR d.lease_owner IN (SELECT id FROM nodes WHERE dead_at IS NOT NULL)) \
               ORDER BY d.next_attempt_at LIMIT $2 \
               FOR UPDATE OF d SKIP LOCKED) \
             UPDATE deliveries d SET lease_until = $3, lease_owner = $4 \
             FROM due, events e WHERE d.id = due.id AND e.id = d.event_id \
             RETURNING d.id, d.webhook_id, d.project_id, d.event_id, d.attempts, d.retry_base, \
                       d.next_attempt_at, e.event_type, e.payload",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(lease_until)
        .bind(self.node())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut due: Vec<(i64, DueDelivery)> = rows
            .iter()
            .map(|r| {
                let due_at: i64 = r.try_get("next_attempt_at")?;
                Ok((due_at, decode::<_, DueColumns, _>(r)?))
            })
            .collect::<StoreResult<_>>()?;
        // RETURNING has no order: hand them out oldest due first, as SQLite does.
        due.sort_by(|a, b| (a.0, &a.1.delivery_id).cmp(&(b.0, &b.1.delivery_id)));
        Ok(due.into_iter().map(|(_, d)| d).collect())
    }

    /// Renews only leases this node still owns: one another node took over
    /// (this node stalled past its lease) stays with that node.
    async fn renew_leases(&self, delivery_ids: &[DeliveryId], lease_until: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET lease_until = $1 WHERE id = ANY($2) AND lease_owner = $3",
        )
        .bind(lease_until)
        .bind(delivery_ids)
        .bind(self.node())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn defer_deliveries(&self, deferrals: &[Deferral]) -> StoreResult<()> {
        let ids: Vec<&str> = deferrals.iter().map(|d| d.delivery_id.as_str()).collect();
        let times: Vec<i64> = deferrals.iter().map(|d| d.next_attempt_at).collect();
        sqlx::query(
            "UPDATE deliveries d SET next_attempt_at = v.at, lease_until = NULL, lease_owner = NULL \
             FROM UNNEST($1::text[], $2::bigint[]) AS v(id, at) \
             WHERE d.id = v.id AND d.next_attempt_at IS NOT NULL AND d.lease_owner = $3",
        )
        .bind(&ids)
        .bind(&times)
        .bind(self.node())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> StoreResult<()> {
        let now = crate::ids::now_millis();
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        hot::record_attempts(&mut tx, attempts, now, &self.node()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_event(
        &self,
        project_id: &ProjectId,
        event_id: &EventId,
    ) -> StoreResult<Option<EventRow>> {
        Sql::get_event(&mut *self.conn().await?, project_id, event_id).await
    }

    async fn list_events(&self, f: &EventFilter) -> StoreResult<Vec<EventRow>> {
        let mut q = Sql::events_page(f);
        Sql::events_from(q.build().fetch_all(&mut *self.conn().await?).await?)
    }

    async fn list_deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        let mut q = Sql::deliveries_page(f);
        Sql::deliveries_from(q.build().fetch_all(&mut *self.conn().await?).await?)
    }

    async fn get_delivery(
        &self,
        project_id: &ProjectId,
        delivery_id: &DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>> {
        Sql::get_delivery(&mut *self.conn().await?, project_id, delivery_id).await
    }

    async fn delivery_attempts(&self, delivery_id: &DeliveryId) -> StoreResult<Vec<AttemptRow>> {
        Sql::delivery_attempts(&mut *self.conn().await?, delivery_id, "seq").await
    }

    async fn webhook_stats(&self, webhook_id: &WebhookId, now: i64) -> StoreResult<WebhookStats> {
        const HOUR: i64 = 3600 * 1000;
        let mut conn = self.conn().await?;
        let last_hour = Sql::status_counts(&mut conn, webhook_id, now - HOUR).await?;
        let last_day = Sql::status_counts(&mut conn, webhook_id, now - 24 * HOUR).await?;
        let row = sqlx::query(
            "SELECT MAX(started_at) FILTER (WHERE succeeded) AS ok, \
                    MAX(started_at) FILTER (WHERE NOT succeeded) AS failed \
             FROM attempts WHERE webhook_id = $1",
        )
        .bind(webhook_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(WebhookStats {
            last_hour,
            last_day,
            last_success_at: row.try_get("ok")?,
            last_failure_at: row.try_get("failed")?,
        })
    }

    async fn insert_deliveries(
        &self,
        event: &EventRow,
        deliveries: &[NewDelivery],
        lease_until: i64,
    ) -> StoreResult<()> {
        let new_event = NewEvent {
            id: event.id.clone(),
            project_id: event.project_id.clone(),
            event_type: event.event_type.clone(),
            object: None,
            payload: String::new(),
            created_at: crate::ids::now_millis(),
            idempotency_key: None,
            deliveries: deliveries.to_vec(),
            lease_until,
            is_test: false,
            request: 0,
        };
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        hot::insert_more_deliveries(&mut tx, &new_event, &self.node()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_manual_attempt(&self, a: &AttemptRecord) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        hot::record_manual_attempt(&mut tx, a, crate::ids::now_millis()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pause_deliveries(&self, delivery_ids: &[DeliveryId]) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, lease_until = NULL, \
             lease_owner = NULL WHERE id = ANY($1) AND status IN ('pending', 'failed')",
        )
        .bind(delivery_ids)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn disable_webhook(
        &self,
        webhook_id: &WebhookId,
        reason: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, disabled_at = $2, updated_at = $2 \
             WHERE id = $3 AND enabled",
        )
        .bind(reason)
        .bind(at)
        .bind(webhook_id)
        .execute(&mut *tx)
        .await?;
        pause_unfinished(&mut tx, webhook_id).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn pause_webhook_deliveries(&self, webhook_id: &WebhookId) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let paused = pause_unfinished(&mut tx, webhook_id).await?;
        tx.commit().await?;
        Ok(paused)
    }

    async fn recover_deliveries(
        &self,
        webhook_id: &WebhookId,
        since: i64,
        until: Option<i64>,
        now: i64,
    ) -> StoreResult<u64> {
        let mut q = QueryBuilder::<Postgres>::new(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ",
        );
        q.push_bind(now)
            .push(", retry_base = attempts, lease_until = NULL, lease_owner = NULL, updated_at = ")
            .push_bind(now)
            .push(" WHERE webhook_id = ")
            .push_bind(webhook_id)
            .push(" AND NOT is_test AND status IN ('failed', 'exhausted', 'paused')");
        Sql::push_id_window(&mut q, "msg", Some(since), until, None);
        let done = q.build().execute(&mut *self.conn().await?).await?;
        Ok(done.rows_affected())
    }

    async fn last_success_at(&self, webhook_id: &WebhookId) -> StoreResult<Option<i64>> {
        let at = sqlx::query_scalar(
            "SELECT MAX(started_at) FROM attempts WHERE webhook_id = $1 AND succeeded",
        )
        .bind(webhook_id)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(at)
    }

    async fn purge_before(
        &self,
        cutoff: i64,
        idempotency_cutoff: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        // SKIP LOCKED: nodes purging at the same time take different events.
        let done = sqlx::query(
            "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.id < $1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.next_attempt_at IS NOT NULL) \
             LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(id_bound("evt", cutoff))
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(idempotency_cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn event_deliveries(&self, event_id: &EventId) -> StoreResult<Vec<DeliveryRow>> {
        Sql::event_deliveries(&mut *self.conn().await?, event_id).await
    }

    // ---- Sources (MLflow) ----

    async fn create_source(&self, s: &Source) -> StoreResult<()> {
        let sealed = s.sealed(&self.secrets);
        Sql::create_source(&mut *self.conn().await?, &sealed).await
    }

    async fn list_sources(&self, project_id: &ProjectId) -> StoreResult<Vec<Source>> {
        let stored = Sql::list_sources(&mut *self.conn().await?, project_id).await?;
        stored
            .into_iter()
            .map(|s| sealed::open_source(s, &self.secrets))
            .collect()
    }

    async fn get_source(
        &self,
        project_id: &ProjectId,
        id: &SourceId,
    ) -> StoreResult<Option<Source>> {
        let stored = Sql::get_source(&mut *self.conn().await?, project_id, id).await?;
        stored
            .map(|s| sealed::open_source(s, &self.secrets))
            .transpose()
    }

    async fn update_source(&self, s: &Source) -> StoreResult<bool> {
        let sealed = s.sealed(&self.secrets);
        Sql::update_source(&mut *self.conn().await?, &sealed).await
    }

    async fn delete_source(&self, project_id: &ProjectId, id: &SourceId) -> StoreResult<bool> {
        Sql::delete_source(&mut *self.conn().await?, project_id, id).await
    }

    async fn source_delivery_accepted(
        &self,
        source_id: &SourceId,
        delivery_id: &str,
    ) -> StoreResult<Option<i64>> {
        Sql::source_delivery_accepted(&mut *self.conn().await?, source_id, delivery_id).await
    }

    async fn record_source_delivery(
        &self,
        source_id: &SourceId,
        delivery_id: &str,
        event_id: &EventId,
        accepted_at: i64,
        forget_before: i64,
    ) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let new = Sql::record_source_delivery(
            &mut tx,
            source_id,
            delivery_id,
            event_id,
            accepted_at,
            forget_before,
        )
        .await?;
        tx.commit().await?;
        Ok(new)
    }

    async fn record_source_rejection(&self, r: &SourceRejection, keep: u32) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        Sql::record_source_rejection(&mut tx, r, keep).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn source_rejections(
        &self,
        source_id: &SourceId,
        limit: u32,
    ) -> StoreResult<Vec<SourceRejection>> {
        Sql::source_rejections(&mut *self.conn().await?, source_id, limit).await
    }

    async fn source_activity(
        &self,
        source_id: &SourceId,
        since: i64,
    ) -> StoreResult<SourceActivity> {
        Sql::source_activity(&mut *self.conn().await?, source_id, since).await
    }

    async fn count_for_metrics(&self, now: i64) -> StoreResult<MetricCounts> {
        // The condition matches the partial index deliveries_due.
        let queue = sqlx::query(
            "SELECT COUNT(*) AS pending, COUNT(*) FILTER (WHERE next_attempt_at <= $1) AS due \
             FROM deliveries WHERE next_attempt_at IS NOT NULL",
        )
        .bind(now)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let webhooks = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE enabled) AS enabled, \
                    COUNT(*) FILTER (WHERE NOT enabled) AS disabled FROM webhooks",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let count = |row: &PgRow, column: &str| -> StoreResult<u64> {
            Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
        };
        Ok(MetricCounts {
            pending: count(&queue, "pending")?,
            due: count(&queue, "due")?,
            webhooks_enabled: count(&webhooks, "enabled")?,
            webhooks_disabled: count(&webhooks, "disabled")?,
        })
    }
}

/// Pauses a webhook's deliveries that would otherwise be attempted.
async fn pause_unfinished(tx: &mut Tx<'_>, webhook_id: &WebhookId) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, lease_until = NULL, \
         lease_owner = NULL WHERE webhook_id = $1 AND status IN ('pending', 'failed')",
    )
    .bind(webhook_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
