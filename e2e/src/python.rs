//! A peer without a browser: `examples/python-peer/peer.py` (aiortc), which joins a room by
//! its link, beeps a 440 Hz tone and reports what it hears, one JSON object a line
//! (`{"event": "level", "peer": 1, "rms": 0.12}`; the events are listed in its README). The
//! test reads its events and writes its commands (`mute`, `unmute`, `leave`).

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{Error, PATIENCE, Result, workspace_root};

/// The Python peer process, killed on drop.
pub struct PythonPeer {
    id: u32,
    stdin: ChildStdin,
    events: Lines<BufReader<ChildStdout>>,
    _process: Child,
}

impl PythonPeer {
    /// Starts `$PYTHON_PEER examples/python-peer/peer.py <link>` and waits until it has
    /// joined the room.
    pub async fn join(link: &str) -> Result<Self> {
        let python = std::env::var("PYTHON_PEER").unwrap_or_default();
        let installed = std::fs::metadata(&python).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !installed {
            return Err(Error::Missing(format!(
                "no Python with aiortc at PYTHON_PEER={python:?}: run `bash scripts/test.sh`, which installs it"
            )));
        }
        let script = workspace_root().join("examples/python-peer/peer.py");
        let mut process = Command::new(&python)
            .arg(script)
            .arg(link)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = process.stdin.take().expect("stdin is piped");
        let stdout = process.stdout.take().expect("stdout is piped");
        let mut peer = Self { id: 0, stdin, events: BufReader::new(stdout).lines(), _process: process };
        let joined = peer.wait("the Python peer to join", |e| e["event"] == "joined").await?;
        peer.id = joined["peer"].as_u64().unwrap_or_default() as u32;
        Ok(peer)
    }

    /// Its peer id in the room.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Waits up to [`PATIENCE`] for the next event that satisfies `test`, and returns it. An
    /// `error` event, or the process ending, fails the wait.
    pub async fn wait(&mut self, what: &str, test: impl Fn(&Value) -> bool) -> Result<Value> {
        let events = &mut self.events;
        let found = async {
            loop {
                let Some(line) = events.next_line().await? else {
                    return Err(Error::Unexpected(format!("the Python peer exited while we waited for {what}")));
                };
                let event: Value = serde_json::from_str(&line)
                    .map_err(|e| Error::Unexpected(format!("the Python peer said {line:?}: {e}")))?;
                if event["event"] == "error" {
                    return Err(Error::Unexpected(format!(
                        "the Python peer reported {event} while we waited for {what}"
                    )));
                }
                if test(&event) {
                    return Ok(event);
                }
            }
        };
        tokio::time::timeout(PATIENCE, found)
            .await
            .map_err(|_| Error::Timeout { what: what.into(), after: PATIENCE })?
    }

    /// Waits until a connection is up; returns the peer it connects to.
    pub async fn wait_connected(&mut self) -> Result<u32> {
        let event = self.wait("the Python peer connected", |e| e["event"] == "connected").await?;
        Ok(event["peer"].as_u64().unwrap_or_default() as u32)
    }

    /// Waits until a second's level heard from `peer` satisfies `test`; returns it.
    pub async fn wait_level(&mut self, what: &str, peer: u32, test: impl Fn(f64) -> bool) -> Result<f64> {
        let level = |e: &Value| e["event"] == "level" && e["peer"] == peer && e["rms"].as_f64().is_some_and(&test);
        Ok(self.wait(what, level).await?["rms"].as_f64().unwrap_or_default())
    }

    /// Waits until it reports that `peer` left.
    pub async fn wait_peer_left(&mut self, peer: u32) -> Result<()> {
        let event = json!({ "event": "peer_left", "peer": peer });
        self.wait(&format!("the Python peer seeing {peer} leave"), |e| *e == event).await?;
        Ok(())
    }

    /// Mutes its tone: it goes on sending packets, of silence.
    pub async fn mute(&mut self) -> Result<()> {
        self.command("mute").await
    }

    /// Sends its tone again.
    pub async fn unmute(&mut self) -> Result<()> {
        self.command("unmute").await
    }

    /// Leaves the room and waits until it has.
    pub async fn leave(mut self) -> Result<()> {
        self.command("leave").await?;
        self.wait("the Python peer to leave", |e| e["event"] == "left").await?;
        Ok(())
    }

    async fn command(&mut self, command: &str) -> Result<()> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }
}
