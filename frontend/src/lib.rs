//! The browser app: a home page that creates rooms and a room page that runs the call.
//!
//! - [`call`]: the driver of the call engine ([`shared::engine`]): it carries out the
//!   engine's commands on the microphone, the camera, the signaling socket and one peer
//!   connection per remote participant, feeds back what they report, and writes what the
//!   UI shows into signals.
//! - [`peer`]: one `RTCPeerConnection`: the operations the engine hands out, its events,
//!   its statistics and bitrates.
//! - [`signaling`], [`media`], [`browser`]: the WebSocket, the microphone and small typed
//!   doors into loosely typed browser APIs.
//! - [`netcheck`]: the network check before joining: will a call get through from here?
//! - [`ui`]: the pages; [`i18n`]: every string in English and Chinese; [`error`]: every
//!   failure with its message and way forward.
//!
//! Decisions (the whole call engine, call state, levels, room ids) are made in [`shared`];
//! this crate only applies them to browser objects.

pub mod browser;
pub mod call;
pub mod error;
pub mod i18n;
pub mod media;
pub mod netcheck;
pub mod peer;
pub mod signaling;
pub mod ui;

pub use ui::App;
