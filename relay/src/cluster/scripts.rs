//! The room rules in Redis: each change to a room is one Lua script, so that two relays
//! changing the same room at once see it one after the other (Redis runs a script whole),
//! and the event the change makes is published in the same step, in the same order.
//!
//! A room `R` is four hashes and a channel: `lc:{R}:seats` (peer id → `"<token>
//! <generation>"`), `lc:{R}:parked` (peer id → the time in ms its grace ends),
//! `lc:{R}:nodes` (peer id → the relay holding the seat), `lc:{R}:meta` (`next`: the last
//! id given, `creator`: the address that opened it) and `lc:{R}` ([`super::envelope`]).
//! Two counters serve the per-address room limit: `lc:rooms` (open rooms) and
//! `lc:ip:<address>` (rooms open by that address). Each running relay keeps
//! `lc:node:<node>` alive (a heartbeat that expires), and `lc:epoch` names this Redis's
//! data: it changes only when Redis lost everything. Those are named inside the scripts, so
//! this layout wants one Redis (or Valkey, or a primary with replicas), not a Redis Cluster.
//!
//! Every script first reaps: a seat whose relay's heartbeat is gone (killed, or cut off
//! from Redis) waits as if parked, from then on, for the grace; a seat whose grace is over
//! is ended. A relay that was stopped or lost leaves nobody to end those waits but the next
//! relay to touch the room.

use std::net::IpAddr;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use shared::room::{PeerId, RoomId};

use super::envelope::{channel, key};
use crate::limits::PerClient;

/// Where a relay's heartbeat lives, followed by its node id.
const NODE_PREFIX: &str = "lc:node:";

/// The key naming this Redis's data (see [`BEAT`]).
const EPOCH: &str = "lc:epoch";

/// The functions every room script shares. `KEYS` are always seats, parked, meta, the
/// channel, the room counter and nodes.
const PRELUDE: &str = r"
local seats, parked, meta, channel, rooms, nodes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function forget()
  local creator = redis.call('HGET', meta, 'creator')
  if creator then
    local mine = 'lc:ip:' .. creator
    if redis.call('DECR', mine) <= 0 then redis.call('DEL', mine) end
    if redis.call('DECR', rooms) <= 0 then redis.call('DEL', rooms) end
  end
  redis.call('DEL', meta, parked, nodes)
end
local function remove(id)
  redis.call('HDEL', seats, id)
  redis.call('HDEL', parked, id)
  redis.call('HDEL', nodes, id)
  redis.call('PUBLISH', channel, 'l ' .. id)
  if redis.call('HLEN', seats) == 0 then forget() end
end
local function reap(now, grace)
  local holders = redis.call('HGETALL', nodes)
  for i = 1, #holders, 2 do
    if redis.call('HEXISTS', parked, holders[i]) == 0
      and redis.call('EXISTS', 'lc:node:' .. holders[i + 1]) == 0 then
      redis.call('HSET', parked, holders[i], string.format('%d', now + grace))
    end
  end
  local waiting = redis.call('HGETALL', parked)
  for i = 1, #waiting, 2 do
    if tonumber(waiting[i + 1]) <= now then remove(waiting[i]) end
  end
end
local function generation_of(id)
  local seat = redis.call('HGET', seats, id)
  if not seat then return nil end
  return string.match(seat, ' (%d+)$')
end
";

/// ARGV: capacity, token, generation, address, per-address limit, busy above, now, grace,
/// node. Returns `{"ok", id, others...}`, `{"full"}` or `{"too_many_rooms"}`.
const JOIN: &str = r"
reap(tonumber(ARGV[7]), tonumber(ARGV[8]))
local count = redis.call('HLEN', seats)
if count >= tonumber(ARGV[1]) then return {'full'} end
if count == 0 then
  local mine = 'lc:ip:' .. ARGV[4]
  local total = tonumber(redis.call('GET', rooms) or '0')
  if total >= tonumber(ARGV[6]) and tonumber(redis.call('GET', mine) or '0') >= tonumber(ARGV[5]) then
    return {'too_many_rooms'}
  end
  redis.call('DEL', meta, parked, nodes)
  redis.call('INCR', mine)
  redis.call('INCR', rooms)
  redis.call('HSET', meta, 'creator', ARGV[4])
end
local id = redis.call('HINCRBY', meta, 'next', 1)
local result = {'ok', tostring(id)}
for _, other in ipairs(redis.call('HKEYS', seats)) do table.insert(result, other) end
redis.call('HSET', seats, id, ARGV[2] .. ' ' .. ARGV[3])
redis.call('HSET', nodes, id, ARGV[9])
redis.call('PUBLISH', channel, 'j ' .. id)
return result
";

/// ARGV: token, generation, now, grace, node. Returns `{id, others...}`, or `{}` for no
/// such seat.
const RESUME: &str = r"
reap(tonumber(ARGV[3]), tonumber(ARGV[4]))
local all = redis.call('HGETALL', seats)
local prefix = ARGV[1] .. ' '
local found
for i = 1, #all, 2 do
  if string.sub(all[i + 1], 1, #prefix) == prefix then found = all[i] end
end
if not found then return {} end
redis.call('HSET', seats, found, prefix .. ARGV[2])
redis.call('HDEL', parked, found)
redis.call('HSET', nodes, found, ARGV[5])
redis.call('PUBLISH', channel, 't ' .. found .. ' ' .. ARGV[2])
local result = {found}
for i = 1, #all, 2 do
  if all[i] ~= found then table.insert(result, all[i]) end
end
return result
";

/// ARGV: id, generation, `1` to leave only a parked seat. Returns 1 if the peer left.
const LEAVE: &str = r"
if generation_of(ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '1' and redis.call('HEXISTS', parked, ARGV[1]) == 0 then return 0 end
remove(ARGV[1])
return 1
";

/// ARGV: id, generation, when the grace ends. Returns 1 if the seat now waits.
const PARK: &str = r"
if generation_of(ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', parked, ARGV[1], ARGV[3])
return 1
";

/// ARGV: now, grace.
const REAP: &str = r"
reap(tonumber(ARGV[1]), tonumber(ARGV[2]))
return 0
";

/// ARGV: the creator's address, the highest id this relay knows in the room (on any
/// relay), the epoch this relay's seats were taken in, its node, then id, token,
/// generation and `1` if its socket is gone, for each seat this relay holds.
///
/// A Redis that lost its data (its epoch is another) is given back the seats it no longer
/// knows; a seat it has is left as it is. The last id given is at least the highest known,
/// so that a join on a relay that restored first is not given the id of a seat another
/// relay has yet to put back. A Redis that kept its data is given nothing back: a seat it
/// no longer has was ended while this relay could not keep its heartbeat (and the room
/// was told), or taken back elsewhere. Each seat still this relay's is marked as its
/// again, and one with a socket no longer waits as if parked.
///
/// Returns `id, "1"` for each seat that is no longer this relay's but still in the room
/// (taken back elsewhere), `id, "0"` for each that left it.
const RESTORE: &str = r"
local lost = redis.call('GET', 'lc:epoch') ~= ARGV[3]
local fresh = redis.call('HLEN', seats) == 0
local highest = math.max(tonumber(redis.call('HGET', meta, 'next') or '0'), tonumber(ARGV[2]))
local kept, gone = 0, {}
for i = 5, #ARGV, 4 do
  local id, held = ARGV[i], ARGV[i + 1] .. ' ' .. ARGV[i + 2]
  if lost then redis.call('HSETNX', seats, id, held) end
  local seat = redis.call('HGET', seats, id)
  if seat == held then
    kept = kept + 1
    redis.call('HSET', nodes, id, ARGV[4])
    if ARGV[i + 3] == '0' then redis.call('HDEL', parked, id) end
    if tonumber(id) > highest then highest = tonumber(id) end
  else
    table.insert(gone, id)
    table.insert(gone, seat and '1' or '0')
  end
end
if redis.call('HLEN', seats) > 0 then redis.call('HSET', meta, 'next', highest) end
if fresh and kept > 0 then
  redis.call('INCR', 'lc:ip:' .. ARGV[1])
  redis.call('INCR', rooms)
  redis.call('HSET', meta, 'creator', ARGV[1])
end
return gone
";

/// KEYS: the relay's heartbeat, the epoch. ARGV: how long the heartbeat lives in ms, an
/// epoch to name this Redis's data if nothing does yet. Returns `{1 if the heartbeat was
/// still alive, the epoch}`.
const BEAT: &str = r"
local alive = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return {alive, redis.call('GET', KEYS[2])}
";

/// What the join script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// In, with this id; the others, in the order they came.
    Seated(PeerId, Vec<PeerId>),
    /// The room is at capacity.
    Full,
    /// The address has as many rooms open as it may.
    TooManyRooms,
}

/// A seat this relay holds, to put back in a Redis that lost it.
#[derive(Debug, Clone)]
pub struct Held {
    /// The peer's id.
    pub id: PeerId,
    /// Its resume token.
    pub token: String,
    /// Its attachment's generation.
    pub generation: u64,
    /// Whether its socket is gone (the seat waits for a resume).
    pub parked: bool,
}

/// What a heartbeat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// Whether the heartbeat was still alive: if not, other relays may have taken this
    /// relay for dead and begun to end its seats.
    pub alive: bool,
    /// The epoch naming Redis's data now.
    pub epoch: String,
}

/// A seat this relay held that is no longer its in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    /// The peer's id.
    pub id: PeerId,
    /// Whether the seat is still in the room (taken back through another relay), rather
    /// than ended.
    pub seated: bool,
}

/// The compiled scripts (Redis knows them by their SHA-1 and is sent the source once),
/// and the room rules they apply.
pub struct Scripts {
    capacity: usize,
    rooms_per_client: PerClient,
    /// This relay's node id, written on each seat it takes, and its heartbeat's key.
    node: String,
    heartbeat: String,
    /// How long a seat waits for a resume, in ms.
    grace_ms: u64,
    join: Script,
    resume: Script,
    leave: Script,
    park: Script,
    reap: Script,
    restore: Script,
    beat: Script,
}

impl Scripts {
    /// Every script with the shared prelude, for rooms of at most `capacity` people, the
    /// rooms an address has open held to `rooms_per_client`, seats taken by relay `node`,
    /// a seat waiting `grace` for a resume.
    pub fn new(capacity: usize, rooms_per_client: PerClient, node: &str, grace: Duration) -> Self {
        let script = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            capacity,
            rooms_per_client,
            node: node.to_owned(),
            heartbeat: format!("{NODE_PREFIX}{node}"),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            join: script(JOIN),
            resume: script(RESUME),
            leave: script(LEAVE),
            park: script(PARK),
            reap: script(REAP),
            restore: script(RESTORE),
            beat: Script::new(BEAT),
        }
    }

    /// How many people a room holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes a new seat in `room` for a socket from `ip`.
    pub async fn join(
        &self,
        redis: &mut ConnectionManager,
        room: &RoomId,
        token: &str,
        generation: u64,
        ip: IpAddr,
        now_ms: u64,
    ) -> redis::RedisResult<Joined> {
        let mut call = self.join.prepare_invoke();
        keys(&mut call, room);
        call.arg(self.capacity).arg(token).arg(generation).arg(ip.to_string());
        call.arg(self.rooms_per_client.limit).arg(self.rooms_per_client.busy_above).arg(now_ms);
        call.arg(self.grace_ms).arg(&self.node);
        let answer: Vec<String> = call.invoke_async(redis).await?;
        Ok(match answer.first().map(String::as_str) {
            Some("ok") => {
                let mut ids = peer_ids(&answer[1..]);
                let id = ids.first().copied().unwrap_or(PeerId(0));
                let mut others = ids.split_off(1);
                others.sort_unstable();
                Joined::Seated(id, others)
            }
            Some("full") => Joined::Full,
            _ => Joined::TooManyRooms,
        })
    }

    /// Takes back the seat holding `token` as attachment `generation`: its id and the
    /// others, or `None` if no seat has that token.
    pub async fn resume(
        &self,
        redis: &mut ConnectionManager,
        room: &RoomId,
        token: &str,
        generation: u64,
        now_ms: u64,
    ) -> redis::RedisResult<Option<(PeerId, Vec<PeerId>)>> {
        let mut call = self.resume.prepare_invoke();
        keys(&mut call, room);
        call.arg(token).arg(generation).arg(now_ms).arg(self.grace_ms).arg(&self.node);
        let answer: Vec<String> = call.invoke_async(redis).await?;
        let mut ids = peer_ids(&answer);
        if ids.is_empty() {
            return Ok(None);
        }
        let mut others = ids.split_off(1);
        others.sort_unstable();
        Ok(Some((ids[0], others)))
    }

    /// Removes `id` if `generation` still holds its seat (and, with `only_parked`, the seat
    /// waits for a resume). Returns whether it left.
    pub async fn leave(
        &self,
        redis: &mut ConnectionManager,
        room: &RoomId,
        id: PeerId,
        generation: u64,
        only_parked: bool,
    ) -> redis::RedisResult<bool> {
        let mut call = self.leave.prepare_invoke();
        keys(&mut call, room);
        call.arg(id.0).arg(generation).arg(u8::from(only_parked));
        call.invoke_async(redis).await
    }

    /// Marks `id`'s seat as waiting for a resume until `deadline_ms`.
    pub async fn park(
        &self,
        redis: &mut ConnectionManager,
        room: &RoomId,
        id: PeerId,
        generation: u64,
        deadline_ms: u64,
    ) -> redis::RedisResult<bool> {
        let mut call = self.park.prepare_invoke();
        keys(&mut call, room);
        call.arg(id.0).arg(generation).arg(deadline_ms);
        call.invoke_async(redis).await
    }

    /// Ends the seats of `room` whose grace is over.
    pub async fn reap(&self, redis: &mut ConnectionManager, room: &RoomId, now_ms: u64) -> redis::RedisResult<()> {
        let mut call = self.reap.prepare_invoke();
        keys(&mut call, room);
        call.arg(now_ms).arg(self.grace_ms);
        call.invoke_async(redis).await
    }

    /// Marks the seats this relay holds in `room` (opened by `creator`, taken in `epoch`)
    /// as its again, putting them back if Redis lost them. Returns the seats that are no
    /// longer this relay's.
    pub async fn restore(
        &self,
        redis: &mut ConnectionManager,
        room: &RoomId,
        creator: IpAddr,
        highest: PeerId,
        epoch: &str,
        held: &[Held],
    ) -> redis::RedisResult<Vec<Gone>> {
        let mut call = self.restore.prepare_invoke();
        keys(&mut call, room);
        call.arg(creator.to_string()).arg(highest.0).arg(epoch).arg(&self.node);
        for seat in held {
            call.arg(seat.id.0).arg(&seat.token).arg(seat.generation).arg(u8::from(seat.parked));
        }
        let answer: Vec<String> = call.invoke_async(redis).await?;
        Ok(answer
            .chunks_exact(2)
            .filter_map(|pair| Some(Gone { id: PeerId(pair[0].parse().ok()?), seated: pair[1] == "1" }))
            .collect())
    }

    /// Keeps this relay's heartbeat alive for `ttl`, naming Redis's data with `epoch` if
    /// nothing names it yet.
    pub async fn beat(&self, redis: &mut ConnectionManager, ttl: Duration, epoch: &str) -> redis::RedisResult<Beat> {
        let mut call = self.beat.prepare_invoke();
        call.key(&self.heartbeat).key(EPOCH);
        call.arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)).arg(epoch);
        let (alive, epoch): (i64, String) = call.invoke_async(redis).await?;
        Ok(Beat { alive: alive == 1, epoch })
    }
}

/// The keys every script is given, in the prelude's order.
fn keys(call: &mut redis::ScriptInvocation<'_>, room: &RoomId) {
    call.key(key(room, "seats")).key(key(room, "parked")).key(key(room, "meta")).key(channel(room)).key("lc:rooms");
    call.key(key(room, "nodes"));
}

/// Peer ids as a script returns them; anything else is skipped.
fn peer_ids(texts: &[String]) -> Vec<PeerId> {
    texts.iter().filter_map(|text| text.parse().ok().map(PeerId)).collect()
}
