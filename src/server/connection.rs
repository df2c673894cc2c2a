//! One client connection, from accept to close: the TLS handshake (bounded by
//! `LATCHKEY_TLS_HANDSHAKE_TIMEOUT_MS`), then HTTP/1.1 or HTTP/2 through hyper, watched by a
//! `Watchdog` that closes the connection when a request head is slow to arrive
//! (`LATCHKEY_HEADER_READ_TIMEOUT_MS`) or when no request has been in progress for
//! `LATCHKEY_IDLE_TIMEOUT_MS`. A request in progress is never cut by either: handlers are
//! bounded by the router's own request timeout, not by the connection.
//!
//! Why not hyper's `header_read_timeout`: its timer starts as soon as a connection waits
//! for a request, so it also closes idle keep-alive connections after the head timeout,
//! and it covers neither HTTP/2 nor the bytes hyper-util reads to tell HTTP/1.1 from
//! HTTP/2 (a client that sends nothing is never timed out by it).
//!
//! The bookkeeping per request is two atomic counter updates (and an `Arc` clone), two
//! stores and one clock read; the watchdog is one timer per connection that requests never
//! wake, woken about once per the shorter of the two timeouts.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower::util::Oneshot;

use super::limits::Admission;
use crate::config::ConnectionSettings;

/// What every connection task shares.
pub(crate) struct Shared {
    pub router: Router,
    pub tls: Option<TlsAcceptor>,
    pub settings: ConnectionSettings,
    pub http: auto::Builder<TokioExecutor>,
}

/// Serves one accepted connection until it closes, is timed out, or (after `shutdown`
/// turns true) has finished its requests in progress. `admission` is its place under the
/// connection caps, given back when this returns.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    admission: Admission,
) {
    let _admission = admission;
    let Some(acceptor) = &shared.tls else {
        return serve(stream, peer, &shared, shutdown).await;
    };
    let handshake = tokio::time::timeout(
        shared.settings.tls_handshake_timeout,
        acceptor.accept(stream),
    );
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                crate::telemetry::connection_timed_out("tls_handshake");
                tracing::debug!(%peer, "TLS handshake not finished in time; closing");
                return;
            }
        },
        // A handshake in progress has no request to finish: it need not hold up shutdown.
        () = stopping(&mut shutdown) => return,
    };
    serve(stream, peer, &shared, shutdown).await
}

async fn serve<I>(io: I, peer: SocketAddr, shared: &Shared, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = ConnectionService {
        router: shared.router.clone(),
        peer: ConnectInfo(peer),
        activity: activity.clone(),
    };
    let io = TokioIo::new(Tracked {
        inner: io,
        activity: activity.clone(),
    });
    let mut connection = pin!(shared.http.serve_connection(io, service));
    let mut watchdog = Watchdog::new(activity, &shared.settings);
    let mut draining = false;
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            expired = watchdog.expired() => match expired {
                // Nothing is in progress, so dropping the connection loses no answer.
                Expired::RequestHead => {
                    crate::telemetry::connection_timed_out("request_head");
                    tracing::debug!(%peer, "request head not received in time; closing");
                    return;
                }
                Expired::Idle if !closing => {
                    crate::telemetry::connection_timed_out("idle");
                    // Closes an idle HTTP/1.1 connection at once and sends HTTP/2 clients a
                    // GOAWAY, so that they do not start a request on a connection being
                    // closed. If that does not finish in time, the connection is dropped.
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                    watchdog.linger();
                }
                Expired::Idle => return,
            },
            () = stopping(&mut shutdown), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the server is shutting down (or gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The borrowed value is dropped at once: holding it would block the sender.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What a connection is doing, shared by its IO, its service and its watchdog: the phase in
/// the low two bits of `state`, and the milliseconds since `started` when it began above
/// them.
struct Activity {
    started: Instant,
    state: AtomicU64,
    /// Requests whose answer is not yet produced (several at once over HTTP/2).
    in_flight: AtomicUsize,
    /// HTTP/2: bytes while idle are pings and window updates, not the start of a request.
    multiplexed: AtomicBool,
}

/// Waiting for a request head: a fresh connection, or bytes arrived after idling.
const HEAD: u64 = 0;
/// No request in progress, and (over HTTP/1.1) no byte of the next one yet.
const IDLE: u64 = 1;
/// At least one request in progress.
const BUSY: u64 = 2;

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            state: AtomicU64::new(HEAD),
            in_flight: AtomicUsize::new(0),
            multiplexed: AtomicBool::new(false),
        }
    }

    fn now(&self, phase: u64) -> u64 {
        let millis = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX >> 2);
        (millis << 2) | phase
    }

    /// When the phase `state` describes began.
    fn began(&self, state: u64) -> Instant {
        let since = Duration::from_millis(state >> 2);
        self.started.checked_add(since).unwrap_or(self.started)
    }

    /// Bytes were read: over HTTP/1.1, after idling, they start the next request's head.
    fn bytes_arrived(&self) {
        let state = self.state.load(Ordering::Acquire);
        if state & 3 == IDLE && !self.multiplexed.load(Ordering::Relaxed) {
            // Losing this race means a request started or ended meanwhile: nothing to do.
            let _ = self.state.compare_exchange(
                state,
                self.now(HEAD),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.state.store(BUSY, Ordering::Release);
        RequestGuard(self.clone())
    }
}

/// One request in progress; when its answer is produced (or its future dropped), the
/// connection turns idle if it was the last.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.state.store(activity.now(IDLE), Ordering::Release);
        }
    }
}

/// Why the watchdog wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    RequestHead,
    Idle,
}

/// Closes connections that wait too long for a request head or idle too long. It sleeps
/// until the deadline of the phase it last saw and then looks again, so requests never
/// wake it. A phase change can bring the deadline forward (a head that starts 5 s into an
/// idle period is due 15 s in, not 60 s); since each phase records when it began, waking
/// at least once per the shorter of the two timeouts is enough to catch that in time.
struct Watchdog {
    activity: Arc<Activity>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    /// The longest it sleeps without looking.
    period: Duration,
    /// The state the deadline was computed from.
    seen: u64,
    deadline: Instant,
    wake: Instant,
}

impl Watchdog {
    fn new(activity: Arc<Activity>, settings: &ConnectionSettings) -> Self {
        let deadline = activity.started + settings.header_read_timeout;
        let period = settings.header_read_timeout.min(settings.idle_timeout);
        let wake = deadline.min(activity.started + period);
        Watchdog {
            seen: activity.state.load(Ordering::Acquire),
            activity,
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
            period,
            deadline,
            wake,
        }
    }

    /// Resolves when the connection should be closed. Cancel-safe: everything it knows is
    /// in `self`, updated only between sleeps.
    async fn expired(&mut self) -> Expired {
        loop {
            tokio::time::sleep_until(self.wake).await;
            let now = Instant::now();
            let state = self.activity.state.load(Ordering::Acquire);
            let busy = state & 3 == BUSY || self.activity.in_flight.load(Ordering::Acquire) > 0;
            if busy {
                self.seen = BUSY;
                self.deadline = now + self.period;
            } else if state != self.seen {
                self.seen = state;
                let limit = match state & 3 {
                    HEAD => self.header_read_timeout,
                    _ => self.idle_timeout,
                };
                self.deadline = self.activity.began(state) + limit;
            } else if now >= self.deadline {
                return match state & 3 {
                    HEAD => Expired::RequestHead,
                    _ => Expired::Idle,
                };
            }
            self.wake = self.deadline.min(now + self.period);
        }
    }

    /// Gives a connection being closed gracefully one more head timeout before it is
    /// dropped.
    fn linger(&mut self) {
        self.deadline = Instant::now() + self.header_read_timeout;
        self.wake = self.deadline;
    }
}

/// The connection's IO, noting when bytes arrive.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as hyper calls it on one connection: it gives handlers the peer address
/// (`ConnectInfo`, read by `http::client_ip`) and tells the connection's `Activity` when
/// requests start and end.
struct ConnectionService {
    router: Router,
    peer: ConnectInfo<SocketAddr>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = InFlight<Oneshot<Router, hyper::Request<Incoming>>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        if request.version() == hyper::Version::HTTP_2
            && !self.activity.multiplexed.load(Ordering::Relaxed)
        {
            self.activity.multiplexed.store(true, Ordering::Relaxed);
        }
        request.extensions_mut().insert(self.peer);
        let guard = self.activity.request_started();
        InFlight {
            inner: self.router.clone().oneshot(request),
            _guard: guard,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's future, holding its `RequestGuard` until it completes or is dropped.
    struct InFlight<F> {
        #[pin]
        inner: F,
        _guard: RequestGuard,
    }
}

impl<F: Future> Future for InFlight<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}
