//! Accepts and serves the API's HTTP connections, within limits that keep a
//! flood of slow or idle clients from taking the process down.
//!
//! - **Header-read timeout.** A client must send a complete request head
//!   within `header_read_timeout` of connecting or of its previous answer;
//!   otherwise its connection is closed. The clock runs while a keep-alive
//!   connection sits idle too, so this is also the idle timeout.
//! - **A cap on open connections.** At `max_connections`, a new connection is
//!   still accepted and the oldest one is asked to close: at once when it is
//!   idle or still sending its request head, after its answer otherwise. A
//!   slow client can hold a slot only until newer clients need it, so the
//!   newest — a health check, a real client — is always served, while memory
//!   and file descriptors stay bounded by the cap. (Refusing new connections
//!   instead would lock out exactly those.)
//!
//! Per request this adds only what `axum::serve` does: the client's address
//! as `ConnectInfo`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How the API's connections are bounded (`--header-read-timeout`, `--max-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let open = Arc::new(OpenConnections::new(limits.max_connections));
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            header_read_timeout: limits.header_read_timeout,
            stop: stop.clone(),
            slot: open.admit(),
        };
        tasks.spawn(connection.serve(stream, remote));
    }
    drop(listener);
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

/// A failed accept: the client gave up already, or the process is out of
/// file descriptors (brief pause, so the loop does not spin).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One accepted connection and what it is served with.
struct Connection {
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    header_read_timeout: Duration,
    stop: CancellationToken,
    slot: Slot,
}

impl Connection {
    async fn serve(self, stream: TcpStream, remote: SocketAddr) {
        let Connection {
            router,
            builder,
            header_read_timeout,
            stop,
            mut slot,
        } = self;
        // Until its first request a connection is timed and closed here:
        // telling HTTP/1 from HTTP/2 has no timeout of its own, and hyper's
        // graceful shutdown would wait for a first request to finish.
        let started = Arc::new(AtomicBool::new(false));
        let first_request = started.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            if !first_request.load(Ordering::Relaxed) {
                first_request.store(true, Ordering::Relaxed);
            }
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(request)
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let first_head = tokio::time::sleep(header_read_timeout);
        tokio::pin!(first_head);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = &mut slot.evicted, if !closing => {}
                _ = stop.cancelled(), if !closing => {}
                _ = &mut first_head, if !closing && !started.load(Ordering::Relaxed) => {}
            }
            closing = true;
            if !started.load(Ordering::Relaxed) {
                // No request yet: nothing to finish (and hyper would wait
                // for the first request before closing).
                return;
            }
            // Closes at once when idle or mid-head; after the answer otherwise.
            conn.as_mut().graceful_shutdown();
        }
    }
}

/// The open connections in the order they were accepted.
struct OpenConnections {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Each connection's eviction notice; its id orders it by age.
    open: BTreeMap<u64, oneshot::Sender<()>>,
}

impl OpenConnections {
    fn new(max: usize) -> OpenConnections {
        OpenConnections {
            max: max.max(1),
            inner: Mutex::default(),
        }
    }

    /// A slot for a new connection, asking the oldest to close when full.
    fn admit(self: &Arc<Self>) -> Slot {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().expect("connections lock poisoned");
        while inner.open.len() >= self.max {
            let Some((_, oldest)) = inner.open.pop_first() else {
                break;
            };
            let _ = oldest.send(());
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.open.insert(id, tx);
        Slot {
            id,
            evicted: rx,
            open: self.clone(),
        }
    }
}

/// A connection's place among the open ones, given back when it ends.
struct Slot {
    id: u64,
    evicted: oneshot::Receiver<()>,
    open: Arc<OpenConnections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.open.inner.lock().expect("connections lock poisoned");
        inner.open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_oldest_connection_first() {
        let open = Arc::new(OpenConnections::new(2));
        let mut first = open.admit();
        let mut second = open.admit();
        let mut third = open.admit();
        assert!(
            first.evicted.try_recv().is_ok(),
            "the oldest is asked to close"
        );
        assert!(second.evicted.try_recv().is_err());
        drop(second);
        // A slot given back leaves room: nobody else is asked to close.
        let _fourth = open.admit();
        assert!(third.evicted.try_recv().is_err());
        assert_eq!(open.inner.lock().unwrap().open.len(), 2);
    }
}
