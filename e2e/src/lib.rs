//! The end-to-end harness: a real relay serving the built frontend, a real ChromeDriver,
//! and separate real Chromium instances with fake media devices, one per person.
//!
//! It builds nothing: `scripts/test.sh` builds `dist/` first. When a part is missing the
//! harness fails with what to install, never skips.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What went wrong in a test, in words a person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A part of the test bench is not installed or not built.
    #[error("{0}")]
    Missing(String),
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The page is not in the state the story expects.
    #[error("{0}")]
    Unexpected(String),
    /// WebDriver failed.
    #[error("webdriver: {0}")]
    WebDriver(#[from] fantoccini::error::CmdError),
    /// The browser session could not start.
    #[error("could not start a browser session: {0}")]
    Session(#[from] fantoccini::error::NewSessionError),
    /// I/O: starting processes, sockets.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The result of a harness step.
pub type Result<T> = std::result::Result<T, Error>;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A relay running in this process on a free loopback port, serving `dist/`.
pub struct Relay {
    addr: SocketAddr,
    config: relay::Config,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::result::Result<(), relay::Error>>,
}

impl Relay {
    /// Starts a relay with `flags` added to its command line.
    pub async fn start(flags: &[&str]) -> Result<Self> {
        let dist = workspace_root().join("dist");
        if !dist.join("index.html").is_file() {
            return Err(Error::Missing(format!(
                "no built frontend in {}: run `bash scripts/test.sh` (it runs `trunk build --release`)",
                dist.display()
            )));
        }
        let dist = dist.to_string_lossy().into_owned();
        let mut args = vec!["relay", "--port", "0", "--static-dir", &dist];
        args.extend_from_slice(flags);
        let config = relay::Config::try_parse_from(args).map_err(|e| Error::Unexpected(e.to_string()))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, task) = Self::serve(listener, config.clone());
        Ok(Self { addr, config, stop: Some(stop), task })
    }

    fn serve(
        listener: TcpListener,
        config: relay::Config,
    ) -> (oneshot::Sender<()>, JoinHandle<std::result::Result<(), relay::Error>>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay::run(listener, config, async {
            let _ = stopped.await;
        }));
        (stop, task)
    }

    /// Shuts the relay down as SIGTERM would (sockets close with 1012) and waits for it.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(served) => served.map_err(|e| Error::Unexpected(e.to_string())),
            Err(e) => Err(Error::Unexpected(e.to_string())),
        }
    }

    /// Starts a fresh relay (no memory of rooms) on the same address.
    pub async fn start_again(&mut self) -> Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        (self.stop, self.task) = {
            let (stop, task) = Self::serve(listener, self.config.clone());
            (Some(stop), task)
        };
        Ok(())
    }

    /// The loopback port it listens on: the page, its WebSocket and nothing else.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>` (`https://` when the relay serves TLS): loopback is
    /// a secure context either way, so the page may use the microphone.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.config.lan || self.config.tls_cert.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Debian's coturn on a free loopback port, checking credentials with a shared secret
/// (`use-auth-secret`, the "TURN REST API"). Killed on drop.
pub struct Coturn {
    port: u16,
    _process: Child,
}

impl Coturn {
    /// Starts `turnserver` (or `$TURNSERVER`) with `secret`.
    pub async fn start(secret: &str) -> Result<Self> {
        let port = free_port().await?;
        let args = [
            "-n",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--log-file=stdout",
            "--simple-log",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            "--allow-loopback-peers",
            &format!("--listening-port={port}"),
            "--use-auth-secret",
            &format!("--static-auth-secret={secret}"),
            "--realm=linkcall.test",
        ];
        let process = spawn_tool("TURNSERVER", "turnserver", &args, "coturn", port).await?;
        Ok(Self { port, _process: process })
    }

    /// The TURN URL the relay hands out.
    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }
}

/// Starts a helper program (`$variable`, else `default`) that will listen on `port`, and
/// waits until it does. When it cannot start, says which Debian `packages` to install.
async fn spawn_tool(variable: &str, default: &str, args: &[&str], packages: &str, port: u16) -> Result<Child> {
    let program = std::env::var(variable).unwrap_or_else(|_| default.into());
    let process = Command::new(&program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Missing(format!(
                "cannot start `{program}` ({e}): install Debian's {packages} (`apt-get install {packages}`), \
                 or run `bash scripts/test.sh`, which does"
            ))
        })?;
    wait_for_port(port, &program).await?;
    Ok(process)
}

/// Waits up to 20 s until something listens on loopback `port`.
pub async fn wait_for_port(port: u16, program: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            return Err(Error::Timeout { what: format!("{program} to listen"), after: Duration::from_secs(20) });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A network fault: nftables rules that drop some of the packets arriving in this network
/// namespace, installed together and removed when the guard is dropped.
///
/// It only runs in a namespace whose sole interface is loopback (as `scripts/test.sh`
/// makes), where it cannot touch anyone else's traffic. There every packet crosses the
/// `input` hook exactly once, on its way to the receiving socket, so one rule per direction
/// of a flow covers both ends of a call. The WebDriver traffic (the test to ChromeDriver,
/// ChromeDriver to each Chromium) is TCP on other ports and never dropped: the test keeps
/// control of the browsers through any fault.
///
/// Each kind of fault has its own nftables table: faults of different kinds can be in force
/// at once, a second one of the same kind replaces the first.
#[must_use = "the fault ends when this guard is dropped"]
pub struct Fault {
    table: String,
}

impl Fault {
    /// Drops every UDP packet: media and ICE stop, signaling (TCP to the relay) goes on.
    pub fn all_udp() -> Result<Self> {
        Self::udp_loss(100)
    }

    /// Drops `percent` % of UDP packets, chosen at random, both directions alike.
    pub fn udp_loss(percent: u32) -> Result<Self> {
        Self::install("udp_loss", &[format!("meta l4proto udp {}", share(percent))])
    }

    /// Drops `percent` % of the TCP packets to or from `port` (the relay's), chosen at random:
    /// the page, its socket and the signaling on it go through a lossy link.
    pub fn tcp_loss(port: u16, percent: u32) -> Result<Self> {
        Self::install("tcp_loss", &tcp_rules(port, percent))
    }

    /// Drops everything between the browsers and the relay on `port`, and between the
    /// browsers: all UDP and all TCP to or from `port`. The phone that walks out of Wi-Fi
    /// range before the mobile network takes over.
    pub fn everything_to(port: u16) -> Result<Self> {
        let mut rules = tcp_rules(port, 100);
        rules.push(format!("meta l4proto udp {}", share(100)));
        Self::install("everything", &rules)
    }

    /// Puts `rules` in force in the table `linkcall_e2e_<kind>`, in one transaction that
    /// also clears what a killed run of the same kind may have left there.
    fn install(kind: &str, rules: &[String]) -> Result<Self> {
        let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")?
            .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        if interfaces != ["lo"] {
            return Err(Error::Missing(format!(
                "network faults are only injected in a loopback-only network namespace, and this one has \
                 {interfaces:?}: run the end-to-end tests through `bash scripts/test.sh`"
            )));
        }
        let table = format!("linkcall_e2e_{kind}");
        let mut script = format!(
            "add table inet {table}\ndelete table inet {table}\nadd table inet {table}\n\
             add chain inet {table} input {{ type filter hook input priority 0; }}\n"
        );
        for rule in rules {
            script += &format!("add rule inet {table} input {rule}\n");
        }
        nft(&script)?;
        Ok(Self { table })
    }

    /// How many packets the fault has dropped so far: proof that it bit.
    pub fn dropped(&self) -> Result<u64> {
        let listing = nft(&format!("list table inet {}\n", self.table))?;
        let counts = listing
            .split("packets ")
            .skip(1)
            .map(|rest| rest.split_whitespace().next().and_then(|count| count.parse::<u64>().ok()).unwrap_or_default());
        Ok(counts.sum())
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
    }
}

/// The end of a rule that drops `percent` % of what it matched, chosen at random, and
/// counts what it dropped.
fn share(percent: u32) -> String {
    if percent >= 100 { "counter drop".into() } else { format!("numgen random mod 100 < {percent} counter drop") }
}

/// Rules dropping `percent` % of TCP to `port` and of TCP from it (the replies).
fn tcp_rules(port: u16, percent: u32) -> Vec<String> {
    ["dport", "sport"].map(|end| format!("tcp {end} {port} {}", share(percent))).into()
}

/// Runs an nftables `script` (`nft -f -`: one transaction, all or nothing); returns what
/// it printed.
fn nft(script: &str) -> Result<String> {
    use std::io::Write;
    let mut process = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Missing(format!("cannot run `nft` ({e}): install Debian's nftables (`apt-get install nftables`)"))
        })?;
    // Dropped at the end of the statement: nft reads to the end of its input.
    process.stdin.take().expect("stdin is piped").write_all(script.as_bytes())?;
    let output = process.wait_with_output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Unexpected(format!("nft failed ({}) on:\n{script}", output.status)))
    }
}

/// Real packet loss: a share of the UDP packets (media, ICE) is dropped, both directions
/// alike, by a [`Fault::udp_loss`]. Removed on drop.
pub struct PacketLoss {
    _fault: Fault,
}

impl PacketLoss {
    /// Starts dropping `percent` % of incoming UDP packets.
    pub fn start(percent: u32) -> Result<Self> {
        Ok(Self { _fault: Fault::udp_loss(percent)? })
    }
}

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

impl ChromeDriver {
    /// Starts `chromedriver` (or `$CHROMEDRIVER`) for `chromium` (or `$CHROMIUM`).
    pub async fn start() -> Result<Self> {
        let port = free_port().await?;
        let process =
            spawn_tool("CHROMEDRIVER", "chromedriver", &[&format!("--port={port}")], "chromium chromium-driver", port)
                .await?;
        Ok(Self { url: format!("http://127.0.0.1:{port}"), _process: process })
    }

    /// A new, separate Chromium with its own empty profile, plus `extra` flags.
    pub async fn browser(&self, extra: &[&str]) -> Result<Browser> {
        self.browser_as(Profile { flags: extra.iter().map(|s| s.to_string()).collect(), ..Profile::default() }).await
    }

    /// A new, separate Chromium set up as `profile` says.
    pub async fn browser_as(&self, profile: Profile) -> Result<Browser> {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !std::path::Path::new(&chromium).exists() {
            return Err(Error::Missing(format!(
                "no Chromium at {chromium}: install Debian's chromium (`apt-get install chromium chromium-driver`)"
            )));
        }
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
            "goog:loggingPrefs": { "performance": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!("a JSON object literal") };
        let client = ClientBuilder::new(HttpConnector::new()).capabilities(capabilities).connect(&self.url).await?;
        Ok(Browser { client, _profile: data })
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

/// A loopback port nobody listens on now.
pub async fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}

/// What a page shows of one remote participant (`data-testid="peer"`).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// `data-peer-id`.
    pub id: u32,
    /// `data-bytes-received`: audio RTP payload bytes from this peer.
    pub bytes_received: u64,
    /// `data-bytes-sent`: audio RTP payload bytes to this peer.
    pub bytes_sent: u64,
    /// `data-audio-level`: RMS level heard from this peer over the last second.
    pub level: f64,
    /// `data-path`: the type of our candidate on the selected pair (`host`, `relay`...).
    pub path: String,
}

/// One person's browser.
pub struct Browser {
    client: Client,
    _profile: tempfile::TempDir,
}

/// How long a step of the story may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

impl Browser {
    /// Opens `url`.
    pub async fn open(&self, url: &str) -> Result<()> {
        Ok(self.client.goto(url).await?)
    }

    /// Reloads the page.
    pub async fn reload(&self) -> Result<()> {
        Ok(self.client.refresh().await?)
    }

    fn testid(id: &str) -> String {
        format!("[data-testid=\"{id}\"]")
    }

    /// The element `data-testid=id`, waiting for it to appear.
    async fn element(&self, id: &str) -> Result<fantoccini::elements::Element> {
        Ok(self.client.wait().at_most(PATIENCE).for_element(Locator::Css(&Self::testid(id))).await?)
    }

    /// Clicks the element `data-testid=id`, waiting for it to appear.
    pub async fn click(&self, id: &str) -> Result<()> {
        Ok(self.element(id).await?.click().await?)
    }

    /// An attribute of the element `data-testid=id`, waiting for it to appear.
    pub async fn attr(&self, id: &str, name: &str) -> Result<Option<String>> {
        Ok(self.element(id).await?.attr(name).await?)
    }

    /// The `value` of the input `data-testid=id`.
    pub async fn value(&self, id: &str) -> Result<String> {
        Ok(self.element(id).await?.prop("value").await?.unwrap_or_default())
    }

    /// The call state shown (`data-state` of `call-state`).
    pub async fn call_state(&self) -> Result<String> {
        Ok(self.attr("call-state", "data-state").await?.unwrap_or_default())
    }

    /// Waits until the call state is `state`; returns how long that took.
    pub async fn wait_state(&self, state: &str) -> Result<Duration> {
        self.wait_state_for(state, PATIENCE).await
    }

    /// Waits up to `patience` until the call state is `state`; returns how long that took.
    pub async fn wait_state_for(&self, state: &str, patience: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < patience {
            last = self.call_state().await?;
            if last == state {
                return Ok(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Error::Timeout { what: format!("call state {state} (still {last})"), after: patience })
    }

    /// The remote participants as the page shows them.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>> {
        let script = r#"return [...document.querySelectorAll('[data-testid="peer"]')].map(e => [
            e.dataset.peerId, e.dataset.bytesReceived, e.dataset.bytesSent, e.dataset.audioLevel, e.dataset.path])"#;
        let rows = self.client.execute(script, vec![]).await?;
        let parse = |v: &Value| v.as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0);
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let row = row.as_array()?;
                Some(PeerInfo {
                    id: parse(row.first()?) as u32,
                    bytes_received: parse(row.get(1)?) as u64,
                    bytes_sent: parse(row.get(2)?) as u64,
                    level: parse(row.get(3)?),
                    path: row.get(4)?.as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// The `data-*` attributes of the one remote participant's `stats` element, without
    /// the `data-` prefix (`rtt-ms`, `loss-pct`, `max-bitrate-kbps`...).
    pub async fn stats(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let script = r#"const e = document.querySelector('[data-testid="stats"]');
            return e ? Object.fromEntries([...e.attributes].filter(a => a.name.startsWith('data-'))
                .map(a => [a.name.slice(5), a.value])) : {};"#;
        let value = self.client.execute(script, vec![]).await?;
        Ok(value
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect())
    }

    /// The width of the video the element `data-testid=id` is playing, if it is on the page.
    pub async fn video_width(&self, id: &str) -> Result<Option<u64>> {
        let script =
            format!("const v = document.querySelector('{}'); return v ? v.videoWidth : null;", Self::testid(id));
        Ok(self.client.execute(&script, vec![]).await?.as_u64())
    }

    /// A number attribute of the element `data-testid=id` (0 when absent).
    pub async fn number(&self, id: &str, attribute: &str) -> Result<f64> {
        Ok(self.attr(id, attribute).await?.and_then(|v| v.parse().ok()).unwrap_or(0.0))
    }

    /// Whether an element `data-testid=id` is on the page now.
    pub async fn shows(&self, id: &str) -> Result<bool> {
        Ok(!self.client.find_all(Locator::Css(&Self::testid(id))).await?.is_empty())
    }

    /// Waits until the one remote participant satisfies `test`, and returns it.
    pub async fn wait_peer(&self, what: &str, test: impl Fn(&PeerInfo) -> bool) -> Result<PeerInfo> {
        let start = Instant::now();
        let mut last = Vec::new();
        while start.elapsed() < PATIENCE {
            last = self.peers().await?;
            if let [peer] = last.as_slice()
                && test(peer)
            {
                return Ok(peer.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Timeout { what: format!("{what} (peers shown: {last:?})"), after: PATIENCE })
    }

    /// The compressed bytes of the first load of the current page: the document and every
    /// resource it fetched, as the browser's Resource Timing API counted them.
    pub async fn page_weight(&self) -> Result<Vec<(String, u64)>> {
        let script = r#"return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
            .map(e => [e.name, e.encodedBodySize])"#;
        let rows = self.client.execute(script, vec![]).await?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| Some((row.get(0)?.as_str()?.to_owned(), row.get(1)?.as_u64()?)))
            .collect())
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// The text of the element `data-testid=id`, waiting for it to appear.
    pub async fn text(&self, id: &str) -> Result<String> {
        Ok(self.element(id).await?.text().await?)
    }

    /// Waits until the page's own microphone meter (`mic-level`) satisfies `test`.
    pub async fn wait_mic_level(&self, what: &str, test: impl Fn(f64) -> bool) -> Result<()> {
        until(what, || async { Ok(test(self.number("mic-level", "data-level").await?)) }).await
    }

    /// Sends a Chrome DevTools Protocol command through ChromeDriver.
    pub async fn devtools(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({ "cmd": method, "params": params });
        Ok(self.client.issue_cmd(Extension { path: "goog/cdp/execute", body }).await?)
    }

    /// Every URL the browser requested or opened a WebSocket to since the last call, from
    /// its DevTools network events (ChromeDriver's performance log).
    pub async fn requested_urls(&self) -> Result<Vec<String>> {
        let entries =
            self.client.issue_cmd(Extension { path: "se/log", body: json!({ "type": "performance" }) }).await?;
        let urls = entries.as_array().into_iter().flatten().filter_map(|entry| {
            let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
            let message = &message["message"];
            match message["method"].as_str()? {
                "Network.requestWillBeSent" => message["params"]["request"]["url"].as_str().map(str::to_owned),
                "Network.webSocketCreated" => message["params"]["url"].as_str().map(str::to_owned),
                _ => None,
            }
        });
        Ok(urls.collect())
    }

    /// Saves a PNG of the page as `target/e2e-artifacts/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = workspace_root().join("target").join("e2e-artifacts");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path.canonicalize()?)
    }

    /// Ends the browser session.
    pub async fn close(self) -> Result<()> {
        Ok(self.client.close().await?)
    }
}

/// A ChromeDriver extension command (`POST /session/<id>/<path>`), which fantoccini does
/// not wrap.
#[derive(Debug)]
struct Extension {
    path: &'static str,
    body: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> std::result::Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// Polls `test` until it holds, or fails after [`PATIENCE`] saying `what` never happened.
pub async fn until<F, Fut>(what: &str, mut test: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if test().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Timeout { what: what.into(), after: PATIENCE })
}

/// Ana opens the app, creates a room and joins; once she is waiting in it, returns the
/// share link she would send.
pub async fn open_room(relay: &Relay, ana: &Browser) -> Result<String> {
    ana.open(&relay.url("/")).await?;
    ana.click("create-room").await?;
    ana.click("join").await?;
    ana.wait_state("waiting").await?;
    ana.value("share-link").await
}

/// Ana opens the app, creates a room and joins; Bo opens the share link and joins.
pub async fn meet(relay: &Relay, ana: &Browser, bo: &Browser) -> Result<()> {
    bo.open(&open_room(relay, ana).await?).await?;
    bo.click("join").await
}

/// The median of some durations (the upper one of the middle two for an even count).
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
