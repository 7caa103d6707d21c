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

use super::rows::{counts_by_status, from_json, id_bound, to_json};
use super::*;
use crate::secrets::SecretBox;
use crate::webhook::{Format, PreviousSigningKey, Webhook};

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

    fn open_webhook(&self, row: &PgRow) -> StoreResult<Webhook> {
        sealed::open_webhook(webhook_from_row(row)?, &self.secrets)
    }
}

fn project_from_row(row: &PgRow) -> StoreResult<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        link_base_url: row.try_get("link_base_url")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn token_from_row(row: &PgRow) -> StoreResult<TokenRecord> {
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

fn audit_from_row(row: &PgRow) -> StoreResult<AuditRecord> {
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

fn webhook_from_row(row: &PgRow) -> StoreResult<Webhook> {
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

fn previous_signing_from_row(row: &PgRow) -> StoreResult<Option<PreviousSigningKey>> {
    let key: Option<String> = row.try_get("previous_signing_secret")?;
    let expires_at: Option<i64> = row.try_get("previous_signing_expires_at")?;
    Ok(key
        .zip(expires_at)
        .map(|(key, expires_at)| PreviousSigningKey { key, expires_at }))
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds a webhook's columns in the order of `WEBHOOK_COLUMNS` ($1 … $21).
fn bind_webhook<'q>(query: PgQuery<'q>, w: &'q Webhook) -> PgQuery<'q> {
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
const WEBHOOK_VALUES: &str =
    "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21";

/// A transaction on a pooled connection.
type Tx<'c> = sqlx::Transaction<'c, Postgres>;

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
        let result = sqlx::query(
            "INSERT INTO projects (id, name, link_base_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.link_base_url)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *self.conn().await?)
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
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(project_from_row).collect()
    }

    async fn get_project(&self, id: &str) -> StoreResult<Option<Project>> {
        let row = sqlx::query("SELECT * FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn update_project(&self, p: &Project) -> StoreResult<()> {
        sqlx::query(
            "UPDATE projects SET name = $1, link_base_url = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&p.name)
        .bind(&p.link_base_url)
        .bind(p.updated_at)
        .bind(&p.id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn delete_project(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tokens (id, project_id, kind, token_hash, prefix, name, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.project_id)
        .bind(t.kind.as_str())
        .bind(&t.token_hash)
        .bind(&t.prefix)
        .bind(&t.name)
        .bind(t.created_at)
        .bind(t.revoked_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL)",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(found)
    }

    async fn list_tokens(&self, project_id: &str) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE project_id = $1 ORDER BY id")
            .bind(project_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, project_id: &str, token_id: &str, at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND project_id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(token_id)
        .bind(project_id)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, project_id, at, actor, action, target_id, changes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(&r.project_id)
        .bind(r.at)
        .bind(&r.actor)
        .bind(&r.action)
        .bind(&r.target_id)
        .bind(to_json(&r.changes))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        project_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE project_id = $1 AND ($2::text IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(project_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        let sql = format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ({WEBHOOK_VALUES})");
        bind_webhook(sqlx::query(&sql), &sealed)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn update_webhook(&self, w: &Webhook) -> StoreResult<()> {
        let sealed = sealed::seal_webhook(w, &self.secrets);
        let sql = format!(
            "UPDATE webhooks SET ({WEBHOOK_COLUMNS}) = ({WEBHOOK_VALUES}) WHERE id = $22 AND project_id = $23"
        );
        bind_webhook(sqlx::query(&sql), &sealed)
            .bind(&w.id)
            .bind(&w.project_id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn delete_webhook(&self, project_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_webhook(&self, project_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(|r| self.open_webhook(r)).transpose()
    }

    async fn list_webhooks(&self, project_id: &str) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query("SELECT * FROM webhooks WHERE project_id = $1 ORDER BY id")
            .bind(project_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| self.open_webhook(r)).collect()
    }

    async fn list_all_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| self.open_webhook(r)).collect()
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
                Ok((
                    r.try_get::<i64, _>("next_attempt_at")?,
                    DueDelivery {
                        delivery_id: r.try_get("id")?,
                        webhook_id: r.try_get("webhook_id")?,
                        project_id: r.try_get("project_id")?,
                        event_id: r.try_get("event_id")?,
                        event_type: r.try_get("event_type")?,
                        payload: r.try_get("payload")?,
                        attempts: r.try_get::<i32, _>("attempts")? as u32,
                        retry_base: r.try_get::<i32, _>("retry_base")? as u32,
                    },
                ))
            })
            .collect::<StoreResult<_>>()?;
        // RETURNING has no order: hand them out oldest due first, as SQLite does.
        due.sort_by(|a, b| (a.0, &a.1.delivery_id).cmp(&(b.0, &b.1.delivery_id)));
        Ok(due.into_iter().map(|(_, d)| d).collect())
    }

    /// Renews only leases this node still owns: one another node took over
    /// (this node stalled past its lease) stays with that node.
    async fn renew_leases(&self, delivery_ids: &[String], lease_until: i64) -> StoreResult<()> {
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

    async fn get_event(&self, project_id: &str, event_id: &str) -> StoreResult<Option<EventRow>> {
        let row = sqlx::query("SELECT * FROM events WHERE id = $1 AND project_id = $2")
            .bind(event_id)
            .bind(project_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn list_events(&self, f: &EventFilter) -> StoreResult<Vec<EventRow>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM events WHERE project_id = ");
        q.push_bind(&f.project_id);
        if let Some(t) = &f.event_type {
            q.push(" AND event_type = ").push_bind(t);
        }
        push_id_window(&mut q, "evt", f.since, f.until, f.cursor.as_deref());
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        let rows = q.build().fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn list_deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM deliveries WHERE project_id = ");
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
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        let rows = q.build().fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn get_delivery(
        &self,
        project_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<DeliveryRow>> {
        let row = sqlx::query("SELECT * FROM deliveries WHERE id = $1 AND project_id = $2")
            .bind(delivery_id)
            .bind(project_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn delivery_attempts(&self, delivery_id: &str) -> StoreResult<Vec<AttemptRow>> {
        let rows =
            sqlx::query("SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY started_at, seq")
                .bind(delivery_id)
                .fetch_all(&mut *self.conn().await?)
                .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn webhook_stats(&self, webhook_id: &str, now: i64) -> StoreResult<WebhookStats> {
        const HOUR: i64 = 3600 * 1000;
        let mut conn = self.conn().await?;
        let last_hour = status_counts(&mut conn, webhook_id, now - HOUR).await?;
        let last_day = status_counts(&mut conn, webhook_id, now - 24 * HOUR).await?;
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

    async fn pause_deliveries(&self, delivery_ids: &[String]) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, lease_until = NULL, \
             lease_owner = NULL WHERE id = ANY($1) AND status IN ('pending', 'failed')",
        )
        .bind(delivery_ids)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn disable_webhook(&self, webhook_id: &str, reason: &str, at: i64) -> StoreResult<bool> {
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

    async fn pause_webhook_deliveries(&self, webhook_id: &str) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
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
        let mut q = QueryBuilder::<Postgres>::new(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ",
        );
        q.push_bind(now)
            .push(", retry_base = attempts, lease_until = NULL, lease_owner = NULL, updated_at = ")
            .push_bind(now)
            .push(" WHERE webhook_id = ")
            .push_bind(webhook_id)
            .push(" AND NOT is_test AND status IN ('failed', 'exhausted', 'paused')");
        push_id_window(&mut q, "msg", Some(since), until, None);
        let done = q.build().execute(&mut *self.conn().await?).await?;
        Ok(done.rows_affected())
    }

    async fn last_success_at(&self, webhook_id: &str) -> StoreResult<Option<i64>> {
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

    async fn event_deliveries(&self, event_id: &str) -> StoreResult<Vec<DeliveryRow>> {
        let rows = sqlx::query("SELECT * FROM deliveries WHERE event_id = $1 ORDER BY id")
            .bind(event_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    // ---- Sources (MLflow) ----

    async fn create_source(&self, s: &crate::sources::Source) -> StoreResult<()> {
        let s = &s.sealed(&self.secrets);
        sqlx::query(
            "INSERT INTO sources (id, project_id, kind, name, secret, tolerance_secs, workspace_name, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.id)
        .bind(&s.project_id)
        .bind(s.kind.as_str())
        .bind(&s.name)
        .bind(&s.secret)
        .bind(i32::try_from(s.tolerance_secs).unwrap_or(i32::MAX))
        .bind(&s.workspace_name)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn list_sources(&self, project_id: &str) -> StoreResult<Vec<crate::sources::Source>> {
        let rows = sqlx::query("SELECT * FROM sources WHERE project_id = $1 ORDER BY id")
            .bind(project_id)
            .fetch_all(&mut *self.conn().await?)
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
        let row = sqlx::query("SELECT * FROM sources WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref()
            .map(|r| source_from_row(r, &self.secrets))
            .transpose()
    }

    async fn delete_source(&self, project_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sources WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn source_delivery_accepted(
        &self,
        source_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<i64>> {
        let at = sqlx::query_scalar(
            "SELECT accepted_at FROM source_deliveries WHERE source_id = $1 AND delivery_id = $2",
        )
        .bind(source_id)
        .bind(delivery_id)
        .fetch_optional(&mut *self.conn().await?)
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
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(
            "INSERT INTO source_deliveries (source_id, delivery_id, event_id, accepted_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (source_id, delivery_id) DO NOTHING",
        )
        .bind(source_id)
        .bind(delivery_id)
        .bind(event_id)
        .bind(accepted_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM source_deliveries WHERE accepted_at < $1")
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
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO source_rejections (source_id, at, status, code, reason, delivery_id, event_type) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM sources WHERE id = $1)",
        )
        .bind(&r.source_id)
        .bind(r.at)
        .bind(i32::from(r.status))
        .bind(&r.code)
        .bind(&r.reason)
        .bind(&r.delivery_id)
        .bind(&r.event_type)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM source_rejections WHERE source_id = $1 AND id <= \
             (SELECT id FROM source_rejections WHERE source_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(&r.source_id)
        .bind(i64::from(keep))
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
            "SELECT * FROM source_rejections WHERE source_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(source_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::sources::SourceRejection {
                    source_id: r.try_get("source_id")?,
                    at: r.try_get("at")?,
                    status: r.try_get::<i32, _>("status")? as u16,
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
             WHERE source_id = $1 AND accepted_at >= $2",
        )
        .bind(source_id)
        .bind(since)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let rejected = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(at) AS last FROM source_rejections WHERE source_id = $1",
        )
        .bind(source_id)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(crate::sources::SourceActivity {
            accepted: accepted.try_get::<i64, _>("n")? as u64,
            last_accepted_at: accepted.try_get("last")?,
            rejected: rejected.try_get::<i64, _>("n")? as u64,
            last_rejected_at: rejected.try_get("last")?,
        })
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

/// A stored source, its secret opened.
fn source_from_row(r: &PgRow, secrets: &SecretBox) -> StoreResult<crate::sources::Source> {
    let kind: String = r.try_get("kind")?;
    crate::sources::Source {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        kind: crate::sources::SourceKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("source kind {kind}")))?,
        name: r.try_get("name")?,
        secret: r.try_get("secret")?,
        tolerance_secs: r.try_get::<i32, _>("tolerance_secs")? as u32,
        workspace_name: r.try_get("workspace_name")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    }
    .opened(secrets)
    .map_err(|_| StoreError::WrongSecretKey)
}

/// Pauses a webhook's deliveries that would otherwise be attempted.
async fn pause_unfinished(tx: &mut Tx<'_>, webhook_id: &str) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'paused', next_attempt_at = NULL, lease_until = NULL, \
         lease_owner = NULL WHERE webhook_id = $1 AND status IN ('pending', 'failed')",
    )
    .bind(webhook_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Deliveries of a webhook created since `since`, counted by status.
async fn status_counts(
    conn: &mut sqlx::PgConnection,
    webhook_id: &str,
    since: i64,
) -> StoreResult<StatusCounts> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE webhook_id = $1 AND id >= $2 GROUP BY status",
    )
    .bind(webhook_id)
    .bind(id_bound("msg", since))
    .fetch_all(conn)
    .await?;
    let pairs = rows
        .iter()
        .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
        .collect::<StoreResult<Vec<(String, i64)>>>()?;
    Ok(counts_by_status(pairs))
}

fn push_id_window(
    q: &mut QueryBuilder<'_, Postgres>,
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

fn event_from_row(r: &PgRow) -> StoreResult<EventRow> {
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

fn delivery_from_row(r: &PgRow) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        event_id: r.try_get("event_id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_type: r.try_get("event_type")?,
        status: r.try_get("status")?,
        is_test: r.try_get("is_test")?,
        attempts: r.try_get::<i32, _>("attempts")? as u32,
        retry_base: r.try_get::<i32, _>("retry_base")? as u32,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_status_code: r
            .try_get::<Option<i32>, _>("last_status_code")?
            .map(|c| c as u16),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn attempt_from_row(r: &PgRow) -> StoreResult<AttemptRow> {
    Ok(AttemptRow {
        attempt: r.try_get::<i32, _>("attempt")? as u32,
        manual: r.try_get("manual")?,
        started_at: r.try_get("started_at")?,
        duration_ms: r.try_get("duration_ms")?,
        request_url: r.try_get("request_url")?,
        request_headers: r.try_get("request_headers")?,
        request_body: r.try_get("request_body")?,
        succeeded: r.try_get("succeeded")?,
        response_status: r
            .try_get::<Option<i32>, _>("response_status")?
            .map(|c| c as u16),
        response_headers: r.try_get("response_headers")?,
        response_body: r.try_get("response_body")?,
        response_truncated: r.try_get("response_truncated")?,
        error_kind: r.try_get("error_kind")?,
        error_message: r.try_get("error_message")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}
