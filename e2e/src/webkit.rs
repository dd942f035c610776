//! WebKit, Safari's engine: Debian's WebKitGTK, its MiniBrowser driven through
//! WebKitWebDriver, on an X server of its own (Xvfb). It loads our page and opens a mock
//! microphone, but Debian builds it without WebRTC: there is no `RTCPeerConnection`, so
//! it shows what a browser that cannot call shows.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::browser::session;
use crate::{Browser, Error, Result, Tool, free_port};

/// How to get WebKitGTK's driver, its MiniBrowser and an X server.
const INSTALL: &str = "install Debian's webkit2gtk-driver and xvfb (`apt-get install webkit2gtk-driver xvfb`)";
const MINIBROWSER: Tool =
    Tool { variable: "MINIBROWSER", default: "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser", install: INSTALL };
const WEBKITWEBDRIVER: Tool = Tool { variable: "WEBKITWEBDRIVER", default: "WebKitWebDriver", install: INSTALL };
const XVFB: Tool = Tool { variable: "XVFB", default: "Xvfb", install: INSTALL };

/// The MiniBrowser's flags: driven by WebDriver, without its toolbar (which keeps the
/// window at least 447 px wide; full screen hides it, and without a window manager the
/// window keeps the size it is given), with media capture on mock devices (a microphone
/// that hums and beeps), granted without a prompt.
const MINIBROWSER_FLAGS: &[&str] =
    &["--automation", "--full-screen", "--enable-media-stream=true", "--enable-mock-capture-devices=true"];

/// What a WebKit session needs to live: its driver (one session each) and its X server.
/// Killed on drop, the driver first; the browser ends with its X server.
struct Processes {
    _driver: Child,
    _display: Child,
}

/// A new WebKit whose page is `width`×`height` CSS pixels (a phone: 360×640).
pub async fn browser(width: u32, height: u32) -> Result<Browser> {
    let minibrowser = MINIBROWSER.installed()?;
    let (x_server, display) = x_server().await?;
    let port = free_port().await?;
    // The browser's processes find their X server in the environment they inherit from
    // the driver (MiniBrowser's `--display` does not reach its web process).
    let driver = WEBKITWEBDRIVER.start(&[&format!("--port={port}")], &[("DISPLAY", &display)], port).await?;
    let capabilities = json!({ "webkitgtk:browserOptions": { "binary": minibrowser, "args": MINIBROWSER_FLAGS } });
    let client = session(&format!("http://127.0.0.1:{port}"), capabilities).await?;
    client.set_window_size(width, height).await?;
    Ok(Browser::new(client, Processes { _driver: driver, _display: x_server }))
}

/// Starts Xvfb on a free display (it picks one and names it on `-displayfd`); returns it
/// and its display (`:<number>`) once it accepts clients.
async fn x_server() -> Result<(Child, String)> {
    let program = XVFB.path();
    let mut process = Command::new(&program)
        .args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| XVFB.missing(&format!("cannot start `{program}` ({e})")))?;
    let stdout = process.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let patience = Duration::from_secs(20);
    tokio::time::timeout(patience, BufReader::new(stdout).read_line(&mut line))
        .await
        .map_err(|_| Error::Timeout { what: "Xvfb to start".into(), after: patience })??;
    let number: u32 = line.trim().parse().map_err(|_| Error::Unexpected(format!("Xvfb named no display: {line:?}")))?;
    Ok((process, format!(":{number}")))
}
