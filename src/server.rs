//! `mlhook serve`: opens the store, starts the delivery engine and the API,
//! and shuts both down in order on SIGINT/SIGTERM.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::api::metrics::MetricsAccess;
use crate::api::{self, AppState, Resources, auth};
use crate::catalog::Catalog;
use crate::config::{Database, ServeConfig};
use crate::delivery::Engine;
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::retention;
use crate::secrets::SecretBox;
use crate::store::notify::RoutingChanges;
use crate::store::{PgOptions, PostgresStore, SqliteStore, Store, TokenKind};
use crate::subscriptions::Subscriptions;

pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let secrets = SecretBox::load(config.secret_key.as_deref(), &config.secret_key_file)
        .context("cannot load the key that seals secrets at rest")?;
    let mut opened = open_store(&config, Arc::new(secrets)).await?;
    let store = opened.store.clone();
    let admin_token_hash = admin_token(&*store, &config).await?;

    let catalog = Arc::new(Catalog::builtin());
    let subscriptions = Arc::new(Subscriptions::load(&*store).await?);
    if let Some(routing) = opened.routing.take() {
        // Several nodes: follow the webhook changes any of them makes.
        tokio::spawn(subscriptions.clone().follow(store.clone(), routing));
    }
    let metrics = Arc::new(Metrics::new());
    let delivery = crate::delivery::DeliveryConfig {
        shared_store: opened.shared,
        ..config.delivery.clone()
    };
    let (engine, notices) = Engine::start(
        delivery,
        store.clone(),
        subscriptions.clone(),
        catalog.clone(),
        metrics.clone(),
    );
    let engine = Arc::new(engine);
    let lease_ms = config.delivery.lease.as_millis() as i64;
    let ingestor = Ingestor::start(
        store.clone(),
        engine.clone(),
        catalog.clone(),
        subscriptions.clone(),
        lease_ms,
        db_wait(&config),
        metrics.clone(),
    );
    ingestor.publish_notices(notices);
    retention::start(store.clone(), config.retention);
    let state = AppState::new(Resources {
        store: store.clone(),
        catalog,
        subscriptions,
        ingestor,
        engine: engine.clone(),
        network: config.delivery.network.clone(),
        admin_token_hash,
        token_cache: Arc::default(),
        auth_failures: Arc::new(auth::AuthFailures::new(config.auth_failures_per_minute)),
        signing_grace_ms: config.signing_grace_period.as_millis() as i64,
        max_body_bytes: config.max_body_bytes,
        metrics,
        metrics_access: MetricsAccess::new(config.metrics_public, config.metrics_token.as_deref()),
        db_wait: db_wait(&config),
    });

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // A plain line on stdout, for people and for tests that start on port 0.
    println!("mlhook listening on http://{address}");
    tracing::info!(%address, data_dir = %config.data_dir.display(), "mlhook started");

    crate::connections::serve(
        listener,
        api::router(state, crate::console::routes()),
        config.connections,
        shutdown_signal(),
    )
    .await;
    tracing::info!("API stopped; finishing deliveries in flight");
    engine.shutdown(config.shutdown_grace).await;
    if opened.shared {
        // What was queued here goes to the other nodes now, not after a lease.
        match store.release_all_leases().await {
            Ok(released) => tracing::info!(released, "released this node's leases"),
            Err(e) => tracing::warn!(error = %e, "could not release leases; they expire"),
        }
    }
    tracing::info!("mlhook stopped");
    Ok(())
}

/// PostgreSQL: how long a request may wait for the database before its 503.
/// SQLite has no pool to wait for: its writer answers in turn.
fn db_wait(config: &ServeConfig) -> Option<std::time::Duration> {
    match &config.database {
        Database::Sqlite => None,
        Database::Postgres {
            acquire_timeout, ..
        } => Some(*acquire_timeout),
    }
}

/// The store `serve` runs on, and what running on it takes.
struct OpenedStore {
    store: Arc<dyn Store>,
    /// SQLite: the data directory's lock, held while the process runs.
    _lock: Option<File>,
    /// PostgreSQL: project and webhook changes made by any node.
    routing: Option<RoutingChanges>,
    /// Other nodes may share the store.
    shared: bool,
}

async fn open_store(config: &ServeConfig, secrets: Arc<SecretBox>) -> anyhow::Result<OpenedStore> {
    match &config.database {
        Database::Sqlite => {
            let lock = lock_data_dir(&config.data_dir)?;
            let store = SqliteStore::open(&config.data_dir, secrets)
                .await
                .context("cannot open the store")?;
            // One process owns this data directory (the lock above): any lease in it
            // was left by a process that is gone, so its deliveries are ours to send.
            match store.release_all_leases().await {
                Ok(0) => {}
                Ok(released) => tracing::info!(
                    released,
                    "recovered deliveries left in flight by the previous run"
                ),
                // On a full disk the service starts all the same: it answers
                // reads, 503 to writes and to /readyz until space is freed.
                // Those deliveries are sent once their leases run out.
                Err(e) if e.is_no_space() => tracing::error!(
                    error = %e,
                    "the data directory's disk is full: starting without releasing the previous run's leases"
                ),
                Err(e) => return Err(e.into()),
            }
            Ok(OpenedStore {
                store: Arc::new(store),
                _lock: Some(lock),
                routing: None,
                shared: false,
            })
        }
        Database::Postgres {
            url,
            pool_size,
            statement_timeout,
            acquire_timeout,
            skip_migrations,
        } => {
            let options = PgOptions {
                url: url.clone(),
                pool_size: *pool_size,
                statement_timeout: *statement_timeout,
                acquire_timeout: *acquire_timeout,
                run_migrations: !skip_migrations,
            };
            let store = PostgresStore::connect(&options, secrets)
                .await
                .context("cannot open the PostgreSQL store")?;
            // No lock and no lease released at start: other nodes may be
            // sending theirs. A dead node's leases are released by the others
            // once its heartbeat is older than --node-timeout (the delivery
            // engine's liveness), or expire (--lease-duration).
            tracing::info!(node = store.node(), pool_size, "store: PostgreSQL");
            // Once listening, the follower re-reads every project: a change made
            // between loading the routing copy and listening is not missed.
            let routing = store.routing_changes();
            Ok(OpenedStore {
                store: Arc::new(store),
                _lock: None,
                routing: Some(routing),
                shared: true,
            })
        }
    }
}

/// Two processes on one SQLite directory would send the same deliveries twice.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    let file = File::create(dir.join("lock"))?;
    file.try_lock()
        .map_err(|_| anyhow::anyhow!("another mlhook process is using {}", dir.display()))?;
    Ok(file)
}

/// The admin token's hash from `MLHOOK_ADMIN_TOKEN`, or `None` after making
/// sure the store holds one (generated at first start, shown once).
async fn admin_token(store: &dyn Store, config: &ServeConfig) -> anyhow::Result<Option<String>> {
    if let Some(token) = &config.admin_token {
        return Ok(Some(auth::hash_token(token)));
    }
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let (token, record) =
        auth::generate_token(TokenKind::Admin, None, Some("initial admin token".into()));
    let path = config.data_dir.join("admin-token");
    write_secret_file(&path, &token)?;
    store.insert_token(&record).await?;
    // The token goes to the terminal once and to the 0600 file; never to the log.
    if std::io::stdout().is_terminal() {
        println!(
            "admin token (shown once; also in {}): {token}",
            path.display()
        );
    } else {
        println!("admin token written to {} (mode 0600)", path.display());
    }
    Ok(None)
}

fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
