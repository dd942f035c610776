//! Relay benchmarks that print figures; nothing here asserts a target.
//!
//! `cargo run --release -p e2e --bin bench -- idle [--sockets 1000,10000]`: starts the
//! release relay (`target/release/relay`, build it first) as its own process, opens real
//! WebSockets to it that join rooms of two and then sit idle, and prints the relay's
//! resident memory per idle socket, read from `/proc/<pid>/status`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use shared::protocol::{ClientMessage, PROTOCOL_VERSION};
use shared::room::RoomId;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BoxError = Box<dyn std::error::Error>;

/// Handshakes in flight at once.
const CONCURRENT_CONNECTS: usize = 200;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("idle") => {
            let counts = match args.iter().position(|a| a == "--sockets") {
                Some(i) => args
                    .get(i + 1)
                    .ok_or("--sockets needs a value")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<usize>, _>>()?,
                None => vec![1_000, 10_000],
            };
            idle(&counts).await
        }
        _ => Err("usage: bench idle [--sockets 1000,10000]".into()),
    }
}

/// The relay's memory with `counts` idle sockets open, one count after the other.
async fn idle(counts: &[usize]) -> Result<(), BoxError> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let most = counts.iter().copied().max().unwrap_or(0);
    if (limit as usize) < most + 100 {
        return Err(format!("the open-file limit is {limit}; {most} sockets need more (ulimit -n)").into());
    }
    let relay = RelayProcess::start().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = relay.rss_kib()?;
    println!("relay idle RSS: {base} KiB ({:.1} MB)", base as f64 * 1024.0 / 1e6);
    println!("{:>8} {:>12} {:>16} {:>12}", "sockets", "RSS KiB", "per socket KiB", "connect/s");
    let mut sockets: Vec<Socket> = Vec::new();
    for &count in counts {
        let started = Instant::now();
        let fresh = count.saturating_sub(sockets.len());
        let from = sockets.len();
        let opened: Vec<Socket> = stream::iter(from..from + fresh)
            .map(|n| join(relay.port, n))
            .buffer_unordered(CONCURRENT_CONNECTS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let rate = fresh as f64 / started.elapsed().as_secs_f64();
        sockets.extend(opened);
        // Let the relay settle (its allocator returns handshake buffers).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = relay.rss_kib()?;
        let per_socket = rss.saturating_sub(base) as f64 / sockets.len() as f64;
        println!("{:>8} {:>12} {:>16.2} {:>12.0}", sockets.len(), rss, per_socket, rate);
    }
    Ok(())
}

/// Opens socket number `n` and joins room `n / 2`, so that sockets pair up.
async fn join(port: u16, n: usize) -> Result<Socket, BoxError> {
    let (mut socket, _) = connect_async(format!("ws://127.0.0.1:{port}/ws")).await?;
    let mut bytes = [0u8; RoomId::LEN];
    for (i, byte) in bytes.iter_mut().enumerate().take(4) {
        *byte = ((n / 2) >> (5 * i)) as u8;
    }
    let room = RoomId::from_random(bytes).to_string();
    let join = ClientMessage::Join { version: PROTOCOL_VERSION, room, resume: None };
    socket.send(Message::text(join.encode())).await?;
    match socket.next().await {
        Some(Ok(Message::Text(text))) if text.contains("\"joined\"") => Ok(socket),
        other => Err(format!("socket {n}: expected joined, got {other:?}").into()),
    }
}

/// The release relay binary, as its own process on a free port. Killed on drop.
struct RelayProcess {
    port: u16,
    process: Child,
}

impl RelayProcess {
    async fn start() -> Result<Self, BoxError> {
        let binary = e2e::workspace_root().join("target/release/relay");
        if !binary.is_file() {
            return Err(format!("no {}: run `cargo build --release -p relay` first", binary.display()).into());
        }
        let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
        // Every socket comes from 127.0.0.1: lift the per-address limits. Pings are spaced
        // out because these clients do not read, and so would not answer them.
        let process = Command::new(binary)
            .args(["--port", &port.to_string(), "--room-capacity", "2"])
            .args(["--sockets-per-ip", "1000000", "--rooms-per-ip", "1000000"])
            .args(["--ping-interval", "10m", "--idle-timeout", "20m"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                return Err("the relay did not start listening".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { port, process })
    }

    /// Resident set size, from `/proc/<pid>/status`.
    fn rss_kib(&self) -> Result<u64, BoxError> {
        let pid = self.process.id().ok_or("the relay exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).ok_or("malformed VmRSS")?.parse()?)
    }
}
