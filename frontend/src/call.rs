//! The call engine: the microphone, the signaling socket and one [`Peer`] per remote
//! participant, driven by the relay's messages. It decides nothing itself: roles, states
//! and levels come from [`shared`]; it only applies them to browser objects and writes
//! what the UI shows into a [`CallView`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Interval;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::call::{CallState, Session, call_state};
use shared::level::rms_level;
use shared::negotiation::{self, Met};
use shared::protocol::{ClientMessage, IceServer, PROTOCOL_VERSION, ServerMessage};
use shared::room::{PeerId, RoomId};
use web_sys::MediaStream;

use crate::error::CallError;
use crate::media;
use crate::peer::{Peer, PeerView};
use crate::signaling::{Socket, SocketEvent};

/// How often statistics are read: once a second, like the quality panels of the best
/// calling apps; the level meter and the byte counters follow it.
const STATS_PERIOD_MS: u32 = 1_000;

/// What the UI shows of the call. All signals: `Copy`, and read reactively by the views.
#[derive(Clone, Copy)]
pub struct CallView {
    /// Where our own session stands.
    pub session: RwSignal<Session>,
    /// The remote participants, in id order.
    pub peers: RwSignal<Vec<PeerView>>,
    /// Whether our microphone is muted.
    pub muted: RwSignal<bool>,
    /// Why the call stopped, while [`Session::Failed`].
    pub error: RwSignal<Option<CallError>>,
    /// Someone left and nobody else is here: say so, and that they can come back.
    pub peer_left: RwSignal<bool>,
}

impl CallView {
    fn new() -> Self {
        Self {
            session: RwSignal::new(Session::Idle),
            peers: RwSignal::new(Vec::new()),
            muted: RwSignal::new(false),
            error: RwSignal::new(None),
            peer_left: RwSignal::new(false),
        }
    }

    /// The call state, derived from the session and every peer's link (reactive).
    pub fn state(&self) -> CallState {
        call_state(
            self.session.get(),
            self.peers.get().iter().map(|p| p.link.get()),
        )
    }
}

/// A call in one room. Cheap to clone; every clone drives the same call.
#[derive(Clone)]
pub struct Call {
    inner: Rc<Inner>,
}

struct Inner {
    room: RoomId,
    view: CallView,
    /// The reactive owner of the room page, so that signals made for newcomers are
    /// disposed with the page rather than leaked.
    owner: Owner,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    socket: Option<Socket>,
    me: Option<PeerId>,
    ice_servers: Vec<IceServer>,
    microphone: Option<MediaStream>,
    peers: BTreeMap<PeerId, Peer>,
    stats: Option<Interval>,
}

impl Call {
    /// A call in `room`, not joined yet. Must be made inside the page's reactive owner.
    pub fn new(room: RoomId) -> Self {
        let owner = Owner::current().unwrap_or_default();
        let inner = Inner {
            room,
            view: CallView::new(),
            owner,
            state: RefCell::default(),
        };
        Self {
            inner: Rc::new(inner),
        }
    }

    /// What the UI shows.
    pub fn view(&self) -> CallView {
        self.inner.view
    }

    /// Opens the microphone and joins the room. Call it from a click: phones unlock the
    /// microphone and audio playback only in a user gesture.
    pub fn join(&self) {
        spawn_local(self.inner.clone().join());
    }

    /// Mutes or unmutes our microphone. The track stays and sends silence, so unmuting is
    /// instant and needs no renegotiation.
    pub fn set_muted(&self, muted: bool) {
        self.inner.view.muted.set(muted);
        if let Some(microphone) = &self.inner.state.borrow().microphone {
            media::set_enabled(microphone, !muted);
        }
    }

    /// Leaves the room, closes every connection and releases the microphone.
    pub fn leave(&self) {
        self.inner.send(&ClientMessage::Leave {});
        self.inner.hang_up();
        self.inner.view.session.set(Session::Ended);
    }

    /// Releases everything without touching the UI (the page is going away).
    pub fn dispose(&self) {
        self.inner.hang_up();
    }
}

impl Inner {
    async fn join(self: Rc<Self>) {
        self.hang_up();
        let view = self.view;
        view.error.set(None);
        view.peer_left.set(false);
        view.session.set(Session::Joining);
        let microphone = match media::open_microphone().await {
            Ok(microphone) => microphone,
            Err(error) => return self.fail(error),
        };
        media::set_enabled(&microphone, !view.muted.get_untracked());
        self.state.borrow_mut().microphone = Some(microphone);
        let weak = Rc::downgrade(&self);
        match Socket::open(move |event| with(&weak, |inner| inner.on_socket(event))) {
            Ok(socket) => self.state.borrow_mut().socket = Some(socket),
            Err(error) => self.fail(error),
        }
    }

    fn on_socket(self: &Rc<Self>, event: SocketEvent) {
        match event {
            SocketEvent::Open => self.send(&ClientMessage::Join {
                version: PROTOCOL_VERSION,
                room: self.room.to_string(),
            }),
            SocketEvent::Message(message) => self.on_message(message),
            SocketEvent::Closed => match self.view.session.get_untracked() {
                Session::Joining => self.fail(CallError::RelayUnreachable),
                Session::Joined => self.fail(CallError::RelayLost),
                _ => {}
            },
        }
    }

    fn on_message(self: &Rc<Self>, message: ServerMessage) {
        match message {
            ServerMessage::Joined {
                you,
                peers,
                ice_servers,
                ..
            } => {
                {
                    let mut state = self.state.borrow_mut();
                    state.me = Some(you);
                    state.ice_servers = ice_servers;
                    let weak = Rc::downgrade(self);
                    state.stats = Some(Interval::new(STATS_PERIOD_MS, move || {
                        with(&weak, Inner::read_stats)
                    }));
                }
                self.view.session.set(Session::Joined);
                for peer in peers {
                    self.add_peer(peer, Met::WasThere);
                }
            }
            ServerMessage::PeerJoined { peer } => {
                self.view.peer_left.set(false);
                self.add_peer(peer, Met::Arrived);
            }
            ServerMessage::PeerLeft { peer } => {
                self.state.borrow_mut().peers.remove(&peer);
                self.view
                    .peers
                    .update(|peers| peers.retain(|p| p.id != peer));
                if self.view.peers.with_untracked(Vec::is_empty) {
                    self.view.peer_left.set(true);
                }
            }
            ServerMessage::Signal { from, signal } => {
                if !self.state.borrow().peers.contains_key(&from) {
                    self.add_peer(from, Met::Arrived);
                }
                if let Some(peer) = self.state.borrow().peers.get(&from) {
                    peer.on_signal(signal);
                }
            }
            ServerMessage::Error { code, message } => {
                leptos::logging::warn!("relay refused: {} ({message})", code.as_str());
                let error = CallError::from_code(code);
                // Refusals of a join end the attempt; others (a signal to someone who just
                // left) are races that resolve themselves.
                if !matches!(error, CallError::Unexpected(_)) {
                    self.fail(error);
                }
            }
        }
    }

    fn add_peer(self: &Rc<Self>, id: PeerId, met: Met) {
        let (role, ice_servers, microphone) = {
            let state = self.state.borrow();
            let (Some(me), Some(microphone)) = (state.me, state.microphone.clone()) else {
                return;
            };
            if state.peers.contains_key(&id) {
                return;
            }
            (
                negotiation::role(me, id, met),
                state.ice_servers.clone(),
                microphone,
            )
        };
        let view = self.owner.with(|| PeerView::new(id));
        let weak = Rc::downgrade(self);
        let send = move |signal| {
            with(&weak, |inner| {
                inner.send(&ClientMessage::Signal { to: id, signal })
            })
        };
        match Peer::new(view, role, &ice_servers, microphone, send) {
            Ok(peer) => {
                self.state.borrow_mut().peers.insert(id, peer);
                self.view.peers.update(|peers| {
                    peers.push(view);
                    peers.sort_by_key(|p| p.id);
                });
            }
            Err(error) => self.fail(error),
        }
    }

    fn read_stats(self: &Rc<Self>) {
        let views = self.view.peers.get_untracked();
        for view in views {
            let inner = self.clone();
            spawn_local(async move {
                let reading = match inner.state.borrow().peers.get(&view.id) {
                    Some(peer) => peer.audio_counters(),
                    None => return,
                };
                let Ok(counters) = reading.await else { return };
                let before = view.audio.get_untracked();
                view.level.set(rms_level(&before, &counters));
                view.audio.set(counters);
            });
        }
    }

    fn send(&self, message: &ClientMessage) {
        if let Some(socket) = &self.state.borrow().socket {
            socket.send(message);
        }
    }

    fn fail(&self, error: CallError) {
        leptos::logging::warn!("call failed: {error:?}");
        self.hang_up();
        self.view.error.set(Some(error));
        self.view.session.set(Session::Failed);
    }

    fn hang_up(&self) {
        let state = std::mem::take(&mut *self.state.borrow_mut());
        if let Some(microphone) = &state.microphone {
            media::stop(microphone);
        }
        // Dropping the state closes the peer connections and the socket and stops the
        // statistics timer.
        drop(state);
        self.view.peers.set(Vec::new());
    }
}

/// Runs `f` on the call if it still exists: callbacks hold a weak reference, so a closed
/// page's late events do nothing.
fn with(weak: &Weak<Inner>, f: impl FnOnce(&Rc<Inner>)) {
    if let Some(inner) = weak.upgrade() {
        f(&inner);
    }
}
