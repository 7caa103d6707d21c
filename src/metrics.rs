//! Prometheus metrics: one registry and typed handles to every metric, shared
//! (in an `Arc`) by the API, the ingestor and the delivery engine.
//!
//! Labels are bounded by construction: project ids and event types exist only
//! as an admin and the catalog create them; everything else is a fixed word
//! (`&'static str`). Never a URL, a header, a payload value or a webhook id.
//! Updating a metric is an atomic add behind a short read lock, never held
//! across an await. `docs/operations.md` lists every metric.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::store::{DeliveryStatus, Store};

/// The store's counts are read at most this often, at scrape time.
const STORE_SAMPLE_EVERY_MS: i64 = 10_000;
/// A scrape waits this long for the store's counts, then shows the last ones.
const STORE_SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// `Content-Type` of the Prometheus text format (the default answer).
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics text, for scrapers that ask for it.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    project: String,
    event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriterLabels {
    writer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Which writer a store write came from: the two group-commit writers and
/// the scheduler's two transactions.
#[derive(Clone, Copy, Debug)]
pub enum Writer {
    /// Events and their deliveries (`ingest`).
    Ingest,
    /// Attempt rows and delivery states (`delivery::recorder`).
    Recorder,
    /// Due deliveries claimed, each claim one transaction (`delivery::scheduler`).
    Claims,
    /// Leases renewed on deliveries held in flight (`delivery::scheduler`).
    Leases,
}

impl Writer {
    fn label(self) -> WriterLabels {
        WriterLabels {
            writer: match self {
                Writer::Ingest => "ingest",
                Writer::Recorder => "recorder",
                Writer::Claims => "claims",
                Writer::Leases => "leases",
            },
        }
    }
}

pub struct Metrics {
    registry: Registry,
    events_ingested: Family<EventLabels, Counter>,
    deliveries_created: Counter,
    deliveries: Family<OutcomeLabels, Counter>,
    attempt_duration: HistogramFamily<OutcomeLabels>,
    attempt_errors: Family<KindLabels, Counter>,
    attempts_in_flight: Gauge,
    lanes: Gauge,
    lanes_busy: Gauge,
    lanes_saturated: Gauge,
    lane_queued: Gauge,
    lane_deferred: Counter,
    queue_pending: Gauge,
    queue_due: Gauge,
    webhooks: Family<StateLabels, Gauge>,
    webhooks_disabled: Counter,
    store_batch_size: HistogramFamily<WriterLabels>,
    store_write_duration: HistogramFamily<WriterLabels>,
    store_write_errors: Family<WriterLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    /// When the store's counts were last read (ms), or claimed for reading.
    sampled_at: AtomicI64,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~33 s: store writes, API answers and attempts (30 s timeout).
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn size_histogram() -> Histogram {
    // 1 … 4096 rows: a single event up to a full group commit.
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mlhook");
        let m = Metrics {
            events_ingested: Family::default(),
            deliveries_created: Counter::default(),
            deliveries: Family::default(),
            attempt_duration: Family::new_with_constructor(seconds_histogram),
            attempt_errors: Family::default(),
            attempts_in_flight: Gauge::default(),
            lanes: Gauge::default(),
            lanes_busy: Gauge::default(),
            lanes_saturated: Gauge::default(),
            lane_queued: Gauge::default(),
            lane_deferred: Counter::default(),
            queue_pending: Gauge::default(),
            queue_due: Gauge::default(),
            webhooks: Family::default(),
            webhooks_disabled: Counter::default(),
            store_batch_size: Family::new_with_constructor(size_histogram),
            store_write_duration: Family::new_with_constructor(seconds_histogram),
            store_write_errors: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(seconds_histogram),
            sampled_at: AtomicI64::new(i64::MIN),
            registry: Registry::default(),
        };
        registry.register(
            "build",
            "The running version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        registry.register(
            "events_ingested",
            "Events stored (replays of an idempotency key excluded), by project and type",
            m.events_ingested.clone(),
        );
        registry.register(
            "deliveries_created",
            "Deliveries created with stored events",
            m.deliveries_created.clone(),
        );
        registry.register(
            "deliveries",
            "Scheduled attempts recorded, by the state they left the delivery in: succeeded, failed (a retry follows) or exhausted",
            m.deliveries.clone(),
        );
        registry.register_with_unit(
            "attempt_duration",
            "Duration of scheduled delivery attempts, by outcome (succeeded or failed)",
            Unit::Seconds,
            m.attempt_duration.clone(),
        );
        registry.register(
            "attempt_errors",
            "Failed scheduled attempts by error kind (timeout, connect, http_status, ...)",
            m.attempt_errors.clone(),
        );
        registry.register(
            "attempts_in_flight",
            "Delivery attempts in flight",
            m.attempts_in_flight.clone(),
        );
        registry.register(
            "lanes",
            "Webhook lanes open (one per webhook sent to since start)",
            m.lanes.clone(),
        );
        registry.register(
            "lanes_busy",
            "Lanes with at least one attempt in flight",
            m.lanes_busy.clone(),
        );
        registry.register(
            "lanes_saturated",
            "Lanes with every slot (--lane-concurrency) in flight",
            m.lanes_saturated.clone(),
        );
        registry.register(
            "lane_queued",
            "Deliveries waiting in lanes in memory for a slot or their pace",
            m.lane_queued.clone(),
        );
        registry.register(
            "lane_deferred",
            "Deliveries that found their lane's queue full and wait in the store until it can expect room",
            m.lane_deferred.clone(),
        );
        registry.register(
            "queue_pending",
            "Unfinished deliveries in the store (pending or failed with a next attempt); read at most every 10 s",
            m.queue_pending.clone(),
        );
        registry.register(
            "queue_due",
            "Unfinished deliveries whose next attempt time has come; read at most every 10 s",
            m.queue_due.clone(),
        );
        registry.register(
            "webhooks",
            "Webhooks by state (enabled, disabled); read at most every 10 s",
            m.webhooks.clone(),
        );
        registry.register(
            "webhooks_disabled",
            "Webhooks disabled by the failing-endpoint policy",
            m.webhooks_disabled.clone(),
        );
        registry.register(
            "store_write_batch_size",
            "Rows per store write: events (ingest), attempts (recorder), deliveries claimed (claims) or leases renewed (leases)",
            m.store_batch_size.clone(),
        );
        registry.register_with_unit(
            "store_write_duration",
            "Duration of store writes, by writer",
            Unit::Seconds,
            m.store_write_duration.clone(),
        );
        registry.register(
            "store_write_errors",
            "Store writes that failed, by writer",
            m.store_write_errors.clone(),
        );
        registry.register(
            "http_requests",
            "API requests answered, by method, route template and status",
            m.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "API request latency, by method and route template",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An event was stored (not a replay).
    pub fn event_ingested(&self, project_id: &str, event_type: &str, deliveries: usize) {
        let labels = EventLabels {
            project: project_id.to_string(),
            event_type: event_type.to_string(),
        };
        self.events_ingested.get_or_create(&labels).inc();
        self.deliveries_created.inc_by(deliveries as u64);
    }

    /// A store write finished (or failed).
    pub fn store_write(&self, writer: Writer, rows: usize, took: Duration, ok: bool) {
        let labels = writer.label();
        if !ok {
            self.store_write_errors.get_or_create(&labels).inc();
            return;
        }
        self.store_batch_size
            .get_or_create(&labels)
            .observe(rows as f64);
        self.store_write_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A scheduled attempt finished; `error_kind` is the attempt error's kind.
    pub fn attempt_finished(&self, error_kind: Option<&'static str>, took: Duration) {
        let outcome = match error_kind {
            None => "succeeded",
            Some(kind) => {
                self.attempt_errors
                    .get_or_create(&KindLabels { kind })
                    .inc();
                "failed"
            }
        };
        self.attempt_duration
            .get_or_create(&OutcomeLabels { outcome })
            .observe(took.as_secs_f64());
    }

    /// A scheduled attempt's outcome was written: the delivery's new state.
    pub fn delivery_recorded(&self, status: DeliveryStatus) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: status.as_str(),
            })
            .inc();
    }

    pub fn webhook_disabled(&self) {
        self.webhooks_disabled.inc();
    }

    /// A lane opened for a webhook.
    pub fn lane_opened(&self) {
        self.lanes.inc();
    }

    /// A delivery entered (`true`) or left (`false`) a lane's queue.
    pub fn lane_queue(&self, entered: bool) {
        if entered {
            self.lane_queued.inc();
        } else {
            self.lane_queued.dec();
        }
    }

    /// A delivery found its lane full and waits in the store.
    pub fn lane_deferred(&self) {
        self.lane_deferred.inc();
    }

    /// An attempt starts on `lane`; the guard counts it until dropped.
    pub fn attempt_started(self: &Arc<Self>, lane: &Arc<LaneLoad>) -> InFlight {
        let before = lane.in_flight.fetch_add(1, Ordering::AcqRel);
        if before == 0 {
            self.lanes_busy.inc();
        }
        if before + 1 == lane.capacity {
            self.lanes_saturated.inc();
        }
        self.attempts_in_flight.inc();
        InFlight {
            metrics: self.clone(),
            lane: lane.clone(),
        }
    }

    /// An API request was answered.
    pub fn http_request(&self, method: &str, route: Option<&str>, status: u16, took: Duration) {
        let method = method_label(method);
        let route = route.unwrap_or("unmatched").to_string();
        self.http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Reads the store's counts when the last reading is older than 10 s.
    /// Concurrent scrapes do not queue up: one reads, the others show the
    /// last reading; a slow or failing store leaves the last reading shown.
    pub async fn refresh_store_counts(&self, store: &dyn Store) {
        let now = crate::ids::now_millis();
        let last = self.sampled_at.load(Ordering::Acquire);
        if now.saturating_sub(last) < STORE_SAMPLE_EVERY_MS
            || self
                .sampled_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        match tokio::time::timeout(STORE_SAMPLE_TIMEOUT, store.count_for_metrics(now)).await {
            Ok(Ok(counts)) => {
                self.queue_pending.set(counts.pending as i64);
                self.queue_due.set(counts.due as i64);
                let set = |state, n: u64| {
                    self.webhooks
                        .get_or_create(&StateLabels { state })
                        .set(n as i64)
                };
                set("enabled", counts.webhooks_enabled);
                set("disabled", counts.webhooks_disabled);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics: could not count the queue"),
            Err(_) => tracing::warn!("metrics: counting the queue took too long"),
        }
    }

    /// Every metric in the Prometheus text format, or OpenMetrics text.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut text = String::with_capacity(16 * 1024);
        let written = if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        };
        written.expect("writing to a String cannot fail");
        text
    }
}

/// HTTP methods as a bounded label: an unknown method is `other`.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// One lane's attempts in flight, for the busy and saturated gauges.
pub struct LaneLoad {
    in_flight: AtomicUsize,
    capacity: usize,
}

impl LaneLoad {
    pub fn new(capacity: usize) -> Arc<LaneLoad> {
        Arc::new(LaneLoad {
            in_flight: AtomicUsize::new(0),
            capacity: capacity.max(1),
        })
    }
}

/// Counts one attempt in flight until dropped.
pub struct InFlight {
    metrics: Arc<Metrics>,
    lane: Arc<LaneLoad>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.lane.in_flight.fetch_sub(1, Ordering::AcqRel);
        if before == self.lane.capacity {
            self.metrics.lanes_saturated.dec();
        }
        if before == 1 {
            self.metrics.lanes_busy.dec();
        }
        self.metrics.attempts_in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn counters_and_histograms_encode_with_their_labels() {
        let m = Metrics::new();
        m.event_ingested("fraud-team", "TEST", 2);
        m.event_ingested("fraud-team", "TEST", 1);
        m.attempt_finished(Some("timeout"), Duration::from_millis(30));
        m.delivery_recorded(DeliveryStatus::Exhausted);
        m.store_write(Writer::Ingest, 3, Duration::from_millis(2), true);
        m.http_request("BREW", None, 404, Duration::from_millis(1));
        let text = m.encode(false);
        assert_eq!(
            line(&text, "mlhook_events_ingested_total{"),
            Some("mlhook_events_ingested_total{project=\"fraud-team\",event_type=\"TEST\"} 2")
        );
        assert_eq!(
            line(&text, "mlhook_deliveries_created_total"),
            Some("mlhook_deliveries_created_total 3")
        );
        assert_eq!(
            line(&text, "mlhook_deliveries_total{"),
            Some("mlhook_deliveries_total{outcome=\"exhausted\"} 1")
        );
        assert!(text.contains("mlhook_attempt_errors_total{kind=\"timeout\"} 1\n"));
        assert!(text.contains("mlhook_attempt_duration_seconds_count{outcome=\"failed\"} 1\n"));
        assert!(text.contains("mlhook_store_write_batch_size_sum{writer=\"ingest\"} 3.0\n"));
        assert!(text.contains(
            "mlhook_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1\n"
        ));
        assert!(text.contains("mlhook_build_info{version=\""));
        assert!(m.encode(true).ends_with("# EOF\n"));
    }

    #[test]
    fn lane_gauges_follow_attempts_in_flight() {
        let m = Arc::new(Metrics::new());
        let lane = LaneLoad::new(2);
        let gauges = |m: &Metrics| {
            (
                m.attempts_in_flight.get(),
                m.lanes_busy.get(),
                m.lanes_saturated.get(),
            )
        };
        let first = m.attempt_started(&lane);
        assert_eq!(gauges(&m), (1, 1, 0));
        let second = m.attempt_started(&lane);
        assert_eq!(gauges(&m), (2, 1, 1));
        drop(first);
        assert_eq!(gauges(&m), (1, 1, 0));
        drop(second);
        assert_eq!(gauges(&m), (0, 0, 0));
    }
}
