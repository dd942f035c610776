//! A catalogue of hostile and broken clients, over real sockets. Each case asserts the
//! relay's exact answer, and that two people talking in another room noticed nothing.

mod common;

use std::time::Duration;

use common::{Bystanders, Relay, TestResult, join_message, offer, room};
use shared::protocol::{ClientMessage, ErrorCode, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerMessage};
use shared::room::PeerId;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Sends each frame and expects `code` back for each, then proves the socket still works.
async fn refused_and_still_usable(relay: &Relay, frames: &[&str], code: ErrorCode) -> TestResult {
    let mut bystanders = Bystanders::new(relay).await?;
    let mut client = relay.client().await?;
    for frame in frames {
        client.send_text(frame).await?;
        client.expect_error(code).await.map_err(|e| format!("{frame}: {e}"))?;
    }
    assert_eq!(client.join(&room(1)).await?, (PeerId(1), vec![]));
    bystanders.still_fine().await
}

/// Expects the relay to close `client` with `code`.
async fn closed_with(client: &mut common::Client, code: u16) -> TestResult {
    loop {
        match client.next_frame().await? {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), code, "closed with {frame:?}");
                return Ok(());
            }
            Message::Close(None) => return Err(format!("closed without a code, expected {code}").into()),
            // Answers to what was sent before the offending frame may come first.
            _ => continue,
        }
    }
}

#[tokio::test]
async fn case_01_malformed_json() -> TestResult {
    let relay = Relay::start(&[]).await?;
    refused_and_still_usable(&relay, &["not json", "{", r#"{"type":"join""#, "\u{0}"], ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_02_empty_frame() -> TestResult {
    let relay = Relay::start(&[]).await?;
    refused_and_still_usable(&relay, &["", " "], ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_03_json_that_is_not_a_message() -> TestResult {
    let relay = Relay::start(&[]).await?;
    refused_and_still_usable(&relay, &["[]", "null", "42", "\"join\"", "{}"], ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_04_unknown_message_types() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let frames =
        [r#"{"type":"dance"}"#, r#"{"type":"JOIN","version":1,"room":"x"}"#, r#"{"type":"peer_left","peer":1}"#];
    refused_and_still_usable(&relay, &frames, ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_05_fields_of_the_wrong_type() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let frames = [
        r#"{"type":"join","version":"1","room":"x"}"#,
        r#"{"type":"join","version":-1,"room":"x"}"#,
        r#"{"type":"join","version":1,"room":7}"#,
        r#"{"type":"signal","to":"1","signal":{"kind":"offer","sdp":""}}"#,
        r#"{"type":"signal","to":4294967296,"signal":{"kind":"offer","sdp":""}}"#,
        r#"{"type":"signals","to":1,"seq":-1,"ack":0}"#,
        r#"{"type":"signals","to":1,"seq":1,"ack":0,"signals":{"kind":"offer","sdp":""}}"#,
        r#"{"type":"signals","to":1,"seq":1,"ack":0,"signals":[{"kind":"rollback"}]}"#,
    ];
    refused_and_still_usable(&relay, &frames, ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_06_missing_fields() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let frames = [
        r#"{"type":"join","room":"x"}"#,
        r#"{"type":"signal","to":1}"#,
        r#"{"type":"signal","to":1,"signal":{"kind":"offer"}}"#,
        r#"{"type":"signals","to":1,"ack":0}"#,
        r#"{"type":"signals","seq":1,"ack":0}"#,
    ];
    refused_and_still_usable(&relay, &frames, ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_07_spoofed_from_is_refused_and_delivers_nothing() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut ana, mut mallory, _, _) = relay.pair(&room(7)).await?;
    mallory.send_text(r#"{"type":"signal","to":1,"from":3,"signal":{"kind":"offer","sdp":"x"}}"#).await?;
    mallory.expect_error(ErrorCode::BadMessage).await?;
    ana.expect_nothing().await?;
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_08_binary_frames() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut client = relay.client().await?;
    let json = join_message(room(8).as_str(), None).encode();
    client.send_frame(Message::binary(json.into_bytes())).await?;
    client.expect_error(ErrorCode::BadMessage).await?;
    client.join(&room(8)).await?;
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_09_invalid_utf8_in_a_text_frame_closes_with_1007() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut ana, mut client, _, id) = relay.pair(&room(9)).await?;
    client
        .send_frame(Message::Frame(Frame::message(vec![0xff_u8, 0xfe, 0x7b], OpCode::Data(Data::Text), true)))
        .await?;
    closed_with(&mut client, 1007).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: id });
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_10_deeply_nested_json() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let deep = format!(r#"{{"type":"join","version":1,"room":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000));
    refused_and_still_usable(&relay, &[&deep], ErrorCode::BadMessage).await
}

#[tokio::test]
async fn case_11_a_message_over_64_kib_closes_with_1009_and_the_room_is_told() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut ana, mut bo, _, _) = relay.pair(&room(11)).await?;
    bo.send_text(&"x".repeat(MAX_FRAME_BYTES + 1)).await?;
    closed_with(&mut bo, 1009).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: PeerId(2) });
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_12_a_message_of_exactly_64_kib_is_still_signaling() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let (mut ana, mut bo, _, _) = relay.pair(&room(12)).await?;
    let sdp = "x".repeat(MAX_FRAME_BYTES - 59);
    let message = format!(r#"{{"type":"signal","to":1,"signal":{{"kind":"offer","sdp":"{sdp}"}}}}"#);
    assert_eq!(message.len(), MAX_FRAME_BYTES);
    bo.send_text(&message).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: PeerId(2), signal: offer(&sdp) });
    Ok(())
}

#[tokio::test]
async fn case_13_wrong_protocol_version() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut client = relay.client().await?;
    for version in [0, PROTOCOL_VERSION + 1, u32::MAX] {
        client.send(&ClientMessage::Join { version, room: room(13).to_string(), resume: None }).await?;
        client.expect_error(ErrorCode::UnsupportedVersion).await?;
    }
    client.join(&room(13)).await?;
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_14_bad_room_ids() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut client = relay.client().await?;
    let long = "a".repeat(10_000);
    for bad in [
        "",
        "short",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "../../../../../etc/passwd00",
        "aaaaaaaaaaaaaaaaaaaaaaaaa\u{e9}",
        &long,
    ] {
        client.send(&join_message(bad, None)).await?;
        client.expect_error(ErrorCode::BadRoomId).await?;
    }
    client.join(&room(14)).await?;
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_15_signal_and_leave_before_joining() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut client = relay.client().await?;
    // The bystanders are peers 1 and 2 of their room: a stranger cannot reach them.
    client.signal(PeerId(1), offer("hello?")).await?;
    client.expect_error(ErrorCode::NotJoined).await?;
    client.send(&ClientMessage::Leave {}).await?;
    client.expect_error(ErrorCode::NotJoined).await?;
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_16_joining_twice() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut client = relay.client().await?;
    client.join(&room(16)).await?;
    for r in [room(16), room(17), room(250)] {
        client.send(&join_message(r.as_str(), None)).await?;
        client.expect_error(ErrorCode::AlreadyJoined).await?;
    }
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_17_signals_to_yourself_or_to_nobody() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut client = relay.client().await?;
    let (me, _) = client.join(&room(17)).await?;
    for to in [me, PeerId(2), PeerId(0), PeerId(u32::MAX)] {
        client.signal(to, offer("anyone?")).await?;
        client.expect_error(ErrorCode::UnknownPeer).await?;
    }
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_18_signals_never_cross_rooms_even_when_ids_coincide() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut cy, mut dee) = (relay.client().await?, relay.client().await?);
    // The bystanders are peers 1 and 2 of their room; cy and dee are 1 and 2 of theirs.
    assert_eq!(cy.join(&room(18)).await?.0, PeerId(1));
    assert_eq!(dee.join(&room(18)).await?.0, PeerId(2));
    cy.recv().await?;
    dee.signal(PeerId(1), offer("for cy")).await?;
    assert_eq!(cy.recv().await?, ServerMessage::Signal { from: PeerId(2), signal: offer("for cy") });
    dee.signal(PeerId(3), offer("for nobody")).await?;
    dee.expect_error(ErrorCode::UnknownPeer).await?;
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_19_join_flood_from_one_address_hits_the_room_limit() -> TestResult {
    // A busy relay (three rooms open) holds each address to its three rooms.
    let relay = Relay::start(&["--rooms-per-ip", "3", "--busy-above", "3"]).await?;
    // The bystanders' room is the first of this address's three.
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut clients = Vec::new();
    for n in 0..2 {
        let mut client = relay.client().await?;
        client.join(&room(190 + n)).await?;
        clients.push(client);
    }
    let mut flooder = relay.client().await?;
    for n in 0..5 {
        flooder.send(&join_message(room(200 + n).as_str(), None)).await?;
        flooder.expect_error(ErrorCode::TooManyRooms).await?;
    }
    // Joining a room that already exists creates nothing, so it is allowed.
    assert_eq!(flooder.join(&room(190)).await?.1, vec![PeerId(1)]);
    bystanders.still_fine().await?;
    // Closing a room frees a place.
    clients.pop().ok_or("no client")?.close().await?;
    let mut late = relay.client().await?;
    late.join(&room(210)).await?;
    Ok(())
}

#[tokio::test]
async fn case_20_message_flood_is_rate_limited_then_closed_with_1008() -> TestResult {
    let relay = Relay::start(&["--messages-per-second", "10", "--message-burst", "20"]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut ana, mut flooder, _, id) = relay.pair(&room(20)).await?;
    for n in 0..200 {
        flooder.signal(PeerId(1), offer(&n.to_string())).await?;
    }
    let mut limited = 0;
    loop {
        match flooder.next_frame().await? {
            Message::Text(text) => {
                assert!(text.contains("rate_limited"), "unexpected answer to a flood: {text}");
                limited += 1;
            }
            Message::Close(frame) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            other => return Err(format!("unexpected frame {other:?}").into()),
        }
    }
    assert_eq!(limited, 3, "the first strikes are answered, the rest dropped quietly");
    // Ana got the burst, then the flooder was evicted.
    let mut delivered = 0;
    loop {
        match ana.recv().await? {
            ServerMessage::Signal { from, .. } if from == id => delivered += 1,
            ServerMessage::PeerLeft { peer } if peer == id => break,
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    // The join took one message of the burst.
    assert!((19..=25).contains(&delivered), "{delivered} signals passed the limiter");
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_21_too_many_sockets_from_one_address() -> TestResult {
    // Busy once four are open: then each address is held to its four.
    let relay = Relay::start(&["--sockets-per-ip", "4", "--busy-above", "4"]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut third, fourth) = (relay.client().await?, relay.client().await?);
    let mut fifth = relay.client().await?;
    fifth.expect_error(ErrorCode::TooManyConnections).await?;
    closed_with(&mut fifth, 1008).await?;
    third.join(&room(21)).await?;
    bystanders.still_fine().await?;
    fourth.close().await?;
    let mut again = relay.client().await?;
    again.join(&room(21)).await?;
    Ok(())
}

#[tokio::test]
async fn case_21b_forwarded_addresses_count_only_behind_a_trusted_proxy() -> TestResult {
    // Without --trust-proxy, a client cannot pick its address to dodge the limit.
    let relay = Relay::start(&["--sockets-per-ip", "1", "--busy-above", "0"]).await?;
    let _first = relay.client_with("x-forwarded-for", "198.51.100.1").await?;
    let mut second = relay.client_with("x-forwarded-for", "198.51.100.2").await?;
    second.expect_error(ErrorCode::TooManyConnections).await?;
    // Behind a trusted proxy, the proxy's last hop is the client: two people, two addresses;
    // the same person twice is refused.
    let relay = Relay::start(&["--sockets-per-ip", "1", "--busy-above", "0", "--trust-proxy"]).await?;
    let mut ana = relay.client_with("x-forwarded-for", "203.0.113.9, 198.51.100.1").await?;
    let mut bo = relay.client_with("x-forwarded-for", "203.0.113.9, 198.51.100.2").await?;
    ana.join(&room(121)).await?;
    bo.join(&room(121)).await?;
    let mut ana_again = relay.client_with("x-forwarded-for", "198.51.100.1").await?;
    ana_again.expect_error(ErrorCode::TooManyConnections).await?;
    Ok(())
}

#[tokio::test]
async fn case_21c_a_carriers_phones_share_one_address_until_the_relay_is_busy() -> TestResult {
    // Behind a trusted proxy, so that clients have addresses of their own.
    let limits = ["--sockets-per-ip", "2", "--rooms-per-ip", "2", "--busy-above", "6"];
    let relay = Relay::start(&[&["--trust-proxy"][..], &limits].concat()).await?;
    let carrier = ("x-forwarded-for", "203.0.113.7");
    // Six phones behind one carrier address, six rooms: all in, well past two sockets and
    // two rooms for an address.
    let mut phones = Vec::new();
    for n in 0..6 {
        let mut phone = relay.client_with(carrier.0, carrier.1).await?;
        phone.join(&room(130 + n)).await?;
        phones.push(phone);
    }
    // Busy now: the carrier's address gets no seventh, and someone else still gets two.
    let mut seventh = relay.client_with(carrier.0, carrier.1).await?;
    seventh.expect_error(ErrorCode::TooManyConnections).await?;
    let mut ana = relay.client_with("x-forwarded-for", "198.51.100.1").await?;
    let mut ana_tab = relay.client_with("x-forwarded-for", "198.51.100.1").await?;
    ana.join(&room(140)).await?;
    ana_tab.join(&room(141)).await?;
    let mut ana_third = relay.client_with("x-forwarded-for", "198.51.100.1").await?;
    ana_third.expect_error(ErrorCode::TooManyConnections).await?;
    Ok(())
}

#[tokio::test]
async fn case_22_a_half_open_socket_is_evicted_and_the_room_told() -> TestResult {
    let relay = Relay::start(&["--ping-interval", "200ms", "--idle-timeout", "1200ms"]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut ana, ghost, _, ghost_id) = relay.pair(&room(22)).await?;
    // From now on the ghost reads nothing, so it answers no ping. Everyone else keeps
    // reading (and so answering pings) while waiting.
    let started = std::time::Instant::now();
    let left = loop {
        bystanders.still_fine().await?;
        match tokio::time::timeout(Duration::from_millis(100), ana.recv()).await {
            Ok(message) => break message?,
            Err(_) if started.elapsed() < Duration::from_secs(5) => continue,
            Err(_) => return Err("the ghost was never evicted".into()),
        }
    };
    assert_eq!(left, ServerMessage::PeerLeft { peer: ghost_id });
    assert!(started.elapsed() >= Duration::from_millis(1000), "evicted too early: {:?}", started.elapsed());
    drop(ghost);
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_23_sockets_from_other_origins_are_refused() -> TestResult {
    let relay = Relay::start(&["--allowed-origin", "https://call.example.org"]).await?;
    let mut good = relay.client_from("https://call.example.org").await?;
    good.join(&room(23)).await?;
    for origin in ["https://evil.example", "https://call.example.org.evil.example", "null"] {
        let refused = relay.client_from(origin).await;
        assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("403")), "{origin}: {:?}", refused.err());
    }
    assert!(relay.client().await.is_err(), "a socket without an Origin was accepted");
    good.expect_nothing().await
}

#[tokio::test]
async fn case_23b_by_default_only_the_relays_own_pages_open_sockets() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut own = relay.client_from(&format!("http://{}", relay.addr)).await?;
    own.join(&room(231)).await?;
    for origin in ["https://evil.example", "null"] {
        let refused = relay.client_from(origin).await;
        assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("403")), "{origin}: {:?}", refused.err());
    }
    // No Origin: no browser, so no web page steering a visitor's browser.
    relay.client().await?.join(&room(232)).await?;
    own.expect_nothing().await
}

#[tokio::test]
async fn case_24_a_forged_resume_token_takes_no_seat() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    for token in ["0".repeat(32), String::new(), "x".repeat(5000)] {
        // Mallory has the bystanders' link but not their tokens: she can only come in as
        // a newcomer, in plain sight, never as one of them.
        let mut mallory = relay.client().await?;
        let joined = mallory.join_as(&room(250), Some(&token)).await?;
        assert!(joined.you > PeerId(2) && !joined.resumed, "a forged token got seat {}", joined.you);
        bystanders.both_hear(ServerMessage::PeerJoined { peer: joined.you }).await?;
        mallory.send(&ClientMessage::Leave {}).await?;
        bystanders.both_hear(ServerMessage::PeerLeft { peer: joined.you }).await?;
    }
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_25_a_resume_token_from_another_room_is_not_honoured() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let (mut ana, mut bo) = (relay.client().await?, relay.client().await?);
    ana.join(&room(25)).await?;
    let first = bo.join_as(&room(25), None).await?;
    ana.recv().await?;
    let mut thief = relay.client().await?;
    let joined = thief.join_as(&room(26), Some(&first.resume)).await?;
    assert_eq!((joined.you, joined.peers, joined.resumed), (PeerId(1), vec![], false));
    ana.expect_nothing().await?;
    bo.signal(PeerId(1), offer("still mine")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: first.you, signal: offer("still mine") });
    bystanders.still_fine().await
}

/// Reads from `tcp` until the relay closes it; fails if it is still open after `within`.
async fn closed_within(tcp: &mut (impl tokio::io::AsyncRead + Unpin), within: Duration) -> TestResult {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        // A 408 may come first; the end (or a reset) is what counts.
        while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await
    .map_err(|_| format!("still open after {within:?}"))?;
    Ok(())
}

#[tokio::test]
async fn case_26_clients_that_trickle_their_headers_are_disconnected() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let relay = Relay::start(&["--header-timeout", "1s"]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    // Slowloris, 200 of them: request heads that never end, a header line every 300 ms.
    let started = std::time::Instant::now();
    let slow = (0..200).map(|_| async {
        let mut slow = tokio::net::TcpStream::connect(relay.addr).await?;
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n").await?;
        let trickle = async {
            for n in 0.. {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if slow.write_all(format!("X-Slow-{n}: 1\r\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), trickle).await.map_err(|_| "a trickle was never cut off")?;
        closed_within(&mut slow, Duration::from_secs(2)).await
    });
    // Meanwhile, whoever sends a whole head in time is served.
    let (cut, served) = tokio::join!(futures_util::future::try_join_all(slow), relay.get("/healthz"));
    cut?;
    assert_eq!(served?, (200, "ok".to_owned()));
    assert!(started.elapsed() >= Duration::from_millis(900), "cut off before their time: {:?}", started.elapsed());
    bystanders.still_fine().await
}

#[tokio::test]
async fn case_27_one_address_holds_at_most_its_tcp_connections() -> TestResult {
    // The bystanders' two sockets and three idle connections fill the five, and make the
    // relay busy.
    let relay = Relay::start(&["--connections-per-ip", "5", "--busy-above", "5"]).await?;
    let mut bystanders = Bystanders::new(&relay).await?;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(relay.addr).await?);
    }
    // The sixth is closed at once, before it can say anything.
    let mut sixth = tokio::net::TcpStream::connect(relay.addr).await?;
    closed_within(&mut sixth, Duration::from_secs(2)).await?;
    assert!(relay.get("/healthz").await.is_err(), "a page load over the limit is refused too");
    bystanders.still_fine().await?;
    // One goes: there is room again.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(relay.get("/healthz").await?, (200, "ok".to_owned()));
    Ok(())
}

#[tokio::test]
async fn case_28_http2_connections_that_ask_nothing_more_are_sent_away() -> TestResult {
    let certificate = common::Certificate::new()?;
    let relay = Relay::start_https(&certificate, &["--header-timeout", "1s"]).await?;
    let started = std::time::Instant::now();
    // Silent after the handshake, never even sending HTTP/2's preface: dropped.
    let mut silent = certificate.connect_offering(relay.addr, &[b"h2"]).await?;
    // A page load, then nothing more: sent away once its second of silence is up.
    let tls = certificate.connect_offering(relay.addr, &[b"h2"]).await?;
    let mut served = common::Http::over(tls, hyper::Version::HTTP_2).await?;
    assert_eq!(served.get("/healthz", &[]).await?.body(), "ok");
    closed_within(&mut silent, Duration::from_secs(3)).await?;
    tokio::time::timeout(Duration::from_secs(3), &mut served.connection).await???;
    assert!(started.elapsed() >= Duration::from_millis(900), "cut off before their time: {:?}", started.elapsed());
    // Meanwhile and after, whoever asks is served.
    let tls = certificate.connect_offering(relay.addr, &[b"h2"]).await?;
    assert_eq!(common::Http::over(tls, hyper::Version::HTTP_2).await?.get("/healthz", &[]).await?.status(), 200);
    relay.stop().await
}
