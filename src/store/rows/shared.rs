//! The statements SQLite and PostgreSQL run alike, written once. Each takes
//! the connection (or transaction) to run on: which one, and how a failed
//! write is noted, is the store's business. Placeholders are `$n`, which
//! both databases read; integers are bound as `i64` or `i32`, which both
//! take for their INTEGER and BIGINT columns.

use std::marker::PhantomData;

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type};

use super::super::{
    AttemptRow, AuditRecord, DeliveryFilter, DeliveryRow, EventFilter, EventRow, Project,
    StatusCounts, StoreError, StoreResult, TokenRecord,
};
use super::account::{AuditColumns, TokenColumns};
use super::events::{AttemptColumns, DeliveryColumns, EventColumns};
use super::source::{RejectionColumns, SourceColumns};
use super::webhook::{WEBHOOK_COLUMNS, WEBHOOK_VALUES, WebhookColumns};
use super::{counts_by_status, decode, id_bound, to_json};
use crate::ids::{DeliveryId, EventId, ProjectId, SourceId, TokenId, WebhookId};
use crate::sources::{Source, SourceActivity, SourceRejection};
use crate::webhook::Webhook;

/// The number of rows a statement changed: sqlx gives each database's
/// result its own type.
pub(in crate::store) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// The shared statements of database `DB` (`Shared::<Sqlite>`,
/// `Shared::<Postgres>`).
pub(in crate::store) struct Shared<DB>(PhantomData<DB>);

type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

impl<DB> Shared<DB>
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'r> Project: FromRow<'r, DB::Row>,
    for<'r> TokenColumns: FromRow<'r, DB::Row>,
    for<'r> AuditColumns<'r>: FromRow<'r, DB::Row>,
    for<'r> WebhookColumns<'r>: FromRow<'r, DB::Row>,
    for<'r> EventColumns<'r>: FromRow<'r, DB::Row>,
    for<'r> DeliveryColumns: FromRow<'r, DB::Row>,
    for<'r> AttemptColumns: FromRow<'r, DB::Row>,
    for<'r> SourceColumns: FromRow<'r, DB::Row>,
    for<'r> RejectionColumns: FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (i64, Option<i64>): FromRow<'r, DB::Row>,
    for<'r> (Option<i64>,): FromRow<'r, DB::Row>,
    for<'r> (bool,): FromRow<'r, DB::Row>,
{
    // ---- Projects ----

    pub(in crate::store) async fn create_project(
        conn: &mut DB::Connection,
        p: &Project,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO projects (id, name, link_base_url, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id.as_str())
        .bind(p.name.as_str())
        .bind(p.link_base_url.as_deref())
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(conn)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("project {:?} already exists", p.id),
            )),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    pub(in crate::store) async fn list_projects(
        conn: &mut DB::Connection,
    ) -> StoreResult<Vec<Project>> {
        Ok(sqlx::query_as("SELECT * FROM projects ORDER BY id")
            .fetch_all(conn)
            .await?)
    }

    pub(in crate::store) async fn get_project(
        conn: &mut DB::Connection,
        id: &ProjectId,
    ) -> StoreResult<Option<Project>> {
        Ok(sqlx::query_as("SELECT * FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?)
    }

    pub(in crate::store) async fn update_project(
        conn: &mut DB::Connection,
        p: &Project,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE projects SET name = $1, link_base_url = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(p.name.as_str())
        .bind(p.link_base_url.as_deref())
        .bind(p.updated_at)
        .bind(p.id.as_str())
        .execute(conn)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn delete_project(
        conn: &mut DB::Connection,
        id: &ProjectId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- Tokens and the audit log ----

    pub(in crate::store) async fn insert_token(
        conn: &mut DB::Connection,
        t: &TokenRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tokens (id, project_id, kind, token_hash, prefix, name, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(t.id.as_str())
        .bind(t.project_id.as_deref())
        .bind(t.kind.as_str())
        .bind(t.token_hash.as_str())
        .bind(t.prefix.as_str())
        .bind(t.name.as_deref())
        .bind(t.created_at)
        .bind(t.revoked_at)
        .execute(conn)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn find_token(
        conn: &mut DB::Connection,
        token_hash: &str,
    ) -> StoreResult<Option<TokenRecord>> {
        let row: Option<TokenColumns> =
            sqlx::query_as("SELECT * FROM tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(conn)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    pub(in crate::store) async fn has_admin_token(conn: &mut DB::Connection) -> StoreResult<bool> {
        let (found,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL)",
        )
        .fetch_one(conn)
        .await?;
        Ok(found)
    }

    pub(in crate::store) async fn list_tokens(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
    ) -> StoreResult<Vec<TokenRecord>> {
        let rows: Vec<TokenColumns> =
            sqlx::query_as("SELECT * FROM tokens WHERE project_id = $1 ORDER BY id")
                .bind(project_id)
                .fetch_all(conn)
                .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub(in crate::store) async fn revoke_token(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        token_id: &TokenId,
        at: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND project_id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(token_id)
        .bind(project_id)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(in crate::store) async fn append_audit(
        conn: &mut DB::Connection,
        r: &AuditRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, project_id, at, actor, action, target_id, changes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id.as_str())
        .bind(r.project_id.as_deref())
        .bind(r.at)
        .bind(r.actor.as_str())
        .bind(r.action.as_str())
        .bind(r.target_id.as_str())
        .bind(to_json(&r.changes))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// A page of a project's audit records, newest first, older than `before`
    /// (an id). The store builds and runs it (`audit_from`): a builder
    /// borrowed by its own query cannot be dropped in code generic over the
    /// database.
    pub(in crate::store) fn audit_page<'a>(
        project_id: &'a ProjectId,
        before: Option<&'a str>,
        limit: u32,
    ) -> QueryBuilder<'a, DB> {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM audit_log WHERE project_id = ");
        q.push_bind(project_id);
        if let Some(before) = before {
            q.push(" AND id < ").push_bind(before);
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        q
    }

    pub(in crate::store) fn audit_from(rows: Vec<DB::Row>) -> StoreResult<Vec<AuditRecord>> {
        rows.iter().map(decode::<_, AuditColumns, _>).collect()
    }

    // ---- Webhooks (as stored: `sealed` seals and opens their secrets) ----

    /// Binds a webhook's columns in the order of `WEBHOOK_COLUMNS` ($1 … $22).
    fn bind_webhook<'q>(query: Query<'q, DB>, w: &'q Webhook) -> Query<'q, DB> {
        query
            .bind(w.id.as_str())
            .bind(w.project_id.as_str())
            .bind(w.name.as_str())
            .bind(w.description.as_str())
            .bind(w.url.as_str())
            .bind(w.format.as_str())
            .bind(to_json(&w.events))
            .bind(to_json(&w.scope))
            .bind(to_json(&w.headers))
            .bind(w.secret.as_deref())
            .bind(w.signing_secret.as_str())
            .bind(w.include_result)
            .bind(w.enabled)
            .bind(w.disabled_reason.as_deref())
            .bind(w.disabled_at)
            .bind(w.created_at)
            .bind(w.updated_at)
            .bind(to_json(&w.format_config))
            .bind(w.rate_limit.as_ref().map(to_json))
            .bind(w.previous_signing.as_ref().map(|p| p.key.as_str()))
            .bind(w.previous_signing.as_ref().map(|p| p.expires_at))
            .bind(w.mlflow_shape.as_str())
    }

    pub(in crate::store) async fn insert_webhook(
        conn: &mut DB::Connection,
        sealed: &Webhook,
    ) -> StoreResult<()> {
        let sql = format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ({WEBHOOK_VALUES})");
        Self::bind_webhook(sqlx::query(&sql), sealed)
            .execute(conn)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn update_webhook(
        conn: &mut DB::Connection,
        sealed: &Webhook,
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE webhooks SET ({WEBHOOK_COLUMNS}) = ({WEBHOOK_VALUES}) WHERE id = $23 AND project_id = $24"
        );
        Self::bind_webhook(sqlx::query(&sql), sealed)
            .bind(sealed.id.as_str())
            .bind(sealed.project_id.as_str())
            .execute(conn)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn delete_webhook(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        id: &WebhookId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(in crate::store) async fn get_webhook(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        id: &WebhookId,
    ) -> StoreResult<Option<Webhook>> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(decode::<_, WebhookColumns, _>).transpose()
    }

    /// A project's webhooks, or with `None` every project's.
    pub(in crate::store) async fn list_webhooks(
        conn: &mut DB::Connection,
        project_id: Option<&ProjectId>,
    ) -> StoreResult<Vec<Webhook>> {
        let rows = match project_id {
            Some(project_id) => {
                sqlx::query("SELECT * FROM webhooks WHERE project_id = $1 ORDER BY id")
                    .bind(project_id)
                    .fetch_all(conn)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM webhooks ORDER BY id")
                    .fetch_all(conn)
                    .await?
            }
        };
        rows.iter().map(decode::<_, WebhookColumns, _>).collect()
    }

    // ---- Events, deliveries, attempts: reads ----

    pub(in crate::store) async fn get_event(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        event_id: &EventId,
    ) -> StoreResult<Option<EventRow>> {
        let row = sqlx::query("SELECT * FROM events WHERE id = $1 AND project_id = $2")
            .bind(event_id)
            .bind(project_id)
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(decode::<_, EventColumns, _>).transpose()
    }

    /// A page of events (run by the store, as `audit_page`).
    pub(in crate::store) fn events_page(f: &EventFilter) -> QueryBuilder<'_, DB> {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM events WHERE project_id = ");
        q.push_bind(f.project_id.as_str());
        if let Some(t) = &f.event_type {
            q.push(" AND event_type = ").push_bind(t.as_str());
        }
        Self::push_id_window(&mut q, "evt", f.since, f.until, f.cursor.as_deref());
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        q
    }

    pub(in crate::store) fn events_from(rows: Vec<DB::Row>) -> StoreResult<Vec<EventRow>> {
        rows.iter().map(decode::<_, EventColumns, _>).collect()
    }

    /// A page of the delivery log (run by the store, as `audit_page`).
    pub(in crate::store) fn deliveries_page(f: &DeliveryFilter) -> QueryBuilder<'_, DB> {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM deliveries WHERE project_id = ");
        q.push_bind(f.project_id.as_str());
        if let Some(w) = &f.webhook_id {
            q.push(" AND webhook_id = ").push_bind(w.as_str());
        }
        if let Some(e) = &f.event_id {
            q.push(" AND event_id = ").push_bind(e.as_str());
        }
        if let Some(t) = &f.event_type {
            q.push(" AND event_type = ").push_bind(t.as_str());
        }
        if let Some(status) = f.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        Self::push_id_window(&mut q, "msg", f.since, f.until, f.cursor.as_deref());
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        q
    }

    pub(in crate::store) fn deliveries_from(rows: Vec<DB::Row>) -> StoreResult<Vec<DeliveryRow>> {
        rows.iter().map(decode::<_, DeliveryColumns, _>).collect()
    }

    pub(in crate::store) async fn get_delivery(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        delivery_id: &DeliveryId,
    ) -> StoreResult<Option<DeliveryRow>> {
        let row: Option<DeliveryColumns> =
            sqlx::query_as("SELECT * FROM deliveries WHERE id = $1 AND project_id = $2")
                .bind(delivery_id)
                .bind(project_id)
                .fetch_optional(conn)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    pub(in crate::store) async fn event_deliveries(
        conn: &mut DB::Connection,
        event_id: &EventId,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let rows: Vec<DeliveryColumns> =
            sqlx::query_as("SELECT * FROM deliveries WHERE event_id = $1 ORDER BY id")
                .bind(event_id)
                .fetch_all(conn)
                .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// A delivery's attempts in the order they were written: `write_order`
    /// is the column that keeps it (SQLite's `rowid`, PostgreSQL's `seq`).
    pub(in crate::store) async fn delivery_attempts(
        conn: &mut DB::Connection,
        delivery_id: &DeliveryId,
        write_order: &str,
    ) -> StoreResult<Vec<AttemptRow>> {
        let sql = format!(
            "SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY started_at, {write_order}"
        );
        let rows: Vec<AttemptColumns> = sqlx::query_as(&sql)
            .bind(delivery_id)
            .fetch_all(conn)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Deliveries of a webhook created since `since`, counted by status.
    pub(in crate::store) async fn status_counts(
        conn: &mut DB::Connection,
        webhook_id: &WebhookId,
        since: i64,
    ) -> StoreResult<StatusCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE webhook_id = $1 AND id >= $2 GROUP BY status",
        )
        .bind(webhook_id)
        .bind(id_bound("msg", since))
        .fetch_all(conn)
        .await?;
        Ok(counts_by_status(rows))
    }

    /// Narrows a query on ids of `prefix` to a creation-time window and to
    /// the ids before `cursor`.
    pub(in crate::store) fn push_id_window(
        q: &mut QueryBuilder<'_, DB>,
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

    // ---- Sources (MLflow), their accepted delivery ids and their logs ----

    pub(in crate::store) async fn create_source(
        conn: &mut DB::Connection,
        sealed: &Source,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sources (id, project_id, kind, name, secret, tolerance_secs, workspace_name, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(sealed.id.as_str())
        .bind(sealed.project_id.as_str())
        .bind(sealed.kind.as_str())
        .bind(sealed.name.as_str())
        .bind(sealed.secret.as_deref())
        .bind(i32::try_from(sealed.tolerance_secs).unwrap_or(i32::MAX))
        .bind(sealed.workspace_name.as_deref())
        .bind(sealed.created_at)
        .bind(sealed.updated_at)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Writes a changed source (sealed): name, secrets, tolerance, workspace.
    pub(in crate::store) async fn update_source(
        conn: &mut DB::Connection,
        sealed: &Source,
    ) -> StoreResult<bool> {
        let previous = sealed.previous_secret.as_ref();
        let done = sqlx::query(
            "UPDATE sources SET name = $1, secret = $2, tolerance_secs = $3, workspace_name = $4, \
             previous_secret = $5, previous_secret_expires_at = $6, updated_at = $7 \
             WHERE id = $8 AND project_id = $9",
        )
        .bind(sealed.name.as_str())
        .bind(sealed.secret.as_deref())
        .bind(i32::try_from(sealed.tolerance_secs).unwrap_or(i32::MAX))
        .bind(sealed.workspace_name.as_deref())
        .bind(previous.map(|p| p.secret.as_str()))
        .bind(previous.map(|p| p.expires_at))
        .bind(sealed.updated_at)
        .bind(sealed.id.as_str())
        .bind(sealed.project_id.as_str())
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A project's sources, oldest first, secrets still sealed.
    pub(in crate::store) async fn list_sources(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
    ) -> StoreResult<Vec<Source>> {
        let rows: Vec<SourceColumns> =
            sqlx::query_as("SELECT * FROM sources WHERE project_id = $1 ORDER BY id")
                .bind(project_id)
                .fetch_all(conn)
                .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// A source, its secret still sealed.
    pub(in crate::store) async fn get_source(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        id: &SourceId,
    ) -> StoreResult<Option<Source>> {
        let row: Option<SourceColumns> =
            sqlx::query_as("SELECT * FROM sources WHERE id = $1 AND project_id = $2")
                .bind(id)
                .bind(project_id)
                .fetch_optional(conn)
                .await?;
        row.map(TryInto::try_into).transpose()
    }

    pub(in crate::store) async fn delete_source(
        conn: &mut DB::Connection,
        project_id: &ProjectId,
        id: &SourceId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sources WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(in crate::store) async fn source_delivery_accepted(
        conn: &mut DB::Connection,
        source_id: &SourceId,
        delivery_id: &str,
    ) -> StoreResult<Option<i64>> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT accepted_at FROM source_deliveries WHERE source_id = $1 AND delivery_id = $2",
        )
        .bind(source_id)
        .bind(delivery_id)
        .fetch_optional(conn)
        .await?;
        Ok(row.and_then(|(at,)| at))
    }

    /// Run in a transaction: the remembered id and the forgetting go together.
    pub(in crate::store) async fn record_source_delivery(
        tx: &mut DB::Connection,
        source_id: &SourceId,
        delivery_id: &str,
        event_id: &EventId,
        accepted_at: i64,
        forget_before: i64,
    ) -> StoreResult<bool> {
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
        Ok(done.rows_affected() > 0)
    }

    /// Run in a transaction: the new entry and the trimming go together.
    pub(in crate::store) async fn record_source_rejection(
        tx: &mut DB::Connection,
        r: &SourceRejection,
        keep: u32,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO source_rejections (source_id, at, status, code, reason, delivery_id, event_type, body) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM sources WHERE id = $1)",
        )
        .bind(r.source_id.as_str())
        .bind(r.at)
        .bind(i32::from(r.status))
        .bind(r.code.as_str())
        .bind(r.reason.as_str())
        .bind(r.delivery_id.as_deref())
        .bind(r.event_type.as_deref())
        .bind(r.body.as_deref())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM source_rejections WHERE source_id = $1 AND id <= \
             (SELECT id FROM source_rejections WHERE source_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(r.source_id.as_str())
        .bind(i64::from(keep))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn source_rejections(
        conn: &mut DB::Connection,
        source_id: &SourceId,
        limit: u32,
    ) -> StoreResult<Vec<SourceRejection>> {
        let rows: Vec<RejectionColumns> = sqlx::query_as(
            "SELECT * FROM source_rejections WHERE source_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(source_id)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub(in crate::store) async fn source_activity(
        conn: &mut DB::Connection,
        source_id: &SourceId,
        since: i64,
    ) -> StoreResult<SourceActivity> {
        let (accepted, last_accepted_at): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*) AS n, MAX(accepted_at) AS last FROM source_deliveries \
             WHERE source_id = $1 AND accepted_at >= $2",
        )
        .bind(source_id)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
        let (rejected, last_rejected_at): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*) AS n, MAX(at) AS last FROM source_rejections WHERE source_id = $1",
        )
        .bind(source_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(SourceActivity {
            accepted: accepted as u64,
            last_accepted_at,
            rejected: rejected as u64,
            last_rejected_at,
        })
    }
}
