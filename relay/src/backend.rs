//! Where the rooms live: in this relay's memory (one relay, the default), or in Redis,
//! shared by every relay pointed at it (`--redis-url`). An enum, not a trait object: the
//! in-memory path stays a direct call, and each socket task is told which one it has
//! without a box or a vtable.

use std::net::IpAddr;

use shared::protocol::ServerMessage;
use shared::room::{PeerId, RoomId};

use crate::attachment::Outbox;
use crate::cluster::{BadUrl, Cluster, Unavailable};
use crate::config::Config;
use crate::rooms::{JoinError, Rooms, Seat, UnknownPeer};

/// The rooms, wherever they live.
#[derive(Debug)]
pub enum Backend {
    /// In this relay's memory.
    Memory(Rooms),
    /// In Redis, shared with other relays.
    Shared(Cluster),
}

impl Backend {
    /// The rooms `config` asks for.
    pub fn new(config: &Config) -> Result<Self, BadUrl> {
        let (capacity, per_client) = (config.room_capacity, config.per_client(config.rooms_per_ip));
        Ok(match &config.redis_url {
            None => Self::Memory(Rooms::new(capacity, per_client)),
            Some(url) => Self::Shared(Cluster::connect(url, capacity, per_client, config.resume_grace)?),
        })
    }

    /// Whether everything the rooms need answers (a Redis that does not is `degraded`:
    /// calls under way go on, new joins are refused).
    pub fn health(&self) -> &'static str {
        match self {
            Self::Shared(cluster) if !cluster.is_up() => "degraded: Redis is unreachable",
            _ => "ok",
        }
    }

    /// Puts a newcomer from `ip` in `room` and tells the others.
    pub async fn join(&self, room: &RoomId, ip: IpAddr, outbox: Outbox) -> Result<Seat, JoinError> {
        match self {
            Self::Memory(rooms) => rooms.join(room, ip, outbox),
            Self::Shared(cluster) => cluster.join(room, ip, outbox).await,
        }
    }

    /// Gives the seat holding `token` in `room` to a new socket; `Ok(None)` when no seat
    /// has that token.
    pub async fn resume(
        &self,
        room: &RoomId,
        token: &str,
        ip: IpAddr,
        outbox: Outbox,
    ) -> Result<Option<Seat>, Unavailable> {
        match self {
            Self::Memory(rooms) => Ok(rooms.resume(room, token, outbox)),
            Self::Shared(cluster) => cluster.resume(room, token, ip, outbox).await,
        }
    }

    /// Takes the peer out of the room now, if `generation` is still its attachment.
    pub async fn leave(&self, room: &RoomId, id: PeerId, generation: u64) {
        match self {
            Self::Memory(rooms) => rooms.leave(room, id, generation),
            Self::Shared(cluster) => cluster.leave(room, id, generation).await,
        }
    }

    /// Marks the peer's socket as gone; returns whether the seat now waits for a resume.
    pub async fn park(&self, room: &RoomId, id: PeerId, generation: u64) -> bool {
        match self {
            Self::Memory(rooms) => rooms.park(room, id, generation),
            Self::Shared(cluster) => cluster.park(room, id, generation).await,
        }
    }

    /// Ends the grace period of a parked seat: if nobody resumed it, the peer leaves.
    pub async fn expire(&self, room: &RoomId, id: PeerId, generation: u64) {
        match self {
            Self::Memory(rooms) => rooms.expire(room, id, generation),
            Self::Shared(cluster) => cluster.expire(room, id, generation).await,
        }
    }

    /// Delivers `message`, made from a signal of `from`, to `to`, another member of `room`.
    pub fn forward(&self, room: &RoomId, from: PeerId, to: PeerId, message: &ServerMessage) -> Result<(), UnknownPeer> {
        match self {
            Self::Memory(rooms) => rooms.forward(room, from, to, message),
            Self::Shared(cluster) => cluster.forward(room, from, to, message),
        }
    }
}
