//! The call engine, without I/O: every decision of a call in the browser, and none of the
//! browser.
//!
//! In the manner of str0m: the engine owns no socket, peer connection, device, clock or
//! random source. The page feeds it [`Input`]s (what the person did, what the relay said,
//! what the socket, the devices and each `RTCPeerConnection` reported) with the time, and
//! carries out the [`Command`]s it hands back (send this, open that, set this description);
//! [`Engine::view`] is what the person sees. [`Engine::deadline`] says when to call again
//! with [`Input::Tick`] if nothing else happens. A test can therefore run thousands of
//! calls under lost, late and duplicated messages in a second, and replay any of them from
//! its seed (`shared/tests/simulator.rs`).
//!
//! The parts, each named for what it holds:
//! - the session with the relay (here): the socket, joining and resuming the seat, the
//!   heartbeat, reconnecting with backoff, and pacing what goes out;
//! - the mesh: one [`link::Link`] (negotiation) and one [`channel::Channel`] (reliable
//!   signals) per remote peer;
//! - the devices ([`devices::Slot`]): the microphone and the camera.
//!
//! What it keeps true:
//! - no signal is lost for good: signals are numbered per pair and sent again until
//!   acknowledged ([`channel`]); nothing is written to a socket that is not joined;
//! - every link converges: one that is not connected and stable some seconds after it
//!   was made, dropped, failed or found unhealthy after a resume is renegotiated with an
//!   ICE restart, with growing waits, until it connects or the peer leaves ([`link`]);
//! - one browser operation per link at a time, so perfect negotiation decides on settled
//!   state;
//! - what goes out stays under the relay's rate limit by construction ([`Pacer`]);
//! - no device runs that nobody asked for ([`devices`]).

mod channel;
mod devices;
mod link;

use std::collections::BTreeMap;

use crate::backoff::RECONNECT;
use crate::call::{Link as LinkState, Session};
use crate::negotiation::{self, Met};
use crate::protocol::{
    CLIENT_PING_INTERVAL, CLIENT_RELAY_TIMEOUT, ClientMessage, ErrorCode, IceServer, IceTransportPolicy,
    PROTOCOL_VERSION, ServerMessage, Signal,
};
use crate::room::{PeerId, RoomId};
use channel::{Channel, Received};
use devices::Slot;
use link::{Link, Renewal};

pub use link::ANSWER_WAIT_MS;

/// A socket that has not opened after this long is given up and another one tried: after
/// a network change, a connection attempt can hang on unanswered SYNs for much longer.
pub const SOCKET_OPEN_TIMEOUT_MS: u64 = 2_500;
/// How many times a first join tries the relay before it says the relay is unreachable.
pub const JOIN_ATTEMPTS: u32 = 3;
/// The pacer's burst and sustained rate: half the relay's defaults (60 and 20 a second), so
/// that a six-person mesh join stays well inside them.
pub const PACE_BURST: u32 = 30;
/// Messages a second, sustained.
pub const PACE_PER_SECOND: u32 = 10;
/// The most messages sent since the relay was last heard from. A stalled connection (a
/// phone between networks) delivers all it buffered at once when it recovers: this keeps
/// that burst well under the relay's. A ping asks the relay to speak up.
pub const SEND_WINDOW: u32 = 20;

/// One peer connection, for the page's life: the key of its `RTCPeerConnection`. Peer ids
/// are not enough: a restarted relay numbers peers from 1 again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Conn(pub u64);

/// One opening of a device (`getUserMedia` call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Request(pub u32);

/// Which device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// Audio input.
    Microphone,
    /// Video input.
    Camera,
    /// What is on the screen (`getDisplayMedia`): sent in place of the camera's picture
    /// while shared.
    Screen,
}

/// An SDP's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpKind {
    /// `offer`.
    Offer,
    /// `answer`.
    Answer,
}

/// A remote ICE candidate (`RTCIceCandidateInit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The candidate line.
    pub candidate: String,
    /// Its media stream tag.
    pub sdp_mid: Option<String>,
    /// Its m-line index.
    pub sdp_m_line_index: Option<u16>,
}

impl From<Candidate> for Signal {
    fn from(Candidate { candidate, sdp_mid, sdp_m_line_index }: Candidate) -> Self {
        Signal::Candidate { candidate, sdp_mid, sdp_m_line_index }
    }
}

impl TryFrom<Signal> for Candidate {
    /// The signal, when it is not a candidate.
    type Error = Signal;

    fn try_from(signal: Signal) -> Result<Self, Signal> {
        match signal {
            Signal::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                Ok(Candidate { candidate, sdp_mid, sdp_m_line_index })
            }
            other => Err(other),
        }
    }
}

/// What the relay said about ICE: the servers, and whether only TURN may be used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ice {
    /// STUN and TURN servers.
    pub servers: Vec<IceServer>,
    /// `all`, or `relay` for TURN only.
    pub policy: IceTransportPolicy,
}

/// Why a device did not open (`getUserMedia`'s rejection).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    /// The person or the browser refused.
    Denied,
    /// No such device.
    Missing,
    /// The picked device is not there any more.
    Gone,
    /// The device exists but cannot be opened (another app holds it).
    Busy,
    /// Anything else, with the browser's words.
    Other(String),
}

/// Why the call stopped: the person must act.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The microphone did not open.
    Microphone(DeviceError),
    /// The relay could not be reached to join.
    RelayUnreachable,
    /// The relay refused the join.
    Refused(ErrorCode),
}

/// A device that failed while the call goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFailure {
    /// Which one.
    pub kind: DeviceKind,
    /// Why.
    pub error: DeviceError,
}

/// What the engine is told.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The person tapped "join" (opens the microphone, then the socket).
    Join,
    /// The person chose to join without a microphone, only to listen (from the choice
    /// before joining, or when the microphone was refused). [`Input::Mute`]`(false)` turns
    /// the microphone on later, in the call.
    Listen,
    /// The person left, or the page is going away.
    Leave,
    /// The person wants to try the microphone before joining.
    TestMicrophone,
    /// Mute or unmute.
    Mute(bool),
    /// Camera on or off.
    Camera(bool),
    /// Share the screen, or stop (also when the browser's own "stop sharing" ended it).
    Screen(bool),
    /// The person picked a device.
    Pick(DeviceKind, String),
    /// The signaling socket opened.
    SocketOpened,
    /// The signaling socket closed (or never opened).
    SocketClosed,
    /// A message from the relay.
    Received(ServerMessage),
    /// A device opened, as `device` (its id, when the browser says).
    DeviceOpened {
        /// Which opening.
        request: Request,
        /// The device's id.
        device: Option<String>,
    },
    /// A device did not open.
    DeviceFailed {
        /// Which opening.
        request: Request,
        /// Why.
        error: DeviceError,
    },
    /// The operation in flight on `conn` succeeded; an offer or answer gives its SDP.
    Done {
        /// Which connection.
        conn: Conn,
        /// The local description made, for [`Command::CreateOffer`] and
        /// [`Command::CreateAnswer`].
        description: Option<String>,
    },
    /// The operation in flight on `conn` failed.
    OperationFailed {
        /// Which connection.
        conn: Conn,
        /// The browser's words, for the log.
        error: String,
    },
    /// A local ICE candidate to send the peer.
    LocalCandidate {
        /// Which connection.
        conn: Conn,
        /// The candidate.
        candidate: Candidate,
    },
    /// `connectionState` changed.
    Connection {
        /// Which connection.
        conn: Conn,
        /// The new state.
        state: LinkState,
    },
    /// `connectionState` is `failed` while ICE is connected: the DTLS handshake failed (seen
    /// on pages starved of CPU). No ICE restart redoes it; a new connection does.
    DtlsFailed {
        /// Which connection.
        conn: Conn,
    },
    /// `negotiationneeded` fired.
    NegotiationNeeded {
        /// Which connection.
        conn: Conn,
    },
    /// Time passed.
    Tick,
}

/// What the engine asks the page to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Open a socket to the relay.
    OpenSocket,
    /// Close the socket; `resuming` asks the relay to keep our seat.
    CloseSocket {
        /// Whether we will resume.
        resuming: bool,
    },
    /// Send a message on the open socket.
    Send(ClientMessage),
    /// Open a device.
    OpenDevice {
        /// The opening's number, for [`Input::DeviceOpened`] and [`Input::DeviceFailed`].
        request: Request,
        /// Which kind.
        kind: DeviceKind,
        /// Which device (`None`: the default).
        device: Option<String>,
    },
    /// Use this opened device from now on, on every connection (in place of the previous
    /// one of its kind).
    UseDevice {
        /// The opening.
        request: Request,
    },
    /// Stop this device (and take it off every connection if it was in use).
    StopDevice {
        /// The opening.
        request: Request,
    },
    /// Mute or unmute the microphone (the track stays and sends silence).
    Mute(bool),
    /// Make an `RTCPeerConnection`.
    OpenConnection {
        /// Its key.
        conn: Conn,
        /// To whom.
        peer: PeerId,
        /// With what ICE servers.
        ice: Ice,
    },
    /// Make and set a local offer (`createOffer`, with `iceRestart` if asked, then
    /// `setLocalDescription`); then [`Input::Done`] with its SDP.
    CreateOffer {
        /// Which connection.
        conn: Conn,
        /// Gather new ICE credentials.
        ice_restart: bool,
        /// First put our microphone and camera on the connection.
        send: bool,
    },
    /// Make and set the answer to the remote offer; then [`Input::Done`] with its SDP.
    CreateAnswer {
        /// Which connection.
        conn: Conn,
        /// First put our microphone and camera on the connection.
        send: bool,
    },
    /// Roll our local offer back (`setLocalDescription({type: "rollback"})`).
    Rollback {
        /// Which connection.
        conn: Conn,
    },
    /// `setRemoteDescription`.
    SetRemote {
        /// Which connection.
        conn: Conn,
        /// Offer or answer.
        kind: SdpKind,
        /// The description.
        sdp: String,
    },
    /// `addIceCandidate` for each (a failure of one is logged, not fatal).
    AddCandidates {
        /// Which connection.
        conn: Conn,
        /// The candidates.
        candidates: Vec<Candidate>,
    },
    /// Close the connection and forget it.
    CloseConnection {
        /// Which connection.
        conn: Conn,
    },
}

/// One remote participant as the person sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// The connection, unique for the page's life (the UI's key).
    pub conn: Conn,
    /// The relay-assigned id.
    pub id: PeerId,
    /// The media link's state.
    pub link: LinkState,
}

/// What the person sees of the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// Where our session stands.
    pub session: Session,
    /// Why the call stopped, while [`Session::Failed`].
    pub failure: Option<Failure>,
    /// A device that failed while the call goes on.
    pub device_failure: Option<DeviceFailure>,
    /// Someone left and nobody else is here.
    pub peer_left: bool,
    /// The relay said it cannot seat us just now (`unavailable`: the store it shares rooms
    /// through is down): the page says the service is busy while the engine tries again.
    pub busy: bool,
    /// How many people came into the room after us, and how many left it, in this page's
    /// life: the page chimes and announces each change (those already there when we
    /// joined are no news).
    pub comings: u32,
    /// See [`View::comings`].
    pub goings: u32,
    /// The remote participants, by id.
    pub peers: Vec<PeerView>,
    /// Whether our microphone is muted.
    pub muted: bool,
    /// Whether we only listen: in the call without a microphone.
    pub listening: bool,
    /// Whether the person wants the camera on (the toggle shows this at once).
    pub camera_on: bool,
    /// Whether the person shares the screen (the toggle shows this at once).
    pub sharing: bool,
    /// The microphone in use, or picked.
    pub microphone: Option<String>,
    /// The camera in use, or picked.
    pub camera: Option<String>,
}

/// The socket to the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Socket {
    /// None, or we are waiting to try again (at `retry`).
    Closed { retry: Option<u64> },
    /// Opening since then.
    Opening { since: u64 },
    /// Open; `joined` once the relay said so.
    Open { joined: bool },
}

/// A token bucket for what we send, so that the relay's rate limit is never reached.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    tokens_ms: u64,
    at: u64,
}

impl Pacer {
    const FULL_MS: u64 = PACE_BURST as u64 * 1_000;

    fn full(now: u64) -> Self {
        Self { tokens_ms: Self::FULL_MS, at: now }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.at);
        self.tokens_ms = (self.tokens_ms + elapsed * u64::from(PACE_PER_SECOND)).min(Self::FULL_MS);
        self.at = now;
    }

    fn take(&mut self, now: u64) -> bool {
        self.refill(now);
        let taken = self.tokens_ms >= 1_000;
        if taken {
            self.tokens_ms -= 1_000;
        }
        taken
    }

    /// When the next token is there.
    fn ready_at(&self) -> u64 {
        self.at + 1_000u64.saturating_sub(self.tokens_ms).div_ceil(u64::from(PACE_PER_SECOND))
    }

    /// Counts `messages` as sent now.
    fn charge(&mut self, now: u64, messages: u32) {
        self.refill(now);
        self.tokens_ms = self.tokens_ms.saturating_sub(u64::from(messages) * 1_000);
    }

    /// The relay said we went too fast (it runs with lower limits than ours): wait.
    fn empty(&mut self, now: u64) {
        self.tokens_ms = 0;
        self.at = now;
    }
}

/// One remote peer: the negotiation and the reliable channel.
#[derive(Debug)]
struct Peer {
    id: PeerId,
    conn: Conn,
    link: Link,
    channel: Channel,
}

/// The call engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    room: RoomId,
    rng: Rng,
    session: Session,
    failure: Option<Failure>,
    device_failure: Option<DeviceFailure>,
    peer_left: bool,
    /// See [`View::busy`]: until a join goes through, or the person leaves.
    busy: bool,
    muted: bool,
    /// In the call without a microphone ([`Input::Listen`]), until one opens.
    listening: bool,
    socket: Socket,
    /// Our seat: id and resume token, once joined.
    me: Option<PeerId>,
    token: Option<String>,
    ice: Ice,
    /// Reconnection attempts since the relay was lost (or first tried).
    attempt: u32,
    /// Whether this session ever got a seat (a first join fails; a later loss retries).
    seated: bool,
    last_heard: u64,
    next_ping: u64,
    pacer: Pacer,
    /// Messages sent since the relay was last heard from, and whether a ping asks it to
    /// speak up.
    unheard: u32,
    probing: bool,
    peers: BTreeMap<PeerId, Peer>,
    /// Who left during this seat: a late signal of theirs must not bring them back (the
    /// relay never reuses an id in a room).
    departed: std::collections::BTreeSet<PeerId>,
    comings: u32,
    goings: u32,
    next_conn: u64,
    microphone: Slot,
    camera: Slot,
    screen: Slot,
    next_request: u32,
    out: Vec<Command>,
}

impl Engine {
    /// A call in `room`, not joined. `seed` drives the reconnection jitter (pass a random
    /// number; a test passes its seed).
    pub fn new(room: RoomId, seed: u64) -> Self {
        Self {
            room,
            rng: Rng(seed),
            session: Session::Idle,
            failure: None,
            device_failure: None,
            peer_left: false,
            busy: false,
            muted: false,
            listening: false,
            socket: Socket::Closed { retry: None },
            me: None,
            token: None,
            ice: Ice::default(),
            attempt: 0,
            seated: false,
            last_heard: 0,
            next_ping: 0,
            pacer: Pacer::full(0),
            unheard: 0,
            probing: false,
            peers: BTreeMap::new(),
            departed: Default::default(),
            comings: 0,
            goings: 0,
            next_conn: 0,
            microphone: Slot::default(),
            camera: Slot::default(),
            screen: Slot::default(),
            next_request: 0,
            out: Vec::new(),
        }
    }

    /// The room this call is in.
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// Takes what the page must do now, in order.
    pub fn commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.out)
    }

    /// When to call [`Engine::handle`] with [`Input::Tick`] if nothing else happens first.
    pub fn deadline(&self) -> Option<u64> {
        let socket = match self.socket {
            Socket::Closed { retry } => retry,
            Socket::Opening { since } => Some(since + SOCKET_OPEN_TIMEOUT_MS),
            Socket::Open { .. } => Some(
                self.next_ping
                    .max(self.pacer.ready_at())
                    .min(self.last_heard + CLIENT_RELAY_TIMEOUT.as_millis() as u64),
            ),
        };
        // Renegotiations and messages wait for the relay; a renegotiation also waits for the
        // channel to be idle and the link to be free (both are news that wakes us anyway).
        let online = self.online();
        let sending = online && self.unheard < SEND_WINDOW;
        let peers = self.peers.values().filter(|_| online).flat_map(|peer| {
            let link = peer.link.deadline().filter(|_| peer.channel.idle());
            [link, peer.channel.deadline().filter(|_| sending).map(|at| at.max(self.pacer.ready_at()))]
        });
        let give_up = self.peers.values().map(|peer| peer.link.give_up_at());
        peers.chain(give_up).chain([socket]).flatten().min()
    }

    /// What the person sees.
    pub fn view(&self) -> View {
        View {
            session: self.session,
            failure: self.failure.clone(),
            device_failure: self.device_failure.clone(),
            peer_left: self.peer_left,
            busy: self.busy,
            comings: self.comings,
            goings: self.goings,
            peers: self.peers.values().map(|p| PeerView { conn: p.conn, id: p.id, link: p.link.shown() }).collect(),
            muted: self.muted,
            listening: self.listening,
            camera_on: self.camera.wanted(),
            sharing: self.screen.wanted(),
            microphone: self.microphone.device().map(str::to_owned),
            camera: self.camera.device().map(str::to_owned),
        }
    }

    /// Our id in the room, once joined.
    pub fn me(&self) -> Option<PeerId> {
        self.me
    }

    /// Acts on `input` at `now` (milliseconds on any steady clock).
    pub fn handle(&mut self, input: Input, now: u64) {
        match input {
            Input::Join => self.join(now, false),
            Input::Listen => self.join(now, true),
            Input::Leave => self.leave(),
            Input::TestMicrophone => {
                self.failure = None;
                self.microphone.want(DeviceKind::Microphone, &mut self.next_request, &mut self.out);
            }
            // A listener's unmute is the microphone turned on; it joins the call when open.
            Input::Mute(false) if self.listening => {
                self.device_failure = None;
                self.microphone.want(DeviceKind::Microphone, &mut self.next_request, &mut self.out);
            }
            Input::Mute(muted) => {
                self.muted = muted;
                self.out.push(Command::Mute(muted));
            }
            Input::Camera(on) => self.set_picture(DeviceKind::Camera, on),
            Input::Screen(on) => self.set_picture(DeviceKind::Screen, on),
            Input::Pick(kind, device) => {
                self.device_failure = None;
                let (slot, next, out) = self.slot(kind);
                slot.pick(kind, device, next, out);
            }
            Input::SocketOpened => self.socket_opened(now),
            Input::SocketClosed => self.socket_lost(now, false),
            Input::Received(message) => {
                // After a silence, what we sent meanwhile may be reaching the relay only now,
                // all at once: it counts against what we may send next.
                if now > self.last_heard + 1_000 {
                    self.pacer.charge(now, self.unheard);
                }
                self.last_heard = now;
                self.unheard = 0;
                self.probing = false;
                self.received(message, now);
            }
            Input::DeviceOpened { request, device } => self.device_opened(request, device, now),
            Input::DeviceFailed { request, error } => self.device_failed(request, error),
            Input::Done { conn, description } => {
                if let Some(peer) = self.peer_mut(conn)
                    && let Some(signal) = peer.link.done(description, now)
                {
                    peer.channel.push(signal, now);
                }
            }
            Input::OperationFailed { conn, .. } => {
                if let Some(peer) = self.peer_mut(conn) {
                    peer.link.failed(now);
                }
            }
            Input::LocalCandidate { conn, candidate } => {
                if let Some(peer) = self.peer_mut(conn) {
                    peer.channel.push(candidate.into(), now);
                }
            }
            Input::Connection { conn, state } => {
                if let Some(peer) = self.peer_mut(conn) {
                    peer.link.connection(state, now);
                }
            }
            Input::DtlsFailed { conn } => self.replace_connection(conn, Renewal::Offer, now),
            Input::NegotiationNeeded { conn } => {
                if let Some(peer) = self.peer_mut(conn) {
                    peer.link.negotiation_needed();
                }
            }
            Input::Tick => self.tick(now),
        }
        self.step(now);
    }

    fn peer_mut(&mut self, conn: Conn) -> Option<&mut Peer> {
        self.peers.values_mut().find(|peer| peer.conn == conn)
    }

    fn online(&self) -> bool {
        self.socket == Socket::Open { joined: true }
    }

    /// Joins with the microphone, or without it (`listen`): then at once.
    fn join(&mut self, now: u64, listen: bool) {
        if matches!(self.session, Session::Joining | Session::Joined | Session::Lost) {
            return;
        }
        self.failure = None;
        self.peer_left = false;
        self.session = Session::Joining;
        self.seated = false;
        self.token = None;
        self.attempt = 0;
        self.listening = listen;
        if listen {
            self.microphone.release(&mut self.out);
        } else {
            self.microphone.want(DeviceKind::Microphone, &mut self.next_request, &mut self.out);
        }
        if listen || self.microphone.running() {
            self.connect(now);
        }
    }

    fn connect(&mut self, now: u64) {
        self.socket = Socket::Opening { since: now };
        self.out.push(Command::OpenSocket);
    }

    /// The slot of `kind`, with what opening a device needs.
    fn slot(&mut self, kind: DeviceKind) -> (&mut Slot, &mut u32, &mut Vec<Command>) {
        let slot = match kind {
            DeviceKind::Microphone => &mut self.microphone,
            DeviceKind::Camera => &mut self.camera,
            DeviceKind::Screen => &mut self.screen,
        };
        (slot, &mut self.next_request, &mut self.out)
    }

    /// The camera or the screen on (in the call only) or off.
    fn set_picture(&mut self, kind: DeviceKind, on: bool) {
        self.device_failure = None;
        let joined = matches!(self.session, Session::Joined | Session::Lost);
        let (slot, next, out) = self.slot(kind);
        if on && joined {
            slot.want(kind, next, out);
        } else {
            slot.release(out);
        }
    }

    fn device_opened(&mut self, request: Request, device: Option<String>, now: u64) {
        if self.microphone.is_opening(request) {
            self.microphone.opened(request, device, &mut self.out);
            // A listener who turned the microphone on talks now, unmuted.
            if std::mem::take(&mut self.listening) {
                self.muted = false;
                self.out.push(Command::Mute(false));
            }
            if self.session == Session::Joining && self.socket == (Socket::Closed { retry: None }) {
                self.connect(now);
            }
        } else if self.camera.is_opening(request) {
            self.camera.opened(request, device, &mut self.out);
        } else if self.screen.is_opening(request) {
            self.screen.opened(request, device, &mut self.out);
        } else {
            // Nobody waits for it any more.
            self.out.push(Command::StopDevice { request });
        }
    }

    fn device_failed(&mut self, request: Request, error: DeviceError) {
        if self.microphone.failed(request) {
            // A listener keeps listening: the call goes on without the microphone.
            if self.microphone.running() || self.listening {
                self.device_failure = Some(DeviceFailure { kind: DeviceKind::Microphone, error });
            } else {
                self.fail(Failure::Microphone(error));
            }
        } else if self.camera.failed(request) {
            self.device_failure = Some(DeviceFailure { kind: DeviceKind::Camera, error });
        } else if self.screen.failed(request) && error != DeviceError::Denied {
            // Denied is the person closing the browser's picker: no news.
            self.device_failure = Some(DeviceFailure { kind: DeviceKind::Screen, error });
        }
    }

    fn socket_opened(&mut self, now: u64) {
        if !matches!(self.socket, Socket::Opening { .. }) {
            return;
        }
        self.socket = Socket::Open { joined: false };
        self.last_heard = now;
        self.next_ping = now + CLIENT_PING_INTERVAL.as_millis() as u64;
        // The relay's bucket is per socket: ours starts full too.
        self.pacer = Pacer::full(now);
        self.pacer.take(now);
        self.unheard = 1;
        self.probing = false;
        let join =
            ClientMessage::Join { version: PROTOCOL_VERSION, room: self.room.to_string(), resume: self.token.clone() };
        self.out.push(Command::Send(join));
    }

    /// The socket closed, or we gave up on it (`ours`: then we close it, asking the relay
    /// to keep our seat).
    fn socket_lost(&mut self, now: u64, ours: bool) {
        if matches!(self.socket, Socket::Closed { .. })
            || !matches!(self.session, Session::Joining | Session::Joined | Session::Lost)
        {
            return;
        }
        if ours {
            self.out.push(Command::CloseSocket { resuming: true });
        }
        // A relay that answers `unavailable` is reachable: keep trying while it is busy.
        if !self.seated && !self.busy && self.attempt + 1 >= JOIN_ATTEMPTS {
            return self.fail(Failure::RelayUnreachable);
        }
        if self.seated {
            self.session = Session::Lost;
        }
        let delay = RECONNECT.delay(self.attempt, self.random()).as_millis() as u64;
        self.attempt = self.attempt.saturating_add(1);
        self.socket = Socket::Closed { retry: Some(now + delay) };
    }

    fn tick(&mut self, now: u64) {
        match self.socket {
            Socket::Closed { retry: Some(at) } if now >= at => self.connect(now),
            Socket::Opening { since } if now >= since + SOCKET_OPEN_TIMEOUT_MS => {
                // No answer at all: try again at once (the wait was the backoff).
                self.socket_lost(now, true);
                if let Socket::Closed { retry: Some(_) } = self.socket {
                    self.socket = Socket::Closed { retry: Some(now) };
                }
            }
            Socket::Open { .. } if now >= self.last_heard + CLIENT_RELAY_TIMEOUT.as_millis() as u64 => {
                self.socket_lost(now, true);
            }
            Socket::Open { .. } if now >= self.next_ping && self.pacer.take(now) => {
                self.next_ping = now + CLIENT_PING_INTERVAL.as_millis() as u64;
                self.out.push(Command::Send(ClientMessage::Ping {}));
            }
            _ => {}
        }
    }

    fn received(&mut self, message: ServerMessage, now: u64) {
        match message {
            ServerMessage::Joined { you, peers, ice_servers, ice_transport_policy, resume, resumed, .. } => {
                self.joined(
                    you,
                    peers,
                    Ice { servers: ice_servers, policy: ice_transport_policy },
                    resume,
                    resumed,
                    now,
                );
            }
            ServerMessage::PeerJoined { peer } => {
                self.peer_left = false;
                self.add_peer(peer, Met::Arrived, now);
            }
            ServerMessage::PeerLeft { peer } => self.remove_peer(peer),
            ServerMessage::Signal { from, signal } => {
                if let Some(peer) = self.peer_or_newcomer(from, now) {
                    peer.link.receive([signal]);
                }
            }
            ServerMessage::Signals { from, seq, ack, signals } => {
                if let Some(peer) = self.peer_or_newcomer(from, now)
                    && let Received::Deliver(signals) = peer.channel.receive(seq, ack, signals, now)
                {
                    peer.link.receive(signals);
                }
            }
            ServerMessage::Pong {} | ServerMessage::Unknown => {}
            ServerMessage::Error { code: ErrorCode::UnknownPeer, peer: Some(peer), .. } => {
                // Someone we still call left while we were not listening (a half-open socket
                // ate the relay's `peer_left`).
                self.remove_peer(peer);
            }
            ServerMessage::Error { code, .. } => match code {
                ErrorCode::RoomFull
                | ErrorCode::BadRoomId
                | ErrorCode::UnsupportedVersion
                | ErrorCode::TooManyConnections
                | ErrorCode::TooManyRooms
                    if !self.online() =>
                {
                    self.fail(Failure::Refused(code));
                }
                ErrorCode::RateLimited => self.pacer.empty(now),
                // The relay cannot reach the rooms it shares with other relays just now: try
                // again on a new socket after the backoff (the balancer may pick another
                // relay); the connections of a seat go on meanwhile.
                ErrorCode::Unavailable if !self.online() => {
                    self.busy = true;
                    self.socket_lost(now, true);
                }
                // Passing: a signal to someone who just left; what was dropped is sent again.
                _ => {}
            },
        }
    }

    fn joined(&mut self, you: PeerId, peers: Vec<PeerId>, ice: Ice, token: String, resumed: bool, now: u64) {
        if self.socket != (Socket::Open { joined: false }) {
            return;
        }
        self.socket = Socket::Open { joined: true };
        self.session = Session::Joined;
        self.busy = false;
        self.seated = true;
        self.attempt = 0;
        self.token = Some(token);
        self.ice = ice;
        if resumed && self.me == Some(you) {
            // Same seat: every connection is still good. Forget who left meanwhile; resend
            // what may have been lost and ask each peer for what we missed.
            let gone: Vec<PeerId> = self.peers.keys().filter(|id| !peers.contains(id)).copied().collect();
            for id in gone {
                self.remove_peer(id);
            }
            for peer in self.peers.values_mut() {
                peer.channel.resend();
                peer.channel.sync();
                peer.link.resumed(now);
            }
        } else {
            // A new seat (the first, or the relay forgot us): start over with everyone.
            self.me = Some(you);
            self.departed.clear();
            for conn in std::mem::take(&mut self.peers).into_values().map(|p| p.conn) {
                self.out.push(Command::CloseConnection { conn });
            }
            for peer in peers {
                self.add_peer(peer, Met::WasThere, now);
            }
        }
    }

    fn peer_or_newcomer(&mut self, id: PeerId, now: u64) -> Option<&mut Peer> {
        // A newcomer's first signal can come before the relay's `peer_joined`.
        self.add_peer(id, Met::Arrived, now);
        self.peers.get_mut(&id)
    }

    fn add_peer(&mut self, id: PeerId, met: Met, now: u64) {
        let Some(me) = self.me.filter(|me| *me != id && self.online()) else { return };
        if self.peers.contains_key(&id) || self.departed.contains(&id) {
            return;
        }
        let conn = self.open_connection(id);
        let link = Link::new(conn, negotiation::role(me, id, met), now);
        self.peers.insert(id, Peer { id, conn, link, channel: Channel::new(id) });
        if met == Met::Arrived {
            self.comings += 1;
        }
    }

    /// Closes `conn` and makes a new connection to the same peer in its place, which offers
    /// at once or answers the offer the old one refused ([`Renewal`]). The peer's browser
    /// takes the new offer on its connection when it can (a changed fingerprint starts DTLS
    /// over); when it cannot, the peer renews its connection too, to answer it. The
    /// numbered signals go on as they were.
    fn replace_connection(&mut self, conn: Conn, renewal: Renewal, now: u64) {
        let Some(id) = self.peer_mut(conn).map(|peer| peer.id) else { return };
        self.out.push(Command::CloseConnection { conn });
        let renewed = self.open_connection(id);
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.conn = renewed;
            peer.link = match renewal {
                Renewal::Offer => {
                    peer.channel.push(Signal::Renew {}, now);
                    peer.link.renewed(renewed, now)
                }
                Renewal::Answer => peer.link.renewed_to_answer(renewed, now),
            };
        }
    }

    /// Asks for a new `RTCPeerConnection` to `peer`; returns its key.
    fn open_connection(&mut self, peer: PeerId) -> Conn {
        self.next_conn += 1;
        let conn = Conn(self.next_conn);
        self.out.push(Command::OpenConnection { conn, peer, ice: self.ice.clone() });
        conn
    }

    fn remove_peer(&mut self, id: PeerId) {
        self.departed.insert(id);
        if let Some(peer) = self.peers.remove(&id) {
            self.out.push(Command::CloseConnection { conn: peer.conn });
            self.peer_left = self.peers.is_empty();
            self.goings += 1;
        }
    }

    fn leave(&mut self) {
        if self.online() {
            self.out.push(Command::Send(ClientMessage::Leave {}));
        }
        self.hang_up();
        self.session = Session::Ended;
    }

    fn fail(&mut self, failure: Failure) {
        self.hang_up();
        self.failure = Some(failure);
        self.session = Session::Failed;
    }

    /// Ends the session with the relay and every connection, and releases the devices.
    fn hang_up(&mut self) {
        if !matches!(self.socket, Socket::Closed { .. }) {
            self.out.push(Command::CloseSocket { resuming: false });
        }
        self.socket = Socket::Closed { retry: None };
        for conn in std::mem::take(&mut self.peers).into_values().map(|p| p.conn) {
            self.out.push(Command::CloseConnection { conn });
        }
        self.me = None;
        self.token = None;
        self.listening = false;
        self.busy = false;
        self.microphone.release(&mut self.out);
        self.camera.release(&mut self.out);
        self.screen.release(&mut self.out);
    }

    /// Each link's next operation, if it has one.
    fn poll_links(&mut self, now: u64, online: bool) {
        for peer in self.peers.values_mut() {
            if let Some(command) = peer.link.poll(now, online, peer.channel.idle()) {
                self.out.push(command);
            }
        }
    }

    /// Whatever can happen now: each link's next operation (a new connection for a link
    /// renegotiated in vain), then what the channels and the pacer let out.
    fn step(&mut self, now: u64) {
        let online = self.online();
        self.poll_links(now, online);
        let renewals: Vec<(Conn, Renewal)> =
            self.peers.values().filter_map(|p| Some((p.conn, p.link.renewal()?))).collect();
        if !renewals.is_empty() {
            for (conn, renewal) in renewals {
                self.replace_connection(conn, renewal, now);
            }
            // The new connections' first offers.
            self.poll_links(now, online);
        }
        if !online {
            return;
        }
        // Round-robin over the peers, one message each per round, while the pacer and the
        // window allow.
        loop {
            let mut sent = false;
            for peer in self.peers.values_mut() {
                if self.unheard >= SEND_WINDOW {
                    if !std::mem::replace(&mut self.probing, true) {
                        self.out.push(Command::Send(ClientMessage::Ping {}));
                    }
                    return;
                }
                if self.pacer.ready_at() > now {
                    return;
                }
                if let Some(message) = peer.channel.next_message(now) {
                    self.pacer.take(now);
                    self.unheard += 1;
                    self.out.push(Command::Send(message));
                    sent = true;
                }
            }
            if !sent {
                return;
            }
        }
    }

    fn random(&mut self) -> f64 {
        self.rng.unit()
    }
}

/// A small seeded generator (SplitMix64): the same numbers from the same seed on every
/// machine, so a run of the engine (or of its simulator) replays exactly.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
