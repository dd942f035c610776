//! Room ids, peer ids and who may be in a room.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The characters of a room id: RFC 4648 base32, lower case, so that an id survives being
/// read aloud, retyped, or lower-cased by a chat app's link detector.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// How many people a room holds unless the relay is configured otherwise.
pub const DEFAULT_CAPACITY: usize = 6;

/// A room's name: 26 base32 characters, 130 bits of randomness.
///
/// Knowing the id is what admits you to the room, so it must be unguessable; it is also
/// the last path segment of the share link (`/r/<id>`), so it must be URL-safe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomId(String);

impl RoomId {
    /// The length of every room id.
    pub const LEN: usize = 26;

    /// Makes an id from random bytes (the low five bits of each are used).
    ///
    /// The caller supplies the entropy (`crypto.getRandomValues` in the browser) so that
    /// this stays deterministic under test.
    pub fn from_random(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect())
    }

    /// Checks that `text` is a well-formed room id.
    pub fn parse(text: &str) -> Result<Self, RoomIdError> {
        if text.len() != Self::LEN {
            return Err(RoomIdError::Length { found: text.len() });
        }
        match text.bytes().position(|b| !ALPHABET.contains(&b)) {
            Some(at) => Err(RoomIdError::Character { at }),
            None => Ok(Self(text.to_owned())),
        }
    }

    /// The id as text, as it appears in URLs and on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not a room id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomIdError {
    /// The id does not have [`RoomId::LEN`] bytes.
    #[error("a room id has {} characters, this one has {found}", RoomId::LEN)]
    Length {
        /// The length that was given.
        found: usize,
    },
    /// A byte outside `a-z2-7`.
    #[error("a room id uses only a-z and 2-7; byte {at} is something else")]
    Character {
        /// The offset of the first offending byte.
        at: usize,
    },
}

/// A participant's id within one room, assigned by the relay.
///
/// Ids are small numbers counted per room: they reveal nothing outside the room, they fit a
/// JavaScript number exactly, and their order decides the negotiation roles
/// ([`crate::negotiation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub u32);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The members of one room, each with a value of the caller's (the relay keeps each
/// member's outbound queue here).
#[derive(Debug)]
pub struct Roster<T> {
    capacity: usize,
    next: u32,
    members: BTreeMap<PeerId, T>,
}

/// The room already holds as many people as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the room is full ({capacity} people)")]
pub struct RoomFull {
    /// The room's capacity.
    pub capacity: usize,
}

impl<T> Roster<T> {
    /// An empty room for at most `capacity` people.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, next: 1, members: BTreeMap::new() }
    }

    /// Admits a newcomer and returns its fresh id. Ids are never reused within a room, so a
    /// late message addressed to someone who left cannot reach a newcomer.
    pub fn join(&mut self, value: T) -> Result<PeerId, RoomFull> {
        if self.members.len() >= self.capacity {
            return Err(RoomFull { capacity: self.capacity });
        }
        let id = PeerId(self.next);
        self.next += 1;
        self.members.insert(id, value);
        Ok(id)
    }

    /// Removes a member, returning its value if it was there.
    pub fn leave(&mut self, id: PeerId) -> Option<T> {
        self.members.remove(&id)
    }

    /// The value of member `id`.
    pub fn get(&self, id: PeerId) -> Option<&T> {
        self.members.get(&id)
    }

    /// The value of member `id`, to change it.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut T> {
        self.members.get_mut(&id)
    }

    /// The first member whose value satisfies `test`.
    pub fn find(&self, test: impl Fn(&T) -> bool) -> Option<PeerId> {
        self.members.iter().find(|(_, v)| test(v)).map(|(k, _)| *k)
    }

    /// Every member but `id`, in id order, to change them.
    pub fn others_mut(&mut self, id: PeerId) -> impl Iterator<Item = (PeerId, &mut T)> {
        self.members.iter_mut().filter(move |(k, _)| **k != id).map(|(k, v)| (*k, v))
    }

    /// Whether nobody is left (the relay then forgets the room).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How many people are in the room.
    pub fn len(&self) -> usize {
        self.members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_use_the_whole_alphabet() {
        let mut bytes = [0u8; RoomId::LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i * 37 % 256).unwrap();
        }
        let id = RoomId::from_random(bytes);
        assert_eq!(RoomId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.as_str().len(), RoomId::LEN);
        assert_eq!(RoomId::from_random([255; RoomId::LEN]).as_str(), "7".repeat(RoomId::LEN));
        assert_eq!(RoomId::from_random([0; RoomId::LEN]).as_str(), "a".repeat(RoomId::LEN));
    }

    #[test]
    fn malformed_ids_are_refused_with_the_reason() {
        assert_eq!(RoomId::parse(""), Err(RoomIdError::Length { found: 0 }));
        assert_eq!(RoomId::parse(&"a".repeat(27)), Err(RoomIdError::Length { found: 27 }));
        assert_eq!(RoomId::parse(&format!("{}A", "a".repeat(25))), Err(RoomIdError::Character { at: 25 }));
        assert_eq!(RoomId::parse(&format!("../{}", "a".repeat(23))), Err(RoomIdError::Character { at: 0 }));
        assert_eq!(RoomId::parse(&format!("{}01", "a".repeat(24))), Err(RoomIdError::Character { at: 24 }));
        // Multi-byte text of the right byte length is still refused.
        assert_eq!(RoomId::parse(&format!("é{}", "a".repeat(24))), Err(RoomIdError::Character { at: 0 }));
    }

    #[test]
    fn roster_admits_up_to_capacity_and_never_reuses_ids() {
        let mut room = Roster::new(2);
        let a = room.join('a').unwrap();
        let b = room.join('b').unwrap();
        assert_eq!(room.join('c'), Err(RoomFull { capacity: 2 }));
        assert_eq!(room.others_mut(a).map(|(k, v)| (k, *v)).collect::<Vec<_>>(), vec![(b, 'b')]);
        assert_eq!(room.find(|v| *v == 'b'), Some(b));
        assert_eq!(room.find(|v| *v == 'z'), None);
        *room.get_mut(b).unwrap() = 'B';
        for (_, v) in room.others_mut(b) {
            *v = 'A';
        }
        assert_eq!((room.get(a), room.get(b)), (Some(&'A'), Some(&'B')));
        *room.get_mut(b).unwrap() = 'b';
        assert_eq!(room.leave(b), Some('b'));
        assert_eq!(room.leave(b), None);
        let c = room.join('c').unwrap();
        assert!(a < b && b < c, "ids grow: {a} {b} {c}");
        assert_eq!(room.len(), 2);
        room.leave(a);
        room.leave(c);
        assert!(room.is_empty());
    }
}
