//! The network check on the room page, before joining ([`shared::netcheck`] decides): it asks
//! the relay for the ICE servers a call would use (`GET /ice`), gathers candidates against
//! them on a peer connection of its own (a data channel, so that it gathers without a
//! microphone), and says what that means for a call across networks.
//!
//! It is part of the page's first load, so it stays small: the relay's JSON is an
//! `RTCConfiguration` as it is and goes to the browser unread (no serde here), and the
//! candidates are read as their lines.

use std::cell::Cell;
use std::rc::Rc;

use futures_channel::oneshot;
use gloo_events::EventListener;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local_scoped_with_cancellation;
use shared::netcheck::{CHECK_TIMEOUT_MS, Gathered, Reach};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, RtcConfiguration, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSessionDescriptionInit};

use crate::i18n::text;

/// The check's line: checking, then what it found, in words. `data-result` says which for
/// programs: `checking`, then `turn`, `direct` or `none` ([`Reach::as_str`]), or `unknown`
/// when the check could not run (the relay did not answer, the browser refused). Leaving
/// the page, or joining, stops a check under way.
#[component]
pub fn NetworkCheck() -> impl IntoView {
    // `None` while checking; `Some(None)` when the check could not run.
    let found = RwSignal::new(None::<Option<Reach>>);
    spawn_local_scoped_with_cancellation(async move {
        let reach = check().await.map_err(|error| leptos::logging::warn!("network check: {error:?}")).ok();
        found.set(Some(reach));
    });
    let result = move || match found.get() {
        None => "checking",
        Some(None) => "unknown",
        Some(Some(reach)) => reach.as_str(),
    };
    let words = move || {
        let text = text();
        match found.get() {
            None => text.network_checking,
            Some(None) => text.network_unknown,
            Some(Some(Reach::Turn)) => text.network_turn,
            Some(Some(Reach::Direct)) => text.network_direct,
            Some(Some(Reach::NoWayThrough)) => text.network_none,
        }
    };
    view! {
        <p class="network-check" data-testid="network-check" data-result=result role="status">{words}</p>
    }
}

/// Gathers this browser's candidates against the relay's ICE servers, until gathering
/// completes, the result is settled, or [`CHECK_TIMEOUT_MS`] passes.
async fn check() -> Result<Reach, JsValue> {
    let connection = Closing(RtcPeerConnection::new_with_configuration(&ice_config().await?)?);
    let gathered = Rc::new(Cell::new(Gathered::default()));
    let (done, finished) = oneshot::channel();
    let done = Cell::new(Some(done));
    let seen = gathered.clone();
    let _candidates = EventListener::new(&connection.0, "icecandidate", move |event| {
        let mut now = seen.get();
        // No candidate: gathering is complete.
        let finished = event.unchecked_ref::<RtcPeerConnectionIceEvent>().candidate().is_none_or(|candidate| {
            now.add(&candidate.candidate());
            now.settled()
        });
        seen.set(now);
        if finished && let Some(done) = done.take() {
            let _ = done.send(());
        }
    });
    connection.0.create_data_channel("check");
    let offer = JsFuture::from(connection.0.create_offer()).await?;
    JsFuture::from(connection.0.set_local_description(offer.unchecked_ref::<RtcSessionDescriptionInit>())).await?;
    futures_util::future::select(finished, TimeoutFuture::new(CHECK_TIMEOUT_MS)).await;
    Ok(gathered.get().reach())
}

/// The relay's `GET /ice` (`shared::protocol::IceConfig`), which reads as an
/// `RTCConfiguration`.
async fn ice_config() -> Result<RtcConfiguration, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_str("/ice")).await?.dyn_into()?;
    if !response.ok() {
        return Err(format!("GET /ice: {}", response.status()).into());
    }
    Ok(JsFuture::from(response.json()?).await?.unchecked_into())
}

/// The check's peer connection, closed however the check ends: done, failed, or dropped
/// when the page moves on.
struct Closing(RtcPeerConnection);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close();
    }
}
