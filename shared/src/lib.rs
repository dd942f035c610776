//! The signaling protocol and every pure decision of a call.
//!
//! Nothing here touches a socket, a clock, a browser or a random source: time and entropy
//! come in as arguments, so the relay, the browser app and the tests all replay the same
//! decisions exactly. The frontend and the relay only translate between these types and the
//! outside world.
//!
//! - [`agent`]: which in-app browser the page runs in, and whether a call can work there.
//! - [`protocol`]: the JSON messages on the `/ws` socket, one enum per direction.
//! - [`room`]: room ids, peer ids and the membership rules of a room.
//! - [`negotiation`]: who offers first and who yields on glare (perfect negotiation).
//! - [`backoff`]: when to retry the relay after losing it.
//! - [`bitrate`]: the adaptive bitrate controller for our audio senders.
//! - [`engine`]: the call engine, sans I/O: events in, commands out.
//! - [`call`]: the one call state shown to the user, derived from the links to each peer.
//! - [`stats`]: what `getStats` says of a link: audio levels, the network path.
//! - [`netcheck`]: the network check before joining: whether calls across networks get through.
//! - [`verify`]: the verification code two people compare to know nobody is in between.
//! - [`chat`]: names and text chat on the data channel between peers, and the chat's log.

pub mod agent;
pub mod backoff;
pub mod bitrate;
pub mod call;
pub mod chat;
pub mod engine;
pub mod negotiation;
pub mod netcheck;
pub mod protocol;
pub mod room;
pub mod stats;
pub mod verify;
