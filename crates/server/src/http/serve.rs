//! The accept loop: HTTP/1.1 over hyper, with the limits `axum::serve` has no knobs for. Idle
//! and half-sent connections are closed after a timeout, connections are bounded so that they
//! cannot take the file descriptors the catalog, the blob store and imports need, and a shutdown
//! waits for requests in flight only up to a deadline.
//!
//! What hyper's `header_read_timeout` covers (hyper 1.12, `proto/h1/conn.rs`): its timer starts
//! when the connection is first read and again as soon as a response is done and the connection
//! goes idle, and stops when a request's headers are complete. So on a keep-alive connection it
//! is the idle timeout: the time from the last response to the next request's complete headers.
//! Hyper is therefore given the idle timeout, and the shorter limit for a new connection's first
//! request is a watchdog of our own, one timer per connection that is gone once the first
//! request has arrived. Nothing is timed per request beyond what hyper does anyway.

use crate::config::HttpArgs;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

/// Connections held at once when `--http-max-connections` is not given and the open-file limit
/// allows: far above what API clients use (the benchmark's keep-alive load is a few hundred),
/// and a bound on the memory idle connections take (hyper's buffers, some KiB each).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Open files kept for everything but connections, at most: the catalog's pool (SQLite's database,
/// journal and shared memory per connection, or PostgreSQL's sockets), blob files being written,
/// import downloads, and the odd log or config file.
const FILES_RESERVED_MAX: u64 = 1024;
/// When `accept` fails for want of resources (EMFILE, ENFILE, ENOBUFS), retrying at once would
/// spin: wait this long for connections to close first.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The limits the accept loop applies.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

impl ServeLimits {
    /// The limits the flags ask for, the connection bound derived from the open-file limit
    /// when not given (and capped by it when given).
    pub fn from_args(args: &HttpArgs) -> Self {
        let open_files = open_file_limit();
        let fits = open_files.map(max_connections_for);
        let max_connections = match (args.http_max_connections, fits) {
            (Some(asked), Some(fits)) if asked > fits => {
                tracing::warn!(
                    asked,
                    allowed = fits,
                    open_file_limit = open_files,
                    "--http-max-connections is more than the open-file limit leaves room for; using the lower figure"
                );
                fits
            }
            (Some(asked), _) => asked,
            (None, Some(fits)) => fits,
            (None, None) => DEFAULT_MAX_CONNECTIONS,
        };
        ServeLimits {
            // Zero would close every connection at once; a second is the least that works.
            header_read_timeout: Duration::from_secs(args.http_header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(args.http_idle_timeout_secs.max(1)),
            max_connections: max_connections.max(1),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout_secs),
        }
    }
}

/// How many connections `open_files` descriptors leave room for: a quarter of them (up to
/// 1,024) is kept for the rest of the server, and no more than `DEFAULT_MAX_CONNECTIONS`.
pub fn max_connections_for(open_files: u64) -> usize {
    let reserved = (open_files / 4).min(FILES_RESERVED_MAX);
    let fits = usize::try_from(open_files - reserved).unwrap_or(usize::MAX);
    fits.clamp(1, DEFAULT_MAX_CONNECTIONS)
}

/// The process's soft limit on open files, if it has one.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, Resource};
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft limit on open files to the hard one and logs both figures. The soft limit
/// is often 1,024 (systemd and most shells) while the hard one is far higher, and every
/// connection is a file: at 1,024 a thousand idle clients left no descriptor to accept with.
#[cfg(unix)]
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    if limit.current == limit.maximum {
        tracing::info!(
            soft = %show(limit.current),
            hard = %show(limit.maximum),
            "open-file limit already at its hard limit"
        );
        return;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(
            was = %show(limit.current),
            now = %show(limit.maximum),
            hard = %show(limit.maximum),
            "raised the open-file limit to its hard limit"
        ),
        Err(err) => tracing::warn!(
            soft = %show(limit.current),
            hard = %show(limit.maximum),
            %err,
            "cannot raise the open-file limit; connections are bounded by the soft limit"
        ),
    }
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() {}

/// Serves `router` on `listener` until `stop` is cancelled, then shuts down gracefully: stops
/// accepting, lets requests in flight finish for up to `limits.shutdown_timeout`, and drops the
/// connections still open after that.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    stop: CancellationToken,
) {
    let hyper_timeout = limits.idle_timeout.max(limits.header_read_timeout);
    let first_request_timeout =
        (limits.header_read_timeout < hyper_timeout).then_some(limits.header_read_timeout);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(hyper_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Cancelled when the shutdown deadline passes: every connection task ends at once.
    let drop_connections = CancellationToken::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout_secs = limits.header_read_timeout.as_secs(),
        idle_timeout_secs = limits.idle_timeout.as_secs(),
        "accepting HTTP/1.1 connections"
    );

    let mut accept_failures: Option<u64> = None;
    loop {
        // At the bound, stop accepting until a connection closes rather than accept and drop:
        // the kernel's backlog holds the newcomers meanwhile, and every connection that holds
        // a slot without sending a request loses it within the header-read timeout, so a wait
        // is bounded without tracking which connection is the oldest idle one.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                // Logged once per run of failures, so a descriptor shortage does not flood the
                // log ten times a second.
                let failures = accept_failures.get_or_insert(0);
                if *failures == 0 {
                    tracing::error!(%err, "cannot accept connections; retrying every 100 ms until it works");
                }
                *failures += 1;
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Some(failures) = accept_failures.take() {
            tracing::info!(failures, "accepting connections again");
        }
        let connection = Connection {
            stream,
            peer,
            router: router.clone(),
            builder: builder.clone(),
            first_request_timeout,
            drop_connections: drop_connections.clone(),
            _slot: permit,
        };
        tokio::spawn(connection.run(graceful.watcher()));
    }
    drop(listener);

    let open = graceful.count();
    if open > 0 {
        tracing::info!(connections = open, "waiting for requests in flight");
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_secs = limits.shutdown_timeout.as_secs(),
            "requests still in flight at the shutdown deadline; dropping their connections"
        );
        drop_connections.cancel();
        // Each connection task holds a slot until it has ended: getting them all back means
        // every connection is closed. The tasks end at their next poll, so this is quick.
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
    }
}

/// Errors of one connection that went away before it was accepted: the next accept is fine.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: Arc<http1::Builder>,
    first_request_timeout: Option<Duration>,
    drop_connections: CancellationToken,
    /// Returned to the accept loop when the connection ends.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, graceful: hyper_util::server::graceful::Watcher) {
        // Responses are small and written whole; without this, Nagle's algorithm can hold a
        // response's last segment for the client's delayed ACK.
        let _ = self.stream.set_nodelay(true);
        let first_request_seen = Arc::new(AtomicBool::new(false));
        let service = ConnectionService {
            router: self.router,
            peer: ConnectInfo(self.peer),
            first_request_seen: first_request_seen.clone(),
        };
        let conn = graceful.watch(
            self.builder
                .serve_connection(TokioIo::new(self.stream), service),
        );
        tokio::pin!(conn);
        let dropped = self.drop_connections.cancelled();
        tokio::pin!(dropped);
        let first_deadline = tokio::time::sleep(self.first_request_timeout.unwrap_or_default());
        tokio::pin!(first_deadline);
        let mut awaiting_first = self.first_request_timeout.is_some();
        loop {
            tokio::select! {
                served = &mut conn => {
                    if let Err(err) = served {
                        tracing::debug!(peer = %self.peer, %err, "connection ended with an error");
                    }
                    return;
                }
                () = &mut first_deadline, if awaiting_first => {
                    if !first_request_seen.load(Ordering::Relaxed) {
                        tracing::debug!(peer = %self.peer, "closing a connection that sent no complete request within the header-read timeout");
                        return;
                    }
                    awaiting_first = false;
                }
                () = &mut dropped => return,
            }
        }
    }
}

/// axum's router as hyper's service, with the client's address where `ConnectInfo` finds it.
struct ConnectionService {
    router: Router,
    peer: ConnectInfo<SocketAddr>,
    first_request_seen: Arc<AtomicBool>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.first_request_seen.store(true, Ordering::Relaxed);
        request.extensions_mut().insert(self.peer);
        if let Some(uri) = super::without_trailing_slash(request.uri()) {
            *request.uri_mut() = uri;
        }
        // A router clone is a reference count: its routes are shared.
        self.router.clone().call(request.map(Body::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_files_for_the_rest_of_the_server() {
        assert_eq!(max_connections_for(1024), 768);
        assert_eq!(max_connections_for(4096), 3072);
        assert_eq!(max_connections_for(20_000), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(max_connections_for(1), 1);
    }
}
