//! What relays say to each other on a room's channel: one line of text per event, small
//! enough to read by eye in `redis-cli subscribe`.
//!
//! - `j <peer>`: `peer` took a new seat (published by the join script);
//! - `l <peer>`: `peer` left (published by the leave and reap scripts);
//! - `t <peer> <generation>`: a socket took `peer`'s seat back, as attachment `generation`
//!   (published by the resume script): any other attachment of that seat lets go;
//! - `m <peer> <message>`: deliver `message`, an encoded [`shared::protocol::ServerMessage`],
//!   to `peer`.

use shared::room::{PeerId, RoomId};

/// Every room channel's name starts so.
const PREFIX: &str = "lc:{";

/// One event on a room's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Someone took a new seat.
    Joined(PeerId),
    /// Someone left.
    Left(PeerId),
    /// A socket took a seat back, as this attachment.
    Taken(PeerId, u64),
    /// A message for one member.
    To(PeerId, String),
}

impl Envelope {
    /// The line published on the channel.
    pub fn encode(&self) -> String {
        match self {
            Self::Joined(peer) => format!("j {peer}"),
            Self::Left(peer) => format!("l {peer}"),
            Self::Taken(peer, generation) => format!("t {peer} {generation}"),
            Self::To(peer, message) => format!("m {peer} {message}"),
        }
    }

    /// Reads a line published on a channel; `None` for anything else (a newer relay's event
    /// this one does not know is ignored, not fatal).
    pub fn decode(line: &str) -> Option<Self> {
        let (kind, rest) = line.split_once(' ')?;
        let (peer, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let peer = PeerId(peer.parse().ok()?);
        match kind {
            "j" => Some(Self::Joined(peer)),
            "l" => Some(Self::Left(peer)),
            "t" => Some(Self::Taken(peer, rest.parse().ok()?)),
            "m" => Some(Self::To(peer, rest.to_owned())),
            _ => None,
        }
    }
}

/// The channel of `room`. The braces are a Redis Cluster hash tag: a room's keys and its
/// channel hash alike.
pub fn channel(room: &RoomId) -> String {
    format!("{PREFIX}{room}}}")
}

/// The room whose channel is `name`.
pub fn room_of(name: &str) -> Option<RoomId> {
    RoomId::parse(name.strip_prefix(PREFIX)?.strip_suffix('}')?).ok()
}

/// The key of `room`'s `part` (`seats`, `parked`, `meta`).
pub fn key(room: &RoomId, part: &str) -> String {
    format!("{PREFIX}{room}}}:{part}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_envelope_round_trips() {
        let message = r#"{"type":"signal","from":1,"signal":{"kind":"answer","sdp":"v=0 x y"}}"#;
        for envelope in [
            Envelope::Joined(PeerId(3)),
            Envelope::Left(PeerId(12)),
            Envelope::Taken(PeerId(2), u64::MAX),
            Envelope::To(PeerId(1), message.to_owned()),
            Envelope::To(PeerId(1), String::new()),
        ] {
            assert_eq!(Envelope::decode(&envelope.encode()), Some(envelope));
        }
    }

    #[test]
    fn lines_that_are_no_envelope_are_ignored() {
        for line in ["", "j", "j x", "x 1", "t 1", "t 1 -3", "j -1", "q 1 2"] {
            assert_eq!(Envelope::decode(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_channel_names_its_room() {
        let room = RoomId::from_random([3; RoomId::LEN]);
        assert_eq!(room_of(&channel(&room)), Some(room.clone()));
        assert_eq!(room_of("lc:{nope}"), None);
        assert!(key(&room, "seats").starts_with(&channel(&room)));
    }
}
