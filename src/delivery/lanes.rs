//! One lane per webhook: a queue and a cap on requests in flight, so a slow or
//! dead endpoint fills only its own lane and never delays the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc};

use super::recorder::Recorded;
use super::{Job, Shared};

#[derive(Default)]
pub(super) struct Lanes {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
}

impl Lanes {
    /// Queues `job` on its webhook's lane, opening the lane on first use.
    pub(super) fn push(&self, shared: &Arc<Shared>, job: Job) {
        let mut queues = self.queues.lock().expect("lanes lock poisoned");
        let lane = queues
            .entry(job.webhook_id.clone())
            .or_insert_with(|| open_lane(shared));
        if let Err(mpsc::error::SendError(job)) = lane.send(job) {
            // The lane stopped (shutting down): the delivery stays pending in the store.
            shared.release(&job.delivery_id);
        }
    }
}

fn open_lane(shared: &Arc<Shared>) -> mpsc::UnboundedSender<Job> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run_lane(shared.clone(), rx));
    tx
}

async fn run_lane(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(shared.config.lane_concurrency.max(1)));
    loop {
        let job = tokio::select! {
            _ = shared.stopping.cancelled() => break,
            job = jobs.recv() => match job { Some(job) => job, None => break },
        };
        let slot = tokio::select! {
            _ = shared.stopping.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("lane semaphore never closes"),
        };
        let attempt_shared = shared.clone();
        shared.in_flight.spawn(async move {
            attempt(&attempt_shared, job).await;
            drop(slot);
        });
    }
}

/// Makes one attempt with the webhook's current configuration and hands the
/// outcome to the recorder.
async fn attempt(shared: &Arc<Shared>, job: Job) {
    let Some(webhook) = shared.subscriptions.get(&job.webhook_id) else {
        // Deleted: its deliveries went with it.
        shared.release(&job.delivery_id);
        return;
    };
    if !webhook.enabled {
        // Kept, paused, until the webhook is enabled and recovered.
        shared.release(&job.delivery_id);
        let ids = [job.delivery_id.clone()];
        if let Err(e) = shared.store.pause_deliveries(&ids).await {
            tracing::warn!(delivery_id = %job.delivery_id, error = %e, "could not pause delivery");
        }
        return;
    }
    let result = shared
        .sender
        .send(&webhook, &job.event, &job.delivery_id)
        .await;
    tracing::debug!(
        delivery_id = %job.delivery_id, webhook_id = %job.webhook_id, status = ?result.status,
        error = ?result.error.as_ref().map(|e| e.kind), "attempt finished"
    );
    let recorded = Recorded::new(shared, job, result);
    if shared.recorder_tx.send(recorded).is_err() {
        tracing::error!("recorder stopped before an attempt outcome could be written");
    }
}
