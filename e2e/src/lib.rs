//! The end-to-end harness: a real relay serving the built frontend, and separate real
//! browsers with fake media devices, one per person: Chromium through ChromeDriver
//! ([`chromium`]), Firefox through geckodriver ([`firefox`]), WebKitGTK through
//! WebKitWebDriver ([`webkit`]), all driven alike ([`Browser`]).
//!
//! It builds nothing: `scripts/test.sh` builds `dist/` first. When a part is missing the
//! harness fails with what to install, never skips.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod bidi;
mod browser;
mod chromium;
pub mod cluster;
pub mod firefox;
pub mod phone_network;
pub mod python;
pub mod rtp;
pub mod webkit;

pub use browser::{Browser, PATIENCE, PeerInfo};
pub use chromium::{ANDROID_CHROME, ChromeDriver, Profile};

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

/// The exit of a benchmark binary (`src/bin/`): success, or its `error` on stderr after
/// the binary's `name`, and failure.
pub fn exit_code(name: &str, result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A relay running in this process on a free loopback port, serving `dist/` (or
/// `$E2E_STATIC_DIR`).
pub struct Relay {
    addr: SocketAddr,
    config: relay::Config,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::result::Result<(), relay::Error>>,
}

impl Relay {
    /// Starts a relay with `flags` added to its command line. It serves `dist/`, or the
    /// folder `$E2E_STATIC_DIR` names (a frontend built elsewhere: an older commit's, for a
    /// benchmark's before and after).
    pub async fn start(flags: &[&str]) -> Result<Self> {
        let dist = std::env::var_os("E2E_STATIC_DIR").map_or_else(|| workspace_root().join("dist"), PathBuf::from);
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

    /// The loopback address it listens on (a balancer's backend).
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

/// Debian's coturn's server.
const TURNSERVER: Tool = Tool {
    variable: "TURNSERVER",
    default: "turnserver",
    install: "install Debian's coturn (`apt-get install coturn`)",
};

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
        let process = TURNSERVER.start(&args, &[], port).await?;
        Ok(Self { port, _process: process })
    }

    /// The TURN URL the relay hands out.
    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }
}

/// A program the harness runs or hands to a driver: `$variable` if set, else `default`;
/// `install` says how to get it when it is missing.
pub(crate) struct Tool {
    pub(crate) variable: &'static str,
    pub(crate) default: &'static str,
    pub(crate) install: &'static str,
}

impl Tool {
    /// Where it is.
    pub(crate) fn path(&self) -> String {
        std::env::var(self.variable).unwrap_or_else(|_| self.default.into())
    }

    /// Its path, if there is a file there (a browser, which its driver starts).
    pub(crate) fn installed(&self) -> Result<String> {
        let path = self.path();
        if std::path::Path::new(&path).exists() { Ok(path) } else { Err(self.missing(&format!("no {path}"))) }
    }

    /// What to say when it cannot be found or started (`what` went wrong).
    pub(crate) fn missing(&self, what: &str) -> Error {
        Error::Missing(format!("{what}: {}, or run `bash scripts/test.sh`, which does", self.install))
    }

    /// Starts it with `args` and `env`, its output discarded, killed on drop, and waits
    /// until it listens on loopback `port`.
    pub(crate) async fn start(&self, args: &[&str], env: &[(&str, &str)], port: u16) -> Result<Child> {
        let program = self.path();
        let process = Command::new(&program)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.missing(&format!("cannot start `{program}` ({e})")))?;
        wait_for_port(port, &program).await?;
        Ok(process)
    }
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

/// The interfaces of the network namespace `scripts/test.sh` runs the tests in, sorted:
/// loopback, and the two ends of a veth pair that are both inside it.
const TEST_NAMESPACE_INTERFACES: [&str; 3] = ["lc0", "lc1", "lo"];

/// A network fault: nftables rules that drop some of the packets arriving in this network
/// namespace, installed together and removed when the guard is dropped.
///
/// It only runs in the namespace `scripts/test.sh` makes, whose interfaces are loopback and
/// a veth pair with both ends inside ([`TEST_NAMESPACE_INTERFACES`]), where it cannot touch
/// anyone else's traffic. There every packet is delivered locally and crosses the `input`
/// hook exactly once, on its way to the receiving socket, so one rule per direction
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
        let mut interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")?
            .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        interfaces.sort();
        if interfaces != TEST_NAMESPACE_INTERFACES {
            return Err(Error::Missing(format!(
                "network faults are only injected in the tests' own network namespace (interfaces \
                 {TEST_NAMESPACE_INTERFACES:?}), and this one has {interfaces:?}: run the end-to-end tests \
                 through `bash scripts/test.sh`"
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

/// A loopback port nobody listens on now.
pub async fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}

/// Polls `test` until it holds, or fails after [`PATIENCE`] saying `what` never happened.
pub async fn until<F, Fut>(what: &str, mut test: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    poll(what, || {
        let holds = test();
        async move { Ok(if holds.await? { Ok(()) } else { Err(String::new()) }) }
    })
    .await
}

/// Polls `test` until it gives a value (`Ok`), or fails after [`PATIENCE`] saying `what`
/// never happened and what the test saw last (its last `Err`, if it said anything).
pub async fn poll<T, F, Fut>(what: &str, mut test: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<std::result::Result<T, String>>>,
{
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < PATIENCE {
        match test().await? {
            Ok(value) => return Ok(value),
            Err(seen) => last = seen,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let what = if last.is_empty() { what.to_owned() } else { format!("{what} (last seen: {last})") };
    Err(Error::Timeout { what, after: PATIENCE })
}

/// Ana opens the app, creates a room and joins; once she is waiting in it, returns the
/// share link she would send.
pub async fn open_room(relay: &Relay, ana: &Browser) -> Result<String> {
    open_room_at(&relay.url("/"), ana).await
}

/// [`open_room`] from the home page at `home` (a balancer's, say).
pub async fn open_room_at(home: &str, ana: &Browser) -> Result<String> {
    ana.open(home).await?;
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

/// Heard: Chromium's fake microphone beeps and Firefox's plays a tone; a receiver hears an
/// RMS level of about 0.5 during a beep and well above this over most one-second windows
/// (not all: a Chromium call where nothing else happens has quiet seconds now and then,
/// `tests/scaled.rs` saw up to four in a row).
pub const HEARD: f64 = 0.05;
/// What a muted sender's audio reads as at the receiver.
pub const SILENT: f64 = 0.005;

/// Waits until audio bytes flow both ways between Ana and Bo: each side's counters grow.
pub async fn audio_flows_both_ways(ana: &Browser, bo: &Browser) -> Result<()> {
    let (a0, b0) = (ana.wait_peer("a peer", |_| true).await?, bo.wait_peer("a peer", |_| true).await?);
    let grew = |before: PeerInfo| {
        move |now: &PeerInfo| {
            now.bytes_received > before.bytes_received + 1_000 && now.bytes_sent > before.bytes_sent + 1_000
        }
    };
    ana.wait_peer("audio bytes flowing to and from Ana", grew(a0)).await?;
    bo.wait_peer("audio bytes flowing to and from Bo", grew(b0)).await?;
    Ok(())
}

/// The median of some durations (the upper one of the middle two for an even count).
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
