//! The microphone and camera: what the browser offers, opening a device, the level meter
//! and the test sound.

use js_sys::Promise;
use shared::agent::{Support, Verdict};
use shared::engine::DeviceError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, MediaStream, MediaStreamConstraints};

use crate::browser;
use crate::error::CallError;

/// What we ask of the microphone: the browser's voice processing on (echo cancellation,
/// noise suppression, automatic gain), mono at Opus's native 48 kHz. All are `ideal`, not
/// `exact`, so a device that cannot do one still opens. index.html's first paint asks for
/// the same when Join is tapped before the app runs.
const VOICE: &str = r#"{"audio": {"echoCancellation": {"ideal": true}, "noiseSuppression": {"ideal": true}, "autoGainControl": {"ideal": true}, "channelCount": {"ideal": 1}, "sampleRate": {"ideal": 48000}}, "video": false}"#;

/// What we ask of the camera: 720p30 on a computer; on a phone (coarse pointer) 360p at a
/// lower rate, which its uplink and battery can sustain. The front camera.
const CAMERA_DESKTOP: &str =
    r#"{"audio": false, "video": {"width": {"ideal": 1280}, "height": {"ideal": 720}, "frameRate": {"ideal": 30}}}"#;
const CAMERA_PHONE: &str = r#"{"audio": false, "video": {"width": {"ideal": 640}, "height": {"ideal": 360},
    "frameRate": {"ideal": 24}, "facingMode": {"ideal": "user"}}}"#;

/// Opens the camera: `device` if one was picked, else the browser's choice.
pub async fn open_camera(device: Option<&str>) -> Result<MediaStream, DeviceError> {
    let constraints = if is_phone() { CAMERA_PHONE } else { CAMERA_DESKTOP };
    get_user_media(constraints, "video", device).await
}

/// What we ask of the screen: the picture only, at most 1080p and 15 frames a second
/// (text stays sharp; the uplink a camera would use).
const SCREEN: &str = r#"{"audio": false, "video": {"height": {"max": 1080}, "frameRate": {"max": 15}}}"#;

/// Whether this browser can share the screen: desktops (`getDisplayMedia`); phones have
/// no such thing, or one that fails.
pub fn can_share_screen() -> bool {
    let devices = web_sys::window()
        .and_then(|window| js_sys::Reflect::get(&window.navigator(), &"mediaDevices".into()).ok())
        .unwrap_or_default();
    !is_phone() && !devices.is_undefined() && browser::has(&devices, "getDisplayMedia")
}

/// Asks the person which screen, window or tab to share (the browser's own picker).
pub async fn open_screen() -> Result<MediaStream, DeviceError> {
    let navigator = web_sys::window().ok_or_else(|| DeviceError::Other("no window".to_owned()))?.navigator();
    let devices = navigator.media_devices().map_err(other)?;
    let constraints = js_sys::JSON::parse(SCREEN).map_err(other)?;
    let request = browser::call(&devices, "getDisplayMedia", &[&constraints]).map_err(refused)?;
    let screen = opened(request.unchecked_into()).await?;
    // Text on a screen must stay sharp: the encoder gives up frames, not pixels, under
    // a tight budget (`contentHint` decides the degradation the sender uses).
    for track in screen.get_video_tracks().iter() {
        let _ = js_sys::Reflect::set(&track, &"contentHint".into(), &"detail".into());
    }
    Ok(screen)
}

/// Whether this is a phone or tablet (a coarse pointer: a finger).
pub fn is_phone() -> bool {
    web_sys::window()
        .and_then(|window| window.match_media("(pointer: coarse)").ok().flatten())
        .is_some_and(|query| query.matches())
}

/// What this browser offers of what a call needs. Read without asking for anything.
pub fn support() -> Support {
    let Some(window) = web_sys::window() else {
        return Support { secure: false, microphone: false, peer_connection: false, touch_points: 0 };
    };
    let devices = js_sys::Reflect::get(&window.navigator(), &"mediaDevices".into()).unwrap_or_default();
    let microphone = !devices.is_undefined()
        && js_sys::Reflect::get(&devices, &"getUserMedia".into()).is_ok_and(|f| f.is_function());
    Support {
        secure: window.is_secure_context(),
        microphone,
        peer_connection: browser::has_global("RTCPeerConnection"),
        touch_points: browser::number(&window.navigator(), "maxTouchPoints") as u32,
    }
}

/// Whether a call can work in this browser, and if not, the way out.
pub fn verdict() -> Verdict {
    let agent = web_sys::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
    shared::agent::verdict(&agent, support())
}

/// Opens the microphone: `device` if one was picked, else the browser's choice (or the
/// stream asked for early, by [`ask_microphone_early`] or index.html's first paint). Must
/// follow a user gesture on phones.
pub async fn open_microphone(device: Option<&str>) -> Result<MediaStream, DeviceError> {
    match (device, early_microphone()) {
        (None, Some(asked)) => opened(asked).await,
        _ => get_user_media(VOICE, "audio", device).await,
    }
}

/// Asks for the microphone now, in a tap, ahead of the code that will open it (the call's
/// part of the wasm, loading): the permission prompt overlaps the download, and phones see
/// the request inside the gesture. [`open_microphone`] takes the stream; if nothing does,
/// [`release_early_microphone`] must.
pub fn ask_microphone_early() {
    let Some(window) = web_sys::window() else { return };
    if js_sys::Reflect::has(&window, &EARLY_MICROPHONE.into()).unwrap_or(true) {
        return;
    }
    if let Ok(asked) = request(VOICE, "audio", None) {
        // Handled now, so that a refusal is not reported as unhandled before it is taken.
        let _ = browser::call(&asked, "catch", &[&wasm_bindgen::closure::Closure::once_into_js(|_: JsValue| ())]);
        let _ = js_sys::Reflect::set(&window, &EARLY_MICROPHONE.into(), &asked);
    }
}

/// The microphone asked for early, taken: there is one such stream, for the first to open
/// the microphone.
fn early_microphone() -> Option<Promise> {
    let window = web_sys::window()?;
    let asked = js_sys::Reflect::get(&window, &EARLY_MICROPHONE.into()).ok()?.dyn_into().ok()?;
    let _ = js_sys::Reflect::delete_property(&window, &EARLY_MICROPHONE.into());
    Some(asked)
}

/// Where the early microphone's promise waits (index.html's first paint sets it too).
const EARLY_MICROPHONE: &str = "__bootMicrophone";

/// Releases the microphone asked for early if nothing took it (the page this browser got
/// has no Join, or the call's code did not load).
pub fn release_early_microphone() {
    if let Some(asked) = early_microphone() {
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(stream) = opened(asked).await {
                stop(&stream);
            }
        });
    }
}

/// `getUserMedia` with `constraints`, on `device` for `kind` (`audio` or `video`) if given.
/// The page calls only where [`verdict`] said it can.
async fn get_user_media(constraints: &str, kind: &str, device: Option<&str>) -> Result<MediaStream, DeviceError> {
    opened(request(constraints, kind, device)?).await
}

/// Calls `getUserMedia` (see [`get_user_media`]) and returns its promise.
fn request(constraints: &str, kind: &str, device: Option<&str>) -> Result<Promise, DeviceError> {
    let navigator = web_sys::window().ok_or_else(|| DeviceError::Other("no window".to_owned()))?.navigator();
    let devices = navigator.media_devices().map_err(other)?;
    let constraints = js_sys::JSON::parse(constraints).map_err(other)?;
    if let Some(device) = device {
        // `exact`: the person chose this one; if it is gone, say so rather than open another.
        let track = js_sys::Reflect::get(&constraints, &kind.into()).map_err(other)?;
        let exact = js_sys::Object::new();
        js_sys::Reflect::set(&exact, &"exact".into(), &device.into()).map_err(other)?;
        js_sys::Reflect::set(&track, &"deviceId".into(), &exact).map_err(other)?;
    }
    let constraints: MediaStreamConstraints = constraints.unchecked_into();
    devices.get_user_media_with_constraints(&constraints).map_err(refused)
}

/// The stream a `getUserMedia` promise gives, or why the device did not open.
async fn opened(request: Promise) -> Result<MediaStream, DeviceError> {
    let stream = JsFuture::from(request).await.map_err(refused)?;
    Ok(stream.unchecked_into())
}

/// Why `getUserMedia` failed: the browser's `DOMException` name, typed.
fn refused(error: JsValue) -> DeviceError {
    match error.dyn_ref::<DomException>() {
        Some(exception) => DeviceError::from_name(&exception.name()),
        None => other(error),
    }
}

/// An error no `DOMException` names.
fn other(error: JsValue) -> DeviceError {
    DeviceError::Other(format!("{error:?}"))
}

/// An input device the person can pick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// `deviceId`, stable for this site.
    pub id: String,
    /// What the system calls it (empty before any permission was granted).
    pub label: String,
}

/// The microphones (`audioinput`) or cameras (`videoinput`) the browser lists. Labels are
/// only given once a device of that kind was opened.
pub async fn devices(kind: web_sys::MediaDeviceKind) -> Vec<Device> {
    let Some(media) = web_sys::window().and_then(|w| w.navigator().media_devices().ok()) else { return Vec::new() };
    let Ok(request) = media.enumerate_devices() else { return Vec::new() };
    let Ok(list) = JsFuture::from(request).await else { return Vec::new() };
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|info| info.dyn_into::<web_sys::MediaDeviceInfo>().ok())
        .filter(|info| info.kind() == kind)
        .map(|info| Device { id: info.device_id(), label: info.label() })
        .collect()
}

/// The device a stream's first track of `kind` runs on.
pub fn device_of(stream: &MediaStream, kind: &str) -> Option<String> {
    let track = stream
        .get_tracks()
        .iter()
        .map(JsValue::unchecked_into::<web_sys::MediaStreamTrack>)
        .find(|t| t.kind() == kind)?;
    let settings: JsValue = track.get_settings().into();
    Some(browser::string(&settings, "deviceId")).filter(|id| !id.is_empty())
}

/// A chime: notes (frequency in Hz, start in seconds), how loud (0 to 1), how long.
pub struct Chime {
    notes: [(f32, f64); 2],
    loudness: f32,
    length: f64,
}

/// The test sound: two notes up, clearly audible, so the person can check they will hear
/// the call.
pub const TEST_SOUND: Chime = Chime { notes: [(523.25, 0.0), (659.25, 0.18)], loudness: 0.25, length: 0.6 };
/// Someone came: two quick notes up, quiet (it plays over the voices).
pub const CAME: Chime = Chime { notes: [(659.25, 0.0), (880.0, 0.1)], loudness: 0.06, length: 0.35 };
/// Someone went: the same notes down.
pub const WENT: Chime = Chime { notes: [(880.0, 0.0), (659.25, 0.1)], loudness: 0.06, length: 0.35 };

thread_local! {
    /// The page's one audio context for chimes (see [`speakers`]).
    static SPEAKERS: std::cell::RefCell<Option<web_sys::AudioContext>> = const { std::cell::RefCell::new(None) };
}

/// The page's audio context for chimes, made on first use and resumed. Call it inside
/// the taps that lead to sound (Join, Join without microphone, Play test sound): iOS lets
/// a context sound only if a tap made or resumed it, and the chimes of people coming and
/// going play later, outside any tap, on this same context.
pub fn speakers() -> Option<web_sys::AudioContext> {
    SPEAKERS.with(|speakers| {
        let mut speakers = speakers.borrow_mut();
        if speakers.is_none() {
            *speakers = web_sys::AudioContext::new().ok();
        }
        if let Some(context) = speakers.as_ref() {
            let _ = context.resume();
        }
        speakers.clone()
    })
}

/// Plays `chime` on the speakers, made by Web Audio (nothing to download), on the page's
/// context ([`speakers`]): it sounds once a tap has unlocked that; the future ends with
/// the chime (at once without Web Audio).
pub async fn play(chime: &Chime) {
    let Some(context) = speakers() else { return };
    let start = context.current_time();
    for (frequency, at) in chime.notes {
        let (Ok(tone), Ok(gain)) = (context.create_oscillator(), context.create_gain()) else { continue };
        tone.frequency().set_value(frequency);
        // A soft attack and a decay: a chime, not a click.
        let envelope = gain.gain();
        let _ = envelope.set_value_at_time(0.0, start + at);
        let _ = envelope.linear_ramp_to_value_at_time(chime.loudness, start + at + 0.02);
        let _ = envelope.exponential_ramp_to_value_at_time(0.001, start + chime.length);
        let _ = tone.connect_with_audio_node(&gain).and_then(|_| gain.connect_with_audio_node(&context.destination()));
        let _ = tone.start_with_when(start + at);
        let _ = tone.stop_with_when(start + chime.length);
    }
    gloo_timers::future::TimeoutFuture::new((chime.length * 1000.0) as u32 + 100).await;
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

/// An audio context made for a [`MicMeter`], closed on drop: whether the meter starts,
/// fails, or is never needed (the microphone was already open), the context's audio thread
/// does not outlive it.
pub struct MeterContext(web_sys::AudioContext);

impl Drop for MeterContext {
    fn drop(&mut self) {
        let _ = self.0.close();
    }
}

/// A live level meter on our own microphone (Web Audio `AnalyserNode`), so a person can
/// see that the microphone hears them. Stopped on drop (its context closes).
pub struct MicMeter {
    _context: MeterContext,
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
    pub fn context() -> Option<MeterContext> {
        web_sys::AudioContext::new().ok().map(MeterContext)
    }

    /// Meters `stream` in `context`, writing its level (peak-held RMS) into `level` twenty
    /// times a second.
    pub fn start(
        context: MeterContext,
        stream: &MediaStream,
        level: leptos::prelude::RwSignal<f64>,
    ) -> Result<Self, CallError> {
        use leptos::prelude::Set;
        let audio = &context.0;
        let unexpected = |e: wasm_bindgen::JsValue| CallError::unexpected(&e);
        let source = audio.create_media_stream_source(stream).map_err(unexpected)?;
        let analyser = audio.create_analyser().map_err(unexpected)?;
        analyser.set_fft_size(Self::WINDOW);
        source.connect_with_audio_node(&analyser).map_err(unexpected)?;
        // A context can start suspended where the browser's autoplay policy is strict.
        if audio.state() != web_sys::AudioContextState::Running {
            let _ = audio.resume();
        }
        let mut block = vec![0f32; analyser.fft_size() as usize];
        let timer = gloo_timers::callback::Interval::new(Self::PERIOD_MS, move || {
            use leptos::prelude::GetUntracked;
            analyser.get_float_time_domain_data(&mut block);
            level.set(shared::stats::meter(level.get_untracked(), shared::stats::rms(&block)));
        });
        Ok(Self { _context: context, _timer: timer })
    }
}

#[cfg(test)]
mod tests {
    use super::VOICE;

    #[test]
    fn the_first_paint_asks_for_the_microphone_the_app_asks_for() {
        let page = include_str!("../../index.html");
        assert!(
            page.contains(&format!("getUserMedia({VOICE})")),
            "index.html's Join asks for other constraints than VOICE"
        );
    }
}
