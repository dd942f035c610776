//! This relay's share of the shared rooms: who is in each room it serves (a copy of the
//! seats in Redis, kept by the room's events), and the attachments of the seats whose
//! sockets it holds. Messages between two sockets of one relay go through here alone,
//! without Redis.
//!
//! The relay that seats someone and the room's channel both announce the newcomer (and the
//! leaver) to this relay's sockets; whichever comes first does, the other finds the copy
//! already changed and says nothing, so each socket hears it once whatever the order.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use shared::protocol::ServerMessage;
use shared::room::{PeerId, RoomId};

use super::envelope::Envelope;
use super::scripts::Held;
use crate::attachment::{Attachment, Outbox};
use crate::rooms::UnknownPeer;

/// The rooms this relay serves.
#[derive(Debug, Default)]
pub struct Local {
    rooms: Mutex<HashMap<RoomId, Room>>,
}

#[derive(Debug, Default)]
struct Room {
    /// Everyone in the room, on any relay.
    everyone: BTreeSet<PeerId>,
    /// The highest id seen in the room, gone or not: ids are never given twice, even by a
    /// Redis that lost the room.
    highest: u32,
    /// The seats this relay holds.
    here: HashMap<PeerId, Member>,
    /// Joins and resumes under way: the room's channel must stay subscribed meanwhile.
    arriving: usize,
}

#[derive(Debug)]
struct Member {
    token: String,
    generation: u64,
    ip: IpAddr,
    attachment: Attachment,
}

/// Where a signal goes.
#[derive(Debug)]
pub enum Route {
    /// Delivered to a socket of this relay.
    Delivered,
    /// To another relay, through the room's channel: this envelope.
    Away(Envelope),
}

/// What the relay still has to do after an event from a room's channel.
#[derive(Debug, Default)]
pub struct Chores {
    /// Envelopes to publish on the room's channel (what waited for a seat taken elsewhere).
    pub publish: Vec<Envelope>,
    /// Whether this relay no longer serves the room.
    pub idle: bool,
}

impl Local {
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Room>> {
        // Every change leaves the maps consistent before anything that could panic.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A join or resume in `room` begins; returns whether the room is new here (its
    /// channel must be subscribed before the seat is taken).
    pub fn arrive(&self, room: &RoomId) -> bool {
        let mut rooms = self.lock();
        let fresh = !rooms.contains_key(room);
        rooms.entry(room.clone()).or_default().arriving += 1;
        fresh
    }

    /// A join or resume in `room` ended without a seat; returns whether the room is idle.
    pub fn turned_away(&self, room: &RoomId) -> bool {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else { return false };
        entry.arriving = entry.arriving.saturating_sub(1);
        entry.is_idle()
    }

    /// Forgets `room` if nobody is in it or on the way here; returns whether it did.
    pub fn forget_if_idle(&self, room: &RoomId) -> bool {
        let mut rooms = self.lock();
        if rooms.get(room).is_some_and(Room::is_idle) {
            rooms.remove(room);
            return true;
        }
        false
    }

    /// Seats `id`, whom Redis gave the seat with `others` in the room, on this relay's
    /// socket `outbox`. What waited for the seat here goes out first.
    pub fn seat(&self, room: &RoomId, id: PeerId, others: &[PeerId], held: Held, ip: IpAddr, outbox: Outbox) {
        let mut rooms = self.lock();
        let entry = rooms.entry(room.clone()).or_default();
        entry.arriving = entry.arriving.saturating_sub(1);
        entry.everyone.extend(others.iter().copied());
        entry.highest = others.iter().fold(entry.highest.max(id.0), |highest, other| highest.max(other.0));
        entry.arrived(id);
        match entry.here.get_mut(&id) {
            Some(member) => {
                member.generation = held.generation;
                for message in member.attachment.attach(outbox) {
                    member.attachment.deliver(message);
                }
            }
            None => {
                let attachment = Attachment::Live(outbox);
                let member = Member { token: held.token, generation: held.generation, ip, attachment };
                entry.here.insert(id, member);
            }
        }
    }

    /// Takes `id` out of `room` now if `generation` holds its seat here (and, with
    /// `only_parked`, the seat waits), telling this relay's others. Returns whether it did,
    /// and whether the room is idle.
    pub fn remove(&self, room: &RoomId, id: PeerId, generation: u64, only_parked: bool) -> (bool, bool) {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else { return (false, false) };
        let holds = entry
            .here
            .get(&id)
            .is_some_and(|member| member.generation == generation && (!only_parked || member.attachment.is_parked()));
        if holds {
            entry.here.remove(&id);
            entry.left(id);
        }
        (holds, entry.is_idle())
    }

    /// Marks the socket of `id` as gone: the seat waits for a resume. Returns whether it
    /// was parked.
    pub fn park(&self, room: &RoomId, id: PeerId, generation: u64) -> bool {
        let mut rooms = self.lock();
        let member = rooms.get_mut(room).and_then(|entry| entry.here.get_mut(&id));
        match member {
            Some(member) if member.generation == generation && !member.attachment.is_parked() => {
                member.attachment = Attachment::Parked(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// Delivers `message` from `from` to `to` here, or says which envelope takes it to
    /// another relay.
    pub fn forward(&self, room: &RoomId, from: PeerId, to: PeerId, message: String) -> Result<Route, UnknownPeer> {
        let mut rooms = self.lock();
        let entry = rooms.get_mut(room).ok_or(UnknownPeer)?;
        if from == to || !entry.everyone.contains(&to) {
            return Err(UnknownPeer);
        }
        match entry.here.get_mut(&to) {
            Some(member) => {
                member.attachment.deliver(message);
                Ok(Route::Delivered)
            }
            None => Ok(Route::Away(Envelope::To(to, message))),
        }
    }

    /// Applies an event from `room`'s channel.
    pub fn on_envelope(&self, room: &RoomId, envelope: Envelope) -> Chores {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else { return Chores::default() };
        let mut chores = Chores::default();
        match envelope {
            Envelope::Joined(id) => entry.arrived(id),
            Envelope::Left(id) => {
                entry.here.remove(&id);
                entry.left(id);
            }
            Envelope::Taken(id, generation) => {
                if entry.here.get(&id).is_some_and(|member| member.generation != generation)
                    && let Some(member) = entry.here.remove(&id)
                    && let Attachment::Parked(backlog) = member.attachment
                {
                    // The seat went to another relay: what waited for it here follows it.
                    chores.publish = backlog.into_iter().map(|message| Envelope::To(id, message)).collect();
                }
            }
            Envelope::To(id, message) => {
                if let Some(member) = entry.here.get_mut(&id) {
                    member.attachment.deliver(message);
                }
            }
        }
        chores.idle = entry.is_idle();
        chores
    }

    /// Lets go of `id`'s seat, which Redis no longer gives to `generation` here: ended
    /// while this relay could not keep its heartbeat (this relay's others hear that it
    /// left), or, if `seated`, taken back through another relay. Dropping the outbox closes
    /// its socket, so that it does not stay in a room nobody else sees it in: a client
    /// that comes back is told it is a newcomer, or finds its seat where it went. Returns
    /// whether the room is idle.
    pub fn lost(&self, room: &RoomId, id: PeerId, generation: u64, seated: bool) -> bool {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else { return false };
        if entry.here.get(&id).is_some_and(|member| member.generation == generation) {
            entry.here.remove(&id);
            if !seated {
                entry.left(id);
            }
        }
        entry.is_idle()
    }

    /// The rooms this relay serves.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.lock().keys().cloned().collect()
    }

    /// The seats this relay holds in each room, with an address to name as the room's
    /// creator should Redis have forgotten it, and the highest id it knows there.
    pub fn held(&self) -> Vec<(RoomId, IpAddr, PeerId, Vec<Held>)> {
        let rooms = self.lock();
        rooms
            .iter()
            .filter_map(|(room, entry)| {
                let creator = entry.here.values().next()?.ip;
                let held = entry
                    .here
                    .iter()
                    .map(|(id, member)| Held {
                        id: *id,
                        token: member.token.clone(),
                        generation: member.generation,
                        parked: member.attachment.is_parked(),
                    })
                    .collect();
                Some((room.clone(), creator, PeerId(entry.highest), held))
            })
            .collect()
    }
}

impl Room {
    fn is_idle(&self) -> bool {
        self.here.is_empty() && self.arriving == 0
    }

    /// `id` is in the room: this relay's others hear it if they had not yet.
    fn arrived(&mut self, id: PeerId) {
        self.highest = self.highest.max(id.0);
        if self.everyone.insert(id) {
            self.tell_others(id, &ServerMessage::PeerJoined { peer: id });
        }
    }

    /// `id` left: this relay's others hear it if they had not yet.
    fn left(&mut self, id: PeerId) {
        if self.everyone.remove(&id) {
            self.tell_others(id, &ServerMessage::PeerLeft { peer: id });
        }
    }

    fn tell_others(&mut self, id: PeerId, message: &ServerMessage) {
        let encoded = message.encode();
        for (_, member) in self.here.iter_mut().filter(|(other, _)| **other != id) {
            member.attachment.deliver(encoded.clone());
        }
    }
}
