//! The WebSocket to the relay, speaking [`shared::protocol`].

use std::rc::Rc;

use gloo_events::EventListener;
use shared::protocol::{CLOSE_RESUMING, ClientMessage, ServerMessage};
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::error::CallError;

/// What the socket reports.
pub enum SocketEvent {
    /// Connected: time to join.
    Open,
    /// A message from the relay.
    Message(ServerMessage),
    /// The socket is gone (never opened, dropped, or closed by the relay).
    Closed,
}

/// An open (or opening) signaling socket. Dropping it closes the socket and removes its
/// listeners.
pub struct Socket {
    ws: WebSocket,
    _listeners: [EventListener; 3],
}

impl Socket {
    /// Connects to the relay that served this page; `on_event` hears everything after.
    pub fn open(on_event: impl Fn(SocketEvent) + 'static) -> Result<Self, CallError> {
        let ws = WebSocket::new(&relay_url()?).map_err(|_| CallError::RelayUnreachable)?;
        let on_event = Rc::new(on_event);
        let listen =
            |name: &'static str, handler: Rc<dyn Fn(SocketEvent)>, read: fn(&web_sys::Event) -> Option<SocketEvent>| {
                EventListener::new(&ws, name, move |event| {
                    if let Some(event) = read(event) {
                        handler(event);
                    }
                })
            };
        let listeners = [
            listen("open", on_event.clone(), |_| Some(SocketEvent::Open)),
            listen("message", on_event.clone(), read_message),
            listen("close", on_event, |event| {
                let code = event.dyn_ref::<CloseEvent>().map(CloseEvent::code);
                leptos::logging::log!("relay socket closed ({code:?})");
                Some(SocketEvent::Closed)
            }),
        ];
        Ok(Self { ws, _listeners: listeners })
    }

    /// Closes the socket telling the relay to keep our seat: we will resume.
    pub fn close_resuming(&self) {
        let _ = self.ws.close_with_code(CLOSE_RESUMING);
    }

    /// Sends a message; a socket that is not open drops it (the close event follows).
    pub fn send(&self, message: &ClientMessage) {
        if self.ws.send_with_str(&message.encode()).is_err() {
            leptos::logging::warn!("relay socket not open; message dropped");
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.ws.close();
    }
}

fn read_message(event: &web_sys::Event) -> Option<SocketEvent> {
    let text = event.dyn_ref::<MessageEvent>()?.data().as_string()?;
    match ServerMessage::decode(&text) {
        Ok(message) => Some(SocketEvent::Message(message)),
        Err(error) => {
            leptos::logging::warn!("ignored a frame from the relay: {error}");
            None
        }
    }
}

/// `ws(s)://<this page's host>/ws`: the relay serves the page and the socket on one origin
/// (and `trunk serve` proxies `/ws` to it during development).
fn relay_url() -> Result<String, CallError> {
    let location = web_sys::window().ok_or(CallError::RelayUnreachable)?.location();
    let secure = location.protocol().is_ok_and(|p| p == "https:");
    let host = location.host().map_err(|e| CallError::unexpected(&e))?;
    Ok(format!("{}://{host}/ws", if secure { "wss" } else { "ws" }))
}
