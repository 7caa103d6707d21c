//! Retention: a background task deletes events older than `--retention`
//! (with their deliveries and attempts) once all their deliveries are
//! finished, and idempotency keys past their 24 h window. It works in small
//! batches with pauses between them, so delivery never waits on it.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::now_millis;
use crate::ingest::IDEMPOTENCY_WINDOW_MS;
use crate::store::Store;

/// Events deleted per transaction.
const BATCH: u32 = 500;
/// Pause between batches, leaving the store to the hot paths.
const BREATHER: Duration = Duration::from_millis(50);
/// How often a purge round starts.
const EVERY: Duration = Duration::from_secs(600);

pub fn start(store: Arc<dyn Store>, retention: Duration) {
    tokio::spawn(async move {
        loop {
            let purged = purge_round(&*store, retention).await;
            if purged > 0 {
                tracing::info!(purged, "retention purged old events");
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}

/// Purges until nothing older than the retention is left; answers how many events went.
pub async fn purge_round(store: &dyn Store, retention: Duration) -> u64 {
    let mut total = 0;
    loop {
        let now = now_millis();
        let cutoff = now - retention.as_millis() as i64;
        match store
            .purge_before(cutoff, now - IDEMPOTENCY_WINDOW_MS, BATCH)
            .await
        {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(error = %e, "retention purge failed; will try again later");
                return total;
            }
        }
        tokio::time::sleep(BREATHER).await;
    }
}
