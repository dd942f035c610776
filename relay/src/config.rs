//! Settings, from flags or environment variables (flags win).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};
use shared::protocol::IceTransportPolicy;
use shared::room::DEFAULT_CAPACITY;

use crate::limits::PerClient;

/// How the relay runs. Every flag has an environment variable, for containers and units.
#[derive(Parser, Clone, Debug)]
#[command(name = "relay", version, about = "Signaling relay for link-based voice calls")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "RELAY_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// TCP port to listen on (0 picks a free one).
    #[arg(long, env = "RELAY_PORT", default_value_t = 8080)]
    pub port: u16,

    /// The built frontend (trunk's `dist/`), served at `/` with `/r/<room>` falling back to
    /// its `index.html`.
    #[arg(long, env = "RELAY_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// STUN or TURN URLs handed to every client as they are (comma-separated in the
    /// environment), e.g. `stun:stun.example.org:3478`.
    #[arg(long = "ice-server", env = "RELAY_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Vec<String>,

    /// TURN URLs that get short-lived credentials from `--turn-secret` (comma-separated in
    /// the environment), e.g. `turn:turn.example.org:3478?transport=udp`.
    #[arg(long = "turn-url", env = "RELAY_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// The secret shared with coturn (`static-auth-secret` with `use-auth-secret`).
    #[arg(long, env = "RELAY_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long TURN credentials stay valid.
    #[arg(long, env = "RELAY_TURN_TTL", default_value = "6h", value_parser = humantime::parse_duration)]
    pub turn_ttl: Duration,

    /// `all`, or `relay` to make browsers use TURN only (hides each side's IP address from
    /// the other, at the cost of relaying every call).
    #[arg(long, env = "RELAY_ICE_TRANSPORT_POLICY", default_value = "all", value_parser = policy())]
    pub ice_transport_policy: IceTransportPolicy,

    /// Most people in one room.
    #[arg(long, env = "RELAY_ROOM_CAPACITY", default_value_t = DEFAULT_CAPACITY,
          value_parser = clap::value_parser!(u16).range(2..=64).map(usize::from))]
    pub room_capacity: usize,

    /// Largest WebSocket message, in bytes; larger ones close the socket with 1009.
    #[arg(long, env = "RELAY_MAX_MESSAGE_BYTES", default_value_t = shared::protocol::MAX_FRAME_BYTES,
          value_parser = clap::value_parser!(u32).range(1024..=1 << 20).map(|n| n as usize))]
    pub max_message_bytes: usize,

    /// Messages a socket may send per second, sustained.
    #[arg(long, env = "RELAY_MESSAGES_PER_SECOND", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub messages_per_second: u32,

    /// Messages a socket may send in one burst (an offer and its ICE candidates).
    #[arg(long, env = "RELAY_MESSAGE_BURST", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub message_burst: u32,

    /// Open sockets allowed from one IP address, or one IPv6 /64, once the relay is busy
    /// (`--busy-above`).
    #[arg(long, env = "RELAY_SOCKETS_PER_IP", default_value_t = 64)]
    pub sockets_per_ip: usize,

    /// The per-address limits below hold only once the relay has this many open (TCP
    /// connections, sockets, or rooms, each counted on its own): until then one address may
    /// have any number, since a mobile carrier puts thousands of phones behind one IPv4
    /// address. A single abuser can hold at most this many, and when it does, everyone
    /// else still gets their per-address share.
    #[arg(long, env = "RELAY_BUSY_ABOVE", default_value_t = 1000)]
    pub busy_above: usize,

    /// Open TCP connections allowed from one IP address, or one IPv6 /64 (page loads, TLS
    /// handshakes and sockets together), once the relay is busy (`--busy-above`); more are
    /// closed at once. Not counted with `--trust-proxy`, where every connection comes from
    /// the proxy.
    #[arg(long, env = "RELAY_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub connections_per_ip: usize,

    /// How long a client gets to send a request's headers; one that trickles them
    /// (slowloris) is disconnected.
    #[arg(long, env = "RELAY_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,

    /// Open rooms created from one IP address, or one IPv6 /64, once the relay is busy
    /// (`--busy-above`).
    #[arg(long, env = "RELAY_ROOMS_PER_IP", default_value_t = 32)]
    pub rooms_per_ip: usize,

    /// How often the relay pings each socket; below the 60 s idle timeout of common proxies.
    #[arg(long, env = "RELAY_PING_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A socket silent this long (no pong, no message) is evicted and its room told.
    #[arg(long, env = "RELAY_IDLE_TIMEOUT", default_value = "40s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// How long a peer whose socket dropped keeps its place, waiting to resume.
    #[arg(long, env = "RELAY_RESUME_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub resume_grace: Duration,

    /// Page origins allowed to open the signaling socket (comma-separated in the
    /// environment), e.g. `https://call.example.org`, when the pages are served from
    /// elsewhere. Empty: the relay's own pages, and clients that send no `Origin`.
    #[arg(long = "allowed-origin", env = "RELAY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// TLS certificate chain (PEM): the relay then serves HTTPS and WSS itself.
    #[arg(long, env = "RELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for `--tls-cert`.
    #[arg(long, env = "RELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How often to look at `--tls-cert` and `--tls-key` for a renewed certificate (a
    /// Let's Encrypt renewal rewrites them): new connections get it, open ones keep theirs.
    #[arg(long, env = "RELAY_TLS_RELOAD_EVERY", default_value = "1m", value_parser = humantime::parse_duration)]
    pub tls_reload_every: Duration,

    /// LAN mode: listen on every interface with HTTPS on a self-signed certificate made at
    /// start, and print the LAN URL with a QR code, so a phone on the same Wi-Fi can join.
    #[arg(long, env = "RELAY_LAN", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub lan: bool,

    /// Behind a reverse proxy: take the client's address from the last `X-Forwarded-For`
    /// hop (for the per-IP limits) and the scheme from `X-Forwarded-Proto`. Only set it if
    /// the proxy overwrites those headers: otherwise clients could choose their address.
    #[arg(long, env = "RELAY_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Share rooms with every relay pointed at this Redis (or Valkey), e.g.
    /// `redis://127.0.0.1:6379`: people in one room may then be on different relays, and a
    /// socket may resume its seat on any of them. Without it, rooms live in this relay's
    /// memory.
    #[arg(long, env = "RELAY_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// A per-address `limit`, held while the relay is busy.
    pub(crate) fn per_client(&self, limit: usize) -> PerClient {
        PerClient { limit, busy_above: self.busy_above }
    }
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn policy() -> impl clap::builder::TypedValueParser<Value = IceTransportPolicy> {
    clap::builder::PossibleValuesParser::new(["all", "relay"]).map(|value| match value.as_str() {
        "relay" => IceTransportPolicy::Relay,
        _ => IceTransportPolicy::All,
    })
}
