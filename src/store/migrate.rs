//! `mlhook migrate`: applies the embedded migrations of either store without
//! starting the service — before a rolling upgrade of several nodes, say,
//! which then start with `--skip-migrations`.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::StoreResult;

/// Which database to migrate.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A `postgres://` URL.
    Postgres(&'a str),
    /// The data directory holding `mlhook.db`.
    Sqlite(&'a Path),
}

/// Applies what is pending; answers the versions it applied (none: up to date).
pub async fn run(target: Target<'_>) -> StoreResult<Vec<i64>> {
    match target {
        Target::Postgres(url) => super::postgres::migrate(url).await,
        Target::Sqlite(data_dir) => sqlite(data_dir).await,
    }
}

async fn sqlite(data_dir: &Path) -> StoreResult<Vec<i64>> {
    let path = data_dir.join("mlhook.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let migrator = sqlx::migrate!("migrations/sqlite");
    let applied = |pool| async move {
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        rows
    };
    let before = applied(pool.clone()).await;
    migrator.run(&pool).await?;
    let after = applied(pool.clone()).await;
    pool.close().await;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}
