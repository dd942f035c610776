//! A deterministic simulator for the call engine: 2 to 6 people, a simulated relay that
//! keeps seats as the real one does (resume tokens, a grace period, idle eviction, rate
//! limits, restarts), peer connections that follow the WebRTC rules the engine relies on
//! (signaling states, ICE credentials, candidates, connectivity that drops and fails), and
//! a network that loses, delays, reorders and duplicates signals, drops and half-opens
//! sockets, cuts phones off entirely for up to 40 s and blacks out media. People join,
//! toggle the camera, pick microphones, mute, and sometimes leave and come back, at random
//! moments; pairs are made to renegotiate at once (glare).
//!
//! After the faults stop and the call settles, every pair of people in the call must be
//! connected, stable and sending each other the media each last asked for (voice, and
//! video exactly when the camera is on), and no device may run that nobody asked for.
//!
//! One seed replays one run exactly: a failure prints `SIM_SEED=<seed>`; run it again with
//! `SIM_SEED=<seed> cargo test -p shared --test simulator -- --nocapture` to see its trace.
//! `SIM_RUNS=<n>` runs more seeds (the longer sweep).

use std::collections::{BTreeMap, BTreeSet};

use shared::call::{Link, Session};
use shared::engine::{Candidate, Command, Conn, DeviceKind, Engine, Input, Request, Rng, SdpKind};
use shared::protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use shared::room::{PeerId, RoomId};

/// Faults strike until then (a phone cut off may come back later)...
const FAULTS_END_MS: u64 = 50_000;
/// ...and the call has this long after the last one ends to settle: a seat left behind by
/// a phone that came back as someone new lasts the relay's idle timeout at most.
const SETTLE_MS: u64 = 60_000;
const ICE_STEP_MS: u64 = 200;
const RELAY_GRACE_MS: u64 = 30_000;
const RELAY_IDLE_MS: u64 = 40_000;
const RELAY_PING_MS: u64 = 15_000;
const RETRY_MS: u64 = 5_000;
const RELAY_BURST: f64 = 60.0;
const RELAY_RATE: f64 = 20.0;
const DISCONNECTED_TO_FAILED_MS: u64 = 10_000;
const CHECKING_TO_FAILED_MS: u64 = 15_000;

trait Draw {
    fn below(&mut self, n: u64) -> u64;
    fn between(&mut self, low: u64, high: u64) -> u64;
    fn chance(&mut self, p: f64) -> bool;
}

impl Draw for Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// ICE credentials: whose, which connection, which generation.
type Ufrag = (usize, Conn, u32);

/// A session description as the simulated browser writes it.
#[derive(Clone, Debug, PartialEq)]
struct Desc {
    id: u64,
    ufrag: Ufrag,
    audio: bool,
    video: bool,
    /// Whether it has a video m-line (the offerer had a video transceiver).
    video_line: bool,
    reply_to: Option<u64>,
}

impl Desc {
    fn encode(&self) -> String {
        let (c, k, g) = self.ufrag;
        format!(
            "{} {} {} {} {} {} {} {}",
            self.id,
            c,
            k.0,
            g,
            u8::from(self.audio),
            u8::from(self.video),
            u8::from(self.video_line),
            self.reply_to.map_or(-1, |r| r as i64)
        )
    }
    fn decode(sdp: &str) -> Self {
        let f: Vec<i64> = sdp.split(' ').map(|x| x.parse().unwrap()).collect();
        Desc {
            id: f[0] as u64,
            ufrag: (f[1] as usize, Conn(f[2] as u64), f[3] as u32),
            audio: f[4] == 1,
            video: f[5] == 1,
            video_line: f[6] == 1,
            reply_to: (f[7] >= 0).then_some(f[7] as u64),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sig {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
}

/// A simulated `RTCPeerConnection`.
#[derive(Debug)]
struct Pc {
    sig: Sig,
    ice_gen: u32,
    local: Option<Desc>,
    remote: Option<Desc>,
    stable_local: Option<Desc>,
    stable_remote: Option<Desc>,
    answered_ufrag: Option<Ufrag>,
    sending: bool,
    video: bool,
    video_transceiver: bool,
    candidates: BTreeSet<Ufrag>,
    state: Link,
    since: u64,
    pair: Option<(Ufrag, Ufrag)>,
}

impl Pc {
    fn new(now: u64) -> Self {
        Pc {
            sig: Sig::Stable,
            ice_gen: 0,
            local: None,
            remote: None,
            stable_local: None,
            stable_remote: None,
            answered_ufrag: None,
            sending: false,
            video: false,
            video_transceiver: false,
            candidates: BTreeSet::new(),
            state: Link::Connecting,
            since: now,
            pair: None,
        }
    }
    fn needs_negotiation(&self) -> bool {
        self.sig == Sig::Stable
            && self.sending
            && self.local.as_ref().is_none_or(|l| !l.audio || l.video != (self.video && self.can_send_video()))
    }
    fn can_send_video(&self) -> bool {
        // An answer can only use the video line the offer had; an offer can always add one.
        true
    }
}

#[derive(Debug)]
enum Event {
    Tick(usize),
    Ice(usize),
    Connected {
        client: usize,
        socket: u64,
    },
    Refused {
        client: usize,
        socket: u64,
    },
    ToRelay {
        socket: u64,
        message: ClientMessage,
    },
    ToClient {
        client: usize,
        socket: u64,
        message: ServerMessage,
    },
    ClosedByRelay {
        client: usize,
        socket: u64,
    },
    Device {
        client: usize,
        request: Request,
        kind: DeviceKind,
    },
    Op {
        client: usize,
        conn: Conn,
        command: Command,
    },
    Candidate {
        client: usize,
        conn: Conn,
        ufrag: Ufrag,
        n: u32,
    },
    /// `negotiationneeded`; `checked` ones fire only if negotiation is still needed then
    /// (Chromium also fires one for the tracks a first offer is adding, unchecked).
    NegotiationNeeded {
        client: usize,
        conn: Conn,
        checked: bool,
    },
    RelayPing,
    /// People whose call failed tap "join" again (the way forward the page offers).
    Retry,
    Expire {
        peer: PeerId,
        epoch: u64,
    },
    Act(usize, Action),
    Fault(Fault),
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Join,
    Leave,
    TestMicrophone,
    Camera(bool),
    PickMicrophone(u32),
    Mute(bool),
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    DropSocket(usize),
    HalfOpen(usize),
    RestartRelay { down_ms: u64 },
    RelayUp,
    Cut { client: usize, ms: u64 },
    Blackout { client: usize, ms: u64 },
    Glare(usize, usize),
    SignalLoss(f64),
}

struct Client {
    engine: Engine,
    socket: Option<(u64, bool)>,
    pcs: BTreeMap<Conn, Pc>,
    running: BTreeMap<Request, DeviceKind>,
    microphone: Option<Request>,
    camera: Option<Request>,
    tick_at: Option<u64>,
    cut_until: u64,
    black_until: u64,
    /// Outgoing TCP order: the time the last frame arrives.
    last_up: u64,
}

struct Seat {
    token: String,
    socket: Option<u64>,
    backlog: Vec<ServerMessage>,
    epoch: u64,
}

struct RelaySocket {
    client: usize,
    seat: Option<PeerId>,
    last_seen: u64,
    tokens: f64,
    at: u64,
    dead: bool,
    last_down: u64,
}

#[derive(Default)]
struct Relay {
    up: bool,
    sockets: BTreeMap<u64, RelaySocket>,
    seats: BTreeMap<PeerId, Seat>,
    next_peer: u32,
    epoch: u64,
    loss: f64,
    /// Messages the relay refused for going over its rate limit: the engine's pacing
    /// should make this impossible.
    rate_limited: u32,
}

struct Sim {
    now: u64,
    rng: Rng,
    queue: BTreeMap<(u64, u64), Event>,
    order: u64,
    clients: Vec<Client>,
    relay: Relay,
    next_socket: u64,
    next_desc: u64,
    trace: bool,
    /// When the run ends.
    end: u64,
    /// What each person last asked for: in the call, camera on.
    in_call: Vec<bool>,
    camera: Vec<bool>,
}

impl Sim {
    fn new(seed: u64, people: usize, trace: bool) -> Self {
        let room = RoomId::from_random([7; RoomId::LEN]);
        let clients = (0..people)
            .map(|i| Client {
                engine: Engine::new(room.clone(), seed ^ (i as u64 + 1)),
                socket: None,
                pcs: BTreeMap::new(),
                running: BTreeMap::new(),
                microphone: None,
                camera: None,
                tick_at: None,
                cut_until: 0,
                black_until: 0,
                last_up: 0,
            })
            .collect();
        let relay = Relay { up: true, ..Relay::default() };
        let mut sim = Sim {
            now: 0,
            rng: Rng(seed),
            queue: BTreeMap::new(),
            order: 0,
            clients,
            relay,
            next_socket: 0,
            next_desc: 0,
            trace,
            end: FAULTS_END_MS + SETTLE_MS,
            in_call: vec![false; people],
            camera: vec![false; people],
        };
        sim.at(RELAY_PING_MS, Event::RelayPing);
        sim.at(RETRY_MS, Event::Retry);
        sim
    }

    fn at(&mut self, time: u64, event: Event) {
        self.order += 1;
        self.queue.insert((time.max(self.now), self.order), event);
    }

    fn after(&mut self, delay: u64, event: Event) {
        self.at(self.now + delay, event);
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>7} {}", self.now, what());
        }
    }

    fn cut(&self, client: usize) -> bool {
        self.now < self.clients[client].cut_until
    }

    fn media_up(&self, a: usize, b: usize) -> bool {
        [a, b].iter().all(|&c| !self.cut(c) && self.now >= self.clients[c].black_until)
    }

    fn run(&mut self, end: u64) {
        while let Some((&(time, order), _)) = self.queue.first_key_value() {
            if time > end {
                break;
            }
            let event = self.queue.remove(&(time, order)).unwrap();
            self.now = time;
            self.event(event);
        }
        self.now = end;
    }

    fn feed(&mut self, client: usize, input: Input) {
        self.log(|| format!("#{client} <- {input:?}"));
        let now = self.now;
        let engine = &mut self.clients[client].engine;
        engine.handle(input, now);
        let commands = engine.commands();
        for command in commands {
            self.apply(client, command);
        }
        if let Some(at) = self.clients[client].engine.deadline() {
            let at = at.max(self.now + 1);
            if self.clients[client].tick_at.is_none_or(|t| at < t || t <= self.now) {
                self.clients[client].tick_at = Some(at);
                self.at(at, Event::Tick(client));
            }
        }
    }

    fn apply(&mut self, c: usize, command: Command) {
        self.log(|| format!("#{c} -> {command:?}"));
        match command {
            Command::OpenSocket => {
                self.next_socket += 1;
                let socket = self.next_socket;
                self.clients[c].socket = Some((socket, false));
                self.connect(c, socket);
            }
            Command::CloseSocket { resuming } => {
                // TCP: the close frame follows what was sent before it, after any cut.
                if let Some((socket, _)) = self.clients[c].socket.take()
                    && self.relay.sockets.get(&socket).is_some_and(|s| !s.dead)
                {
                    let at = (self.now.max(self.clients[c].cut_until) + self.rng.between(1, 30))
                        .max(self.clients[c].last_up);
                    self.at(at, Event::ToRelay { socket, message: close_frame(resuming) });
                }
            }
            Command::Send(message) => {
                let Some((socket, true)) = self.clients[c].socket else {
                    panic!("#{c} sent {message:?} into a socket that is not open")
                };
                if self.relay.sockets.get(&socket).is_none_or(|s| s.dead) {
                    return;
                }
                let sent = self.now.max(self.clients[c].cut_until);
                let at = (sent + self.rng.between(1, 40)).max(self.clients[c].last_up);
                self.clients[c].last_up = at;
                self.at(at, Event::ToRelay { socket, message });
            }
            Command::OpenDevice { request, kind, .. } => {
                let delay = self.rng.between(5, 600);
                self.after(delay, Event::Device { client: c, request, kind });
            }
            Command::UseDevice { request } => {
                let client = &mut self.clients[c];
                match client.running.get(&request) {
                    Some(DeviceKind::Microphone) => client.microphone = Some(request),
                    Some(DeviceKind::Camera) => {
                        client.camera = Some(request);
                        self.attach_video(c, true);
                    }
                    Some(DeviceKind::Screen) => panic!("#{c} shares a screen: nobody here asks for that"),
                    None => panic!("#{c} uses {request:?}, which is not running"),
                }
            }
            Command::StopDevice { request } => {
                let client = &mut self.clients[c];
                client.running.remove(&request);
                if client.microphone == Some(request) {
                    client.microphone = None;
                }
                if client.camera == Some(request) {
                    client.camera = None;
                    self.attach_video(c, false);
                }
            }
            Command::Mute(_) => {}
            Command::OpenConnection { conn, .. } => {
                let mut pc = Pc::new(self.now);
                pc.video = self.clients[c].camera.is_some();
                pc.video_transceiver = pc.video;
                self.clients[c].pcs.insert(conn, pc);
            }
            Command::CloseConnection { conn } => {
                self.clients[c].pcs.remove(&conn);
            }
            command @ (Command::CreateOffer { .. }
            | Command::CreateAnswer { .. }
            | Command::Rollback { .. }
            | Command::SetRemote { .. }
            | Command::AddCandidates { .. }) => {
                let conn = conn_of(&command);
                let delay = self.rng.between(1, 40);
                self.after(delay, Event::Op { client: c, conn, command });
            }
        }
    }

    fn attach_video(&mut self, c: usize, on: bool) {
        let conns: Vec<Conn> = self.clients[c].pcs.keys().copied().collect();
        for conn in conns {
            let pc = self.clients[c].pcs.get_mut(&conn).unwrap();
            pc.video = on;
            pc.video_transceiver |= on;
            if pc.needs_negotiation() {
                let delay = self.rng.between(1, 5);
                self.after(delay, Event::NegotiationNeeded { client: c, conn, checked: true });
            }
        }
    }

    fn connect(&mut self, c: usize, socket: u64) {
        let start = self.now.max(self.clients[c].cut_until);
        let delay = if self.cut(c) { self.rng.between(0, 3_000) } else { self.rng.between(2, 60) };
        self.at(start + delay, Event::Connected { client: c, socket });
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Tick(c) => {
                if self.clients[c].tick_at == Some(self.now) {
                    self.clients[c].tick_at = None;
                    self.feed(c, Input::Tick);
                }
            }
            Event::Ice(c) => {
                self.ice(c);
                if self.now < self.end {
                    self.after(ICE_STEP_MS, Event::Ice(c));
                }
            }
            Event::Connected { client, socket } => {
                if self.clients[client].socket != Some((socket, false)) {
                    return;
                }
                if self.cut(client) {
                    // Still cut off: the SYN waits for the network.
                    return self.connect(client, socket);
                }
                if !self.relay.up {
                    return self.after(1, Event::Refused { client, socket });
                }
                let now = self.now;
                self.relay.sockets.insert(
                    socket,
                    RelaySocket {
                        client,
                        seat: None,
                        last_seen: now,
                        tokens: RELAY_BURST,
                        at: now,
                        dead: false,
                        last_down: 0,
                    },
                );
                self.clients[client].socket = Some((socket, true));
                self.clients[client].last_up = now;
                self.feed(client, Input::SocketOpened);
            }
            Event::Refused { client, socket } | Event::ClosedByRelay { client, socket } => {
                if self.clients[client].socket.is_some_and(|(s, _)| s == socket) {
                    self.clients[client].socket = None;
                    self.feed(client, Input::SocketClosed);
                }
            }
            // TCP: a cut that began (again) after the frame left holds it back.
            Event::ToRelay { socket, message } => match self.relay.sockets.get(&socket).map(|s| s.client) {
                Some(client) if self.cut(client) => {
                    let at = self.clients[client].cut_until;
                    self.at(at, Event::ToRelay { socket, message });
                }
                _ => self.relay_receives(socket, message),
            },
            Event::ToClient { client, socket, message } if self.cut(client) => {
                let at = self.clients[client].cut_until;
                self.at(at, Event::ToClient { client, socket, message });
            }
            Event::ToClient { client, socket, message } => {
                if self.clients[client].socket == Some((socket, true)) {
                    self.feed(client, Input::Received(message));
                }
            }
            Event::Device { client, request, kind } => {
                self.clients[client].running.insert(request, kind);
                self.feed(client, Input::DeviceOpened { request, device: Some(format!("{kind:?}-{}", request.0)) });
            }
            Event::Op { client, conn, command } => self.operate(client, conn, command),
            Event::Candidate { client, conn, ufrag, n } => {
                if self.clients[client]
                    .pcs
                    .get(&conn)
                    .is_some_and(|pc| pc.local.as_ref().is_some_and(|l| l.ufrag.2 >= ufrag.2))
                {
                    let candidate = Candidate {
                        candidate: format!("{} {} {} {n}", ufrag.0, ufrag.1.0, ufrag.2),
                        sdp_mid: Some("0".into()),
                        sdp_m_line_index: Some(0),
                    };
                    self.feed(client, Input::LocalCandidate { conn, candidate });
                }
            }
            Event::NegotiationNeeded { client, conn, checked } => {
                let pc = self.clients[client].pcs.get(&conn);
                if pc.is_some_and(|pc| !checked || pc.needs_negotiation()) {
                    self.feed(client, Input::NegotiationNeeded { conn });
                }
            }
            Event::RelayPing => {
                self.relay_ping();
                self.after(RELAY_PING_MS, Event::RelayPing);
            }
            Event::Retry => {
                for c in 0..self.clients.len() {
                    if self.in_call[c] && self.clients[c].engine.view().session == Session::Failed {
                        self.feed(c, Input::Join);
                    }
                }
                self.after(RETRY_MS, Event::Retry);
            }
            Event::Expire { peer, epoch } => {
                if self.relay.seats.get(&peer).is_some_and(|s| s.socket.is_none() && s.epoch == epoch) {
                    self.relay_leave(peer);
                }
            }
            Event::Act(c, action) => self.act(c, action),
            Event::Fault(fault) => self.fault(fault),
        }
    }

    fn act(&mut self, c: usize, action: Action) {
        let input = match action {
            Action::Join => {
                self.in_call[c] = true;
                Input::Join
            }
            Action::Leave => {
                self.in_call[c] = false;
                self.camera[c] = false;
                Input::Leave
            }
            Action::TestMicrophone => Input::TestMicrophone,
            Action::Camera(on) => {
                let joined = matches!(self.clients[c].engine.view().session, Session::Joined | Session::Lost);
                if !joined {
                    return;
                }
                self.camera[c] = on;
                Input::Camera(on)
            }
            Action::PickMicrophone(n) => Input::Pick(DeviceKind::Microphone, format!("mic-{n}")),
            Action::Mute(m) => Input::Mute(m),
        };
        self.feed(c, input);
    }

    fn fault(&mut self, fault: Fault) {
        self.log(|| format!("FAULT {fault:?}"));
        match fault {
            Fault::DropSocket(c) => {
                if let Some((socket, _)) = self.clients[c].socket.take() {
                    self.relay_lost(socket);
                    self.feed(c, Input::SocketClosed);
                }
            }
            Fault::HalfOpen(c) => {
                if let Some((socket, true)) = self.clients[c].socket
                    && let Some(s) = self.relay.sockets.get_mut(&socket)
                {
                    s.dead = true;
                }
            }
            Fault::RestartRelay { down_ms } => {
                let sockets: Vec<(u64, usize)> = self.relay.sockets.iter().map(|(id, s)| (*id, s.client)).collect();
                for (socket, client) in sockets {
                    let delay = self.rng.between(1, 20);
                    self.after(delay, Event::ClosedByRelay { client, socket });
                }
                let (epoch, loss, rate_limited) = (self.relay.epoch + 1, self.relay.loss, self.relay.rate_limited);
                self.relay = Relay { up: false, epoch, loss, rate_limited, ..Relay::default() };
                self.after(down_ms, Event::Fault(Fault::RelayUp));
            }
            Fault::RelayUp => self.relay.up = true,
            Fault::Cut { client, ms } => {
                let until = &mut self.clients[client].cut_until;
                *until = (*until).max(self.now + ms);
            }
            Fault::Blackout { client, ms } => {
                let until = &mut self.clients[client].black_until;
                *until = (*until).max(self.now + ms);
            }
            Fault::Glare(a, b) => {
                for (x, y) in [(a, b), (b, a)] {
                    let Some(id) = self.clients[y].engine.me() else { continue };
                    if let Some(peer) = self.clients[x].engine.view().peers.iter().find(|p| p.id == id) {
                        self.feed(x, Input::NegotiationNeeded { conn: peer.conn });
                    }
                }
            }
            Fault::SignalLoss(p) => self.relay.loss = p,
        }
    }

    // ---- the relay ----

    fn relay_send(&mut self, socket: u64, message: ServerMessage, lossy: bool) {
        let Some(s) = self.relay.sockets.get(&socket) else { return };
        let client = s.client;
        if s.dead {
            return;
        }
        let mut copies = 1;
        if lossy && self.rng.chance(self.relay.loss) {
            copies = if self.rng.chance(0.3) { 2 } else { 0 };
        }
        for _ in 0..copies {
            // TCP: what is sent during a cut arrives when the network is back.
            let sent = self.now.max(self.clients[client].cut_until);
            let mut at = (sent + self.rng.between(1, 40)).max(self.relay.sockets[&socket].last_down);
            if lossy && self.rng.chance(self.relay.loss) {
                at += self.rng.between(50, 1_500);
            } else {
                self.relay.sockets.get_mut(&socket).unwrap().last_down = at;
            }
            self.at(at, Event::ToClient { client, socket, message: message.clone() });
        }
    }

    fn deliver(&mut self, to: PeerId, message: ServerMessage, lossy: bool) {
        let Some(seat) = self.relay.seats.get_mut(&to) else { return };
        match seat.socket {
            Some(socket) => self.relay_send(socket, message, lossy),
            None if seat.backlog.len() < 64 => seat.backlog.push(message),
            None => {}
        }
    }

    fn relay_receives(&mut self, socket: u64, message: ClientMessage) {
        let now = self.now;
        let Some(s) = self.relay.sockets.get_mut(&socket) else { return };
        if s.dead {
            return;
        }
        s.last_seen = now;
        // The relay's token bucket.
        s.tokens = (s.tokens + (now - s.at) as f64 / 1000.0 * RELAY_RATE).min(RELAY_BURST);
        s.at = now;
        if let ClientMessage::Leave {} = message {
        } else if s.tokens < 1.0 {
            self.relay.rate_limited += 1;
            return self.relay_send(socket, ServerMessage::error(ErrorCode::RateLimited, "slow down"), false);
        } else {
            s.tokens -= 1.0;
        }
        let seat = s.seat;
        match (message, seat) {
            (ClientMessage::Join { version, resume, .. }, None) => {
                assert_eq!(version, PROTOCOL_VERSION);
                self.relay_join(socket, resume);
            }
            (ClientMessage::Signals { to, seq, ack, signals }, Some(from)) => {
                if self.relay.seats.contains_key(&to) && to != from {
                    self.deliver(to, ServerMessage::Signals { from, seq, ack, signals }, true);
                } else {
                    self.relay_send(socket, ServerMessage::unknown_peer(to), false);
                }
            }
            (ClientMessage::Ping {}, _) => self.relay_send(socket, ServerMessage::Pong {}, false),
            (ClientMessage::Leave {}, Some(peer)) => {
                self.relay.sockets.remove(&socket);
                self.relay_leave(peer);
            }
            (ClientMessage::Leave {}, None) => {
                self.relay.sockets.remove(&socket);
            }
            // A close frame (see `close_frame`): the seat is kept when resuming.
            (ClientMessage::Join { room, .. }, Some(_)) if room.is_empty() => self.relay_lost(socket),
            (message, _) => panic!("the relay got an unexpected {message:?}"),
        }
    }

    fn relay_join(&mut self, socket: u64, resume: Option<String>) {
        let resumed =
            resume.and_then(|token| self.relay.seats.iter().find(|(_, s)| s.token == token).map(|(id, _)| *id));
        let you = match resumed {
            Some(id) => {
                let seat = self.relay.seats.get_mut(&id).unwrap();
                seat.epoch += 1;
                // The socket the seat had is closed ("resumed elsewhere").
                if let Some(old) = seat.socket.replace(socket)
                    && let Some(gone) = self.relay.sockets.remove(&old)
                    && !gone.dead
                {
                    self.after(1, Event::ClosedByRelay { client: gone.client, socket: old });
                }
                id
            }
            None => {
                if self.relay.seats.len() >= 6 {
                    return self.relay_send(socket, ServerMessage::error(ErrorCode::RoomFull, "full"), false);
                }
                self.relay.next_peer += 1;
                let id = PeerId(self.relay.next_peer);
                let token = format!("t{}-{}", self.relay.epoch, id.0);
                self.relay.seats.insert(id, Seat { token, socket: Some(socket), backlog: Vec::new(), epoch: 0 });
                id
            }
        };
        self.relay.sockets.get_mut(&socket).unwrap().seat = Some(you);
        let peers: Vec<PeerId> = self.relay.seats.keys().filter(|p| **p != you).copied().collect();
        let joined = ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            you,
            peers: peers.clone(),
            ice_servers: Vec::new(),
            ice_transport_policy: Default::default(),
            resume: self.relay.seats[&you].token.clone(),
            resumed: resumed.is_some(),
        };
        self.relay_send(socket, joined, false);
        if resumed.is_some() {
            let backlog = std::mem::take(&mut self.relay.seats.get_mut(&you).unwrap().backlog);
            for message in backlog {
                self.relay_send(socket, message, false);
            }
        } else {
            for peer in peers {
                self.deliver(peer, ServerMessage::PeerJoined { peer: you }, false);
            }
        }
    }

    /// The socket dropped (or the client closed it asking to keep the seat): park the seat.
    fn relay_lost(&mut self, socket: u64) {
        let Some(s) = self.relay.sockets.remove(&socket) else { return };
        if let Some(peer) = s.seat
            && let Some(seat) = self.relay.seats.get_mut(&peer)
            && seat.socket == Some(socket)
        {
            seat.socket = None;
            seat.epoch += 1;
            let epoch = seat.epoch;
            self.after(RELAY_GRACE_MS, Event::Expire { peer, epoch });
        }
    }

    fn relay_leave(&mut self, peer: PeerId) {
        if self.relay.seats.remove(&peer).is_some() {
            let others: Vec<PeerId> = self.relay.seats.keys().copied().collect();
            for other in others {
                self.deliver(other, ServerMessage::PeerLeft { peer }, false);
            }
        }
    }

    fn relay_ping(&mut self) {
        let now = self.now;
        let sockets: Vec<u64> = self.relay.sockets.keys().copied().collect();
        for socket in sockets {
            let s = &self.relay.sockets[&socket];
            let client = s.client;
            let answers = !s.dead && !self.cut(client) && self.clients[client].socket == Some((socket, true));
            if answers {
                self.relay.sockets.get_mut(&socket).unwrap().last_seen = now;
            } else if now - s.last_seen >= RELAY_IDLE_MS {
                // Evicted: the room hears at once.
                let seat = self.relay.sockets.remove(&socket).unwrap().seat;
                if let Some(peer) = seat
                    && self.relay.seats.get(&peer).is_some_and(|s| s.socket == Some(socket))
                {
                    self.relay_leave(peer);
                }
            }
        }
    }

    // ---- peer connections ----

    fn new_desc(&mut self, pc: &Pc, c: usize, conn: Conn, reply_to: Option<u64>, video_line: bool) -> Desc {
        self.next_desc += 1;
        Desc {
            id: self.next_desc,
            ufrag: (c, conn, pc.ice_gen),
            audio: pc.sending,
            video: pc.video && video_line,
            video_line,
            reply_to,
        }
    }

    fn operate(&mut self, c: usize, conn: Conn, command: Command) {
        let Some(mut pc) = self.clients[c].pcs.remove(&conn) else { return };
        let old_ufrag = pc.local.as_ref().map(|l| l.ufrag);
        let result: Result<Option<String>, &str> = match command {
            Command::CreateOffer { ice_restart, send, .. } => {
                if send && !pc.sending {
                    let delay = self.rng.between(1, 100);
                    self.after(delay, Event::NegotiationNeeded { client: c, conn, checked: false });
                }
                pc.sending |= send;
                if pc.sig == Sig::HaveRemoteOffer {
                    Err("createOffer in have-remote-offer")
                } else {
                    if ice_restart || pc.ice_gen == 0 {
                        pc.ice_gen += 1;
                    }
                    pc.video_transceiver |= pc.video;
                    let desc = self.new_desc(&pc, c, conn, None, pc.video_transceiver);
                    pc.local = Some(desc.clone());
                    pc.sig = Sig::HaveLocalOffer;
                    Ok(Some(desc.encode()))
                }
            }
            Command::CreateAnswer { send, .. } => {
                pc.sending |= send;
                match (pc.sig, pc.remote.clone()) {
                    (Sig::HaveRemoteOffer, Some(offer)) => {
                        if pc.answered_ufrag != Some(offer.ufrag) || pc.ice_gen == 0 {
                            pc.ice_gen += 1;
                            pc.answered_ufrag = Some(offer.ufrag);
                        }
                        let desc = self.new_desc(&pc, c, conn, Some(offer.id), offer.video_line);
                        pc.local = Some(desc.clone());
                        pc.sig = Sig::Stable;
                        Ok(Some(desc.encode()))
                    }
                    _ => Err("createAnswer without a remote offer"),
                }
            }
            Command::Rollback { .. } => {
                if pc.sig == Sig::Stable {
                    Err("rollback in stable")
                } else {
                    pc.local = pc.stable_local.clone();
                    pc.remote = pc.stable_remote.clone();
                    pc.ice_gen = pc.local.as_ref().map_or(0, |l| l.ufrag.2);
                    pc.sig = Sig::Stable;
                    Ok(None)
                }
            }
            Command::SetRemote { kind: SdpKind::Offer, sdp, .. } => {
                let desc = Desc::decode(&sdp);
                // An offer from another of the peer's connections than the one this one
                // negotiated with: browsers refuse it when it numbers its media sections or
                // header extensions otherwise, as a new connection may.
                let from_another = pc.stable_remote.as_ref().is_some_and(|r| r.ufrag.1 != desc.ufrag.1);
                if pc.sig == Sig::HaveLocalOffer {
                    Err("setRemoteDescription(offer) in have-local-offer")
                } else if from_another && self.rng.chance(0.5) {
                    Err("an offer from another connection, numbered otherwise")
                } else {
                    pc.video_transceiver |= desc.video_line;
                    pc.remote = Some(desc);
                    pc.sig = Sig::HaveRemoteOffer;
                    Ok(None)
                }
            }
            Command::SetRemote { kind: SdpKind::Answer, sdp, .. } => {
                let desc = Desc::decode(&sdp);
                if pc.sig != Sig::HaveLocalOffer || desc.reply_to != pc.local.as_ref().map(|l| l.id) {
                    Err("an answer to another offer")
                } else {
                    pc.remote = Some(desc);
                    pc.sig = Sig::Stable;
                    Ok(None)
                }
            }
            Command::AddCandidates { candidates, .. } => {
                for candidate in candidates {
                    let f: Vec<u64> = candidate.candidate.split(' ').map(|x| x.parse().unwrap()).collect();
                    let ufrag = (f[0] as usize, Conn(f[1]), f[2] as u32);
                    if pc.remote.as_ref().is_some_and(|r| r.ufrag == ufrag) {
                        pc.candidates.insert(ufrag);
                    }
                }
                Ok(None)
            }
            other => unreachable!("{other:?}"),
        };
        if pc.sig == Sig::Stable {
            pc.stable_local = pc.local.clone();
            pc.stable_remote = pc.remote.clone();
        }
        let new_ufrag = pc.local.as_ref().map(|l| l.ufrag);
        let renegotiate = pc.needs_negotiation();
        self.clients[c].pcs.insert(conn, pc);
        if let Some(ufrag) = new_ufrag.filter(|u| Some(*u) != old_ufrag && result.is_ok()) {
            for n in 0..self.rng.between(1, 3) as u32 {
                let delay = self.rng.between(5, 300);
                self.after(delay, Event::Candidate { client: c, conn, ufrag, n });
            }
        }
        if renegotiate {
            self.after(1, Event::NegotiationNeeded { client: c, conn, checked: true });
        }
        match result {
            Ok(description) => self.feed(c, Input::Done { conn, description }),
            Err(error) => self.feed(c, Input::OperationFailed { conn, error: error.into() }),
        }
    }

    /// Connectivity checks for every connection of `c`.
    fn ice(&mut self, c: usize) {
        let conns: Vec<Conn> = self.clients[c].pcs.keys().copied().collect();
        for conn in conns {
            let pc = &self.clients[c].pcs[&conn];
            let pair = pc.local.as_ref().zip(pc.remote.as_ref()).map(|(l, r)| (l.ufrag, r.ufrag));
            let reachable = pair.is_some_and(|(mine, theirs)| {
                let other = theirs.0;
                self.media_up(c, other)
                    && pc.candidates.contains(&theirs)
                    && self.clients[other].pcs.get(&theirs.1).is_some_and(|q| {
                        q.local.as_ref().is_some_and(|l| l.ufrag == theirs)
                            && q.remote.as_ref().is_some_and(|r| r.ufrag == mine)
                            && q.candidates.contains(&mine)
                    })
            });
            let now = self.now;
            let pc = self.clients[c].pcs.get_mut(&conn).unwrap();
            if pc.pair != pair {
                pc.pair = pair;
                if pc.state != Link::Connected || !reachable {
                    pc.since = now;
                    if pc.state == Link::Failed {
                        pc.state = Link::Connecting;
                    }
                }
            }
            let next = match (pc.state, reachable) {
                (Link::Failed, _) => Link::Failed,
                (_, true) => Link::Connected,
                (Link::Connected, false) => {
                    pc.since = now;
                    Link::Disconnected
                }
                (Link::Disconnected, false) if now - pc.since >= DISCONNECTED_TO_FAILED_MS => Link::Failed,
                (Link::Connecting, false) if pair.is_some() && now - pc.since >= CHECKING_TO_FAILED_MS => Link::Failed,
                (state, false) => state,
            };
            if next != pc.state {
                pc.state = next;
                self.feed(c, Input::Connection { conn, state: next });
            }
        }
    }

    // ---- the verdict ----

    fn check(&self) -> Result<(), String> {
        if self.relay.rate_limited > 0 {
            return Err(format!("the relay rate-limited {} messages", self.relay.rate_limited));
        }
        let present: Vec<usize> = (0..self.clients.len()).filter(|&c| self.in_call[c]).collect();
        for &c in &present {
            let client = &self.clients[c];
            let view = client.engine.view();
            if view.session != Session::Joined {
                return Err(format!("#{c} is {:?} ({:?})", view.session, view.failure));
            }
            let expected = present.len() - 1;
            if view.peers.len() != expected {
                return Err(format!("#{c} sees {} peers, not {expected}: {:?}", view.peers.len(), view.peers));
            }
            // Devices: exactly what was asked for.
            let mut wanted: BTreeSet<Request> = client.microphone.into_iter().collect();
            if client.microphone.is_none() {
                return Err(format!("#{c} is in the call without a microphone"));
            }
            if self.camera[c] && view.camera_on {
                wanted.extend(client.camera);
                if client.camera.is_none() {
                    return Err(format!("#{c} asked for the camera and it is not running"));
                }
            }
            let running: BTreeSet<Request> = client.running.keys().copied().collect();
            if running != wanted {
                return Err(format!("#{c} runs {running:?}, wanted {wanted:?}"));
            }
            for peer in &view.peers {
                let pc = &client.pcs[&peer.conn];
                if pc.state != Link::Connected || peer.link != Link::Connected || pc.sig != Sig::Stable {
                    return Err(format!("#{c} to {:?}: {:?}/{:?}, {:?}", peer.id, pc.state, peer.link, pc.sig));
                }
                let local = pc.local.as_ref().unwrap();
                let remote = pc.remote.as_ref().unwrap();
                let other = remote.ufrag.0;
                let q = &self.clients[other].pcs[&remote.ufrag.1];
                if q.remote.as_ref() != Some(local) && q.local.as_ref() != Some(remote) {
                    return Err(format!("#{c} and #{other} disagree on their descriptions"));
                }
                let video = self.camera[c] && view.camera_on;
                if !local.audio || local.video != video {
                    return Err(format!(
                        "#{c} sends #{other} audio {} video {} (camera wanted {video})",
                        local.audio, local.video
                    ));
                }
            }
        }
        for c in (0..self.clients.len()).filter(|&c| !self.in_call[c]) {
            if !self.clients[c].running.is_empty() {
                return Err(format!("#{c} left and still runs {:?}", self.clients[c].running));
            }
        }
        Ok(())
    }
}

fn conn_of(command: &Command) -> Conn {
    match command {
        Command::CreateOffer { conn, .. }
        | Command::CreateAnswer { conn, .. }
        | Command::Rollback { conn }
        | Command::SetRemote { conn, .. }
        | Command::AddCandidates { conn, .. } => *conn,
        other => unreachable!("{other:?}"),
    }
}

/// The simulator's stand-in for a WebSocket close frame on the relay's side: a join with
/// an empty room (never valid), carrying whether the seat is kept.
fn close_frame(resuming: bool) -> ClientMessage {
    if resuming {
        ClientMessage::Join { version: PROTOCOL_VERSION, room: String::new(), resume: None }
    } else {
        ClientMessage::Leave {}
    }
}

/// The script of one run: who does what when, and which faults strike.
fn script(sim: &mut Sim, people: usize) {
    let rng = &mut sim.rng;
    let mut plan: Vec<(u64, Event)> = Vec::new();
    for c in 0..people {
        let join = rng.between(0, 4_000);
        if rng.chance(0.3) {
            plan.push((join.saturating_sub(rng.between(0, 300)), Event::Act(c, Action::TestMicrophone)));
        }
        plan.push((join, Event::Act(c, Action::Join)));
        for _ in 0..rng.between(0, 6) {
            let at = rng.between(join, FAULTS_END_MS + 5_000);
            let action = match rng.below(4) {
                0 | 1 => Action::Camera(rng.chance(0.5)),
                2 => Action::PickMicrophone(rng.below(3) as u32),
                _ => Action::Mute(rng.chance(0.5)),
            };
            plan.push((at, Event::Act(c, action)));
        }
        if rng.chance(0.15) {
            let at = rng.between(join + 1_000, FAULTS_END_MS);
            plan.push((at, Event::Act(c, Action::Leave)));
            plan.push((at + rng.between(0, 10_000), Event::Act(c, Action::Join)));
        }
        plan.push((0, Event::Ice(c)));
    }
    let faults = rng.between(0, 8);
    let mut quiet_from = FAULTS_END_MS;
    for _ in 0..faults {
        let at = rng.between(3_000, FAULTS_END_MS - 5_000);
        let c = rng.below(people as u64) as usize;
        let fault = match rng.below(9) {
            0 => Fault::DropSocket(c),
            1 => Fault::HalfOpen(c),
            2 => Fault::RestartRelay { down_ms: rng.between(0, 3_000) },
            3 => {
                let ms = rng.between(1_000, 40_000);
                quiet_from = quiet_from.max(at + ms);
                Fault::Cut { client: c, ms }
            }
            4 => Fault::Blackout { client: c, ms: rng.between(1_000, 15_000) },
            5 | 6 => Fault::Glare(c, (c + 1 + rng.below(people as u64 - 1) as usize) % people),
            _ => Fault::SignalLoss(rng.below(30) as f64 / 100.0),
        };
        plan.push((at, Event::Fault(fault)));
    }
    plan.push((FAULTS_END_MS, Event::Fault(Fault::SignalLoss(0.0))));
    sim.end = quiet_from + SETTLE_MS;
    for (at, event) in plan {
        sim.at(at, event);
    }
}

fn run_one(seed: u64, trace: bool) -> Result<(), String> {
    let people = 2 + (seed % 5) as usize;
    let mut sim = Sim::new(seed, people, trace);
    script(&mut sim, people);
    let end = sim.end;
    sim.run(end);
    sim.check()
}

fn sweep(runs: u64) {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed = seed.parse().expect("SIM_SEED is a number");
        if let Err(why) = run_one(seed, true) {
            panic!("SIM_SEED={seed}: {why}");
        }
        return;
    }
    let runs = std::env::var("SIM_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(runs);
    let mut failures = Vec::new();
    for seed in 0..runs {
        if let Err(why) = run_one(seed, false) {
            println!("SIM_SEED={seed}: {why}");
            failures.push(seed);
        }
    }
    println!("{} seeded runs, {} failed", runs, failures.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed; replay one with SIM_SEED=<seed>: {:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
}

#[test]
fn every_pair_converges_under_lost_late_and_duplicated_signals() {
    sweep(2_000);
}
