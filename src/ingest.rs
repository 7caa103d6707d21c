//! Accepting events: the group-commit writer between the API and the store.
//!
//! Concurrent requests queue their events here; one task writes whatever has
//! queued in a single transaction (one fsync for many events), answers each
//! request, and only then hands the new deliveries to the delivery engine.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::catalog::Family;
use crate::delivery::{Engine, Job};
use crate::formats::EventData;
use crate::store::{Inserted, NewEvent, Store};

/// Events written per transaction at most (a batch request is never split).
const MAX_EVENTS_PER_COMMIT: usize = 4096;
/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// An event to store, with the family its deliveries render by.
pub struct Submission {
    pub event: NewEvent,
    pub family: Option<Family>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    Created { event_id: String, delivery_ids: Vec<String> },
    Replayed { event_id: String, delivery_ids: Vec<String> },
    ProjectGone,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the store could not write the events: {0}")]
    Store(String),
    #[error("the ingest writer has stopped")]
    Stopped,
}

struct Request {
    submissions: Vec<Submission>,
    reply: oneshot::Sender<Result<Vec<Accepted>, IngestError>>,
}

#[derive(Clone)]
pub struct Ingestor {
    requests: mpsc::Sender<Request>,
}

impl Ingestor {
    pub fn start(store: Arc<dyn Store>, engine: Arc<Engine>) -> Ingestor {
        let (requests, rx) = mpsc::channel(1024);
        tokio::spawn(run(store, engine, rx));
        Ingestor { requests }
    }

    /// Stores the events durably (all or none) and answers each in order.
    pub async fn ingest(&self, submissions: Vec<Submission>) -> Result<Vec<Accepted>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request { submissions, reply }).await.map_err(|_| IngestError::Stopped)?;
        answer.await.map_err(|_| IngestError::Stopped)?
    }
}

async fn run(store: Arc<dyn Store>, engine: Arc<Engine>, mut requests: mpsc::Receiver<Request>) {
    let mut batch: Vec<Request> = Vec::new();
    while let Some(first) = requests.recv().await {
        let mut size = first.submissions.len();
        batch.push(first);
        while size < MAX_EVENTS_PER_COMMIT {
            let Ok(next) = requests.try_recv() else { break };
            size += next.submissions.len();
            batch.push(next);
        }
        commit(&*store, &engine, std::mem::take(&mut batch)).await;
    }
}

/// Writes one group of requests and answers them; dispatches what was created.
async fn commit(store: &dyn Store, engine: &Engine, batch: Vec<Request>) {
    let events: Vec<NewEvent> = batch.iter().flat_map(|r| r.submissions.iter().map(|s| s.event.clone())).collect();
    let result = store.insert_events(&events, IDEMPOTENCY_WINDOW_MS).await;
    let mut answers = match result {
        Ok(answers) => answers.into_iter(),
        Err(e) => {
            tracing::error!(error = %e, events = events.len(), "could not store events");
            for request in batch {
                let _ = request.reply.send(Err(IngestError::Store(e.to_string())));
            }
            return;
        }
    };
    for request in batch {
        let mut accepted = Vec::with_capacity(request.submissions.len());
        for submission in request.submissions {
            let inserted = answers.next().expect("the store answers every event");
            accepted.push(accept(engine, submission, inserted));
        }
        let _ = request.reply.send(Ok(accepted));
    }
}

fn accept(engine: &Engine, submission: Submission, inserted: Inserted) -> Accepted {
    match inserted {
        Inserted::Replayed { event_id, delivery_ids } => Accepted::Replayed { event_id, delivery_ids },
        Inserted::ProjectGone => Accepted::ProjectGone,
        Inserted::Created => {
            let Submission { event, family } = submission;
            let delivery_ids = event.deliveries.iter().map(|d| d.id.clone()).collect();
            let data = Arc::new(EventData {
                id: event.id.clone(),
                project_id: event.project_id,
                event_type: event.event_type,
                family,
                payload: event.payload,
            });
            for d in event.deliveries {
                engine.submit(Job { delivery_id: d.id, webhook_id: d.webhook_id, event: data.clone(), attempts_made: 0 });
            }
            Accepted::Created { event_id: event.id, delivery_ids }
        }
    }
}
