//! The embedded store's hot-path writer: a thread of its own owning a SQLite
//! connection, writing new events, deliveries and attempt outcomes in group
//! commits (the statements themselves are in `hot`).
//!
//! Why a thread: through sqlx every statement is a message to the
//! connection's worker thread and a wake-up of the async task that sent it,
//! which a busy runtime polls again only when it gets to it. An ingest or
//! recorder transaction of a dozen statements spent more time between its
//! statements than in them (docs/performance.md). Here a transaction runs
//! start to end on one thread with prepared statements, and whatever queued
//! meanwhile — ingest's events and the recorder's outcomes alike — shares the
//! next transaction and its fsync.
//!
//! Every other write still goes through sqlx's writer connection. The two
//! never meet on SQLite's lock (whose busy handler sleeps for milliseconds):
//! both take the store's write turn first, so writers queue in process.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{Mutex, oneshot};

use super::super::{StoreError, StoreResult};
use super::space::SpaceWatch;

/// Serialises every write of the process: the hot writer holds it for each of
/// its transactions, sqlx's writer for each of its statements or transactions.
pub(super) type WriteTurn = Arc<Mutex<()>>;

/// Jobs taken into one transaction at most; each is already a group (up to
/// 4,096 events or 256 outcomes), so this only bounds a burst.
const MAX_JOBS_PER_COMMIT: usize = 64;

/// A write waiting for its transaction. It may run twice: when another
/// write of its group fails, the group is rolled back and each runs again in
/// a transaction of its own, so that a failing write fails alone and leaves
/// nothing behind (savepoints would do the same for every transaction, at
/// the cost of a sub-journal copy of each page they change).
trait Pending: Send {
    /// Writes; `false` when the write failed (its answer is that error).
    fn write(&mut self, conn: &Connection) -> bool;
    /// The write failed for lack of space.
    fn failed_for_space(&self) -> bool;
    /// Answers the caller once its transaction has committed or failed.
    fn answer(self: Box<Self>, commit: Result<(), &Failure>);
}

struct Write<T, F> {
    work: F,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Pending for Write<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> StoreResult<T> + Send,
{
    fn write(&mut self, conn: &Connection) -> bool {
        // A panic fails this write alone; the thread must live on, or every
        // later write would fail.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| (self.work)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Embedded("the write panicked".into())));
        let written = result.is_ok();
        self.result = Some(result);
        written
    }

    fn failed_for_space(&self) -> bool {
        matches!(&self.result, Some(Err(e)) if e.is_no_space())
    }

    fn answer(self: Box<Self>, commit: Result<(), &Failure>) {
        let result = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (None, Ok(())) => Err(StoreError::WriterStopped),
            (_, Err(failure)) => Err(failure.to_error()),
        };
        // A caller that gave up waiting needs no answer.
        let _ = self.reply.send(result);
    }
}

/// The handle the store's async methods send their writes through.
pub(super) struct HotWriter {
    jobs: mpsc::Sender<Box<dyn Pending>>,
}

impl HotWriter {
    /// Opens the connection (the database exists and is migrated) and starts
    /// the thread; it ends when the store, the last sender, is dropped.
    pub(super) fn start(
        path: &Path,
        wal_pages: u32,
        turn: WriteTurn,
        space: SpaceWatch,
    ) -> StoreResult<HotWriter> {
        let conn = open(path, wal_pages)?;
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("mlhook-sqlite-writer".into())
            .spawn(move || run(conn, queue, turn, space))
            .map_err(|e| StoreError::Embedded(format!("could not start the writer thread: {e}")))?;
        Ok(HotWriter { jobs })
    }

    /// Runs `work` in the next group commit and answers once its
    /// transaction is durable. `work` may run twice (see `Pending`).
    pub(super) async fn write<T: Send + 'static>(
        &self,
        work: impl FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Write {
            work,
            result: None,
            reply,
        });
        self.jobs.send(job).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The same settings as sqlx's connections (WAL, fsync at every commit, the
/// same checkpoint threshold and WAL size limit) but one: SQLite does not check foreign keys
/// here. Every statement of `hot` looks up the rows it refers to itself, to
/// leave out a row whose webhook, delivery or project was deleted meanwhile
/// rather than fail its whole group, and does so inside the transaction that
/// writes, which holds the only write lock: nothing can vanish between the
/// lookup and the write. SQLite's own check would look each one up again
/// (three lookups per delivery row). Nothing here deletes a row that others
/// refer to, so no cascade is missed.
fn open(path: &Path, wal_pages: u32) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", false)?;
    // A statement journal (a statement that may fail halfway keeps the
    // pages it changes) stays in memory rather than in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", wal_pages)?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        super::space::wal_limit_bytes(wal_pages),
    )?;
    // SAFETY: the connection was just opened and is this thread's alone.
    if !unsafe { super::space::keep_wal_files(conn.handle()) } {
        return Err(StoreError::Embedded("could not keep the WAL files".into()));
    }
    conn.busy_handler(Some(retry_soon))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Within the process the write turn orders writers, but a failed or
/// cancelled sqlx transaction gives the turn back before its rollback has
/// run on sqlx's worker thread, so its lock may outlive the turn for a
/// moment. Retry every 100 µs, for up to 10 s, rather than SQLite's default
/// sleeps of up to 100 ms.
fn retry_soon(attempts: i32) -> bool {
    const RETRY: Duration = Duration::from_micros(100);
    const PATIENCE: Duration = Duration::from_secs(10);
    if RETRY * attempts.max(0) as u32 >= PATIENCE {
        return false;
    }
    std::thread::sleep(RETRY);
    true
}

fn run(
    mut conn: Connection,
    queue: mpsc::Receiver<Box<dyn Pending>>,
    turn: WriteTurn,
    space: SpaceWatch,
) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_COMMIT {
            let Ok(next) = queue.try_recv() else { break };
            jobs.push(next);
        }
        let _turn = turn.blocking_lock();
        commit(&mut conn, jobs, &space);
    }
}

/// Writes every job in one transaction and answers them after the commit;
/// when one of several fails, each is written again alone.
fn commit(conn: &mut Connection, mut jobs: Vec<Box<dyn Pending>>, space: &SpaceWatch) {
    if jobs.len() > 1 {
        match transaction(conn, &mut jobs, space) {
            Outcome::WriteFailed => {}
            outcome => return answer_all(jobs, &outcome),
        }
    }
    for job in jobs {
        let mut alone = vec![job];
        let outcome = transaction(conn, &mut alone, space);
        answer_all(alone, &outcome);
    }
}

enum Outcome {
    Committed,
    /// A write failed; the transaction was rolled back.
    WriteFailed,
    /// The transaction could not begin or commit.
    Failed(Failure),
}

/// Why a transaction could not begin or commit, told to each of its writes.
pub(super) struct Failure {
    message: String,
    no_space: bool,
}

impl Failure {
    fn new(err: rusqlite::Error) -> Failure {
        let err = StoreError::from(err);
        Failure {
            no_space: err.is_no_space(),
            message: err.to_string(),
        }
    }

    fn to_error(&self) -> StoreError {
        if self.no_space {
            StoreError::NoSpace(self.message.clone())
        } else {
            StoreError::Embedded(self.message.clone())
        }
    }
}

fn transaction(
    conn: &mut Connection,
    jobs: &mut [Box<dyn Pending>],
    space: &SpaceWatch,
) -> Outcome {
    end_stray_transaction(conn);
    let changes_before = conn.total_changes();
    let outcome = write_and_commit(conn, jobs);
    match &outcome {
        Outcome::Committed if conn.total_changes() > changes_before => space.stored(),
        Outcome::Committed => {}
        Outcome::WriteFailed => {
            if jobs.iter().any(|job| job.failed_for_space()) {
                space.failed(&StoreError::NoSpace(String::new()));
            }
        }
        Outcome::Failed(failure) => space.failed(&failure.to_error()),
    }
    outcome
}

fn write_and_commit(conn: &mut Connection, jobs: &mut [Box<dyn Pending>]) -> Outcome {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return Outcome::Failed(Failure::new(e)),
    };
    // Stops at the first failure; dropping `tx` rolls back.
    if !jobs.iter_mut().all(|job| job.write(&tx)) {
        return Outcome::WriteFailed;
    }
    // A failed COMMIT drops `tx`, which rolls back unless SQLite already
    // did (it may, after `SQLITE_FULL` or an I/O error).
    match tx.commit() {
        Ok(()) => Outcome::Committed,
        Err(e) => Outcome::Failed(Failure::new(e)),
    }
}

/// A transaction left open (its rollback failed too) would make every later
/// `BEGIN` fail: end it before the next one.
fn end_stray_transaction(conn: &Connection) {
    if conn.is_autocommit() {
        return;
    }
    tracing::warn!("the store's writer found a transaction left open; rolling it back");
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::error!(error = %e, "the store's writer could not roll back");
    }
}

fn answer_all(jobs: Vec<Box<dyn Pending>>, outcome: &Outcome) {
    let commit = match outcome {
        Outcome::Failed(failure) => {
            tracing::error!(error = %failure.message, writes = jobs.len(), "the store's writer could not commit");
            Err(failure)
        }
        Outcome::Committed | Outcome::WriteFailed => Ok(()),
    };
    for job in jobs {
        job.answer(commit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(conn: &Connection) -> StoreResult<Vec<i64>> {
        let mut q = conn.prepare("SELECT x FROM t ORDER BY x")?;
        let rows = q.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(
            HotWriter::start(
                &dir.path().join("t.db"),
                1000,
                WriteTurn::default(),
                SpaceWatch::default(),
            )
            .unwrap(),
        );
        writer
            .write(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        // A first write that waits keeps the thread busy while the next two
        // queue, so those two share one group commit.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let gate = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(move |_| Ok(wait.recv().ok())).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let failing = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|c| {
                        c.execute("INSERT INTO t VALUES (2)", [])?;
                        c.execute("INSERT INTO t VALUES (2)", [])?;
                        Ok(())
                    })
                    .await
            }
        });
        let fine = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        gate.await.unwrap().unwrap();
        let failed = failing.await.unwrap().unwrap_err();
        assert!(failed.to_string().contains("UNIQUE"), "{failed}");
        assert_eq!(fine.await.unwrap().unwrap(), 1);
        // The failing write's first row was rolled back with it.
        assert_eq!(writer.write(values).await.unwrap(), vec![1]);
    }
}
