//! Everything that can stop a call, each with a message and a way forward in both languages.

use shared::engine::{DeviceError, DeviceFailure, DeviceKind, Failure};
use shared::protocol::ErrorCode;
use wasm_bindgen::JsValue;

use crate::i18n::Text;

/// Why the call cannot go on. Browser failures are turned into one of these at once, at
/// the web-sys boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The person or the browser refused the microphone (`NotAllowedError`).
    MicDenied,
    /// No audio input device (`NotFoundError`).
    NoMic,
    /// The microphone the person picked is not there any more (`OverconstrainedError` on
    /// its `deviceId`): unplugged, or the list was stale.
    MicGone,
    /// The device exists but cannot be opened (`NotReadableError`, `AbortError`).
    MicBusy,
    /// Not a secure context: `getUserMedia` is not even offered.
    Insecure,
    /// No `RTCPeerConnection` in this browser.
    NoWebRtc,
    /// The signaling socket never opened.
    RelayUnreachable,
    /// The signaling socket closed after the call started.
    RelayLost,
    /// The relay refused the join: the room is at capacity.
    RoomFull,
    /// The relay refused the room id.
    BadRoom,
    /// The relay speaks another protocol version: the page is stale.
    Outdated,
    /// The relay refuses more sockets or rooms from this network for now.
    RelayBusy,
    /// Every connection to the others failed: the networks cannot reach each other.
    PeerUnreachable,
    /// The camera could not start (refused, missing, busy); the call goes on with voice.
    CameraUnavailable,
    /// The screen could not be shared; the call goes on.
    ScreenUnavailable,
    /// Anything else, with the browser's words for the console.
    Unexpected(String),
}

impl CallError {
    /// Why the call stopped, as the engine says it.
    pub fn from_failure(failure: &Failure) -> Self {
        match failure {
            Failure::Microphone(error) => Self::from_microphone(error),
            Failure::RelayUnreachable => Self::RelayUnreachable,
            Failure::Refused(code) => Self::from_code(*code),
            other => Self::Unexpected(format!("{other:?}")),
        }
    }

    /// A device that failed while the call goes on: a camera that did not start, or a
    /// microphone picked that did not open (the old one goes on).
    pub fn from_device(failure: &DeviceFailure) -> Self {
        match failure.kind {
            DeviceKind::Camera => Self::CameraUnavailable,
            DeviceKind::Screen => Self::ScreenUnavailable,
            DeviceKind::Microphone => Self::from_microphone(&failure.error),
        }
    }

    /// Why the microphone did not open.
    fn from_microphone(error: &DeviceError) -> Self {
        match error {
            DeviceError::Denied => Self::MicDenied,
            DeviceError::Missing => Self::NoMic,
            DeviceError::Gone => Self::MicGone,
            DeviceError::Busy => Self::MicBusy,
            DeviceError::Other(words) => Self::Unexpected(words.clone()),
            other => Self::Unexpected(format!("{other:?}")),
        }
    }

    /// The relay's refusal of a join.
    fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::RoomFull => Self::RoomFull,
            ErrorCode::BadRoomId => Self::BadRoom,
            ErrorCode::UnsupportedVersion => Self::Outdated,
            ErrorCode::TooManyConnections | ErrorCode::TooManyRooms => Self::RelayBusy,
            other => Self::Unexpected(other.as_str().to_owned()),
        }
    }

    /// Any other JavaScript failure.
    pub fn unexpected(error: &JsValue) -> Self {
        Self::Unexpected(format!("{error:?}"))
    }

    /// What happened, and what to do about it, in the language of `text`.
    pub fn explain(&self, text: &'static Text) -> (&'static str, &'static str) {
        match self {
            Self::MicDenied => (text.mic_denied, text.mic_denied_fix),
            Self::NoMic => (text.no_mic, text.no_mic_fix),
            Self::MicGone => (text.mic_gone, text.mic_gone_fix),
            Self::MicBusy => (text.mic_busy, text.mic_busy_fix),
            Self::Insecure => (text.insecure, text.insecure_fix),
            Self::NoWebRtc => (text.no_webrtc, text.no_webrtc_fix),
            Self::RelayUnreachable => (text.relay_unreachable, text.relay_unreachable_fix),
            Self::RelayLost => (text.relay_lost, text.relay_lost_fix),
            Self::RoomFull => (text.room_full, text.room_full_fix),
            Self::BadRoom => (text.bad_room, text.bad_room_fix),
            Self::Outdated => (text.outdated, text.outdated_fix),
            Self::RelayBusy => (text.relay_busy, text.relay_busy_fix),
            Self::PeerUnreachable => (text.peer_unreachable, text.peer_unreachable_fix),
            Self::CameraUnavailable => (text.camera_unavailable, text.camera_unavailable_fix),
            Self::ScreenUnavailable => (text.screen_unavailable, text.screen_unavailable_fix),
            Self::Unexpected(_) => (text.unexpected, text.unexpected_fix),
        }
    }

    /// A stable name for the `data-error` attribute.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MicDenied => "mic_denied",
            Self::NoMic => "no_mic",
            Self::MicGone => "mic_gone",
            Self::MicBusy => "mic_busy",
            Self::Insecure => "insecure",
            Self::NoWebRtc => "no_webrtc",
            Self::RelayUnreachable => "relay_unreachable",
            Self::RelayLost => "relay_lost",
            Self::RoomFull => "room_full",
            Self::BadRoom => "bad_room",
            Self::Outdated => "outdated",
            Self::RelayBusy => "relay_busy",
            Self::PeerUnreachable => "peer_unreachable",
            Self::CameraUnavailable => "camera_unavailable",
            Self::ScreenUnavailable => "screen_unavailable",
            Self::Unexpected(_) => "unexpected",
        }
    }
}
