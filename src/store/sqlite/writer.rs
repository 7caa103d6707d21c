//! The embedded store's hot-path writer: a thread of its own owning a SQLite
//! connection, writing new events, deliveries and attempt outcomes in group
//! commits (the statements themselves are in `hot`).
//!
//! Why a thread: through sqlx every statement is a message to the
//! connection's worker thread and a wake-up of the async task that sent it,
//! which a busy runtime polls again only when it gets to it. An ingest or
//! recorder transaction of a dozen statements spent more time between its
//! statements than in them (2.4 ms per ingest + recorder pair of 16 rows each
//! against 0.7 ms of SQLite work). Here a transaction runs start to end on one
//! thread with prepared statements, and whatever queued meanwhile — ingest's
//! events and the recorder's outcomes alike — shares the next transaction and
//! its fsync.
//!
//! Every other write still goes through sqlx's writer connection. The two
//! never meet on SQLite's lock (whose busy handler sleeps for milliseconds):
//! both take the store's write turn first, so writers queue in process.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{Mutex, oneshot};

use super::super::{StoreError, StoreResult};

/// Serialises every write of the process: the hot writer holds it for each of
/// its transactions, sqlx's writer for each of its statements or transactions.
pub(super) type WriteTurn = Arc<Mutex<()>>;

/// Jobs taken into one transaction at most; each is already a group (up to
/// 4,096 events or 256 outcomes), so this only bounds a burst.
const MAX_JOBS_PER_COMMIT: usize = 64;

/// A write to make inside the shared transaction; what it returns is called
/// once the transaction has committed (or failed to).
type Job = Box<dyn FnOnce(&mut Transaction) -> Answer + Send>;
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// The handle the store's async methods send their writes through.
pub(super) struct HotWriter {
    jobs: mpsc::Sender<Job>,
}

impl HotWriter {
    /// Opens the connection (the database exists and is migrated) and starts
    /// the thread; it ends when the store, the last sender, is dropped.
    pub(super) fn start(path: &Path, turn: WriteTurn) -> StoreResult<HotWriter> {
        let conn = open(path)?;
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("mlhook-sqlite-writer".into())
            .spawn(move || run(conn, queue, turn))
            .map_err(|e| StoreError::Embedded(format!("could not start the writer thread: {e}")))?;
        Ok(HotWriter { jobs })
    }

    /// Runs `write` in the next group commit, inside a savepoint of its own
    /// (it fails alone, leaving nothing behind), and answers once its
    /// transaction is durable.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let result = in_savepoint(tx, write);
            Box::new(move |commit| {
                let result = match commit {
                    Ok(()) => result,
                    Err(message) => Err(StoreError::Embedded(message.to_string())),
                };
                // A caller that gave up waiting needs no answer.
                let _ = reply.send(result);
            })
        });
        self.jobs.send(job).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The same settings as sqlx's connections: WAL, fsync at every commit,
/// foreign keys enforced.
fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Each job's savepoint keeps the pages it changes in a sub-journal; on
    // disk that file was written on every commit (a third of the thread's
    // time), in memory it is a copy of a few pages.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Only another process could hold the lock (the data directory's file
    // lock forbids one); within this one the write turn orders writers.
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>, turn: WriteTurn) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_COMMIT {
            let Ok(next) = queue.try_recv() else { break };
            jobs.push(next);
        }
        let _turn = turn.blocking_lock();
        commit(&mut conn, jobs);
    }
}

/// Writes every job in one transaction and answers them after the commit.
/// A transaction that cannot start drops its jobs: their callers get
/// `WriterStopped` and the log says why.
fn commit(conn: &mut Connection, jobs: Vec<Job>) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, jobs = jobs.len(), "the store's writer could not begin a transaction");
            return;
        }
    };
    let answers: Vec<Answer> = jobs.into_iter().map(|job| job(&mut tx)).collect();
    let committed = tx.commit().map_err(|e| {
        tracing::error!(error = %e, "the store's writer could not commit");
        e.to_string()
    });
    for answer in answers {
        answer(committed.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

fn in_savepoint<T>(
    tx: &mut Transaction,
    write: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let sp = tx.savepoint()?;
    let result = write(&sp);
    if result.is_ok() {
        sp.commit()?;
    } // else dropped, which rolls the savepoint back
    result
}
