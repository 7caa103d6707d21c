//! The embedded store: SQLite in WAL mode inside the data directory.
//!
//! Durability: `synchronous = FULL`, so a transaction is on disk (the WAL is
//! fsynced) before the commit returns — an event answered 202 survives a
//! crash or a power cut. Group commit upstream keeps that fsync per batch,
//! not per event. The hot path (events, deliveries, attempt outcomes) is
//! written by a thread of its own (`writer`, statements in `hot`); everything
//! else by sqlx's writer connection. Every write takes the store's write turn
//! first, so the two never meet on SQLite's lock; write transactions start
//! with `BEGIN IMMEDIATE` all the same, so that a lock held by anything else
//! is waited for up front instead of failing the transaction on lock upgrade.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::rows::{DueColumns, Shared, decode, id_bound};
use super::*;
use crate::secrets::SecretBox;
use crate::sources::{Source, SourceActivity, SourceRejection};
use crate::webhook::Webhook;

mod hot;
mod space;
mod writer;

use space::SpaceWatch;
use writer::{HotWriter, WriteTurn};

/// Rows per multi-row statement, well under SQLite's bound-variable limit.
const CHUNK: usize = 400;

/// The statements both stores run alike.
type Sql = Shared<Sqlite>;

pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The writer connection for everything but the hot path.
    writer: SqlitePool,
    /// The hot path's writer thread: events, deliveries, attempt outcomes.
    hot: HotWriter,
    /// Taken by every write, on either connection: writers queue here, in
    /// process, instead of meeting on SQLite's lock, whose busy handler
    /// sleeps for milliseconds.
    turn: WriteTurn,
    /// Seals webhook secrets before they are written, opens them when read.
    secrets: Arc<SecretBox>,
    /// Whether writes are failing for lack of space.
    space: SpaceWatch,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/mlhook.db` and applies migrations.
    pub async fn open(data_dir: &Path, secrets: Arc<SecretBox>) -> StoreResult<SqliteStore> {
        let path = data_dir.join("mlhook.db");
        let wal_pages = space::wal_pages(data_dir);
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("wal_autocheckpoint", wal_pages.to_string())
            .pragma(
                "journal_size_limit",
                space::wal_limit_bytes(wal_pages).to_string(),
            );
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| Box::pin(keep_wal_files(conn)))
            .after_release(|conn, _| Box::pin(async move { Ok(!left_in_transaction(conn)) }))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| Box::pin(keep_wal_files(conn)))
            .connect_with(options)
            .await?;
        let turn = WriteTurn::default();
        let space = SpaceWatch::default();
        let store = SqliteStore {
            pool,
            writer,
            hot: HotWriter::start(&path, wal_pages, turn.clone(), space.clone())?,
            turn,
            secrets,
            space,
        };
        // A start on a full disk: the service runs, answers reads and 503
        // to writes (and to /readyz) until space is freed.
        match store.probe_write().await {
            Err(e) if !e.is_no_space() => return Err(e),
            _ => {}
        }
        store.check_secret_key().await?;
        store.seal_clear_secrets().await?;
        Ok(store)
    }

    /// A small write through the hot path's writer, the one that stores
    /// events: whether there is space for one (the writer notes either way).
    async fn probe_write(&self) -> StoreResult<()> {
        let now = crate::ids::now_millis().to_string();
        self.hot
            .write(move |conn| {
                conn.execute(
                    "REPLACE INTO settings (key, value) VALUES ('write_probe', ?1)",
                    [&now],
                )?;
                Ok(())
            })
            .await
    }

    /// A failed write on sqlx's writer connection, noted if for lack of space.
    fn write_failed(&self, err: sqlx::Error) -> StoreError {
        let err = StoreError::from(err);
        self.space.failed(&err);
        err
    }

    /// A write on sqlx's writer connection, its failure noted if for lack of space.
    fn noted<T>(&self, written: StoreResult<T>) -> StoreResult<T> {
        written.inspect_err(|e| self.space.failed(e))
    }

    /// A database written with one key cannot be read with another: say so at
    /// start, not as a corrupt row on the first delivery.
    async fn check_secret_key(&self) -> StoreResult<()> {
        const CHECK: &str = "mlhook secret key check";
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'secret_key_check'")
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
        match stored {
            Some(sealed) => match self.secrets.open(&sealed) {
                Ok(text) if text == CHECK => Ok(()),
                _ => Err(StoreError::WrongSecretKey),
            },
            None => {
                sqlx::query("INSERT INTO settings (key, value) VALUES ('secret_key_check', ?)")
                    .bind(self.secrets.seal(CHECK))
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(|e| self.write_failed(e))?;
                Ok(())
            }
        }
    }

    /// Seals secrets a database from before sealing existed holds in clear text.
    async fn seal_clear_secrets(&self) -> StoreResult<()> {
        let stored = Sql::list_webhooks(&mut *self.write_conn().await?, None).await?;
        for stored in stored {
            if sealed::has_clear_secrets(&stored) {
                let clear = sealed::open_webhook(stored, &self.secrets)?;
                self.update_webhook(&clear).await?;
            }
        }
        Ok(())
    }

    fn open_webhook(&self, stored: Webhook) -> StoreResult<Webhook> {
        sealed::open_webhook(stored, &self.secrets)
    }

    /// A reader: WAL lets it run beside the writers.
    async fn read(&self) -> StoreResult<sqlx::pool::PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction on sqlx's writer, holding the write turn.
    async fn write_tx(&self) -> StoreResult<WithTurn<sqlx::Transaction<'static, Sqlite>>> {
        let turn = self.turn.clone().lock_owned().await;
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WithTurn {
            conn: tx,
            space: self.space.clone(),
            _turn: turn,
        })
    }

    /// sqlx's writer connection for a single statement, holding the write turn.
    async fn write_conn(&self) -> StoreResult<WithTurn<sqlx::pool::PoolConnection<Sqlite>>> {
        let turn = self.turn.clone().lock_owned().await;
        let conn = self.writer.acquire().await?;
        Ok(WithTurn {
            conn,
            space: self.space.clone(),
            _turn: turn,
        })
    }
}

/// Every connection keeps the WAL files, whichever closes last (see
/// `space::keep_wal_files`).
async fn keep_wal_files(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the locked handle is an open connection no other thread uses
    // while it is held.
    if unsafe { space::keep_wal_files(handle.as_raw_handle().as_ptr()) } {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol("could not keep the WAL files".into()))
    }
}

/// Whether sqlx's writer connection comes back to its pool inside a
/// transaction, to be closed rather than reused (closing rolls it back).
///
/// A transaction that fails or is dropped asks for its rollback lazily; when
/// a COMMIT fails after SQLite already rolled back by itself (it may, after
/// `SQLITE_FULL` or an I/O error), that ROLLBACK fails too, and sqlx counts
/// the connection as inside a transaction for good: every later `BEGIN`
/// failed with "attempted to call begin_with at non-zero transaction depth",
/// and claims, lease renewals, disabling and retention stopped until a
/// restart. A fresh connection has none of that state. A transaction that
/// commits leaves nothing behind, so the common case costs no round trip.
fn left_in_transaction(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection;
    let open = conn.is_in_transaction();
    if open {
        tracing::warn!(
            "the store's writer connection ended a write inside a transaction; replacing it"
        );
    }
    open
}

/// sqlx's writer connection or a transaction on it, held with the write
/// turn, which is given back when it is dropped.
struct WithTurn<C> {
    conn: C,
    space: SpaceWatch,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WithTurn<sqlx::Transaction<'static, Sqlite>> {
    async fn commit(self) -> StoreResult<()> {
        let result = self.conn.commit().await.map_err(StoreError::from);
        if let Err(e) = &result {
            self.space.failed(e);
        }
        result
    }
}

impl<C: std::ops::Deref<Target = sqlx::SqliteConnection>> std::ops::Deref for WithTurn<C> {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<C: std::ops::DerefMut<Target = sqlx::SqliteConnection>> std::ops::DerefMut for WithTurn<C> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Free of cost while writes succeed; after one failed for lack of
    /// space, a small write through the hot path's writer (the one that
    /// stores events) shows whether there is space again.
    async fn check_writable(&self) -> StoreResult<()> {
        if !self.space.is_full() {
            return Ok(());
        }
        self.probe_write().await
    }

    /// Only deliveries still to be sent are claimed, so only theirs are
    /// cleared: through the due index, not a walk of every delivery ever
    /// stored, which grew with the store's age (docs/performance.md).
    async fn release_all_leases(&self) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE deliveries INDEXED BY deliveries_due SET lease_until = NULL \
             WHERE next_attempt_at IS NOT NULL AND lease_until IS NOT NULL",
        )
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected())
    }

    async fn create_project(&self, p: &Project) -> StoreResult<()> {
        Sql::create_project(&mut *self.write_conn().await?, p).await
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        Sql::list_projects(&mut *self.read().await?).await
    }

    async fn get_project(&self, id: &ProjectId) -> StoreResult<Option<Project>> {
        Sql::get_project(&mut *self.read().await?, id).await
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        self.noted(Sql::update_project(&mut *self.write_conn().await?, p).await)
    }

    async fn delete_project(&self, id: &ProjectId) -> StoreResult<bool> {
        self.noted(Sql::delete_project(&mut *self.write_conn().await?, id).await)
    }

    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        self.noted(Sql::insert_token(&mut *self.write_conn().await?, t).await)
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Sql::find_token(&mut *self.read().await?, token_hash).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        Sql::has_admin_token(&mut *self.read().await?).await
    }

    async fn list_tokens(&self, project_id: &ProjectId) -> StoreResult<Vec<TokenRecord>> {
        Sql::list_tokens(&mut *self.read().await?, project_id).await
    }

    async fn revoke_token(
        &self,
        project_id: &ProjectId,
        token_id: &TokenId,
        at: i64,
    ) -> StoreResult<bool> {
        let mut conn = self.write_conn().await?;
        self.noted(Sql::revoke_token(&mut conn, project_id, token_id, at).await)
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        self.noted(Sql::append_audit(&mut *self.write_conn().await?, r).await)
    }

    async fn list_audit(
        &self,
        project_id: &ProjectId,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut q = Sql::audit_page(project_id, before, limit);
        Sql::audit_from(q.build().fetch_all(&mut *self.read().await?).await?)
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        self.noted(Sql::insert_webhook(&mut *self.write_conn().await?, &sealed).await)
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        self.noted(Sql::update_webhook(&mut *self.write_conn().await?, &sealed).await)
    }

    async fn delete_webhook(&self, project_id: &ProjectId, id: &WebhookId) -> StoreResult<bool> {
        let mut conn = self.write_conn().await?;
        self.noted(Sql::delete_webhook(&mut conn, project_id, id).await)
    }

    async fn get_webhook(
        &self,
        project_id: &ProjectId,
        id: &WebhookId,
    ) -> StoreResult<Option<Webhook>> {
        let stored = Sql::get_webhook(&mut *self.read().await?, project_id, id).await?;
        stored.map(|w| self.open_webhook(w)).transpose()
    }

    async fn list_webhooks(&self, project_id: &ProjectId) -> StoreResult<Vec<Webhook>> {
        let stored = Sql::list_webhooks(&mut *self.read().await?, Some(project_id)).await?;
        stored.into_iter().map(|w| self.open_webhook(w)).collect()
    }

    async fn list_all_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let stored = Sql::list_webhooks(&mut *self.read().await?, None).await?;
        stored.into_iter().map(|w| self.open_webhook(w)).collect()
    }

    async fn insert_events(
        &self,
        events: &[NewEvent],
        window_ms: i64,
    ) -> StoreResult<Vec<Inserted>> {
        let events = events.to_vec();
        self.hot
            .write(move |conn| hot::insert_events(conn, &events, window_ms))
            .await
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_until: i64,
    ) -> StoreResult<Vec<DueDelivery>> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, d.project_id, d.event_id, d.attempts, d.retry_base, e.event_type, e.payload \
             FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN webhooks w ON w.id = d.webhook_id AND w.enabled = 1 \
             WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1 \
               AND (d.lease_until IS NULL OR d.lease_until < ?1) \
             ORDER BY d.next_attempt_at LIMIT ?2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let due: Vec<DueDelivery> = rows
            .iter()
            .map(decode::<_, DueColumns, _>)
            .collect::<StoreResult<_>>()?;
        let ids: Vec<DeliveryId> = due.iter().map(|d| d.delivery_id.clone()).collect();
        set_leases(&mut tx, &ids, lease_until).await?;
        tx.commit().await?;
        Ok(due)
    }

    async fn renew_leases(&self, delivery_ids: &[DeliveryId], lease_until: i64) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        set_leases(&mut tx, delivery_ids, lease_until).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn defer_deliveries(&self, deferrals: &[Deferral]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for d in deferrals {
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = ?, lease_until = NULL \
                 WHERE id = ? AND next_attempt_at IS NOT NULL",
            )
            .bind(d.next_attempt_at)
            .bind(&d.delivery_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> StoreResult<()> {
        let attempts = attempts.to_vec();
        self.hot
            .write(move |conn| hot::record_attempts(conn, &attempts, crate::ids::now_millis()))
            .await
    }

    async fn get_event(
        &self,
        project_id: &ProjectId,
        event_id: &EventId,
    ) -> StoreResult<Option<EventRow>> {
        Sql::get_event(&mut *self.read().await?, project_id, event_id).await
    }

    async fn list_events(&self, f: &EventFilter) -> StoreResult<Vec<EventRow>> {
        let mut q = Sql::events_page(f);
        Sql::events_from(q.build().fetch_all(&mut *self.read().await?).await?)
    }

    async fn list_deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        let mut q = Sql::deliveries_page(f);
        Sql::deliveries_from(q.build().fetch_all(&mut *self.read().await?).await?)
    }

    async fn get_delivery(
        &self,
        project_id: &ProjectId,
        delivery_id: &DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>> {
        Sql::get_delivery(&mut *self.read().await?, project_id, delivery_id).await
    }

    async fn delivery_attempts(&self, delivery_id: &DeliveryId) -> StoreResult<Vec<AttemptRow>> {
        Sql::delivery_attempts(&mut *self.read().await?, delivery_id, "rowid").await
    }

    async fn webhook_stats(&self, webhook_id: &WebhookId, now: i64) -> StoreResult<WebhookStats> {
        const HOUR: i64 = 3600 * 1000;
        let mut conn = self.read().await?;
        let last_hour = Sql::status_counts(&mut conn, webhook_id, now - HOUR).await?;
        let last_day = Sql::status_counts(&mut conn, webhook_id, now - 24 * HOUR).await?;
        let (last_success_at, last_failure_at) = last_activity(&mut conn, webhook_id).await?;
        Ok(WebhookStats {
            last_hour,
            last_day,
            last_success_at,
            last_failure_at,
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
        self.hot
            .write(move |conn| hot::insert_more_deliveries(conn, &new_event))
            .await
    }

    async fn record_manual_attempt(&self, a: &AttemptRecord) -> StoreResult<()> {
        let a = a.clone();
        self.hot
            .write(move |conn| hot::record_manual_attempt(conn, &a, crate::ids::now_millis()))
            .await
    }

    async fn pause_deliveries(&self, delivery_ids: &[DeliveryId]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for chunk in delivery_ids.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, lease_until = NULL WHERE id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(") AND status IN ('pending', 'failed')");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn disable_webhook(
        &self,
        webhook_id: &WebhookId,
        reason: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?, disabled_at = ?, updated_at = ? \
             WHERE id = ? AND enabled = 1",
        )
        .bind(reason)
        .bind(at)
        .bind(at)
        .bind(webhook_id)
        .execute(&mut *tx)
        .await?;
        pause_unfinished(&mut tx, webhook_id).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn pause_webhook_deliveries(&self, webhook_id: &WebhookId) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
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
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ",
        );
        q.push_bind(now)
            .push(", retry_base = attempts, lease_until = NULL, updated_at = ")
            .push_bind(now)
            .push(" WHERE webhook_id = ")
            .push_bind(webhook_id)
            .push(" AND is_test = 0 AND status IN ('failed', 'exhausted', 'paused')");
        Sql::push_id_window(&mut q, "msg", Some(since), until, None);
        let done = q
            .build()
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected())
    }

    async fn last_success_at(&self, webhook_id: &WebhookId) -> StoreResult<Option<i64>> {
        Ok(last_activity(&mut *self.read().await?, webhook_id).await?.0)
    }

    async fn purge_before(
        &self,
        cutoff: i64,
        idempotency_cutoff: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.id < ? AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.next_attempt_at IS NOT NULL) LIMIT ?)",
        )
        .bind(id_bound("evt", cutoff))
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(idempotency_cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn event_deliveries(&self, event_id: &EventId) -> StoreResult<Vec<DeliveryRow>> {
        Sql::event_deliveries(&mut *self.read().await?, event_id).await
    }

    async fn count_for_metrics(&self, now: i64) -> StoreResult<MetricCounts> {
        // Both counts walk the partial index deliveries_due only.
        let queue = sqlx::query(
            "SELECT COUNT(*) AS pending, COALESCE(SUM(next_attempt_at <= ?), 0) AS due \
             FROM deliveries INDEXED BY deliveries_due WHERE next_attempt_at IS NOT NULL",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let webhooks = sqlx::query(
            "SELECT COALESCE(SUM(enabled = 1), 0) AS enabled, COALESCE(SUM(enabled = 0), 0) AS disabled \
             FROM webhooks",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |row: &SqliteRow, column: &str| -> StoreResult<u64> {
            Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
        };
        Ok(MetricCounts {
            pending: count(&queue, "pending")?,
            due: count(&queue, "due")?,
            webhooks_enabled: count(&webhooks, "enabled")?,
            webhooks_disabled: count(&webhooks, "disabled")?,
        })
    }

    // ---- Sources (MLflow) ----

    async fn create_source(&self, s: &Source) -> StoreResult<()> {
        let sealed = s.sealed(&self.secrets);
        self.noted(Sql::create_source(&mut *self.write_conn().await?, &sealed).await)
    }

    async fn list_sources(&self, project_id: &ProjectId) -> StoreResult<Vec<Source>> {
        let stored = Sql::list_sources(&mut *self.read().await?, project_id).await?;
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
        let stored = Sql::get_source(&mut *self.read().await?, project_id, id).await?;
        stored
            .map(|s| sealed::open_source(s, &self.secrets))
            .transpose()
    }

    async fn update_source(&self, s: &Source) -> StoreResult<bool> {
        let sealed = s.sealed(&self.secrets);
        self.noted(Sql::update_source(&mut *self.write_conn().await?, &sealed).await)
    }

    async fn delete_source(&self, project_id: &ProjectId, id: &SourceId) -> StoreResult<bool> {
        let mut conn = self.write_conn().await?;
        self.noted(Sql::delete_source(&mut conn, project_id, id).await)
    }

    async fn source_delivery_accepted(
        &self,
        source_id: &SourceId,
        delivery_id: &str,
    ) -> StoreResult<Option<i64>> {
        Sql::source_delivery_accepted(&mut *self.read().await?, source_id, delivery_id).await
    }

    async fn record_source_delivery(
        &self,
        source_id: &SourceId,
        delivery_id: &str,
        event_id: &EventId,
        accepted_at: i64,
        forget_before: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
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
        let mut tx = self.write_tx().await?;
        Sql::record_source_rejection(&mut tx, r, keep).await?;
        tx.commit().await
    }

    async fn source_rejections(
        &self,
        source_id: &SourceId,
        limit: u32,
    ) -> StoreResult<Vec<SourceRejection>> {
        Sql::source_rejections(&mut *self.read().await?, source_id, limit).await
    }

    async fn source_activity(
        &self,
        source_id: &SourceId,
        since: i64,
    ) -> StoreResult<SourceActivity> {
        Sql::source_activity(&mut *self.read().await?, source_id, since).await
    }
}

/// Pauses a webhook's deliveries that would otherwise be attempted.
async fn pause_unfinished(
    conn: &mut sqlx::SqliteConnection,
    webhook_id: &WebhookId,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, lease_until = NULL \
         WHERE webhook_id = ? AND status IN ('pending', 'failed')",
    )
    .bind(webhook_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// A webhook's last success and last failure (none before its first attempt).
async fn last_activity(
    conn: &mut sqlx::SqliteConnection,
    webhook_id: &WebhookId,
) -> StoreResult<(Option<i64>, Option<i64>)> {
    let row = sqlx::query_as(
        "SELECT last_success_at, last_failure_at FROM webhook_activity WHERE webhook_id = ?",
    )
    .bind(webhook_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_default())
}

async fn set_leases(
    conn: &mut sqlx::SqliteConnection,
    ids: &[DeliveryId],
    lease_until: i64,
) -> StoreResult<()> {
    for chunk in ids.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE deliveries SET lease_until = ");
        q.push_bind(lease_until).push(" WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}
