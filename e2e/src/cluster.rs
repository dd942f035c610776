//! The parts of a scaled deployment that are not ours: a real `redis-server` the relays
//! share rooms through, and a real HAProxy in front of them, each on a free loopback port
//! and killed on drop.
//!
//! One file for both test harnesses: the end-to-end tests use it as `e2e::cluster`, and
//! the relay's integration tests (`relay/tests/common/mod.rs`) include it by path, since
//! the relay cannot depend on the harness that depends on it. So it names nothing of
//! either crate: std, tokio and tempfile only, and `std::io` errors, which both turn into
//! theirs.

use std::io::{Error, ErrorKind, Result};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// How long a server may take to start answering.
const STARTUP: Duration = Duration::from_secs(20);

/// A real `redis-server` on a free loopback port, without persistence. It can be stopped
/// and started again on the same port, empty, as a Redis without persistence restarts.
pub struct RedisServer {
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Result<Self> {
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Self { port, dir: tempfile::tempdir()?, process: None };
        server.resume().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`, for `--redis-url`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it: every connection drops, and what it held is gone.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
            process.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port, empty, and waits until it answers.
    pub async fn resume(&mut self) -> Result<()> {
        let dir = self.dir.path().to_str().ok_or_else(|| Error::other("a temporary folder that is not UTF-8"))?;
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir, "--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| missing("redis-server", error))?;
        self.process = Some(process);
        within(STARTUP, "redis-server to answer", async {
            while !self.answers().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    async fn answers(&self) -> bool {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", self.port)).await else { return false };
        let mut answer = [0u8; 7];
        tcp.write_all(b"PING\r\n").await.is_ok()
            && tcp.read_exact(&mut answer).await.is_ok()
            && answer.as_slice() == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A real HAProxy on a free loopback port in front of relays, as `deploy/haproxy.cfg` puts
/// it (HTTP mode, WebSocket upgrades passed through, by turns, a relay whose `/healthz`
/// does not answer taken out, a failed connection tried on another relay), without TLS,
/// with its runtime API on a Unix socket for a test to read and steer it as an operator
/// would.
pub struct Haproxy {
    /// The address the pages and clients connect to.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    process: Child,
}

/// One relay as HAProxy sees it (`show stat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`... (with a `n/m` suffix while a check is changing it).
    pub status: String,
    /// Sessions open to it now: a page's open WebSocket is one; a page's finished asset
    /// requests are none.
    pub sessions: u64,
}

impl Haproxy {
    /// Starts one in front of `relays` (named `relay-0`, `relay-1`... in that order) and
    /// waits until it listens.
    pub async fn start(relays: &[SocketAddr]) -> Result<Self> {
        let addr = StdListener::bind("127.0.0.1:0")?.local_addr()?;
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("admin.sock");
        let servers: String = relays
            .iter()
            .enumerate()
            .map(|(n, relay)| format!("    server relay-{n} {relay} check inter 200ms fall 1 rise 1\n"))
            .collect();
        let config = format!(
            "global\n    stats socket {} level admin\n\
             defaults\n    mode http\n    option forwardfor\n    timeout connect 1s\n    timeout client 30s\n    \
             timeout server 30s\n    timeout tunnel 1h\n    retries 2\n    option redispatch\n\
             frontend public\n    bind {addr}\n    default_backend relays\n\
             backend relays\n    balance roundrobin\n    option httpchk GET /healthz\n{servers}",
            socket.display()
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let process = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| missing("haproxy", error))?;
        let haproxy = Self { addr, dir, process };
        within(STARTUP, "haproxy to listen", async {
            while TcpStream::connect(addr).await.is_err() || UnixStream::connect(haproxy.socket()).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
        Ok(haproxy)
    }

    /// `http://<address><path>`: what a person opens.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    /// Runs one `command` of HAProxy's runtime API and returns its answer.
    pub async fn runtime(&self, command: &str) -> Result<String> {
        let mut socket = UnixStream::connect(self.socket()).await?;
        socket.write_all(format!("{command}\n").as_bytes()).await?;
        let mut answer = String::new();
        within(STARTUP, "haproxy's runtime API to answer", socket.read_to_string(&mut answer)).await??;
        Ok(answer)
    }

    /// Every relay as HAProxy sees it now, in the order `start` was given.
    pub async fn relays(&self) -> Result<Vec<Backend>> {
        let stat = self.runtime("show stat").await?;
        let mut lines = stat.lines();
        let header: Vec<&str> =
            lines.next().and_then(|line| line.strip_prefix("# ")).unwrap_or_default().split(',').collect();
        let column = |name: &str| {
            header.iter().position(|field| *field == name).ok_or_else(|| Error::other(format!("no {name} in {stat}")))
        };
        let (server, status, sessions) = (column("svname")?, column("status")?, column("scur")?);
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| {
                fields.first() == Some(&"relays") && fields.get(server).is_some_and(|s| s.starts_with("relay-"))
            })
            .map(|fields| {
                Ok(Backend {
                    status: fields.get(status).copied().unwrap_or_default().to_owned(),
                    sessions: fields.get(sessions).and_then(|n| n.parse().ok()).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Sets relay number `relay`'s administrative `state`: `drain` (no new connection goes
    /// to it, what it holds goes on), `maint` or `ready`.
    pub async fn set_state(&self, relay: usize, state: &str) -> Result<()> {
        let answer = self.runtime(&format!("set server relays/relay-{relay} state {state}")).await?;
        if answer.trim().is_empty() { Ok(()) } else { Err(Error::other(format!("haproxy: {answer}"))) }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs `work`, or fails after `patience` saying that `what` never happened.
async fn within<T>(patience: Duration, what: &str, work: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(patience, work)
        .await
        .map_err(|_| Error::new(ErrorKind::TimedOut, format!("timed out after {patience:?} waiting for {what}")))
}

/// Why `program` did not start: if it is not installed, how to get it (the README's test
/// command installs it).
fn missing(program: &str, error: Error) -> Error {
    if error.kind() == ErrorKind::NotFound {
        Error::other(format!(
            "{program} is not installed: run `bash scripts/test.sh`, which installs it (apt-get install {program})"
        ))
    } else {
        error
    }
}
