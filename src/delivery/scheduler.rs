//! The slow path: finds due deliveries this node does not hold — retries
//! scheduled far ahead, work left by a crash, deliveries of a re-enabled
//! webhook — and keeps the leases of the ones it holds alive.

use std::sync::Arc;

use super::lanes::Pushed;
use super::{Job, MAX_BACKOFF, Shared};
use crate::backoff::backoff;
use crate::ids::DeliveryId;
use crate::metrics::Writer;
use crate::store::DueDelivery;

/// Deliveries claimed per store round trip.
const CLAIM_BATCH: u32 = 500;
/// Deliveries a node holds at most before it claims more: memory stays
/// bounded whatever the backlog, and with several nodes each takes a share
/// of a backlog instead of the first to scan taking all of it. Each claim
/// walks past the due deliveries already held (leased) to find free ones,
/// so the bound is also that walk's length: a smaller bound made the claims
/// a smaller share of a backlog drain's CPU (docs/performance.md), while it
/// still keeps enough attempts in flight or queued for slow receivers.
const MAX_HELD: usize = 3_000;
/// How long a scan waits for the lanes to work off what it holds, when the
/// backlog is larger than `MAX_HELD`.
const FULL_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

pub(super) async fn run_scans(shared: Arc<Shared>) {
    let mut failures = 0;
    loop {
        match claim_all_due(&shared).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "scheduler could not claim due deliveries; backing off");
                tokio::time::sleep(backoff(failures, MAX_BACKOFF)).await;
            }
        }
        tokio::select! {
            _ = shared.stopping.cancelled() => return,
            _ = tokio::time::sleep(shared.config.scan_interval) => {}
            _ = shared.wake_scheduler.notified() => {}
        }
    }
}

/// Claims due deliveries page by page until none are left, holding at most
/// `MAX_HELD` at a time.
async fn claim_all_due(shared: &Arc<Shared>) -> Result<(), crate::store::StoreError> {
    loop {
        let room = MAX_HELD.saturating_sub(held_count(shared));
        if room == 0 {
            return Ok(());
        }
        let limit = room.min(CLAIM_BATCH as usize) as u32;
        let now = crate::ids::now_millis();
        let lease_until = now + shared.config.lease.as_millis() as i64;
        let epoch = shared.liveness.epoch();
        let started = std::time::Instant::now();
        let claimed = shared.store.claim_due(now, limit, lease_until).await;
        let rows = claimed.as_ref().map_or(0, Vec::len);
        shared
            .metrics
            .store_write(Writer::Claims, rows, started.elapsed(), claimed.is_ok());
        let due = claimed?;
        let full_page = due.len() == limit as usize;
        let mut lane_full = false;
        for delivery in due {
            if !shared.is_held(&delivery.delivery_id) {
                let job = job_for(shared, delivery, epoch);
                lane_full |= !has_room(shared, job);
            }
        }
        // A lane without room for another page: claiming on would only send
        // its deliveries back to the store. The lane wakes the scheduler
        // when it has drained to half.
        if !full_page || lane_full || shared.stopping.is_cancelled() {
            return Ok(());
        }
        // More is due than this node may hold: claim again once the lanes
        // have made room for a page.
        while held_count(shared) + CLAIM_BATCH as usize > MAX_HELD {
            tokio::select! {
                _ = shared.stopping.cancelled() => return Ok(()),
                _ = tokio::time::sleep(FULL_PAUSE) => {}
            }
        }
    }
}

/// Hands a claimed job to its lane; false when the lane has no room for
/// another page of claims.
fn has_room(shared: &Arc<Shared>, job: Job) -> bool {
    let webhook_id = job.webhook_id.clone();
    match shared.submit(job) {
        Pushed::Overflowed => false,
        Pushed::Queued { room } if room < CLAIM_BATCH as usize => {
            shared.lanes.wake_when_drained(&webhook_id);
            false
        }
        Pushed::Queued { .. } | Pushed::Stopped | Pushed::Cancelled => true,
    }
}

fn held_count(shared: &Shared) -> usize {
    shared.held.lock().expect("held lock poisoned").len()
}

fn job_for(shared: &Shared, d: DueDelivery, epoch: u64) -> Job {
    let event = shared.event_data(d.event_id, d.project_id, d.event_type, d.payload);
    Job::new(d.delivery_id, d.webhook_id, Arc::new(event), epoch).resumed(d.attempts, d.retry_base)
}

/// Renews, every third of a lease, the leases of everything held here.
pub(super) async fn run_lease_renewal(shared: Arc<Shared>) {
    let period = shared.config.lease / 3;
    loop {
        tokio::select! {
            _ = shared.stopping.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let held: Vec<DeliveryId> = shared
            .held
            .lock()
            .expect("held lock poisoned")
            .iter()
            .cloned()
            .collect();
        if held.is_empty() {
            continue;
        }
        let until = crate::ids::now_millis() + shared.config.lease.as_millis() as i64;
        let started = std::time::Instant::now();
        let renewed = shared.store.renew_leases(&held, until).await;
        shared.metrics.store_write(
            Writer::Leases,
            held.len(),
            started.elapsed(),
            renewed.is_ok(),
        );
        if let Err(e) = renewed {
            tracing::warn!(error = %e, held = held.len(), "could not renew leases");
        }
    }
}
