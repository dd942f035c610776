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
    check_support()?;
    let navigator = web_sys::window().ok_or(CallError::NoWebRtc)?.navigator();
    let devices = navigator.media_devices().map_err(|_| CallError::Insecure)?;
    let constraints: MediaStreamConstraints =
        js_sys::JSON::parse(VOICE).map_err(|e| CallError::unexpected(&e))?.unchecked_into();
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
