//! The relay serving HTTPS and WSS itself, with a certificate it is given: a real TLS
//! client (rustls) that trusts only that certificate, a real page fetch and a real join;
//! HTTP/2 to the clients that offer it, the socket on HTTP/1.1.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::{Certificate, Http, INDEX_HTML, PATIENCE, Relay, TestResult, join_message, room};
use futures_util::{SinkExt, StreamExt};
use hyper::Version;
use shared::protocol::ServerMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// What a browser offers in its TLS handshake for a page, and for a `wss:` socket.
const BROWSER: &[&[u8]] = &[b"h2", b"http/1.1"];
const HTTP1_ONLY: &[&[u8]] = &[b"http/1.1"];

#[tokio::test]
async fn serves_the_page_and_the_socket_over_tls_with_the_given_certificate() -> TestResult {
    let certificate = Certificate::new()?;
    let relay = Relay::start_https(&certificate, &[]).await?;

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
    let relay = Relay::start_https(&old, &["--tls-reload-every", "50ms"]).await?;
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

#[tokio::test]
async fn a_browser_gets_the_page_over_http2_on_one_connection_and_its_socket_over_http1() -> TestResult {
    let certificate = Certificate::new()?;
    let relay = Relay::start_https(&certificate, &[]).await?;

    let tls = certificate.connect_offering(relay.addr, BROWSER).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut http = Http::over(tls, Version::HTTP_2).await?;
    let page = http.get("/r/x", &[]).await?;
    assert_eq!((page.version(), page.status().as_u16()), (Version::HTTP_2, 200));
    assert_eq!(page.body(), INDEX_HTML.as_bytes());
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    assert!(page.headers()["content-security-policy"].to_str()?.starts_with("default-src 'none'"));
    // The next requests on the same connection.
    assert_eq!(http.get("/", &[]).await?.body(), INDEX_HTML.as_bytes());
    assert_eq!(http.get("/healthz", &[]).await?.body(), "ok");
    // The room's QR code names the host from the request's authority, and HTTPS.
    let code = http.get("/qr/abcdefghijklmnopqrstuvwxyz.svg", &[]).await?;
    assert_eq!(code.body(), common::qr_code("https://localhost/r/abcdefghijklmnopqrstuvwxyz").as_bytes());
    // No WebSocket over HTTP/2 (no extended CONNECT): a GET is not upgraded.
    let refused = http.get("/ws", &[]).await?;
    assert!(refused.status().is_client_error(), "{:?}", refused.status());

    // The browser's socket: its own connection, offering HTTP/1.1 alone.
    let tls = certificate.connect_offering(relay.addr, HTTP1_ONLY).await?;
    let (mut socket, _) =
        tokio_tungstenite::client_async(format!("wss://localhost:{}/ws", relay.addr.port()), tls).await?;
    socket.send(Message::text(serde_json::to_string(&join_message(room(2).as_str(), None))?)).await?;
    let answer = tokio::time::timeout(PATIENCE, socket.next()).await?.ok_or("socket closed")??;
    let answer: ServerMessage = serde_json::from_str(answer.to_text()?)?;
    assert!(matches!(answer, ServerMessage::Joined { .. }), "{answer:?}");
    relay.stop().await
}

#[tokio::test]
async fn a_client_offering_only_http1_gets_http1() -> TestResult {
    let certificate = Certificate::new()?;
    let relay = Relay::start_https(&certificate, &[]).await?;
    for offered in [HTTP1_ONLY, &[]] {
        let tls = certificate.connect_offering(relay.addr, offered).await?;
        assert_ne!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut http = Http::over(tls, Version::HTTP_11).await?;
        let page = http.get("/r/x", &[]).await?;
        assert_eq!((page.version(), page.status().as_u16()), (Version::HTTP_11, 200));
        assert_eq!(page.body(), INDEX_HTML.as_bytes());
    }
    relay.stop().await?;

    // Plain HTTP never speaks HTTP/2, even to a client that starts with its preface (h2c).
    let relay = Relay::start(&[]).await?;
    let spoke = match Http::over(TcpStream::connect(relay.addr).await?, Version::HTTP_2).await {
        Ok(mut h2c) => h2c.get("/", &[]).await.is_ok(),
        Err(_) => false,
    };
    assert!(!spoke, "plain HTTP spoke HTTP/2");
    assert_eq!(relay.get("/healthz").await?, (200, "ok".to_owned()));
    relay.stop().await
}

#[tokio::test]
async fn an_http2_connection_is_closed_gracefully_at_shutdown() -> TestResult {
    let certificate = Certificate::new()?;
    let relay = Relay::start_https(&certificate, &[]).await?;
    let mut http = Http::over(certificate.connect_offering(relay.addr, BROWSER).await?, Version::HTTP_2).await?;
    assert_eq!(http.get("/healthz", &[]).await?.body(), "ok");
    // Well within the relay's grace (3 s) for connections that do not go.
    let since = Instant::now();
    relay.stop().await?;
    assert!(since.elapsed() < Duration::from_secs(2), "the connection held the shutdown for {:?}", since.elapsed());
    tokio::time::timeout(PATIENCE, http.connection).await???;
    Ok(())
}
