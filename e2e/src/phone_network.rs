//! A phone's mobile network between a browser and a relay on loopback, for the first-load
//! benchmark (`src/bin/first_load.rs`).
//!
//! The model is Lighthouse's mobile profile ([`LIGHTHOUSE_MOBILE`]: 150 ms round trip,
//! 1.6 Mbit/s down, 750 kbit/s up), split in two so that each part is counted once:
//!
//! - **Latency, here, in a TCP proxy** ([`PhoneNetwork`]) that the browser connects to in
//!   place of the relay. A new connection's first bytes wait one round trip (the TCP
//!   handshake a phone pays before it may send), and every chunk, each way, reaches the
//!   other side half a round trip after it left. So a plain HTTP/1.1 request on a new
//!   connection costs two round trips before its response starts (TCP, then the request),
//!   one over TLS 1.3 costs three (TCP, TLS, request), and a request on a connection already
//!   open costs one. Each direction keeps its order; connections are independent of each
//!   other (each has its own tasks), so a browser opening six at once pays the handshakes
//!   in parallel, as a phone does.
//! - **Throughput, in the browser** ([`PhoneNetwork::throttle`]): DevTools'
//!   `Network.emulateNetworkConditions` with no added latency. DevTools alone would not do:
//!   its latency is charged per request, never for a TCP or TLS handshake, so it would make
//!   a new connection as cheap as a reused one.
//!
//! Not modelled: DNS (the URL names an address), packet loss, TCP slow start, and the
//! phone's slower CPU (the page runs at this machine's speed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::{Browser, Result};

/// A mobile network's round trip and throughput each way.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    /// The round trip between the phone and the server.
    pub rtt: Duration,
    /// Bits per second towards the phone.
    pub down_bits_per_second: f64,
    /// Bits per second from the phone.
    pub up_bits_per_second: f64,
}

/// Lighthouse's mobile profile ("slow 4G"): 150 ms, 1.6 Mbit/s down, 750 kbit/s up.
pub const LIGHTHOUSE_MOBILE: Conditions =
    Conditions { rtt: Duration::from_millis(150), down_bits_per_second: 1.6e6, up_bits_per_second: 750e3 };

/// A proxy on a free loopback port that carries every connection to `upstream` with the
/// latency of [`Conditions`]. Stops, and drops every connection, when dropped.
pub struct PhoneNetwork {
    addr: SocketAddr,
    conditions: Conditions,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl PhoneNetwork {
    /// Starts a proxy to the server listening on `upstream`.
    pub async fn start(upstream: SocketAddr, conditions: Conditions) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops every connection's task with it.
            let mut carried = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((phone, _)) = accepted else { continue };
                        counted.fetch_add(1, Ordering::Relaxed);
                        carried.spawn(carry(phone, upstream, conditions.rtt));
                    }
                    Some(_) = carried.join_next() => {}
                }
            }
        });
        Ok(Self { addr, conditions, connections, task })
    }

    /// The address browsers connect to in place of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections browsers have opened through it so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Limits `browser`'s throughput each way to the network's (DevTools, no added latency:
    /// the proxy adds it). Call it before the browser opens the page.
    pub async fn throttle(&self, browser: &Browser) -> Result<()> {
        let bytes_per_second = |bits: f64| bits / 8.0;
        browser.devtools("Network.enable", json!({})).await?;
        browser
            .devtools(
                "Network.emulateNetworkConditions",
                json!({
                    "offline": false,
                    "latency": 0,
                    "downloadThroughput": bytes_per_second(self.conditions.down_bits_per_second),
                    "uploadThroughput": bytes_per_second(self.conditions.up_bits_per_second),
                }),
            )
            .await?;
        Ok(())
    }
}

impl Drop for PhoneNetwork {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Carries one connection from the phone to `upstream` and back, with `rtt`'s delays.
async fn carry(phone: TcpStream, upstream: SocketAddr, rtt: Duration) {
    // The phone's connect() returned at once on loopback; on the phone it would have taken
    // a round trip, so nothing it sends may leave before then.
    let handshaken = Instant::now() + rtt;
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    // Each chunk is forwarded as it comes: no waiting to fill a segment.
    let _ = (phone.set_nodelay(true), server.set_nodelay(true));
    let (from_phone, to_phone) = phone.into_split();
    let (from_server, to_server) = server.into_split();
    tokio::join!(
        one_way(from_phone, to_server, handshaken, rtt / 2),
        one_way(from_server, to_phone, handshaken, rtt / 2),
    );
}

/// Forwards what `from` reads to `to`, each chunk `delay` after it was read (and not before
/// `not_before` plus `delay`), in order; then passes the end of the stream on, as late.
/// Reading never waits for writing: chunks in flight queue up, as on a long link.
async fn one_way(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, not_before: Instant, delay: Duration) {
    let (in_flight, mut arriving) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let read = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = from.read(&mut buffer).await;
            let due = Instant::now().max(not_before) + delay;
            let chunk = match read {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(buffer[..n].to_vec()),
            };
            let end = chunk.is_none();
            if in_flight.send((due, chunk)).is_err() || end {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = arriving.recv().await {
            tokio::time::sleep_until(due).await;
            let Some(bytes) = chunk else { break };
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
