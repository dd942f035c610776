//! One `RTCPeerConnection` to one remote peer, negotiated with the perfect negotiation
//! pattern ([`shared::negotiation`]) over trickle ICE.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::bitrate::{AudioBitrate, VideoLadder, VideoTier};
use shared::call::{CONNECT_TIMEOUT, Link};
use shared::negotiation::{self, OfferAction, Role};
use shared::protocol::{IceServer, IceTransportPolicy, Signal};
use shared::room::PeerId;
use shared::stats::{CandidateType, Hint, HintHold, Quality, Sample};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, RtcConfiguration, RtcIceCandidateInit, RtcIceServer, RtcIceTransportPolicy,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcSdpType,
    RtcSessionDescriptionInit, RtcSignalingState, RtcTrackEvent,
};

use crate::browser;
use crate::error::CallError;

/// What the UI shows of one remote peer. Signals only, so it is `Copy` and the engine can
/// update it from any callback.
#[derive(Clone, Copy)]
pub struct PeerView {
    /// The relay-assigned id.
    pub id: PeerId,
    /// Unique for the page's life. Ids are not: a restarted relay numbers peers from 1
    /// again, and a list keyed by id would keep showing a replaced connection's row.
    pub key: u64,
    /// The state of the media link.
    pub link: RwSignal<Link>,
    /// The latest statistics reading.
    pub stats: RwSignal<Sample>,
    /// The link over the last second: RTT, jitter, loss, bitrates, level, MOS.
    pub quality: RwSignal<Quality>,
    /// The `maxBitrate` our audio sender to this peer runs at, as the browser reports it.
    pub max_bitrate: RwSignal<Option<u32>>,
    /// The rung our camera sender to this peer is on, while the camera is on.
    pub video_tier: RwSignal<Option<VideoTier>>,
    /// What to tell the person about this link's quality, held steady.
    pub hint: RwSignal<Option<Hint>>,
    /// What this peer sends us, once its first track arrives.
    pub stream: RwSignal<Option<MediaStream>, LocalStorage>,
    /// The stream carrying this peer's camera, once it has turned it on.
    pub video: RwSignal<Option<MediaStream>, LocalStorage>,
    /// Whether that camera is showing now.
    pub showing_video: RwSignal<bool>,
}

impl PeerView {
    /// A peer we have not heard yet; `key` must never have been used before.
    pub fn new(id: PeerId, key: u64) -> Self {
        Self {
            id,
            key,
            link: RwSignal::new(Link::Connecting),
            stats: RwSignal::new(Sample::default()),
            quality: RwSignal::new(Quality::default()),
            max_bitrate: RwSignal::new(None),
            video_tier: RwSignal::new(None),
            hint: RwSignal::new(None),
            stream: RwSignal::new_local(None),
            video: RwSignal::new_local(None),
            showing_video: RwSignal::new(false),
        }
    }
}

/// How long a disconnected link gets to recover by itself before an ICE restart.
const ICE_RESTART_AFTER_MS: u32 = 3_000;

/// A connection to one remote peer. Dropping it closes the connection.
pub struct Peer {
    inner: Rc<Inner>,
    _listeners: [EventListener; 4],
    /// Gives the link up if it is still connecting after [`CONNECT_TIMEOUT`].
    _give_up: Timeout,
}

struct Inner {
    pc: RtcPeerConnection,
    role: Role,
    /// Between starting and sending our own offer (perfect negotiation's `makingOffer`).
    making_offer: Cell<bool>,
    /// The last remote offer lost a collision; its candidates are expected to fail.
    ignore_offer: Cell<bool>,
    /// Our microphone's tracks have been added.
    sending: Cell<bool>,
    microphone: MediaStream,
    send: Box<dyn Fn(Signal)>,
    /// Picks our audio bitrate toward this peer from each second's quality.
    bitrate: RefCell<AudioBitrate>,
    /// Picks our video tier toward this peer while the camera is on.
    video: RefCell<Option<Video>>,
    /// Steadies the quality hint.
    hint: RefCell<HintHold>,
    /// Restarts ICE if the link stays disconnected.
    restart: RefCell<Option<Timeout>>,
}

impl Peer {
    /// Opens a connection to `view.id`. `send` delivers our signals to that peer. If our
    /// role is to offer first, the microphone's tracks go in now and the offer follows.
    pub fn new(
        view: PeerView,
        role: Role,
        ice: &Ice,
        microphone: MediaStream,
        send: impl Fn(Signal) + 'static,
    ) -> Result<Self, CallError> {
        let pc =
            RtcPeerConnection::new_with_configuration(&ice.configuration()).map_err(|e| CallError::unexpected(&e))?;
        let inner = Rc::new(Inner {
            pc,
            role,
            making_offer: Cell::new(false),
            ignore_offer: Cell::new(false),
            sending: Cell::new(false),
            microphone,
            send: Box::new(send),
            bitrate: RefCell::new(AudioBitrate::new(js_sys::Date::now())),
            video: RefCell::new(None),
            hint: RefCell::default(),
            restart: RefCell::new(None),
        });
        let listeners = [
            Inner::listen(&inner, "negotiationneeded", |inner, _| spawn_local(inner.clone().offer())),
            Inner::listen(&inner, "icecandidate", |inner, event| {
                if let Some(candidate) = event.dyn_ref::<RtcPeerConnectionIceEvent>().and_then(|e| e.candidate()) {
                    // An empty candidate marks the end of gathering; the protocol does not carry it.
                    if !candidate.candidate().is_empty() {
                        (inner.send)(Signal::Candidate {
                            candidate: candidate.candidate(),
                            sdp_mid: candidate.sdp_mid(),
                            sdp_m_line_index: candidate.sdp_m_line_index(),
                        });
                    }
                }
            }),
            Inner::listen(&inner, "track", move |_, event| {
                let Some(event) = event.dyn_ref::<RtcTrackEvent>() else {
                    return;
                };
                let stream = match event.streams().get(0).dyn_into::<MediaStream>() {
                    Ok(stream) => stream,
                    Err(_) => {
                        let Ok(stream) = MediaStream::new() else {
                            return;
                        };
                        stream.add_track(&event.track());
                        stream
                    }
                };
                if event.track().kind() == "video" {
                    view.video.set(Some(stream));
                    view.showing_video.set(true);
                } else {
                    view.stream.set(Some(stream));
                }
            }),
            Inner::listen(&inner, "connectionstatechange", move |inner, _| {
                let link = Link::from_connection_state(&browser::string(&inner.pc, "connectionState"));
                view.link.set(link);
                inner.recover(link);
            }),
        ];
        if role.offers_first {
            inner.start_sending();
        }
        let give_up = Timeout::new(CONNECT_TIMEOUT.as_millis() as u32, move || {
            if view.link.get_untracked() == Link::Connecting {
                view.link.set(Link::Failed);
            }
        });
        Ok(Self { inner, _listeners: listeners, _give_up: give_up })
    }

    /// Acts on a signal from this peer.
    pub fn on_signal(&self, signal: Signal) {
        spawn_local(Inner::on_signal(self.inner.clone(), signal));
    }

    /// Reads this connection's statistics. The future owns what it needs, so no borrow of
    /// the call is held while the browser gathers them.
    pub fn stats(&self) -> impl Future<Output = Result<(Sample, Option<u32>), CallError>> + 'static {
        let request = self.inner.pc.get_stats();
        let max_bitrate = self.inner.max_bitrate();
        async move {
            let report: js_sys::Map =
                JsFuture::from(request).await.map_err(|e| CallError::unexpected(&e))?.unchecked_into();
            Ok((read_sample(&report), max_bitrate))
        }
    }

    /// Sends our camera to this peer, or stops sending video (`None`). The one video
    /// transceiver is reused: turning the camera on or off renegotiates its direction and
    /// never touches the audio.
    pub fn set_video(&self, camera: Option<&MediaStream>) {
        let pc = &self.inner.pc;
        let transceiver = pc
            .get_transceivers()
            .iter()
            .map(JsCast::unchecked_into::<RtcRtpTransceiver>)
            .find(|t| t.receiver().track().kind() == "video");
        let track = camera.and_then(|stream| stream.get_video_tracks().get(0).dyn_into::<MediaStreamTrack>().ok());
        *self.inner.video.borrow_mut() = track.as_ref().map(|track| {
            let settings: JsValue = track.get_settings().into();
            let height = browser::number(&settings, "height") as u32;
            let ceiling = if crate::media::is_phone() { VideoTier::Medium } else { VideoTier::High };
            Video { ladder: VideoLadder::new(js_sys::Date::now(), ceiling), camera_height: height, applied: None }
        });
        match (transceiver, track, camera) {
            (Some(transceiver), Some(track), _) => {
                replace_track(&transceiver.sender(), Some(&track));
                transceiver.set_direction(RtcRtpTransceiverDirection::Sendrecv);
            }
            (Some(transceiver), None, _) => {
                replace_track(&transceiver.sender(), None);
                transceiver.set_direction(RtcRtpTransceiverDirection::Recvonly);
            }
            (None, Some(track), Some(stream)) => {
                pc.add_track_0(&track, stream);
            }
            _ => {}
        }
    }

    /// Sends `track` instead of our current microphone track (another device was picked).
    pub fn replace_audio(&self, track: &MediaStreamTrack) {
        for sender in self.inner.senders("audio") {
            replace_track(&sender.unchecked_into(), Some(track));
        }
    }

    /// The hint to show for this link after a second's quality (held steady).
    pub fn hint(&self, now_ms: f64, quality: &Quality) -> Option<Hint> {
        self.inner.hint.borrow_mut().update(now_ms, quality)
    }

    /// Feeds a second's quality to the bitrate controllers, and applies their targets when
    /// they change (or were never applied: the sender then runs at the browser's default).
    /// Returns the video tier, while the camera is on.
    pub fn adapt(&self, now_ms: f64, quality: &Quality, applied: Option<u32>) -> Option<VideoTier> {
        let target = self.inner.bitrate.borrow_mut().update(now_ms, quality);
        if applied != Some(target) {
            self.inner.configure_senders("audio", |encoding| set(encoding, "maxBitrate", f64::from(target)));
        }
        let mut video = self.inner.video.borrow_mut();
        let video = video.as_mut()?;
        let tier = video.ladder.update(now_ms, quality);
        if video.applied != Some(tier) {
            video.applied = Some(tier);
            let scale = tier.scale_down_from(video.camera_height);
            self.inner.configure_senders("video", |encoding| {
                set(encoding, "active", tier != VideoTier::Off);
                if tier != VideoTier::Off {
                    set(encoding, "maxBitrate", f64::from(tier.max_bitrate()));
                    set(encoding, "scaleResolutionDownBy", scale);
                }
            });
        }
        Some(tier)
    }
}

/// Reads the audio figures of one `RTCStatsReport` (a maplike of stats dictionaries keyed
/// by id; its `forEach` and `get` are `Map`'s).
fn read_sample(report: &js_sys::Map) -> Sample {
    let mut sample = Sample::default();
    let (mut selected_pair, mut codec_id, mut remote_rtt) = (String::new(), String::new(), None);
    report.for_each(&mut |stat, _| {
        sample.at_ms = sample.at_ms.max(browser::number(&stat, "timestamp"));
        let audio = browser::string(&stat, "kind") == "audio";
        match browser::string(&stat, "type").as_str() {
            "inbound-rtp" if audio => {
                sample.bytes_received += browser::number(&stat, "bytesReceived") as u64;
                sample.packets_received += browser::number(&stat, "packetsReceived") as u64;
                sample.packets_lost += browser::number(&stat, "packetsLost") as i64;
                sample.jitter_s = sample.jitter_s.max(browser::number(&stat, "jitter"));
                sample.jitter_buffer_delay_s += browser::number(&stat, "jitterBufferDelay");
                sample.jitter_buffer_emitted += browser::number(&stat, "jitterBufferEmittedCount") as u64;
                sample.concealed_samples += browser::number(&stat, "concealedSamples") as u64;
                sample.total_samples_received += browser::number(&stat, "totalSamplesReceived") as u64;
                sample.total_audio_energy += browser::number(&stat, "totalAudioEnergy");
                sample.total_samples_duration += browser::number(&stat, "totalSamplesDuration");
                codec_id = browser::string(&stat, "codecId");
            }
            "outbound-rtp" if audio => {
                sample.bytes_sent += browser::number(&stat, "bytesSent") as u64;
            }
            "remote-inbound-rtp" if audio => {
                sample.remote_fraction_lost = sample.remote_fraction_lost.max(browser::number(&stat, "fractionLost"));
                remote_rtt = Some(browser::number(&stat, "roundTripTime")).filter(|rtt| *rtt > 0.0);
            }
            "transport" => selected_pair = browser::string(&stat, "selectedCandidatePairId"),
            _ => {}
        }
    });
    let pair = report.get(&selected_pair.into());
    let local = report.get(&browser::string(&pair, "localCandidateId").into());
    sample.path = CandidateType::parse(&browser::string(&local, "candidateType"));
    let available = browser::number(&pair, "availableOutgoingBitrate");
    sample.available_outgoing_bps = (available > 0.0).then_some(available);
    let pair_rtt = browser::number(&pair, "currentRoundTripTime");
    sample.rtt_s = if pair_rtt > 0.0 { Some(pair_rtt) } else { remote_rtt };
    let codec = browser::string(&report.get(&codec_id.into()), "mimeType");
    sample.codec = (!codec.is_empty()).then_some(codec);
    sample
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.inner.pc.close();
    }
}

impl Inner {
    /// Our senders whose track is of `kind` (`audio` or `video`).
    fn senders(&self, kind: &'static str) -> impl Iterator<Item = JsValue> {
        self.pc.get_senders().into_iter().filter(move |sender| {
            let track = js_sys::Reflect::get(sender, &"track".into()).unwrap_or_default();
            browser::string(&track, "kind") == kind
        })
    }

    /// The `maxBitrate` of our first audio sender's first encoding, if set.
    fn max_bitrate(&self) -> Option<u32> {
        let sender = self.senders("audio").next()?;
        let parameters = browser::call(&sender, "getParameters", &[]).ok()?;
        let encoding =
            js_sys::Reflect::get(&parameters, &"encodings".into()).ok()?.dyn_into::<js_sys::Array>().ok()?.get(0);
        Some(browser::number(&encoding, "maxBitrate") as u32).filter(|bps| *bps > 0)
    }

    /// Changes every encoding of our `kind` senders with `change`. `setParameters` takes
    /// the very object `getParameters` returned, changed; a fresh one is rejected.
    fn configure_senders(&self, kind: &'static str, change: impl Fn(&JsValue)) {
        for sender in self.senders(kind) {
            let Ok(parameters) = browser::call(&sender, "getParameters", &[]) else { continue };
            let encodings = js_sys::Reflect::get(&parameters, &"encodings".into()).unwrap_or_default();
            let Ok(encodings) = encodings.dyn_into::<js_sys::Array>() else { continue };
            encodings.iter().for_each(|encoding| change(&encoding));
            spawn_local(async move {
                if let Err(error) = browser::call_async(&sender, "setParameters", &[&parameters]).await {
                    leptos::logging::warn!("could not configure the {kind} sender: {error:?}");
                }
            });
        }
    }

    /// ICE restart: at once when the link failed, after a grace period when it dropped
    /// (a disconnected link often recovers by itself within seconds).
    fn recover(self: &Rc<Self>, link: Link) {
        let restart = |inner: &Self| {
            leptos::logging::log!("restarting ICE");
            let _ = browser::call(&inner.pc, "restartIce", &[]);
        };
        match link {
            Link::Failed => restart(self),
            Link::Disconnected => {
                let me = Rc::downgrade(self);
                let timer = Timeout::new(ICE_RESTART_AFTER_MS, move || {
                    if let Some(inner) = me.upgrade()
                        && Link::from_connection_state(&browser::string(&inner.pc, "connectionState"))
                            == Link::Disconnected
                    {
                        restart(&inner);
                    }
                });
                *self.restart.borrow_mut() = Some(timer);
            }
            Link::Connecting | Link::Connected => *self.restart.borrow_mut() = None,
        }
    }

    fn listen(
        inner: &Rc<Self>,
        name: &'static str,
        handler: impl Fn(&Rc<Self>, &web_sys::Event) + 'static,
    ) -> EventListener {
        let me = inner.clone();
        EventListener::new(&inner.pc, name, move |event| handler(&me, event))
    }

    fn start_sending(&self) {
        if self.sending.replace(true) {
            return;
        }
        for track in self.microphone.get_tracks() {
            self.pc.add_track_0(&track.unchecked_into::<MediaStreamTrack>(), &self.microphone);
        }
    }

    /// Sends a fresh local description: an offer when negotiation is needed, or the answer
    /// to the offer just applied (the implicit `setLocalDescription()` picks which).
    async fn describe(&self) -> Result<(), JsValue> {
        browser::call_async(&self.pc, "setLocalDescription", &[]).await?;
        let Some(description) = self.pc.local_description() else {
            return Ok(());
        };
        let sdp = description.sdp();
        match description.type_() {
            RtcSdpType::Offer => (self.send)(Signal::Offer { sdp }),
            RtcSdpType::Answer => (self.send)(Signal::Answer { sdp }),
            _ => {}
        }
        Ok(())
    }

    async fn offer(self: Rc<Self>) {
        self.making_offer.set(true);
        let result = self.describe().await;
        self.making_offer.set(false);
        if let Err(error) = result {
            leptos::logging::warn!("could not make an offer: {error:?}");
        }
    }

    async fn on_signal(self: Rc<Self>, signal: Signal) {
        let result = match signal {
            Signal::Offer { sdp } => self.on_description(RtcSdpType::Offer, &sdp).await,
            Signal::Answer { sdp } => self.on_description(RtcSdpType::Answer, &sdp).await,
            Signal::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_m_line_index);
                let added =
                    JsFuture::from(self.pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await;
                // Candidates of an offer we ignored cannot be added; that is expected.
                added.map(drop).or_else(|e| if self.ignore_offer.get() { Ok(()) } else { Err(e) })
            }
        };
        if let Err(error) = result {
            leptos::logging::warn!("signal from peer failed: {error:?}");
        }
    }

    async fn on_description(&self, kind: RtcSdpType, sdp: &str) -> Result<(), JsValue> {
        let is_offer = kind == RtcSdpType::Offer;
        let stable = self.pc.signaling_state() == RtcSignalingState::Stable;
        let ignore =
            is_offer && negotiation::on_offer(self.role, self.making_offer.get(), stable) == OfferAction::Ignore;
        self.ignore_offer.set(ignore);
        if ignore {
            return Ok(());
        }
        let description = RtcSessionDescriptionInit::new(kind);
        description.set_sdp(sdp);
        JsFuture::from(self.pc.set_remote_description(&description)).await?;
        if is_offer {
            // Added after the remote offer, our tracks reuse its transceivers and the answer
            // is two-way without another round of negotiation.
            self.start_sending();
            self.describe().await?;
        }
        Ok(())
    }
}

/// The video controller of one link, and what it last applied.
struct Video {
    ladder: VideoLadder,
    /// The height the camera captures, pixels.
    camera_height: u32,
    applied: Option<VideoTier>,
}

/// Puts `track` (or nothing) on `sender` in place of its current one: no renegotiation.
fn replace_track(sender: &web_sys::RtcRtpSender, track: Option<&MediaStreamTrack>) {
    let replaced = sender.replace_track(track);
    spawn_local(async move {
        if let Err(error) = JsFuture::from(replaced).await {
            leptos::logging::warn!("could not switch a track: {error:?}");
        }
    });
}

/// Sets `object[key] = value`.
fn set(object: &JsValue, key: &str, value: impl Into<JsValue>) {
    let _ = js_sys::Reflect::set(object, &key.into(), &value.into());
}

/// What the relay said about ICE: the servers and whether only TURN may be used.
#[derive(Clone, Debug, Default)]
pub struct Ice {
    /// STUN and TURN servers.
    pub servers: Vec<IceServer>,
    /// `all`, or `relay` for TURN only.
    pub policy: IceTransportPolicy,
}

impl Ice {
    fn configuration(&self) -> RtcConfiguration {
        let servers = js_sys::Array::new();
        for server in &self.servers {
            let entry = RtcIceServer::new();
            let urls: js_sys::Array = server.urls.iter().map(|u| JsValue::from_str(u)).collect();
            entry.set_urls(&urls);
            if let Some(username) = &server.username {
                entry.set_username(username);
            }
            if let Some(credential) = &server.credential {
                entry.set_credential(credential);
            }
            servers.push(&entry);
        }
        let configuration = RtcConfiguration::new();
        configuration.set_ice_servers(&servers);
        configuration.set_ice_transport_policy(match self.policy {
            IceTransportPolicy::All => RtcIceTransportPolicy::All,
            IceTransportPolicy::Relay => RtcIceTransportPolicy::Relay,
        });
        configuration
    }
}
