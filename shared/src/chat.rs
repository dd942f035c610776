//! Names and text chat: what the people in a call tell each other peer to peer, on the data
//! channel each of their connections carries, and never through the relay.
//!
//! # The channel
//!
//! Every `RTCPeerConnection` carries one data channel, [`CHANNEL_LABEL`], negotiated out of
//! band with the stream id [`CHANNEL_ID`] (`createDataChannel("linkcall", {negotiated:
//! true, id: 0})`): both sides make it themselves, so no announcement (DCEP) is needed and
//! it opens as soon as the SCTP association is up. It is reliable and ordered (the
//! defaults). Each message is one UTF-8 text frame holding one JSON object, a
//! [`PeerMessage`] tagged by `type`:
//!
//! ```json
//! {"type":"presence","name":"Ana","listening":false,"sharing":false}
//! {"type":"chat","id":7,"text":"hello"}
//! {"type":"ack","id":7}
//! ```
//!
//! - `presence` is sent as soon as the channel opens, and again whenever any of it changes:
//!   the sender's name (absent or `null`: none, show "Guest N"), whether it only listens and
//!   whether it shares its screen. It replaces what the peer said before.
//! - `chat` is one message; `id` counts the sender's messages (unique per sender and page).
//!   The receiver answers every `chat` it accepts with an `ack` of the same `id`, also for
//!   one it has seen already.
//!
//! A peer's word is not trusted: frames over [`FRAME_MAX_BYTES`], malformed JSON, unknown
//! types, names over [`NAME_MAX_CHARS`] and texts over [`TEXT_MAX_CHARS`] are refused by
//! [`PeerMessage::decode`] (the page logs and ignores them); unknown fields are ignored, so
//! later versions can add some. Names and texts are cleaned on both ends the same way
//! ([`clean_name`], [`clean_text`]): control characters removed, whitespace trimmed, lengths
//! counted in characters (a Chinese name of 40 characters fits; its 120 bytes do not
//! matter). They are text: the page shows them as text nodes, never as markup or links.
//!
//! # The log
//!
//! [`ChatLog`] is one page's chat: what was said, by whom, which of our messages every
//! recipient acknowledged, and how many arrived while the panel was closed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::room::PeerId;

/// The data channel's label.
pub const CHANNEL_LABEL: &str = "linkcall";
/// The data channel's SCTP stream id, agreed by both sides (`negotiated: true`).
pub const CHANNEL_ID: u16 = 0;
/// The longest name, in characters.
pub const NAME_MAX_CHARS: usize = 40;
/// The longest chat message, in characters.
pub const TEXT_MAX_CHARS: usize = 1_000;
/// The largest frame read: a message of [`TEXT_MAX_CHARS`] characters, each written as a
/// JSON escape (`\uXXXX`), fits with room to spare; anything larger is not parsed.
pub const FRAME_MAX_BYTES: usize = 8 * 1_024;
/// The most messages a log keeps; the oldest go first.
pub const LOG_MAX_ENTRIES: usize = 500;

/// What a peer says about itself ([`PeerMessage::Presence`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The name to show for it; none: "Guest N".
    #[serde(default)]
    pub name: Option<String>,
    /// It only listens: its microphone sends nothing.
    #[serde(default)]
    pub listening: bool,
    /// It shares its screen.
    #[serde(default)]
    pub sharing: bool,
}

/// One message on the data channel (see the module's documentation for the wire format).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMessage {
    /// Who the sender is now: sent when the channel opens and whenever it changes.
    Presence(Presence),
    /// A chat message.
    Chat {
        /// Counts the sender's messages.
        id: u64,
        /// What it says.
        text: String,
    },
    /// The chat message `id` arrived.
    Ack {
        /// The acknowledged message's id.
        id: u64,
    },
}

/// Why a name, a text or a frame is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// Nothing but whitespace and control characters.
    #[error("there is nothing to send")]
    Empty,
    /// Longer than allowed.
    #[error("{found} characters, at most {max} allowed")]
    TooLong {
        /// How many characters it has.
        found: usize,
        /// How many are allowed.
        max: usize,
    },
    /// A frame over [`FRAME_MAX_BYTES`].
    #[error("a frame of {found} bytes, at most {FRAME_MAX_BYTES} read")]
    FrameTooLarge {
        /// Its size in bytes.
        found: usize,
    },
    /// Not JSON, or not a message of ours (an unknown type too), with serde's words.
    #[error("not a peer message: {0}")]
    Malformed(String),
}

impl PeerMessage {
    /// The frame to send.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a peer message always serializes")
    }

    /// Reads a peer's frame, checking it as untrusted input: the name and the text come back
    /// cleaned ([`clean_name`], [`clean_text`]); a frame whose name or text breaks the
    /// limits is refused whole.
    pub fn decode(frame: &str) -> Result<Self, ChatError> {
        if frame.len() > FRAME_MAX_BYTES {
            return Err(ChatError::FrameTooLarge { found: frame.len() });
        }
        let message = serde_json::from_str(frame).map_err(|e| ChatError::Malformed(e.to_string()))?;
        Ok(match message {
            PeerMessage::Presence(presence) => PeerMessage::Presence(Presence {
                name: match presence.name {
                    Some(name) => clean_name(&name)?,
                    None => None,
                },
                ..presence
            }),
            PeerMessage::Chat { id, text } => PeerMessage::Chat { id, text: clean_text(&text)? },
            ack @ PeerMessage::Ack { .. } => ack,
        })
    }
}

/// A name as typed: control characters removed, whitespace trimmed; none if that leaves
/// nothing. At most [`NAME_MAX_CHARS`] characters.
pub fn clean_name(typed: &str) -> Result<Option<String>, ChatError> {
    let name: String = typed.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    within(name, NAME_MAX_CHARS)?;
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

/// A chat message as typed: control characters removed except line breaks, whitespace
/// trimmed. Not empty, at most [`TEXT_MAX_CHARS`] characters.
pub fn clean_text(typed: &str) -> Result<String, ChatError> {
    let text: String = typed.chars().filter(|c| *c == '\n' || !c.is_control()).collect();
    let text = text.trim();
    if text.is_empty() {
        return Err(ChatError::Empty);
    }
    within(text, TEXT_MAX_CHARS)?;
    Ok(text.to_owned())
}

/// Refuses `text` if it has more than `max` characters.
fn within(text: &str, max: usize) -> Result<(), ChatError> {
    match text.chars().count() {
        found if found > max => Err(ChatError::TooLong { found, max }),
        _ => Ok(()),
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Author {
    /// This page.
    Me,
    /// The peer with this id.
    Peer(PeerId),
}

/// One message of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Who wrote it.
    pub author: Author,
    /// The author's number for it.
    pub id: u64,
    /// The author's name when it arrived (none for ours, or a peer without a name).
    pub name: Option<String>,
    /// What it says, cleaned.
    pub text: String,
    /// For ours: the peers that have not acknowledged it yet.
    awaiting: BTreeSet<PeerId>,
    /// For ours: it went to someone, and every one of them acknowledged it.
    pub delivered: bool,
}

/// One page's chat: the messages in the order this page saw them, which of ours arrived
/// everywhere, and how many arrived unread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatLog {
    entries: Vec<Entry>,
    /// The last id we gave a message of ours.
    last_id: u64,
    /// The person has the chat in front of them.
    open: bool,
    /// Messages from others that arrived while the chat was closed.
    unread: usize,
}

impl ChatLog {
    /// The messages, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether the chat is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens or closes the chat; opening it reads everything.
    pub fn set_open(&mut self, open: bool) {
        self.open = open;
        if open {
            self.unread = 0;
        }
    }

    /// How many messages arrived while the chat was closed.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Our message `typed`, cleaned, going to `recipients` (everyone in the room now): the
    /// message to send each of them. It counts as delivered once every one of them has
    /// acknowledged it; sent to nobody, it never does.
    pub fn send(
        &mut self,
        typed: &str,
        recipients: impl IntoIterator<Item = PeerId>,
    ) -> Result<PeerMessage, ChatError> {
        let text = clean_text(typed)?;
        self.last_id += 1;
        let id = self.last_id;
        let awaiting: BTreeSet<PeerId> = recipients.into_iter().collect();
        let entry = Entry { author: Author::Me, id, name: None, text: text.clone(), awaiting, delivered: false };
        self.push(entry);
        Ok(PeerMessage::Chat { id, text })
    }

    /// A chat message `id` with `text` (cleaned by [`PeerMessage::decode`]) from `peer`,
    /// whose name is `name`: logged unless it was already. Returns the acknowledgement to
    /// send back, in either case.
    pub fn receive(&mut self, peer: PeerId, name: Option<String>, id: u64, text: String) -> PeerMessage {
        let author = Author::Peer(peer);
        if !self.entries.iter().any(|e| e.author == author && e.id == id) {
            let entry = Entry { author, id, name, text, awaiting: BTreeSet::new(), delivered: false };
            self.push(entry);
            if !self.open {
                self.unread += 1;
            }
        }
        PeerMessage::Ack { id }
    }

    /// `peer` acknowledged our message `id`. An acknowledgement from someone it did not go
    /// to, or of a message we do not have, changes nothing.
    pub fn acknowledged(&mut self, peer: PeerId, id: u64) {
        let ours = self.entries.iter_mut().find(|e| e.author == Author::Me && e.id == id);
        if let Some(entry) = ours
            && entry.awaiting.remove(&peer)
            && entry.awaiting.is_empty()
        {
            entry.delivered = true;
        }
    }

    fn push(&mut self, entry: Entry) {
        if self.entries.len() == LOG_MAX_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_cleaned_and_counted_in_characters() {
        assert_eq!(clean_name("  Ana \n"), Ok(Some("Ana".to_owned())));
        assert_eq!(clean_name("A\u{7}n\u{1b}a"), Ok(Some("Ana".to_owned())));
        assert_eq!(clean_name(" \t\r\n"), Ok(None));
        assert_eq!(clean_name(""), Ok(None));
        // 40 Chinese characters are 120 bytes: they fit.
        let chinese = "张".repeat(NAME_MAX_CHARS);
        assert_eq!(clean_name(&chinese), Ok(Some(chinese.clone())));
        assert_eq!(clean_name(&format!("{chinese}伟")), Err(ChatError::TooLong { found: 41, max: NAME_MAX_CHARS }));
        // Markup is just text here; the page shows it as such.
        assert_eq!(clean_name("<b>x</b>"), Ok(Some("<b>x</b>".to_owned())));
    }

    #[test]
    fn texts_keep_line_breaks_and_refuse_empty_or_long_ones() {
        assert_eq!(clean_text(" hi\nthere\u{0}\r "), Ok("hi\nthere".to_owned()));
        assert_eq!(clean_text(" \n "), Err(ChatError::Empty));
        assert_eq!(clean_text(&"a".repeat(TEXT_MAX_CHARS)).map(|t| t.len()), Ok(TEXT_MAX_CHARS));
        assert_eq!(
            clean_text(&"好".repeat(TEXT_MAX_CHARS + 1)),
            Err(ChatError::TooLong { found: TEXT_MAX_CHARS + 1, max: TEXT_MAX_CHARS })
        );
    }

    #[test]
    fn messages_round_trip_in_the_documented_shape() {
        let presence = PeerMessage::Presence(Presence { name: Some("Ana".into()), listening: true, sharing: false });
        assert_eq!(presence.encode(), r#"{"type":"presence","name":"Ana","listening":true,"sharing":false}"#);
        let chat = PeerMessage::Chat { id: 7, text: "hello".into() };
        assert_eq!(chat.encode(), r#"{"type":"chat","id":7,"text":"hello"}"#);
        assert_eq!(PeerMessage::Ack { id: 7 }.encode(), r#"{"type":"ack","id":7}"#);
        for message in [presence, chat, PeerMessage::Ack { id: 7 }] {
            assert_eq!(PeerMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn a_peers_frames_are_checked_and_cleaned_as_untrusted() {
        // Missing fields take their defaults, unknown ones are ignored.
        assert_eq!(
            PeerMessage::decode(r#"{"type":"presence","extra":1}"#),
            Ok(PeerMessage::Presence(Presence::default()))
        );
        assert_eq!(
            PeerMessage::decode(r#"{"type":"presence","name":" Bo\u0007 "}"#),
            Ok(PeerMessage::Presence(Presence { name: Some("Bo".into()), ..Presence::default() }))
        );
        let blank = PeerMessage::decode(r#"{"type":"presence","name":"   "}"#);
        assert_eq!(blank, Ok(PeerMessage::Presence(Presence::default())));
        let long_name = format!(r#"{{"type":"presence","name":"{}"}}"#, "x".repeat(NAME_MAX_CHARS + 1));
        assert!(matches!(PeerMessage::decode(&long_name), Err(ChatError::TooLong { .. })));
        let long_text = format!(r#"{{"type":"chat","id":1,"text":"{}"}}"#, "x".repeat(TEXT_MAX_CHARS + 1));
        assert!(matches!(PeerMessage::decode(&long_text), Err(ChatError::TooLong { .. })));
        let escaped = format!(r#"{{"type":"chat","id":1,"text":"{}"}}"#, r"\u597d".repeat(TEXT_MAX_CHARS));
        assert_eq!(PeerMessage::decode(&escaped), Ok(PeerMessage::Chat { id: 1, text: "好".repeat(TEXT_MAX_CHARS) }));
        let huge = " ".repeat(FRAME_MAX_BYTES + 1);
        assert_eq!(PeerMessage::decode(&huge), Err(ChatError::FrameTooLarge { found: FRAME_MAX_BYTES + 1 }));
        assert_eq!(PeerMessage::decode(r#"{"type":"chat","id":1,"text":" "}"#), Err(ChatError::Empty));
        for malformed in
            ["", "nope", "[]", r#"{"type":"dance"}"#, r#"{"type":"chat","id":-1,"text":"x"}"#, r#"{"id":1}"#]
        {
            assert!(matches!(PeerMessage::decode(malformed), Err(ChatError::Malformed(_))), "{malformed}");
        }
    }

    #[test]
    fn our_message_is_delivered_once_everyone_in_the_room_acknowledged_it() {
        let (bo, cy, di) = (PeerId(2), PeerId(3), PeerId(4));
        let mut log = ChatLog::default();
        assert_eq!(log.send("  hi ", [bo, cy]), Ok(PeerMessage::Chat { id: 1, text: "hi".into() }));
        assert_eq!(log.send("\n", [bo, cy]), Err(ChatError::Empty));
        log.acknowledged(bo, 1);
        log.acknowledged(bo, 1);
        log.acknowledged(di, 1); // Di came later: not awaited, counts for nothing.
        log.acknowledged(cy, 9); // No such message.
        assert!(!log.entries()[0].delivered);
        log.acknowledged(cy, 1);
        assert!(log.entries()[0].delivered);
        assert_eq!(log.entries()[0].author, Author::Me);
        // Sent to nobody, it is delivered nowhere; ids go on counting.
        assert_eq!(log.send("alone", []), Ok(PeerMessage::Chat { id: 2, text: "alone".into() }));
        assert!(!log.entries()[1].delivered);
    }

    #[test]
    fn messages_arriving_while_closed_are_unread_until_it_opens() {
        let bo = PeerId(2);
        let mut log = ChatLog::default();
        assert_eq!(log.receive(bo, Some("Bo".into()), 1, "one".into()), PeerMessage::Ack { id: 1 });
        assert_eq!(log.receive(bo, Some("Bo".into()), 2, "two".into()), PeerMessage::Ack { id: 2 });
        // A repeat is acknowledged again but neither logged nor counted twice.
        assert_eq!(log.receive(bo, Some("Bo".into()), 2, "two".into()), PeerMessage::Ack { id: 2 });
        assert_eq!((log.entries().len(), log.unread()), (2, 2));
        log.set_open(true);
        assert_eq!(log.unread(), 0);
        log.receive(PeerId(3), None, 2, "same id, another author".into());
        assert_eq!((log.entries().len(), log.unread()), (3, 0));
        log.set_open(false);
        log.send("ours is never unread", [bo]).unwrap();
        assert_eq!(log.unread(), 0);
        let entry = &log.entries()[0];
        assert_eq!((entry.author, entry.name.as_deref(), entry.text.as_str()), (Author::Peer(bo), Some("Bo"), "one"));
    }

    #[test]
    fn the_log_keeps_the_latest_messages() {
        let mut log = ChatLog::default();
        for n in 0..LOG_MAX_ENTRIES as u64 + 5 {
            log.receive(PeerId(2), None, n, n.to_string());
        }
        assert_eq!(log.entries().len(), LOG_MAX_ENTRIES);
        assert_eq!(log.entries()[0].id, 5);
    }
}
