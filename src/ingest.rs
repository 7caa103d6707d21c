//! Accepting events: the group-commit writer between the API and the store.
//!
//! Concurrent requests queue their events here; one task writes whatever has
//! queued in a single transaction (one fsync for many events), answers each
//! request, and only then hands the new deliveries to the delivery engine.
//! Every event and delivery mlhook creates comes through here: a client's,
//! mlhook's own (`mlhook.*`), a webhook test's, and the new deliveries of a
//! replayed event.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::catalog::{Catalog, CatalogError, Family, ObjectRef, PrepareContext};
use crate::delivery::{Engine, Job, ManualError, Notice, SendResult};
use crate::formats::EventData;
use crate::ids::{DeliveryId, EventId, ProjectId, now_millis};
use crate::metrics::{Metrics, Writer};
use crate::store::{
    EventRow, Fingerprint, IdempotencyKey, Inserted, NewDelivery, NewEvent, Store, StoreResult,
    deadline,
};
use crate::subscriptions::Subscriptions;
use crate::webhook::Webhook;

/// Events written per transaction at most (a batch request is never split).
const MAX_EVENTS_PER_COMMIT: usize = 4096;
/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// An event as a client (or mlhook itself) publishes it.
#[derive(Debug, Clone)]
pub struct EventRequest {
    pub event_type: String,
    pub payload: serde_json::Value,
    pub object: Option<ObjectRef>,
    pub idempotency_key: Option<String>,
}

/// An event to store, with the family its deliveries render by.
pub struct Submission {
    pub event: NewEvent,
    pub family: Option<Family>,
    /// The project's base for relative links, for the chat formats.
    pub link_base: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    Created {
        event_id: EventId,
        delivery_ids: Vec<DeliveryId>,
    },
    /// The idempotency key was given before with the same request: the
    /// first event's answer, nothing stored again (a *repeat*; a *replay*
    /// re-routes a stored event, see `Ingestor::replay`).
    Repeated {
        event_id: EventId,
        delivery_ids: Vec<DeliveryId>,
    },
    /// The idempotency key was given with a different request: nothing of
    /// this request was stored.
    KeyReused,
    /// Another event of the request was `KeyReused`: not stored either.
    Withheld,
    ProjectGone,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the store could not write the events: {0}")]
    Store(String),
    #[error("the ingest writer has stopped")]
    Stopped,
    /// The request's time to wait for the database ran out in the queue.
    #[error("the database could not be reached in time")]
    TimedOut,
}

/// A replayed event: its id and its new deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub event_id: EventId,
    pub delivery_ids: Vec<DeliveryId>,
}

/// Why a webhook test was not sent or not recorded.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error(transparent)]
    Attempt(#[from] ManualError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

struct Request {
    submissions: Vec<Submission>,
    /// Past it, the request is answered `TimedOut` instead of written.
    deadline: Option<Instant>,
    reply: oneshot::Sender<Result<Vec<Accepted>, IngestError>>,
}

#[derive(Clone)]
pub struct Ingestor {
    requests: mpsc::Sender<Request>,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    catalog: Arc<Catalog>,
    subscriptions: Arc<Subscriptions>,
    /// Lease given to the deliveries this node creates and sends from memory.
    lease_ms: i64,
    /// How long a request may wait for the database (PostgreSQL), queue
    /// included, when it does not bring its own deadline.
    wait_bound: Option<Duration>,
}

impl Ingestor {
    pub fn start(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        catalog: Arc<Catalog>,
        subscriptions: Arc<Subscriptions>,
        lease_ms: i64,
        wait_bound: Option<Duration>,
        metrics: Arc<Metrics>,
    ) -> Ingestor {
        let (requests, rx) = mpsc::channel(1024);
        tokio::spawn(run(store.clone(), engine.clone(), metrics, rx));
        Ingestor {
            requests,
            store,
            engine,
            catalog,
            subscriptions,
            lease_ms,
            wait_bound,
        }
    }

    /// Validates an event against the catalog and decides its deliveries;
    /// nothing is written yet.
    pub fn prepare(
        &self,
        project_id: &ProjectId,
        request: EventRequest,
        now: i64,
    ) -> Result<Submission, CatalogError> {
        let ctx = PrepareContext { project_id };
        let prepared = self
            .catalog
            .prepare(&request.event_type, request.payload, &ctx)?;
        let object = request.object.or(prepared.object);
        let family = self.catalog.get(&request.event_type).map(|t| t.family);
        let deliveries = self.fan_out(project_id, &request.event_type, object.as_ref());
        let payload = prepared.payload.to_string();
        // Hashed here, on the request's task, not on the single writer.
        let idempotency_key = request.idempotency_key.map(|key| IdempotencyKey {
            fingerprint: Fingerprint::of(&request.event_type, object.as_ref(), &payload),
            key,
        });
        let event = NewEvent {
            id: EventId::generate(),
            project_id: project_id.clone(),
            event_type: request.event_type,
            object,
            payload,
            created_at: now,
            idempotency_key,
            deliveries,
            lease_until: now + self.lease_ms,
            is_test: false,
            request: 0,
        };
        let link_base = self.subscriptions.link_base(project_id);
        Ok(Submission {
            event,
            family,
            link_base,
        })
    }

    /// A new delivery for each webhook that matches the event now; one whose
    /// lane is full is written deferred, so a held backlog waits in the
    /// store and never in memory.
    fn fan_out(
        &self,
        project_id: &ProjectId,
        event_type: &str,
        object: Option<&ObjectRef>,
    ) -> Vec<NewDelivery> {
        self.subscriptions
            .matching(project_id, event_type, object)
            .iter()
            .map(|w| NewDelivery {
                deferred_to: self.engine.deferral(&w.id),
                ..NewDelivery::new(w.id.clone())
            })
            .collect()
    }

    /// Routes a stored event again: a new delivery for each webhook that
    /// matches it now (one created after the event, say), stored and then
    /// sent like any other.
    pub async fn replay(&self, event: EventRow) -> StoreResult<Replayed> {
        let deliveries = self.fan_out(&event.project_id, &event.event_type, event.object.as_ref());
        let lease_until = now_millis() + self.lease_ms;
        let epoch = self.engine.epoch();
        self.store
            .insert_deliveries(&event, &deliveries, lease_until)
            .await?;
        let event = self.engine.stored_event(event);
        let event_id = event.id.clone();
        let delivery_ids = dispatch(&self.engine, event, deliveries, epoch);
        Ok(Replayed {
            event_id,
            delivery_ids,
        })
    }

    /// Sends a webhook the test event of `event_type` (or of its first type)
    /// now, and answers the test delivery's id and what came back. The event
    /// is stored first, marked as a test, so the log's id order stays its
    /// time order (a page walk never meets it late); the engine is not given
    /// it: a test is never due and never retried.
    pub async fn send_test(
        &self,
        webhook: &Webhook,
        event_type: Option<String>,
    ) -> Result<(DeliveryId, SendResult), TestError> {
        let event = self.engine.test_event(webhook, event_type)?;
        let delivery_id = DeliveryId::generate();
        let now = now_millis();
        let stored = NewEvent {
            id: event.id.clone(),
            project_id: event.project_id.clone(),
            event_type: event.event_type.clone(),
            object: None,
            payload: event.payload.clone(),
            created_at: now,
            idempotency_key: None,
            deliveries: vec![NewDelivery {
                id: delivery_id.clone(),
                webhook_id: webhook.id.clone(),
                deferred_to: None,
            }],
            lease_until: now,
            is_test: true,
            request: 0,
        };
        let submission = Submission {
            event: stored,
            family: None,
            link_base: None,
        };
        if let [Accepted::ProjectGone] = self.ingest(vec![submission]).await?.as_slice() {
            return Err(ManualError::Missing("project").into());
        }
        let result = self
            .engine
            .attempt_test(webhook, &event, &delivery_id)
            .await
            .map_err(ManualError::from)?;
        Ok((delivery_id, result))
    }

    /// Publishes mlhook's own events as they come, like any client's.
    pub fn publish_notices(&self, mut notices: mpsc::UnboundedReceiver<Notice>) {
        let ingestor = self.clone();
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                ingestor.publish(notice).await;
            }
        });
    }

    async fn publish(&self, notice: Notice) {
        let request = EventRequest {
            event_type: notice.event_type.to_string(),
            payload: notice.payload,
            object: None,
            idempotency_key: None,
        };
        let result = match self.prepare(&notice.project_id, request, now_millis()) {
            Ok(submission) => self
                .ingest(vec![submission])
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::error!(event_type = notice.event_type, error = %e, "could not publish operational event");
        }
    }

    /// Stores the events durably (all or none) and answers each in order;
    /// with a deadline (the API request's, see `store::deadline`), answers
    /// `TimedOut` rather than wait past it for the database.
    pub async fn ingest(&self, submissions: Vec<Submission>) -> Result<Vec<Accepted>, IngestError> {
        let (reply, answer) = oneshot::channel();
        let deadline = deadline::current().or_else(|| self.wait_bound.map(|b| Instant::now() + b));
        self.requests
            .send(Request {
                submissions,
                deadline,
                reply,
            })
            .await
            .map_err(|_| IngestError::Stopped)?;
        answer.await.map_err(|_| IngestError::Stopped)?
    }
}

async fn run(
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    mut requests: mpsc::Receiver<Request>,
) {
    let mut batch: Vec<Request> = Vec::new();
    while let Some(first) = requests.recv().await {
        let mut size = first.submissions.len();
        batch.push(first);
        while size < MAX_EVENTS_PER_COMMIT {
            let Ok(next) = requests.try_recv() else { break };
            size += next.submissions.len();
            batch.push(next);
        }
        commit(&*store, &engine, &metrics, std::mem::take(&mut batch)).await;
    }
}

/// Writes one group of requests and answers them; dispatches what was created.
/// A request that waited out its deadline behind earlier batches (the
/// database is unreachable) is answered without being written; the others
/// wait for the database no longer than the earliest deadline among them.
async fn commit(store: &dyn Store, engine: &Engine, metrics: &Metrics, batch: Vec<Request>) {
    let now = Instant::now();
    let (mut batch, late): (Vec<Request>, Vec<Request>) = batch
        .into_iter()
        .partition(|r| r.deadline.is_none_or(|d| d > now));
    for request in late {
        let _ = request.reply.send(Err(IngestError::TimedOut));
    }
    if batch.is_empty() {
        return;
    }
    // Numbered by request: the store keeps each one whole or refuses it whole.
    // Moved out of the requests, not copied (a batch's payloads are much of
    // ingest's memory), and put back once written.
    let events: Vec<NewEvent> = batch
        .iter_mut()
        .zip(0u32..)
        .flat_map(|(r, n)| {
            r.submissions.iter_mut().map(move |s| NewEvent {
                request: n,
                ..std::mem::take(&mut s.event)
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let epoch = engine.epoch();
    let write = store.insert_events(&events, IDEMPOTENCY_WINDOW_MS);
    let result = match batch.iter().filter_map(|r| r.deadline).min() {
        Some(earliest) => deadline::within(earliest, write).await,
        None => write.await,
    };
    metrics.store_write(
        Writer::Ingest,
        events.len(),
        started.elapsed(),
        result.is_ok(),
    );
    let mut written = events.into_iter();
    let mut answers = match result {
        Ok(answers) => answers.into_iter(),
        Err(e) => {
            tracing::error!(error = %e, events = written.len(), "could not store events");
            for request in batch {
                let _ = request.reply.send(Err(IngestError::Store(e.to_string())));
            }
            return;
        }
    };
    for request in batch {
        let mut accepted = Vec::with_capacity(request.submissions.len());
        for mut submission in request.submissions {
            submission.event = written.next().expect("every event was written");
            let inserted = answers.next().expect("the store answers every event");
            if matches!(inserted, Inserted::Created) && !submission.event.is_test {
                let event = &submission.event;
                metrics.event_ingested(
                    &event.project_id,
                    &event.event_type,
                    event.deliveries.len(),
                );
            }
            accepted.push(accept(engine, submission, inserted, epoch));
        }
        let _ = request.reply.send(Ok(accepted));
    }
}

fn accept(engine: &Engine, submission: Submission, inserted: Inserted, epoch: u64) -> Accepted {
    match inserted {
        Inserted::Repeated {
            event_id,
            delivery_ids,
        } => Accepted::Repeated {
            event_id,
            delivery_ids,
        },
        Inserted::KeyReused => Accepted::KeyReused,
        Inserted::Withheld => Accepted::Withheld,
        Inserted::ProjectGone => Accepted::ProjectGone,
        Inserted::Created if submission.event.is_test => Accepted::Created {
            delivery_ids: submission
                .event
                .deliveries
                .into_iter()
                .map(|d| d.id)
                .collect(),
            event_id: submission.event.id,
        },
        Inserted::Created => {
            let Submission {
                event,
                family,
                link_base,
            } = submission;
            let data = EventData::new(
                event.id.clone(),
                event.project_id,
                event.event_type,
                event.payload,
                family,
                link_base,
            );
            Accepted::Created {
                delivery_ids: dispatch(engine, data, event.deliveries, epoch),
                event_id: event.id,
            }
        }
    }
}

/// Hands each new delivery of an event to the engine, but for the deferred
/// ones (the scheduler claims them when due); answers all their ids.
fn dispatch(
    engine: &Engine,
    event: EventData,
    deliveries: Vec<NewDelivery>,
    epoch: u64,
) -> Vec<DeliveryId> {
    let event = Arc::new(event);
    let mut ids = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        ids.push(d.id.clone());
        if d.deferred_to.is_none() {
            engine.submit(Job::new(d.id, d.webhook_id, event.clone(), epoch));
        }
    }
    ids
}
