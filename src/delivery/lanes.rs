//! One lane per webhook: a queue and a cap on requests in flight, so a slow or
//! dead endpoint fills only its own lane and never delays the others.
//!
//! A lane also keeps its webhook's pace: with a rate limit (the webhook's own
//! or its format's default, e.g. Slack's one message a second) attempts start
//! at least `1/rate` apart, and the rest wait in the queue — never dropped,
//! never counted as failures. A `429` with `Retry-After` holds the whole lane
//! (not only the delivery that got it) until that time has passed.
//!
//! A lane keeps at most `QUEUE_CAP` jobs in memory. Beyond that a delivery
//! *overflows*: it is deferred in the store to when the lane can expect room
//! (see `overflow`; ingest writes it so at once) and comes back through the
//! scheduler, so memory does not grow with a webhook's backlog.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use super::recorder::Recorded;
use super::{Job, Shared};
use crate::ids::WebhookId;
use crate::metrics::LaneLoad;

/// Jobs a lane keeps queued in memory at most (not counting the ones in
/// flight): enough to keep `lane_concurrency` requests busy through a burst,
/// small enough that a held backlog costs little memory.
pub(super) const QUEUE_CAP: usize = 1_000;

#[derive(Default)]
pub(super) struct Lanes {
    queues: Mutex<HashMap<WebhookId, Lane>>,
}

/// The sending side of a lane.
struct Lane {
    jobs: mpsc::UnboundedSender<Job>,
    fill: Arc<Fill>,
}

/// How full a lane's queue is, shared with the lane's task.
#[derive(Default)]
struct Fill {
    queued: AtomicUsize,
    /// Deliveries wait in the store for room in this lane (it overflowed,
    /// or the scheduler stopped claiming for it): the scheduler is woken
    /// when the queue drains to half.
    waiting: AtomicBool,
    /// When the lane's overflow is due again.
    clock: super::overflow::Clock,
}

/// What became of a job handed to a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushed {
    /// Queued; `room` more fit before the lane overflows.
    Queued { room: usize },
    /// The lane was full: the delivery waits in the store.
    Overflowed,
    /// The lane stopped (shutting down): the delivery stays pending in the store.
    Stopped,
    /// Finished meanwhile by other means: dropped.
    Cancelled,
}

impl Lanes {
    /// Queues `job` on its webhook's lane, opening the lane on first use.
    pub(super) fn push(&self, shared: &Arc<Shared>, job: Job) -> Pushed {
        let mut queues = self.queues.lock().expect("lanes lock poisoned");
        let lane = queues
            .entry(job.webhook_id.clone())
            .or_insert_with(|| open_lane(shared));
        if let Some(at) = lane.fill.slot_when_full(shared, &job.webhook_id) {
            shared.release(&job.delivery_id);
            shared.overflow(job.delivery_id, at);
            return Pushed::Overflowed;
        }
        let queued = lane.fill.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match lane.jobs.send(job) {
            Ok(()) => {
                shared.metrics.lane_queue(true);
                Pushed::Queued {
                    room: QUEUE_CAP.saturating_sub(queued),
                }
            }
            Err(mpsc::error::SendError(job)) => {
                lane.fill.queued.fetch_sub(1, Ordering::Relaxed);
                shared.release(&job.delivery_id);
                Pushed::Stopped
            }
        }
    }
}

impl Lanes {
    /// A time booked for one more delivery of a full lane, which it is to
    /// wait in the store for; `None` while the lane has room (or has none yet).
    pub(super) fn slot_when_full(
        &self,
        shared: &Arc<Shared>,
        webhook_id: &WebhookId,
    ) -> Option<i64> {
        let queues = self.queues.lock().expect("lanes lock poisoned");
        queues
            .get(webhook_id)?
            .fill
            .slot_when_full(shared, webhook_id)
    }

    /// Wakes the scheduler when the webhook's lane has drained to half.
    pub(super) fn wake_when_drained(&self, webhook_id: &WebhookId) {
        let queues = self.queues.lock().expect("lanes lock poisoned");
        if let Some(lane) = queues.get(webhook_id) {
            lane.fill.waiting.store(true, Ordering::Relaxed);
        }
    }
}

fn open_lane(shared: &Arc<Shared>) -> Lane {
    let (tx, rx) = mpsc::unbounded_channel();
    let fill = Arc::new(Fill::default());
    shared.metrics.lane_opened();
    tokio::spawn(run_lane(shared.clone(), rx, fill.clone()));
    Lane { jobs: tx, fill }
}

impl Fill {
    /// When the queue is full: a time booked for one more delivery, which is
    /// to wait in the store (the scheduler is woken when the queue drains
    /// to half, and the deferral counted); `None` while there is room.
    fn slot_when_full(&self, shared: &Shared, webhook_id: &WebhookId) -> Option<i64> {
        if self.queued.load(Ordering::Relaxed) < QUEUE_CAP {
            return None;
        }
        self.waiting.store(true, Ordering::Relaxed);
        shared.metrics.lane_deferred();
        Some(self.clock.next(shared, webhook_id, QUEUE_CAP))
    }

    /// Counts a job out of the queue; wakes the scheduler when a lane that
    /// deliveries wait for has room again for half a queue.
    fn take(&self, shared: &Shared) {
        let left = self.queued.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 {
            self.clock.reset();
        }
        if left <= QUEUE_CAP / 2 && self.waiting.swap(false, Ordering::Relaxed) {
            shared.wake_scheduler.notify_one();
        }
    }
}

/// When the lane may start its next attempt.
#[derive(Default)]
struct Pace {
    /// When the last attempt started. The next may start one interval of the
    /// *current* rate limit later: a changed limit applies at once.
    last_start: Option<Instant>,
    /// A receiver's `429` + `Retry-After` holds the lane until then.
    held_until: Option<Instant>,
}

impl Pace {
    /// How long to wait before starting now under `interval`, if at all.
    fn wait(&self, now: Instant, interval: Duration) -> Option<Duration> {
        let next_start = self
            .last_start
            .filter(|_| !interval.is_zero())
            .and_then(|last| last.checked_add(interval));
        let ready = next_start.into_iter().chain(self.held_until).max()?;
        (ready > now).then(|| ready - now)
    }

    /// Takes the slot `now`.
    fn start(&mut self, now: Instant) {
        self.last_start = Some(now);
    }

    /// Holds the lane until `until`, unless it is already held longer.
    fn hold(&mut self, until: Instant) {
        if self.held_until.is_none_or(|h| h < until) {
            self.held_until = Some(until);
        }
    }
}

async fn run_lane(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>, fill: Arc<Fill>) {
    let slots = Arc::new(Semaphore::new(shared.config.lane_concurrency.max(1)));
    let pace = Arc::new(Mutex::new(Pace::default()));
    let load = LaneLoad::new(shared.config.lane_concurrency);
    loop {
        let job = tokio::select! {
            _ = shared.stopping.cancelled() => break,
            job = jobs.recv() => match job { Some(job) => job, None => break },
        };
        shared.metrics.lane_queue(false);
        fill.take(&shared);
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
/// attempt, then books its slot; `false` when shutting down. A change to the
/// webhook wakes the wait, so a lifted or changed limit applies at once.
async fn wait_for_turn(shared: &Shared, pace: &Mutex<Pace>, webhook_id: &WebhookId) -> bool {
    loop {
        if try_start(shared, pace, webhook_id).is_none() {
            return true;
        }
        // Listening first, then looking again: a change made in between is
        // seen by the second look, one made after it wakes the wait.
        let changed = shared.subscriptions.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let Some(wait) = try_start(shared, pace, webhook_id) else {
            return true;
        };
        tokio::select! {
            _ = shared.stopping.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
        }
    }
}

/// Books the slot if the webhook's current pace allows starting now;
/// otherwise how long to wait.
fn try_start(shared: &Shared, pace: &Mutex<Pace>, webhook_id: &WebhookId) -> Option<Duration> {
    let interval = pace_interval(shared, webhook_id);
    let now = Instant::now();
    let mut pace = pace.lock().expect("pace lock poisoned");
    let wait = pace.wait(now, interval);
    if wait.is_none() {
        pace.start(now);
    }
    wait
}

/// The spacing the webhook's rate limit asks for; zero without one.
pub(super) fn pace_interval(shared: &Shared, webhook_id: &WebhookId) -> Duration {
    shared
        .subscriptions
        .get(webhook_id)
        .and_then(|w| w.effective_rate_limit())
        .map(|r| r.interval())
        .unwrap_or_default()
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
        let half = Duration::from_millis(500);
        let mut pace = Pace::default();
        assert_eq!(pace.wait(t0, half), None);
        pace.start(t0);
        assert_eq!(pace.wait(t0, half), Some(half));
        assert_eq!(pace.wait(t0 + half, half), None);
        // A hold longer than the spacing wins; a shorter one never shortens it.
        pace.hold(t0 + Duration::from_secs(2));
        pace.hold(t0 + Duration::from_secs(1));
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(1), half),
            Some(Duration::from_secs(1))
        );
        assert_eq!(pace.wait(t0 + Duration::from_secs(2), half), None);
        // No limit: no spacing.
        let mut free = Pace::default();
        free.start(t0);
        assert_eq!(free.wait(t0, Duration::ZERO), None);
    }

    #[test]
    fn a_changed_limit_applies_to_the_slot_already_booked() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.start(t0);
        let minute = Duration::from_secs(60);
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(7), minute),
            Some(Duration::from_secs(53))
        );
        // Lifted: at once. Faster: from the last start.
        assert_eq!(pace.wait(t0 + Duration::from_secs(7), Duration::ZERO), None);
        assert_eq!(
            pace.wait(t0 + Duration::from_secs(7), Duration::from_secs(1)),
            None
        );
        assert_eq!(
            pace.wait(t0, Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
    }
}
