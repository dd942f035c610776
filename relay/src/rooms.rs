//! Every room in memory, and the three things that change them: join, leave, forward.
//!
//! The lock is a std `Mutex` held only for map operations and `try_send`s, never across an
//! `.await`: a peer's socket task owns all I/O, and other peers reach it through its
//! bounded queue.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use shared::protocol::{ServerMessage, Signal};
use shared::room::{PeerId, RoomFull, RoomId, Roster};
use tokio::sync::mpsc;

/// How a socket task receives what other peers send it.
pub type Outbox = mpsc::Sender<ServerMessage>;

/// How many messages may wait for one slow socket. A full queue drops the message: that
/// peer is not reading, and the rest of the room must not wait for it.
pub const OUTBOX_CAPACITY: usize = 64;

/// All rooms, by id. A room exists while someone is in it.
#[derive(Debug)]
pub struct Rooms {
    capacity: usize,
    rooms: Mutex<HashMap<RoomId, Roster<Outbox>>>,
}

/// A signal was addressed to someone who is not another member of the sender's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPeer;

impl Rooms {
    /// No rooms yet; each will hold at most `capacity` people.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            rooms: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Roster<Outbox>>> {
        // A panic while holding the lock cannot leave a map half-updated (each operation is
        // a single insert or remove), so a poisoned lock is still sound to use.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a peer in `room`, tells the others, and returns its id and who was there.
    pub fn join(&self, room: &RoomId, outbox: Outbox) -> Result<(PeerId, Vec<PeerId>), RoomFull> {
        let mut rooms = self.lock();
        let roster = rooms
            .entry(room.clone())
            .or_insert_with(|| Roster::new(self.capacity));
        let id = roster.join(outbox)?;
        let mut present = Vec::with_capacity(roster.len() - 1);
        for (peer, outbox) in roster.others(id) {
            present.push(peer);
            deliver(outbox, ServerMessage::PeerJoined { peer: id });
        }
        Ok((id, present))
    }

    /// Takes `peer` out of `room` and tells the others; forgets the room when it empties.
    pub fn leave(&self, room: &RoomId, peer: PeerId) {
        let mut rooms = self.lock();
        let Some(roster) = rooms.get_mut(room) else {
            return;
        };
        if roster.leave(peer).is_none() {
            return;
        }
        for (_, outbox) in roster.others(peer) {
            deliver(outbox, ServerMessage::PeerLeft { peer });
        }
        if roster.is_empty() {
            rooms.remove(room);
        }
    }

    /// Delivers `signal` from `from` to `to`, another member of `room`, stamping the sender.
    pub fn forward(
        &self,
        room: &RoomId,
        from: PeerId,
        to: PeerId,
        signal: Signal,
    ) -> Result<(), UnknownPeer> {
        if from == to {
            return Err(UnknownPeer);
        }
        let rooms = self.lock();
        let outbox = rooms
            .get(room)
            .and_then(|roster| roster.get(to))
            .ok_or(UnknownPeer)?;
        deliver(outbox, ServerMessage::Signal { from, signal });
        Ok(())
    }
}

fn deliver(outbox: &Outbox, message: ServerMessage) {
    if let Err(error) = outbox.try_send(message) {
        tracing::warn!(%error, "dropped a message for a peer that is not reading");
    }
}
