//! The microphone.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamConstraints};

use crate::browser;
use crate::error::CallError;

/// What we ask of the microphone: the browser's voice processing on (echo cancellation,
/// noise suppression, automatic gain), mono at Opus's native 48 kHz. All are `ideal`, not
/// `exact`, so a device that cannot do one still opens.
const VOICE: &str = r#"{
    "audio": {
        "echoCancellation": {"ideal": true},
        "noiseSuppression": {"ideal": true},
        "autoGainControl": {"ideal": true},
        "channelCount": {"ideal": 1},
        "sampleRate": {"ideal": 48000}
    },
    "video": false
}"#;

/// What we ask of the camera: 720p30 on a computer; on a phone (coarse pointer) 360p at a
/// lower rate, which its uplink and battery can sustain. The front camera.
const CAMERA_DESKTOP: &str =
    r#"{"audio": false, "video": {"width": {"ideal": 1280}, "height": {"ideal": 720}, "frameRate": {"ideal": 30}}}"#;
const CAMERA_PHONE: &str = r#"{"audio": false, "video": {"width": {"ideal": 640}, "height": {"ideal": 360},
    "frameRate": {"ideal": 24}, "facingMode": {"ideal": "user"}}}"#;

/// Opens the camera.
pub async fn open_camera() -> Result<MediaStream, CallError> {
    let constraints = if is_phone() { CAMERA_PHONE } else { CAMERA_DESKTOP };
    get_user_media(constraints).await.map_err(|error| match error {
        CallError::MicDenied | CallError::NoMic | CallError::MicBusy => CallError::CameraUnavailable,
        other => other,
    })
}

/// Whether this is a phone or tablet (a coarse pointer: a finger).
pub fn is_phone() -> bool {
    web_sys::window()
        .and_then(|window| window.match_media("(pointer: coarse)").ok().flatten())
        .is_some_and(|query| query.matches())
}

/// Checks that this page can make calls at all, before asking for anything.
pub fn check_support() -> Result<(), CallError> {
    let window = web_sys::window().ok_or(CallError::NoWebRtc)?;
    if !window.is_secure_context() {
        return Err(CallError::Insecure);
    }
    if !browser::has_global("RTCPeerConnection") {
        return Err(CallError::NoWebRtc);
    }
    Ok(())
}

/// Opens the microphone. Must follow a user gesture on phones.
pub async fn open_microphone() -> Result<MediaStream, CallError> {
    get_user_media(VOICE).await
}

async fn get_user_media(constraints: &str) -> Result<MediaStream, CallError> {
    check_support()?;
    let navigator = web_sys::window().ok_or(CallError::NoWebRtc)?.navigator();
    let devices = navigator.media_devices().map_err(|_| CallError::Insecure)?;
    let constraints: MediaStreamConstraints =
        js_sys::JSON::parse(constraints).map_err(|e| CallError::unexpected(&e))?.unchecked_into();
    let request = devices.get_user_media_with_constraints(&constraints).map_err(|e| CallError::from_media(&e))?;
    let stream = JsFuture::from(request).await.map_err(|e| CallError::from_media(&e))?;
    Ok(stream.unchecked_into())
}

/// Turns every track of `stream` on or off; a disabled audio track sends silence.
pub fn set_enabled(stream: &MediaStream, enabled: bool) {
    for track in stream.get_tracks() {
        track.unchecked_into::<web_sys::MediaStreamTrack>().set_enabled(enabled);
    }
}

/// Whether `stream` has a video track that is live and not muted.
pub fn shows_video(stream: &MediaStream) -> bool {
    stream.get_video_tracks().iter().any(|track| {
        let track: web_sys::MediaStreamTrack = track.unchecked_into();
        track.ready_state() == web_sys::MediaStreamTrackState::Live && !track.muted()
    })
}

/// Stops every track, releasing the device (the browser's "in use" indicator goes off).
pub fn stop(stream: &MediaStream) {
    for track in stream.get_tracks() {
        track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
    }
}

/// The voice processing a browser applied (`MediaStreamTrack.getSettings()`), which may
/// differ from what was asked: a device or browser can refuse any of it.
#[derive(Clone, Debug, PartialEq)]
pub struct MicSettings {
    /// Echo cancellation on.
    pub echo_cancellation: Option<bool>,
    /// Noise suppression on.
    pub noise_suppression: Option<bool>,
    /// Automatic gain control on.
    pub auto_gain_control: Option<bool>,
    /// Sample rate, Hz.
    pub sample_rate: Option<u32>,
    /// Channels.
    pub channel_count: Option<u32>,
}

impl MicSettings {
    /// The settings of the first audio track of `stream`.
    pub fn of(stream: &MediaStream) -> Option<Self> {
        let track: web_sys::MediaStreamTrack = stream.get_audio_tracks().get(0).dyn_into().ok()?;
        let settings: wasm_bindgen::JsValue = track.get_settings().into();
        let flag = |key: &str| js_sys::Reflect::get(&settings, &key.into()).ok()?.as_bool();
        let number = |key: &str| js_sys::Reflect::get(&settings, &key.into()).ok()?.as_f64().map(|n| n as u32);
        Some(Self {
            echo_cancellation: flag("echoCancellation"),
            noise_suppression: flag("noiseSuppression"),
            auto_gain_control: flag("autoGainControl"),
            sample_rate: number("sampleRate"),
            channel_count: number("channelCount"),
        })
    }
}

/// A live level meter on our own microphone (Web Audio `AnalyserNode`), so a person can
/// see that the microphone hears them. Stopped on drop.
pub struct MicMeter {
    context: web_sys::AudioContext,
    _timer: gloo_timers::callback::Interval,
}

impl MicMeter {
    /// How often the level is read, ms: smooth enough for the eye, and with the window
    /// below, nearly every sample is seen (a click or a plosive is not missed).
    const PERIOD_MS: u32 = 50;
    /// Samples per reading: about 43 ms at 48 kHz.
    const WINDOW: u32 = 2048;

    /// An audio context for a meter. Make it in the click that asks for the microphone:
    /// made later, outside the user gesture, it may stay suspended and hear nothing.
    pub fn context() -> Option<web_sys::AudioContext> {
        web_sys::AudioContext::new().ok()
    }

    /// Meters `stream` in `context`, writing its level (peak-held RMS) into `level` twenty
    /// times a second.
    pub fn start(
        context: web_sys::AudioContext,
        stream: &MediaStream,
        level: leptos::prelude::RwSignal<f64>,
    ) -> Result<Self, CallError> {
        use leptos::prelude::Set;
        let unexpected = |e: wasm_bindgen::JsValue| CallError::unexpected(&e);
        let source = context.create_media_stream_source(stream).map_err(unexpected)?;
        let analyser = context.create_analyser().map_err(unexpected)?;
        analyser.set_fft_size(Self::WINDOW);
        source.connect_with_audio_node(&analyser).map_err(unexpected)?;
        // A context can start suspended where the browser's autoplay policy is strict.
        if context.state() != web_sys::AudioContextState::Running {
            let _ = context.resume();
        }
        let mut block = vec![0f32; analyser.fft_size() as usize];
        let timer = gloo_timers::callback::Interval::new(Self::PERIOD_MS, move || {
            use leptos::prelude::GetUntracked;
            analyser.get_float_time_domain_data(&mut block);
            level.set(shared::stats::meter(level.get_untracked(), shared::stats::rms(&block)));
        });
        Ok(Self { context, _timer: timer })
    }
}

impl Drop for MicMeter {
    fn drop(&mut self) {
        let _ = self.context.close();
    }
}
