//! Rooms shared by several relays through Redis (or Valkey), behind `--redis-url`.
//!
//! Redis holds each room's seats (ids, resume tokens, which attachment holds each) and the
//! per-address room counts; every change is one Lua script ([`scripts`]), so relays
//! changing one room at once are put in order. Each room has a channel; a relay subscribes
//! to the channels of the rooms it has sockets in, and learns there who comes and goes and
//! what is addressed to its sockets ([`envelope`]). A signal between two sockets of one
//! relay never touches Redis ([`local`]).
//!
//! When Redis cannot be reached, what needs it is refused with
//! [`shared::protocol::ErrorCode::Unavailable`] (joins and resumes), what does not goes on
//! (signals between sockets of one relay), leaves are retried until Redis takes them, and
//! `/healthz` says `degraded`. When it is back, the connection manager reconnects and
//! subscribes again, and each relay puts back the seats it holds should Redis have lost
//! them.
//!
//! Each relay keeps a heartbeat in Redis ([`HEARTBEAT_TTL`]) under a node id of its own,
//! and each seat names the node that holds it. A relay killed without SIGTERM parks
//! nothing, but its heartbeat expires: the other relays then treat its seats as parked,
//! so its clients resume on them within the grace, and a seat nobody takes back is ended
//! and its room told. A relay that was only cut off from Redis finds its heartbeat gone
//! when it is back, and claims its seats again, letting go of those ended meanwhile.

mod envelope;
mod local;
mod scripts;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use shared::protocol::ServerMessage;
use shared::room::{PeerId, RoomId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::envelope::{Envelope, channel, room_of};
use self::local::{Local, Route};
use self::scripts::{Held, Joined, Scripts};
use crate::attachment::Outbox;
use crate::limits::PerClient;
use crate::metrics;
use crate::rooms::{JoinError, Seat, UnknownPeer};

/// How long one Redis command may take before the relay counts Redis as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the relay checks that Redis answers, keeps its heartbeat alive, and ends the
/// seats whose grace is over in the rooms it serves (a stopped relay's parked seats).
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a relay's heartbeat outlives its last refresh. Six checks: a relay is not
/// taken for dead over a slow round trip or two (each may take [`RESPONSE_TIMEOUT`]), and
/// a killed one is found within a few seconds. Being taken for dead costs a live relay
/// little: its seats only wait as if parked, and it claims them back on its next beat;
/// they are ended only if it stays away for the whole grace after that.
const HEARTBEAT_TTL: Duration = Duration::from_secs(3);
/// How often a leave that Redis did not take is tried again, and for how long.
const RETRY_EVERY: Duration = Duration::from_secs(1);
const RETRY_FOR: u32 = 600;
/// Envelopes waiting to be published; beyond that, Redis is not keeping up and they are
/// dropped (the peers' numbered signals are sent again).
const PUBLISH_QUEUE: usize = 16_384;
/// Envelopes published in one round trip at most. One pipeline is in flight at a time (so
/// envelopes stay in order); under load the batches grow instead, so a slower round trip
/// does not cap the rate (64 a trip held two relays to 6,000 messages a second on a busy
/// machine).
const PUBLISH_BATCH: usize = 1024;

/// The Redis URL is not one.
#[derive(Debug, thiserror::Error)]
#[error("--redis-url: {0}")]
pub struct BadUrl(#[from] redis::RedisError);

/// Redis could not be reached for something that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The rooms of every relay sharing one Redis.
pub struct Cluster {
    shared: Arc<Shared>,
    /// The tasks that publish, receive and check; they end with the cluster.
    tasks: Vec<JoinHandle<()>>,
}

/// What the cluster's tasks and calls share.
struct Shared {
    redis: ConnectionManager,
    scripts: Scripts,
    local: Local,
    /// Subscribing and unsubscribing a room's channel happen one at a time, each with the
    /// decision that called for it, so a room is never left unsubscribed while served.
    subscriptions: tokio::sync::Mutex<()>,
    publish: mpsc::Sender<(String, String)>,
    grace: Duration,
    up: AtomicBool,
    /// How many times Redis was found unreachable, and how many of those the seats this
    /// relay holds were put back after. While they differ, Redis may have lost the seats
    /// and the ids given: a join could be given an id someone holds, so joins and resumes
    /// wait for the restore.
    losses: AtomicU64,
    restored: AtomicU64,
    /// The epoch of Redis's data this relay's seats were last put in (`None` before the
    /// first heartbeat): another one means Redis lost them.
    epoch: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("up", &self.is_up()).finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Cluster {
    /// Rooms in the Redis at `url`, of at most `capacity` people, an address's rooms held
    /// to `rooms_per_client`, a dropped socket's seat kept for `grace`. Connects lazily:
    /// a relay started while Redis is down serves as soon as it is up.
    pub fn connect(url: &str, capacity: usize, rooms_per_client: PerClient, grace: Duration) -> Result<Self, BadUrl> {
        let info = url.into_connection_info()?;
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let (pushed, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(CONNECT_TIMEOUT)
            // Unbounded: the connection must never wait for the relay; the task below
            // drains it at once, and only Redis, which the relays trust, writes to it.
            .set_push_sender(pushed)
            .set_automatic_resubscription();
        let redis = ConnectionManager::new_lazy_with_config(client, config)?;
        let (publish, mut outgoing) = mpsc::channel(PUBLISH_QUEUE);
        // Per process start: a restarted relay holds none of the seats of the one before.
        let node = format!("{:016x}", rand::random::<u64>());
        let shared = Arc::new(Shared {
            redis,
            scripts: Scripts::new(capacity, rooms_per_client, &node, grace),
            local: Local::default(),
            subscriptions: tokio::sync::Mutex::new(()),
            publish,
            grace,
            up: AtomicBool::new(false),
            losses: AtomicU64::new(0),
            restored: AtomicU64::new(0),
            epoch: std::sync::Mutex::new(None),
        });
        let receiver = shared.clone();
        let publisher = shared.clone();
        let checker = shared.clone();
        let tasks = vec![
            tokio::spawn(async move {
                while let Some(push) = pushes.recv().await {
                    receiver.pushed(push);
                }
            }),
            tokio::spawn(async move { publisher.publish_all(&mut outgoing).await }),
            tokio::spawn(async move { checker.check().await }),
        ];
        Ok(Self { shared, tasks })
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Relaxed)
    }

    /// Puts a newcomer from `ip` in `room` and tells the others.
    pub async fn join(&self, room: &RoomId, ip: IpAddr, outbox: Outbox) -> Result<Seat, JoinError> {
        let shared = &self.shared;
        shared.restored().map_err(|Unavailable| JoinError::Unavailable)?;
        shared.arrive(room).await.map_err(|Unavailable| JoinError::Unavailable)?;
        let token = format!("{:032x}", rand::random::<u128>());
        let held = Held { id: PeerId(0), token, generation: generation(), parked: false };
        let mut redis = shared.redis.clone();
        let joined = shared.scripts.join(&mut redis, room, &held.token, held.generation, ip, now_ms()).await;
        let (id, peers) = match shared.answered(joined) {
            Ok(Joined::Seated(id, peers)) => (id, peers),
            refused => {
                shared.turned_away(room).await;
                return Err(match refused {
                    Ok(Joined::Full) => JoinError::Full(shared::room::RoomFull { capacity: shared.scripts.capacity() }),
                    Ok(_) => JoinError::TooManyRooms,
                    Err(Unavailable) => JoinError::Unavailable,
                });
            }
        };
        let seat = Seat { id, peers, token: held.token.clone(), generation: held.generation };
        shared.local.seat(room, id, &seat.peers, Held { id, ..held }, ip, outbox);
        Ok(seat)
    }

    /// Gives the seat holding `token` in `room`, on whichever relay, to a new socket of
    /// this one. `Ok(None)` when no seat has that token.
    pub async fn resume(
        &self,
        room: &RoomId,
        token: &str,
        ip: IpAddr,
        outbox: Outbox,
    ) -> Result<Option<Seat>, Unavailable> {
        let shared = &self.shared;
        // A token is 32 hex digits; anything else takes no seat and needs no round trip.
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        shared.restored()?;
        shared.arrive(room).await?;
        let generation = generation();
        let mut redis = shared.redis.clone();
        let resumed = shared.scripts.resume(&mut redis, room, token, generation, now_ms()).await;
        let (id, peers) = match shared.answered(resumed) {
            Ok(Some(found)) => found,
            other => {
                shared.turned_away(room).await;
                return other.map(|_| None);
            }
        };
        let held = Held { id, token: token.to_owned(), generation, parked: false };
        shared.local.seat(room, id, &peers, held, ip, outbox);
        Ok(Some(Seat { id, peers, token: token.to_owned(), generation }))
    }

    /// Takes the peer out of the room now, if `generation` still holds its seat.
    pub async fn leave(&self, room: &RoomId, id: PeerId, generation: u64) {
        self.shared.clone().remove(room, id, generation, false).await;
    }

    /// Ends the grace period of a parked seat: if nobody resumed it, the peer leaves.
    pub async fn expire(&self, room: &RoomId, id: PeerId, generation: u64) {
        self.shared.clone().remove(room, id, generation, true).await;
    }

    /// Marks the peer's socket as gone: the seat waits for a resume, here and in Redis
    /// (so that another relay ends the wait should this one stop). Returns whether it was
    /// parked.
    pub async fn park(&self, room: &RoomId, id: PeerId, generation: u64) -> bool {
        let shared = &self.shared;
        if !shared.local.park(room, id, generation) {
            return false;
        }
        let deadline = now_ms() + u64::try_from(shared.grace.as_millis()).unwrap_or(u64::MAX);
        let mut redis = shared.redis.clone();
        let parked = shared.scripts.park(&mut redis, room, id, generation, deadline).await;
        // Without Redis the local timer still ends the wait.
        let _ = shared.answered(parked);
        true
    }

    /// Delivers `message` from `from` to `to`, another member of `room`: here at once, or
    /// through the room's channel to the relay that holds `to`.
    pub fn forward(&self, room: &RoomId, from: PeerId, to: PeerId, message: &ServerMessage) -> Result<(), UnknownPeer> {
        match self.shared.local.forward(room, from, to, message.encode())? {
            Route::Delivered => {}
            Route::Away(envelope) => self.shared.send(room, &envelope),
        }
        Ok(())
    }
}

impl Shared {
    /// Notes how a Redis call went.
    fn answered<T>(&self, result: redis::RedisResult<T>) -> Result<T, Unavailable> {
        match result {
            Ok(value) => {
                self.set_up(true);
                Ok(value)
            }
            Err(error) => {
                metrics::redis_error();
                if self.set_up(false) {
                    tracing::warn!(%error, "Redis is unreachable: new joins are refused until it is back");
                }
                Err(Unavailable)
            }
        }
    }

    /// Records whether Redis answers; returns whether that changed.
    fn set_up(&self, up: bool) -> bool {
        if !up {
            self.losses.fetch_add(1, Ordering::SeqCst);
        }
        let changed = self.up.swap(up, Ordering::Relaxed) != up;
        if changed {
            metrics::redis_up(up);
        }
        changed
    }

    /// Whether this relay's seats are back in Redis since it was last found unreachable
    /// (a Redis without persistence restarts empty, and answers before the checker has
    /// put them back).
    fn restored(&self) -> Result<(), Unavailable> {
        if self.restored.load(Ordering::SeqCst) == self.losses.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Unavailable)
        }
    }

    /// A join or resume in `room` begins here: the room's channel is subscribed first, so
    /// that no event after the seat is missed.
    async fn arrive(&self, room: &RoomId) -> Result<(), Unavailable> {
        let _turn = self.subscriptions.lock().await;
        if self.local.arrive(room) {
            let subscribed = self.redis.clone().subscribe(channel(room)).await;
            if self.answered(subscribed).is_err() {
                self.local.turned_away(room);
                self.local.forget_if_idle(room);
                return Err(Unavailable);
            }
        }
        Ok(())
    }

    /// A join or resume in `room` got no seat.
    async fn turned_away(&self, room: &RoomId) {
        if self.local.turned_away(room) {
            self.release(room).await;
        }
    }

    /// Stops listening to `room` if this relay no longer serves it.
    async fn release(&self, room: &RoomId) {
        let _turn = self.subscriptions.lock().await;
        if self.local.forget_if_idle(room) {
            // A failure leaves a subscription to a room nobody here is in: its events are
            // ignored.
            let _ = self.redis.clone().unsubscribe(channel(room)).await;
        }
    }

    /// Takes `id` out of `room` here at once, and in Redis as soon as it answers.
    async fn remove(self: Arc<Self>, room: &RoomId, id: PeerId, generation: u64, only_parked: bool) {
        let (removed, idle) = self.local.remove(room, id, generation, only_parked);
        if idle {
            self.release(room).await;
        }
        if !removed {
            return;
        }
        if self.leave(room, id, generation, only_parked).await.is_ok() {
            return;
        }
        let (shared, room) = (self.clone(), room.clone());
        tokio::spawn(async move {
            for _ in 0..RETRY_FOR {
                tokio::time::sleep(RETRY_EVERY).await;
                if shared.leave(&room, id, generation, only_parked).await.is_ok() {
                    return;
                }
            }
            tracing::warn!("gave up telling Redis that a peer left");
        });
    }

    async fn leave(&self, room: &RoomId, id: PeerId, generation: u64, only_parked: bool) -> Result<bool, Unavailable> {
        let mut redis = self.redis.clone();
        self.answered(self.scripts.leave(&mut redis, room, id, generation, only_parked).await)
    }

    /// Queues `envelope` for `room`'s channel.
    fn send(&self, room: &RoomId, envelope: &Envelope) {
        if self.publish.try_send((channel(room), envelope.encode())).is_err() {
            metrics::dropped();
        }
    }

    /// Publishes what is queued, in order, many at a time.
    async fn publish_all(&self, outgoing: &mut mpsc::Receiver<(String, String)>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        while outgoing.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
            let mut pipe = redis::pipe();
            for (channel, line) in batch.drain(..) {
                pipe.publish(channel, line).ignore();
            }
            let published: redis::RedisResult<()> = pipe.query_async(&mut self.redis.clone()).await;
            if self.answered(published).is_err() {
                metrics::dropped();
            }
        }
    }

    /// One push from Redis: an event on a room's channel, or the connection dropping.
    fn pushed(self: &Arc<Self>, push: PushInfo) {
        if push.kind == PushKind::Disconnection {
            if self.set_up(false) {
                metrics::redis_error();
                tracing::warn!("lost the connection to Redis");
            }
            return;
        }
        if push.kind != PushKind::Message {
            return;
        }
        let [Value::BulkString(name), Value::BulkString(line)] = push.data.as_slice() else { return };
        let (Ok(name), Ok(line)) = (std::str::from_utf8(name), std::str::from_utf8(line)) else { return };
        let (Some(room), Some(envelope)) = (room_of(name), Envelope::decode(line)) else { return };
        let chores = self.local.on_envelope(&room, envelope);
        for envelope in &chores.publish {
            self.send(&room, envelope);
        }
        if chores.idle {
            let shared = self.clone();
            tokio::spawn(async move { shared.release(&room).await });
        }
    }

    /// Keeps this relay's heartbeat alive (which also asks Redis whether it answers), ends
    /// the seats past their grace in this relay's rooms, and claims this relay's seats
    /// again when Redis comes back or its heartbeat had stopped.
    async fn check(self: &Arc<Self>) {
        let mut ticker = tokio::time::interval(CHECK_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Whatever call found Redis back first (a join may), the seats go back before
            // anyone is given a seat.
            let mut losses = self.losses.load(Ordering::SeqCst);
            let mut redis = self.redis.clone();
            let proposed = format!("{:016x}", rand::random::<u64>());
            let Ok(beat) = self.answered(self.scripts.beat(&mut redis, HEARTBEAT_TTL, &proposed).await) else {
                continue;
            };
            if !beat.alive {
                // Other relays may have taken this one for dead (or it just started): its
                // seats may be waiting as if parked, or ended. No seat is given until they
                // are claimed again.
                losses = self.losses.fetch_add(1, Ordering::SeqCst) + 1;
            }
            if self.restored.load(Ordering::SeqCst) != losses && self.restore(&beat.epoch).await.is_ok() {
                tracing::info!("this relay's seats are claimed again in Redis");
                self.restored.store(losses, Ordering::SeqCst);
            }
            for room in self.local.rooms() {
                let reaped = self.scripts.reap(&mut redis, &room, now_ms()).await;
                if self.answered(reaped).is_err() {
                    break;
                }
            }
        }
    }

    /// Claims the seats this relay holds again, in Redis whose data is now `epoch`: puts
    /// them back if Redis lost them, and lets go here of those ended or taken elsewhere
    /// meanwhile.
    async fn restore(self: &Arc<Self>, epoch: &str) -> Result<(), Unavailable> {
        let mine = self.lock_epoch().get_or_insert_with(|| epoch.to_owned()).clone();
        let mut redis = self.redis.clone();
        for (room, creator, highest, held) in self.local.held() {
            let restored = self.scripts.restore(&mut redis, &room, creator, highest, &mine, &held).await;
            for gone in self.answered(restored)? {
                let Some(seat) = held.iter().find(|seat| seat.id == gone.id) else { continue };
                tracing::warn!(%room, peer = %gone.id, "a seat of this relay was ended or taken while it was away");
                if self.local.lost(&room, gone.id, seat.generation, gone.seated) {
                    self.release(&room).await;
                }
            }
        }
        *self.lock_epoch() = Some(epoch.to_owned());
        Ok(())
    }

    fn lock_epoch(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.epoch.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A fresh attachment generation: random, since relays share the seats and no counter.
fn generation() -> u64 {
    rand::random()
}

/// The time in ms since the epoch: relays compare grace deadlines through Redis, so they
/// use the wall clock.
fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
