//! The signaling relay: it puts people who open the same room link in touch, then gets out
//! of the way. Media never passes through it.
//!
//! - `GET /ws`: the signaling WebSocket ([`shared::protocol`]).
//! - `GET /healthz`: `ok` while the relay serves.
//! - everything else: the built frontend, with `index.html` for unknown paths so that a
//!   room link (`/r/<id>`) opens the app.
//!
//! [`run`] is the one entry point; `main.rs` only reads the configuration and calls it, and
//! the tests call it on `127.0.0.1:0`.

mod assets;
mod config;
mod rooms;
mod socket;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{State as Extract, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use shared::protocol::MAX_FRAME_BYTES;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

pub use config::Config;

/// Signaling frames are small: a read buffer of a few KiB instead of tungstenite's 128 KiB
/// keeps an idle socket cheap. Larger frames (up to [`MAX_FRAME_BYTES`]) still arrive.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// What can stop the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Accepting connections failed.
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// What every connection shares.
struct State {
    config: Config,
    rooms: rooms::Rooms,
    /// Becomes `true` once when the relay shuts down; every socket task watches it.
    shutdown: watch::Receiver<bool>,
}

/// Serves on `listener` until `shutdown` completes, then closes every WebSocket with code
/// 1012 ("service restart": clients should come back) and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let index = config.static_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(path = %index.display(), "no built frontend: build it with `trunk build --release`");
    }
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(State {
        rooms: rooms::Rooms::new(config.room_capacity),
        config,
        shutdown: stopped,
    });
    let assets = Router::new()
        .fallback_service(assets::service(&state.config.static_dir))
        .layer(axum::middleware::from_fn(assets::set_cache_control));
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .merge(assets)
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    tracing::info!(address = %listener.local_addr()?, "relay listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            // axum's graceful shutdown waits for open connections but does not end
            // WebSockets: tell their tasks to close them.
            let _ = stop.send(true);
        })
        .await?;
    Ok(())
}

async fn upgrade(upgrade: WebSocketUpgrade, Extract(state): Extract<Arc<State>>) -> Response {
    let shutdown = state.shutdown.clone();
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| socket::serve(socket, state, shutdown))
}
