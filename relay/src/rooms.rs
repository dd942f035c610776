//! Every room in memory, and what changes them: join, resume, leave, park, expire, forward.
//!
//! A member of a room is *live* while a socket serves it, and *parked* for a grace period
//! after its socket drops: messages for it wait in a bounded backlog, and a socket that
//! presents its resume token takes the seat back with the same id, the others none the
//! wiser. Each attachment of a socket to a seat has a generation number, so a grace timer
//! or an old socket can only act on the attachment it knew.
//!
//! The lock is a std `Mutex` held only for map operations and `try_send`s, never across an
//! `.await`: a peer's socket task owns all I/O, and others reach it through its outbox.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use shared::protocol::ServerMessage;
use shared::room::{PeerId, RoomFull, RoomId, Roster};

use crate::attachment::{Attachment, Outbox};
use crate::limits::PerClient;
use crate::metrics;

/// All rooms, by id. A room exists while someone is in it.
#[derive(Debug)]
pub struct Rooms {
    capacity: usize,
    rooms_per_client: PerClient,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<RoomId, Room>,
    /// Open rooms by the address that created them.
    created_by: HashMap<IpAddr, usize>,
    /// Members of all rooms, parked ones too: kept as they come and go, so that publishing
    /// it costs nothing under the lock.
    members: usize,
    next_generation: u64,
}

impl Inner {
    /// Publishes how many rooms and members there are.
    fn census(&self) {
        metrics::rooms(self.rooms.len(), self.members);
    }
}

#[derive(Debug)]
struct Room {
    creator: IpAddr,
    roster: Roster<Member>,
}

#[derive(Debug)]
struct Member {
    token: String,
    generation: u64,
    attachment: Attachment,
}

/// A place in a room, as the socket that holds it knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The peer's id.
    pub id: PeerId,
    /// The others in the room.
    pub peers: Vec<PeerId>,
    /// What the peer presents to resume.
    pub token: String,
    /// This attachment's generation.
    pub generation: u64,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The room is at capacity.
    Full(RoomFull),
    /// This address already has as many open rooms as it may.
    TooManyRooms,
    /// The rooms' shared store (Redis) cannot be reached.
    Unavailable,
}

/// A signal was addressed to someone who is not another member of the sender's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPeer;

impl Rooms {
    /// No rooms yet; each will hold at most `capacity` people, and the rooms an address
    /// has open are held to `rooms_per_client`.
    pub fn new(capacity: usize, rooms_per_client: PerClient) -> Self {
        Self { capacity, rooms_per_client, inner: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves the maps consistent before anything that could panic, so a
        // poisoned lock is still sound to use.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a newcomer from `ip` in `room` and tells the others.
    pub fn join(&self, room: &RoomId, ip: IpAddr, outbox: Outbox) -> Result<Seat, JoinError> {
        let mut inner = self.lock();
        let Inner { rooms, created_by, members, next_generation } = &mut *inner;
        let entry = match rooms.get_mut(room) {
            Some(entry) => entry,
            None => {
                let count = created_by.entry(ip).or_default();
                if !self.rooms_per_client.allows(rooms.len(), *count) {
                    return Err(JoinError::TooManyRooms);
                }
                *count += 1;
                rooms.entry(room.clone()).or_insert(Room { creator: ip, roster: Roster::new(self.capacity) })
            }
        };
        *next_generation += 1;
        let generation = *next_generation;
        let token = format!("{:032x}", rand::random::<u128>());
        let member = Member { token: token.clone(), generation, attachment: Attachment::Live(outbox) };
        let joined = entry.roster.join(member);
        let id = match joined {
            Ok(id) => id,
            Err(full) => {
                if entry.roster.is_empty() {
                    // Only possible with a capacity of zero; keep the books straight anyway.
                    forget(rooms, created_by, room);
                }
                return Err(JoinError::Full(full));
            }
        };
        let mut peers = Vec::with_capacity(entry.roster.len() - 1);
        let joined = ServerMessage::PeerJoined { peer: id }.encode();
        for (peer, member) in entry.roster.others_mut(id) {
            peers.push(peer);
            member.attachment.deliver(joined.clone());
        }
        *members += 1;
        inner.census();
        Ok(Seat { id, peers, token, generation })
    }

    /// Gives the seat holding `token` in `room` to a new socket. Messages that waited while
    /// the seat was parked go out first; a socket still attached is cut off (its outbox
    /// closes). `None` when no seat has that token.
    pub fn resume(&self, room: &RoomId, token: &str, outbox: Outbox) -> Option<Seat> {
        let mut inner = self.lock();
        let Inner { rooms, next_generation, .. } = &mut *inner;
        let roster = &mut rooms.get_mut(room)?.roster;
        let id = roster.find(|member| member.token == token)?;
        let peers = roster.others_mut(id).map(|(peer, _)| peer).collect();
        let member = roster.get_mut(id)?;
        *next_generation += 1;
        member.generation = *next_generation;
        for message in member.attachment.attach(outbox) {
            member.attachment.deliver(message);
        }
        Some(Seat { id, peers, token: member.token.clone(), generation: member.generation })
    }

    /// Takes the peer out of the room now, if `generation` is still its attachment, and
    /// tells the others.
    pub fn leave(&self, room: &RoomId, id: PeerId, generation: u64) {
        self.remove_if(room, id, |member| member.generation == generation);
    }

    /// Marks the peer's socket as gone: the seat waits for a resume. Returns whether it was
    /// parked (false if another socket holds it now, or it already left).
    pub fn park(&self, room: &RoomId, id: PeerId, generation: u64) -> bool {
        let mut inner = self.lock();
        let member = inner.rooms.get_mut(room).and_then(|r| r.roster.get_mut(id));
        match member {
            Some(member) if member.generation == generation && !member.attachment.is_parked() => {
                member.attachment = Attachment::Parked(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// Ends the grace period of a parked seat: if nobody resumed it, the peer leaves.
    pub fn expire(&self, room: &RoomId, id: PeerId, generation: u64) {
        self.remove_if(room, id, |member| member.generation == generation && member.attachment.is_parked());
    }

    fn remove_if(&self, room: &RoomId, id: PeerId, condition: impl FnOnce(&Member) -> bool) {
        let mut inner = self.lock();
        let Inner { rooms, created_by, members, .. } = &mut *inner;
        let Some(entry) = rooms.get_mut(room) else { return };
        if !entry.roster.get(id).is_some_and(condition) {
            return;
        }
        entry.roster.leave(id);
        *members -= 1;
        let left = ServerMessage::PeerLeft { peer: id }.encode();
        for (_, member) in entry.roster.others_mut(id) {
            member.attachment.deliver(left.clone());
        }
        if entry.roster.is_empty() {
            forget(rooms, created_by, room);
        }
        inner.census();
    }

    /// Delivers `message`, which the relay made from a signal of `from` (stamped with the
    /// sender), to `to`, another member of `room`.
    pub fn forward(&self, room: &RoomId, from: PeerId, to: PeerId, message: &ServerMessage) -> Result<(), UnknownPeer> {
        if from == to {
            return Err(UnknownPeer);
        }
        // Encoded before taking the lock: an SDP is a few KiB of JSON.
        let message = message.encode();
        let mut inner = self.lock();
        let member = inner.rooms.get_mut(room).and_then(|r| r.roster.get_mut(to)).ok_or(UnknownPeer)?;
        member.attachment.deliver(message);
        Ok(())
    }
}

/// Drops an empty room and its creator's count.
fn forget(rooms: &mut HashMap<RoomId, Room>, created_by: &mut HashMap<IpAddr, usize>, room: &RoomId) {
    let Some(Room { creator, .. }) = rooms.remove(room) else { return };
    if let Some(count) = created_by.get_mut(&creator) {
        *count -= 1;
        if *count == 0 {
            created_by.remove(&creator);
        }
    }
}
