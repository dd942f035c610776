//! What the relay counts, exported in Prometheus format at `GET /metrics`.
//!
//! Only counts: never a room id, a peer id or an address, so the endpoint reveals nothing
//! about who is talking. The `metrics` facade is global, so one recorder serves every relay
//! in the process.

use std::sync::OnceLock;

use metrics::{Counter, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use shared::protocol::ErrorCode;

/// Installs the recorder on first use and returns the handle that renders it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then stays unused
            // and /metrics renders empty, which the tests would catch.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_gauge!("relay_rooms", "Open rooms.");
    describe_gauge!("relay_peers", "Peers in rooms, including those waiting to resume.");
    describe_gauge!("relay_sockets", "Open signaling sockets.");
    describe_gauge!("relay_connections", "Open TCP connections (counted per address unless behind a proxy).");
    describe_counter!("relay_messages_in_total", "Messages received from clients.");
    describe_counter!("relay_messages_out_total", "Messages sent to clients.");
    describe_counter!("relay_errors_total", "Error answers sent, by code.");
    describe_counter!("relay_evictions_total", "Sockets closed by the relay, by reason.");
    describe_counter!("relay_resumes_total", "Peers that took their seat back after a dropped socket.");
    describe_counter!("relay_dropped_total", "Messages dropped for a peer that was not keeping up.");
    describe_counter!("relay_redis_errors_total", "Redis calls that failed, and connections to it lost.");
    describe_gauge!("relay_redis_up", "1 while Redis answers (relays sharing rooms only).");
    describe_counter!("relay_ice_checks_total", "ICE configurations handed out for a network check (GET /ice).");
}

/// Sets the room and peer gauges.
pub fn rooms(rooms: usize, peers: usize) {
    gauge!("relay_rooms").set(rooms as f64);
    gauge!("relay_peers").set(peers as f64);
}

/// A socket opened (+1) or closed (-1).
pub fn socket(delta: f64) {
    gauge!("relay_sockets").increment(delta);
}

/// A TCP connection opened (`1.0`) or closed (`-1.0`).
pub fn connection(delta: f64) {
    gauge!("relay_connections").increment(delta);
}

/// The counters touched for every message, looked up once: `counter!` finds a counter by
/// hashing its name in the registry, which showed in the relay's profile under load.
struct PerMessage {
    received: Counter,
    sent: Counter,
}

fn per_message() -> &'static PerMessage {
    static COUNTERS: OnceLock<PerMessage> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        // Installs the recorder first: a counter taken before it would count nowhere.
        handle();
        PerMessage { received: counter!("relay_messages_in_total"), sent: counter!("relay_messages_out_total") }
    })
}

/// A message came in.
pub fn message_in() {
    per_message().received.increment(1);
}

/// A message went out.
pub fn message_out() {
    per_message().sent.increment(1);
}

/// An error answer went out.
pub fn error(code: ErrorCode) {
    counter!("relay_errors_total", "code" => code.as_str()).increment(1);
}

/// The relay closed a socket for `reason`.
pub fn eviction(reason: &'static str) {
    counter!("relay_evictions_total", "reason" => reason).increment(1);
}

/// A peer resumed its seat.
pub fn resumed() {
    counter!("relay_resumes_total").increment(1);
}

/// A message was dropped for a slow or absent peer.
pub fn dropped() {
    counter!("relay_dropped_total").increment(1);
}

/// A page asked for the ICE servers, to check its network.
pub fn ice_check() {
    counter!("relay_ice_checks_total").increment(1);
}

/// A Redis call failed, or the connection to it dropped.
pub fn redis_error() {
    counter!("relay_redis_errors_total").increment(1);
}

/// Whether Redis answers now.
pub fn redis_up(up: bool) {
    gauge!("relay_redis_up").set(if up { 1.0 } else { 0.0 });
}
