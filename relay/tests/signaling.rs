//! The signaling path over real sockets: rooms, forwarding, and refusals of bad input.

mod common;

use common::{INDEX_HTML, Relay, TestResult, offer, room};
use shared::protocol::{
    ClientMessage, ErrorCode, IceServer, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerMessage, Signal,
};
use shared::room::PeerId;
use tokio_tungstenite::tungstenite::Message;

fn error(code: ErrorCode) -> impl Fn(&ServerMessage) -> bool {
    move |message| matches!(message, ServerMessage::Error { code: c, .. } if *c == code)
}

async fn expect_error(client: &mut common::Client, code: ErrorCode) -> TestResult {
    let message = client.recv().await?;
    assert!(error(code)(&message), "expected {code:?}, got {message:?}");
    Ok(())
}

#[tokio::test]
async fn two_peers_meet_and_every_signal_is_stamped_by_the_relay() -> TestResult {
    let relay = Relay::start(&["--ice-server", "stun:127.0.0.1:3478"]).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    let r = room(1);

    ana.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION,
        room: r.to_string(),
    })
    .await?;
    let ice = vec![IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    }];
    assert_eq!(
        ana.recv().await?,
        ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            you: PeerId(1),
            peers: vec![],
            ice_servers: ice
        }
    );
    assert_eq!(bo.join(&r).await?, (PeerId(2), vec![PeerId(1)]));
    assert_eq!(
        ana.recv().await?,
        ServerMessage::PeerJoined { peer: PeerId(2) }
    );

    bo.signal(PeerId(1), offer("bo's offer")).await?;
    assert_eq!(
        ana.recv().await?,
        ServerMessage::Signal {
            from: PeerId(2),
            signal: offer("bo's offer")
        }
    );
    let candidate = Signal::Candidate {
        candidate: "candidate:1".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    };
    ana.signal(PeerId(2), candidate.clone()).await?;
    assert_eq!(
        bo.recv().await?,
        ServerMessage::Signal {
            from: PeerId(1),
            signal: candidate
        }
    );
    bo.expect_nothing().await?;
    ana.expect_nothing().await?;
    relay.stop().await
}

#[tokio::test]
async fn leaving_or_closing_the_socket_tells_the_room() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut bo, mut cy) = (
        relay.client().await?,
        relay.client().await?,
        relay.client().await?,
    );
    let r = room(2);
    ana.join(&r).await?;
    let (bo_id, _) = bo.join(&r).await?;
    ana.recv().await?;
    bo.send(&ClientMessage::Leave {}).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: bo_id });

    // After leaving, the same socket can join again, as a new peer.
    let (bo_again, peers) = bo.join(&r).await?;
    assert_eq!((bo_again, peers), (PeerId(3), vec![PeerId(1)]));
    assert_eq!(
        ana.recv().await?,
        ServerMessage::PeerJoined { peer: bo_again }
    );

    let (cy_id, _) = cy.join(&r).await?;
    ana.recv().await?;
    bo.recv().await?;
    cy.close().await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: cy_id });
    assert_eq!(bo.recv().await?, ServerMessage::PeerLeft { peer: cy_id });
    relay.stop().await
}

#[tokio::test]
async fn malformed_input_gets_an_error_and_the_socket_stays_usable() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut client = relay.client().await?;
    for bad in [
        "not json",
        "{}",
        r#"{"type":"dance"}"#,
        r#"{"type":"join","room":"x"}"#,
        r#"{"type":"signal","to":1,"from":2,"signal":{"kind":"offer","sdp":""}}"#,
    ] {
        client.send_text(bad).await?;
        expect_error(&mut client, ErrorCode::BadMessage).await?;
    }
    client.send_frame(Message::binary(vec![1u8, 2, 3])).await?;
    expect_error(&mut client, ErrorCode::BadMessage).await?;
    assert_eq!(client.join(&room(3)).await?, (PeerId(1), vec![]));
    relay.stop().await
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_socket_with_1009_and_spares_the_room() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    let r = room(4);
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;

    // Exactly the limit is still signaling.
    let at_limit = format!(
        "{{\"type\":\"signal\",\"to\":1,\"signal\":{{\"kind\":\"offer\",\"sdp\":\"{}\"}}}}",
        "x".repeat(MAX_FRAME_BYTES - 59)
    );
    assert_eq!(at_limit.len(), MAX_FRAME_BYTES);
    bo.send_text(&at_limit).await?;
    assert!(matches!(
        ana.recv().await?,
        ServerMessage::Signal {
            from: PeerId(2),
            ..
        }
    ));

    bo.send_text(&"x".repeat(MAX_FRAME_BYTES + 1)).await?;
    let frame = bo
        .closed_with()
        .await?
        .ok_or("close frame without a code")?;
    assert_eq!(u16::from(frame.code), 1009);
    assert_eq!(
        ana.recv().await?,
        ServerMessage::PeerLeft { peer: PeerId(2) }
    );
    relay.stop().await
}

#[tokio::test]
async fn joins_with_a_bad_room_id_or_version_are_refused_by_code() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut client = relay.client().await?;
    for bad in [
        "",
        "short",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "../../../../../etc/passwd00",
        &"a".repeat(27),
    ] {
        client
            .send(&ClientMessage::Join {
                version: PROTOCOL_VERSION,
                room: bad.into(),
            })
            .await?;
        expect_error(&mut client, ErrorCode::BadRoomId).await?;
    }
    client
        .send(&ClientMessage::Join {
            version: PROTOCOL_VERSION + 1,
            room: room(5).to_string(),
        })
        .await?;
    expect_error(&mut client, ErrorCode::UnsupportedVersion).await?;
    assert_eq!(client.join(&room(5)).await?.0, PeerId(1));
    relay.stop().await
}

#[tokio::test]
async fn a_full_room_refuses_newcomers_and_other_rooms_are_unaffected() -> TestResult {
    let relay = Relay::start(&["--room-capacity", "2"]).await?;
    let r = room(6);
    let (mut ana, mut bo, mut cy) = (
        relay.client().await?,
        relay.client().await?,
        relay.client().await?,
    );
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;
    cy.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION,
        room: r.to_string(),
    })
    .await?;
    expect_error(&mut cy, ErrorCode::RoomFull).await?;
    ana.expect_nothing().await?;
    // Cy is free to go elsewhere.
    assert_eq!(cy.join(&room(7)).await?, (PeerId(1), vec![]));
    relay.stop().await
}

#[tokio::test]
async fn signals_never_cross_rooms_even_when_peer_ids_coincide() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut cy, mut dee) = (
        relay.client().await?,
        relay.client().await?,
        relay.client().await?,
    );
    assert_eq!(ana.join(&room(8)).await?.0, PeerId(1));
    assert_eq!(cy.join(&room(9)).await?.0, PeerId(1));
    assert_eq!(dee.join(&room(9)).await?.0, PeerId(2));
    cy.recv().await?;
    dee.signal(PeerId(1), offer("for cy")).await?;
    assert_eq!(
        cy.recv().await?,
        ServerMessage::Signal {
            from: PeerId(2),
            signal: offer("for cy")
        }
    );
    dee.signal(PeerId(3), offer("nobody")).await?;
    expect_error(&mut dee, ErrorCode::UnknownPeer).await?;
    ana.expect_nothing().await?;
    relay.stop().await
}

#[tokio::test]
async fn out_of_order_messages_are_refused_by_code() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut client = relay.client().await?;
    client.signal(PeerId(1), offer("too early")).await?;
    expect_error(&mut client, ErrorCode::NotJoined).await?;
    client.send(&ClientMessage::Leave {}).await?;
    expect_error(&mut client, ErrorCode::NotJoined).await?;
    client.join(&room(10)).await?;
    client
        .send(&ClientMessage::Join {
            version: PROTOCOL_VERSION,
            room: room(11).to_string(),
        })
        .await?;
    expect_error(&mut client, ErrorCode::AlreadyJoined).await?;
    client.signal(PeerId(1), offer("to myself")).await?;
    expect_error(&mut client, ErrorCode::UnknownPeer).await?;
    relay.stop().await
}

#[tokio::test]
async fn serves_health_and_the_app_for_room_links() -> TestResult {
    let relay = Relay::start(&[]).await?;
    assert_eq!(relay.get("/healthz").await?, (200, "ok".into()));
    assert_eq!(
        relay.get(&format!("/r/{}", room(12))).await?,
        (200, INDEX_HTML.into())
    );
    assert_eq!(relay.get("/").await?, (200, INDEX_HTML.into()));
    let page = relay.get_full(&format!("/r/{}", room(12))).await?;
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    relay.stop().await
}

#[tokio::test]
async fn shutdown_closes_sockets_with_service_restart() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut client = relay.client().await?;
    client.join(&room(13)).await?;
    relay.stop().await?;
    let frame = client
        .closed_with()
        .await?
        .ok_or("close frame without a code")?;
    assert_eq!(u16::from(frame.code), 1012);
    Ok(())
}
