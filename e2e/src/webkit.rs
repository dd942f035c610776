//! WebKit, Safari's engine: Debian's WebKitGTK, its MiniBrowser driven through
//! WebKitWebDriver, on an X server of its own (Xvfb). It loads our page and opens a mock
//! microphone, but Debian builds it without WebRTC: there is no `RTCPeerConnection`, so
//! it shows what a browser that cannot call shows.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::ClientBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{Browser, Error, Result, free_port, wait_for_port};

/// What to install when a part is missing.
const INSTALL: &str = "install Debian's webkit2gtk-driver and xvfb (`apt-get install webkit2gtk-driver xvfb`), \
                       or run `bash scripts/test.sh`, which does";

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
    let minibrowser =
        std::env::var("MINIBROWSER").unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser".into());
    if !std::path::Path::new(&minibrowser).exists() {
        return Err(Error::Missing(format!("no WebKitGTK MiniBrowser at {minibrowser}: {INSTALL}")));
    }
    let (display, number) = x_server().await?;
    let port = free_port().await?;
    // The browser's processes find their X server in the environment they inherit from
    // the driver (MiniBrowser's `--display` does not reach its web process).
    let driver = Command::new("WebKitWebDriver")
        .arg(format!("--port={port}"))
        .env("DISPLAY", format!(":{number}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Missing(format!("cannot start `WebKitWebDriver` ({e}): {INSTALL}")))?;
    wait_for_port(port, "WebKitWebDriver").await?;
    let capabilities = json!({ "webkitgtk:browserOptions": { "binary": minibrowser, "args": MINIBROWSER_FLAGS } });
    let Value::Object(capabilities) = capabilities else { unreachable!("a JSON object literal") };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    client.set_window_size(width, height).await?;
    Ok(Browser::new(client, Processes { _driver: driver, _display: display }))
}

/// Starts Xvfb on a free display (it picks one and names it on `-displayfd`); returns it
/// and the display's number once it accepts clients.
async fn x_server() -> Result<(Child, u32)> {
    let mut process = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Missing(format!("cannot start `Xvfb` ({e}): {INSTALL}")))?;
    let stdout = process.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let patience = Duration::from_secs(20);
    tokio::time::timeout(patience, BufReader::new(stdout).read_line(&mut line))
        .await
        .map_err(|_| Error::Timeout { what: "Xvfb to start".into(), after: patience })??;
    let number = line.trim().parse().map_err(|_| Error::Unexpected(format!("Xvfb named no display: {line:?}")))?;
    Ok((process, number))
}
