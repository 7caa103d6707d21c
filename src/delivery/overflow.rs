//! A full lane's overflow: deliveries that wait in the store, not in memory.
//!
//! When a lane already queues `lanes::QUEUE_CAP` jobs, a further delivery is
//! *deferred*: it is due when the lane can expect room and holds no lease, so
//! the scheduler claims it at that time. Ingest writes a new delivery of a
//! full lane deferred in the first place (`Engine::deferral`), so a backlog
//! held by a pace costs no memory while it builds; one that still reaches a
//! full lane (routed while the lane filled, claimed by the scheduler) has its
//! row moved here, in batches. A
//! paced lane books one slot of its pace per overflowed delivery after its
//! queue, so a backlog comes back about as fast as the pace lets it out
//! (not all at once, to overflow again); an unpaced lane's overflow is due
//! again shortly, and the lane wakes the scheduler when it has room.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::mpsc;

use super::Shared;
use crate::ids::WebhookId;
use crate::store::Deferral;

/// An unpaced lane's overflow is due again after this.
const UNPACED_DELAY_MS: i64 = 1_000;
/// Deferrals written per store round trip at most.
const BATCH: usize = 1_000;

/// When a lane's next overflowed delivery is due.
#[derive(Default)]
pub(super) struct Clock {
    /// The first slot of the pace not yet booked by an overflowed delivery
    /// (booked under the lanes' lock, reset by the lane's task).
    next_slot: AtomicI64,
}

impl Clock {
    /// Books a time for one overflowed delivery of a lane with `queued` jobs.
    pub(super) fn next(&self, shared: &Shared, webhook_id: &WebhookId, queued: usize) -> i64 {
        let now = crate::ids::now_millis();
        let interval = super::lanes::pace_interval(shared, webhook_id).as_millis() as i64;
        if interval == 0 {
            return now + UNPACED_DELAY_MS;
        }
        let at = self
            .next_slot
            .load(Ordering::Relaxed)
            .max(now + interval * queued as i64);
        self.next_slot.store(at + interval, Ordering::Relaxed);
        at
    }

    /// Forgets the booked slots: the lane ran dry, so what was booked has
    /// come back or was removed meanwhile (a purge, a disabled webhook).
    pub(super) fn reset(&self) {
        self.next_slot.store(0, Ordering::Relaxed);
    }
}

/// Writes deferrals in batches. A failed write loses nothing: the delivery
/// keeps its lease until it runs out, and the scheduler claims it then.
pub(super) async fn run(shared: Arc<Shared>, mut deferrals: mpsc::UnboundedReceiver<Deferral>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut failures = 0;
    loop {
        tokio::select! {
            biased;
            received = deferrals.recv_many(&mut batch, BATCH) => if received == 0 { return },
            _ = shared.recorder_stop.cancelled() => return,
        }
        match shared.store.defer_deliveries(&batch).await {
            Ok(()) => {
                failures = 0;
                tracing::debug!(
                    deliveries = batch.len(),
                    "deferred the overflow of full lanes"
                );
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, deliveries = batch.len(), "could not defer a lane's overflow; its leases will run out");
                tokio::time::sleep(crate::backoff::backoff(failures, super::MAX_BACKOFF)).await;
            }
        }
        batch.clear();
    }
}
