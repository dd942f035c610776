//! A peer that is no browser: the Python peer (`examples/python-peer/`, aiortc) calls Ana's
//! Chromium page, through the same relay and protocol. Ana creates the room and the peer
//! joins by its link; and the other way round, the peer waits in a room and Ana opens the
//! link. Either way they connect, hear each other, hear each other's mute as silence, and
//! see each other leave.

use e2e::python::PythonPeer;
use e2e::{Browser, ChromeDriver, HEARD, Relay, Result, SILENT, open_room};
use shared::room::RoomId;

/// Ana and the peer (who knows Ana as `ana_id`) hear each other; each one's mute is heard
/// as silence, though packets keep coming, and unmuting brings the sound back.
async fn hear_each_other(ana: &Browser, peer: &mut PythonPeer, ana_id: u32) -> Result<()> {
    let tone = ana.wait_peer("Ana hearing the peer's tone", |p| p.id == peer.id() && p.level > HEARD).await?;
    let beeps = peer.wait_level("the peer hearing Ana's beeps", ana_id, |level| level > HEARD).await?;
    println!("Ana hears the peer at RMS level {:.3}, the peer hears Ana at {beeps:.3}", tone.level);

    ana.click("mute").await?;
    peer.wait_level("the peer hearing silence from muted Ana", ana_id, |level| level < SILENT).await?;
    ana.click("mute").await?;
    peer.wait_level("the peer hearing Ana again", ana_id, |level| level > HEARD).await?;

    peer.mute().await?;
    let silent = ana.wait_peer("Ana hearing silence from the muted peer", |p| p.level < SILENT).await?;
    ana.wait_peer("packets still arriving while the peer is muted", |p| p.bytes_received > silent.bytes_received)
        .await?;
    peer.unmute().await?;
    ana.wait_peer("Ana hearing the peer again", |p| p.level > HEARD).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_peer_joins_anas_room_by_its_link() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;

    // Ana creates a room and waits; the peer joins by the link she would share.
    let link = open_room(&relay, &ana).await?;
    let mut peer = PythonPeer::join(&link).await?;
    let ana_id = peer.wait_connected().await?;
    ana.wait_state("connected").await?;
    hear_each_other(&ana, &mut peer, ana_id).await?;

    // The peer leaves: Ana waits alone again.
    peer.leave().await?;
    ana.wait_state("waiting").await?;
    assert!(ana.peers().await?.is_empty(), "the peer still shown after leaving");
    ana.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ana_opens_the_link_of_a_room_the_python_peer_waits_in() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;

    // The peer joins first, and the room exists from then on. A fresh relay: any
    // well-formed id will do.
    let link = relay.url(&format!("/r/{}", RoomId::from_random(*b"a python peer waits here..")));
    let mut peer = PythonPeer::join(&link).await?;
    ana.open(&link).await?;
    ana.click("join").await?;
    ana.wait_state("connected").await?;
    let ana_id = peer.wait_connected().await?;
    hear_each_other(&ana, &mut peer, ana_id).await?;

    // Ana leaves: the peer sees her go.
    ana.click("leave").await?;
    ana.wait_state("ended").await?;
    peer.wait_peer_left(ana_id).await?;
    ana.close().await?;
    Ok(())
}
