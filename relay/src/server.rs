//! The HTTP server under the router, in place of `axum::serve`, which gives hyper no timer:
//! with one, every request head must arrive within `--header-timeout`, so a client that
//! trickles its headers (slowloris) is dropped instead of holding a connection for as long
//! as it likes. Shutdown is graceful, as axum's is: no new connections, each open one
//! finishes the requests it has begun.
//!
//! A TLS connection whose handshake chose HTTP/2 (ALPN `h2`) is served as HTTP/2, so a
//! phone loads the page's assets over one connection, after one handshake. Every other
//! connection is HTTP/1.1 with upgrades: plain TCP (browsers never speak HTTP/2 without
//! TLS) and TLS that chose `http/1.1`. WebSockets stay there: HTTP/2's extended CONNECT
//! (RFC 8441) is not offered, so a browser opens its `wss:` socket on an HTTP/1.1
//! connection of its own, counted, timed and upgraded as before.
//!
//! The protocol is the one the handshake settled, not a guess from the first bytes as
//! hyper-util's `auto` builder makes: that would speak HTTP/2 on plain TCP too (h2c), which
//! no browser uses, and its read of those bytes has no timeout, so a client that says
//! nothing would wait there before any header timeout starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::tls::{Negotiated, Remote};

/// Requests one HTTP/2 connection may have in flight at once (hyper's default is 200): a
/// page has a handful of assets.
const MAX_STREAMS: u32 = 100;

/// The largest request head an HTTP/2 client may send, decoded (hyper's default, made ours:
/// a browser's is under 2 KiB).
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Serves `app` on `listener` until `shutdown`, then lets the open connections finish (the
/// returned future ends when they have). `header_timeout` also bounds an HTTP/2 client's
/// silence, as HTTP/1.1's header timeout does: one that starts no request for that long is
/// sent away (`GOAWAY`; dropped if it never started one), and one that does not answer a
/// ping within it is cut off.
pub async fn serve<L>(mut listener: L, app: Router, header_timeout: Duration, shutdown: impl Future<Output = ()>)
where
    L: Listener<Addr = Remote>,
    L::Io: Negotiated,
{
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    // Every connection task holds a receiver: when none is left, all have finished.
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let requests = Arc::new(Requests::default());
        let started = requests.clone();
        // What `into_make_service_with_connect_info` would do: the handlers learn who called.
        let service = TowerToHyperService::new(app.clone().map_request(move |request: hyper::Request<Incoming>| {
            started.start();
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            request
        }));
        let stop = stop.clone();
        if io.http2() {
            let connection = h2.serve_connection(TokioIo::new(io), service);
            tokio::spawn(drive(connection, |c| c.graceful_shutdown(), stop, requests, Some(header_timeout)));
        } else {
            // Its own header timeout also ends a keep-alive connection that asks nothing more.
            let connection = h1.serve_connection(TokioIo::new(io), service).with_upgrades();
            tokio::spawn(drive(connection, |c| c.graceful_shutdown(), stop, requests, None));
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(stop);
    stopping.closed().await;
}

/// The requests on one connection, as they start.
#[derive(Default)]
struct Requests {
    started: Notify,
    any: AtomicBool,
}

impl Requests {
    fn start(&self) {
        self.any.store(true, Ordering::Relaxed);
        self.started.notify_one();
    }
}

/// Drives `connection` to its end. At shutdown, or when `idle` is given (HTTP/2) and passes
/// without a new request, it is stopped gracefully: the requests it has begun are
/// finished, and nothing new is taken. An HTTP/2 connection that never started a request
/// has nothing to finish and is dropped: hyper's graceful shutdown would wait for its
/// client's preface, for ever if it never comes.
async fn drive<C>(
    connection: C,
    graceful_shutdown: impl FnOnce(Pin<&mut C>),
    mut stop: watch::Receiver<bool>,
    requests: Arc<Requests>,
    idle: Option<Duration>,
) where
    C: Future<Output = hyper::Result<()>>,
{
    let mut connection = std::pin::pin!(connection);
    let quiet = async {
        let Some(after) = idle else { return std::future::pending().await };
        while tokio::time::timeout(after, requests.started.notified()).await.is_ok() {}
    };
    tokio::select! {
        served = connection.as_mut() => return log(served),
        _ = stop.wait_for(|stop| *stop) => {}
        () = quiet => tracing::debug!("no request for a while: connection closed"),
    }
    if idle.is_some() && !requests.any.load(Ordering::Relaxed) {
        return;
    }
    graceful_shutdown(connection.as_mut());
    log(connection.await);
}

fn log(served: hyper::Result<()>) {
    if let Err(error) = served {
        tracing::debug!(%error, "connection ended with an error");
    }
}
