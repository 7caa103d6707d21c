//! Delivery: from accepted event to the receiver's 2xx.
//!
//! ```text
//! ingest ──submit──► lane (one per webhook, bounded in flight) ──► sender
//!                      ▲                                             │
//!  scheduler ──claims due rows from the store (retries, restarts)    ▼
//!                      └──────── short retries ◄──── recorder (group commit of attempts)
//! ```
//! The in-memory path is a shortcut; the store is the truth. A delivery is
//! *held* by this node while it sits in a lane, in flight, or waits for a
//! short retry; the store's lease on it is renewed meanwhile. Anything not held
//! is found again by the scheduler when due, so a crash loses nothing.
//! A lane holds a bounded number of jobs; its overflow is deferred in the
//! store (`overflow`), so memory stays the same whatever the backlog.

mod failing_endpoints;
mod lanes;
pub mod liveness;
mod overflow;
pub mod recorder;
pub mod retry;
mod scheduler;
pub mod sender;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::formats::EventData;
use crate::ids::{DeliveryId, EventId, ProjectId, WebhookId};
use crate::store::{DeliveryRow, DeliveryStatus, EventRow, Store, StoreError};
use crate::subscriptions::Subscriptions;
use crate::webhook::Webhook;

pub use recorder::HeadersJson;
pub use retry::RetryPolicy;
pub use sender::SendResult;

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub timeout: Duration,
    /// Requests in flight per webhook.
    pub lane_concurrency: usize,
    pub retry: RetryPolicy,
    /// How long a node's claim on a delivery lasts without renewal.
    pub lease: Duration,
    /// How often the scheduler looks for due deliveries it does not hold.
    pub scan_interval: Duration,
    /// A webhook with an exhausted delivery and no success for this long is disabled.
    pub failure_window: Duration,
    /// Which destinations may be reached.
    pub network: Arc<crate::netguard::NetworkPolicy>,
    /// Other nodes share the store (PostgreSQL): keep a heartbeat and take
    /// over the deliveries of nodes that stop beating (see `liveness`).
    pub shared_store: bool,
    /// A node whose heartbeat is older than this is dead.
    pub node_timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(30),
            lane_concurrency: 16,
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(60),
            scan_interval: Duration::from_secs(1),
            failure_window: Duration::from_secs(5 * 24 * 3600),
            network: Arc::default(),
            shared_store: false,
            node_timeout: Duration::from_secs(15),
        }
    }
}

/// One attempt to make: which delivery, for which webhook, of which event.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event: Arc<EventData>,
    pub attempts_made: u32,
    /// Attempts made before the last recover; the schedule counts from there.
    pub retry_base: u32,
    /// The node's epoch when the delivery was leased to it (`Engine::epoch`):
    /// a job of an earlier epoch is another node's now and is never sent.
    pub epoch: u64,
}

impl Job {
    /// The first attempt of a delivery just stored.
    pub fn new(
        delivery_id: DeliveryId,
        webhook_id: WebhookId,
        event: Arc<EventData>,
        epoch: u64,
    ) -> Job {
        Job {
            delivery_id,
            webhook_id,
            event,
            attempts_made: 0,
            retry_base: 0,
            epoch,
        }
    }

    /// The same job for a delivery that already had attempts.
    fn resumed(self, attempts_made: u32, retry_base: u32) -> Job {
        Job {
            attempts_made,
            retry_base,
            ..self
        }
    }
}

/// Why a manual attempt (a test or a redeliver) was not made or not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// The event, webhook or project is gone (`what` names it).
    #[error("no such {0}")]
    Missing(&'static str),
    /// A test asked for an event type the catalog does not know.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One of mlhook's own events (`mlhook.*`), for the ingest path to publish.
#[derive(Debug, Clone)]
pub struct Notice {
    pub project_id: ProjectId,
    pub event_type: &'static str,
    pub payload: serde_json::Value,
}

/// Retries due within this horizon wait in memory; later ones in the store.
const MEMORY_RETRY_HORIZON: Duration = Duration::from_secs(60);

pub struct Engine {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What every part of the engine reaches.
struct Shared {
    config: DeliveryConfig,
    store: Arc<dyn Store>,
    subscriptions: Arc<Subscriptions>,
    catalog: Arc<Catalog>,
    sender: sender::Sender,
    lanes: lanes::Lanes,
    held: Mutex<HashSet<DeliveryId>>,
    recorder_tx: mpsc::UnboundedSender<recorder::Recorded>,
    /// A full lane's overflow, for the store to defer.
    overflow_tx: mpsc::UnboundedSender<crate::store::Deferral>,
    notices: mpsc::UnboundedSender<Notice>,
    /// Webhooks whose last attempt failed: their next success is a recovery.
    failing: Mutex<HashSet<WebhookId>>,
    /// Deliveries finished outside the schedule (a redeliver succeeded): a
    /// retry still waiting in memory is dropped instead of sent.
    cancelled: Mutex<HashSet<DeliveryId>>,
    /// Wakes the scheduler early (after a recover, after a dead node's
    /// leases were released).
    wake_scheduler: tokio::sync::Notify,
    /// Whether this node may send what it holds (several nodes).
    liveness: liveness::Standing,
    /// Attempts in flight, awaited at shutdown.
    in_flight: TaskTracker,
    /// Stops lanes and the scheduler from starting new work.
    stopping: CancellationToken,
    /// Tells the recorder to write what it has and stop.
    recorder_stop: CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Engine {
    /// Starts the engine; the receiver yields the `mlhook.*` events it raises.
    pub fn start(
        config: DeliveryConfig,
        store: Arc<dyn Store>,
        subscriptions: Arc<Subscriptions>,
        catalog: Arc<Catalog>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> (Engine, mpsc::UnboundedReceiver<Notice>) {
        let (recorder_tx, recorder_rx) = mpsc::unbounded_channel();
        let (notices, notices_rx) = mpsc::unbounded_channel();
        let (overflow_tx, overflow_rx) = mpsc::unbounded_channel();
        let standing = liveness::Standing::new(&config);
        let shared = Arc::new(Shared {
            sender: sender::Sender::new(
                config.timeout,
                config.lane_concurrency,
                config.network.clone(),
            ),
            config,
            store,
            subscriptions,
            catalog,
            lanes: lanes::Lanes::default(),
            held: Mutex::new(HashSet::new()),
            recorder_tx,
            overflow_tx,
            notices,
            failing: Mutex::new(HashSet::new()),
            cancelled: Mutex::new(HashSet::new()),
            wake_scheduler: tokio::sync::Notify::new(),
            liveness: standing,
            in_flight: TaskTracker::new(),
            stopping: CancellationToken::new(),
            recorder_stop: CancellationToken::new(),
            metrics,
        });
        let tasks = vec![
            tokio::spawn(recorder::run(shared.clone(), recorder_rx)),
            tokio::spawn(overflow::run(shared.clone(), overflow_rx)),
            tokio::spawn(scheduler::run_scans(shared.clone())),
            tokio::spawn(scheduler::run_lease_renewal(shared.clone())),
            tokio::spawn(liveness::run(shared.clone())),
        ];
        (
            Engine {
                shared,
                tasks: Mutex::new(tasks),
            },
            notices_rx,
        )
    }

    /// One attempt outside the lanes and the schedule, not recorded: the
    /// check of an unsaved configuration. Same renderer, signer, headers and
    /// network path as every attempt.
    pub async fn send_now(
        &self,
        webhook: &Webhook,
        event: &EventData,
        delivery_id: &DeliveryId,
    ) -> sender::SendResult {
        self.shared.sender.send(webhook, event, delivery_id).await
    }

    /// A stored event as the delivery path renders it.
    pub fn stored_event(&self, event: EventRow) -> EventData {
        self.shared
            .event_data(event.id, event.project_id, event.event_type, event.payload)
    }

    /// A new attempt of a stored delivery now, whatever its state; recorded
    /// as manual and never retried. A success ends the delivery: a retry
    /// this node holds for it is dropped.
    pub async fn redeliver(&self, delivery: &DeliveryRow) -> Result<SendResult, ManualError> {
        let store = &self.shared.store;
        let event = store
            .get_event(&delivery.project_id, &delivery.event_id)
            .await?
            .ok_or(ManualError::Missing("event"))?;
        let webhook = store
            .get_webhook(&delivery.project_id, &delivery.webhook_id)
            .await?
            .ok_or(ManualError::Missing("webhook"))?;
        let event = self.stored_event(event);
        let result = self.send_now(&webhook, &event, &delivery.id).await;
        let status = if result.succeeded() {
            DeliveryStatus::Succeeded
        } else {
            DeliveryStatus::parse(&delivery.status).unwrap_or(DeliveryStatus::Failed)
        };
        let attempt = recorder::Manual {
            delivery_id: &delivery.id,
            webhook_id: &webhook.id,
            payload: &event.payload,
            number: delivery.attempts + 1,
        };
        recorder::record_manual(&self.shared, attempt, result.clone(), status).await?;
        if result.succeeded() {
            self.cancel_retry(&delivery.id);
        }
        Ok(result)
    }

    /// The test event for a webhook: the requested type, else the first type
    /// it listens to, else `TEST`; the family's test payload.
    pub fn test_event(
        &self,
        webhook: &Webhook,
        requested: Option<String>,
    ) -> Result<EventData, ManualError> {
        let catalog = &self.shared.catalog;
        let event_type = requested
            .or_else(|| {
                catalog
                    .first_listed(&webhook.events)
                    .map(|t| t.name.clone())
            })
            .unwrap_or_else(|| "TEST".to_string());
        let known = catalog.get(&event_type);
        let payload = catalog.test_payload(&event_type, chrono::Utc::now());
        let (Some(known), Some(payload)) = (known, payload) else {
            return Err(ManualError::UnknownEventType(event_type));
        };
        // The registry family's test payload is a TEST event, as the Comet document sends it.
        let sent_type = payload
            .get("eventTrigger")
            .and_then(|t| t.as_str())
            .unwrap_or(&known.name)
            .to_string();
        Ok(self.shared.event_data(
            EventId::generate(),
            webhook.project_id.clone(),
            sent_type,
            payload.to_string(),
        ))
    }

    /// The one attempt of a stored test delivery: sent now, recorded, never
    /// retried (a failure leaves it exhausted).
    pub async fn attempt_test(
        &self,
        webhook: &Webhook,
        event: &EventData,
        delivery_id: &DeliveryId,
    ) -> Result<SendResult, StoreError> {
        let result = self.send_now(webhook, event, delivery_id).await;
        let status = if result.succeeded() {
            DeliveryStatus::Succeeded
        } else {
            DeliveryStatus::Exhausted
        };
        let attempt = recorder::Manual {
            delivery_id,
            webhook_id: &webhook.id,
            payload: &event.payload,
            number: 1,
        };
        recorder::record_manual(&self.shared, attempt, result.clone(), status).await?;
        Ok(result)
    }

    /// Drops the retry this node may hold in memory for a delivery that
    /// succeeded by other means.
    pub fn cancel_retry(&self, delivery_id: &DeliveryId) {
        if self.shared.is_held(delivery_id) {
            self.shared
                .cancelled
                .lock()
                .expect("cancelled lock poisoned")
                .insert(delivery_id.clone());
        }
    }

    /// Looks for due deliveries now rather than at the next scan.
    pub fn wake_scheduler(&self) {
        self.shared.wake_scheduler.notify_one();
    }

    /// Disables a webhook (as the failing-endpoint policy does) and announces it.
    pub async fn disable_webhook(&self, webhook_id: &WebhookId, reason: &str) {
        failing_endpoints::disable(&self.shared, webhook_id, reason).await;
    }

    /// The epoch to give jobs for deliveries leased from now on: read it
    /// before writing the lease.
    pub fn epoch(&self) -> u64 {
        self.shared.liveness.epoch()
    }

    /// When a delivery routed now to `webhook_id` is to be due if its lane
    /// is full (a slot booked as for the lane's overflow); `None` when the
    /// lane has room and the delivery is to be sent from memory.
    pub fn deferral(&self, webhook_id: &WebhookId) -> Option<i64> {
        self.shared.lanes.slot_when_full(&self.shared, webhook_id)
    }

    /// Hands a freshly stored delivery to its webhook's lane.
    pub fn submit(&self, job: Job) {
        self.shared.submit(job);
    }

    /// Stops taking work, lets attempts in flight finish for up to `grace`,
    /// and writes their outcomes. What was still queued stays pending in the
    /// store and is sent after the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.stopping.cancel();
        self.shared.in_flight.close();
        if tokio::time::timeout(grace, self.shared.in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?grace, "attempts still in flight at shutdown; they will be retried");
        }
        self.shared.recorder_stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock poisoned"));
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Shared {
    /// An event as the delivery path renders it: its family from the
    /// catalog, its project's link base from the routing index.
    fn event_data(
        &self,
        id: EventId,
        project_id: ProjectId,
        event_type: String,
        payload: String,
    ) -> EventData {
        let family = self.catalog.get(&event_type).map(|t| t.family);
        let link_base = self.subscriptions.link_base(&project_id);
        EventData::new(id, project_id, event_type, payload, family, link_base)
    }

    /// Queues a job on its lane; a full lane leaves the delivery in the store.
    fn submit(self: &Arc<Self>, job: Job) -> lanes::Pushed {
        if !self.liveness.is_current(&job) {
            // Another node took it over while this one was taken for dead.
            return lanes::Pushed::Cancelled;
        }
        if self
            .cancelled
            .lock()
            .expect("cancelled lock poisoned")
            .remove(&job.delivery_id)
        {
            self.release(&job.delivery_id);
            return lanes::Pushed::Cancelled;
        }
        self.held
            .lock()
            .expect("held lock poisoned")
            .insert(job.delivery_id.clone());
        self.lanes.push(self, job)
    }

    /// Hands a delivery a full lane did not take to the store, due at `at`.
    fn overflow(&self, delivery_id: DeliveryId, at: i64) {
        let deferral = crate::store::Deferral {
            delivery_id,
            next_attempt_at: at,
        };
        // Closed only at shutdown: the lease then runs out instead.
        let _ = self.overflow_tx.send(deferral);
    }

    fn release(&self, delivery_id: &DeliveryId) {
        self.held
            .lock()
            .expect("held lock poisoned")
            .remove(delivery_id);
    }

    fn is_held(&self, delivery_id: &DeliveryId) -> bool {
        self.held
            .lock()
            .expect("held lock poisoned")
            .contains(delivery_id)
    }
}

/// The longest wait of a background loop whose store calls fail: a store
/// back from an outage (a disk with space again) must see every loop at work
/// within seconds.
const MAX_BACKOFF: Duration = Duration::from_millis(1600);
