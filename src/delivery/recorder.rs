//! Writes attempt outcomes in batches (group commit): whatever arrived while
//! the previous batch was being written goes into the next transaction. Only
//! after the commit does a delivery move on (retry, release), so the store
//! never lags behind what the receiver saw by more than one batch.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};
use tokio::sync::mpsc;

use super::sender::SendResult;
use super::{Job, MAX_BACKOFF, MEMORY_RETRY_HORIZON, Shared};
use crate::backoff::backoff;
use crate::ids::{DeliveryId, WebhookId};
use crate::metrics::Writer;
use crate::store::{AttemptRecord, DeliveryStatus, StoreError};

/// Outcomes written per transaction at most. Ingest writes through the same
/// writer, so a 202 can wait behind a whole recorder transaction: the bound
/// keeps that wait short, while one fsync still serves many attempts (a much
/// smaller one costs too many fsyncs). Measured in docs/performance.md.
const MAX_BATCH: usize = 256;

/// An attempt's row and what to do with the delivery once it is written.
pub(super) struct Recorded {
    record: AttemptRecord,
    job: Job,
    retry_in: Option<Duration>,
}

impl Recorded {
    /// Decides the delivery's next state from the attempt's result.
    pub(super) fn new(shared: &Shared, job: Job, result: SendResult) -> Recorded {
        let attempt = job.attempts_made + 1;
        let (status, retry_in) = if result.succeeded() {
            (DeliveryStatus::Succeeded, None)
        } else {
            match shared
                .config
                .retry
                .next_delay(attempt - job.retry_base, result.retry_after)
            {
                Some(delay) => (DeliveryStatus::Failed, Some(delay)),
                None => (DeliveryStatus::Exhausted, None),
            }
        };
        let next_attempt_at = retry_in.map(|d| crate::ids::now_millis() + d.as_millis() as i64);
        let lease_until = match (retry_in, next_attempt_at) {
            (Some(d), Some(at)) if d <= MEMORY_RETRY_HORIZON => {
                Some(at + shared.config.lease.as_millis() as i64)
            }
            _ => None,
        };
        let of = Attempt {
            delivery_id: &job.delivery_id,
            webhook_id: &job.webhook_id,
            payload: &job.event.payload,
            number: attempt,
            manual: false,
        };
        let record = attempt_record(of, result, status, next_attempt_at, lease_until);
        Recorded {
            record,
            job,
            retry_in,
        }
    }
}

/// A manual attempt (a test or a redeliver): which delivery it was for.
pub(super) struct Manual<'a> {
    pub delivery_id: &'a DeliveryId,
    pub webhook_id: &'a WebhookId,
    /// The event's stored payload: the body is kept only when it differs.
    pub payload: &'a str,
    pub number: u32,
}

/// Writes a manual attempt at once, outside the batches: its caller waits
/// for it, and a manual attempt is never followed up (no retry, no release).
pub(super) async fn record_manual(
    shared: &Shared,
    manual: Manual<'_>,
    result: SendResult,
    status: DeliveryStatus,
) -> Result<(), StoreError> {
    let of = Attempt {
        delivery_id: manual.delivery_id,
        webhook_id: manual.webhook_id,
        payload: manual.payload,
        number: manual.number,
        manual: true,
    };
    let record = attempt_record(of, result, status, None, None);
    shared.store.record_manual_attempt(&record).await
}

/// Which attempt of which delivery a result is.
struct Attempt<'a> {
    delivery_id: &'a DeliveryId,
    webhook_id: &'a WebhookId,
    payload: &'a str,
    number: u32,
    manual: bool,
}

fn attempt_record(
    of: Attempt<'_>,
    r: SendResult,
    status: DeliveryStatus,
    next_attempt_at: Option<i64>,
    lease_until: Option<i64>,
) -> AttemptRecord {
    // The body is stored only when it is not the stored payload itself.
    let request_body = (r.request_body != of.payload.as_bytes())
        .then(|| String::from_utf8_lossy(&r.request_body).into_owned());
    AttemptRecord {
        delivery_id: of.delivery_id.clone(),
        webhook_id: of.webhook_id.clone(),
        attempt: of.number,
        manual: of.manual,
        request_body,
        succeeded: r.succeeded(),
        started_at: r.started_at,
        duration_ms: r.duration.as_millis() as i64,
        request_url: r.url,
        request_headers: HeadersJson::new(&r.request_headers).to_text(),
        response_status: r.status,
        response_headers: r
            .status
            .map(|_| HeadersJson::new(&r.response_headers).to_text()),
        response_body: r.response_body,
        response_truncated: r.response_truncated,
        error_kind: r.error.as_ref().map(|e| e.kind.to_string()),
        error_message: r.error.map(|e| e.message),
        status,
        next_attempt_at,
        lease_until,
    }
}

/// Headers as a JSON object in send order; a repeated name appears once,
/// its values joined with ", ". Serialised straight from the pairs: the
/// recorder writes one of these per attempt.
pub struct HeadersJson<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl<'a> HeadersJson<'a> {
    pub fn new(pairs: &'a [(String, String)]) -> HeadersJson<'a> {
        let mut merged: Vec<(&str, Cow<str>)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            match merged.iter_mut().find(|(seen, _)| seen == name) {
                Some((_, joined)) => {
                    let joined = joined.to_mut();
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                None => merged.push((name, Cow::Borrowed(value))),
            }
        }
        HeadersJson(merged)
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("string pairs always serialise")
    }
}

impl Serialize for HeadersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

pub(super) async fn run(shared: Arc<Shared>, mut outcomes: mpsc::UnboundedReceiver<Recorded>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let stopping = tokio::select! {
            biased;
            received = outcomes.recv_many(&mut batch, MAX_BATCH) => received == 0,
            _ = shared.recorder_stop.cancelled() => {
                while let Ok(recorded) = outcomes.try_recv() {
                    batch.push(recorded);
                }
                true
            }
        };
        // The rows go to the store as they are; what follows waits beside them.
        let (records, next): (Vec<AttemptRecord>, Vec<(Job, Option<Duration>)>) = batch
            .drain(..)
            .map(|r| (r.record, (r.job, r.retry_in)))
            .unzip();
        if !records.is_empty() {
            write_until_stored(&shared, &records).await;
        }
        if stopping {
            return;
        }
        for (record, (job, retry_in)) in records.iter().zip(next) {
            follow_up(&shared, record, job, retry_in);
        }
    }
}

/// An outcome is never dropped: a failing store is retried with back-off.
async fn write_until_stored(shared: &Shared, records: &[AttemptRecord]) {
    let mut failures = 0;
    loop {
        let started = std::time::Instant::now();
        let result = shared.store.record_attempts(records).await;
        let (took, ok) = (started.elapsed(), result.is_ok());
        shared
            .metrics
            .store_write(Writer::Recorder, records.len(), took, ok);
        let Err(e) = result else { break };
        failures += 1;
        tracing::error!(error = %e, batch = records.len(), "could not record attempts; retrying");
        tokio::time::sleep(backoff(failures, MAX_BACKOFF)).await;
    }
    for record in records {
        shared.metrics.delivery_recorded(record.status);
    }
}

fn follow_up(
    shared: &Arc<Shared>,
    record: &AttemptRecord,
    mut job: Job,
    retry_in: Option<Duration>,
) {
    super::failing_endpoints::observe(shared, record, &job);
    match retry_in {
        Some(delay) if record.lease_until.is_some() => {
            job.attempts_made = record.attempt;
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shared.stopping.cancelled() => {}
                    _ = tokio::time::sleep(delay) => { shared.submit(job); }
                }
            });
        }
        // A job of an ended epoch: its id may be held again, under a new lease.
        _ if !shared.liveness.is_current(&job) => {}
        _ => shared.release(&job.delivery_id),
    }
}

#[cfg(test)]
mod tests {
    use super::HeadersJson;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn headers_keep_send_order_and_join_repeated_names() {
        let sent = pairs(&[
            ("content-type", "application/json"),
            ("set-cookie", "a=1"),
            ("x-quote", "say \"hi\""),
            ("set-cookie", "b=2"),
        ]);
        assert_eq!(
            HeadersJson::new(&sent).to_text(),
            r#"{"content-type":"application/json","set-cookie":"a=1, b=2","x-quote":"say \"hi\""}"#
        );
        assert_eq!(HeadersJson::new(&[]).to_text(), "{}");
    }
}
