//! A node's record in the shared store: its heartbeat and the marks that
//! tell the others it is dead (see `delivery::liveness`). Every time in
//! these rows is the database's clock, never a node's own.

use std::time::Duration;

use super::super::StoreResult;

/// The database's clock in unix milliseconds: heartbeats of every node are
/// stamped and compared by it, never by the nodes' own clocks.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// How long a dead node's mark is kept: longer than any of its leases can
/// last (a lease ends at most a minute of retry horizon plus
/// `--lease-duration` after it was written).
const FORGET_DEAD_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;

/// A name no other process shares: the host for people reading the table,
/// the pid and a random part so a restarted process is a new node.
pub(super) fn new_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &random[20..])
}

/// Renews the row of a live node; `false` when it has none or was marked dead.
pub(super) async fn renew(conn: &mut sqlx::PgConnection, node: &str) -> StoreResult<bool> {
    let renewed = sqlx::query(&format!(
        "UPDATE nodes SET last_seen = {DB_NOW_MS} WHERE id = $1 AND dead_at IS NULL"
    ))
    .bind(node)
    .execute(conn)
    .await?;
    Ok(renewed.rows_affected() > 0)
}

/// Writes a node's row; `false` when a row of that name exists already
/// (marked dead: names are never reused otherwise).
pub(super) async fn register(conn: &mut sqlx::PgConnection, node: &str) -> StoreResult<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO nodes (id, started_at, last_seen) VALUES ($1, {DB_NOW_MS}, {DB_NOW_MS}) \
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(node)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Marks dead the nodes but `this` not seen for `timeout`, answering their
/// names, and forgets marks older than any lease can last.
pub(super) async fn mark_dead(
    conn: &mut sqlx::PgConnection,
    timeout: Duration,
    this: &str,
) -> StoreResult<Vec<String>> {
    let dead: Vec<String> = sqlx::query_scalar(&format!(
        "UPDATE nodes SET dead_at = {DB_NOW_MS} \
         WHERE dead_at IS NULL AND last_seen < {DB_NOW_MS} - $1 AND id <> $2 RETURNING id"
    ))
    .bind(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX))
    .bind(this)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM nodes WHERE dead_at < {DB_NOW_MS} - {FORGET_DEAD_AFTER_MS}"
    ))
    .execute(&mut *conn)
    .await?;
    Ok(dead)
}
