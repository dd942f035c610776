//! The call engine: the microphone, the signaling socket and one [`Peer`] per remote
//! participant, driven by the relay's messages. It decides nothing itself: roles, states,
//! levels and retry delays come from [`shared`]; it only applies them to browser objects
//! and writes what the UI shows into a [`CallView`].
//!
//! Losing the relay does not end the call: the peer connections carry the audio on their
//! own, while the engine reconnects with backoff and resumes its seat with the token the
//! relay gave it, so the others see no leave and no join.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::backoff::RECONNECT;
use shared::call::{CallState, Session, call_state};
use shared::negotiation::{self, Met};
use shared::protocol::{CLIENT_PING_INTERVAL, CLIENT_RELAY_TIMEOUT, ClientMessage, PROTOCOL_VERSION, ServerMessage};
use shared::room::{PeerId, RoomId};
use shared::stats::Quality;
use wasm_bindgen::JsCast;
use web_sys::MediaStream;

use crate::error::CallError;
use crate::media::{self, Device, MeterContext, MicMeter, MicSettings};
use crate::peer::{Ice, Peer, PeerView};
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
    /// The voice processing the browser actually applied to our microphone.
    pub mic: RwSignal<Option<MicSettings>>,
    /// The level our microphone hears, 0 to 1 (0 while muted).
    pub mic_level: RwSignal<f64>,
    /// Whether the person wants the camera on (the toggle shows this at once).
    pub camera_on: RwSignal<bool>,
    /// Our camera, once it is running (the local preview shows it).
    pub camera: RwSignal<Option<MediaStream>, LocalStorage>,
    /// Why the camera did not start, or a device change failed; the call goes on.
    pub device_error: RwSignal<Option<CallError>>,
    /// The microphones to pick from (labelled once one was opened).
    pub microphones: RwSignal<Vec<Device>>,
    /// The cameras to pick from.
    pub cameras: RwSignal<Vec<Device>>,
    /// The microphone in use, or picked for the next opening.
    pub microphone_device: RwSignal<Option<String>>,
    /// The camera in use, or picked for the next opening.
    pub camera_device: RwSignal<Option<String>>,
}

impl CallView {
    fn new() -> Self {
        Self {
            session: RwSignal::new(Session::Idle),
            peers: RwSignal::new(Vec::new()),
            muted: RwSignal::new(false),
            error: RwSignal::new(None),
            peer_left: RwSignal::new(false),
            mic: RwSignal::new(None),
            mic_level: RwSignal::new(0.0),
            camera_on: RwSignal::new(false),
            camera: RwSignal::new_local(None),
            device_error: RwSignal::new(None),
            microphones: RwSignal::new(Vec::new()),
            cameras: RwSignal::new(Vec::new()),
            microphone_device: RwSignal::new(None),
            camera_device: RwSignal::new(None),
        }
    }

    /// The call state, derived from the session and every peer's link (reactive).
    pub fn state(&self) -> CallState {
        call_state(self.session.get(), self.peers.get().iter().map(|p| p.link.get()))
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
    /// The next [`PeerView::key`].
    next_key: std::cell::Cell<u64>,
    state: RefCell<State>,
}

/// Everything that lives only while joined; dropping it ends the call.
#[derive(Default)]
struct State {
    socket: Option<Socket>,
    me: Option<PeerId>,
    /// The token that gets our seat back after a dropped socket.
    resume: Option<String>,
    ice: Ice,
    microphone: Option<MediaStream>,
    meter: Option<MicMeter>,
    peers: BTreeMap<PeerId, Peer>,
    stats: Option<Interval>,
    /// Pings the relay and notices when it stops answering.
    heartbeat: Option<Interval>,
    /// When the relay last said anything (`Date.now()`, ms).
    last_heard: f64,
    /// Reconnection attempts since the relay was lost.
    attempt: u32,
    reconnect: Option<Timeout>,
    /// Leaves the room when the page goes away (reload, tab closed).
    _pagehide: Option<EventListener>,
}

impl Call {
    /// A call in `room`, not joined yet. Must be made inside the page's reactive owner.
    pub fn new(room: RoomId) -> Self {
        let owner = Owner::current().unwrap_or_default();
        let inner =
            Inner { room, view: CallView::new(), owner, next_key: Default::default(), state: RefCell::default() };
        Self { inner: Rc::new(inner) }
    }

    /// What the UI shows.
    pub fn view(&self) -> CallView {
        self.inner.view
    }

    /// Opens the microphone and joins the room. Call it from a click: phones unlock the
    /// microphone and audio playback only in a user gesture.
    pub fn join(&self) {
        spawn_local(self.inner.clone().join(MicMeter::context()));
    }

    /// Opens the microphone before joining, so the person can see the meter move; joining
    /// then uses the same microphone. Call it from a click, like [`Call::join`].
    pub fn test_microphone(&self) {
        let inner = self.inner.clone();
        let context = MicMeter::context();
        spawn_local(async move {
            inner.view.error.set(None);
            if let Err(error) = inner.microphone(context).await {
                inner.fail(error);
            }
        });
    }

    /// Mutes or unmutes our microphone. The track stays and sends silence, so unmuting is
    /// instant and needs no renegotiation.
    pub fn set_muted(&self, muted: bool) {
        self.inner.view.muted.set(muted);
        if let Some(microphone) = &self.inner.state.borrow().microphone {
            media::set_enabled(microphone, !muted);
        }
    }

    /// Turns our camera on or off, mid-call, without touching the audio. Off stops the
    /// camera track, which releases the device.
    pub fn set_camera(&self, on: bool) {
        let inner = self.inner.clone();
        inner.view.camera_on.set(on);
        spawn_local(async move {
            let view = inner.view;
            view.device_error.set(None);
            if let Some(camera) = view.camera.get_untracked() {
                media::stop(&camera);
            }
            let camera = if on {
                match media::open_camera(view.camera_device.get_untracked().as_deref()).await {
                    Ok(camera) => {
                        view.camera_device.set(media::device_of(&camera, "video"));
                        inner.refresh_devices();
                        Some(camera)
                    }
                    Err(error) => {
                        view.camera_on.set(false);
                        view.device_error.set(Some(error));
                        None
                    }
                }
            } else {
                None
            };
            // The person may have left while the camera was starting.
            if view.session.get_untracked() == Session::Ended || inner.state.borrow().microphone.is_none() {
                if let Some(camera) = &camera {
                    media::stop(camera);
                }
                return;
            }
            for peer in inner.state.borrow().peers.values() {
                peer.set_video(camera.as_ref());
            }
            view.camera.set(camera);
        });
    }

    /// Switches to the microphone `device`, mid-call too: the new track replaces the old
    /// one on every connection, with no renegotiation. If it cannot open, the old one stays
    /// and the page says why.
    pub fn choose_microphone(&self, device: String) {
        let inner = self.inner.clone();
        let context = MicMeter::context();
        let view = inner.view;
        view.microphone_device.set(Some(device.clone()));
        view.device_error.set(None);
        spawn_local(async move {
            let Some(current) = inner.state.borrow().microphone.clone() else { return };
            match media::open_microphone(Some(&device)).await {
                Ok(fresh) => inner.swap_microphone(&current, &fresh, context),
                Err(error) => {
                    view.microphone_device.set(media::device_of(&current, "audio"));
                    view.device_error.set(Some(error));
                }
            }
        });
    }

    /// Switches to the camera `device`; if the camera is on, it restarts on that device.
    pub fn choose_camera(&self, device: String) {
        self.inner.view.camera_device.set(Some(device));
        if self.inner.view.camera_on.get_untracked() {
            self.set_camera(true);
        }
    }

    /// Leaves the room, closes every connection and releases the microphone.
    pub fn leave(&self) {
        self.inner.leave();
    }

    /// Releases everything without touching the UI (the page is going away).
    pub fn dispose(&self) {
        self.inner.hang_up();
    }
}

impl Inner {
    async fn join(self: Rc<Self>, meter_context: Option<MeterContext>) {
        // A fresh session; a microphone opened for a test before joining stays.
        self.disconnect();
        let view = self.view;
        view.error.set(None);
        view.peer_left.set(false);
        view.session.set(Session::Joining);
        if let Err(error) = self.microphone(meter_context).await {
            return self.fail(error);
        }
        let weak = Rc::downgrade(&self);
        let pagehide = EventListener::new(&window(), "pagehide", move |_| with(&weak, |inner| inner.leave()));
        self.state.borrow_mut()._pagehide = Some(pagehide);
        self.connect();
    }

    /// Our microphone, opened (with its meter) if it is not yet.
    async fn microphone(&self, meter_context: Option<MeterContext>) -> Result<MediaStream, CallError> {
        if let Some(microphone) = self.state.borrow().microphone.clone() {
            return Ok(microphone);
        }
        let view = self.view;
        let microphone = media::open_microphone(view.microphone_device.get_untracked().as_deref()).await?;
        media::set_enabled(&microphone, !view.muted.get_untracked());
        self.state.borrow_mut().microphone = Some(microphone.clone());
        self.microphone_opened(&microphone, meter_context);
        Ok(microphone)
    }

    /// Shows what the browser made of a newly opened microphone, and meters it.
    fn microphone_opened(&self, microphone: &MediaStream, meter_context: Option<MeterContext>) {
        let view = self.view;
        view.mic.set(MicSettings::of(microphone));
        view.microphone_device.set(media::device_of(microphone, "audio"));
        // The meter is a comfort, not a requirement: a browser without Web Audio still calls.
        let meter = meter_context.and_then(|context| MicMeter::start(context, microphone, view.mic_level).ok());
        if meter.is_none() {
            leptos::logging::warn!("no microphone meter in this browser");
        }
        self.state.borrow_mut().meter = meter;
        self.refresh_devices();
    }

    /// Moves `fresh`'s audio track into our `current` microphone stream, which every
    /// connection and the meter use, and stops the old track.
    fn swap_microphone(&self, current: &MediaStream, fresh: &MediaStream, meter_context: Option<MeterContext>) {
        // The person may have left while the device was opening.
        if self.state.borrow().microphone.is_none() {
            return media::stop(fresh);
        }
        for old in current.get_audio_tracks() {
            let old: web_sys::MediaStreamTrack = old.unchecked_into();
            old.stop();
            current.remove_track(&old);
        }
        media::set_enabled(fresh, !self.view.muted.get_untracked());
        for track in fresh.get_audio_tracks() {
            let track: web_sys::MediaStreamTrack = track.unchecked_into();
            current.add_track(&track);
            for peer in self.state.borrow().peers.values() {
                peer.replace_audio(&track);
            }
        }
        self.microphone_opened(current, meter_context);
    }

    /// Reads the lists of microphones and cameras again (names appear once a device of the
    /// kind was allowed; a headset may have been plugged in).
    fn refresh_devices(&self) {
        let view = self.view;
        spawn_local(async move {
            view.microphones.set(media::devices(web_sys::MediaDeviceKind::Audioinput).await);
            view.cameras.set(media::devices(web_sys::MediaDeviceKind::Videoinput).await);
        });
    }

    /// Opens a socket to the relay; the join (or resume) goes out when it opens.
    fn connect(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        match Socket::open(move |event| with(&weak, |inner| inner.on_socket(event))) {
            Ok(socket) => self.state.borrow_mut().socket = Some(socket),
            Err(error) => self.fail(error),
        }
    }

    fn on_socket(self: &Rc<Self>, event: SocketEvent) {
        match event {
            SocketEvent::Open => {
                let resume = self.state.borrow().resume.clone();
                self.send(&ClientMessage::Join { version: PROTOCOL_VERSION, room: self.room.to_string(), resume });
                self.start_heartbeat();
            }
            SocketEvent::Message(message) => {
                self.state.borrow_mut().last_heard = js_sys::Date::now();
                self.on_message(message);
            }
            SocketEvent::Closed => match self.view.session.get_untracked() {
                Session::Joining => self.fail(CallError::RelayUnreachable),
                Session::Joined | Session::Lost => self.lost(),
                _ => {}
            },
        }
    }

    fn start_heartbeat(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let heartbeat = Interval::new(CLIENT_PING_INTERVAL.as_millis() as u32, move || {
            with(&weak, |inner| {
                let silent_for = js_sys::Date::now() - inner.state.borrow().last_heard;
                if silent_for > CLIENT_RELAY_TIMEOUT.as_millis() as f64 {
                    leptos::logging::warn!("the relay stopped answering");
                    if let Some(socket) = &inner.state.borrow().socket {
                        socket.close_resuming();
                    }
                    inner.lost();
                } else {
                    inner.send(&ClientMessage::Ping {});
                }
            })
        });
        let mut state = self.state.borrow_mut();
        state.last_heard = js_sys::Date::now();
        state.heartbeat = Some(heartbeat);
    }

    /// The relay is gone: keep the peer connections (audio flows without the relay) and
    /// try again after the backoff delay.
    fn lost(self: &Rc<Self>) {
        let delay = {
            let mut state = self.state.borrow_mut();
            state.socket = None;
            state.heartbeat = None;
            let delay = RECONNECT.delay(state.attempt, js_sys::Math::random());
            state.attempt = state.attempt.saturating_add(1);
            delay
        };
        self.view.session.set(Session::Lost);
        let weak = Rc::downgrade(self);
        let retry = Timeout::new(delay.as_millis() as u32, move || with(&weak, Inner::connect));
        self.state.borrow_mut().reconnect = Some(retry);
    }

    fn on_message(self: &Rc<Self>, message: ServerMessage) {
        match message {
            ServerMessage::Joined { you, peers, ice_servers, ice_transport_policy, resume, resumed, .. } => {
                let ice = Ice { servers: ice_servers, policy: ice_transport_policy };
                self.on_joined(you, peers, ice, resume, resumed)
            }
            ServerMessage::PeerJoined { peer } => {
                self.view.peer_left.set(false);
                self.add_peer(peer, Met::Arrived);
            }
            ServerMessage::PeerLeft { peer } => self.remove_peer(peer),
            ServerMessage::Signal { from, signal } => {
                if !self.state.borrow().peers.contains_key(&from) {
                    self.add_peer(from, Met::Arrived);
                }
                if let Some(peer) = self.state.borrow().peers.get(&from) {
                    peer.on_signal(signal);
                }
            }
            ServerMessage::Pong {} => {}
            ServerMessage::Error { code, message } => {
                leptos::logging::warn!("relay refused: {} ({message})", code.as_str());
                // Refusals of a join end the attempt; others (a signal to someone who just
                // left, a burst over the rate limit) are passing and need no action.
                if let Some(error) = CallError::from_code(code) {
                    self.fail(error);
                }
            }
        }
    }

    fn on_joined(self: &Rc<Self>, you: PeerId, peers: Vec<PeerId>, ice: Ice, resume: String, resumed: bool) {
        {
            let mut state = self.state.borrow_mut();
            state.me = Some(you);
            state.resume = Some(resume);
            state.ice = ice;
            state.attempt = 0;
            if state.stats.is_none() {
                let weak = Rc::downgrade(self);
                state.stats = Some(Interval::new(STATS_PERIOD_MS, move || with(&weak, Inner::read_stats)));
            }
        }
        self.view.session.set(Session::Joined);
        if resumed {
            // Same seat: keep every connection; forget those who left while we were away.
            // Those who came meanwhile offer to us, as newcomers do.
            let known: Vec<PeerId> = self.state.borrow().peers.keys().copied().collect();
            for peer in known.into_iter().filter(|p| !peers.contains(p)) {
                self.remove_peer(peer);
            }
        } else {
            // A new seat (first join, or the relay forgot us, perhaps handing out the same
            // id again): start over with everyone.
            self.state.borrow_mut().peers.clear();
            self.view.peers.set(Vec::new());
            for peer in peers {
                self.add_peer(peer, Met::WasThere);
            }
        }
    }

    fn add_peer(self: &Rc<Self>, id: PeerId, met: Met) {
        let (role, ice, microphone) = {
            let state = self.state.borrow();
            let (Some(me), Some(microphone)) = (state.me, state.microphone.clone()) else { return };
            if state.peers.contains_key(&id) {
                return;
            }
            (negotiation::role(me, id, met), state.ice.clone(), microphone)
        };
        let key = self.next_key.replace(self.next_key.get() + 1);
        let view = self.owner.with(|| PeerView::new(id, key));
        let weak = Rc::downgrade(self);
        let send = move |signal| with(&weak, |inner| inner.send(&ClientMessage::Signal { to: id, signal }));
        match Peer::new(view, role, &ice, microphone, send) {
            Ok(peer) => {
                if let Some(camera) = self.view.camera.get_untracked() {
                    peer.set_video(Some(&camera));
                }
                self.state.borrow_mut().peers.insert(id, peer);
                self.view.peers.update(|peers| {
                    peers.push(view);
                    peers.sort_by_key(|p| p.id);
                });
            }
            Err(error) => self.fail(error),
        }
    }

    fn remove_peer(&self, id: PeerId) {
        self.state.borrow_mut().peers.remove(&id);
        self.view.peers.update(|peers| peers.retain(|p| p.id != id));
        if self.view.peers.with_untracked(Vec::is_empty) {
            self.view.peer_left.set(true);
        }
    }

    /// Reads every link's statistics; turns each into a second's quality, which the UI
    /// shows and the link's bitrate controller acts on.
    fn read_stats(self: &Rc<Self>) {
        for view in self.view.peers.get_untracked() {
            let showing = view.video.with_untracked(|video| video.as_ref().is_some_and(media::shows_video));
            if view.showing_video.get_untracked() != showing {
                view.showing_video.set(showing);
            }
            let reading = match self.state.borrow().peers.get(&view.id) {
                Some(peer) => peer.stats(),
                None => continue,
            };
            let inner = self.clone();
            spawn_local(async move {
                let Ok((sample, max_bitrate)) = reading.await else { return };
                let before = view.stats.get_untracked();
                // The first reading has nothing to compare with.
                if before.at_ms > 0.0 {
                    let quality = Quality::between(&before, &sample);
                    if let Some(peer) = inner.state.borrow().peers.get(&view.id) {
                        let now = js_sys::Date::now();
                        view.video_tier.set(peer.adapt(now, &quality, max_bitrate));
                        view.hint.set(peer.hint(now, &quality));
                    }
                    view.quality.set(quality);
                }
                view.max_bitrate.set(max_bitrate);
                view.stats.set(sample);
            });
        }
    }

    fn send(&self, message: &ClientMessage) {
        if let Some(socket) = &self.state.borrow().socket {
            socket.send(message);
        }
    }

    fn leave(&self) {
        self.send(&ClientMessage::Leave {});
        self.hang_up();
        self.view.session.set(Session::Ended);
    }

    fn fail(&self, error: CallError) {
        leptos::logging::warn!("call failed: {error:?}");
        self.hang_up();
        self.view.error.set(Some(error));
        self.view.session.set(Session::Failed);
    }

    /// Ends the session with the relay and every peer connection; keeps the devices.
    fn disconnect(&self) {
        let connections = {
            let mut state = self.state.borrow_mut();
            let devices = (state.microphone.take(), state.meter.take());
            let connections = std::mem::take(&mut *state);
            (state.microphone, state.meter) = devices;
            connections
        };
        // Dropping the old state closes the peer connections and the socket, and stops
        // every timer and listener.
        drop(connections);
        self.view.peers.set(Vec::new());
    }

    /// Ends everything and releases the microphone and camera (their in-use indicators go
    /// off).
    fn hang_up(&self) {
        self.disconnect();
        let (microphone, meter) = {
            let mut state = self.state.borrow_mut();
            (state.microphone.take(), state.meter.take())
        };
        if let Some(microphone) = &microphone {
            media::stop(microphone);
        }
        drop(meter);
        if let Some(camera) = self.view.camera.get_untracked() {
            media::stop(&camera);
        }
        self.view.camera.set(None);
        self.view.camera_on.set(false);
        self.view.mic_level.set(0.0);
        self.view.mic.set(None);
    }
}

/// Runs `f` on the call if it still exists: callbacks hold a weak reference, so a closed
/// page's late events do nothing.
fn with(weak: &Weak<Inner>, f: impl FnOnce(&Rc<Inner>)) {
    if let Some(inner) = weak.upgrade() {
        f(&inner);
    }
}
