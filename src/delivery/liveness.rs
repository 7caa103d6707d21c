//! Node liveness, for several nodes on one PostgreSQL database: a heartbeat,
//! the release of dead nodes' leases, and the fence that keeps a node taken
//! for dead from sending what the others now send.
//!
//! Every node renews its row in `nodes` every fifth of `node_timeout`,
//! stamped with the database's clock. A node whose row is older than
//! `node_timeout` is dead: a live node marks it so, which frees all its
//! leases at once (claims treat a dead node's lease as none, so nothing is
//! rewritten at the death however much it held), and claims what is due
//! at once. From a death to the claim: at most `node_timeout` plus one
//! heartbeat period (and the claim's own round trip).
//!
//! Why no double sends between live nodes: a node starts attempts only
//! while its last confirmed heartbeat was sent less than `node_timeout`
//! less one period ago. The row's stamp is no earlier than that send, so no
//! other node can have found it dead yet. A node cut off for longer holds
//! its attempts, and its next heartbeat tells it whether its row was still
//! there (it carries on) or marked dead (its leases went to the others: it
//! drops everything it held, by starting a new epoch, and registers anew
//! under a new name).
//! A node releases others' leases only after its own heartbeats have
//! succeeded for a whole `node_timeout`, so after a database outage every
//! node has the time to beat again before anyone is taken for dead.
//!
//! One process on SQLite has no peers: nothing here runs, every check passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{DeliveryConfig, Job, Shared};
use crate::store::{NodeBeat, deadline};

/// How often a node renews its heartbeat, for a given timeout.
pub fn heartbeat_period(node_timeout: Duration) -> Duration {
    node_timeout / 5
}

/// Whether this node may send what it holds.
pub(super) struct Standing {
    /// Several nodes share the store; otherwise every check passes.
    shared: bool,
    /// How long after a confirmed heartbeat was sent this node may still send.
    trusted_for: Duration,
    /// When the last heartbeat the database confirmed was sent.
    confirmed: Mutex<Instant>,
    /// Changes when this node learns it was taken for dead: jobs of an
    /// earlier epoch are dropped, not sent.
    epoch: AtomicU64,
    /// Wakes attempts held back, at each confirmed heartbeat.
    beat: Notify,
}

impl Standing {
    pub(super) fn new(config: &DeliveryConfig) -> Standing {
        Standing {
            shared: config.shared_store,
            trusted_for: config.node_timeout - heartbeat_period(config.node_timeout),
            // No other node can find this one dead before its first
            // heartbeat is older than the timeout.
            confirmed: Mutex::new(Instant::now()),
            epoch: AtomicU64::new(0),
            beat: Notify::new(),
        }
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether `job` was taken in the current epoch.
    pub(super) fn is_current(&self, job: &Job) -> bool {
        job.epoch == self.epoch()
    }

    fn trusted(&self) -> bool {
        !self.shared
            || self.confirmed.lock().expect("standing poisoned").elapsed() < self.trusted_for
    }

    fn confirm(&self, sent: Instant) {
        *self.confirmed.lock().expect("standing poisoned") = sent;
        self.beat.notify_waiters();
    }

    /// Waits until this node may start an attempt of `job`: `false` when the
    /// job belongs to an epoch that ended (another node has it now) or the
    /// engine is stopping.
    pub(super) async fn admit(&self, job: &Job, stopping: &CancellationToken) -> bool {
        loop {
            if !self.is_current(job) {
                return false;
            }
            if self.trusted() {
                return true;
            }
            tokio::select! {
                _ = stopping.cancelled() => return false,
                _ = self.beat.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// The heartbeat loop: renews this node's row, and releases the leases of
/// nodes found dead.
pub(super) async fn run(shared: Arc<Shared>) {
    if !shared.config.shared_store {
        return;
    }
    let timeout = shared.config.node_timeout;
    let period = heartbeat_period(timeout);
    let mut registered = false;
    // Since when every heartbeat has succeeded.
    let mut healthy_since: Option<Instant> = None;
    loop {
        let sent = Instant::now();
        match deadline::within(sent + period, shared.store.node_heartbeat()).await {
            Ok(beat) => {
                if healthy_since.is_none() && registered {
                    tracing::info!("node heartbeat renewed again");
                }
                if beat == NodeBeat::TakenForDead {
                    taken_for_dead(&shared, timeout);
                    healthy_since = None;
                }
                registered = true;
                shared.liveness.confirm(sent);
                let since = *healthy_since.get_or_insert(sent);
                if sent.duration_since(since) >= timeout {
                    release_dead(&shared, timeout, sent + period).await;
                }
            }
            Err(e) => {
                if healthy_since.take().is_some() || !registered {
                    tracing::warn!(error = %e, "could not renew this node's heartbeat; retrying");
                }
            }
        }
        tokio::select! {
            _ = shared.stopping.cancelled() => return,
            _ = tokio::time::sleep_until(sent + period) => {}
        }
    }
}

/// Another node found this one dead and released its leases: what it holds
/// is the others' now.
fn taken_for_dead(shared: &Shared, timeout: Duration) {
    let epoch = shared.liveness.epoch.fetch_add(1, Ordering::SeqCst) + 1;
    let dropped = {
        let mut held = shared.held.lock().expect("held lock poisoned");
        let n = held.len();
        held.clear();
        n
    };
    tracing::warn!(
        dropped, epoch, node_timeout = ?timeout,
        "this node was taken for dead (no heartbeat within the node timeout): \
         the deliveries it held went to the other nodes"
    );
}

async fn release_dead(shared: &Shared, timeout: Duration, until: Instant) {
    match deadline::within(until, shared.store.release_dead_nodes(timeout)).await {
        Ok(dead) if !dead.is_empty() => {
            tracing::warn!(
                nodes = ?dead, node_timeout = ?timeout,
                "nodes found dead (no heartbeat within the node timeout): their deliveries are released"
            );
            shared.wake_scheduler.notify_one();
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not look for dead nodes"),
    }
}
