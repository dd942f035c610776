//! The relay serving HTTPS and WSS itself, with a certificate it is given: a real TLS
//! client (rustls) that trusts only that certificate, a real page fetch and a real join.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{INDEX_HTML, PATIENCE, TestResult, join_message, room};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use shared::protocol::ServerMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A certificate for `localhost` in a temporary folder, and a client that trusts it alone.
struct Certificate {
    dir: tempfile::TempDir,
    connector: TlsConnector,
}

impl Certificate {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem())?;
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem())?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { dir, connector: TlsConnector::from(Arc::new(config)) })
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    async fn connect(&self, addr: std::net::SocketAddr) -> Result<TlsStream<TcpStream>, Box<dyn std::error::Error>> {
        let tcp = TcpStream::connect(addr).await?;
        Ok(self.connector.connect(ServerName::try_from("localhost")?, tcp).await?)
    }
}

#[tokio::test]
async fn serves_the_page_and_the_socket_over_tls_with_the_given_certificate() -> TestResult {
    let certificate = Certificate::new()?;
    let (cert, key) = (certificate.path("cert.pem"), certificate.path("key.pem"));
    let relay = common::Relay::start(&["--tls-cert", &cert, "--tls-key", &key]).await?;

    // The page, over HTTPS, says to stay on HTTPS.
    let mut tls = certificate.connect(relay.addr).await?;
    tls.write_all(b"GET /r/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, tls.read_to_string(&mut response)).await??;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "{response}");
    assert!(response.ends_with(INDEX_HTML), "{response}");

    // The signaling socket, over WSS: a join is answered.
    let tls = certificate.connect(relay.addr).await?;
    let (mut socket, _) =
        tokio_tungstenite::client_async(format!("wss://localhost:{}/ws", relay.addr.port()), tls).await?;
    socket.send(Message::text(serde_json::to_string(&join_message(room(1).as_str(), None))?)).await?;
    let answer = tokio::time::timeout(PATIENCE, socket.next()).await?.ok_or("socket closed")??;
    let answer: ServerMessage = serde_json::from_str(answer.to_text()?)?;
    assert!(matches!(answer, ServerMessage::Joined { .. }), "{answer:?}");

    // Plain HTTP on the TLS port gets no page.
    let mut plain = TcpStream::connect(relay.addr).await?;
    plain.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, plain.read_to_end(&mut answer)).await?;
    assert!(!String::from_utf8_lossy(&answer).contains("test app"));
    relay.stop().await
}

#[tokio::test]
async fn an_unusable_certificate_is_a_clear_error_at_start() -> TestResult {
    let certificate = Certificate::new()?;
    let garbage = certificate.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate")?;
    let key = certificate.path("key.pem");
    for (cert, key, expected) in [
        (garbage.as_str(), key.as_str(), "cannot read the certificate"),
        ("/nonexistent/cert.pem", key.as_str(), "cannot read the certificate"),
        (&certificate.path("cert.pem"), garbage.as_str(), "cannot read the key"),
    ] {
        let config = relay::Config::try_parse_from(["relay", "--tls-cert", cert, "--tls-key", key])?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let error = relay::run(listener, config, std::future::pending()).await.err().ok_or("started anyway")?;
        assert!(error.to_string().contains(expected), "{error}");
    }
    // One without the other is refused by the command line itself.
    assert!(relay::Config::try_parse_from(["relay", "--tls-cert", "c.pem"]).is_err());
    Ok(())
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() -> TestResult {
    let (old, renewed) = (Certificate::new()?, Certificate::new()?);
    let (cert, key) = (old.path("cert.pem"), old.path("key.pem"));
    let relay = common::Relay::start(&["--tls-cert", &cert, "--tls-key", &key, "--tls-reload-every", "50ms"]).await?;
    old.connect(relay.addr).await?;
    assert!(renewed.connect(relay.addr).await.is_err(), "the renewed certificate was served before the renewal");

    // The renewal rewrites the files in place, as certbot's deploy step does.
    std::fs::copy(renewed.path("key.pem"), &key)?;
    std::fs::copy(renewed.path("cert.pem"), &cert)?;
    let since = Instant::now();
    while renewed.connect(relay.addr).await.is_err() {
        if since.elapsed() > PATIENCE {
            return Err("the renewed certificate was never served".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(old.connect(relay.addr).await.is_err(), "the old certificate is still served");
    relay.stop().await
}
