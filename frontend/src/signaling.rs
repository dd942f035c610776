//! The WebSocket to the relay, speaking [`shared::protocol`].
//!
//! gloo-net's `WebSocket` is a `Stream` of frames and a `Sink`, but closing it with a code
//! (which tells the relay to keep our seat) takes the whole socket by value, so it is never
//! split: one task owns it, and the [`Socket`] handle reaches it through a channel of
//! [`Order`]s. The task reports [`SocketEvent`]s in the order they happen, and
//! [`SocketEvent::Closed`] once, unless the handle closed or dropped the socket itself.

use std::future::poll_fn;
use std::task::Poll;

use futures_channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State, WebSocketError};
use leptos::task::spawn_local;
use shared::protocol::{ClientMessage, ErrorCode, ServerMessage};

/// The close code of a socket closed on purpose, seat and all (RFC 6455 "normal closure").
pub const CLOSE_NORMAL: u16 = 1000;

/// What the socket reports.
pub enum SocketEvent {
    /// Connected: time to join.
    Opened,
    /// A message from the relay.
    Received(ServerMessage),
    /// The socket is gone (never opened, dropped, or closed by the relay).
    Closed,
}

/// What the handle asks of the task that owns the socket.
enum Order {
    /// Send this text frame.
    Send(String),
    /// Close with this code.
    Close(u16),
}

/// An open (or opening) signaling socket. Dropping it closes the socket (normally) and
/// silences it.
pub struct Socket {
    orders: UnboundedSender<Order>,
}

impl Socket {
    /// Connects to the relay that served this page; `report` hears everything after, from a
    /// task of its own. Fails only when the browser refuses to even try (a bad URL).
    pub fn open(report: impl Fn(SocketEvent) + 'static) -> Result<Self, String> {
        let ws = WebSocket::open(&relay_url()?).map_err(|error| error.to_string())?;
        let (orders, received) = mpsc::unbounded();
        spawn_local(drive(ws, received, report));
        Ok(Self { orders })
    }

    /// Sends a message; a socket that is not open drops it (its close is reported).
    pub fn send(&self, message: &ClientMessage) {
        let _ = self.orders.unbounded_send(Order::Send(message.encode()));
    }

    /// Closes the socket with `code` ([`CLOSE_NORMAL`], or
    /// [`shared::protocol::CLOSE_RESUMING`] to keep our seat). Nothing more is reported.
    pub fn close(self, code: u16) {
        let _ = self.orders.unbounded_send(Order::Close(code));
    }
}

/// What woke the task.
enum Wake {
    /// An order from the handle; `None`: the handle is gone.
    Order(Option<Order>),
    /// The socket left the connecting state (opened, or failed to).
    Settled,
    /// A frame or an error from the socket; `None`: it closed.
    Frame(Option<Result<Message, WebSocketError>>),
}

/// Owns `ws` for its life: carries out the orders, reports what the socket does.
async fn drive(mut ws: WebSocket, mut orders: UnboundedReceiver<Order>, report: impl Fn(SocketEvent)) {
    let mut connecting = true;
    loop {
        // Orders first: once the handle closed or dropped the socket, nothing more is
        // reported, even what had already arrived.
        let wake = poll_fn(|cx| {
            if let Poll::Ready(order) = orders.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Order(order));
            }
            // The sink is ready once the socket is no longer connecting.
            if connecting && ws.poll_ready_unpin(cx).is_ready() {
                return Poll::Ready(Wake::Settled);
            }
            ws.poll_next_unpin(cx).map(Wake::Frame)
        })
        .await;
        match wake {
            Wake::Order(Some(Order::Send(text))) => {
                if let Err(error) = ws.start_send_unpin(Message::Text(text)) {
                    leptos::logging::warn!("relay socket not open; message dropped ({error})");
                }
            }
            Wake::Order(Some(Order::Close(code))) => {
                let _ = ws.close(Some(code), None);
                return;
            }
            // Dropping `ws` closes it.
            Wake::Order(None) => return,
            Wake::Settled => {
                connecting = false;
                // A socket that failed to open is ready too: its close follows on the stream.
                if matches!(ws.state(), State::Open) {
                    report(SocketEvent::Opened);
                }
            }
            Wake::Frame(Some(Ok(Message::Text(text)))) => match ServerMessage::decode(&text) {
                Ok(message) => {
                    // A newer relay's additions are ignored, and said so for whoever debugs.
                    if matches!(message, ServerMessage::Unknown | ServerMessage::Error { code: ErrorCode::Unknown, .. })
                    {
                        leptos::logging::log!("ignored what this page does not know yet: {text}");
                    }
                    report(SocketEvent::Received(message))
                }
                Err(error) => leptos::logging::warn!("ignored a frame from the relay: {error}"),
            },
            Wake::Frame(Some(Ok(Message::Bytes(_)))) => leptos::logging::warn!("ignored a binary frame from the relay"),
            Wake::Frame(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                leptos::logging::log!("relay socket closed ({})", event.code);
            }
            Wake::Frame(Some(Err(error))) => leptos::logging::log!("relay socket: {error}"),
            Wake::Frame(None) => return report(SocketEvent::Closed),
        }
    }
}

/// `ws(s)://<this page's host>/ws`: the relay serves the page and the socket on one origin
/// (and `trunk serve` proxies `/ws` to it during development).
fn relay_url() -> Result<String, String> {
    let location = web_sys::window().ok_or("no window")?.location();
    let secure = location.protocol().is_ok_and(|p| p == "https:");
    let host = location.host().map_err(|error| format!("{error:?}"))?;
    Ok(format!("{}://{host}/ws", if secure { "wss" } else { "ws" }))
}
