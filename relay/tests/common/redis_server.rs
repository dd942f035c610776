//! A real `redis-server` on a free loopback port, without persistence, for the tests of
//! relays that share rooms. Stopped (killed) on drop; it can be stopped and started again
//! on the same port, empty, as a Redis without persistence restarts.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PATIENCE;

pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Self { port, dir: tempfile::tempdir()?, process: None };
        server.resume().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it: every connection drops, and what it held is gone.
    pub fn stop(&mut self) -> std::io::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
            process.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port, empty, and waits until it answers.
    pub async fn resume(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let dir = self.dir.path().to_str().ok_or("temporary folder")?;
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir, "--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| missing("redis-server", error))?;
        self.process = Some(process);
        tokio::time::timeout(PATIENCE, async {
            loop {
                if self.answers().await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
        Ok(())
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

/// Why `program` did not start: if it is not installed, how to get it (the README's test
/// command installs it).
pub fn missing(program: &str, error: std::io::Error) -> std::io::Error {
    if error.kind() == std::io::ErrorKind::NotFound {
        std::io::Error::other(format!(
            "{program} is not installed: run `bash scripts/test.sh`, which installs it (apt-get install {program})"
        ))
    } else {
        error
    }
}
