//! `GET /ice`: the ICE servers a page would get on joining, for the network check it runs
//! before (`shared::netcheck`): the configured STUN and TURN servers and the transport policy,
//! as a `shared::protocol::IceConfig`, which reads as an `RTCConfiguration`.
//!
//! It hands out nothing a signaling socket does not: anyone may join a room of their own
//! and read `joined`. Its TURN credentials are good for [`CHECK_TTL`] only, against a
//! call's hours, and name no peer. A page of another origin cannot read the answer (no
//! CORS headers); every request comes over a TCP connection the per-address limits count;
//! the answer is a few hundred bytes and an HMAC away.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State as Extract;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use shared::protocol::IceConfig;

use crate::{State, metrics};

/// How long a check's TURN credentials stay valid: a check gathers for 5 s; the rest is
/// room for the clocks of the relay and coturn to disagree.
pub const CHECK_TTL: Duration = Duration::from_secs(10 * 60);

/// The user a check's TURN credentials name (`<expiry>:check`), so that coturn's logs tell
/// checks from calls.
const CHECK_USER: &str = "check";

/// The ICE configuration for one check, never cached: its credentials expire.
pub async fn check(Extract(state): Extract<Arc<State>>) -> Response {
    metrics::ice_check();
    let config = IceConfig {
        ice_servers: state.ice_servers(CHECK_USER, CHECK_TTL.min(state.config.turn_ttl)),
        ice_transport_policy: state.config.ice_transport_policy,
    };
    let mut response = Json(config).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
