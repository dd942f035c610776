//! One signaling WebSocket: read the client's messages, act on them, write what the room
//! sends it.
//!
//! One task per socket runs a `select!` over three sources: the socket, the peer's outbox
//! (messages from the room) and the shutdown signal. A single task keeps an idle socket
//! cheap, and since the task owns the socket, nothing else ever writes to it.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use shared::protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use shared::room::{PeerId, RoomId};
use tokio::sync::{mpsc, watch};

use crate::State;
use crate::rooms::{OUTBOX_CAPACITY, UnknownPeer};

/// Where this socket stands in the room.
struct Membership {
    room: RoomId,
    me: PeerId,
}

/// Serves one socket until the client leaves, the socket fails or the relay shuts down.
pub async fn serve(mut socket: WebSocket, state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let (outbox, mut inbox) = mpsc::channel(OUTBOX_CAPACITY);
    let mut membership: Option<Membership> = None;
    loop {
        let step = tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(frame)) => on_frame(frame, &state, &outbox, &mut membership),
                Some(Err(error)) => Step::Close(close_for(error)),
                None => Step::Close(None),
            },
            Some(message) = inbox.recv() => Step::Reply(message),
            _ = shutdown.wait_for(|stop| *stop) => {
                Step::Close(Some((close_code::RESTART, "the relay is restarting; reconnect")))
            }
        };
        let sent = match step {
            Step::Continue => Ok(()),
            Step::Reply(message) => socket.send(Message::Text(message.encode().into())).await,
            Step::Close(frame) => {
                if let Some((code, reason)) = frame {
                    let close = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    // The peer may already be gone; the socket ends either way.
                    let _ = socket.send(Message::Close(Some(close))).await;
                }
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    if let Some(Membership { room, me }) = membership {
        state.rooms.leave(&room, me);
        tracing::debug!(%room, peer = %me, "socket closed");
    }
}

enum Step {
    Continue,
    Reply(ServerMessage),
    /// End the session, with a close frame to send first if any.
    Close(Option<(u16, &'static str)>),
}

/// An oversized frame is answered with close code 1009; other read errors mean the
/// connection is already broken.
fn close_for(error: axum::Error) -> Option<(u16, &'static str)> {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Some((close_code::SIZE, "frame too large")),
        _ => None,
    }
}

fn on_frame(
    frame: Message,
    state: &State,
    outbox: &mpsc::Sender<ServerMessage>,
    membership: &mut Option<Membership>,
) -> Step {
    let text = match frame {
        Message::Text(text) => text,
        Message::Binary(_) => {
            return refuse(
                ErrorCode::BadMessage,
                "binary frames are not signaling; send JSON text",
            );
        }
        Message::Close(_) => return Step::Close(None),
        // Pings are answered by the WebSocket layer itself.
        Message::Ping(_) | Message::Pong(_) => return Step::Continue,
    };
    let message = match ClientMessage::decode(text.as_str()) {
        Ok(message) => message,
        Err(error) => return refuse(ErrorCode::BadMessage, error.to_string()),
    };
    match (message, membership.as_ref()) {
        (ClientMessage::Join { .. }, Some(_)) => refuse(
            ErrorCode::AlreadyJoined,
            "leave this room before joining another",
        ),
        (ClientMessage::Join { version, .. }, None) if version != PROTOCOL_VERSION => refuse(
            ErrorCode::UnsupportedVersion,
            format!("this relay speaks protocol version {PROTOCOL_VERSION}, not {version}"),
        ),
        (ClientMessage::Join { room, .. }, None) => {
            let room = match RoomId::parse(&room) {
                Ok(room) => room,
                Err(error) => return refuse(ErrorCode::BadRoomId, error.to_string()),
            };
            match state.rooms.join(&room, outbox.clone()) {
                Ok((me, peers)) => {
                    tracing::debug!(%room, peer = %me, "joined");
                    *membership = Some(Membership { room, me });
                    let ice_servers = state.config.ice_servers();
                    Step::Reply(ServerMessage::Joined {
                        version: PROTOCOL_VERSION,
                        you: me,
                        peers,
                        ice_servers,
                    })
                }
                Err(full) => refuse(ErrorCode::RoomFull, full.to_string()),
            }
        }
        (ClientMessage::Signal { to, signal }, Some(Membership { room, me })) => {
            match state.rooms.forward(room, *me, to, signal) {
                Ok(()) => Step::Continue,
                Err(UnknownPeer) => refuse(
                    ErrorCode::UnknownPeer,
                    format!("peer {to} is not another member of your room"),
                ),
            }
        }
        (ClientMessage::Leave {}, Some(Membership { room, me })) => {
            state.rooms.leave(room, *me);
            *membership = None;
            Step::Continue
        }
        (ClientMessage::Signal { .. } | ClientMessage::Leave {}, None) => {
            refuse(ErrorCode::NotJoined, "join a room first")
        }
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Step {
    Step::Reply(ServerMessage::error(code, message))
}
