//! Relays sharing rooms through a real `redis-server` (`--redis-url`): people on different
//! relays in one room, capacity, ids, resume tokens and the per-address room limit across
//! relays, a relay stopped mid-call, a relay killed mid-call or taken for dead, and Redis
//! stopped and started again. In a binary of its own: the metrics recorder is global to
//! the process.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use common::cluster::{Haproxy, RedisServer};
use common::{Client, PATIENCE, Relay, TestResult, join_message, offer, room, static_dir};
use shared::protocol::{CLOSE_REPLACED, ClientMessage, ErrorCode, ServerMessage};
use shared::room::{PeerId, RoomId};

/// Two relays sharing `redis`, each with `flags`.
async fn two_relays(redis: &RedisServer, flags: &[&str]) -> Result<(Relay, Relay), Box<dyn std::error::Error>> {
    let url = redis.url();
    let flags = [&["--redis-url", url.as_str()], flags].concat();
    Ok((Relay::start(&flags).await?, Relay::start(&flags).await?))
}

/// A relay on a runtime and a thread of its own, which [`Killable::kill`] drops whole:
/// every task stops where it is and every socket closes, its connection to Redis too, as
/// when the process is killed with SIGKILL or its machine is lost. Nothing is parked.
struct Killable {
    addr: SocketAddr,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Killable {
    /// Starts one sharing `redis`, with `flags`.
    fn start(redis: &RedisServer, flags: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        let (dir, url) = (static_dir()?, redis.url());
        let mut args = vec!["relay", "--port", "0", "--static-dir", dir.to_str().ok_or("path")?];
        args.extend_from_slice(&["--redis-url", &url]);
        args.extend_from_slice(flags);
        let config = relay::Config::try_parse_from(args)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                tokio::select! {
                    _ = relay::run(listener, config, std::future::pending()) => {}
                    _ = killed => {}
                }
            });
            // Every task the relay spawned is dropped here, unfinished.
            drop(runtime);
        });
        Ok(Self { addr, kill: Some(kill), thread: Some(thread) })
    }

    async fn client(&self) -> Result<Client, Box<dyn std::error::Error>> {
        Client::connect(self.addr).await
    }

    /// Kills it, without the shutdown that parks its seats.
    fn kill(mut self) -> TestResult {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.thread.take().ok_or("killed twice")?.join().map_err(|_| "the relay's thread panicked")?;
        Ok(())
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// The next message `client` gets within `within`, longer than [`PATIENCE`].
async fn recv_within(client: &mut Client, within: Duration) -> Result<ServerMessage, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + within;
    loop {
        match client.recv().await {
            Err(error) if error.is::<tokio::time::error::Elapsed>() && Instant::now() < deadline => {}
            other => return other,
        }
    }
}

/// Waits until the relay's `/healthz` starts with `state`.
async fn health_becomes(relay: &Relay, state: &str) -> TestResult {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok((_, body)) = relay.get("/healthz").await
                && body.starts_with(state)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .map_err(|_| format!("/healthz never said {state}"))?;
    Ok(())
}

/// The value of the sample line `name` in a Prometheus text body.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn people_on_two_relays_meet_signal_and_hear_each_other_leave() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &[]).await?;
    health_becomes(&north, "ok").await?;
    let r = room(1);
    let (mut ana, mut bo, mut cy) = (north.client().await?, south.client().await?, south.client().await?);
    let ana_joined = ana.join_as(&r, None).await?;
    assert_eq!((ana_joined.you, ana_joined.peers), (PeerId(1), vec![]));
    let (bo_id, peers) = bo.join(&r).await?;
    assert_eq!((bo_id, peers), (PeerId(2), vec![PeerId(1)]));
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: bo_id });

    // Across relays, both ways, stamped by the relays.
    bo.signal(PeerId(1), offer("bo's offer")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: bo_id, signal: offer("bo's offer") });
    let signals = vec![offer("ana's answer")];
    ana.send(&ClientMessage::Signals { to: bo_id, seq: 1, ack: 1, signals: signals.clone() }).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signals { from: PeerId(1), seq: 1, ack: 1, signals });

    // A third on the same relay as Bo: everyone hears of Cy once, and Cy talks to both.
    let (cy_id, peers) = cy.join(&r).await?;
    assert_eq!((cy_id, peers), (PeerId(3), vec![PeerId(1), PeerId(2)]));
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: cy_id });
    assert_eq!(bo.recv().await?, ServerMessage::PeerJoined { peer: cy_id });
    cy.signal(bo_id, offer("next door")).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: cy_id, signal: offer("next door") });
    cy.signal(PeerId(1), offer("far away")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: cy_id, signal: offer("far away") });

    // A signal to nobody in the room is refused, as on one relay.
    ana.send(&ClientMessage::Signal { to: PeerId(9), signal: offer("?") }).await?;
    assert_eq!(ana.recv().await?, ServerMessage::unknown_peer(PeerId(9)));

    // Leaving and closing are heard on both relays, once.
    bo.send(&ClientMessage::Leave {}).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerLeft { peer: bo_id });
    assert_eq!(cy.recv().await?, ServerMessage::PeerLeft { peer: bo_id });
    ana.close().await?;
    assert_eq!(cy.recv().await?, ServerMessage::PeerLeft { peer: PeerId(1) });
    cy.expect_nothing().await?;
    north.stop().await?;
    south.stop().await
}

#[tokio::test]
async fn capacity_and_ids_hold_across_relays() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &["--room-capacity", "2"]).await?;
    let r = room(2);
    let (mut ana, mut bo, mut cy) = (north.client().await?, south.client().await?, north.client().await?);
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;
    cy.send(&join_message(r.as_str(), None)).await?;
    cy.expect_error(ErrorCode::RoomFull).await?;
    bo.send(&ClientMessage::Leave {}).await?;
    ana.recv().await?;
    // Ids are never reused, whichever relay gives them.
    assert_eq!(cy.join(&r).await?, (PeerId(3), vec![PeerId(1)]));
    north.stop().await?;
    south.stop().await
}

#[tokio::test]
async fn a_seat_resumes_on_another_relay_with_what_it_missed() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &["--resume-grace", "5s"]).await?;
    let r = room(3);
    let (mut ana, mut bo) = (north.client().await?, south.client().await?);
    ana.join(&r).await?;
    let bo_first = bo.join_as(&r, None).await?;
    ana.recv().await?;

    // Bo's phone drops off the south relay; what Ana sends meanwhile waits there.
    bo.vanish().await?;
    ana.signal(bo_first.you, offer("while you were away")).await?;
    ana.expect_nothing().await?;

    // Bo comes back through the north relay: same seat, the missed signal, no churn.
    let mut bo = north.client().await?;
    let back = bo.join_as(&r, Some(&bo_first.resume)).await?;
    assert_eq!((back.you, back.peers, back.resumed), (bo_first.you, vec![PeerId(1)], true));
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("while you were away") });
    ana.signal(back.you, offer("welcome back")).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("welcome back") });
    ana.expect_nothing().await?;

    // Taking the seat from the south relay while the north one holds it: the north socket
    // is told it was replaced, and Ana hears nothing.
    let mut bo_again = south.client().await?;
    assert_eq!(bo_again.join_as(&r, Some(&back.resume)).await?.you, bo_first.you);
    let frame = bo.closed_with().await?.ok_or("no close code")?;
    assert_eq!(u16::from(frame.code), CLOSE_REPLACED);
    bo_again.signal(PeerId(1), offer("from the south again")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: back.you, signal: offer("from the south again") });
    ana.expect_nothing().await?;

    // A forged token takes no seat on either relay.
    let mut eve = south.client().await?;
    let newcomer = eve.join_as(&r, Some(&"0".repeat(32))).await?;
    assert!(!newcomer.resumed && newcomer.you == PeerId(3));
    north.stop().await?;
    south.stop().await
}

#[tokio::test]
async fn a_relay_stopped_mid_call_loses_nobody_and_a_seat_never_taken_back_ends_after_its_grace() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &["--resume-grace", "1500ms"]).await?;
    let r = room(4);
    let (mut ana, mut bo, mut cy) = (north.client().await?, south.client().await?, south.client().await?);
    ana.join(&r).await?;
    let bo_first = bo.join_as(&r, None).await?;
    ana.recv().await?;
    let cy_first = cy.join_as(&r, None).await?;
    ana.recv().await?;
    bo.recv().await?;

    // The south relay is stopped (SIGTERM in a rolling restart): its sockets are closed
    // with 1012, "come back".
    south.stop().await?;
    assert_eq!(u16::from(bo.closed_with().await?.ok_or("no close code")?.code), 1012);
    assert_eq!(u16::from(cy.closed_with().await?.ok_or("no close code")?.code), 1012);

    // Bo reconnects through the balancer and lands on the north relay: same seat; Ana
    // never hears that he left.
    let mut bo = north.client().await?;
    let back = bo.join_as(&r, Some(&bo_first.resume)).await?;
    assert!(back.resumed && back.you == bo_first.you);
    ana.signal(back.you, offer("still here?")).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("still here?") });

    // Cy never comes back: the north relay ends the wait the stopped one cannot.
    let heard = tokio::time::timeout(PATIENCE, ana.recv()).await??;
    assert_eq!(heard, ServerMessage::PeerLeft { peer: cy_first.you });
    assert_eq!(bo.recv().await?, ServerMessage::PeerLeft { peer: cy_first.you });
    ana.expect_nothing().await?;
    north.stop().await
}

#[tokio::test]
async fn the_rooms_an_address_opens_are_counted_across_relays() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &["--rooms-per-ip", "2", "--busy-above", "0"]).await?;
    let (mut one, mut two, mut three) = (north.client().await?, south.client().await?, north.client().await?);
    one.join(&room(10)).await?;
    two.join(&room(11)).await?;
    three.send(&join_message(room(12).as_str(), None)).await?;
    three.expect_error(ErrorCode::TooManyRooms).await?;
    let mut four = south.client().await?;
    four.send(&join_message(room(13).as_str(), None)).await?;
    four.expect_error(ErrorCode::TooManyRooms).await?;
    // Joining a room that exists opens nothing; closing one frees a place on any relay.
    assert_eq!(three.join(&room(11)).await?.1, vec![PeerId(1)]);
    one.close().await?;
    four.join(&room(13)).await?;
    north.stop().await?;
    south.stop().await
}

/// `client` asks to join `room` again and again while the relay answers `unavailable` (a
/// page retries the same way), until it is seated; returns its id and the others there.
async fn join_when_available(
    client: &mut Client,
    room: &RoomId,
) -> Result<(PeerId, Vec<PeerId>), Box<dyn std::error::Error>> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            client.send(&join_message(room.as_str(), None)).await?;
            match client.recv().await? {
                ServerMessage::Joined { you, peers, .. } => return Ok((you, peers)),
                ServerMessage::Error { code: ErrorCode::Unavailable, .. } => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
    })
    .await?
}

#[tokio::test]
async fn without_redis_calls_go_on_new_joins_are_told_to_retry_and_everything_recovers() -> TestResult {
    let mut redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &[]).await?;
    let r = room(20);
    let (mut ana, mut bo, mut cy) = (north.client().await?, north.client().await?, south.client().await?);
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;
    cy.join(&r).await?;
    ana.recv().await?;
    bo.recv().await?;
    health_becomes(&north, "ok").await?;

    redis.stop()?;
    health_becomes(&north, "degraded").await?;
    health_becomes(&south, "degraded").await?;
    // Two people on one relay still signal each other.
    ana.signal(PeerId(2), offer("no Redis needed")).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("no Redis needed") });
    // A newcomer is told the service is busy, in a typed error, and may retry.
    let mut dan = north.client().await?;
    dan.send(&join_message(r.as_str(), None)).await?;
    dan.expect_error(ErrorCode::Unavailable).await?;
    let (_, metrics) = north.get("/metrics").await?;
    assert!(sample(&metrics, "relay_redis_errors_total").is_some_and(|errors| errors >= 1.0), "{metrics}");
    assert_eq!(sample(&metrics, "relay_redis_up"), Some(0.0), "{metrics}");
    assert!(sample(&metrics, "relay_errors_total{code=\"unavailable\"}").is_some_and(|n| n >= 1.0), "{metrics}");

    // Redis comes back empty, as one without persistence does: the relays put their seats
    // back, listen again, and nothing was restarted.
    redis.resume().await?;
    health_becomes(&north, "ok").await?;
    health_becomes(&south, "ok").await?;
    let dan_back = join_when_available(&mut dan, &r).await?;
    assert_eq!(dan_back, (PeerId(4), vec![PeerId(1), PeerId(2), PeerId(3)]), "no id given twice");
    for person in [&mut ana, &mut bo, &mut cy] {
        assert_eq!(person.recv().await?, ServerMessage::PeerJoined { peer: PeerId(4) });
    }
    cy.signal(PeerId(1), offer("across again")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: PeerId(3), signal: offer("across again") });
    ana.signal(PeerId(3), offer("and back")).await?;
    assert_eq!(cy.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("and back") });
    north.stop().await?;
    south.stop().await
}

#[tokio::test]
async fn a_join_the_moment_redis_is_back_is_given_no_id_twice() -> TestResult {
    let mut redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &[]).await?;
    let r = room(21);
    let (mut ana, mut bo, mut cy) = (north.client().await?, south.client().await?, south.client().await?);
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;
    // Cy comes and goes: the highest id given is one nobody holds any more.
    assert_eq!(cy.join(&r).await?.0, PeerId(3));
    cy.send(&ClientMessage::Leave {}).await?;
    for person in [&mut ana, &mut bo] {
        assert_eq!(person.recv().await?, ServerMessage::PeerJoined { peer: PeerId(3) });
        assert_eq!(person.recv().await?, ServerMessage::PeerLeft { peer: PeerId(3) });
    }
    redis.stop()?;
    health_becomes(&north, "degraded").await?;
    health_becomes(&south, "degraded").await?;

    // Redis is back, empty, and Dan asks the north relay again and again from the first
    // moment: whichever call finds Redis back first, and whichever relay puts its seats
    // back first, he is not given an id that was given before.
    redis.resume().await?;
    let mut dan = north.client().await?;
    let (dan_id, peers) = join_when_available(&mut dan, &r).await?;
    assert_eq!(dan_id, PeerId(4), "peers {peers:?}");
    assert!(peers.contains(&PeerId(1)), "{peers:?}");
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: PeerId(4) });
    let heard = tokio::time::timeout(PATIENCE, bo.recv()).await??;
    assert_eq!(heard, ServerMessage::PeerJoined { peer: PeerId(4) });
    north.stop().await?;
    south.stop().await
}

#[tokio::test]
async fn a_rolling_restart_behind_haproxy_drops_no_call() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &["--resume-grace", "10s"]).await?;
    let balancer = Haproxy::start(&[north.addr, south.addr]).await?;
    let r = room(30);
    // By turns: Ana lands on one relay, Bo on the other.
    let (mut ana, mut bo) = (Client::connect(balancer.addr).await?, Client::connect(balancer.addr).await?);
    let ana_first = ana.join_as(&r, None).await?;
    let bo_first = bo.join_as(&r, None).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: bo_first.you });
    bo.signal(ana_first.you, offer("through the balancer")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: bo_first.you, signal: offer("through the balancer") });

    // The north relay is stopped (SIGTERM): whoever was on it is told to come back, comes
    // back through the balancer, lands on the south relay and takes the seat back.
    north.stop().await?;
    let mut people = Vec::new();
    let mut came_back = 0;
    for (mut person, first) in [(ana, ana_first), (bo, bo_first)] {
        let person = match tokio::time::timeout(Duration::from_secs(1), person.next_frame()).await {
            // On the south relay: nothing happens to this socket.
            Err(_) => person,
            Ok(Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)) => {
                let mut person = Client::connect(balancer.addr).await?;
                let back = person.join_as(&r, Some(&first.resume)).await?;
                assert!(back.resumed && back.you == first.you, "{back:?}");
                came_back += 1;
                person
            }
            Ok(Ok(other)) => return Err(format!("expected the relay to close, got {other:?}").into()),
        };
        people.push((person, first.you));
    }
    assert_eq!(came_back, 1, "the balancer put one person on each relay");
    let [(mut ana, ana_id), (mut bo, bo_id)] = <[_; 2]>::try_from(people).map_err(|_| "two people")?;
    // Nobody heard anyone leave, and they still reach each other.
    ana.signal(bo_id, offer("after the restart")).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: ana_id, signal: offer("after the restart") });
    ana.expect_nothing().await?;
    south.stop().await
}

#[tokio::test]
async fn a_killed_relays_people_leave_after_its_heartbeat_and_the_grace_and_free_their_room() -> TestResult {
    let redis = RedisServer::start().await?;
    let flags = ["--resume-grace", "1500ms", "--room-capacity", "2"];
    let north = Relay::start(&[&["--redis-url", redis.url().as_str()], &flags[..]].concat()).await?;
    let south = Killable::start(&redis, &flags)?;
    let r = room(40);
    let (mut ana, mut bo) = (north.client().await?, south.client().await?);
    ana.join(&r).await?;
    let (bo_id, _) = bo.join(&r).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: bo_id });
    let mut cy = north.client().await?;
    cy.send(&join_message(r.as_str(), None)).await?;
    cy.expect_error(ErrorCode::RoomFull).await?;

    // The south relay is killed: it parks nothing, and Bo's seat is still taken in Redis.
    let killed = Instant::now();
    south.kill()?;
    drop(bo);
    ana.expect_nothing().await?;

    // Its heartbeat expires (3 s after its last beat), the seat waits the grace as if
    // parked, then the north relay ends it: Ana hears Bo leave, once, and the room has a
    // place again.
    let heard = recv_within(&mut ana, Duration::from_secs(15)).await?;
    let after = killed.elapsed();
    assert_eq!(heard, ServerMessage::PeerLeft { peer: bo_id });
    assert!(after >= Duration::from_millis(3500) && after < Duration::from_secs(10), "after {after:?}");
    assert_eq!(cy.join(&r).await?, (PeerId(3), vec![PeerId(1)]));
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: PeerId(3) });
    ana.expect_nothing().await?;
    north.stop().await
}

#[tokio::test]
async fn a_killed_relays_people_who_come_back_within_the_grace_keep_their_seats() -> TestResult {
    let redis = RedisServer::start().await?;
    let flags = ["--resume-grace", "3s"];
    let north = Relay::start(&[&["--redis-url", redis.url().as_str()], &flags[..]].concat()).await?;
    let south = Killable::start(&redis, &flags)?;
    let r = room(41);
    let (mut ana, mut bo, mut cy) = (north.client().await?, south.client().await?, south.client().await?);
    ana.join(&r).await?;
    let bo_first = bo.join_as(&r, None).await?;
    ana.recv().await?;
    let cy_first = cy.join_as(&r, None).await?;
    ana.recv().await?;

    south.kill()?;
    drop((bo, cy));
    // Bo's phone takes a while to find the north relay: by then the south relay's
    // heartbeat has expired and his seat waits as if parked. He takes it back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    ana.expect_nothing().await?;
    let mut bo = north.client().await?;
    let back = bo.join_as(&r, Some(&bo_first.resume)).await?;
    assert_eq!((back.you, back.resumed), (bo_first.you, true));
    assert_eq!(back.peers, vec![PeerId(1), cy_first.you]);
    ana.signal(back.you, offer("you are back")).await?;
    assert_eq!(bo.recv().await?, ServerMessage::Signal { from: PeerId(1), signal: offer("you are back") });

    // Cy never comes back: his seat ends after the grace; Bo's, taken back, does not.
    let heard = recv_within(&mut ana, Duration::from_secs(10)).await?;
    assert_eq!(heard, ServerMessage::PeerLeft { peer: cy_first.you });
    assert_eq!(bo.recv().await?, ServerMessage::PeerLeft { peer: cy_first.you });
    tokio::time::sleep(Duration::from_secs(1)).await;
    ana.expect_nothing().await?;
    bo.signal(PeerId(1), offer("still here")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: back.you, signal: offer("still here") });
    north.stop().await
}

/// Sends `command` to `redis` and reads the start of its answer.
async fn redis_command(redis: &RedisServer, command: &[&str]) -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("*{}\r\n", command.len());
    for part in command {
        request.push_str(&format!("${}\r\n{part}\r\n", part.len()));
    }
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", redis.port)).await?;
    tcp.write_all(request.as_bytes()).await?;
    let mut answer = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, tcp.read(&mut answer)).await??;
    if answer[..read].starts_with(b"-") {
        return Err(String::from_utf8_lossy(&answer[..read]).into_owned().into());
    }
    Ok(())
}

#[tokio::test]
async fn relays_taken_for_dead_while_alive_claim_their_seats_again() -> TestResult {
    let redis = RedisServer::start().await?;
    let (north, south) = two_relays(&redis, &["--resume-grace", "1s"]).await?;
    let r = room(42);
    let (mut ana, mut bo) = (north.client().await?, south.client().await?);
    ana.join(&r).await?;
    let (bo_id, _) = bo.join(&r).await?;
    assert_eq!(ana.recv().await?, ServerMessage::PeerJoined { peer: bo_id });

    // Every heartbeat is wiped again and again, longer than the grace: each relay sees the
    // other's seats as waiting, and finds its own heartbeat gone at each beat.
    let wipe = "for _, key in ipairs(redis.call('KEYS', 'lc:node:*')) do redis.call('DEL', key) end return 0";
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        redis_command(&redis, &["EVAL", wipe, "0"]).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Both relays are alive and claim their seats back: nobody is ended after the grace.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ana.expect_nothing().await?;
    bo.expect_nothing().await?;
    bo.signal(PeerId(1), offer("still with you")).await?;
    assert_eq!(ana.recv().await?, ServerMessage::Signal { from: bo_id, signal: offer("still with you") });
    north.stop().await?;
    south.stop().await
}
