//! One signaling WebSocket: read the client's messages, act on them, write what the room
//! sends its peer, and keep the connection honest.
//!
//! One task per socket runs a `select!` over four sources: the socket, the peer's inbox
//! (messages from the room), a liveness ticker and the shutdown signal. A single task keeps
//! an idle socket cheap, and since the task owns the socket, nothing else writes to it.
//!
//! How a session ends decides what the room hears:
//! - `leave`, or a close frame from the client: the peer leaves at once;
//! - the connection drops silently, or the client closes with [`CLOSE_RESUMING`]: the seat
//!   is parked for the resume grace period, then the peer leaves;
//! - silence past the idle timeout, a frame too large, a flood, a reader too slow: the
//!   relay evicts the socket and the peer leaves at once;
//! - another socket resumed the seat: this one closes, the room hears nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures_util::SinkExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use shared::protocol::{CLOSE_REPLACED, CLOSE_RESUMING, ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use shared::room::{PeerId, RoomId};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use crate::State;
use crate::attachment::OUTBOX_CAPACITY;
use crate::cluster::Unavailable;
use crate::limits::Admitted;
use crate::metrics;
use crate::rooms::{JoinError, Seat, UnknownPeer};

/// Messages from the room written together before one flush.
const WRITE_BATCH: usize = 32;
/// A write that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages over the rate limit in a row before the socket is closed. The first few are
/// answered with `rate_limited` so a buggy client learns why; the rest are dropped quietly.
const STRIKES_TO_CLOSE: u32 = 50;
const STRIKES_ANSWERED: u32 = 3;

/// Serves one socket until the session ends, then tells the room what happened.
pub async fn serve(mut socket: WebSocket, state: Arc<State>, ip: IpAddr, admitted: Option<Admitted>) {
    if admitted.is_none() {
        let refusal = ServerMessage::error(ErrorCode::TooManyConnections, "too many open sockets from your address");
        metrics::error(ErrorCode::TooManyConnections);
        metrics::eviction("too_many_connections");
        let _ = timeout(SEND_TIMEOUT, socket.send(Message::Text(refusal.encode().into()))).await;
        let _ = timeout(SEND_TIMEOUT, socket.send(close(close_code::POLICY, "too many connections"))).await;
        return;
    }
    let config = &state.config;
    let mut session = Session {
        state: &state,
        ip,
        seat: None,
        inbox: None,
        limiter: RateLimiter::direct(quota(config.messages_per_second, config.message_burst)),
        strikes: 0,
    };
    let mut shutdown = state.shutdown.clone();
    // Made once: a fresh wait each turn of the loop would join and leave the channel's
    // waiter list every message.
    // The watch's guard is dropped inside: the select's result must not hold it while a
    // message is handled (it is not `Send`, and handling a join may wait for Redis).
    let stopping = async {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    let mut ticker = tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let mut last_seen = Instant::now();
    let end = loop {
        let step = tokio::select! {
            frame = socket.recv() => {
                last_seen = Instant::now();
                match frame {
                    Some(Ok(frame)) => session.on_frame(frame).await,
                    Some(Err(error)) => read_failed(error),
                    None => Step::End(None, End::Lost),
                }
            }
            message = next(&mut session.inbox) => match message {
                Some(message) => Step::Forward(message),
                None => Step::End(Some((CLOSE_REPLACED, "resumed elsewhere")), End::Replaced),
            },
            _ = ticker.tick() => {
                if last_seen.elapsed() >= config.idle_timeout {
                    Step::End(Some((close_code::AWAY, "no answer to pings")), End::Evicted("idle"))
                } else {
                    Step::Ping
                }
            }
            _ = &mut stopping => {
                Step::End(Some((close_code::RESTART, "the relay is restarting; reconnect")), End::Lost)
            }
        };
        let frame = match step {
            Step::Continue => continue,
            Step::Send(message) => {
                metrics::message_out();
                if let ServerMessage::Error { code, .. } = &message {
                    metrics::error(*code);
                }
                Message::Text(message.encode().into())
            }
            Step::Forward(message) => {
                metrics::message_out();
                Message::Text(message.into())
            }
            Step::Ping => Message::Ping(Default::default()),
            Step::End(frame, end) => {
                if let Some((code, reason)) = frame {
                    // The peer may be gone already; the session ends either way.
                    let _ = timeout(SEND_TIMEOUT, socket.send(close(code, reason))).await;
                }
                break end;
            }
        };
        let inbox = &mut session.inbox;
        let written = timeout(SEND_TIMEOUT, async {
            socket.feed(frame).await?;
            // Under load more messages are already waiting: write them too, then flush
            // once, one system call for the lot.
            for _ in 0..WRITE_BATCH {
                let Some(message) = inbox.as_mut().and_then(|inbox| inbox.try_recv().ok()) else { break };
                metrics::message_out();
                socket.feed(Message::Text(message.into())).await?;
            }
            socket.flush().await
        });
        match written.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break End::Lost,
            Err(_) => break End::Evicted("slow_reader"),
        }
    };
    session.finish(end).await;
}

/// What to do after one event.
enum Step {
    Continue,
    /// An answer of the relay's own.
    Send(ServerMessage),
    /// A message from the room, already encoded.
    Forward(String),
    Ping,
    /// End the session, with a close frame to send first if any.
    End(Option<(u16, &'static str)>, End),
}

/// How the session ended, which decides what the room hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed on purpose: leave now.
    Closed,
    /// The connection dropped: keep the seat for the grace period.
    Lost,
    /// The relay cut the socket off: leave now.
    Evicted(&'static str),
    /// Another socket holds the seat now: say nothing.
    Replaced,
}

struct Session<'a> {
    state: &'a Arc<State>,
    ip: IpAddr,
    seat: Option<(RoomId, Seat)>,
    /// What the room sends this peer; `None` outside a room.
    inbox: Option<mpsc::Receiver<String>>,
    limiter: DefaultDirectRateLimiter,
    /// Messages over the rate limit in a row.
    strikes: u32,
}

impl Session<'_> {
    async fn on_frame(&mut self, frame: Message) -> Step {
        let text = match frame {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
            Message::Close(frame) => {
                let resuming = frame.is_some_and(|f| f.code == CLOSE_RESUMING);
                return Step::End(None, if resuming { End::Lost } else { End::Closed });
            }
            // Pings are answered by the WebSocket layer; pongs only prove liveness.
            Message::Ping(_) | Message::Pong(_) => return Step::Continue,
        };
        metrics::message_in();
        if self.limiter.check().is_err() {
            self.strikes += 1;
            return match self.strikes {
                STRIKES_TO_CLOSE.. => Step::End(Some((close_code::POLICY, "too many messages")), End::Evicted("flood")),
                ..=STRIKES_ANSWERED => refuse(ErrorCode::RateLimited, "slow down: message dropped"),
                _ => Step::Continue,
            };
        }
        self.strikes = 0;
        let Some(text) = text else {
            return refuse(ErrorCode::BadMessage, "binary frames are not signaling; send JSON text");
        };
        match ClientMessage::decode(text.as_str()) {
            Ok(message) => self.on_message(message).await,
            Err(error) => refuse(ErrorCode::BadMessage, error.to_string()),
        }
    }

    async fn on_message(&mut self, message: ClientMessage) -> Step {
        let rooms = &self.state.rooms;
        match (message, &self.seat) {
            (ClientMessage::Ping {}, _) => Step::Send(ServerMessage::Pong {}),
            (ClientMessage::Join { .. }, Some(_)) => refuse(ErrorCode::AlreadyJoined, "leave this room first"),
            (ClientMessage::Join { version, room, resume }, None) => self.join(version, &room, resume.as_deref()).await,
            (ClientMessage::Signal { to, signal }, Some((room, seat))) => {
                let from = seat.id;
                forwarded(to, rooms.forward(room, from, to, &ServerMessage::Signal { from, signal }))
            }
            (ClientMessage::Signals { to, seq, ack, signals }, Some((room, seat))) => {
                let from = seat.id;
                forwarded(to, rooms.forward(room, from, to, &ServerMessage::Signals { from, seq, ack, signals }))
            }
            (ClientMessage::Leave {}, Some(_)) => {
                self.finish(End::Closed).await;
                Step::Continue
            }
            (ClientMessage::Signal { .. } | ClientMessage::Signals { .. } | ClientMessage::Leave {}, None) => {
                refuse(ErrorCode::NotJoined, "join a room first")
            }
        }
    }

    async fn join(&mut self, version: u32, room: &str, resume: Option<&str>) -> Step {
        if version != PROTOCOL_VERSION {
            let message = format!("this relay speaks protocol version {PROTOCOL_VERSION}, not {version}");
            return refuse(ErrorCode::UnsupportedVersion, message);
        }
        let room = match RoomId::parse(room) {
            Ok(room) => room,
            Err(error) => return refuse(ErrorCode::BadRoomId, error.to_string()),
        };
        let rooms = &self.state.rooms;
        let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
        let resumed = match resume {
            Some(token) => match rooms.resume(&room, token, self.ip, outbox.clone()).await {
                Ok(resumed) => resumed,
                Err(Unavailable) => return unavailable(),
            },
            None => None,
        };
        let was_resumed = resumed.is_some();
        let seat = match resumed {
            Some(seat) => {
                metrics::resumed();
                seat
            }
            None => match rooms.join(&room, self.ip, outbox).await {
                Ok(seat) => seat,
                Err(JoinError::Full(full)) => return refuse(ErrorCode::RoomFull, full.to_string()),
                Err(JoinError::TooManyRooms) => {
                    return refuse(ErrorCode::TooManyRooms, "too many open rooms from your address");
                }
                Err(JoinError::Unavailable) => return unavailable(),
            },
        };
        tracing::debug!(%room, peer = %seat.id, "joined");
        let joined = ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            you: seat.id,
            peers: seat.peers.clone(),
            ice_servers: self.state.ice_servers(seat.id, self.state.config.turn_ttl),
            ice_transport_policy: self.state.config.ice_transport_policy,
            resume: seat.token.clone(),
            resumed: was_resumed,
        };
        self.seat = Some((room, seat));
        self.inbox = Some(inbox);
        Step::Send(joined)
    }

    /// Tells the room how this peer's session ended.
    async fn finish(&mut self, end: End) {
        self.inbox = None;
        let Some((room, seat)) = self.seat.take() else { return };
        let rooms = &self.state.rooms;
        match end {
            End::Closed => rooms.leave(&room, seat.id, seat.generation).await,
            End::Evicted(reason) => {
                metrics::eviction(reason);
                tracing::debug!(%room, peer = %seat.id, reason, "evicted");
                rooms.leave(&room, seat.id, seat.generation).await;
            }
            End::Lost => {
                if rooms.park(&room, seat.id, seat.generation).await {
                    let state = self.state.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(state.config.resume_grace).await;
                        state.rooms.expire(&room, seat.id, seat.generation).await;
                    });
                }
            }
            End::Replaced => {}
        }
    }
}

/// The next message for this peer; never resolves outside a room.
async fn next(inbox: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// A frame the relay will not read ends the session with the close code that says why;
/// any other read error means the connection is already broken.
fn read_failed(error: axum::Error) -> Step {
    let inner = error.into_inner();
    let (code, reason, eviction) = match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => (close_code::SIZE, "message too large", "too_large"),
        Some(tungstenite::Error::Utf8(_)) => (close_code::INVALID, "text frames must be UTF-8", "protocol"),
        // A connection that drops without a closing handshake is lost, not misbehaving.
        Some(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) | None => {
            return Step::End(None, End::Lost);
        }
        Some(tungstenite::Error::Protocol(_)) => (close_code::PROTOCOL, "WebSocket protocol violation", "protocol"),
        _ => return Step::End(None, End::Lost),
    };
    Step::End(Some((code, reason)), End::Evicted(eviction))
}

fn forwarded(to: PeerId, result: Result<(), UnknownPeer>) -> Step {
    match result {
        Ok(()) => Step::Continue,
        Err(UnknownPeer) => Step::Send(ServerMessage::unknown_peer(to)),
    }
}

/// A join or resume that needs Redis while it cannot be reached: the page tries again.
fn unavailable() -> Step {
    refuse(ErrorCode::Unavailable, "the service is busy; try again in a moment")
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Step {
    Step::Send(ServerMessage::error(code, message))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let per_second = std::num::NonZeroU32::new(per_second).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}
