//! The embedded store and the space of its volume: how far the WAL may grow
//! before it is copied home (less on a small volume), and whether writes are
//! failing for lack of space (readiness asks).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::super::StoreError;

/// SQLite's page size, which the store never changes.
const PAGE_BYTES: u64 = 4096;

/// WAL pages after which a commit copies them into the database file (a
/// checkpoint), at most: SQLite's default is 1,000. A checkpoint writes each
/// page once however often the WAL holds it, and a fan-out rewrites a leaf
/// per webhook every few commits: a WAL that holds more commits copies such a
/// leaf home once for several rewrites rather than once for each
/// (docs/performance.md). The WAL grows to ~32 MB before it starts over.
const MAX_WAL_PAGES: u64 = 8000;

/// Below this the checkpoints would come so often that they cost more than
/// the space they save.
const MIN_WAL_PAGES: u64 = 100;

/// The share of the volume the WAL may take: on a small volume a 32 MB WAL
/// fills the disk by itself, and a full disk refuses every write.
const WAL_SHARE_OF_VOLUME: u64 = 16;

/// How far the WAL of a database in `dir` may grow before a checkpoint, in
/// pages: a sixteenth of the volume, between `MIN_WAL_PAGES` and
/// `MAX_WAL_PAGES` (volumes of 512 MB and more get the maximum).
pub(super) fn wal_pages(dir: &Path) -> u32 {
    let pages = match volume_bytes(dir) {
        Some(bytes) => bytes / WAL_SHARE_OF_VOLUME / PAGE_BYTES,
        None => MAX_WAL_PAGES,
    };
    pages.clamp(MIN_WAL_PAGES, MAX_WAL_PAGES) as u32
}

/// The size the WAL file is cut back to after a checkpoint started it over
/// (`journal_size_limit`): a transaction larger than the budget grows it once,
/// not for good.
pub(super) fn wal_limit_bytes(wal_pages: u32) -> u64 {
    u64::from(wal_pages) * PAGE_BYTES
}

#[cfg(unix)]
fn volume_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value of the plain C struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` a valid place to write to.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_blocks as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
fn volume_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Keeps the WAL and its index (`-shm`) when the connection closes last.
///
/// By default the last connection to close checkpoints, then deletes both
/// files; the next start has to create the index again (32 KB), which on a
/// full disk fails, and with it every read: the service could not start.
/// Kept, a start on a full disk reads, and refuses only writes. The WAL is
/// cut to nothing at that close all the same (`journal_size_limit`).
///
/// # Safety
/// `db` is an open connection that no other thread uses meanwhile.
pub(super) unsafe fn keep_wal_files(db: *mut rusqlite::ffi::sqlite3) -> bool {
    use rusqlite::ffi;
    let mut on: std::ffi::c_int = 1;
    // SAFETY: `db` is open (the caller's promise), the name NUL-terminated,
    // and PERSIST_WAL reads and writes one int through the pointer.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            db,
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        )
    };
    rc == ffi::SQLITE_OK
}

/// Set when a write failed for lack of space, cleared when one stores rows
/// again; shared by both writer connections.
#[derive(Clone, Default)]
pub(super) struct SpaceWatch(Arc<AtomicBool>);

impl SpaceWatch {
    /// Notes a failed write: only lack of space counts.
    pub(super) fn failed(&self, err: &StoreError) {
        if err.is_no_space() && !self.0.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "the store's disk is full: writes are answered 503 until space is freed"
            );
        }
    }

    /// Notes a write that stored rows: there was space for it.
    pub(super) fn stored(&self) {
        // A load first: the common case costs no read-modify-write.
        if self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed) {
            tracing::info!("the store's disk has space again: writes are accepted");
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_budget_follows_the_volume_within_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let pages = wal_pages(dir.path());
        assert!((MIN_WAL_PAGES..=MAX_WAL_PAGES).contains(&u64::from(pages)));
        let bytes = volume_bytes(dir.path()).expect("statvfs answers for a temp dir");
        let expected =
            (bytes / WAL_SHARE_OF_VOLUME / PAGE_BYTES).clamp(MIN_WAL_PAGES, MAX_WAL_PAGES);
        assert_eq!(u64::from(pages), expected);
        assert_eq!(wal_limit_bytes(pages), u64::from(pages) * 4096);
    }

    #[test]
    fn only_lack_of_space_marks_the_store_full_and_a_stored_write_clears_it() {
        let watch = SpaceWatch::default();
        watch.failed(&StoreError::Embedded("UNIQUE constraint failed".into()));
        assert!(!watch.is_full());
        watch.failed(&StoreError::NoSpace("database or disk is full".into()));
        assert!(watch.is_full());
        watch.stored();
        assert!(!watch.is_full());
    }
}
