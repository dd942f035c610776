//! Chromium, through Debian's ChromeDriver: one driver process, a separate browser (own
//! profile) per person.

use serde_json::json;
use tokio::process::Child;

use crate::browser::session;
use crate::{Browser, Result, Tool, free_port};

/// A ChromeDriver process on a free port. Killed on drop.
pub struct ChromeDriver {
    url: String,
    _process: Child,
}

/// The flags every Chromium of the tests runs with: headless, no network but loopback, and
/// fake microphone and camera that need no permission prompt (the fake microphone beeps).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    // The tests run in a network namespace with loopback only: let WebRTC use it.
    "--allow-loopback-in-peer-connection",
    "--window-size=1280,900",
];

/// How to get Chromium and its driver.
const INSTALL: &str = "install Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`)";
const CHROMEDRIVER: Tool = Tool { variable: "CHROMEDRIVER", default: "chromedriver", install: INSTALL };
const CHROMIUM: Tool = Tool { variable: "CHROMIUM", default: "/usr/bin/chromium", install: INSTALL };

impl ChromeDriver {
    /// Starts `chromedriver` (or `$CHROMEDRIVER`) for `chromium` (or `$CHROMIUM`).
    pub async fn start() -> Result<Self> {
        let port = free_port().await?;
        let process = CHROMEDRIVER.start(&[&format!("--port={port}")], &[], port).await?;
        Ok(Self { url: format!("http://127.0.0.1:{port}"), _process: process })
    }

    /// A new, separate Chromium with its own empty profile, plus `extra` flags.
    pub async fn browser(&self, extra: &[&str]) -> Result<Browser> {
        self.browser_as(Profile { flags: extra.iter().map(|s| s.to_string()).collect(), ..Profile::default() }).await
    }

    /// A new, separate Chromium set up as `profile` says.
    pub async fn browser_as(&self, profile: Profile) -> Result<Browser> {
        let chromium = CHROMIUM.installed()?;
        let data = tempfile::tempdir()?;
        let mut args: Vec<String> = CHROMIUM_FLAGS
            .iter()
            .filter(|flag| !(profile.deny_media && **flag == "--use-fake-ui-for-media-stream"))
            .map(|s| s.to_string())
            .chain(profile.flags)
            .collect();
        args.push(format!("--user-data-dir={}", data.path().display()));
        if profile.deny_media {
            args.push("--deny-permission-prompts".into());
        }
        if let Some(language) = profile.language {
            args.push(format!("--lang={language}"));
            args.push(format!("--accept-lang={language}"));
        }
        let mut options = json!({ "binary": chromium, "args": args });
        if let Some(user_agent) = &profile.phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 360, "height": 640, "pixelRatio": 3.0, "touch": true },
                "userAgent": user_agent,
            });
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": { "performance": "ALL", "browser": "ALL" },
        });
        Ok(Browser::new(session(&self.url, capabilities).await?, Running(data)))
    }
}

/// A Chromium's profile folder. Dropping it kills every process of that Chromium (each
/// carries the folder in its command line): a test that fails before closing its browsers
/// must not leave their call running, and eating the cores, through the tests after it.
struct Running(tempfile::TempDir);

impl Drop for Running {
    fn drop(&mut self) {
        let flag = format!("--user-data-dir={}", self.0.path().display());
        let _ = std::process::Command::new("pkill").args(["-KILL", "-f", "--", &flag]).status();
    }
}

/// How a test's Chromium differs from the default desktop one.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Extra command-line flags (`--user-agent=...`).
    pub flags: Vec<String>,
    /// Emulate a 360×640 touch phone with this user agent.
    pub phone: Option<String>,
    /// Refuse the microphone and camera, as a person tapping "Block" would.
    pub deny_media: bool,
    /// The browser's language (`zh-CN`): `navigator.language` and `Accept-Language`.
    pub language: Option<&'static str>,
}

/// A phone's browser (Chrome on Android) for mobile emulation.
pub const ANDROID_CHROME: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
    Chrome/126.0.0.0 Mobile Safari/537.36";
