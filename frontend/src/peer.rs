//! One `RTCPeerConnection` to one remote peer, negotiated with the perfect negotiation
//! pattern ([`shared::negotiation`]) over trickle ICE.

use std::cell::Cell;
use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::call::{CONNECT_TIMEOUT, Link};
use shared::negotiation::{self, OfferAction, Role};
use shared::protocol::{IceServer, IceTransportPolicy, Signal};
use shared::room::PeerId;
use shared::stats::{CandidateType, Sample};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, RtcConfiguration, RtcIceCandidateInit, RtcIceServer, RtcIceTransportPolicy,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSdpType, RtcSessionDescriptionInit, RtcSignalingState,
    RtcTrackEvent,
};

use crate::browser;
use crate::error::CallError;

/// What the UI shows of one remote peer. Signals only, so it is `Copy` and the engine can
/// update it from any callback.
#[derive(Clone, Copy)]
pub struct PeerView {
    /// The relay-assigned id.
    pub id: PeerId,
    /// The state of the media link.
    pub link: RwSignal<Link>,
    /// The latest statistics reading.
    pub stats: RwSignal<Sample>,
    /// The RMS level heard from this peer over the last second.
    pub level: RwSignal<f64>,
    /// What this peer sends us, once its first track arrives.
    pub stream: RwSignal<Option<MediaStream>, LocalStorage>,
}

impl PeerView {
    /// A peer we have not heard yet.
    pub fn new(id: PeerId) -> Self {
        Self {
            id,
            link: RwSignal::new(Link::Connecting),
            stats: RwSignal::new(Sample::default()),
            level: RwSignal::new(0.0),
            stream: RwSignal::new_local(None),
        }
    }
}

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
                view.stream.set(Some(stream));
            }),
            Inner::listen(&inner, "connectionstatechange", move |inner, _| {
                view.link.set(Link::from_connection_state(&browser::string(&inner.pc, "connectionState")));
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
    pub fn stats(&self) -> impl Future<Output = Result<Sample, CallError>> + 'static {
        let request = self.inner.pc.get_stats();
        async move {
            let report: js_sys::Map =
                JsFuture::from(request).await.map_err(|e| CallError::unexpected(&e))?.unchecked_into();
            let mut sample = Sample::default();
            let mut selected_pair = None;
            // RTCStatsReport is a maplike of stats dictionaries keyed by id; its forEach and
            // get are Map's.
            report.for_each(&mut |stat, _| match browser::string(&stat, "type").as_str() {
                "inbound-rtp" if browser::string(&stat, "kind") == "audio" => {
                    sample.bytes_received += browser::number(&stat, "bytesReceived") as u64;
                    sample.total_audio_energy += browser::number(&stat, "totalAudioEnergy");
                    sample.total_samples_duration += browser::number(&stat, "totalSamplesDuration");
                }
                "outbound-rtp" if browser::string(&stat, "kind") == "audio" => {
                    sample.bytes_sent += browser::number(&stat, "bytesSent") as u64
                }
                "transport" => selected_pair = Some(browser::string(&stat, "selectedCandidatePairId")),
                _ => {}
            });
            let pair = report.get(&selected_pair.unwrap_or_default().into());
            let local = report.get(&browser::string(&pair, "localCandidateId").into());
            sample.path = CandidateType::parse(&browser::string(&local, "candidateType"));
            Ok(sample)
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.inner.pc.close();
    }
}

impl Inner {
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
        browser::call_async(&self.pc, "setLocalDescription").await?;
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
