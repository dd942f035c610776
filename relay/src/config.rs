//! Settings, from flags or environment variables (flags win).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use clap::builder::TypedValueParser as _;
use shared::protocol::IceServer;
use shared::room::DEFAULT_CAPACITY;

/// How the relay runs. Every flag has an environment variable, for containers and units.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "relay",
    version,
    about = "Signaling relay for link-based voice calls"
)]
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

    /// STUN or TURN URLs handed to every client, comma-separated in the environment
    /// (e.g. `stun:stun.example.org:3478`).
    #[arg(long = "ice-server", env = "RELAY_ICE_SERVERS", value_delimiter = ',')]
    pub ice_servers: Vec<String>,

    /// Most people in one room.
    #[arg(long, env = "RELAY_ROOM_CAPACITY", default_value_t = DEFAULT_CAPACITY,
          value_parser = clap::value_parser!(u16).range(2..=64).map(usize::from))]
    pub room_capacity: usize,
}

impl Config {
    /// The ICE servers as a client receives them.
    pub fn ice_servers(&self) -> Vec<IceServer> {
        self.ice_servers
            .iter()
            .map(|url| IceServer {
                urls: vec![url.clone()],
                username: None,
                credential: None,
            })
            .collect()
    }
}
