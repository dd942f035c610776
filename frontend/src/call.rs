//! The call: the driver between the call engine ([`shared::engine::Engine`]) and the
//! browser. It decides nothing: the person's taps, the socket's frames, the devices and
//! every `RTCPeerConnection` become the engine's [`Input`]s; the engine's [`Command`]s
//! become browser calls; what the engine shows goes into the [`CallView`] signals the UI
//! reads. Who offers, perfect negotiation, ICE restarts, the heartbeat, reconnecting and
//! resuming the seat, and which device runs are all the engine's.
//!
//! Besides the engine's view, the driver shows what only the browser knows: our
//! microphone's level and settings, our camera's stream, the device lists, and each link's
//! statistics, read once a second and fed to the bitrate controllers.
//!
//! It also carries what people say to each other on each connection's data channel
//! ([`shared::chat`]): who we are (our name, set on the room page) and the chat, whose log
//! decides what is delivered and what is unread.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::wasm_split::SplitLoaderError;
use shared::call::{CallState, Link, Session, call_state};
use shared::chat::{ChatLog, PeerMessage, Presence};
use shared::engine::{Command, Conn, DeviceKind, Engine, Ice, Input, Request};
use shared::protocol::CLOSE_RESUMING;
use shared::room::{PeerId, RoomId};
use shared::stats::Quality;
use shared::verify;
use wasm_bindgen::JsCast;
use web_sys::{MediaStream, MediaStreamTrack};

use crate::error::CallError;
use crate::media::{self, Device, MeterContext, MicMeter, MicSettings};
use crate::peer::{Operation, Peer, PeerEvent, PeerView};
use crate::signaling::{CLOSE_NORMAL, Socket, SocketEvent};
use crate::ui::{Screen, call_screen};

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
    /// Whether we only listen: in the call without a microphone.
    pub listening: RwSignal<bool>,
    /// Why the call stopped, while [`Session::Failed`].
    pub error: RwSignal<Option<CallError>>,
    /// Someone left and nobody else is here: say so, and that they can come back.
    pub peer_left: RwSignal<bool>,
    /// The relay cannot seat us just now; the engine tries again ([`shared::engine::View::busy`]).
    pub busy: RwSignal<bool>,
    /// How many came into the room after us, and left it ([`shared::engine::View::comings`]).
    pub comings: RwSignal<u32>,
    /// See [`CallView::comings`].
    pub goings: RwSignal<u32>,
    /// The voice processing the browser actually applied to our microphone.
    pub mic: RwSignal<Option<MicSettings>>,
    /// The level our microphone hears, 0 to 1 (0 while muted).
    pub mic_level: RwSignal<f64>,
    /// Whether the person wants the camera on (the toggle shows this at once).
    pub camera_on: RwSignal<bool>,
    /// Whether the person shares the screen (the toggle shows this at once).
    pub sharing: RwSignal<bool>,
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
    /// Whether the call's code has loaded and runs (see [`Call`]).
    pub running: RwSignal<bool>,
    /// The name the others see for us, cleaned ([`shared::chat::clean_name`]); none:
    /// "Guest N". Set on the room page, before or during the call: the driver tells every
    /// peer when it changes.
    pub name: RwSignal<Option<String>>,
    /// The chat: the messages, which of ours were delivered, and what is unread.
    pub chat: RwSignal<ChatLog>,
}

impl CallView {
    fn new() -> Self {
        Self {
            session: RwSignal::new(Session::Idle),
            peers: RwSignal::new(Vec::new()),
            muted: RwSignal::new(false),
            listening: RwSignal::new(false),
            error: RwSignal::new(None),
            peer_left: RwSignal::new(false),
            busy: RwSignal::new(false),
            comings: RwSignal::new(0),
            goings: RwSignal::new(0),
            mic: RwSignal::new(None),
            mic_level: RwSignal::new(0.0),
            camera_on: RwSignal::new(false),
            sharing: RwSignal::new(false),
            camera: RwSignal::new_local(None),
            device_error: RwSignal::new(None),
            microphones: RwSignal::new(Vec::new()),
            cameras: RwSignal::new(Vec::new()),
            microphone_device: RwSignal::new(None),
            camera_device: RwSignal::new(None),
            running: RwSignal::new(false),
            name: RwSignal::new(None),
            chat: RwSignal::new(ChatLog::default()),
        }
    }

    /// The call state, derived from the session and every peer's link (reactive).
    pub fn state(&self) -> CallState {
        call_state(self.session.get(), self.peers.get().iter().map(|p| p.link.get()))
    }
}

/// A call in one room. Cheap to clone; every clone drives the same call.
///
/// The driver and the engine are a part of the wasm of their own, loaded at the first tap
/// that needs them (Join, Test microphone): a room link's first load carries only the page,
/// and the part arrives while the browser asks for the microphone. What is asked meanwhile
/// waits, in order; if the part cannot be loaded, the page says the call server is
/// unreachable and the next tap tries again.
#[derive(Clone)]
pub struct Call {
    inner: Rc<Inner>,
}

struct Inner {
    room: RoomId,
    view: CallView,
    /// The reactive owner of the room page (see [`Driver::owner`]).
    owner: Owner,
    driver: RefCell<Part>,
    /// Leaves the room when the page goes away (reload, tab closed).
    pagehide: RefCell<Option<EventListener>>,
}

/// Where the driver stands.
enum Part {
    /// Not asked for yet, or its loading failed.
    Unloaded,
    /// On its way; the orders given meanwhile.
    Loading(Vec<Order>),
    /// Running.
    Running(Started),
}

/// What the call's part of the wasm gives once loaded: the driver's door, and the call
/// screen's views, whose code is in that part too.
#[derive(Clone)]
struct Started {
    order: Rc<dyn Fn(Order)>,
    screen: fn(Call, Screen) -> AnyView,
}

/// What the page asks of the driver.
enum Order {
    /// An input from a tap, with an audio context made in that tap for the meter of a
    /// microphone it may open (made later, it may stay suspended).
    Click(Input, Option<MeterContext>),
    /// Any other input.
    Feed(Input),
    /// A chat message to send to everyone in the room.
    Chat(String),
    /// The page is going away: leave, and touch no signal.
    Dispose,
}

impl Call {
    /// A call in `room`, not joined yet. Must be made inside the page's reactive owner.
    pub fn new(room: RoomId) -> Self {
        let inner = Inner {
            room,
            view: CallView::new(),
            owner: Owner::current().unwrap_or_default(),
            driver: RefCell::new(Part::Unloaded),
            pagehide: RefCell::new(None),
        };
        Self { inner: Rc::new(inner) }
    }

    /// What the UI shows.
    pub fn view(&self) -> CallView {
        self.inner.view
    }

    /// Opens the microphone and joins the room. Call it from a click: phones unlock the
    /// microphone and audio playback only in a user gesture.
    pub fn join(&self) {
        self.enter(Input::Join);
    }

    /// Joins the room without a microphone, only to listen; [`Call::set_muted`]`(false)`
    /// turns the microphone on later. Call it from a click, like [`Call::join`].
    pub fn listen(&self) {
        self.enter(Input::Listen);
    }

    /// Joins with `input` ([`Input::Join`] or [`Input::Listen`]), leaving when the page
    /// goes away. The chimes' audio context starts in this tap (see [`media::speakers`]).
    fn enter(&self, input: Input) {
        media::speakers();
        if self.inner.pagehide.borrow().is_none() {
            let weak = Rc::downgrade(&self.inner);
            let pagehide = EventListener::new(&window(), "pagehide", move |_| {
                if let Some(inner) = weak.upgrade() {
                    Call { inner }.order(Order::Feed(Input::Leave));
                }
            });
            *self.inner.pagehide.borrow_mut() = Some(pagehide);
        }
        self.click(input);
    }

    /// Opens the microphone before joining, so the person can see the meter move; joining
    /// then uses the same microphone. Call it from a click, like [`Call::join`].
    pub fn test_microphone(&self) {
        self.click(Input::TestMicrophone);
    }

    /// Mutes or unmutes our microphone. The track stays and sends silence, so unmuting is
    /// instant and needs no renegotiation. A listener's unmute opens the microphone: call
    /// it from a click.
    pub fn set_muted(&self, muted: bool) {
        if !muted && self.inner.view.listening.get_untracked() {
            self.click(Input::Mute(false));
        } else {
            self.order(Order::Feed(Input::Mute(muted)));
        }
    }

    /// Turns our camera on or off, mid-call, without touching the audio. Off stops the
    /// camera track, which releases the device.
    pub fn set_camera(&self, on: bool) {
        self.order(Order::Feed(Input::Camera(on)));
    }

    /// Shares the screen (the browser asks which) in place of the camera's picture, or
    /// stops. Call it from a click: the browser asks only in a user gesture.
    pub fn set_sharing(&self, on: bool) {
        self.order(Order::Feed(Input::Screen(on)));
    }

    /// Switches to the microphone `device`, mid-call too: the new track replaces the old
    /// one on every connection, with no renegotiation. If it cannot open, the old one stays
    /// and the page says why. Call it from the picker's change (a user gesture).
    pub fn choose_microphone(&self, device: String) {
        self.click(Input::Pick(DeviceKind::Microphone, device));
    }

    /// Switches to the camera `device`; if the camera is on, it restarts on that device.
    pub fn choose_camera(&self, device: String) {
        self.order(Order::Feed(Input::Pick(DeviceKind::Camera, device)));
    }

    /// Sends the chat message `text` to everyone in the room, on each connection's data
    /// channel.
    pub fn send_chat(&self, text: String) {
        self.order(Order::Chat(text));
    }

    /// Leaves the room, closes every connection and releases the microphone and camera.
    pub fn leave(&self) {
        self.order(Order::Feed(Input::Leave));
    }

    /// Leaves and releases everything without touching the UI (the page is going away).
    pub fn dispose(&self) {
        self.inner.pagehide.borrow_mut().take();
        self.order(Order::Dispose);
    }

    /// Orders `input` with an audio context made in this tap. A tap that loads the call's
    /// code (Join, Test microphone: both open the microphone) asks for the microphone at
    /// once, so the permission prompt overlaps the download.
    fn click(&self, input: Input) {
        if matches!(*self.inner.driver.borrow(), Part::Unloaded) && input != Input::Listen {
            media::ask_microphone_early();
        }
        self.order(Order::Click(input, MicMeter::context()));
    }

    /// The call screen's `part`, once the call's code runs.
    pub fn screen(&self, part: Screen) -> Option<AnyView> {
        let screen = match &*self.inner.driver.borrow() {
            Part::Running(started) => started.screen,
            _ => return None,
        };
        Some(screen(self.clone(), part))
    }

    /// Hands `order` to the driver, loading it first if need be.
    fn order(&self, order: Order) {
        let mut part = self.inner.driver.borrow_mut();
        match &mut *part {
            Part::Running(started) => {
                let driver = started.order.clone();
                drop(part);
                driver(order);
            }
            Part::Loading(waiting) => waiting.push(order),
            // Nothing to leave before the driver ever ran.
            Part::Unloaded if matches!(order, Order::Dispose | Order::Feed(Input::Leave) | Order::Chat(_)) => {}
            Part::Unloaded => {
                *part = Part::Loading(vec![order]);
                drop(part);
                self.load();
            }
        }
    }

    /// Loads the driver's part of the wasm, then hands it the orders given meanwhile.
    fn load(&self) {
        let call = self.clone();
        spawn_local(async move {
            let inner = &call.inner;
            let loaded = start(inner.room.clone(), inner.view, inner.owner.clone()).await;
            let waiting = match std::mem::replace(&mut *inner.driver.borrow_mut(), Part::Unloaded) {
                Part::Loading(waiting) => waiting,
                _ => Vec::new(),
            };
            match loaded {
                Ok(started) => {
                    let driver = started.order.clone();
                    *inner.driver.borrow_mut() = Part::Running(started);
                    inner.view.running.set(true);
                    waiting.into_iter().for_each(|order| driver(order));
                }
                Err(error) => {
                    leptos::logging::warn!("the call's code did not load: {error}");
                    media::release_early_microphone();
                    if !waiting.iter().any(|order| matches!(order, Order::Dispose)) {
                        inner.view.error.set(Some(CallError::RelayUnreachable));
                        inner.view.session.set(Session::Failed);
                    }
                }
            }
        });
    }
}

/// Starts the driver of the call in `room`: the split point, where the call's part of the
/// wasm begins (what only this reaches: the driver, the engine, the socket, the peer
/// connections, and the call screen's views). Its loader is generated `unsafe` code
/// (`wasm_split_helpers`); scripts/split_wasm.sh splits the wasm here.
#[allow(unsafe_code, improper_ctypes_definitions)]
#[leptos::wasm_split::wasm_split(call, wasm_split_path = ::leptos::wasm_split, fallible)]
fn start(room: RoomId, view: CallView, owner: Owner) -> Result<Started, SplitLoaderError> {
    // The engine's randomness only spreads reconnection attempts: Math.random will do.
    let seed = (js_sys::Math::random() * (1u64 << 53) as f64) as u64;
    let driver = Rc::new(Driver {
        engine: RefCell::new(Engine::new(room, seed)),
        view,
        owner,
        inbox: RefCell::default(),
        feeding: Cell::new(false),
        disposed: Cell::new(false),
        socket: RefCell::new(None),
        generation: Cell::new(0),
        mesh: RefCell::default(),
        devices: RefCell::default(),
        stats: RefCell::new(None),
        timer: RefCell::new(None),
    });
    // Whenever what we say about ourselves changes, every peer hears it: the effect tracks
    // what `presence` reads.
    let weak = Rc::downgrade(&driver);
    driver.owner.with(|| {
        Effect::new(move |_| {
            let presence = presence(&view);
            with(&weak, |driver| driver.announce(&presence));
        })
    });
    let order = Rc::new(move |order| match order {
        Order::Click(input, context) => driver.click(input, context),
        Order::Feed(input) => driver.feed(input),
        Order::Chat(text) => driver.send_chat(&text),
        Order::Dispose => {
            driver.disposed.set(true);
            driver.feed(Input::Leave);
        }
    });
    Ok(Started { order, screen: call_screen })
}

/// Everything the call holds: the engine and the browser objects its commands act on.
struct Driver {
    engine: RefCell<Engine>,
    view: CallView,
    /// The reactive owner of the room page, so that signals made for newcomers are
    /// disposed with the page rather than leaked.
    owner: Owner,
    /// Inputs waiting for the engine: those that arrive while commands are being applied
    /// are handled after them, in order.
    inbox: RefCell<VecDeque<Input>>,
    feeding: Cell<bool>,
    /// The page is going away: its signals may be gone.
    disposed: Cell<bool>,
    socket: RefCell<Option<Socket>>,
    /// Counts the sockets opened: a socket's events count only while it is the current one.
    generation: Cell<u64>,
    /// One connection per remote peer, by the engine's key.
    mesh: RefCell<BTreeMap<Conn, Peer>>,
    devices: RefCell<Devices>,
    /// Reads every link's statistics once a second while there is a link.
    stats: RefCell<Option<Interval>>,
    /// Wakes the engine at its deadline.
    timer: RefCell<Option<Timeout>>,
}

/// Our microphone and camera: every opening the engine asked for, and which ones are in use.
#[derive(Default)]
struct Devices {
    /// The openings not stopped yet, by request.
    opened: BTreeMap<Request, Opening>,
    /// The microphone in use.
    microphone: Option<Request>,
    /// The camera in use.
    camera: Option<Request>,
    /// The screen shared, and the browser's own "stop sharing" of it.
    screen: Option<(Request, EventListener)>,
    /// The level meter on the microphone in use.
    meter: Option<MicMeter>,
    /// An audio context made in the tap being handled, for the meter of a microphone that
    /// tap opens (made later, it may stay suspended).
    click: Option<MeterContext>,
    muted: bool,
}

/// One `getUserMedia` call.
struct Opening {
    kind: DeviceKind,
    /// The device's stream, once it opened.
    stream: Option<MediaStream>,
    /// The audio context for a microphone's meter, from the click that asked for it.
    meter: Option<MeterContext>,
}

impl Devices {
    /// The stream of the device of `kind` in use.
    fn current(&self, kind: DeviceKind) -> Option<MediaStream> {
        let request = match kind {
            DeviceKind::Microphone => self.microphone,
            DeviceKind::Camera => self.camera,
            DeviceKind::Screen => self.screen.as_ref().map(|(request, _)| *request),
        }?;
        self.opened.get(&request)?.stream.clone()
    }

    /// The picture we send: the screen while shared, else the camera, if on.
    fn picture(&self) -> Option<MediaStream> {
        self.current(DeviceKind::Screen).or_else(|| self.current(DeviceKind::Camera))
    }
}

impl Driver {
    /// Hands `input` to the engine and carries out what it asks, then shows the result and
    /// sets the timer for its next deadline.
    fn feed(self: &Rc<Self>, input: Input) {
        self.inbox.borrow_mut().push_back(input);
        // A browser call made while applying commands may report at once: its input waits
        // its turn rather than reach the engine in the middle of the last one's commands.
        if self.feeding.replace(true) {
            return;
        }
        loop {
            let Some(input) = self.inbox.borrow_mut().pop_front() else { break };
            let commands = {
                let mut engine = self.engine.borrow_mut();
                engine.handle(input, now());
                engine.commands()
            };
            for command in commands {
                self.apply(command);
            }
        }
        self.feeding.set(false);
        self.show();
        self.rearm();
    }

    /// Feeds `input` with `context`, an audio context made in the tap, in case the
    /// microphone opens: its meter needs one made in a user gesture. Closed at once if not
    /// used.
    fn click(self: &Rc<Self>, input: Input, context: Option<MeterContext>) {
        self.devices.borrow_mut().click = context;
        self.feed(input);
        self.devices.borrow_mut().click = None;
    }

    fn apply(self: &Rc<Self>, command: Command) {
        match command {
            Command::OpenSocket => self.open_socket(),
            Command::CloseSocket { resuming } => {
                let socket = self.socket.borrow_mut().take();
                if let Some(socket) = socket {
                    socket.close(if resuming { CLOSE_RESUMING } else { CLOSE_NORMAL });
                }
            }
            Command::Send(message) => match self.socket.borrow().as_ref() {
                Some(socket) => socket.send(&message),
                None => leptos::logging::warn!("no socket to the relay; a message dropped"),
            },
            Command::OpenDevice { request, kind, device } => self.open_device(request, kind, device),
            Command::UseDevice { request } => self.use_device(request),
            Command::StopDevice { request } => self.stop_device(request),
            Command::Mute(muted) => {
                let mut devices = self.devices.borrow_mut();
                devices.muted = muted;
                if let Some(microphone) = devices.current(DeviceKind::Microphone) {
                    media::set_enabled(&microphone, !muted);
                }
            }
            Command::OpenConnection { conn, peer, ice } => self.open_connection(conn, peer, &ice),
            Command::CreateOffer { conn, ice_restart, send } => {
                if send {
                    self.start_sending(conn);
                }
                self.operate(conn, |peer| peer.offer(ice_restart));
            }
            Command::CreateAnswer { conn, send } => {
                if send {
                    self.start_sending(conn);
                }
                self.operate(conn, Peer::answer);
            }
            Command::Rollback { conn } => self.operate(conn, Peer::rollback),
            Command::SetRemote { conn, kind, sdp } => self.operate(conn, |peer| peer.set_remote(kind, &sdp)),
            Command::AddCandidates { conn, candidates } => {
                self.operate(conn, move |peer| peer.add_candidates(candidates));
            }
            Command::CloseConnection { conn } => {
                let closed = self.mesh.borrow_mut().remove(&conn);
                // Dropping it closes the connection and removes its listeners.
                drop(closed);
                if self.mesh.borrow().is_empty() {
                    self.stats.borrow_mut().take();
                }
            }
        }
    }

    fn open_socket(self: &Rc<Self>) {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let weak = Rc::downgrade(self);
        let opened = Socket::open(move |event| with(&weak, |driver| driver.on_socket(generation, event)));
        let failed = opened.is_err();
        match opened {
            Ok(socket) => *self.socket.borrow_mut() = Some(socket),
            Err(error) => leptos::logging::warn!("could not open a socket to the relay: {error}"),
        }
        if failed {
            self.feed(Input::SocketClosed);
        }
    }

    fn on_socket(self: &Rc<Self>, generation: u64, event: SocketEvent) {
        // A socket closed or replaced since is not heard.
        if generation != self.generation.get() || self.socket.borrow().is_none() {
            return;
        }
        let input = match event {
            SocketEvent::Opened => Input::SocketOpened,
            SocketEvent::Received(message) => Input::Received(message),
            SocketEvent::Closed => {
                self.socket.borrow_mut().take();
                Input::SocketClosed
            }
        };
        self.feed(input);
    }

    fn open_device(self: &Rc<Self>, request: Request, kind: DeviceKind, device: Option<String>) {
        {
            let mut devices = self.devices.borrow_mut();
            let meter = match kind {
                DeviceKind::Microphone => devices.click.take(),
                DeviceKind::Camera | DeviceKind::Screen => None,
            };
            devices.opened.insert(request, Opening { kind, stream: None, meter });
        }
        let weak = Rc::downgrade(self);
        spawn_local(async move {
            let (opened, track_kind) = match kind {
                DeviceKind::Microphone => (media::open_microphone(device.as_deref()).await, "audio"),
                DeviceKind::Camera => (media::open_camera(device.as_deref()).await, "video"),
                DeviceKind::Screen => (media::open_screen().await, "video"),
            };
            let Some(driver) = weak.upgrade() else {
                // The page is gone: release the device at once.
                if let Ok(stream) = &opened {
                    media::stop(stream);
                }
                return;
            };
            let input = match opened {
                Ok(stream) => {
                    let device = media::device_of(&stream, track_kind);
                    match driver.devices.borrow_mut().opened.get_mut(&request) {
                        Some(opening) => opening.stream = Some(stream),
                        None => media::stop(&stream),
                    }
                    Input::DeviceOpened { request, device }
                }
                Err(error) => {
                    leptos::logging::warn!("the {track_kind} device did not open: {error:?}");
                    driver.devices.borrow_mut().opened.remove(&request);
                    Input::DeviceFailed { request, error }
                }
            };
            driver.feed(input);
        });
    }

    fn use_device(self: &Rc<Self>, request: Request) {
        let mut devices = self.devices.borrow_mut();
        let Some(opening) = devices.opened.get_mut(&request) else { return };
        let Some(stream) = opening.stream.clone() else { return };
        let (kind, context) = (opening.kind, opening.meter.take());
        match kind {
            DeviceKind::Microphone => {
                media::set_enabled(&stream, !devices.muted);
                for track in stream.get_audio_tracks() {
                    let track: MediaStreamTrack = track.unchecked_into();
                    for peer in self.mesh.borrow().values() {
                        peer.replace_audio(&track);
                    }
                }
                devices.microphone = Some(request);
                // The old meter's context closes before the new one starts. The meter is a
                // comfort, not a requirement: a browser without Web Audio still calls.
                devices.meter = None;
                devices.meter = context
                    .or_else(MicMeter::context)
                    .and_then(|context| MicMeter::start(context, &stream, self.view.mic_level).ok());
                if devices.meter.is_none() {
                    leptos::logging::warn!("no microphone meter in this browser");
                }
                self.view.mic.set(MicSettings::of(&stream));
            }
            DeviceKind::Camera => {
                devices.camera = Some(request);
                self.send_picture(&devices);
                self.view.camera.set(Some(stream));
            }
            DeviceKind::Screen => {
                let weak = Rc::downgrade(self);
                let track: MediaStreamTrack = stream.get_video_tracks().get(0).unchecked_into();
                let stopped = EventListener::once(&track, "ended", move |_| {
                    with(&weak, |driver| driver.feed(Input::Screen(false)));
                });
                devices.screen = Some((request, stopped));
                self.send_picture(&devices);
            }
        }
        self.refresh_devices();
    }

    /// Sends the picture (the screen shared, the camera, or none) on every connection.
    fn send_picture(&self, devices: &Devices) {
        let picture = devices.picture();
        for peer in self.mesh.borrow().values().filter(|peer| peer.sending()) {
            peer.set_video(picture.as_ref());
        }
    }

    fn stop_device(&self, request: Request) {
        let mut devices = self.devices.borrow_mut();
        let Some(opening) = devices.opened.remove(&request) else { return };
        if let Some(stream) = &opening.stream {
            media::stop(stream);
        }
        if devices.microphone == Some(request) {
            devices.microphone = None;
            devices.meter = None;
            self.view.mic_level.set(0.0);
            self.view.mic.set(None);
        }
        if devices.camera == Some(request) {
            devices.camera = None;
            self.send_picture(&devices);
            self.view.camera.set(None);
        }
        if devices.screen.as_ref().is_some_and(|(shared, _)| *shared == request) {
            devices.screen = None;
            self.send_picture(&devices);
        }
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

    fn open_connection(self: &Rc<Self>, conn: Conn, peer: PeerId, ice: &Ice) {
        let view = self.owner.with(|| PeerView::new(peer, conn.0));
        let weak = Rc::downgrade(self);
        let report = move |event| {
            let input = match event {
                PeerEvent::Candidate(candidate) => Input::LocalCandidate { conn, candidate },
                PeerEvent::Connection(state) => Input::Connection { conn, state },
                PeerEvent::DtlsFailed => Input::DtlsFailed { conn },
                PeerEvent::NegotiationNeeded => Input::NegotiationNeeded { conn },
                PeerEvent::ChannelOpen => return with(&weak, |driver| driver.greet(conn)),
                PeerEvent::Message(message) => return with(&weak, |driver| driver.hear(conn, message)),
            };
            with(&weak, |driver| driver.feed(input));
        };
        match Peer::new(view, ice, report) {
            Ok(connection) => {
                self.mesh.borrow_mut().insert(conn, connection);
            }
            Err(error) => {
                leptos::logging::warn!("no connection to {peer}: {error:?}");
                self.feed(Input::Connection { conn, state: Link::Failed });
            }
        }
        if self.stats.borrow().is_none() {
            let weak = Rc::downgrade(self);
            *self.stats.borrow_mut() = Some(Interval::new(STATS_PERIOD_MS, move || with(&weak, Driver::read_stats)));
        }
    }

    /// Puts our microphone and camera on `conn`, before its first description.
    fn start_sending(&self, conn: Conn) {
        let devices = self.devices.borrow();
        let (microphone, picture) = (devices.current(DeviceKind::Microphone), devices.picture());
        if let Some(peer) = self.mesh.borrow().get(&conn) {
            peer.send(microphone.as_ref(), picture.as_ref());
        }
    }

    /// Starts an operation on `conn` and reports its outcome to the engine, unless the
    /// connection was closed meanwhile.
    fn operate<F>(self: &Rc<Self>, conn: Conn, start: impl FnOnce(&Peer) -> F)
    where
        F: Future<Output = Operation> + 'static,
    {
        let operation = self.mesh.borrow().get(&conn).map(start);
        let Some(operation) = operation else {
            // A connection the browser would not make.
            return self.feed(Input::OperationFailed { conn, error: "no such connection".to_owned() });
        };
        let weak = Rc::downgrade(self);
        spawn_local(async move {
            let input = match operation.await {
                Ok(description) => Input::Done { conn, description },
                Err(error) => {
                    leptos::logging::warn!("an operation on a connection failed: {error:?}");
                    Input::OperationFailed { conn, error: format!("{error:?}") }
                }
            };
            with(&weak, |driver| {
                let open = driver.mesh.borrow().contains_key(&conn);
                if open {
                    driver.feed(input);
                }
            });
        });
    }

    /// Tells every peer `presence`.
    fn announce(&self, presence: &PeerMessage) {
        for peer in self.mesh.borrow().values() {
            peer.tell(presence);
        }
    }

    /// `conn`'s data channel opened: tell the peer who we are (before what waited for it).
    fn greet(&self, conn: Conn) {
        if let Some(peer) = self.mesh.borrow().get(&conn) {
            peer.tell(&untrack(|| presence(&self.view)));
        }
    }

    /// Sends our chat message `text` to everyone in the room now; the log counts it
    /// delivered once each of them acknowledged it.
    fn send_chat(&self, text: &str) {
        let mesh = self.mesh.borrow();
        let recipients = mesh.values().map(|peer| peer.view().id);
        match self.view.chat.try_update(|log| log.send(text, recipients)) {
            Some(Ok(message)) => mesh.values().for_each(|peer| peer.tell(&message)),
            Some(Err(error)) => leptos::logging::warn!("chat message not sent: {error}"),
            None => {}
        }
    }

    /// The peer on `conn` said `message` on the data channel.
    fn hear(&self, conn: Conn, message: PeerMessage) {
        let mesh = self.mesh.borrow();
        let Some(peer) = mesh.get(&conn).filter(|_| !self.disposed.get()) else { return };
        let shown = peer.view();
        match message {
            PeerMessage::Presence(presence) => change(shown.presence, presence),
            PeerMessage::Chat { id, text } => {
                let name = shown.presence.with_untracked(|presence| presence.name.clone());
                if let Some(ack) = self.view.chat.try_update(|log| log.receive(shown.id, name, id, text)) {
                    peer.tell(&ack);
                }
            }
            PeerMessage::Ack { id } => {
                self.view.chat.update(|log| log.acknowledged(shown.id, id));
            }
        }
    }

    /// Writes what the engine shows into the UI's signals, each only if it changed.
    fn show(&self) {
        if self.disposed.get() {
            return;
        }
        let shown = self.engine.borrow().view();
        let view = self.view;
        change(view.session, shown.session);
        change(view.error, shown.failure.as_ref().map(CallError::from_failure));
        change(view.device_error, shown.device_failure.as_ref().map(CallError::from_device));
        change(view.peer_left, shown.peer_left);
        change(view.busy, shown.busy);
        change(view.comings, shown.comings);
        change(view.goings, shown.goings);
        change(view.muted, shown.muted);
        change(view.listening, shown.listening);
        change(view.camera_on, shown.camera_on);
        change(view.sharing, shown.sharing);
        change(view.microphone_device, shown.microphone);
        change(view.camera_device, shown.camera);
        let mesh = self.mesh.borrow();
        let peers: Vec<PeerView> = shown
            .peers
            .iter()
            .filter_map(|shown| {
                let peer = mesh.get(&shown.conn)?.view();
                change(peer.link, shown.link);
                Some(peer)
            })
            .collect();
        if view.peers.with_untracked(|now| now.iter().map(|p| p.key).ne(peers.iter().map(|p| p.key))) {
            view.peers.set(peers);
        }
    }

    /// Sets the timer for the engine's next deadline (none: nothing is waiting).
    fn rearm(self: &Rc<Self>) {
        let deadline = self.engine.borrow().deadline();
        let timer = deadline.map(|at| {
            let wait = at.saturating_sub(now()).min(u64::from(u32::MAX)) as u32;
            let weak = Rc::downgrade(self);
            Timeout::new(wait, move || with(&weak, |driver| driver.feed(Input::Tick)))
        });
        // Dropping the old timer cancels it.
        *self.timer.borrow_mut() = timer;
    }

    /// Reads every link's statistics; turns each into a second's quality, which the UI
    /// shows and the link's bitrate controller acts on.
    fn read_stats(self: &Rc<Self>) {
        let room = self.engine.borrow().room().clone();
        for view in self.view.peers.get_untracked() {
            let showing = view.video.with_untracked(|video| video.as_ref().is_some_and(media::shows_video));
            if view.showing_video.get_untracked() != showing {
                view.showing_video.set(showing);
            }
            let conn = Conn(view.key);
            let reading = match self.mesh.borrow().get(&conn) {
                Some(peer) => {
                    // From the descriptions of the connection in use: a new one has new
                    // certificates, and a code mid-negotiation would mislead.
                    if view.link.get_untracked() == Link::Connected {
                        let code = peer.fingerprints().map(|(ours, theirs)| verify::code(&room, &ours, &theirs));
                        change(view.verification, code);
                    }
                    peer.stats()
                }
                None => continue,
            };
            let weak = Rc::downgrade(self);
            spawn_local(async move {
                let Ok((sample, max_bitrate)) = reading.await else { return };
                let Some(driver) = weak.upgrade().filter(|driver| !driver.disposed.get()) else { return };
                let before = view.stats.get_untracked();
                // The first reading has nothing to compare with.
                if before.at_ms > 0.0 {
                    let quality = Quality::between(&before, &sample);
                    if let Some(peer) = driver.mesh.borrow().get(&conn) {
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
}

/// What we say about ourselves on every data channel: the one place that decides it. Read
/// in the effect that announces it (in `start`), which so tracks whatever it reads; a
/// signal already disposed reads as its default.
fn presence(view: &CallView) -> PeerMessage {
    let name = view.name.try_get().flatten();
    let listening = view.listening.try_get().unwrap_or_default();
    let sharing = view.sharing.try_get().unwrap_or_default();
    PeerMessage::Presence(Presence { name, listening, sharing })
}

/// The engine's clock: milliseconds since the epoch.
fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// Sets `signal` to `value` if that changes it (a set wakes every view that reads it).
fn change<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    if signal.with_untracked(|current| *current != value) {
        signal.set(value);
    }
}

/// Runs `f` on the call if it still exists: callbacks hold a weak reference, so a closed
/// page's late events do nothing.
fn with(weak: &Weak<Driver>, f: impl FnOnce(&Rc<Driver>)) {
    if let Some(driver) = weak.upgrade() {
        f(&driver);
    }
}
