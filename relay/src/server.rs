//! The HTTP/1.1 server under the router, in place of `axum::serve`, which gives hyper no
//! timer: with one, every request head must arrive within `--header-timeout`, so a client
//! that trickles its headers (slowloris) is dropped instead of holding a connection for as
//! long as it likes. Each connection is served with upgrades (the WebSocket); shutdown is
//! graceful, as axum's is: no new connections, each open one finishes its request.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::tls::Remote;

/// Serves `app` on `listener` until `shutdown`, then lets the open connections finish (the
/// returned future ends when they have).
pub async fn serve<L>(mut listener: L, app: Router, header_timeout: Duration, shutdown: impl Future<Output = ()>)
where
    L: Listener<Addr = Remote>,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    // Every connection task holds a receiver: when none is left, all have finished.
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // What `into_make_service_with_connect_info` would do: the handlers learn who called.
        let service = TowerToHyperService::new(app.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            request
        }));
        let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => return log(served),
                _ = stop.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            log(connection.await);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(stop);
    stopping.closed().await;
}

fn log(served: hyper::Result<()>) {
    if let Err(error) = served {
        tracing::debug!(%error, "connection ended with an error");
    }
}
