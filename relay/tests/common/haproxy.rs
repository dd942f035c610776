//! A real HAProxy on a free loopback port in front of relays, as `deploy/haproxy.cfg` puts
//! it (HTTP mode, WebSocket upgrades passed through, by turns, a failed connection tried on
//! another relay), without TLS. Killed on drop.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::net::TcpStream;

use super::PATIENCE;

pub struct Haproxy {
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    process: Child,
}

impl Haproxy {
    /// Starts one in front of `relays` and waits until it listens.
    pub async fn start(relays: &[SocketAddr]) -> Result<Self, Box<dyn std::error::Error>> {
        let addr = StdListener::bind("127.0.0.1:0")?.local_addr()?;
        let servers: String = relays
            .iter()
            .enumerate()
            .map(|(n, relay)| format!("    server relay-{n} {relay} check inter 200ms fall 1 rise 1\n"))
            .collect();
        let config = format!(
            "defaults\n    mode http\n    option forwardfor\n    timeout connect 1s\n    timeout client 30s\n    \
             timeout server 30s\n    timeout tunnel 1h\n    retries 2\n    option redispatch\n\
             frontend public\n    bind {addr}\n    default_backend relays\n\
             backend relays\n    balance roundrobin\n    option httpchk GET /healthz\n{servers}"
        );
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let process = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| super::redis_server::missing("haproxy", error))?;
        tokio::time::timeout(PATIENCE, async {
            while TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
        Ok(Self { addr, _dir: dir, process })
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
