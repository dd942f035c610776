//! Firefox (Debian's `firefox-esr`) through geckodriver. A geckodriver drives one session,
//! so each person's Firefox gets a driver of its own, with a fresh profile, headless, fake
//! microphone and camera granted without a prompt, and a WebDriver BiDi connection for the
//! console and the viewport.

use serde_json::{Value, json};
use tokio::process::Child;

use crate::bidi::Bidi;
use crate::browser::session;
use crate::{Browser, Error, Result, Tool, free_port};

const FIREFOX: Tool = Tool {
    variable: "FIREFOX",
    default: "/usr/bin/firefox-esr",
    install: "install Debian's firefox-esr (`apt-get install firefox-esr`)",
};
const GECKODRIVER: Tool = Tool {
    variable: "GECKODRIVER",
    default: "geckodriver",
    install: "install it with `cargo install geckodriver --version 0.37.0`",
};

/// The preferences every Firefox of the tests runs with, posing as `user_agent` if given.
fn preferences(user_agent: Option<&str>) -> Value {
    let mut prefs = json!({
        // The fake devices: a microphone that plays a tone, a camera that shows frames,
        // granted without a prompt.
        "media.navigator.streams.fake": true,
        "media.navigator.permission.disabled": true,
        // Remote audio plays without a gesture, as in Chromium's tests.
        "media.autoplay.default": 0,
        "media.autoplay.blocking_policy": 0,
        // Host candidates with their addresses, not mDNS names nobody here can resolve.
        "media.peerconnection.ice.obfuscate_host_addresses": false,
        // Nothing but the test's traffic.
        "app.update.enabled": false,
        "browser.shell.checkDefaultBrowser": false,
        "datareporting.policy.dataSubmissionEnabled": false,
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
    });
    if let Some(user_agent) = user_agent {
        prefs["general.useragent.override"] = json!(user_agent);
    }
    prefs
}

/// A new, separate desktop Firefox.
pub async fn browser() -> Result<Browser> {
    start(None).await
}

/// A new, separate Firefox on a phone: a 360×640 viewport (through WebDriver BiDi: a
/// headless window is at least 500 px wide) and `user_agent`.
pub async fn phone(user_agent: &str) -> Result<Browser> {
    start(Some(user_agent)).await
}

/// Firefox on Android, for [`phone`].
pub const ANDROID_FIREFOX: &str = "Mozilla/5.0 (Android 14; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0";

async fn start(user_agent: Option<&str>) -> Result<Browser> {
    let firefox = FIREFOX.installed()?;
    let (port, bidi_port) = (free_port().await?, free_port().await?);
    let driver =
        GECKODRIVER.start(&[&format!("--port={port}"), &format!("--websocket-port={bidi_port}")], &[], port).await?;
    let capabilities = json!({
        "browserName": "firefox",
        "webSocketUrl": true,
        "moz:firefoxOptions": { "binary": firefox, "args": ["-headless"], "prefs": preferences(user_agent) },
    });
    let client = session(&format!("http://127.0.0.1:{port}"), capabilities).await?;
    let bidi_url = client
        .capabilities()
        .and_then(|returned| returned.get("webSocketUrl")?.as_str().map(str::to_owned))
        .ok_or_else(|| Error::Unexpected("geckodriver gave no webSocketUrl (WebDriver BiDi)".into()))?;
    let firefox = client.capabilities().and_then(|returned| returned.get("moz:processID")?.as_u64());
    let session = Session { firefox, _driver: driver };
    let bidi = Bidi::connect(&bidi_url).await?;
    if user_agent.is_some() {
        bidi.set_viewport(360, 640, 3.0).await?;
    }
    Ok(Browser::new(client, session).with_bidi(bidi))
}

/// What one Firefox session holds: its geckodriver, and Firefox's process, which outlives a
/// killed geckodriver (a test that fails mid-story never closes its session): both are
/// killed on drop.
struct Session {
    firefox: Option<u64>,
    _driver: Child,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(pid) = self.firefox {
            // Its content processes end with it.
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}
