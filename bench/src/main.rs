//! The relay next to peerjs-server, under the same load, in one run; it prints figures and
//! ratios and asserts nothing. `bash scripts/bench.sh` builds and installs what it needs
//! and runs it.
//!
//! `bench [--servers relay,relays,peerjs] [--idle 1000,10000] [--active 2000] [--rate 20] [--seconds 10]`
//!
//! The servers: `relay` (one relay, rooms in memory), `relays` (two relays sharing rooms
//! through a `redis-server`, issue 15: socket `n` goes to relay `n % 2`, so every pair
//! spans the two and every message crosses Redis; all three processes share the server's
//! one core, and their memory and CPU are summed), `peerjs` (peerjs-server).
//!
//! For each server, started fresh as its own process on loopback:
//! - idle: opens sockets that join rooms of two and sit still; the server's resident memory
//!   (`/proc/<pid>/status`) per idle socket, and how fast sockets were set up;
//! - active: opens `--active` sockets in pairs; every socket sends its partner `--rate`
//!   signaling messages a second for `--seconds` (ICE-candidate-sized, ~200 B, with every
//!   tenth an offer-sized ~3 KB); relayed messages a second, one-hop latency (send to
//!   receive, both ends in this process, one clock), and the server's CPU time, which
//!   gives messages relayed per CPU-second;
//! - most: `--active` sockets again, each keeping a few messages in flight to its partner
//!   and answering each one at once, so the server sets the pace: the most messages a
//!   second it relays, and how busy its core was (near 100 % means it, not this
//!   generator, was the limit).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use shared::protocol::{ClientMessage, PROTOCOL_VERSION, Signal};
use shared::room::{PeerId, RoomId};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open socket, and (on the relay) the id the relay gave it.
struct Socket {
    socket: WebSocket,
    id: Option<PeerId>,
}
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Handshakes in flight at once.
const CONCURRENT_CONNECTS: usize = 200;
/// Bytes of padding in a candidate-sized and an offer-sized message.
const CANDIDATE_PAD: usize = 150;
const OFFER_PAD: usize = 3_000;
/// Messages each socket keeps in flight when finding the most a server carries.
const WINDOW: u64 = 4;

struct Options {
    servers: Vec<Server>,
    idle: Vec<usize>,
    active: usize,
    rate: u32,
    seconds: u64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let options = parse(std::env::args().skip(1).collect())?;
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let most = options.idle.iter().copied().chain([options.active]).max().unwrap_or(0);
    if (limit as usize) < most + 100 {
        return Err(format!("the open-file limit is {limit}; {most} sockets need more (ulimit -n)").into());
    }
    let mut figures = vec![Vec::new(); options.servers.len()];
    for (&server, figures) in options.servers.iter().zip(&mut figures) {
        println!("== {}", server.name());
        let process = ServerProcess::start(server).await?;
        let base = process.rss_kib()?;
        figures.push(("idle RSS (MB)".to_owned(), base as f64 * 1024.0 / 1e6));
        let mut sockets = Vec::new();
        for &count in &options.idle {
            let started = Instant::now();
            let from = sockets.len();
            sockets.extend(open(server, &process.ports, from..count).await?);
            let rate = (count - from) as f64 / started.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let per_socket = process.rss_kib()?.saturating_sub(base) as f64 / count as f64;
            println!("   {count} idle sockets: {per_socket:.2} KiB each, set up at {rate:.0}/s");
            figures.push((format!("RSS per idle socket at {count} (KiB)"), per_socket));
            figures.push((format!("socket setup at {count} (per s)"), rate));
        }
        drop(sockets);
        drop(process);
        let process = ServerProcess::start(server).await?;
        let steady = active(server, &process, &options).await?;
        let (p50, p99) = (steady.percentile(0.5), steady.percentile(0.99));
        println!(
            "   {} active sockets at {}/s each: {:.0} messages/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {:.0} % of a core",
            options.active,
            options.rate,
            steady.per_second,
            steady.cpu * 100.0
        );
        drop(process);
        let process = ServerProcess::start(server).await?;
        let most = saturate(server, &process, &options).await?;
        println!(
            "   {} active sockets, as fast as it answers: {:.0} messages/s, p50 {:.2} ms, {:.0} % of a core",
            options.active,
            most.per_second,
            most.percentile(0.5),
            most.cpu * 100.0
        );
        let active = options.active;
        figures.push((format!("relayed messages/s at {active} active, {}/s each", options.rate), steady.per_second));
        figures.push(("one-hop latency p50 (ms)".to_owned(), p50));
        figures.push(("one-hop latency p99 (ms)".to_owned(), p99));
        figures.push(("messages relayed per CPU-second".to_owned(), steady.per_second / steady.cpu));
        figures.push((format!("most relayed messages/s at {active} active"), most.per_second));
        figures.push(("server CPU at the most (% of a core)".to_owned(), most.cpu * 100.0));
    }
    let names: Vec<&str> = options.servers.iter().map(|server| server.name()).collect();
    println!();
    println!("| figure | {} | {} / {} |", names.join(" | "), names[0], names.last().unwrap_or(&"-"));
    println!("| --- |{} ---: |", " ---: |".repeat(names.len()));
    for (row, (name, first)) in figures[0].iter().enumerate() {
        let values: Vec<f64> = figures.iter().map(|column| column.get(row).map_or(0.0, |(_, value)| *value)).collect();
        let last = values.last().copied().unwrap_or(0.0);
        let ratio = if last > 0.0 { format!("{:.2}", first / last) } else { "-".into() };
        let cells: Vec<String> = values.iter().map(|value| format!("{value:.2}")).collect();
        println!("| {name} | {} | {ratio} |", cells.join(" | "));
    }
    Ok(())
}

fn parse(args: Vec<String>) -> Result<Options, BoxError> {
    let mut options = Options {
        servers: vec![Server::Relay, Server::Relays, Server::PeerJs],
        idle: vec![1_000, 10_000],
        active: 2_000,
        rate: 20,
        seconds: 10,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--servers" => options.servers = value.split(',').map(Server::parse).collect::<Result<_, _>>()?,
            "--idle" => options.idle = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--active" => options.active = value.parse()?,
            "--rate" => options.rate = value.parse()?,
            "--seconds" => options.seconds = value.parse()?,
            _ => return Err(format!("unknown option {flag}; see the top of e2e/src/bin/bench.rs").into()),
        }
    }
    if options.servers.is_empty() {
        return Err("--servers names none".into());
    }
    if options.active % 2 == 1 {
        options.active += 1;
    }
    Ok(options)
}

/// The servers, and how each is spoken to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// One relay, rooms in memory.
    Relay,
    /// Two relays sharing rooms through Redis.
    Relays,
    PeerJs,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Relays => "2 relays + Redis",
            Self::PeerJs => "peerjs-server",
        }
    }

    fn parse(name: &str) -> Result<Self, BoxError> {
        match name {
            "relay" => Ok(Self::Relay),
            "relays" => Ok(Self::Relays),
            "peerjs" => Ok(Self::PeerJs),
            _ => Err(format!("unknown server {name}: relay, relays or peerjs").into()),
        }
    }

    /// Socket `n` connects to one of `ports` (by turns) and enters the pair `n / 2`.
    async fn connect(self, ports: &[u16], n: usize) -> Result<Socket, BoxError> {
        use shared::protocol::ServerMessage;
        let port = ports[n % ports.len()];
        let (mut socket, expect) = match self {
            Self::Relay | Self::Relays => {
                let (mut socket, _) = connect_async(format!("ws://127.0.0.1:{port}/ws")).await?;
                let join = ClientMessage::Join { version: PROTOCOL_VERSION, room: pair_room(n / 2), resume: None };
                socket.send(Message::text(join.encode())).await?;
                (socket, "\"joined\"")
            }
            Self::PeerJs => {
                let url = format!("ws://127.0.0.1:{port}/peerjs?key=peerjs&id=p{n}&token=t{n}");
                (connect_async(url).await?.0, "\"OPEN\"")
            }
        };
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains(expect) => {
                let id = match ServerMessage::decode(text.as_str()) {
                    Ok(ServerMessage::Joined { you, .. }) => Some(you),
                    _ => None,
                };
                Ok(Socket { socket, id })
            }
            other => Err(format!("{}: socket {n} expected {expect}, got {other:?}", self.name()).into()),
        }
    }

    /// A message from socket `n` (relay id `id`) to its partner, `pad` bytes long, with
    /// [`STAMP`] where the send time goes.
    fn message(self, n: usize, id: Option<PeerId>, pad: usize) -> String {
        let body = format!("@{STAMP}@{}", "x".repeat(pad));
        match self {
            // A fresh room of two holds peers 1 and 2.
            Self::Relay | Self::Relays => {
                let to = PeerId(3 - id.map_or(1, |id| id.0));
                let signal = if pad == OFFER_PAD {
                    Signal::Offer { sdp: body }
                } else {
                    Signal::Candidate { candidate: body, sdp_mid: Some("0".into()), sdp_m_line_index: Some(0) }
                };
                ClientMessage::Signal { to, signal }.encode()
            }
            Self::PeerJs => {
                let kind = if pad == OFFER_PAD { "OFFER" } else { "CANDIDATE" };
                format!(r#"{{"type":"{kind}","dst":"p{}","payload":{{"sdp":"{body}"}}}}"#, n ^ 1)
            }
        }
    }
}

/// Where a message's send time goes, between `@`s.
const STAMP: &str = "STAMP";

/// What one socket sends its partner, encoded once, so that the generator's own work per
/// message is a copy and a number: a candidate-sized and an offer-sized message, each cut
/// where the stamp goes.
struct Script {
    candidate: (String, String),
    offer: (String, String),
}

impl Script {
    fn new(server: Server, n: usize, id: Option<PeerId>) -> Self {
        let cut = |pad| {
            let message = server.message(n, id, pad);
            let (before, after) = message.split_once(STAMP).unwrap_or((&message, ""));
            (before.to_owned(), after.to_owned())
        };
        Self { candidate: cut(CANDIDATE_PAD), offer: cut(OFFER_PAD) }
    }

    /// Message `seq` (every tenth one offer-sized), sent at `stamp` µs.
    fn message(&self, seq: u64, stamp: u128) -> Message {
        let (before, after) = if seq % 10 == 9 { &self.offer } else { &self.candidate };
        Message::text(format!("{before}{stamp}{after}"))
    }
}

/// A room id for pair `pair`.
fn pair_room(pair: usize) -> String {
    let mut bytes = [0u8; RoomId::LEN];
    for (i, byte) in bytes.iter_mut().enumerate().take(4) {
        *byte = (pair >> (5 * i)) as u8;
    }
    RoomId::from_random(bytes).to_string()
}

async fn open(server: Server, ports: &[u16], range: std::ops::Range<usize>) -> Result<Vec<Socket>, BoxError> {
    stream::iter(range)
        .map(|n| server.connect(ports, n))
        .buffer_unordered(CONCURRENT_CONNECTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// What one load run measured.
struct Run {
    /// Messages received a second over the measured span.
    per_second: f64,
    /// The server's CPU time over the span, as a fraction of one core.
    cpu: f64,
    /// One-hop latencies (µs), sorted.
    latencies: Vec<u64>,
}

impl Run {
    /// Measures the server over `span` from `epoch`, while the socket tasks `tasks` run and
    /// return the latencies they saw.
    async fn measure(
        process: &ServerProcess,
        epoch: tokio::time::Instant,
        span: Duration,
        tasks: Vec<tokio::task::JoinHandle<Result<Vec<u64>, BoxError>>>,
    ) -> Result<Self, BoxError> {
        tokio::time::sleep_until(epoch).await;
        let before = process.cpu_seconds()?;
        tokio::time::sleep_until(epoch + span).await;
        let cpu = (process.cpu_seconds()? - before) / span.as_secs_f64();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        latencies.sort_unstable();
        Ok(Self { per_second: latencies.len() as f64 / span.as_secs_f64(), cpu, latencies })
    }

    /// The latency at `p` (0 to 1), in ms.
    fn percentile(&self, p: f64) -> f64 {
        let at = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len().saturating_sub(1));
        self.latencies.get(at).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// The send stamp (µs since `epoch`) a message carries between `@`s, and how long ago that
/// was, if it was sent after `since`.
fn latency(text: &str, epoch: Instant, since: Duration) -> Option<u64> {
    let stamp = text.split('@').nth(1)?.parse::<u128>().ok()?;
    (stamp >= since.as_micros()).then(|| epoch.elapsed().as_micros().saturating_sub(stamp) as u64)
}

/// The steady load: every socket sends `--rate` messages a second, each at its own phase.
async fn active(server: Server, process: &ServerProcess, options: &Options) -> Result<Run, BoxError> {
    let sockets = open(server, &process.ports, 0..options.active).await?;
    let epoch = Instant::now();
    let span = Duration::from_secs(options.seconds);
    let period = Duration::from_secs_f64(1.0 / f64::from(options.rate.max(1)));
    let active = options.active.max(1);
    let (mut writers, mut readers) = (Vec::new(), Vec::new());
    for (n, Socket { socket, id }) in sockets.into_iter().enumerate() {
        let script = Script::new(server, n, id);
        let (mut sink, mut source) = socket.split();
        writers.push(tokio::spawn(async move {
            // Phones do not send in step: each socket's ticks start at its own phase of the
            // period, so the offered load is even rather than 2,000 messages at once.
            let phase = period.mul_f64(n as f64 / active as f64);
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::from_std(epoch) + phase, period);
            let mut seq = 0u64;
            while epoch.elapsed() < span {
                ticks.tick().await;
                sink.send(script.message(seq, epoch.elapsed().as_micros())).await?;
                seq += 1;
            }
            Ok::<_, BoxError>(())
        }));
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let deadline = tokio::time::Instant::now() + span + Duration::from_secs(1);
            while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout_at(deadline, source.next()).await {
                latencies.extend(latency(&text, epoch, Duration::ZERO));
            }
            Ok(latencies)
        }));
    }
    let run = Run::measure(process, tokio::time::Instant::from_std(epoch), span, readers).await?;
    for writer in writers {
        writer.await??;
    }
    Ok(run)
}

/// The most a server carries: every socket keeps [`WINDOW`] messages in flight to its
/// partner and answers each one it receives at once, so the server sets the pace. Counted
/// over `--seconds` after a second of warm-up.
async fn saturate(server: Server, process: &ServerProcess, options: &Options) -> Result<Run, BoxError> {
    let sockets = open(server, &process.ports, 0..options.active).await?;
    let epoch = Instant::now();
    let warm = Duration::from_secs(1);
    let span = Duration::from_secs(options.seconds);
    let end = tokio::time::Instant::from_std(epoch) + warm + span;
    let mut tasks = Vec::new();
    for (n, Socket { mut socket, id }) in sockets.into_iter().enumerate() {
        let script = Script::new(server, n, id);
        tasks.push(tokio::spawn(async move {
            let stamp = || epoch.elapsed().as_micros();
            for seq in 0..WINDOW {
                socket.feed(script.message(seq, stamp())).await?;
            }
            socket.flush().await?;
            let mut latencies = Vec::new();
            let mut seq = WINDOW;
            while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout_at(end, socket.next()).await {
                latencies.extend(latency(&text, epoch, warm));
                socket.send(script.message(seq, stamp())).await?;
                seq += 1;
            }
            Ok::<_, BoxError>(latencies)
        }));
    }
    Run::measure(process, tokio::time::Instant::from_std(epoch) + warm, span, tasks).await
}

/// A server as its own processes on free loopback ports (the sockets' ports, and for the
/// relays their Redis). Killed on drop.
struct ServerProcess {
    ports: Vec<u16>,
    processes: Vec<Child>,
}

impl ServerProcess {
    async fn start(server: Server) -> Result<Self, BoxError> {
        match server {
            Server::Relay => {
                let (port, relay) = relay(&[]).await?;
                Ok(Self { ports: vec![port], processes: vec![relay] })
            }
            Server::Relays => {
                let redis_port = e2e::free_port().await?;
                let redis = on_server_core(
                    "redis-server".as_ref(),
                    &[
                        "--port",
                        &redis_port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        // As deploy/compose.scaled.yaml: a relay is a subscriber that may
                        // fall behind for a moment under load; Redis's default cuts it off
                        // past 8 MB for a minute.
                        "--client-output-buffer-limit",
                        "pubsub 256mb 64mb 60",
                    ],
                )?;
                e2e::wait_for_port(redis_port, "redis-server").await?;
                let url = format!("redis://127.0.0.1:{redis_port}");
                let (north_port, north) = relay(&["--redis-url", &url]).await?;
                let (south_port, south) = relay(&["--redis-url", &url]).await?;
                Ok(Self { ports: vec![north_port, south_port], processes: vec![redis, north, south] })
            }
            Server::PeerJs => {
                let port = e2e::free_port().await?;
                let script = std::env::var("PEERJS")
                    .map_err(|_| "set PEERJS to peer's dist/bin/peerjs.js (scripts/bench.sh does)")?;
                let port_text = port.to_string();
                let args = [&script, "--port", &port_text, "--host", "127.0.0.1", "--concurrent_limit", "1000000"];
                let process = on_server_core("node".as_ref(), &args)?;
                e2e::wait_for_port(port, server.name()).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(Self { ports: vec![port], processes: vec![process] })
            }
        }
    }

    /// The processes' ids.
    fn pids(&self) -> Result<Vec<u32>, BoxError> {
        self.processes.iter().map(|process| process.id().ok_or_else(|| "the server exited".into())).collect()
    }

    /// CPU time used so far by all the server's threads, from `/proc/<pid>/task/*/schedstat`
    /// (nanoseconds on the CPU, first field).
    fn cpu_seconds(&self) -> Result<f64, BoxError> {
        let mut nanos = 0u64;
        for pid in self.pids()? {
            for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
                // A thread that ended since the listing has no file any more; not counted.
                let Ok(schedstat) = std::fs::read_to_string(task?.path().join("schedstat")) else { continue };
                nanos += schedstat.split_whitespace().next().ok_or("empty schedstat")?.parse::<u64>()?;
            }
        }
        Ok(nanos as f64 / 1e9)
    }

    /// Resident set size, from `/proc/<pid>/status`.
    fn rss_kib(&self) -> Result<u64, BoxError> {
        let mut kib = 0;
        for pid in self.pids()? {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
            kib += line.split_whitespace().nth(1).ok_or("malformed VmRSS")?.parse::<u64>()?;
        }
        Ok(kib)
    }
}

/// Starts the relay as it ships on a free port, with `extra` flags; its port and process.
async fn relay(extra: &[&str]) -> Result<(u16, Child), BoxError> {
    let port = e2e::free_port().await?;
    // scripts/bench.sh builds the relay as it ships, beside this binary.
    let binary = std::env::current_exe()?.with_file_name("relay");
    if !binary.is_file() {
        return Err(format!("no {}: run `bash scripts/bench.sh`", binary.display()).into());
    }
    // Every socket comes from 127.0.0.1, and the load is the point: lift the per-address
    // and per-socket limits. Pings are spaced out because idle sockets here do not read,
    // and so would not answer them.
    let port_text = port.to_string();
    let mut args = vec![
        "--port",
        &port_text,
        "--room-capacity",
        "2",
        "--sockets-per-ip",
        "1000000",
        "--rooms-per-ip",
        "1000000",
        "--connections-per-ip",
        "1000000",
        "--messages-per-second",
        "100000",
        "--message-burst",
        "100000",
        "--ping-interval",
        "10m",
        "--idle-timeout",
        "20m",
    ];
    args.extend_from_slice(extra);
    let process = on_server_core(binary.as_os_str(), &args)?;
    e2e::wait_for_port(port, "relay").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok((port, process))
}

/// Runs `program` on CPU 1. The generator runs on CPU 0 (scripts/bench.sh pins it); the
/// server under test gets CPU 1 to itself, so neither steals the other's time.
/// peerjs-server is one Node.js thread; the relay gets the same single core (and two
/// relays with their Redis share it).
fn on_server_core(program: &std::ffi::OsStr, args: &[&str]) -> Result<Child, BoxError> {
    Ok(Command::new("taskset")
        .arg("-c")
        .arg("1")
        .arg(program)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}
