//! The five ways the old page's call died silently, each replayed against the engine: a
//! signal lost in a half-open socket, an offer that came while an answer was being
//! applied, device toggles that raced `getUserMedia`, a relay that speaks a newer protocol,
//! and a mesh join that overran the relay's burst; and the news a person hears of (who came,
//! who went).

use shared::call::{Link, Session};
use shared::engine::{
    ANSWER_WAIT_MS, Candidate, Command, Conn, DeviceError, DeviceKind, Engine, Input, JOIN_ATTEMPTS, PACE_BURST,
    PACE_PER_SECOND, Request, SdpKind,
};
use shared::protocol::{ClientMessage, ErrorCode, ServerMessage, Signal};
use shared::room::{PeerId, RoomId};

/// One engine and a clock: feeds inputs and keeps every command it answered.
struct Page {
    engine: Engine,
    now: u64,
    log: Vec<(u64, Command)>,
    /// Whether the relay answers pings (in these tests, at once).
    pong: bool,
}

impl Page {
    fn new() -> Self {
        Self { engine: Engine::new(RoomId::from_random([3; RoomId::LEN]), 42), now: 0, log: Vec::new(), pong: false }
    }

    fn feed(&mut self, input: Input) -> Vec<Command> {
        self.engine.handle(input, self.now);
        let mut commands = self.engine.commands();
        self.log.extend(commands.iter().map(|c| (self.now, c.clone())));
        if self.pong && commands.contains(&Command::Send(ClientMessage::Ping {})) {
            commands.extend(self.feed(Input::Received(ServerMessage::Pong {})));
        }
        commands
    }

    /// Lets time pass to `until`, ticking at every deadline.
    fn wait(&mut self, until: u64) -> Vec<Command> {
        let mut all = Vec::new();
        while let Some(at) = self.engine.deadline().filter(|at| *at <= until) {
            self.now = at.max(self.now);
            all.extend(self.feed(Input::Tick));
            if self.engine.deadline() == Some(at) {
                self.now += 1;
            }
        }
        self.now = until;
        all
    }

    /// Joins as `you` with `peers` there, microphone and socket working.
    fn join(&mut self, you: u32, peers: &[u32]) {
        self.feed(Input::Join);
        self.feed(Input::DeviceOpened { request: Request(1), device: Some("mic".into()) });
        self.feed(Input::SocketOpened);
        self.feed(joined(you, peers, false));
    }

    fn sent(commands: &[Command]) -> Vec<ClientMessage> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Send(message) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

fn joined(you: u32, peers: &[u32], resumed: bool) -> Input {
    Input::Received(ServerMessage::Joined {
        version: 1,
        you: PeerId(you),
        peers: peers.iter().copied().map(PeerId).collect(),
        ice_servers: Vec::new(),
        ice_transport_policy: Default::default(),
        resume: "token".into(),
        resumed,
    })
}

fn from(peer: u32, seq: u32, ack: u32, signals: Vec<Signal>) -> Input {
    Input::Received(ServerMessage::Signals { from: PeerId(peer), seq, ack, signals })
}

fn offer(sdp: &str) -> Signal {
    Signal::Offer { sdp: sdp.into() }
}

#[test]
fn an_offer_lost_in_a_half_open_socket_is_sent_again_after_the_resume() {
    let mut ana = Page::new();
    ana.join(2, &[1]);
    let made = ana.feed(Input::Done { conn: Conn(1), description: Some("ana's offer".into()) });
    let first = Page::sent(&made);
    assert!(
        matches!(&first[..], [ClientMessage::Signals { seq: 1, signals, .. }] if signals == &[offer("ana's offer")])
    );
    // The socket is half-open: nothing arrives, nothing is acknowledged. The heartbeat
    // gives it up, the page reconnects and resumes its seat.
    let gave_up = ana.wait(30_000);
    assert!(gave_up.contains(&Command::CloseSocket { resuming: true }));
    assert!(gave_up.contains(&Command::OpenSocket));
    assert_eq!(ana.engine.view().session, Session::Lost);
    ana.feed(Input::SocketOpened);
    let resumed = ana.feed(joined(2, &[1], true));
    let again = Page::sent(&resumed);
    assert!(
        again
            .iter()
            .any(|m| matches!(m, ClientMessage::Signals { seq: 1, signals, .. } if signals == &[offer("ana's offer")])),
        "the offer goes again after the resume: {again:?}"
    );
    assert!(
        again.contains(&ClientMessage::Signals { to: PeerId(1), seq: 0, ack: 0, signals: vec![] }),
        "and asks Bo where he is"
    );
    assert_eq!(ana.engine.view().session, Session::Joined);
}

#[test]
fn a_resume_refused_while_the_relays_store_is_down_is_tried_again_and_the_call_goes_on() {
    let mut ana = Page::new();
    ana.join(2, &[1]);
    ana.feed(Input::SocketClosed);
    ana.wait(ana.now + 5_000);
    ana.feed(Input::SocketOpened);
    let refused = ana.feed(Input::Received(ServerMessage::error(ErrorCode::Unavailable, "busy")));
    assert!(refused.contains(&Command::CloseSocket { resuming: true }), "{refused:?}");
    assert_eq!(ana.engine.view().session, Session::Lost);
    assert!(!refused.iter().any(|c| matches!(c, Command::CloseConnection { .. })), "the call's links stay");
    let retried = ana.wait(ana.now + 5_000);
    assert!(retried.contains(&Command::OpenSocket));
    ana.feed(Input::SocketOpened);
    ana.feed(joined(2, &[1], true));
    assert_eq!(ana.engine.view().session, Session::Joined);
}

#[test]
fn a_first_join_refused_while_the_relays_store_is_down_says_busy_and_keeps_trying() {
    let mut ana = Page::new();
    let mut opened = ana.feed(Input::Join);
    opened.extend(ana.feed(Input::DeviceOpened { request: Request(1), device: Some("mic".into()) }));
    // More refusals than the attempts an unreachable relay gets: a busy one answers.
    for _ in 0..JOIN_ATTEMPTS + 2 {
        assert!(opened.contains(&Command::OpenSocket), "{opened:?}");
        ana.feed(Input::SocketOpened);
        ana.feed(Input::Received(ServerMessage::error(ErrorCode::Unavailable, "busy")));
        let view = ana.engine.view();
        assert!(view.busy && view.session == Session::Joining, "{view:?}");
        opened = ana.wait(ana.now + 5_000);
    }
    assert!(opened.contains(&Command::OpenSocket), "{opened:?}");
    ana.feed(Input::SocketOpened);
    ana.feed(joined(1, &[], false));
    let view = ana.engine.view();
    assert!(!view.busy && view.session == Session::Joined, "{view:?}");
}

#[test]
fn nothing_is_written_to_a_socket_that_is_down_it_waits() {
    let mut ana = Page::new();
    ana.join(2, &[1]);
    ana.feed(Input::SocketClosed);
    let while_down = ana.feed(Input::Done { conn: Conn(1), description: Some("offer".into()) });
    assert!(Page::sent(&while_down).is_empty());
    ana.wait(ana.now + 5_000);
    ana.feed(Input::SocketOpened);
    let back = ana.feed(joined(2, &[1], true));
    assert!(Page::sent(&back).iter().any(|m| matches!(m, ClientMessage::Signals { seq: 1, .. })));
}

#[test]
fn an_offer_right_after_an_answer_waits_for_it_instead_of_being_dropped() {
    // Ana (1) is impolite towards Bo (2). She offered; Bo's answer and, right behind it,
    // Bo's own offer (his camera went on) arrive together.
    let mut ana = Page::new();
    ana.join(1, &[]);
    ana.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(2) }));
    ana.feed(Input::NegotiationNeeded { conn: Conn(1) });
    ana.feed(Input::Done { conn: Conn(1), description: Some("ana's offer".into()) });
    let applying = ana.feed(from(2, 1, 1, vec![Signal::Answer { sdp: "bo's answer".into() }, offer("bo's offer")]));
    assert!(applying.contains(&Command::SetRemote { conn: Conn(1), kind: SdpKind::Answer, sdp: "bo's answer".into() }));
    assert!(!applying.iter().any(|c| matches!(c, Command::SetRemote { kind: SdpKind::Offer, .. })), "one at a time");
    // The answer is applied: now stable, so Bo's offer is no collision and is accepted.
    let next = ana.feed(Input::Done { conn: Conn(1), description: None });
    assert!(next.contains(&Command::SetRemote { conn: Conn(1), kind: SdpKind::Offer, sdp: "bo's offer".into() }));
    let answer = ana.feed(Input::Done { conn: Conn(1), description: None });
    assert!(answer.contains(&Command::CreateAnswer { conn: Conn(1), send: false }));
}

#[test]
fn glare_resolves_by_politeness_with_a_rollback() {
    // Bo (2) is polite towards Ana (1); both offer at once.
    let mut bo = Page::new();
    bo.join(2, &[1]);
    bo.feed(Input::Done { conn: Conn(1), description: Some("bo's offer".into()) });
    let yields = bo.feed(from(1, 1, 0, vec![offer("ana's offer")]));
    assert!(yields.contains(&Command::Rollback { conn: Conn(1) }));
    let applies = bo.feed(Input::Done { conn: Conn(1), description: None });
    assert!(applies.contains(&Command::SetRemote { conn: Conn(1), kind: SdpKind::Offer, sdp: "ana's offer".into() }));
}

#[test]
fn a_link_that_fails_is_restarted_and_one_that_never_connects_is_retried() {
    let mut ana = Page::new();
    ana.join(2, &[1]);
    ana.feed(Input::Done { conn: Conn(1), description: Some("offer".into()) });
    ana.feed(from(1, 1, 1, vec![Signal::Answer { sdp: "answer".into() }]));
    ana.feed(Input::Done { conn: Conn(1), description: None });
    ana.feed(Input::Connection { conn: Conn(1), state: Link::Connected });
    ana.feed(Input::Connection { conn: Conn(1), state: Link::Failed });
    // Ana is the polite one (the later member): she lets Bo go first for 1.5 s.
    let restart = ana.wait(ana.now + 1_600);
    assert!(
        restart.contains(&Command::CreateOffer { conn: Conn(1), ice_restart: true, send: false }),
        "ICE restart soon after a failure: {restart:?}"
    );
    // Nobody answers the restart: after a while the offer is rolled back and made again.
    ana.feed(Input::Done { conn: Conn(1), description: Some("restart".into()) });
    ana.feed(from(1, 2, 2, vec![]));
    let retry = ana.wait(ana.now + 10_000);
    assert!(retry.contains(&Command::Rollback { conn: Conn(1) }), "{retry:?}");
}

#[test]
fn camera_on_then_off_before_it_opens_leaves_nothing_running() {
    let mut ana = Page::new();
    ana.join(1, &[]);
    let on = ana.feed(Input::Camera(true));
    let Some(Command::OpenDevice { request, kind: DeviceKind::Camera, .. }) = on.first().cloned() else {
        panic!("expected a camera opening: {on:?}")
    };
    assert!(ana.feed(Input::Camera(true)).is_empty(), "on twice opens once");
    ana.feed(Input::Camera(false));
    let late = ana.feed(Input::DeviceOpened { request, device: Some("cam".into()) });
    assert_eq!(late, [Command::StopDevice { request }]);
    assert!(!ana.engine.view().camera_on);
}

#[test]
fn testing_the_microphone_then_joining_opens_it_once() {
    let mut ana = Page::new();
    let test = ana.feed(Input::TestMicrophone);
    let join = ana.feed(Input::Join);
    let openings = test.iter().chain(&join).filter(|c| matches!(c, Command::OpenDevice { .. })).count();
    assert_eq!(openings, 1);
    assert!(!join.contains(&Command::OpenSocket), "the socket waits for the microphone");
    let opened = ana.feed(Input::DeviceOpened { request: Request(1), device: None });
    assert!(opened.contains(&Command::UseDevice { request: Request(1) }));
    assert!(opened.contains(&Command::OpenSocket));
}

#[test]
fn leaving_while_the_microphone_opens_stops_it_when_it_comes() {
    let mut ana = Page::new();
    ana.feed(Input::Join);
    ana.feed(Input::Leave);
    let late = ana.feed(Input::DeviceOpened { request: Request(1), device: None });
    assert_eq!(late, [Command::StopDevice { request: Request(1) }]);
}

#[test]
fn messages_from_a_newer_relay_are_ignored_not_fatal() {
    let mut ana = Page::new();
    ana.join(1, &[]);
    let wire = [r#"{"type":"room_closing","in":30}"#, r#"{"type":"error","code":"too_tired","message":""}"#];
    for frame in wire {
        let message = ServerMessage::decode(frame).expect("a newer relay's frame still reads");
        ana.feed(Input::Received(message));
    }
    assert_eq!(ana.engine.view().session, Session::Joined);
    assert_eq!(ana.engine.view().failure, None);
}

#[test]
fn a_six_person_mesh_join_stays_under_the_relay_burst() {
    // A newcomer on a dual-stack phone with TURN: five offers, and ten candidates for each
    // connection trickling over half a second.
    let mut ana = Page::new();
    ana.pong = true;
    ana.join(6, &[1, 2, 3, 4, 5]);
    for conn in 1..=5 {
        ana.feed(Input::Done { conn: Conn(conn), description: Some(format!("offer {conn}")) });
    }
    for n in 0..10 {
        ana.now += 50;
        for conn in 1..=5 {
            let candidate = Candidate { candidate: format!("candidate {n}"), sdp_mid: None, sdp_m_line_index: None };
            ana.feed(Input::LocalCandidate { conn: Conn(conn), candidate });
        }
    }
    ana.wait(10_000);
    let sent: Vec<(u64, ClientMessage)> = ana
        .log
        .iter()
        .filter_map(|(at, c)| match c {
            Command::Send(m) => Some((*at, m.clone())),
            _ => None,
        })
        .collect();
    // The relay's bucket: 60 at once, 20 a second.
    let mut tokens = 60.0_f64;
    let mut last = 0;
    for (at, _) in &sent {
        tokens = (tokens + (at - last) as f64 / 50.0).min(60.0);
        last = *at;
        tokens -= 1.0;
        assert!(tokens >= 0.0, "over the relay's rate at {at} ms");
    }
    let in_first_second = sent.iter().filter(|(at, _)| *at < 1_000).count();
    let pace = (PACE_BURST + PACE_PER_SECOND) as usize;
    assert!(in_first_second <= pace, "{in_first_second} messages in the first second");
    // Everything got out: every offer and all fifty candidates.
    let delivered: usize = sent
        .iter()
        .map(|(_, m)| match m {
            ClientMessage::Signals { signals, .. } => signals.len(),
            _ => 0,
        })
        .sum();
    assert!(delivered >= 55, "only {delivered} signals went out");
    // Distinct numbered messages (nobody acknowledges here, so some go again later).
    let numbered: std::collections::BTreeSet<(PeerId, u32)> = sent
        .iter()
        .filter_map(|(_, m)| match m {
            ClientMessage::Signals { to, seq, .. } if *seq > 0 => Some((*to, *seq)),
            _ => None,
        })
        .collect();
    let messages = numbered.len();
    println!("a 6-person join: {messages} messages for 55 signals, {in_first_second} in the first second");
    assert!(messages < 55, "candidates that wait for the pacer go out together: {messages} messages");
}

#[test]
fn an_offer_from_the_peers_new_connection_that_ours_refuses_is_answered_on_a_new_one() {
    // Ana's connection to Bo broke and Ana made a new one; its offer numbers its media
    // sections afresh, and Bo's browser refuses it on the old connection ("RTP extension ID
    // reassignment not supported", seen in rooms of six). Bo makes a new connection of its
    // own to answer that offer, with the candidates that followed it.
    let mut bo = Page::new();
    bo.join(1, &[]);
    bo.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(2) }));
    bo.feed(from(2, 1, 0, vec![offer("ana's offer")]));
    bo.feed(Input::Done { conn: Conn(1), description: None });
    bo.feed(Input::Done { conn: Conn(1), description: Some("bo's answer".into()) });
    bo.feed(Input::Connection { conn: Conn(1), state: Link::Connected });
    let candidate = Signal::Candidate { candidate: "candidate:2".into(), sdp_mid: None, sdp_m_line_index: Some(0) };
    let applying = bo.feed(from(2, 2, 1, vec![offer("ana's new offer"), candidate.clone()]));
    assert!(applying.iter().any(|c| matches!(c, Command::SetRemote { conn: Conn(1), kind: SdpKind::Offer, .. })));
    let renewed = bo.feed(Input::OperationFailed { conn: Conn(1), error: "InvalidAccessError".into() });
    assert_eq!(renewed[0], Command::CloseConnection { conn: Conn(1) }, "{renewed:?}");
    assert!(matches!(renewed[1], Command::OpenConnection { conn: Conn(2), peer: PeerId(2), .. }), "{renewed:?}");
    let sdp = "ana's new offer".to_owned();
    assert!(renewed.contains(&Command::SetRemote { conn: Conn(2), kind: SdpKind::Offer, sdp }), "{renewed:?}");
    // The answer first: the candidates fit as well after it, and Ana waits for it.
    let answering = bo.feed(Input::Done { conn: Conn(2), description: None });
    assert!(answering.contains(&Command::CreateAnswer { conn: Conn(2), send: true }), "{answering:?}");
    let answered = bo.feed(Input::Done { conn: Conn(2), description: Some("bo's new answer".into()) });
    assert!(
        Page::sent(&answered).iter().any(|m| matches!(m, ClientMessage::Signals { signals, .. }
            if signals == &[Signal::Answer { sdp: "bo's new answer".into() }])),
        "{answered:?}"
    );
    assert!(answered.iter().any(|c| matches!(c, Command::AddCandidates { conn: Conn(2), .. })), "{answered:?}");
    let shown: Vec<Conn> = bo.engine.view().peers.iter().map(|p| p.conn).collect();
    assert_eq!(shown, [Conn(2)]);

    // A new connection that refuses an offer too is not replaced again: that offer is bad.
    bo.feed(Input::Done { conn: Conn(2), description: None });
    bo.feed(from(2, 3, 2, vec![offer("a bad offer")]));
    let refused = bo.feed(Input::OperationFailed { conn: Conn(2), error: "InvalidAccessError".into() });
    assert!(!refused.iter().any(|c| matches!(c, Command::OpenConnection { .. })), "{refused:?}");
}

#[test]
fn a_peer_that_renewed_its_connection_is_answered_on_a_new_one_and_a_double_renewal_settles() {
    // Bo (id 1, impolite) and Ana (id 2, polite) are connected.
    let connected = |me: u32, them: u32| {
        let mut page = Page::new();
        page.join(me, &[]);
        page.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(them) }));
        page.feed(from(them, 1, 0, vec![offer("the offer")]));
        page.feed(Input::Done { conn: Conn(1), description: None });
        page.feed(Input::Done { conn: Conn(1), description: Some("the answer".into()) });
        page.feed(Input::Connection { conn: Conn(1), state: Link::Connected });
        page
    };
    // Ana renewed: Bo makes a new connection to answer her new offer, without trying it on
    // the old one.
    let mut bo = connected(1, 2);
    let renewed = bo.feed(from(2, 2, 1, vec![Signal::Renew {}, offer("ana's new offer")]));
    assert_eq!(renewed[0], Command::CloseConnection { conn: Conn(1) }, "{renewed:?}");
    assert!(matches!(renewed[1], Command::OpenConnection { conn: Conn(2), .. }), "{renewed:?}");
    let sdp = "ana's new offer".to_owned();
    assert!(renewed.contains(&Command::SetRemote { conn: Conn(2), kind: SdpKind::Offer, sdp }), "{renewed:?}");

    // Both renew at once. Bo, impolite, keeps his new connection and ignores Ana's renewal
    // and her offer; Ana, polite, drops hers and answers Bo's on a third.
    let mut bo = connected(1, 2);
    bo.feed(Input::DtlsFailed { conn: Conn(1) });
    bo.feed(Input::Done { conn: Conn(2), description: Some("bo's new offer".into()) });
    let ignored = bo.feed(from(2, 2, 1, vec![Signal::Renew {}, offer("ana's new offer")]));
    assert!(
        !ignored.iter().any(|c| matches!(c, Command::OpenConnection { .. } | Command::SetRemote { .. })),
        "{ignored:?}"
    );
    let mut ana = connected(2, 1);
    ana.feed(Input::DtlsFailed { conn: Conn(1) });
    ana.feed(Input::Done { conn: Conn(2), description: Some("ana's new offer".into()) });
    let answering = ana.feed(from(1, 2, 1, vec![Signal::Renew {}, offer("bo's new offer")]));
    assert!(
        matches!(
            answering[..2],
            [Command::CloseConnection { conn: Conn(2) }, Command::OpenConnection { conn: Conn(3), .. }]
        ),
        "{answering:?}"
    );
    let sdp = "bo's new offer".to_owned();
    assert!(answering.contains(&Command::SetRemote { conn: Conn(3), kind: SdpKind::Offer, sdp }), "{answering:?}");
}

#[test]
fn a_link_that_never_connects_shows_as_failed_after_the_connect_timeout_and_is_still_tried() {
    // A wrong TURN secret with relay-only ICE: no candidate pair, and the browser may
    // never say `failed` by itself. Bo answers every offer; nothing connects.
    let mut ana = Page::new();
    ana.join(2, &[1]);
    let timeout = shared::call::CONNECT_TIMEOUT.as_millis() as u64;
    let (mut bo_seq, mut restarts, mut conn) = (0, 0, Conn(1));
    let mut new_connections = Vec::new();
    while ana.now < timeout + 1_000 {
        ana.wait(ana.now + 100);
        // Everything Ana asked for since the last round, answered as the browser and Bo would.
        for command in ana.log.split_off(0).into_iter().map(|(_, c)| c) {
            match command {
                Command::OpenConnection { conn: opened, .. } => {
                    conn = opened;
                    new_connections.push((ana.now, restarts));
                }
                Command::CreateOffer { ice_restart, .. } => {
                    restarts += usize::from(ice_restart);
                    ana.feed(Input::Done { conn, description: Some("offer".into()) });
                }
                Command::Send(ClientMessage::Signals { seq, signals, .. }) if !signals.is_empty() => {
                    bo_seq += 1;
                    ana.feed(from(1, bo_seq, seq, vec![Signal::Answer { sdp: "answer".into() }]));
                }
                Command::SetRemote { .. } | Command::Rollback { .. } => {
                    ana.feed(Input::Done { conn, description: None });
                }
                _ => {}
            }
        }
        let shown = ana.engine.view().peers[0].link;
        let expected = if ana.now < timeout { Link::Connecting } else { Link::Failed };
        assert_eq!(shown, expected, "at {} ms", ana.now);
    }
    // Two ICE restarts in vain, then a new connection (which offers at once), then its own
    // first restart.
    assert_eq!(restarts, 3, "renegotiated {restarts} times");
    assert!(
        matches!(new_connections[..], [(_, 0), (at, 2)] if at < timeout),
        "connections opened (at ms, after restarts): {new_connections:?}"
    );
    ana.feed(Input::Connection { conn, state: Link::Connected });
    assert_eq!(ana.engine.view().peers[0].link, Link::Connected);
}

#[test]
fn negotiationneeded_for_the_tracks_of_our_own_offer_costs_no_second_round() {
    let mut bo = Page::new();
    bo.join(2, &[1]);
    // Chromium fires `negotiationneeded` for the tracks the first offer is adding, before
    // that offer is even set.
    bo.feed(Input::NegotiationNeeded { conn: Conn(1) });
    bo.feed(Input::Done { conn: Conn(1), description: Some("offer".into()) });
    bo.feed(from(1, 1, 1, vec![Signal::Answer { sdp: "answer".into() }]));
    let stable = bo.feed(Input::Done { conn: Conn(1), description: None });
    assert!(!stable.iter().any(|c| matches!(c, Command::CreateOffer { .. })), "{stable:?}");
    // Once stable, a real change (the camera) is negotiated.
    let camera = bo.feed(Input::NegotiationNeeded { conn: Conn(1) });
    assert!(camera.contains(&Command::CreateOffer { conn: Conn(1), ice_restart: false, send: false }));
}

#[test]
fn a_connection_whose_dtls_failed_is_replaced_by_a_new_one_that_offers() {
    // Bo was there; Ana arrives and offers; Bo answers. ICE connects, DTLS fails: no ICE
    // restart redoes DTLS, so Bo makes a new connection, which offers although Bo is the
    // one who waits for offers, and the numbered signals go on.
    let mut bo = Page::new();
    bo.join(1, &[]);
    bo.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(2) }));
    let applying = bo.feed(from(2, 1, 0, vec![offer("ana's offer")]));
    assert!(applying.iter().any(|c| matches!(c, Command::SetRemote { conn: Conn(1), kind: SdpKind::Offer, .. })));
    bo.feed(Input::Done { conn: Conn(1), description: None });
    let answered = bo.feed(Input::Done { conn: Conn(1), description: Some("bo's answer".into()) });
    assert!(Page::sent(&answered).iter().any(|m| matches!(m, ClientMessage::Signals { seq: 1, .. })));
    let replaced = bo.feed(Input::DtlsFailed { conn: Conn(1) });
    assert_eq!(replaced[0], Command::CloseConnection { conn: Conn(1) });
    assert!(matches!(replaced[1], Command::OpenConnection { conn: Conn(2), peer: PeerId(2), .. }));
    assert!(replaced.contains(&Command::CreateOffer { conn: Conn(2), ice_restart: false, send: true }), "{replaced:?}");
    // Ana is told, so that she answers on a new connection too.
    assert!(
        Page::sent(&replaced)
            .iter()
            .any(|m| matches!(m, ClientMessage::Signals { seq: 2, signals, .. } if signals == &[Signal::Renew {}])),
        "{replaced:?}"
    );
    let offered = bo.feed(Input::Done { conn: Conn(2), description: Some("bo's new offer".into()) });
    assert!(
        Page::sent(&offered).iter().any(
            |m| matches!(m, ClientMessage::Signals { seq: 3, signals, .. } if signals == &[offer("bo's new offer")])
        ),
        "{offered:?}"
    );
    // Ana's answer lands on the new connection, which is the one shown.
    let applying = bo.feed(from(2, 2, 3, vec![Signal::Answer { sdp: "ana's answer".into() }]));
    assert!(applying.iter().any(|c| matches!(c, Command::SetRemote { conn: Conn(2), kind: SdpKind::Answer, .. })));
    let shown: Vec<Conn> = bo.engine.view().peers.iter().map(|p| p.conn).collect();
    assert_eq!(shown, [Conn(2)]);
}

#[test]
fn comings_and_goings_count_those_who_come_after_us_not_those_already_there() {
    let mut page = Page::new();
    page.join(2, &[1]);
    assert_eq!((page.engine.view().comings, page.engine.view().goings), (0, 0), "Guest 1 was there");
    page.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(3) }));
    // A newcomer whose first signal came before the relay's word is one arrival, not two.
    page.feed(from(4, 1, 0, vec![offer("v=0")]));
    page.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(4) }));
    assert_eq!(page.engine.view().comings, 2);
    page.feed(Input::Received(ServerMessage::PeerLeft { peer: PeerId(1) }));
    // Told twice (a late `unknown_peer` after `peer_left`): one departure.
    page.feed(Input::Received(ServerMessage::PeerLeft { peer: PeerId(1) }));
    assert_eq!((page.engine.view().comings, page.engine.view().goings), (2, 1));
}

#[test]
fn a_listener_joins_without_a_microphone_and_talks_once_it_turns_one_on() {
    let mut page = Page::new();
    let commands = page.feed(Input::Listen);
    assert_eq!(commands, [Command::OpenSocket], "no microphone asked for");
    page.feed(Input::SocketOpened);
    page.feed(joined(2, &[1], false));
    assert!(page.engine.view().listening);
    assert_eq!(page.engine.view().session, Session::Joined);

    // Refused: the call goes on, listening, and says why.
    page.feed(Input::Mute(false));
    page.feed(Input::DeviceFailed { request: Request(1), error: DeviceError::Denied });
    let view = page.engine.view();
    assert_eq!((view.session, view.listening), (Session::Joined, true));
    assert_eq!(view.device_failure.map(|f| f.kind), Some(DeviceKind::Microphone));

    // Allowed: it goes on every connection, unmuted.
    page.feed(Input::Mute(false));
    let commands = page.feed(Input::DeviceOpened { request: Request(2), device: Some("mic".into()) });
    assert_eq!(commands, [Command::UseDevice { request: Request(2) }, Command::Mute(false)]);
    let view = page.engine.view();
    assert!(!view.listening && !view.muted && view.device_failure.is_none());
}

#[test]
fn on_a_starved_page_a_late_offer_is_waited_for_not_collided_with() {
    // Bo was there; Ana arrives and offers, but her page takes seconds to make the offer.
    let mut bo = Page::new();
    bo.join(1, &[]);
    bo.feed(Input::Received(ServerMessage::PeerJoined { peer: PeerId(2) }));
    let waited = bo.wait(20_000);
    assert!(!waited.iter().any(|c| matches!(c, Command::CreateOffer { .. })), "Bo offered over Ana's: {waited:?}");
    let applying = bo.feed(from(2, 1, 0, vec![offer("ana's late offer")]));
    assert!(applying.iter().any(|c| matches!(c, Command::SetRemote { kind: SdpKind::Offer, .. })), "{applying:?}");

    // Ana's own side: her offer, made in 7 s, gets its while to be answered from when it
    // went out, not from when she started.
    let mut ana = Page::new();
    ana.join(2, &[1]);
    assert!(ana.log.iter().any(|(_, c)| matches!(c, Command::CreateOffer { ice_restart: false, .. })));
    ana.now = 7_000;
    ana.feed(Input::Done { conn: Conn(1), description: Some("ana's offer".into()) });
    let waited = ana.wait(7_000 + ANSWER_WAIT_MS - 100);
    assert!(!waited.iter().any(|c| matches!(c, Command::Rollback { .. })), "rolled back too soon: {waited:?}");
}

#[test]
fn the_screen_is_shared_in_the_call_only_and_a_closed_picker_is_no_news() {
    let mut page = Page::new();
    assert!(page.feed(Input::Screen(true)).is_empty(), "shared before joining");
    page.join(2, &[1]);
    let asked = page.feed(Input::Screen(true));
    assert!(matches!(asked[..], [Command::OpenDevice { request: Request(2), kind: DeviceKind::Screen, .. }]));
    assert!(page.engine.view().sharing);
    // The person closes the browser's picker.
    page.feed(Input::DeviceFailed { request: Request(2), error: DeviceError::Denied });
    let view = page.engine.view();
    assert!(!view.sharing && view.device_failure.is_none());

    page.feed(Input::Screen(true));
    let used = page.feed(Input::DeviceOpened { request: Request(3), device: None });
    assert_eq!(used, [Command::UseDevice { request: Request(3) }]);
    // The browser's own "stop sharing".
    assert_eq!(page.feed(Input::Screen(false)), [Command::StopDevice { request: Request(3) }]);
    assert!(!page.engine.view().sharing);
}
