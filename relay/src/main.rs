//! The relay binary: read the configuration, set up logging, serve until ctrl-c or SIGTERM.

use clap::Parser;
use relay::{Config, LogFormat};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // LAN mode is for phones on the same Wi-Fi: listen on every interface.
    let bind = if config.lan { std::net::Ipv4Addr::UNSPECIFIED.into() } else { config.bind };
    let listener = TcpListener::bind((bind, config.port)).await?;
    if config.lan {
        let port = listener.local_addr()?.port();
        match relay::lan_address() {
            Some(ip) => println!("{}", relay::lan_banner(&format!("https://{ip}:{port}/"))),
            None => tracing::warn!("LAN mode, but this machine has no LAN address"),
        }
    }
    relay::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
