//! One peer connection's negotiation: perfect negotiation, one browser operation at a
//! time, and the convergence rule that renegotiates a link that is not healthy.
//!
//! The browser's `RTCPeerConnection` runs each operation asynchronously; the old page ran
//! each incoming signal in its own task, so an offer arriving while an answer was being
//! applied saw a half-changed connection. Here a link hands out one operation and waits
//! for its result before the next: incoming signals wait in order in `inbox`. That makes
//! `isSettingRemoteAnswerPending` unnecessary: nothing is ever "pending" when a decision is
//! taken.

use std::collections::VecDeque;

use super::{Candidate, Command, Conn, SdpKind};
use crate::call::{CONNECT_TIMEOUT, Link as LinkState};
use crate::negotiation::{self, OfferAction, Role};
use crate::protocol::Signal;

/// A dropped link gets this long to come back by itself before an ICE restart.
pub const RESTART_DISCONNECTED_MS: u64 = 3_000;
/// A new link that offers first gets this long to connect before it is renegotiated. One
/// that answers waits for the peer's offer, which the numbered signals deliver: its own
/// offer would only collide with it (seen on pages starved of CPU, where an offer took 6 s
/// to make); once the offer is answered, it gets [`RETRY_MIN_MS`] to connect.
pub const FIRST_CONNECT_MS: u64 = 8_000;
/// Our offer gets this long to be answered, from when it went out, before it is rolled
/// back and made again. Delivered (the numbered signals are acknowledged), an offer is
/// answered unless the peer's page is stuck: rolled back while the answer was on its way,
/// it left the peer checking candidates nobody gathers any more (seen on pages starved of
/// CPU, where an answer took 5 s).
pub const ANSWER_WAIT_MS: u64 = 10_000;
/// After a renegotiation, the wait before the next one doubles from this...
pub const RETRY_MIN_MS: u64 = 4_000;
/// ...up to this.
pub const RETRY_MAX_MS: u64 = 20_000;
/// A link still not up after this many renegotiations is renegotiated no more: it gets a
/// new connection instead. Whatever broke inside the browser's connection (seen: DTLS that
/// failed on a page starved of CPU while ICE connected, which no ICE restart redoes), a new
/// one starts clean, as Jitsi and Meet start over after their ICE restarts fail.
pub const RENEGOTIATIONS_BEFORE_NEW_CONNECTION: u32 = 2;
/// The polite side waits this much longer than the impolite one, so that the two rarely
/// restart at once (which works, but costs a round).
const POLITE_EXTRA_MS: u64 = 1_500;

/// Why a link needs a new connection in place of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Ours is broken (renegotiated in vain, or DTLS failed): the peer is told
    /// ([`Signal::Renew`]) and the new one offers.
    Offer,
    /// The peer renewed its connection (it said so, or its offer came from a new one, which
    /// ours refused: media sections or header extensions numbered afresh). The new one
    /// answers its offer.
    Answer,
}

/// The signaling state, as our own operations leave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signaling {
    /// No offer outstanding.
    Stable,
    /// Our offer is out; waiting for the answer.
    HaveLocalOffer,
    /// Their offer is applied; our answer is next.
    HaveRemoteOffer,
}

/// The operation the browser is carrying out for this link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Offer,
    Answer,
    Remote(SdpKind),
    Rollback,
    Candidates,
}

/// One remote peer's connection, as the engine sees it.
#[derive(Debug)]
pub struct Link {
    conn: Conn,
    role: Role,
    /// What `connectionState` last said.
    pub state: LinkState,
    signaling: Signaling,
    op: Option<Op>,
    inbox: VecDeque<Signal>,
    /// Candidates of an offer we ignored in a collision: they cannot be added.
    ignoring: bool,
    /// Our microphone (and camera) go on this connection.
    sending: bool,
    /// The browser asked for negotiation (our tracks changed) and we have not offered yet.
    wants_offer: bool,
    /// Our next offer restarts ICE.
    wants_restart: bool,
    /// Renegotiate if the link is not healthy by then.
    deadline: Option<u64>,
    /// When our offer outstanding went out: it is not rolled back before
    /// [`ANSWER_WAIT_MS`] from then, whatever the deadline.
    offered_at: Option<u64>,
    retries: u32,
    /// The engine is to replace the connection ([`Renewal`]).
    renewal: Option<Renewal>,
    /// The offer being applied, kept in case the browser refuses it ([`Renewal::Answer`]).
    applying: Option<String>,
    /// Made to answer an offer the old connection refused: refused again, it is not
    /// replaced again.
    answering_anew: bool,
    /// Made in place of a broken one, and its first offer not answered yet: the peer was
    /// told ([`Signal::Renew`]). If the peer renewed at the same time, the impolite side's
    /// renewal stands.
    offering_anew: bool,
    /// Until the link first connects: when the person is told it cannot connect
    /// ([`CONNECT_TIMEOUT`]; the engine goes on trying). Some browsers never report `failed`
    /// for a connection that found no candidate pair at all.
    give_up_at: Option<u64>,
    given_up: bool,
}

impl Link {
    /// A new connection; `role` says whether we offer first.
    pub fn new(conn: Conn, role: Role, now: u64) -> Self {
        Self {
            conn,
            role,
            state: LinkState::Connecting,
            signaling: Signaling::Stable,
            op: None,
            inbox: VecDeque::new(),
            ignoring: false,
            sending: false,
            wants_offer: role.offers_first,
            wants_restart: false,
            deadline: role.offers_first.then_some(now + FIRST_CONNECT_MS),
            offered_at: None,
            retries: 0,
            renewal: None,
            applying: None,
            answering_anew: false,
            offering_anew: false,
            give_up_at: Some(now + CONNECT_TIMEOUT.as_millis() as u64),
            given_up: false,
        }
    }

    /// A new link to the same peer on `conn`, in place of this one, which offers first
    /// whatever its role did (the peer's connection is already set up and waits for none).
    /// A link never up keeps its time to give up: the person is not told "connecting"
    /// afresh.
    pub fn renewed(&self, conn: Conn, now: u64) -> Self {
        Self {
            offering_anew: true,
            give_up_at: self.give_up_at,
            given_up: self.given_up,
            ..Self::new(conn, Role { offers_first: true, ..self.role }, now)
        }
    }

    /// A new link to the same peer on `conn`, in place of this one, for the peer's offer
    /// this one could not apply: it takes the signals waiting here, that offer first.
    pub fn renewed_to_answer(&mut self, conn: Conn, now: u64) -> Self {
        Self {
            inbox: std::mem::take(&mut self.inbox),
            answering_anew: true,
            give_up_at: self.give_up_at,
            given_up: self.given_up,
            ..Self::new(conn, Role { offers_first: false, ..self.role }, now)
        }
    }

    /// The state to show: a link that has not connected for [`CONNECT_TIMEOUT`] shows as
    /// failed.
    pub fn shown(&self) -> LinkState {
        if self.given_up && self.state != LinkState::Connected { LinkState::Failed } else { self.state }
    }

    /// When the link is given up, if it has not connected by then.
    pub fn give_up_at(&self) -> Option<u64> {
        self.give_up_at
    }

    /// Whether the link needs a new connection, and which way it starts.
    pub fn renewal(&self) -> Option<Renewal> {
        self.renewal
    }

    /// Whether the link is up and nothing is being negotiated.
    pub fn healthy(&self) -> bool {
        self.state == LinkState::Connected && self.signaling == Signaling::Stable && self.op.is_none()
    }

    /// Signals from the peer, in order.
    pub fn receive(&mut self, signals: impl IntoIterator<Item = Signal>) {
        self.inbox.extend(signals);
    }

    /// The browser wants a new offer (a track was added or changed direction). Heard while
    /// a negotiation is under way, it is dropped: the browser fires it again on returning
    /// to stable if that negotiation did not cover the change (and Chromium fires it for
    /// the tracks our own offer is adding, which would cost a needless second round).
    pub fn negotiation_needed(&mut self) {
        let negotiating = self.signaling != Signaling::Stable || !matches!(self.op, None | Some(Op::Candidates));
        if !negotiating {
            self.wants_offer = true;
        }
    }

    /// `connectionState` changed.
    pub fn connection(&mut self, state: LinkState, now: u64) {
        self.state = state;
        if state == LinkState::Connected {
            self.give_up_at = None;
            self.given_up = false;
        }
        match state {
            LinkState::Connected if self.signaling == Signaling::Stable => {
                self.deadline = None;
                self.retries = 0;
            }
            LinkState::Connected | LinkState::Connecting => {}
            LinkState::Disconnected => self.renegotiate_by(now + RESTART_DISCONNECTED_MS),
            LinkState::Failed => self.renegotiate_by(now),
        }
    }

    /// We are back with the relay after a while away: whatever is not healthy gets a fresh
    /// negotiation soon, once what was outstanding had a chance to arrive.
    pub fn resumed(&mut self, now: u64) {
        if !self.healthy() {
            self.renegotiate_by(now + RESTART_DISCONNECTED_MS);
        }
    }

    fn renegotiate_by(&mut self, at: u64) {
        let at = if self.role.polite { at + POLITE_EXTRA_MS } else { at };
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// When [`Link::poll`] has something to do without new input.
    pub fn deadline(&self) -> Option<u64> {
        self.due().filter(|_| self.op.is_none())
    }

    /// When the link is renegotiated if it is not healthy: at its deadline, but an offer
    /// outstanding first gets its while to be answered (made on a page starved of CPU, it
    /// may have gone out just before).
    fn due(&self) -> Option<u64> {
        let offered = self.offered_at.filter(|_| self.signaling == Signaling::HaveLocalOffer);
        self.deadline.map(|at| offered.map_or(at, |offered| at.max(offered + ANSWER_WAIT_MS)))
    }

    /// The result of the operation in flight; `description` is the local SDP an offer or an
    /// answer produced. Returns the signal to send the peer, if any.
    pub fn done(&mut self, description: Option<String>, now: u64) -> Option<Signal> {
        self.applying = None;
        let op = self.op.take()?;
        match op {
            Op::Offer => {
                self.signaling = Signaling::HaveLocalOffer;
                self.offered_at = Some(now);
                description.map(|sdp| Signal::Offer { sdp })
            }
            Op::Answer => {
                self.signaling = Signaling::Stable;
                self.settled(now);
                description.map(|sdp| Signal::Answer { sdp })
            }
            Op::Remote(SdpKind::Offer) => {
                self.signaling = Signaling::HaveRemoteOffer;
                None
            }
            Op::Remote(SdpKind::Answer) => {
                self.signaling = Signaling::Stable;
                self.offering_anew = false;
                self.settled(now);
                None
            }
            Op::Rollback => {
                self.signaling = Signaling::Stable;
                self.settled(now);
                None
            }
            Op::Candidates => None,
        }
    }

    /// Back to stable: if the link is up, it is healthy; if not, it has a while to connect.
    fn settled(&mut self, now: u64) {
        if self.state == LinkState::Connected {
            self.deadline = None;
            self.retries = 0;
        } else if self.deadline.is_none() {
            self.renegotiate_by(now + RETRY_MIN_MS);
        }
    }

    /// The operation in flight failed. The browser leaves its state as it was; the link
    /// is renegotiated soon.
    pub fn failed(&mut self, now: u64) {
        let refused = self.applying.take();
        match self.op.take() {
            Some(Op::Remote(SdpKind::Offer)) if !self.answering_anew => {
                // Refused as a whole: an offer from a new connection of the peer's.
                if let Some(sdp) = refused {
                    self.inbox.push_front(Signal::Offer { sdp });
                    self.renewal = Some(Renewal::Answer);
                }
            }
            None | Some(Op::Candidates) => {}
            // A rollback fails only when there is nothing to roll back: the browser is stable.
            Some(Op::Rollback) => {
                self.signaling = Signaling::Stable;
                self.renegotiate_by(now + RESTART_DISCONNECTED_MS);
            }
            Some(_) => self.renegotiate_by(now + RESTART_DISCONNECTED_MS),
        }
    }

    /// The next operation, if the browser is free and something is to be done. `online`
    /// says whether the relay is reachable: a renegotiation waits for it, since its offer
    /// could not go anywhere.
    pub fn poll(&mut self, now: u64, online: bool, idle_channel: bool) -> Option<Command> {
        if self.give_up_at.is_some_and(|at| now >= at) {
            self.give_up_at = None;
            self.given_up = true;
        }
        if self.op.is_some() || self.renewal.is_some() {
            return None;
        }
        // The answer goes before the candidates waiting behind the offer: they fit just as
        // well after it, and the peer waits for it (one candidate at a time took 1.5 s on a
        // page starved of CPU, and the peer gave up on its offer meanwhile).
        let conn = self.conn;
        if self.signaling == Signaling::HaveRemoteOffer {
            let send = self.send_now();
            return self.start(Op::Answer, Command::CreateAnswer { conn, send });
        }
        if let Some(command) = self.next_signal() {
            return Some(command);
        }
        // A link that is not healthy by its deadline is renegotiated, once what we sent
        // the peer has arrived (another offer on top of an undelivered one helps nobody).
        if online && idle_channel && self.due().is_some_and(|d| now >= d) {
            if self.retries == RENEGOTIATIONS_BEFORE_NEW_CONNECTION {
                self.renewal = Some(Renewal::Offer);
                return None;
            }
            self.retries += 1;
            let wait = RETRY_MIN_MS.saturating_mul(1 << (self.retries - 1).min(8)).min(RETRY_MAX_MS);
            self.deadline = None;
            self.renegotiate_by(now + wait);
            self.wants_restart = true;
            if self.signaling == Signaling::HaveLocalOffer {
                return self.start(Op::Rollback, Command::Rollback { conn });
            }
        }
        if self.signaling == Signaling::Stable && (self.wants_offer || self.wants_restart) {
            let ice_restart = std::mem::take(&mut self.wants_restart);
            self.wants_offer = false;
            let send = self.send_now();
            return self.start(Op::Offer, Command::CreateOffer { conn, ice_restart, send });
        }
        None
    }

    /// Whether our media must go on the connection first (the first description we make):
    /// added after the peer's offer, our tracks reuse its transceivers, so the answer is
    /// two-way without another round.
    fn send_now(&mut self) -> bool {
        !std::mem::replace(&mut self.sending, true)
    }

    fn start(&mut self, op: Op, command: Command) -> Option<Command> {
        self.op = Some(op);
        Some(command)
    }

    /// The perfect negotiation pattern, on the next signal from the peer.
    fn next_signal(&mut self) -> Option<Command> {
        let conn = self.conn;
        loop {
            match self.inbox.pop_front()? {
                Signal::Offer { sdp } => {
                    let stable = self.signaling == Signaling::Stable;
                    if negotiation::on_offer(self.role, stable) == OfferAction::Ignore {
                        self.ignoring = true;
                        continue;
                    }
                    if self.signaling == Signaling::HaveLocalOffer {
                        // Polite: our offer yields. The peer's is applied right after.
                        self.inbox.push_front(Signal::Offer { sdp });
                        return self.start(Op::Rollback, Command::Rollback { conn });
                    }
                    self.ignoring = false;
                    self.applying = Some(sdp.clone());
                    return self
                        .start(Op::Remote(SdpKind::Offer), Command::SetRemote { conn, kind: SdpKind::Offer, sdp });
                }
                Signal::Answer { sdp } => {
                    // An answer to an offer we rolled back, or a duplicate: nothing to apply it to.
                    if self.signaling != Signaling::HaveLocalOffer {
                        continue;
                    }
                    self.ignoring = false;
                    return self
                        .start(Op::Remote(SdpKind::Answer), Command::SetRemote { conn, kind: SdpKind::Answer, sdp });
                }
                Signal::Renew {} => {
                    // Both renewed at once: the impolite side's new connection stands, and
                    // the polite side's offer that follows is ignored as a collision.
                    if self.offering_anew && !self.role.polite {
                        continue;
                    }
                    self.renewal = Some(Renewal::Answer);
                    return None;
                }
                first @ Signal::Candidate { .. } => {
                    if self.ignoring {
                        continue;
                    }
                    // The candidates next in line go to the browser together.
                    let more =
                        std::iter::from_fn(|| self.inbox.pop_front_if(|s| matches!(s, Signal::Candidate { .. })));
                    let candidates =
                        std::iter::once(first).chain(more).filter_map(|s| Candidate::try_from(s).ok()).collect();
                    return self.start(Op::Candidates, Command::AddCandidates { conn, candidates });
                }
            }
        }
    }
}
