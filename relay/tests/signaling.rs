//! The signaling path over real sockets: rooms, forwarding, resuming, credentials,
//! shutdown. Refusals of bad input are in `hostile.rs`.

mod common;

use std::time::Duration;

use common::{INDEX_HTML, Relay, TestResult, join_message, offer, room};
use shared::protocol::{ClientMessage, ErrorCode, IceConfig, IceServer, IceTransportPolicy, ServerMessage, Signal};
use shared::room::PeerId;

#[tokio::test]
async fn two_peers_meet_and_every_signal_is_stamped_by_the_relay() -> TestResult {
    let relay = Relay::start(&["--ice-server", "stun:127.0.0.1:3478"]).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    let r = room(1);

    let joined = ana.join_as(&r, None).await?;
    assert_eq!((joined.you, joined.peers), (PeerId(1), vec![]));
    let stun = IceServer { urls: vec!["stun:127.0.0.1:3478".into()], username: None, credential: None };
    assert_eq!(joined.ice_servers, [stun]);
    assert_eq!(joined.ice_transport_policy, IceTransportPolicy::All);
    assert_eq!(joined.resume.len(), 32, "a 128-bit resume token");
    let bo_joined = bo.join_as(&r, None).await?;
    assert_eq!((bo_joined.you, bo_joined.peers), (PeerId(2), vec![PeerId(1)]));
    assert_ne!(bo_joined.resume, joined.resume);
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: PeerId(2) });

    bo.signal(PeerId(1), offer("bo's offer")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: PeerId(2), signal: offer("bo's offer") });
    let candidate =
        Signal::Candidate { candidate: "candidate:1".into(), sdp_mid: Some("0".into()), sdp_m_line_index: Some(0) };
    ana.signal(PeerId(2), candidate.clone()).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: candidate });
    ana.send(&ClientMessage::Ping {}).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Pong {});
    bo.expect_nothing().await?;
    ana.expect_nothing().await?;
    relay.stop().await
}

#[tokio::test]
async fn leaving_or_closing_the_socket_tells_the_room_at_once() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut bo, mut cy) = (relay.client().await?, relay.client().await?, relay.client().await?);
    let r = room(2);
    ana.join(&r).await?;
    let (bo_id, _) = bo.join(&r).await?;
    ana.recv().await?;
    bo.send(&ClientMessage::Leave {}).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: bo_id });

    // After leaving, the same socket can join again, as a new peer.
    let (bo_again, peers) = bo.join(&r).await?;
    assert_eq!((bo_again, peers), (PeerId(3), vec![PeerId(1)]));
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: bo_again });

    let (cy_id, _) = cy.join(&r).await?;
    ana.recv().await?;
    bo.recv().await?;
    cy.close().await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: cy_id });
    assert_eq!(bo.recv().await?, ServerMessage::PeerLeft { peer: cy_id });
    relay.stop().await
}

#[tokio::test]
async fn a_dropped_peer_resumes_its_seat_and_gets_what_it_missed() -> TestResult {
    let relay = Relay::start(&["--resume-grace", "5s"]).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    let r = room(3);
    ana.join(&r).await?;
    let bo_first = bo.join_as(&r, None).await?;
    ana.recv().await?;

    // Bo's phone loses its network: no close frame, the room hears nothing.
    bo.vanish().await?;
    ana.signal(bo_first.you, offer("while you were away")).await?;
    ana.expect_nothing().await?;

    // Bo comes back with the token: same id, the missed signal, and no churn for Ana.
    let mut bo = relay.client().await?;
    let bo_back = bo.join_as(&r, Some(&bo_first.resume)).await?;
    assert_eq!((bo_back.you, bo_back.peers), (bo_first.you, vec![PeerId(1)]));
    assert!(bo_back.resumed && !bo_first.resumed);
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("while you were away") });
    ana.expect_nothing().await?;

    // A second resume with the same token takes the seat over; the old socket is told.
    let mut bo_again = relay.client().await?;
    assert_eq!(bo_again.join_as(&r, Some(&bo_back.resume)).await?.you, bo_first.you);
    let frame = bo.closed_with().await?.ok_or("no close code")?;
    assert_eq!(u16::from(frame.code), shared::protocol::CLOSE_REPLACED);
    ana.expect_nothing().await?;
    relay.stop().await
}

#[tokio::test]
async fn a_dropped_peer_that_does_not_return_leaves_after_the_grace_period() -> TestResult {
    let relay = Relay::start(&["--resume-grace", "700ms"]).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    let r = room(4);
    ana.join(&r).await?;
    let bo_first = bo.join_as(&r, None).await?;
    ana.recv().await?;
    bo.vanish().await?;
    ana.expect_nothing().await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: bo_first.you });

    // The expired token no longer resumes: Bo comes back as a newcomer.
    let mut bo = relay.client().await?;
    let newcomer = bo.join_as(&r, Some(&bo_first.resume)).await?;
    assert_eq!(newcomer.you, PeerId(3));
    assert!(!newcomer.resumed);
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: PeerId(3) });
    relay.stop().await
}

#[tokio::test]
async fn a_client_closing_with_the_resuming_code_keeps_its_seat() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    let r = room(5);
    ana.join(&r).await?;
    let first = bo.join_as(&r, None).await?;
    ana.recv().await?;
    bo.close_with(shared::protocol::CLOSE_RESUMING).await?;
    let mut bo = relay.client().await?;
    assert_eq!(bo.join_as(&r, Some(&first.resume)).await?.you, first.you);
    ana.expect_nothing().await?;
    relay.stop().await
}

#[tokio::test]
async fn joiners_get_short_lived_turn_credentials_and_the_ice_policy() -> TestResult {
    let relay = Relay::start(&[
        "--turn-url",
        "turn:127.0.0.1:3478?transport=udp",
        "--turn-secret",
        "north",
        "--turn-ttl",
        "1h",
        "--ice-transport-policy",
        "relay",
    ])
    .await?;
    let mut ana = relay.client().await?;
    let joined = ana.join_as(&room(6), None).await?;
    assert_eq!(joined.ice_transport_policy, IceTransportPolicy::Relay);
    let [turn] = joined.ice_servers.as_slice() else { return Err(format!("{:?}", joined.ice_servers).into()) };
    assert_eq!(turn.urls, ["turn:127.0.0.1:3478?transport=udp"]);
    let username = turn.username.as_deref().ok_or("no username")?;
    let (expiry, peer) = username.split_once(':').ok_or("username is not expiry:peer")?;
    assert_eq!(peer, "1");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let expiry: u64 = expiry.parse()?;
    assert!((now + 3590..=now + 3610).contains(&expiry), "expiry {expiry} is not an hour after {now}");
    assert_eq!(turn.credential.as_ref().map(String::len), Some(28), "base64 of a 20-byte HMAC-SHA1");
    relay.stop().await
}

#[tokio::test]
async fn a_page_gets_the_ice_servers_before_joining_with_credentials_for_a_check_only() -> TestResult {
    let turn_url = "turn:127.0.0.1:3478?transport=udp";
    let flags =
        ["--ice-server", "stun:127.0.0.1:3478", "--turn-url", turn_url, "--turn-secret", "north", "--turn-ttl", "1h"];
    let relay = Relay::start(&flags).await?;
    let response = relay.get_full("/ice").await?;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("cache-control"), Some("no-store"), "its credentials expire");
    assert_eq!(response.header("content-type"), Some("application/json"));
    let config: IceConfig = serde_json::from_str(&response.body)?;
    assert_eq!(config.ice_transport_policy, IceTransportPolicy::All);
    let [stun, turn] = config.ice_servers.as_slice() else { return Err(response.body.into()) };
    assert_eq!(*stun, IceServer { urls: vec!["stun:127.0.0.1:3478".into()], username: None, credential: None });
    assert_eq!(turn.urls, [turn_url]);
    let username = turn.username.as_deref().ok_or("no username")?;
    let (expiry, user) = username.split_once(':').ok_or("username is not expiry:user")?;
    assert_eq!(user, "check", "no peer's name");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let expiry: u64 = expiry.parse()?;
    assert!((now + 590..=now + 610).contains(&expiry), "expiry {expiry} is not 10 minutes after {now}");
    assert_eq!(turn.credential.as_ref().map(String::len), Some(28), "base64 of a 20-byte HMAC-SHA1");
    relay.stop().await?;

    let relay = Relay::start(&["--ice-transport-policy", "relay"]).await?;
    let (status, body) = relay.get("/ice").await?;
    assert_eq!((status, body.as_str()), (200, r#"{"iceServers":[],"iceTransportPolicy":"relay"}"#));
    relay.stop().await
}

#[tokio::test]
async fn serves_health_and_the_app_for_room_links() -> TestResult {
    let relay = Relay::start(&[]).await?;
    assert_eq!(relay.get("/healthz").await?, (200, "ok".into()));
    assert_eq!(relay.get(&format!("/r/{}", room(12))).await?, (200, INDEX_HTML.into()));
    assert_eq!(relay.get("/").await?, (200, INDEX_HTML.into()));
    let page = relay.get_full(&format!("/r/{}", room(12))).await?;
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    // Only this origin, and no `'unsafe-inline'`: the page's inline script by its hash.
    let policy = page.header("content-security-policy").ok_or("no Content-Security-Policy")?;
    assert!(policy.starts_with("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'"), "{policy}");
    assert!(!policy.contains("unsafe-inline") && !policy.contains("http"), "{policy}");
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"), "the room link must not leak in a Referer");
    relay.stop().await
}

#[tokio::test]
async fn shutdown_closes_sockets_with_service_restart_and_returns_quickly() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut client = relay.client().await?;
    client.join(&room(13)).await?;
    let idle = relay.client().await?;
    let started = std::time::Instant::now();
    relay.stop().await?;
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
    let frame = client.closed_with().await?.ok_or("close frame without a code")?;
    assert_eq!(u16::from(frame.code), 1012);
    drop(idle);
    Ok(())
}

#[tokio::test]
async fn a_full_room_refuses_newcomers_with_room_full() -> TestResult {
    let relay = Relay::start(&["--room-capacity", "2"]).await?;
    let r = room(7);
    let (mut ana, mut bo, mut cy) = (relay.client().await?, relay.client().await?, relay.client().await?);
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;
    cy.send(&join_message(r.as_str(), None)).await?;
    cy.expect_error(ErrorCode::RoomFull).await?;
    ana.expect_nothing().await?;
    // When someone leaves, there is room again.
    bo.send(&ClientMessage::Leave {}).await?;
    ana.recv().await?;
    assert_eq!(cy.join(&r).await?.1, vec![PeerId(1)]);
    relay.stop().await
}

#[tokio::test]
async fn numbered_signals_are_relayed_as_sent_and_a_refusal_names_the_missing_peer() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut bo, ana_id, bo_id) = relay.pair(&room(40)).await?;
    let signals = vec![offer("ana's offer"), offer("and another")];
    ana.send(&ClientMessage::Signals { to: bo_id, seq: 3, ack: 2, signals: signals.clone() }).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signals { from: ana_id, seq: 3, ack: 2, signals });
    bo.send(&ClientMessage::Signals { to: ana_id, seq: 0, ack: 3, signals: vec![] }).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signals { from: bo_id, seq: 0, ack: 3, signals: vec![] });

    // Bo leaves while Ana is not listening: her next signal to him is refused, naming him,
    // so that her page can forget him.
    bo.send(&ClientMessage::Leave {}).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: bo_id });
    ana.send(&ClientMessage::Signals { to: bo_id, seq: 4, ack: 0, signals: vec![] }).await?;
    assert_eq!(ana.recv().await?, ServerMessage::unknown_peer(bo_id));
    relay.stop().await
}
