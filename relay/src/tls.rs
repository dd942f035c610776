//! Listening: plain HTTP, or HTTPS/WSS with rustls when given a certificate (or in LAN mode,
//! with a self-signed one made at start), and who the client is.
//!
//! Browsers give the microphone only to secure pages: `https://`, or `http://localhost`. A
//! phone on the same Wi-Fi reaches the relay by its LAN address, so it needs HTTPS even
//! for a quick try at home; that is what LAN mode is for.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::limits::{Admitted, Connections, subscriber};
use crate::{Config, Error};

/// A TLS handshake gets this long; a client that stalls it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many handshakes at once; more wait in the kernel's accept queue.
const HANDSHAKES_IN_FLIGHT: usize = 256;

/// HTTP/2's name in ALPN.
const H2: &[u8] = b"h2";

/// The address of the TCP peer (before any `X-Forwarded-For`).
#[derive(Clone, Copy, Debug)]
pub struct Remote(pub SocketAddr);

/// Plain TCP, with at most `--connections-per-ip` connections from one address (or IPv6
/// /64) at once, TLS handshakes included: one client cannot take the file descriptors, or
/// the handshake slots, that everyone shares. A connection over the limit is closed at once.
pub struct Plain {
    listener: TcpListener,
    per_ip: Option<Arc<Connections>>,
}

impl Plain {
    /// Accepts on `listener`; `per_ip` counts connections by address (`None`: unbounded,
    /// behind a proxy whose address every connection has).
    pub fn new(listener: TcpListener, per_ip: Option<Arc<Connections>>) -> Self {
        Self { listener, per_ip }
    }
}

impl Listener for Plain {
    type Io = Counted;
    type Addr = Remote;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = Listener::accept(&mut self.listener).await;
            let admitted = match self.per_ip.as_ref().map(|per_ip| per_ip.admit(subscriber(addr.ip()))) {
                Some(None) => {
                    tracing::debug!(%addr, "too many connections from this address: closed");
                    crate::metrics::eviction("too_many_connections");
                    continue;
                }
                counted => counted.flatten(),
            };
            // Signals are small and must not wait for the previous one's ACK (Nagle), which
            // over a phone's 100 ms round trip would hold back every trickled ICE candidate;
            // the socket task already writes what is queued with one flush.
            if let Err(error) = io.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY refused");
            }
            return (Counted { io, _admitted: admitted }, Remote(addr));
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr().map(Remote)
    }
}

/// Whether a connection speaks HTTP/2 (`server.rs`), as its TLS handshake settled.
pub trait Negotiated {
    /// The client chose `h2` by ALPN.
    fn http2(&self) -> bool;
}

/// Plain TCP is HTTP/1.1: browsers speak HTTP/2 only over TLS.
impl Negotiated for Counted {
    fn http2(&self) -> bool {
        false
    }
}

impl Negotiated for TlsStream<Counted> {
    fn http2(&self) -> bool {
        self.get_ref().1.alpn_protocol() == Some(H2)
    }
}

/// A TCP connection, counted against its address until it closes.
pub struct Counted {
    io: TcpStream,
    _admitted: Option<Admitted>,
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// TLS over TCP. Each handshake runs in its own task, so a slow or silent client cannot
/// hold up anyone else's.
pub struct Secure {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<Counted>, Remote)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Secure {
    /// Accepts on `plain` (listening on `local`) and hands out the connections whose
    /// handshake with `acceptor` (as it is when each connection comes) succeeded.
    pub fn new(mut plain: Plain, acceptor: Acceptor, local: SocketAddr) -> Self {
        let (done, ready) = mpsc::channel(HANDSHAKES_IN_FLIGHT);
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_IN_FLIGHT));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let (tcp, remote) = Listener::accept(&mut plain).await;
                let (acceptor, done) = (acceptor.current(), done.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, remote)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        Self { local, ready, accepting }
    }
}

impl Drop for Secure {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Listener for Secure {
    type Io = TlsStream<Counted>;
    type Addr = Remote;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task only ends with the relay; wait for the shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Remote(self.local))
    }
}

/// How the relay's HTTPS is set up.
pub enum Https {
    /// Plain HTTP (behind a TLS-terminating proxy, or on localhost).
    Off,
    /// HTTPS with a certificate from a real authority (or the operator's own), reloaded
    /// when its files change ([`watch`]).
    Certified(Acceptor),
    /// HTTPS with a certificate made at start for LAN addresses: browsers warn once.
    SelfSigned(Acceptor),
}

/// The certificate files' watch ([`Https::watch_renewals`]), stopped on drop.
pub struct Watching(tokio::task::JoinHandle<()>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The TLS acceptor new connections get; a renewed certificate replaces it.
#[derive(Clone)]
pub struct Acceptor(Arc<RwLock<TlsAcceptor>>);

impl Acceptor {
    fn new(acceptor: TlsAcceptor) -> Self {
        Self(Arc::new(RwLock::new(acceptor)))
    }

    fn current(&self) -> TlsAcceptor {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn replace(&self, acceptor: TlsAcceptor) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = acceptor;
    }
}

/// Looks at `cert` and `key` every `period`; when either changed since it last looked, and
/// both read well, `acceptor` serves them from then on. A renewal half written, or broken,
/// is logged and the certificate in use stays. Runs until dropped.
async fn watch(cert: PathBuf, key: PathBuf, acceptor: Acceptor, period: Duration) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen = (modified(&cert), modified(&key));
    loop {
        tokio::time::sleep(period).await;
        let now = (modified(&cert), modified(&key));
        if now == seen {
            continue;
        }
        match certified(&cert, &key) {
            Ok(renewed) => {
                acceptor.replace(renewed);
                seen = now;
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            Err(error) => tracing::warn!(%error, "TLS certificate changed but cannot be used; keeping the old one"),
        }
    }
}

/// An acceptor for the certificate chain in `cert` and its key in `key` (PEM files).
fn certified(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let unreadable = |why: String| Error::Tls(format!("cannot read the certificate {}: {why}", cert.display()));
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| unreadable(e.to_string()))?;
    if chain.is_empty() {
        return Err(unreadable("no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Tls(format!("cannot read the key {}: {e}", key.display())))?;
    acceptor(chain, key)
}

impl Https {
    /// HTTPS as `config` asks: `--tls-cert` and `--tls-key`, or `--lan`.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Ok(Self::Certified(Acceptor::new(certified(cert, key)?))),
            (None, None) if config.lan => {
                let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
                names.extend(lan_address().map(|ip| ip.to_string()));
                let made = rcgen::generate_simple_self_signed(names).map_err(|e| Error::Tls(e.to_string()))?;
                let key =
                    PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(|e| Error::Tls(e.into()))?;
                Ok(Self::SelfSigned(Acceptor::new(acceptor(vec![made.cert.der().clone()], key)?)))
            }
            (None, None) => Ok(Self::Off),
            _ => Err(Error::Tls("--tls-cert and --tls-key go together".into())),
        }
    }

    /// With a certificate from files, a task that reloads them when they change ([`watch`],
    /// every `--tls-reload-every`); it stops when the returned guard is dropped.
    pub fn watch_renewals(&self, config: &Config) -> Option<Watching> {
        let Self::Certified(acceptor) = self else { return None };
        let (cert, key) = (config.tls_cert.clone()?, config.tls_key.clone()?);
        Some(Watching(tokio::spawn(watch(cert, key, acceptor.clone(), config.tls_reload_every))))
    }

    /// Whether browsers should be told to use HTTPS from now on (`Strict-Transport-Security`):
    /// only with a real certificate; with a self-signed one it would turn the one-time
    /// warning into a wall.
    pub fn strict(&self) -> bool {
        matches!(self, Self::Certified(_))
    }
}

fn acceptor(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<TlsAcceptor, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| Error::Tls(e.to_string()))?;
    // Ours first: a client that offers both gets HTTP/2, all its page's assets on one
    // connection; its WebSocket comes on an HTTP/1.1 connection of its own (`server.rs`).
    config.alpn_protocols = vec![H2.to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// This machine's address on the local network: the source address the system would use
/// to reach the internet. Connecting a UDP socket sends nothing.
pub fn lan_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect(("192.0.2.1", 9)).ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// What LAN mode prints: the address to open on a phone, and a QR code of it for the
/// phone's camera. Drawn for a dark terminal (the usual kind): light modules are the
/// printed blocks, dark ones the background.
pub fn lan_banner(url: &str) -> String {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(url)
        .map(|code| {
            code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build()
        })
        .unwrap_or_default();
    format!(
        "\nLAN mode: on a phone on the same Wi-Fi, open\n\n    {url}\n\n{code}\n\
         The certificate is self-signed: the browser warns once; choose to continue.\n"
    )
}

/// The client's IP address: the TCP peer's, or, behind a trusted reverse proxy, the last
/// address in `X-Forwarded-For` (the one our proxy added; earlier ones are the client's
/// word and could be anything).
pub fn client_ip(remote: Remote, headers: &HeaderMap, trust_proxy: bool) -> IpAddr {
    let forwarded = || {
        let value = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse().ok()
    };
    trust_proxy.then(forwarded).flatten().unwrap_or(remote.0.ip())
}

/// Whether the page was reached over HTTPS: directly, or, behind a trusted proxy, as its
/// `X-Forwarded-Proto` says.
pub fn forwarded_https(headers: &HeaderMap, trust_proxy: bool) -> bool {
    trust_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.split(',').next_back().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy_and_only_its_last_hop() {
        let remote = Remote("10.0.0.2:5555".parse().unwrap());
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7")]);
        assert_eq!(client_ip(remote, &spoofed, false), "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(remote, &spoofed, true), "203.0.113.7".parse::<IpAddr>().unwrap());
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(client_ip(remote, &garbage, true), "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(remote, &HeaderMap::new(), true), "10.0.0.2".parse::<IpAddr>().unwrap());
        let v6 = headers(&[("x-forwarded-for", "2001:db8::1")]);
        assert_eq!(client_ip(remote, &v6, true), "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn forwarded_proto_counts_only_from_a_trusted_proxy() {
        let https = headers(&[("x-forwarded-proto", "https")]);
        assert!(forwarded_https(&https, true));
        assert!(!forwarded_https(&https, false));
        assert!(!forwarded_https(&headers(&[("x-forwarded-proto", "http")]), true));
        assert!(forwarded_https(&headers(&[("x-forwarded-proto", "http, HTTPS")]), true));
    }

    #[test]
    fn the_lan_banner_has_the_url_and_a_scannable_code() {
        let banner = lan_banner("https://192.168.1.20:8080/");
        assert!(banner.contains("https://192.168.1.20:8080/"));
        assert!(banner.lines().filter(|line| line.contains('█')).count() > 10, "{banner}");
    }
}
