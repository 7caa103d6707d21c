//! One lane per webhook: a queue and a cap on requests in flight, so a slow or
//! dead endpoint fills only its own lane and never delays the others.
//!
//! A lane also keeps its webhook's pace: with a rate limit (the webhook's own
//! or its format's default, e.g. Slack's one message a second) attempts start
//! at least `1/rate` apart, and the rest wait in the queue — never dropped,
//! never counted as failures. A `429` with `Retry-After` holds the whole lane
//! (not only the delivery that got it) until that time has passed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use super::recorder::Recorded;
use super::{Job, Shared};
use crate::metrics::LaneLoad;

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
        match lane.send(job) {
            Ok(()) => shared.metrics.lane_queue(true),
            // The lane stopped (shutting down): the delivery stays pending in the store.
            Err(mpsc::error::SendError(job)) => shared.release(&job.delivery_id),
        }
    }
}

fn open_lane(shared: &Arc<Shared>) -> mpsc::UnboundedSender<Job> {
    let (tx, rx) = mpsc::unbounded_channel();
    shared.metrics.lane_opened();
    tokio::spawn(run_lane(shared.clone(), rx));
    tx
}

/// When the lane may start its next attempt.
#[derive(Default)]
struct Pace {
    /// The rate limit's next free slot.
    next_start: Option<Instant>,
    /// A receiver's `429` + `Retry-After` holds the lane until then.
    held_until: Option<Instant>,
}

impl Pace {
    /// How long to wait before starting now, if at all.
    fn wait(&self, now: Instant) -> Option<Duration> {
        let ready = self.next_start.into_iter().chain(self.held_until).max()?;
        (ready > now).then(|| ready - now)
    }

    /// Takes the slot `now` and books the next one `interval` later.
    fn start(&mut self, now: Instant, interval: Duration) {
        self.next_start = (!interval.is_zero()).then(|| now + interval);
    }

    /// Holds the lane until `until`, unless it is already held longer.
    fn hold(&mut self, until: Instant) {
        if self.held_until.is_none_or(|h| h < until) {
            self.held_until = Some(until);
        }
    }
}

async fn run_lane(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(shared.config.lane_concurrency.max(1)));
    let pace = Arc::new(Mutex::new(Pace::default()));
    let load = LaneLoad::new(shared.config.lane_concurrency);
    loop {
        let job = tokio::select! {
            _ = shared.stopping.cancelled() => break,
            job = jobs.recv() => match job { Some(job) => job, None => break },
        };
        shared.metrics.lane_queue(false);
        // A slot first, then the pace: the pace is booked when the attempt
        // really starts, so starts stay spaced even behind a full lane.
        let slot = tokio::select! {
            _ = shared.stopping.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("lane semaphore never closes"),
        };
        if !wait_for_turn(&shared, &pace, &job.webhook_id).await {
            break;
        }
        let attempt_shared = shared.clone();
        let attempt_pace = pace.clone();
        let in_flight = shared.metrics.attempt_started(&load);
        // Every log line of the attempt names its delivery and webhook.
        let span = tracing::info_span!(
            "delivery", delivery_id = %job.delivery_id, webhook_id = %job.webhook_id,
            attempt = job.attempts_made + 1
        );
        shared.in_flight.spawn(
            async move {
                attempt(&attempt_shared, &attempt_pace, job).await;
                drop((slot, in_flight));
            }
            .instrument(span),
        );
    }
}

/// Waits until the rate limit and any `Retry-After` hold allow the next
/// attempt, then books its slot; `false` when shutting down.
async fn wait_for_turn(shared: &Shared, pace: &Mutex<Pace>, webhook_id: &str) -> bool {
    loop {
        // Read each time: an edited rate limit applies to the next attempt.
        let interval = shared
            .subscriptions
            .get(webhook_id)
            .and_then(|w| w.effective_rate_limit())
            .map(|r| r.interval())
            .unwrap_or_default();
        let now = Instant::now();
        let wait = {
            let mut pace = pace.lock().expect("pace lock poisoned");
            match pace.wait(now) {
                Some(wait) => wait,
                None => {
                    pace.start(now, interval);
                    return true;
                }
            }
        };
        tokio::select! {
            _ = shared.stopping.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Makes one attempt with the webhook's current configuration and hands the
/// outcome to the recorder.
async fn attempt(shared: &Arc<Shared>, pace: &Mutex<Pace>, job: Job) {
    if !shared.liveness.admit(&job, &shared.stopping).await {
        // Another node has it now, or the engine stops (it stays pending).
        if shared.liveness.is_current(&job) {
            shared.release(&job.delivery_id);
        }
        return;
    }
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
    let error_kind = result.error.as_ref().map(|e| e.kind);
    shared.metrics.attempt_finished(error_kind, result.duration);
    if result.status == Some(429)
        && let Some(retry_after) = result.retry_after
    {
        let held = retry_after.min(shared.config.retry.retry_after_cap);
        pace.lock()
            .expect("pace lock poisoned")
            .hold(Instant::now() + held);
        tracing::info!(
            webhook_id = %job.webhook_id, held = ?held,
            "receiver answered 429: the webhook's lane waits"
        );
    }
    tracing::debug!(
        delivery_id = %job.delivery_id, webhook_id = %job.webhook_id, status = ?result.status,
        error = ?result.error.as_ref().map(|e| e.kind), "attempt finished"
    );
    let recorded = Recorded::new(shared, job, result);
    if shared.recorder_tx.send(recorded).is_err() {
        tracing::error!("recorder stopped before an attempt outcome could be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_spaces_starts_and_honours_holds() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert_eq!(pace.wait(t0), None);
        pace.start(t0, Duration::from_millis(500));
        assert_eq!(pace.wait(t0), Some(Duration::from_millis(500)));
        assert_eq!(pace.wait(t0 + Duration::from_millis(500)), None);
        // A hold longer than the spacing wins; a shorter one never shortens it.
        pace.hold(t0 + Duration::from_secs(2));
        pace.hold(t0 + Duration::from_secs(1));
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(pace.wait(t0 + Duration::from_secs(2)), None);
        // No limit: no spacing.
        let mut free = Pace::default();
        free.start(t0, Duration::ZERO);
        assert_eq!(free.wait(t0), None);
    }
}
