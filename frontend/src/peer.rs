//! One `RTCPeerConnection` to one remote peer: the browser's end of one of the engine's
//! links ([`shared::engine`]). It carries out the operations the engine hands out, one at
//! a time, and reports trickle ICE candidates, connection states and renegotiation needs
//! back; it also reads `getStats` and applies the bitrate controllers' targets. It carries
//! the data channel of [`shared::chat`] too: what the people say to each other.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use gloo_events::EventListener;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::bitrate::{AudioBitrate, VideoLadder, VideoTier};
use shared::call::Link;
use shared::chat::{self, LOG_MAX_ENTRIES, PeerMessage, Presence};
use shared::engine::{Candidate, Ice, SdpKind};
use shared::protocol::IceTransportPolicy;
use shared::room::PeerId;
use shared::stats::{self, CandidateType, Hint, HintHold, Quality, Sample};
use shared::verify;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit,
    RtcDataChannelState, RtcIceCandidateInit, RtcIceServer, RtcIceTransportPolicy, RtcOfferOptions, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcSdpType, RtcSessionDescriptionInit,
    RtcTrackEvent,
};

use crate::browser;
use crate::error::CallError;

/// What the UI shows of one remote peer. Signals only, so it is `Copy` and the driver can
/// update it from any callback.
#[derive(Clone, Copy)]
pub struct PeerView {
    /// The relay-assigned id.
    pub id: PeerId,
    /// Unique for the page's life (the engine's [`shared::engine::Conn`]). Ids are not: a
    /// restarted relay numbers peers from 1 again, and a list keyed by id would keep
    /// showing a replaced connection's row.
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
    /// The verification code both people see while the link is up ([`shared::verify`]).
    pub verification: RwSignal<Option<String>>,
    /// What this peer last said about itself on the data channel: its name, whether it
    /// only listens or shares its screen.
    pub presence: RwSignal<Presence>,
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
            verification: RwSignal::new(None),
            presence: RwSignal::new(Presence::default()),
        }
    }
}

/// What a connection reports: the engine hears each as an [`shared::engine::Input`].
pub enum PeerEvent {
    /// A local ICE candidate to send the peer.
    Candidate(Candidate),
    /// `connectionState` changed.
    Connection(Link),
    /// `connectionState` is `failed` while ICE is connected: DTLS failed.
    DtlsFailed,
    /// `negotiationneeded` fired.
    NegotiationNeeded,
    /// The data channel opened: time to say who we are.
    ChannelOpen,
    /// The peer said something on the data channel (checked by [`PeerMessage::decode`]).
    Message(PeerMessage),
}

/// A connection to one remote peer: the browser's end of one of the engine's links. It
/// carries out the operations it is given and reports what the connection does; which
/// operation comes next is the engine's decision. Dropping it closes the connection and
/// silences it.
pub struct Peer {
    pc: RtcPeerConnection,
    view: PeerView,
    /// Our microphone (and camera) have been put on the connection.
    sending: Cell<bool>,
    /// Picks our audio bitrate toward this peer from each second's quality.
    bitrate: RefCell<AudioBitrate>,
    /// Picks our video tier toward this peer while the camera is on.
    video: RefCell<Option<Video>>,
    /// Steadies the quality hint.
    hint: RefCell<HintHold>,
    /// The data channel, from our first description on, and its listeners.
    channel: RefCell<Option<(RtcDataChannel, [EventListener; 2])>>,
    /// What was said before the data channel opened, sent once it does.
    outbox: Rc<RefCell<VecDeque<String>>>,
    report: Rc<dyn Fn(PeerEvent)>,
    _listeners: [EventListener; 4],
}

/// What an operation on the connection yields: the local SDP it made, if it made one.
pub type Operation = Result<Option<String>, JsValue>;

impl Peer {
    /// Opens a connection to `view.id` with the relay's ICE servers; `report` hears what it
    /// does (never after it is dropped).
    pub fn new(view: PeerView, ice: &Ice, report: impl Fn(PeerEvent) + 'static) -> Result<Self, JsValue> {
        let pc = RtcPeerConnection::new_with_configuration(&configuration(ice))?;
        let report: Rc<dyn Fn(PeerEvent)> = Rc::new(report);
        let (candidates, states, negotiations) = (report.clone(), report.clone(), report.clone());
        let state_of = pc.clone();
        let listeners = [
            EventListener::new(&pc, "icecandidate", move |event| {
                let Some(candidate) = event.dyn_ref::<RtcPeerConnectionIceEvent>().and_then(|e| e.candidate()) else {
                    return;
                };
                // An empty candidate marks the end of gathering; the protocol does not carry it.
                if !candidate.candidate().is_empty() {
                    candidates(PeerEvent::Candidate(Candidate {
                        candidate: candidate.candidate(),
                        sdp_mid: candidate.sdp_mid(),
                        sdp_m_line_index: candidate.sdp_m_line_index(),
                    }));
                }
            }),
            EventListener::new(&pc, "connectionstatechange", move |_| {
                let state = JsValue::from(state_of.connection_state()).as_string().unwrap_or_default();
                let ice =
                    js_sys::Reflect::get(&state_of, &"iceConnectionState".into()).ok().and_then(|s| s.as_string());
                if state == "failed" && matches!(ice.as_deref(), Some("connected" | "completed")) {
                    states(PeerEvent::DtlsFailed);
                } else {
                    states(PeerEvent::Connection(Link::from_connection_state(&state)));
                }
            }),
            EventListener::new(&pc, "negotiationneeded", move |_| negotiations(PeerEvent::NegotiationNeeded)),
            EventListener::new(&pc, "track", move |event| {
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
        ];
        Ok(Self {
            pc,
            view,
            sending: Cell::new(false),
            bitrate: RefCell::new(AudioBitrate::new(js_sys::Date::now())),
            video: RefCell::new(None),
            hint: RefCell::default(),
            channel: RefCell::new(None),
            outbox: Rc::default(),
            report,
            _listeners: listeners,
        })
    }

    /// Makes the data channel, before our first description: an offer then carries its
    /// `m=application` section, and an answer to an offer without one is followed by our
    /// offer with it (the browser asks for negotiation). Not when the connection is made:
    /// the side that answers makes its connection when the relay says a peer joined, before
    /// the peer's offer, and a channel made then would have it offer too (a collision at
    /// every join).
    fn open_channel(&self) {
        if self.channel.borrow().is_some() {
            return;
        }
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(chat::CHANNEL_ID);
        let channel = self.pc.create_data_channel_with_data_channel_dict(chat::CHANNEL_LABEL, &init);
        let (opened, heard) = (self.report.clone(), self.report.clone());
        let (waiting, sender) = (self.outbox.clone(), channel.clone());
        let listeners = [
            EventListener::new(&channel, "open", move |_| {
                opened(PeerEvent::ChannelOpen);
                for frame in waiting.borrow_mut().drain(..) {
                    send_frame(&sender, &frame);
                }
            }),
            EventListener::new(&channel, "message", move |event| {
                let frame = event.dyn_ref::<MessageEvent>().and_then(|e| e.data().as_string());
                match frame.as_deref().map(PeerMessage::decode) {
                    Some(Ok(message)) => heard(PeerEvent::Message(message)),
                    Some(Err(error)) => leptos::logging::warn!("ignored a message from the peer: {error}"),
                    None => leptos::logging::warn!("ignored a binary message from the peer"),
                }
            }),
        ];
        *self.channel.borrow_mut() = Some((channel, listeners));
    }

    /// Says `message` to the peer on the data channel, or once it opens. What waits is
    /// bounded like the chat's log: past that, the oldest goes.
    pub fn tell(&self, message: &PeerMessage) {
        let frame = message.encode();
        match &*self.channel.borrow() {
            Some((channel, _)) if channel.ready_state() == RtcDataChannelState::Open => send_frame(channel, &frame),
            _ => {
                let mut outbox = self.outbox.borrow_mut();
                if outbox.len() == LOG_MAX_ENTRIES {
                    outbox.pop_front();
                }
                outbox.push_back(frame);
            }
        }
    }

    /// What the UI shows of this peer.
    pub fn view(&self) -> PeerView {
        self.view
    }

    /// Whether our media is on the connection.
    pub fn sending(&self) -> bool {
        self.sending.get()
    }

    /// Puts our microphone's tracks and our camera on the connection (once: before the
    /// first description we make).
    pub fn send(&self, microphone: Option<&MediaStream>, camera: Option<&MediaStream>) {
        if self.sending.replace(true) {
            return;
        }
        match microphone {
            Some(microphone) => {
                for track in microphone.get_audio_tracks() {
                    self.pc.add_track_0(&track.unchecked_into::<MediaStreamTrack>(), microphone);
                }
            }
            // Listening: we still receive audio, and our microphone can join the same
            // transceiver later ([`Peer::replace_audio`]).
            None if self.transceiver("audio").is_none() => {
                let init = web_sys::RtcRtpTransceiverInit::new();
                init.set_direction(RtcRtpTransceiverDirection::Recvonly);
                self.pc.add_transceiver_with_str_and_init("audio", &init);
            }
            None => {}
        }
        if camera.is_some() {
            self.set_video(camera);
        }
    }

    /// Makes and sets a local offer, gathering new ICE credentials if `ice_restart`.
    pub fn offer(&self, ice_restart: bool) -> impl Future<Output = Operation> + use<> {
        self.open_channel();
        prefer_redundant_audio(&self.pc);
        let pc = self.pc.clone();
        async move {
            let options = RtcOfferOptions::new();
            options.set_ice_restart(ice_restart);
            let offer = JsFuture::from(pc.create_offer_with_rtc_offer_options(&options)).await?;
            JsFuture::from(pc.set_local_description(offer.unchecked_ref())).await?;
            Ok(pc.local_description().map(|description| description.sdp()))
        }
    }

    /// Makes and sets the answer to the remote offer (the implicit `setLocalDescription()`).
    pub fn answer(&self) -> impl Future<Output = Operation> + use<> {
        self.open_channel();
        prefer_redundant_audio(&self.pc);
        let pc = self.pc.clone();
        async move {
            browser::call_async(&pc, "setLocalDescription", &[]).await?;
            Ok(pc.local_description().map(|description| description.sdp()))
        }
    }

    /// Rolls our local offer back.
    pub fn rollback(&self) -> impl Future<Output = Operation> + use<> {
        let pc = self.pc.clone();
        async move {
            let rollback = RtcSessionDescriptionInit::new(RtcSdpType::Rollback);
            JsFuture::from(pc.set_local_description(&rollback)).await?;
            Ok(None)
        }
    }

    /// Applies the peer's offer or answer.
    pub fn set_remote(&self, kind: SdpKind, sdp: &str) -> impl Future<Output = Operation> + use<> {
        let description = RtcSessionDescriptionInit::new(match kind {
            SdpKind::Offer => RtcSdpType::Offer,
            SdpKind::Answer => RtcSdpType::Answer,
        });
        description.set_sdp(sdp);
        let applied = JsFuture::from(self.pc.set_remote_description(&description));
        async move {
            applied.await?;
            Ok(None)
        }
    }

    /// Adds the peer's candidates, in order. One that does not fit (a candidate of an offer
    /// that was replaced) is logged and skipped: it cannot stop the others.
    pub fn add_candidates(&self, candidates: Vec<Candidate>) -> impl Future<Output = Operation> + use<> {
        let pc = self.pc.clone();
        async move {
            for Candidate { candidate, sdp_mid, sdp_m_line_index } in candidates {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_m_line_index);
                let added = JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await;
                if let Err(error) = added {
                    leptos::logging::warn!("a candidate from the peer did not fit: {error:?}");
                }
            }
            Ok(None)
        }
    }

    /// The certificate fingerprints of our side and theirs, from the descriptions in place
    /// ([`shared::verify::fingerprint`]); none before both are set.
    pub fn fingerprints(&self) -> Option<(String, String)> {
        let ours = verify::fingerprint(&self.pc.local_description()?.sdp())?;
        let theirs = verify::fingerprint(&self.pc.remote_description()?.sdp())?;
        Some((ours, theirs))
    }

    /// Reads this connection's statistics. The future owns what it needs, so no borrow of
    /// the call is held while the browser gathers them.
    pub fn stats(&self) -> impl Future<Output = Result<(Sample, Option<u32>), CallError>> + 'static {
        let request = self.pc.get_stats();
        let AudioSending { max_bitrate, codec } = self.audio_sending();
        async move {
            let report: js_sys::Map =
                JsFuture::from(request).await.map_err(|e| CallError::unexpected(&e))?.unchecked_into();
            Ok((Sample { send_codec: codec, ..read_sample(&report) }, max_bitrate))
        }
    }

    /// Sends our camera to this peer, or stops sending video (`None`). The one video
    /// transceiver is reused: turning the camera on or off renegotiates its direction and
    /// never touches the audio.
    pub fn set_video(&self, camera: Option<&MediaStream>) {
        let pc = &self.pc;
        let transceiver = self.transceiver("video");
        let track = camera.and_then(|stream| stream.get_video_tracks().get(0).dyn_into::<MediaStreamTrack>().ok());
        *self.video.borrow_mut() = track.as_ref().map(|track| {
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

    /// Sends `track` instead of our current microphone track (another device was picked),
    /// or, if we were listening, sends it from now on (a renegotiation follows).
    pub fn replace_audio(&self, track: &MediaStreamTrack) {
        let mut senders = self.senders("audio").peekable();
        if senders.peek().is_some() {
            senders.for_each(|sender| replace_track(&sender.unchecked_into(), Some(track)));
        } else if self.sending()
            && let Some(transceiver) = self.transceiver("audio")
        {
            replace_track(&transceiver.sender(), Some(track));
            transceiver.set_direction(RtcRtpTransceiverDirection::Sendrecv);
        }
    }

    /// The hint to show for this link after a second's quality (held steady).
    pub fn hint(&self, now_ms: f64, quality: &Quality) -> Option<Hint> {
        self.hint.borrow_mut().update(now_ms, quality)
    }

    /// Feeds a second's quality to the bitrate controllers, and applies their targets when
    /// they change (or were never applied: the sender then runs at the browser's default).
    /// Returns the video tier, while the camera is on.
    pub fn adapt(&self, now_ms: f64, quality: &Quality, applied: Option<u32>) -> Option<VideoTier> {
        let target = self.bitrate.borrow_mut().update(now_ms, quality);
        if applied != Some(target) {
            self.configure_senders("audio", |encoding| set(encoding, "maxBitrate", f64::from(target)));
        }
        let mut video = self.video.borrow_mut();
        let video = video.as_mut()?;
        let tier = video.ladder.update(now_ms, quality);
        if video.applied != Some(tier) {
            video.applied = Some(tier);
            let scale = tier.scale_down_from(video.camera_height);
            self.configure_senders("video", |encoding| {
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
///
/// Browsers differ: where there is no `transport` stats object (older Firefox) the selected
/// candidate pair is the one marked `selected`, or nominated and succeeded; where a receiver
/// report has no `fractionLost`, its counts stand in (see [`Sample::remote_fraction_lost`]).
fn read_sample(report: &js_sys::Map) -> Sample {
    let mut sample = Sample::default();
    let (mut selected_pair, mut marked_pair, mut codec_id, mut remote_rtt) =
        (String::new(), String::new(), String::new(), None);
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
                if let Some(fraction) = browser::optional_number(&stat, "fractionLost") {
                    sample.remote_fraction_lost = Some(sample.remote_fraction_lost.unwrap_or(0.0).max(fraction));
                }
                sample.remote_packets_lost += browser::number(&stat, "packetsLost") as i64;
                sample.remote_packets_received += browser::number(&stat, "packetsReceived") as u64;
                remote_rtt = Some(browser::number(&stat, "roundTripTime")).filter(|rtt| *rtt > 0.0);
            }
            "transport" => selected_pair = browser::string(&stat, "selectedCandidatePairId"),
            "candidate-pair"
                if browser::flag(&stat, "selected")
                    || (browser::flag(&stat, "nominated") && browser::string(&stat, "state") == "succeeded") =>
            {
                marked_pair = browser::string(&stat, "id");
            }
            _ => {}
        }
    });
    if selected_pair.is_empty() {
        selected_pair = marked_pair;
    }
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

/// Puts RED (RFC 2198: each packet also carries the one before, so a lost packet is
/// recovered from the next) ahead of plain Opus on our audio, before we make a
/// description. The other side sends RED too if it has it (Chromium does); where either
/// side lacks it (Firefox 153), the description agrees on Opus alone.
///
/// Reached by name: web-sys's bindings for `getCapabilities` and `setCodecPreferences`
/// throw through the wasm where a browser lacks them or rejects the list, and a call must
/// go on without RED instead.
fn prefer_redundant_audio(pc: &RtcPeerConnection) {
    let Ok(receiver) = js_sys::Reflect::get(&js_sys::global(), &"RTCRtpReceiver".into()) else { return };
    let Ok(capabilities) = browser::call(&receiver, "getCapabilities", &[&"audio".into()]) else { return };
    let Ok(codecs) = js_sys::Reflect::get(&capabilities, &"codecs".into()).and_then(|c| c.dyn_into::<js_sys::Array>())
    else {
        return;
    };
    let (red, others): (Vec<JsValue>, Vec<JsValue>) =
        codecs.iter().partition(|codec| browser::string(codec, "mimeType").eq_ignore_ascii_case(stats::RED));
    if red.is_empty() {
        return;
    }
    let preferred: js_sys::Array = red.into_iter().chain(others).collect();
    for transceiver in pc.get_transceivers().iter().map(JsCast::unchecked_into::<RtcRtpTransceiver>) {
        if transceiver.receiver().track().kind() == "audio"
            && let Err(error) = browser::call(&transceiver, "setCodecPreferences", &[&preferred])
        {
            leptos::logging::warn!("could not prefer redundant audio: {error:?}");
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.pc.close();
    }
}

impl Peer {
    /// The first transceiver that receives `kind` (`audio` or `video`).
    fn transceiver(&self, kind: &str) -> Option<RtcRtpTransceiver> {
        self.pc
            .get_transceivers()
            .iter()
            .map(JsCast::unchecked_into::<RtcRtpTransceiver>)
            .find(|t| t.receiver().track().kind() == kind)
    }

    /// Our senders whose track is of `kind` (`audio` or `video`).
    fn senders(&self, kind: &'static str) -> impl Iterator<Item = JsValue> {
        self.pc.get_senders().into_iter().filter(move |sender| {
            let track = js_sys::Reflect::get(sender, &"track".into()).unwrap_or_default();
            browser::string(&track, "kind") == kind
        })
    }

    /// How our first audio sender sends, from its parameters.
    fn audio_sending(&self) -> AudioSending {
        let Some(parameters) = self.senders("audio").next().and_then(|s| browser::call(&s, "getParameters", &[]).ok())
        else {
            return AudioSending::default();
        };
        let first = |key: &str| {
            js_sys::Reflect::get(&parameters, &key.into()).ok()?.dyn_into::<js_sys::Array>().ok().map(|a| a.get(0))
        };
        let max_bitrate = first("encodings").map(|e| browser::number(&e, "maxBitrate") as u32).filter(|bps| *bps > 0);
        let codec = first("codecs").map(|c| browser::string(&c, "mimeType")).filter(|m| !m.is_empty());
        AudioSending { max_bitrate, codec }
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
}

/// How our audio sender sends, as its `getParameters()` says.
#[derive(Default)]
struct AudioSending {
    /// The first encoding's `maxBitrate`, if set.
    max_bitrate: Option<u32>,
    /// The MIME type of the codec it sends with: the first of the negotiated `codecs`
    /// (`audio/red` when the peer asked for RED). getStats cannot tell: it names the Opus
    /// inside RED.
    codec: Option<String>,
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

/// Sends `frame` on `channel`; a channel that closed meanwhile drops it.
fn send_frame(channel: &RtcDataChannel, frame: &str) {
    if let Err(error) = channel.send_with_str(frame) {
        leptos::logging::warn!("could not send on the data channel: {error:?}");
    }
}

/// Sets `object[key] = value`.
fn set(object: &JsValue, key: &str, value: impl Into<JsValue>) {
    let _ = js_sys::Reflect::set(object, &key.into(), &value.into());
}

/// The `RTCConfiguration` for the relay's word on ICE.
fn configuration(ice: &Ice) -> RtcConfiguration {
    let servers = js_sys::Array::new();
    for server in &ice.servers {
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
    configuration.set_ice_transport_policy(match ice.policy {
        IceTransportPolicy::All => RtcIceTransportPolicy::All,
        IceTransportPolicy::Relay => RtcIceTransportPolicy::Relay,
    });
    configuration
}
