//! The signaling protocol spoken on the relay's `GET /ws` WebSocket.
//!
//! Every frame is one UTF-8 JSON object (a text frame) with a `"type"` field naming the
//! message. A client sends [`ClientMessage`]s and receives [`ServerMessage`]s.
//!
//! A session goes like this:
//!
//! 1. The client sends [`ClientMessage::Join`] with [`PROTOCOL_VERSION`] and a room id
//!    ([`crate::room::RoomId`]; a room exists while someone is in it).
//! 2. The relay answers [`ServerMessage::Joined`] with the id it assigned to the client, the
//!    ids of the peers already in the room and the ICE servers to use, and sends every other
//!    member [`ServerMessage::PeerJoined`].
//! 3. Peers exchange SDP offers, answers and ICE candidates with [`ClientMessage::Signals`]
//!    (or the simpler [`ClientMessage::Signal`]), addressed to one peer id; the relay
//!    delivers them as [`ServerMessage::Signals`] ([`ServerMessage::Signal`]) with `from` set
//!    by the relay itself, so a client cannot impersonate another.
//! 4. [`ClientMessage::Leave`], or closing the socket, removes the client; the others get
//!    [`ServerMessage::PeerLeft`].
//!
//! Whatever goes wrong is answered with [`ServerMessage::Error`] and a stable [`ErrorCode`];
//! the socket stays open unless the frame itself was unacceptable (over 64 KiB: close code
//! 1009).
//!
//! ## Signals are delivered reliably, end to end
//!
//! The relay forwards without guarantees: a socket may be half-open, a slow reader's queue
//! full, a burst over the rate limit. So peers number what they send each other. Each
//! [`ClientMessage::Signals`] carries `seq`, counting from 1 per pair of peers and per seat,
//! and `ack`, the highest `seq` received in order from that peer so far (cumulative). A
//! receiver applies a message only if its `seq` is the next one expected, and otherwise
//! drops it (a duplicate, or a gap that the sender will fill); either way it acknowledges.
//! A sender keeps every message until it is acknowledged and sends it again after a resume,
//! when an acknowledgement stays away, or when an ack-only message (`seq` 0) says the other
//! side is behind. After a new seat (the relay forgot us), numbering starts over.
//!
//! ## Versions
//!
//! [`PROTOCOL_VERSION`] changes only when a message's meaning changes. Additions are not
//! breaking: a client ignores (and logs) fields, message types and error codes it does not
//! know, so a relay can add one before every open tab knows it. The relay stays strict on
//! what clients send: an unknown field or type there is a `bad_message`.
//!
//! ```json
//! {"type":"join","version":1,"room":"k2m4q7zta5xw3bcd6efghijnpr"}
//! {"type":"joined","version":1,"you":2,"peers":[1],"ice_servers":[{"urls":["stun:stun.example.org"]}]}
//! {"type":"signal","to":1,"signal":{"kind":"offer","sdp":"v=0..."}}
//! {"type":"signal","from":2,"signal":{"kind":"candidate","candidate":"candidate:1 1 udp ...","sdp_mid":"0","sdp_m_line_index":0}}
//! {"type":"error","code":"room_full","message":"the room is full (6 people)"}
//! ```

use serde::{Deserialize, Serialize};

use crate::room::PeerId;

/// The protocol version this crate speaks. A client that joins with another version is
/// refused with [`ErrorCode::UnsupportedVersion`] rather than misunderstood.
pub const PROTOCOL_VERSION: u32 = 1;

/// How often a client sends [`ClientMessage::Ping`].
pub const CLIENT_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A client that has heard nothing from the relay for this long (two missed pongs and
/// some) takes the socket for dead and reconnects.
pub const CLIENT_RELAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(25);

/// The WebSocket close code a client uses when it drops a socket it believes dead and
/// will resume: the relay keeps its seat for the grace period (any other close frame from
/// a client means it left).
pub const CLOSE_RESUMING: u16 = 4000;

/// The WebSocket close code the relay ends a socket with when another socket resumed its
/// seat.
pub const CLOSE_REPLACED: u16 = 4001;

/// The largest frame the relay accepts, in bytes. An SDP offer is a few KiB; anything near
/// this is not signaling.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A message from a client to the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a room. Allowed once per socket.
    Join {
        /// Must be [`PROTOCOL_VERSION`].
        version: u32,
        /// The room id from the share link; validated by the relay
        /// ([`crate::room::RoomId::parse`]), refused with [`ErrorCode::BadRoomId`].
        room: String,
        /// The token from an earlier [`ServerMessage::Joined`] in this room, to take back
        /// the same peer id after losing the socket. Unknown or expired tokens are ignored:
        /// the client joins as a newcomer and can tell from `you`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// Deliver `signal` to peer `to`, who must be in the same room. Unnumbered: a loss is
    /// not repaired (see [`ClientMessage::Signals`]).
    Signal {
        /// The recipient.
        to: PeerId,
        /// What to deliver.
        signal: Signal,
    },
    /// Deliver `signals`, in order, to peer `to`, reliably (see the module docs).
    Signals {
        /// The recipient.
        to: PeerId,
        /// This message's number for this pair, from 1; 0 for an acknowledgement alone.
        seq: u32,
        /// The highest `seq` received in order from `to` (0: none yet).
        ack: u32,
        /// What to deliver; empty with `seq` 0.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        signals: Vec<Signal>,
    },
    /// Leave the room; the socket may then be closed or used to join again.
    Leave {},
    /// A heartbeat; the relay answers [`ServerMessage::Pong`]. Browsers cannot see
    /// WebSocket pings, so this is how a client notices a dead relay.
    Ping {},
}

/// A message from the relay to a client. Read leniently: unknown fields are ignored and an
/// unknown type reads as [`ServerMessage::Unknown`], so a newer relay does not break an
/// open page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to [`ClientMessage::Join`]: you are in.
    Joined {
        /// The relay's [`PROTOCOL_VERSION`].
        version: u32,
        /// Your id in this room.
        you: PeerId,
        /// Who was already there, in the order they joined. You offer to each of them
        /// ([`crate::negotiation`]).
        peers: Vec<PeerId>,
        /// The ICE servers for your `RTCPeerConnection`s.
        ice_servers: Vec<IceServer>,
        /// Which candidates your `RTCPeerConnection`s may use.
        #[serde(default)]
        ice_transport_policy: IceTransportPolicy,
        /// Present this in [`ClientMessage::Join`] to come back as the same peer after a
        /// dropped socket, within the relay's grace period.
        resume: String,
        /// Whether this join took back an earlier seat (the resume token was honoured): the
        /// peer connections of that seat are still good. Only the relay can know; ids
        /// alone cannot tell, since a restarted relay numbers peers from 1 again.
        #[serde(default)]
        resumed: bool,
    },
    /// Someone entered your room. They will send you an offer.
    PeerJoined {
        /// The newcomer.
        peer: PeerId,
    },
    /// Someone left your room (or their socket closed).
    PeerLeft {
        /// Who left.
        peer: PeerId,
    },
    /// A signal from another member of your room.
    Signal {
        /// The sender, as the relay knows it.
        from: PeerId,
        /// What they sent.
        signal: Signal,
    },
    /// Numbered signals from another member of your room ([`ClientMessage::Signals`]).
    Signals {
        /// The sender, as the relay knows it.
        from: PeerId,
        /// The message's number for this pair; 0 for an acknowledgement alone.
        seq: u32,
        /// The highest `seq` of yours the sender has received in order.
        ack: u32,
        /// What they sent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        signals: Vec<Signal>,
    },
    /// The answer to [`ClientMessage::Ping`].
    Pong {},
    /// Your last message was refused, or the room cannot have you.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people reading logs (English, not for display).
        message: String,
        /// For [`ErrorCode::UnknownPeer`]: the peer the refused signal was for, so the
        /// sender can forget someone who left while it was not listening.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
    },
    /// A message type this version does not know (from a newer relay): ignored.
    #[serde(other)]
    Unknown,
}

/// What one peer sends another to set up their connection: the payloads of
/// `RTCPeerConnection` negotiation and trickle ICE. The relay forwards it untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// An SDP offer (`RTCSessionDescription` of type `offer`).
    Offer {
        /// The session description.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The session description.
        sdp: String,
    },
    /// The sender closed its connection to the recipient and made a new one, whose offer
    /// comes next: answer it on a new connection too (an old one may refuse it, since a
    /// new connection numbers its media sections and header extensions afresh).
    Renew {},
    /// A trickled ICE candidate (`RTCIceCandidateInit`).
    Candidate {
        /// The candidate line, e.g. `candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host`.
        candidate: String,
        /// The media stream identification tag the candidate belongs to.
        #[serde(default)]
        sdp_mid: Option<String>,
        /// The index of the m-line the candidate belongs to.
        #[serde(default)]
        sdp_m_line_index: Option<u16>,
    },
}

/// An ICE server (`RTCIceServer`) for the browser's peer connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The answer to the relay's `GET /ice`: the ICE servers and policy a page's connections
/// would get on joining now (TURN with credentials of its own, short-lived), for a network
/// check before joining ([`crate::netcheck`]). Shaped as an `RTCConfiguration` (camelCase), so
/// a page can pass the JSON to `new RTCPeerConnection` as it is.
///
/// ```json
/// {"iceServers":[{"urls":["turn:turn.example.org:3478"],"username":"1700000000:check","credential":"..."}],"iceTransportPolicy":"all"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceConfig {
    /// The ICE servers, as in [`ServerMessage::Joined`].
    pub ice_servers: Vec<IceServer>,
    /// Which candidates a call may use.
    #[serde(default)]
    pub ice_transport_policy: IceTransportPolicy,
}

/// `RTCConfiguration.iceTransportPolicy`: whether browsers may connect directly or only
/// through TURN (which hides each side's IP address from the other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IceTransportPolicy {
    /// Direct, reflexive and relayed candidates.
    #[default]
    All,
    /// Relayed (TURN) candidates only.
    Relay,
}

/// Why the relay refused something. Stable: clients switch on these to show a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame was not a JSON message of this protocol (bad JSON, unknown type, missing
    /// or extra fields, a binary frame).
    BadMessage,
    /// The join named a protocol version the relay does not speak.
    UnsupportedVersion,
    /// The join named something that is not a room id.
    BadRoomId,
    /// The room already holds as many people as the relay allows.
    RoomFull,
    /// A signal was addressed to someone who is not in your room.
    UnknownPeer,
    /// A signal or leave was sent before joining a room.
    NotJoined,
    /// A join was sent while already in a room.
    AlreadyJoined,
    /// Messages came faster than the relay allows; this one was dropped.
    RateLimited,
    /// Too many open sockets from your address; this one will be closed.
    TooManyConnections,
    /// Too many rooms opened from your address.
    TooManyRooms,
    /// The relay cannot reach what it shares rooms through (several relays behind one
    /// address) just now: the join or resume was not done. Try again in a moment; calls
    /// already connected go on.
    Unavailable,
    /// A code this version does not know (from a newer relay).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadMessage => "bad_message",
            Self::UnsupportedVersion => "unsupported_version",
            Self::BadRoomId => "bad_room_id",
            Self::RoomFull => "room_full",
            Self::UnknownPeer => "unknown_peer",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::TooManyRooms => "too_many_rooms",
            Self::Unavailable => "unavailable",
            Self::Unknown => "unknown",
        }
    }
}

/// A frame that is not a message of this protocol.
#[derive(Debug, thiserror::Error)]
#[error("not a signaling message: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

impl ClientMessage {
    /// Reads one text frame.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Writes one text frame.
    pub fn encode(&self) -> String {
        encode(self)
    }
}

impl ServerMessage {
    /// Reads one text frame.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Writes one text frame.
    pub fn encode(&self) -> String {
        encode(self)
    }

    /// An [`ServerMessage::Error`] with `code` and a human-readable `message`.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into(), peer: None }
    }

    /// The refusal of a signal to `peer`, who is not another member of the sender's room.
    pub fn unknown_peer(peer: PeerId) -> Self {
        let message = format!("peer {peer} is not another member of your room");
        Self::Error { code: ErrorCode::UnknownPeer, message, peer: Some(peer) }
    }
}

fn encode(message: &impl Serialize) -> String {
    // Serializing these types cannot fail: every field is a string, a number, a sequence
    // or an enum with string tags.
    serde_json::to_string(message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Signal {
        Signal::Offer { sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into() }
    }

    fn candidate() -> Signal {
        Signal::Candidate {
            candidate: "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }
    }

    #[test]
    fn every_client_message_round_trips_with_its_wire_form() {
        let cases = [
            (
                ClientMessage::Join { version: 1, room: "abc".into(), resume: None },
                r#"{"type":"join","version":1,"room":"abc"}"#,
            ),
            (
                ClientMessage::Join { version: 1, room: "abc".into(), resume: Some("t0k".into()) },
                r#"{"type":"join","version":1,"room":"abc","resume":"t0k"}"#,
            ),
            (
                ClientMessage::Signal { to: PeerId(3), signal: offer() },
                r#"{"type":"signal","to":3,"signal":{"kind":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}"#,
            ),
            (
                ClientMessage::Signal { to: PeerId(1), signal: Signal::Answer { sdp: "v=0".into() } },
                r#"{"type":"signal","to":1,"signal":{"kind":"answer","sdp":"v=0"}}"#,
            ),
            (
                ClientMessage::Signal { to: PeerId(2), signal: candidate() },
                r#"{"type":"signal","to":2,"signal":{"kind":"candidate","candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdp_mid":"0","sdp_m_line_index":0}}"#,
            ),
            (ClientMessage::Leave {}, r#"{"type":"leave"}"#),
            (ClientMessage::Ping {}, r#"{"type":"ping"}"#),
        ];
        for (message, wire) in cases {
            assert_eq!(message.encode(), wire);
            assert_eq!(ClientMessage::decode(wire).unwrap(), message);
        }
    }

    #[test]
    fn the_ice_configuration_reads_as_an_rtc_configuration() {
        let config = IceConfig {
            ice_servers: vec![
                IceServer { urls: vec!["stun:127.0.0.1:3478".into()], username: None, credential: None },
                IceServer {
                    urls: vec!["turn:h:3478".into()],
                    username: Some("u".into()),
                    credential: Some("p".into()),
                },
            ],
            ice_transport_policy: IceTransportPolicy::Relay,
        };
        let wire = r#"{"iceServers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:h:3478"],"username":"u","credential":"p"}],"iceTransportPolicy":"relay"}"#;
        assert_eq!(serde_json::to_string(&config).unwrap(), wire);
        assert_eq!(serde_json::from_str::<IceConfig>(wire).unwrap(), config);
    }

    #[test]
    fn every_server_message_round_trips_with_its_wire_form() {
        let cases = [
            (
                ServerMessage::Joined {
                    version: PROTOCOL_VERSION,
                    you: PeerId(2),
                    peers: vec![PeerId(1)],
                    ice_servers: vec![
                        IceServer { urls: vec!["stun:127.0.0.1:3478".into()], username: None, credential: None },
                        IceServer {
                            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
                            username: Some("u".into()),
                            credential: Some("p".into()),
                        },
                    ],
                    ice_transport_policy: IceTransportPolicy::Relay,
                    resume: "t0k".into(),
                    resumed: true,
                },
                r#"{"type":"joined","version":1,"you":2,"peers":[1],"ice_servers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:127.0.0.1:3478?transport=udp"],"username":"u","credential":"p"}],"ice_transport_policy":"relay","resume":"t0k","resumed":true}"#,
            ),
            (ServerMessage::Pong {}, r#"{"type":"pong"}"#),
            (ServerMessage::PeerJoined { peer: PeerId(4) }, r#"{"type":"peer_joined","peer":4}"#),
            (ServerMessage::PeerLeft { peer: PeerId(4) }, r#"{"type":"peer_left","peer":4}"#),
            (
                ServerMessage::Signal { from: PeerId(1), signal: candidate() },
                r#"{"type":"signal","from":1,"signal":{"kind":"candidate","candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdp_mid":"0","sdp_m_line_index":0}}"#,
            ),
            (
                ServerMessage::error(ErrorCode::RoomFull, "full"),
                r#"{"type":"error","code":"room_full","message":"full"}"#,
            ),
        ];
        for (message, wire) in cases {
            assert_eq!(message.encode(), wire);
            assert_eq!(ServerMessage::decode(wire).unwrap(), message);
        }
    }

    #[test]
    fn error_codes_are_stable_on_the_wire() {
        let codes = [
            ErrorCode::BadMessage,
            ErrorCode::UnsupportedVersion,
            ErrorCode::BadRoomId,
            ErrorCode::RoomFull,
            ErrorCode::UnknownPeer,
            ErrorCode::NotJoined,
            ErrorCode::AlreadyJoined,
            ErrorCode::RateLimited,
            ErrorCode::TooManyConnections,
            ErrorCode::TooManyRooms,
            ErrorCode::Unknown,
        ];
        for code in codes {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn candidate_optional_fields_may_be_absent() {
        let wire = r#"{"type":"signal","to":1,"signal":{"kind":"candidate","candidate":"c"}}"#;
        let expected = ClientMessage::Signal {
            to: PeerId(1),
            signal: Signal::Candidate { candidate: "c".into(), sdp_mid: None, sdp_m_line_index: None },
        };
        assert_eq!(ClientMessage::decode(wire).unwrap(), expected);
    }

    #[test]
    fn malformed_client_frames_are_rejected_not_guessed() {
        let rejected = [
            "",
            "not json",
            "{}",
            "[]",
            "null",
            r#"{"type":"dance"}"#,
            r#"{"type":"JOIN","version":1,"room":"a"}"#,
            r#"{"type":"join","room":"a"}"#,
            r#"{"type":"join","version":-1,"room":"a"}"#,
            r#"{"type":"join","version":1,"room":7}"#,
            r#"{"type":"signal","to":1}"#,
            r#"{"type":"signal","to":"1","signal":{"kind":"answer","sdp":""}}"#,
            r#"{"type":"signal","to":1,"signal":{"kind":"rollback"}}"#,
            r#"{"type":"signal","to":1,"signal":{"kind":"offer"}}"#,
            r#"{"type":"signal","to":1,"from":2,"signal":{"kind":"offer","sdp":""}}"#,
            r#"{"type":"leave","room":"a"}"#,
            r#"{"type":"ping","at":1}"#,
            r#"{"type":"join","version":1,"room":"a","resume":5}"#,
            // Server messages are not client messages.
            r#"{"type":"peer_left","peer":1}"#,
        ];
        for wire in rejected {
            assert!(ClientMessage::decode(wire).is_err(), "accepted {wire}");
        }
    }

    #[test]
    fn malformed_server_frames_are_rejected() {
        for wire in [r#"{"type":"joined","you":1}"#, r#"{"type":"pong""#, r#"{"type":"signals","from":1}"#, "[]"] {
            assert!(ServerMessage::decode(wire).is_err(), "accepted {wire}");
        }
    }

    #[test]
    fn a_newer_relay_does_not_break_an_open_page() {
        let cases = [
            (r#"{"type":"pong","at":5}"#, ServerMessage::Pong {}),
            (r#"{"type":"peer_joined","peer":4,"name":"Ana"}"#, ServerMessage::PeerJoined { peer: PeerId(4) }),
            (r#"{"type":"room_closing","in":30}"#, ServerMessage::Unknown),
            (r#"{"type":"error","code":"too_tired","message":""}"#, ServerMessage::error(ErrorCode::Unknown, "")),
        ];
        for (wire, message) in cases {
            assert_eq!(ServerMessage::decode(wire).unwrap(), message, "{wire}");
        }
    }

    #[test]
    fn numbered_signals_round_trip_and_an_ack_alone_is_short() {
        let cases = [
            (
                ClientMessage::Signals { to: PeerId(2), seq: 3, ack: 1, signals: vec![candidate(), candidate()] },
                r#"{"type":"signals","to":2,"seq":3,"ack":1,"signals":[{"kind":"candidate","candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdp_mid":"0","sdp_m_line_index":0},{"kind":"candidate","candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdp_mid":"0","sdp_m_line_index":0}]}"#,
            ),
            (
                ClientMessage::Signals { to: PeerId(2), seq: 0, ack: 7, signals: vec![] },
                r#"{"type":"signals","to":2,"seq":0,"ack":7}"#,
            ),
        ];
        for (message, wire) in cases {
            assert_eq!(message.encode(), wire);
            assert_eq!(ClientMessage::decode(wire).unwrap(), message);
        }
        let relayed = ServerMessage::Signals { from: PeerId(1), seq: 1, ack: 0, signals: vec![offer()] };
        assert_eq!(ServerMessage::decode(&relayed.encode()).unwrap(), relayed);
    }

    #[test]
    fn the_relay_stays_strict_on_numbered_signals() {
        for wire in [
            r#"{"type":"signals","to":2,"seq":1,"ack":0,"signals":[{"kind":"rollback"}]}"#,
            r#"{"type":"signals","to":2,"seq":1,"ack":0,"extra":1}"#,
            r#"{"type":"signals","to":2,"seq":-1,"ack":0}"#,
            r#"{"type":"signals","to":2,"ack":0}"#,
        ] {
            assert!(ClientMessage::decode(wire).is_err(), "accepted {wire}");
        }
    }
}
