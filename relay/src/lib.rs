//! The signaling relay: it puts people who open the same room link in touch, then gets out
//! of the way. Media never passes through it.
//!
//! - `GET /ws`: the signaling WebSocket ([`shared::protocol`]).
//! - `GET /healthz`: `ok` while the relay serves; `degraded` while the Redis it shares
//!   rooms through does not answer.
//! - `GET /metrics`: counts in Prometheus format (never ids).
//! - `GET /qr/<room>.svg`: the room's link as a QR code.
//! - `GET /ice`: the ICE servers, for the page's network check before joining.
//! - everything else: the built frontend, with `index.html` for unknown paths so that a
//!   room link (`/r/<id>`) opens the app.
//!
//! [`run`] is the one entry point; `main.rs` only reads the configuration and calls it, and
//! the tests call it on `127.0.0.1:0`.

mod assets;
mod attachment;
mod backend;
mod cluster;
mod config;
mod ice;
mod limits;
mod metrics;
mod origin;
mod qr;
mod rooms;
mod server;
mod socket;
mod tls;
mod turn;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{ConnectInfo, State as Extract, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared::protocol::IceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

pub use config::{Config, LogFormat};
pub use tls::{lan_address, lan_banner};

/// Signaling frames are small (a candidate is ~200 B): a read buffer of 1 KiB instead of
/// tungstenite's 128 KiB keeps an idle socket cheap. The buffer grows for a larger message
/// (an SDP offer is a few KiB), up to the configured limit.
const READ_BUFFER_BYTES: usize = 1024;

/// How long open sockets get to close after shutdown starts before the relay returns.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What can stop the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Accepting connections failed.
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The Redis URL cannot be used.
    #[error("{0}")]
    Redis(String),
}

/// What every connection shares.
struct State {
    config: Config,
    rooms: backend::Backend,
    connections: Arc<limits::Connections>,
    turn: Option<turn::Turn>,
    /// Becomes `true` once when the relay shuts down; every socket task watches it.
    shutdown: watch::Receiver<bool>,
}

impl State {
    /// The ICE servers for `user`: the configured ones, plus TURN with fresh credentials
    /// valid for `ttl`.
    fn ice_servers(&self, user: impl Display, ttl: Duration) -> Vec<IceServer> {
        let fixed = self.config.ice_servers.iter().map(|url| IceServer {
            urls: vec![url.clone()],
            username: None,
            credential: None,
        });
        let turn = self.turn.iter().map(|turn| turn.ice_server(&user, SystemTime::now(), ttl));
        fixed.chain(turn).collect()
    }
}

/// Serves on `listener` until `shutdown` completes, then closes every WebSocket with code
/// 1012 ("service restart": clients should come back) and returns within a few seconds.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let index = config.static_dir.join("index.html");
    // Read once: the Content-Security-Policy allows its inline script by hash.
    let page = std::fs::read_to_string(&index).unwrap_or_else(|_| {
        tracing::warn!(path = %index.display(), "no built frontend: build it with `trunk build --release`");
        String::new()
    });
    let turn = match (&config.turn_secret, config.turn_urls.is_empty()) {
        (Some(secret), false) => Some(turn::Turn { urls: config.turn_urls.clone(), secret: secret.clone() }),
        (None, false) => {
            tracing::warn!("--turn-url without --turn-secret: TURN servers are not handed out");
            None
        }
        _ => None,
    };
    let https = tls::Https::from_config(&config)?;
    // Ends with this function, as the listener does.
    let _renewals = https.watch_renewals(&config);
    let metrics = metrics::handle();
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(State {
        rooms: backend::Backend::new(&config).map_err(|error| Error::Redis(error.to_string()))?,
        connections: limits::Connections::new(config.per_client(config.sockets_per_ip), metrics::socket),
        turn,
        config,
        shutdown: stopped.clone(),
    });
    let assets = Router::new().fallback_service(assets::service(&state.config.static_dir)).layer(
        axum::middleware::from_fn_with_state(
            Arc::new(assets::Headers::for_page(&page, https.strict(), state.config.trust_proxy)),
            assets::set_headers,
        ),
    );
    let header_timeout = state.config.header_timeout;
    // Behind a proxy every connection comes from the proxy: it bounds its clients itself.
    let per_ip = (!state.config.trust_proxy).then(|| {
        limits::Connections::new(state.config.per_client(state.config.connections_per_ip), metrics::connection)
    });
    let (tls, trust_proxy) = (!matches!(https, tls::Https::Off), state.config.trust_proxy);
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/qr/{file}", get(move |file, request| qr::room_code(file, tls, trust_proxy, request)))
        .route("/ice", get(ice::check))
        .route("/healthz", get(|Extract(state): Extract<Arc<State>>| async move { state.rooms.health() }))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
        .merge(assets)
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    let address = listener.local_addr()?;
    let on_shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        // axum's graceful shutdown waits for open connections but does not end
        // WebSockets: tell their tasks to close them.
        let _ = stop.send(true);
    };
    let deadline = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let listener = tls::Plain::new(listener, per_ip);
    let served = async move {
        match https {
            tls::Https::Off => {
                tracing::info!(%address, "relay listening (HTTP)");
                server::serve(listener, app, header_timeout, on_shutdown).await;
            }
            tls::Https::Certified(acceptor) | tls::Https::SelfSigned(acceptor) => {
                tracing::info!(%address, "relay listening (HTTPS)");
                let secure = tls::Secure::new(listener, acceptor, address);
                server::serve(secure, app, header_timeout, on_shutdown).await;
            }
        }
    };
    tokio::select! {
        () = served => {}
        () = deadline => tracing::warn!("connections still open after shutdown grace; leaving anyway"),
    }
    Ok(())
}

async fn upgrade(
    upgrade: WebSocketUpgrade,
    ConnectInfo(remote): ConnectInfo<tls::Remote>,
    headers: HeaderMap,
    Extract(state): Extract<Arc<State>>,
) -> Response {
    if !origin::allowed(&state.config.allowed_origins, &headers, state.config.trust_proxy) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let ip = limits::subscriber(tls::client_ip(remote, &headers, state.config.trust_proxy));
    let admitted = state.connections.admit(ip);
    let max = state.config.max_message_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| socket::serve(socket, state, ip, admitted))
}
