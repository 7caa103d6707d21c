//! Routing changes across nodes (PostgreSQL).
//!
//! Every node routes events from an in-memory copy of the projects and
//! webhooks (`subscriptions`, which follows this stream). On one node the API refreshes it after each
//! write. With several nodes, a trigger in the database announces every
//! change to `projects` and `webhooks` on the channel `mlhook_routing` (the
//! project id as payload, delivered at commit), and each node follows:
//!
//! - a notice re-reads that project (its link base and its webhooks), or
//!   forgets it when it is gone;
//! - after the listening connection is (re)established — at start, after a
//!   lost connection or a database restart — and every `FULL_RELOAD` as a
//!   safety net, every project is re-read, since notices sent while nobody
//!   listened are gone.
//!
//! Notices arrive within milliseconds of the commit, so a webhook deleted on
//! one node stops being routed by the others well within a second.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;

use crate::backoff::backoff;
use crate::ids::ProjectId;

/// The channel the trigger of migrations/postgres/0001 notifies.
pub const CHANNEL: &str = "mlhook_routing";

/// How often every project is re-read, whatever the notices said.
pub const FULL_RELOAD: Duration = Duration::from_secs(30);

/// What the listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingChange {
    /// This project, or one of its webhooks, changed.
    Project(ProjectId),
    /// Notices may have been missed (the connection was just made): re-read all.
    Everything,
}

/// The stream of routing changes; the listener stops when it is dropped.
pub struct RoutingChanges {
    changes: mpsc::UnboundedReceiver<RoutingChange>,
}

impl RoutingChanges {
    /// Listens on its own connection (not one of the pool's), reconnecting
    /// with back-off for as long as the receiver lives.
    pub(super) fn start(options: PgConnectOptions) -> RoutingChanges {
        let (tx, changes) = mpsc::unbounded_channel();
        tokio::spawn(listen(options, tx));
        RoutingChanges { changes }
    }

    pub async fn next(&mut self) -> Option<RoutingChange> {
        self.changes.recv().await
    }
}

async fn listen(options: PgConnectOptions, tx: mpsc::UnboundedSender<RoutingChange>) {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options.application_name("mlhook routing listener"));
    let mut failures: u32 = 0;
    loop {
        if tx.is_closed() {
            return;
        }
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "routing listener cannot reach the database; retrying");
                }
                tokio::time::sleep(backoff(failures, MAX_BACKOFF)).await;
                continue;
            }
        };
        if failures > 0 {
            tracing::info!("routing listener connected again");
        }
        // Listening again: whatever was announced meanwhile is re-read.
        if tx.send(RoutingChange::Everything).is_err() {
            return;
        }
        loop {
            let change = match listener.try_recv().await {
                Ok(Some(notice)) => RoutingChange::Project(notice.payload().into()),
                // The connection was lost and made again (eager reconnect).
                Ok(None) => RoutingChange::Everything,
                Err(e) => {
                    tracing::warn!(error = %e, "routing listener lost the database");
                    failures = 1;
                    tokio::time::sleep(backoff(failures, MAX_BACKOFF)).await;
                    break;
                }
            };
            if tx.send(change).is_err() {
                return;
            }
        }
    }
}

async fn connect(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// The listener waits at most this long before it tries the database again.
const MAX_BACKOFF: Duration = Duration::from_millis(3200);
