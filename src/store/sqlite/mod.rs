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

use super::rows::{counts_by_status, from_json, id_bound, to_json};
use super::*;
use crate::secrets::SecretBox;
use crate::webhook::{Format, PreviousSigningKey, Webhook};

mod hot;
mod space;
mod writer;

use space::SpaceWatch;
use writer::{HotWriter, WriteTurn};

/// Rows per multi-row statement, well under SQLite's bound-variable limit.
const CHUNK: usize = 400;

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
        let rows = sqlx::query("SELECT * FROM webhooks")
            .fetch_all(&mut *self.write_conn().await?)
            .await?;
        for row in &rows {
            let stored = webhook_from_row(row)?;
            if sealed::has_clear_secrets(&stored) {
                let clear = sealed::open_webhook(stored, &self.secrets)?;
                self.update_webhook(&clear).await?;
            }
        }
        Ok(())
    }

    fn open_webhook(&self, row: &SqliteRow) -> StoreResult<Webhook> {
        sealed::open_webhook(webhook_from_row(row)?, &self.secrets)
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

fn project_from_row(row: &SqliteRow) -> StoreResult<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        link_base_url: row.try_get("link_base_url")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn token_from_row(row: &SqliteRow) -> StoreResult<TokenRecord> {
    let kind: String = row.try_get("kind")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("token kind {kind}")))?,
        token_hash: row.try_get("token_hash")?,
        prefix: row.try_get("prefix")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn audit_from_row(row: &SqliteRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target_id: row.try_get("target_id")?,
        changes: from_json("changes", row.try_get("changes")?)?,
    })
}

fn webhook_from_row(row: &SqliteRow) -> StoreResult<Webhook> {
    let format: String = row.try_get("format")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        url: row.try_get("url")?,
        format: Format::parse(&format)
            .ok_or_else(|| StoreError::Corrupt(format!("format {format}")))?,
        events: from_json("events", row.try_get("events")?)?,
        scope: from_json("scope", row.try_get("scope")?)?,
        headers: from_json("headers", row.try_get("headers")?)?,
        secret: row.try_get("secret")?,
        signing_secret: row.try_get("signing_secret")?,
        previous_signing: previous_signing_from_row(row)?,
        include_result: row.try_get("include_result")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        disabled_at: row.try_get("disabled_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        format_config: from_json("format_config", row.try_get("format_config")?)?,
        rate_limit: row
            .try_get::<Option<&str>, _>("rate_limit")?
            .map(|text| from_json("rate_limit", text))
            .transpose()?,
    })
}

fn previous_signing_from_row(row: &SqliteRow) -> StoreResult<Option<PreviousSigningKey>> {
    let key: Option<String> = row.try_get("previous_signing_secret")?;
    let expires_at: Option<i64> = row.try_get("previous_signing_expires_at")?;
    Ok(key
        .zip(expires_at)
        .map(|(key, expires_at)| PreviousSigningKey { key, expires_at }))
}

/// Binds a webhook's columns in the order of `WEBHOOK_COLUMNS`.
fn bind_webhook<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    w: &'q Webhook,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    query
        .bind(&w.id)
        .bind(&w.project_id)
        .bind(&w.name)
        .bind(&w.description)
        .bind(&w.url)
        .bind(w.format.as_str())
        .bind(to_json(&w.events))
        .bind(to_json(&w.scope))
        .bind(to_json(&w.headers))
        .bind(&w.secret)
        .bind(&w.signing_secret)
        .bind(w.include_result)
        .bind(w.enabled)
        .bind(&w.disabled_reason)
        .bind(w.disabled_at)
        .bind(w.created_at)
        .bind(w.updated_at)
        .bind(to_json(&w.format_config))
        .bind(w.rate_limit.as_ref().map(to_json))
        .bind(w.previous_signing.as_ref().map(|p| &p.key))
        .bind(w.previous_signing.as_ref().map(|p| p.expires_at))
}

const WEBHOOK_COLUMNS: &str = "id, project_id, name, description, url, format, events, scope, headers, secret, \
     signing_secret, include_result, enabled, disabled_reason, disabled_at, created_at, updated_at, \
     format_config, rate_limit, previous_signing_secret, previous_signing_expires_at";
const WEBHOOK_VALUES: &str = "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?";

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
        let result = sqlx::query(
            "INSERT INTO projects (id, name, link_base_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.link_base_url)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *self.write_conn().await?)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("project {:?} already exists", p.id),
            )),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query("SELECT * FROM projects ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(project_from_row).collect()
    }

    async fn get_project(&self, id: &str) -> StoreResult<Option<Project>> {
        let row = sqlx::query("SELECT * FROM projects WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        sqlx::query("UPDATE projects SET name = ?, link_base_url = ?, updated_at = ? WHERE id = ?")
            .bind(&p.name)
            .bind(&p.link_base_url)
            .bind(p.updated_at)
            .bind(&p.id)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(())
    }

    async fn delete_project(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM projects WHERE id = ?")
            .bind(id)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tokens (id, project_id, kind, token_hash, prefix, name, created_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.project_id)
        .bind(t.kind.as_str())
        .bind(&t.token_hash)
        .bind(&t.prefix)
        .bind(&t.name)
        .bind(t.created_at)
        .bind(t.revoked_at)
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(|e| self.write_failed(e))?;
        Ok(())
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    async fn list_tokens(&self, project_id: &str) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE project_id = ? ORDER BY id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, project_id: &str, token_id: &str, at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND project_id = ? AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(token_id)
        .bind(project_id)
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, project_id, at, actor, action, target_id, changes) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.project_id)
        .bind(r.at)
        .bind(&r.actor)
        .bind(&r.action)
        .bind(&r.target_id)
        .bind(to_json(&r.changes))
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(|e| self.write_failed(e))?;
        Ok(())
    }

    async fn list_audit(
        &self,
        project_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE project_id = ? AND (? IS NULL OR id < ?) \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(project_id)
        .bind(before)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        let sql = format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ({WEBHOOK_VALUES})");
        bind_webhook(sqlx::query(&sql), &sealed)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(())
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        let sql = format!(
            "UPDATE webhooks SET ({WEBHOOK_COLUMNS}) = ({WEBHOOK_VALUES}) WHERE id = ? AND project_id = ?"
        );
        bind_webhook(sqlx::query(&sql), &sealed)
            .bind(&w.id)
            .bind(&w.project_id)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(())
    }

    async fn delete_webhook(&self, project_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = ? AND project_id = ?")
            .bind(id)
            .bind(project_id)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_webhook(&self, project_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = ? AND project_id = ?")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| self.open_webhook(r)).transpose()
    }

    async fn list_webhooks(&self, project_id: &str) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query("SELECT * FROM webhooks WHERE project_id = ? ORDER BY id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.open_webhook(r)).collect()
    }

    async fn list_all_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.open_webhook(r)).collect()
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
            .map(|r| {
                Ok(DueDelivery {
                    delivery_id: r.try_get("id")?,
                    webhook_id: r.try_get("webhook_id")?,
                    project_id: r.try_get("project_id")?,
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get::<i64, _>("attempts")? as u32,
                    retry_base: r.try_get::<i64, _>("retry_base")? as u32,
                })
            })
            .collect::<StoreResult<_>>()?;
        let ids: Vec<String> = due.iter().map(|d| d.delivery_id.clone()).collect();
        set_leases(&mut tx, &ids, lease_until).await?;
        tx.commit().await?;
        Ok(due)
    }

    async fn renew_leases(&self, delivery_ids: &[String], lease_until: i64) -> StoreResult<()> {
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

    async fn get_event(&self, project_id: &str, event_id: &str) -> StoreResult<Option<EventRow>> {
        let row = sqlx::query("SELECT * FROM events WHERE id = ? AND project_id = ?")
            .bind(event_id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn list_events(&self, f: &EventFilter) -> StoreResult<Vec<EventRow>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM events WHERE project_id = ");
        q.push_bind(&f.project_id);
        if let Some(t) = &f.event_type {
            q.push(" AND event_type = ").push_bind(t);
        }
        push_id_window(&mut q, "evt", f.since, f.until, f.cursor.as_deref());
        q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn list_deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM deliveries WHERE project_id = ");
        q.push_bind(&f.project_id);
        if let Some(w) = &f.webhook_id {
            q.push(" AND webhook_id = ").push_bind(w);
        }
        if let Some(e) = &f.event_id {
            q.push(" AND event_id = ").push_bind(e);
        }
        if let Some(t) = &f.event_type {
            q.push(" AND event_type = ").push_bind(t);
        }
        if let Some(status) = f.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        push_id_window(&mut q, "msg", f.since, f.until, f.cursor.as_deref());
        q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn get_delivery(
        &self,
        project_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<DeliveryRow>> {
        let row = sqlx::query("SELECT * FROM deliveries WHERE id = ? AND project_id = ?")
            .bind(delivery_id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn delivery_attempts(&self, delivery_id: &str) -> StoreResult<Vec<AttemptRow>> {
        let rows =
            sqlx::query("SELECT * FROM attempts WHERE delivery_id = ? ORDER BY started_at, rowid")
                .bind(delivery_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn webhook_stats(&self, webhook_id: &str, now: i64) -> StoreResult<WebhookStats> {
        const HOUR: i64 = 3600 * 1000;
        let last_hour = status_counts(&self.pool, webhook_id, now - HOUR).await?;
        let last_day = status_counts(&self.pool, webhook_id, now - 24 * HOUR).await?;
        let (last_success_at, last_failure_at) = last_activity(&self.pool, webhook_id).await?;
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

    async fn pause_deliveries(&self, delivery_ids: &[String]) -> StoreResult<()> {
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

    async fn disable_webhook(&self, webhook_id: &str, reason: &str, at: i64) -> StoreResult<bool> {
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

    async fn pause_webhook_deliveries(&self, webhook_id: &str) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let paused = pause_unfinished(&mut tx, webhook_id).await?;
        tx.commit().await?;
        Ok(paused)
    }

    async fn recover_deliveries(
        &self,
        webhook_id: &str,
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
        push_id_window(&mut q, "msg", Some(since), until, None);
        let done = q
            .build()
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected())
    }

    async fn last_success_at(&self, webhook_id: &str) -> StoreResult<Option<i64>> {
        Ok(last_activity(&self.pool, webhook_id).await?.0)
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

    async fn event_deliveries(&self, event_id: &str) -> StoreResult<Vec<DeliveryRow>> {
        let rows = sqlx::query("SELECT * FROM deliveries WHERE event_id = ? ORDER BY id")
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from_row).collect()
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

    async fn create_source(&self, s: &crate::sources::Source) -> StoreResult<()> {
        let s = &s.sealed(&self.secrets);
        sqlx::query(
            "INSERT INTO sources (id, project_id, kind, name, secret, tolerance_secs, workspace_name, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.project_id)
        .bind(s.kind.as_str())
        .bind(&s.name)
        .bind(&s.secret)
        .bind(s.tolerance_secs)
        .bind(&s.workspace_name)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(|e| self.write_failed(e))?;
        Ok(())
    }

    async fn list_sources(&self, project_id: &str) -> StoreResult<Vec<crate::sources::Source>> {
        let rows = sqlx::query("SELECT * FROM sources WHERE project_id = ? ORDER BY id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| source_from_row(r, &self.secrets))
            .collect()
    }

    async fn get_source(
        &self,
        project_id: &str,
        id: &str,
    ) -> StoreResult<Option<crate::sources::Source>> {
        let row = sqlx::query("SELECT * FROM sources WHERE id = ? AND project_id = ?")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| source_from_row(r, &self.secrets))
            .transpose()
    }

    async fn delete_source(&self, project_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sources WHERE id = ? AND project_id = ?")
            .bind(id)
            .bind(project_id)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(|e| self.write_failed(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn source_delivery_accepted(
        &self,
        source_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<i64>> {
        let at = sqlx::query_scalar(
            "SELECT accepted_at FROM source_deliveries WHERE source_id = ? AND delivery_id = ?",
        )
        .bind(source_id)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(at)
    }

    async fn record_source_delivery(
        &self,
        source_id: &str,
        delivery_id: &str,
        event_id: &str,
        accepted_at: i64,
        forget_before: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO source_deliveries (source_id, delivery_id, event_id, accepted_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (source_id, delivery_id) DO NOTHING",
        )
        .bind(source_id)
        .bind(delivery_id)
        .bind(event_id)
        .bind(accepted_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM source_deliveries WHERE accepted_at < ?")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_source_rejection(
        &self,
        r: &crate::sources::SourceRejection,
        keep: u32,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO source_rejections (source_id, at, status, code, reason, delivery_id, event_type) \
             SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sources WHERE id = ?)",
        )
        .bind(&r.source_id)
        .bind(r.at)
        .bind(r.status)
        .bind(&r.code)
        .bind(&r.reason)
        .bind(&r.delivery_id)
        .bind(&r.event_type)
        .bind(&r.source_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM source_rejections WHERE source_id = ?1 AND id <= \
             (SELECT id FROM source_rejections WHERE source_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(&r.source_id)
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn source_rejections(
        &self,
        source_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<crate::sources::SourceRejection>> {
        let rows = sqlx::query(
            "SELECT * FROM source_rejections WHERE source_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(source_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::sources::SourceRejection {
                    source_id: r.try_get("source_id")?,
                    at: r.try_get("at")?,
                    status: r.try_get::<i64, _>("status")? as u16,
                    code: r.try_get("code")?,
                    reason: r.try_get("reason")?,
                    delivery_id: r.try_get("delivery_id")?,
                    event_type: r.try_get("event_type")?,
                })
            })
            .collect()
    }

    async fn source_activity(
        &self,
        source_id: &str,
        since: i64,
    ) -> StoreResult<crate::sources::SourceActivity> {
        let accepted = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(accepted_at) AS last FROM source_deliveries \
             WHERE source_id = ? AND accepted_at >= ?",
        )
        .bind(source_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let rejected = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(at) AS last FROM source_rejections WHERE source_id = ?",
        )
        .bind(source_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::sources::SourceActivity {
            accepted: accepted.try_get::<i64, _>("n")? as u64,
            last_accepted_at: accepted.try_get("last")?,
            rejected: rejected.try_get::<i64, _>("n")? as u64,
            last_rejected_at: rejected.try_get("last")?,
        })
    }
}

/// A stored source, its secret opened.
fn source_from_row(r: &SqliteRow, secrets: &SecretBox) -> StoreResult<crate::sources::Source> {
    let kind: String = r.try_get("kind")?;
    let stored = crate::sources::Source {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        kind: crate::sources::SourceKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("source kind {kind}")))?,
        name: r.try_get("name")?,
        secret: r.try_get("secret")?,
        tolerance_secs: r.try_get::<i64, _>("tolerance_secs")? as u32,
        workspace_name: r.try_get("workspace_name")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    };
    stored
        .opened(secrets)
        .map_err(|_| StoreError::WrongSecretKey)
}

/// Pauses a webhook's deliveries that would otherwise be attempted.
async fn pause_unfinished(conn: &mut sqlx::SqliteConnection, webhook_id: &str) -> StoreResult<u64> {
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
    pool: &SqlitePool,
    webhook_id: &str,
) -> StoreResult<(Option<i64>, Option<i64>)> {
    let row = sqlx::query_as(
        "SELECT last_success_at, last_failure_at FROM webhook_activity WHERE webhook_id = ?",
    )
    .bind(webhook_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.unwrap_or_default())
}

/// Deliveries of a webhook created since `since`, counted by status.
async fn status_counts(
    pool: &SqlitePool,
    webhook_id: &str,
    since: i64,
) -> StoreResult<StatusCounts> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM deliveries WHERE webhook_id = ? AND id >= ? GROUP BY status")
        .bind(webhook_id)
        .bind(id_bound("msg", since))
        .fetch_all(pool)
        .await?;
    let pairs = rows
        .iter()
        .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
        .collect::<StoreResult<Vec<(String, i64)>>>()?;
    Ok(counts_by_status(pairs))
}

fn push_id_window(
    q: &mut QueryBuilder<'_, Sqlite>,
    prefix: &str,
    since: Option<i64>,
    until: Option<i64>,
    cursor: Option<&str>,
) {
    if let Some(since) = since {
        q.push(" AND id >= ").push_bind(id_bound(prefix, since));
    }
    if let Some(until) = until {
        q.push(" AND id < ").push_bind(id_bound(prefix, until + 1));
    }
    if let Some(cursor) = cursor {
        q.push(" AND id < ").push_bind(cursor.to_string());
    }
}

fn event_from_row(r: &SqliteRow) -> StoreResult<EventRow> {
    let object: Option<String> = r.try_get("object")?;
    Ok(EventRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        event_type: r.try_get("event_type")?,
        object: object.map(|o| from_json("object", &o)).transpose()?,
        payload: r.try_get("payload")?,
        is_test: r.try_get("is_test")?,
        created_at: r.try_get("created_at")?,
    })
}

fn delivery_from_row(r: &SqliteRow) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        event_id: r.try_get("event_id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_type: r.try_get("event_type")?,
        status: r.try_get("status")?,
        is_test: r.try_get("is_test")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        retry_base: r.try_get::<i64, _>("retry_base")? as u32,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_status_code: r
            .try_get::<Option<i64>, _>("last_status_code")?
            .map(|c| c as u16),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn attempt_from_row(r: &SqliteRow) -> StoreResult<AttemptRow> {
    Ok(AttemptRow {
        attempt: r.try_get::<i64, _>("attempt")? as u32,
        manual: r.try_get("manual")?,
        started_at: r.try_get("started_at")?,
        duration_ms: r.try_get("duration_ms")?,
        request_url: r.try_get("request_url")?,
        request_headers: r.try_get("request_headers")?,
        request_body: r.try_get("request_body")?,
        succeeded: r.try_get("succeeded")?,
        response_status: r
            .try_get::<Option<i64>, _>("response_status")?
            .map(|c| c as u16),
        response_headers: r.try_get("response_headers")?,
        response_body: r.try_get("response_body")?,
        response_truncated: r.try_get("response_truncated")?,
        error_kind: r.try_get("error_kind")?,
        error_message: r.try_get("error_message")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}

async fn set_leases(
    conn: &mut sqlx::SqliteConnection,
    ids: &[String],
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
