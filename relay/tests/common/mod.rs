//! A real relay on `127.0.0.1:0` and real WebSocket clients for the integration tests.

#![allow(dead_code, missing_docs)] // Each test binary uses part of the harness.

// A real redis-server and HAProxy: the same starters the end-to-end tests use, in the
// harness crate, which the relay cannot depend on.
#[path = "../../../e2e/src/cluster.rs"]
pub mod cluster;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use relay::Config;
use rustls::pki_types::ServerName;
use shared::protocol::{
    ClientMessage, ErrorCode, IceServer, IceTransportPolicy, PROTOCOL_VERSION, ServerMessage, Signal,
};
use shared::room::{PeerId, RoomId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);
/// How long a test listens to be sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub const INDEX_HTML: &str = "<!doctype html><title>test app</title>";

pub struct Relay {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), relay::Error>>,
}

impl Relay {
    /// Starts a relay with default settings plus `flags` (as on the command line).
    pub async fn start(flags: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        Self::serving(&static_dir()?, flags).await
    }

    /// Starts a relay serving HTTPS with `certificate`, with `flags`.
    pub async fn start_https(certificate: &Certificate, flags: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        let (cert, key) = (certificate.path("cert.pem"), certificate.path("key.pem"));
        Self::start(&[&["--tls-cert", &cert, "--tls-key", &key], flags].concat()).await
    }

    /// Starts a relay serving the frontend in `dir`, with `flags`.
    pub async fn serving(dir: &Path, flags: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        let mut args = vec!["relay", "--port", "0", "--static-dir", dir.to_str().ok_or("path")?];
        args.extend_from_slice(flags);
        let config = Config::try_parse_from(args)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay::run(listener, config, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop: Some(stop), task })
    }

    pub async fn client(&self) -> Result<Client, Box<dyn std::error::Error>> {
        let (socket, _) = connect_async(format!("ws://{}/ws", self.addr)).await?;
        Ok(Client { socket })
    }

    /// Two people in `room`, the first having heard the second arrive: their sockets and
    /// ids.
    pub async fn pair(&self, room: &RoomId) -> Result<(Client, Client, PeerId, PeerId), Box<dyn std::error::Error>> {
        let (mut first, mut second) = (self.client().await?, self.client().await?);
        let (a, _) = first.join(room).await?;
        let (b, _) = second.join(room).await?;
        assert_eq!(first.recv().await?, ServerMessage::PeerJoined { peer: b });
        Ok((first, second, a, b))
    }

    /// Opens the socket as a page from `origin` would.
    pub async fn client_from(&self, origin: &str) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        self.client_with("origin", origin).await
    }

    /// Opens the socket with the request header `name: value`.
    pub async fn client_with(
        &self,
        name: &'static str,
        value: &str,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/ws", self.addr).into_client_request()?;
        request.headers_mut().insert(name, value.parse().map_err(tokio_tungstenite::tungstenite::http::Error::from)?);
        let (socket, _) = connect_async(request).await?;
        Ok(Client { socket })
    }

    /// Sends a plain HTTP/1.1 GET and returns the status code and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String), Box<dyn std::error::Error>> {
        let response = self.get_full(path).await?;
        Ok((response.status, response.body))
    }

    /// Sends a plain HTTP/1.1 GET and returns the whole response.
    pub async fn get_full(&self, path: &str) -> Result<HttpResponse, Box<dyn std::error::Error>> {
        http_get(self.addr, path).await
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task).await???;
        Ok(())
    }
}

/// Sends a plain HTTP/1.1 GET to `addr` and returns the whole response.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<HttpResponse, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response)).await??;
    let status = response.get(9..12).ok_or("short response")?.parse()?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok(HttpResponse { status, head: head.to_ascii_lowercase(), body: body.to_owned() })
}

pub fn static_dir() -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("relay-static");
    std::fs::create_dir_all(&dir)?;
    // Tests run at once, and other test binaries too: a relay serving the page must never
    // see it half written, so it is written aside and renamed into place.
    let index = dir.join("index.html");
    if std::fs::read(&index).ok().as_deref() != Some(INDEX_HTML.as_bytes()) {
        let mut written = tempfile::NamedTempFile::new_in(&dir)?;
        std::io::Write::write_all(&mut written, INDEX_HTML.as_bytes())?;
        written.persist(index)?;
    }
    Ok(dir)
}

/// A certificate for `localhost` in a temporary folder, and a client that trusts it alone.
pub struct Certificate {
    dir: tempfile::TempDir,
    client: Arc<rustls::ClientConfig>,
}

impl Certificate {
    pub fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem())?;
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem())?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { dir, client: Arc::new(client) })
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// A TLS connection to `addr` offering no ALPN.
    pub async fn connect(&self, addr: SocketAddr) -> Result<TlsStream<TcpStream>, Box<dyn std::error::Error>> {
        self.connect_offering(addr, &[]).await
    }

    /// A TLS connection to `addr` offering the protocols `alpn` (in order of preference).
    pub async fn connect_offering(
        &self,
        addr: SocketAddr,
        alpn: &[&[u8]],
    ) -> Result<TlsStream<TcpStream>, Box<dyn std::error::Error>> {
        let mut client = (*self.client).clone();
        client.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        let tcp = TcpStream::connect(addr).await?;
        Ok(TlsConnector::from(Arc::new(client)).connect(ServerName::try_from("localhost")?, tcp).await?)
    }
}

/// One connection of hyper's HTTP client, speaking HTTP/1.1 or HTTP/2.
pub struct Http {
    sender: Sender,
    /// The connection's task: it ends when the connection does.
    pub connection: JoinHandle<hyper::Result<()>>,
}

enum Sender {
    One(http1::SendRequest<Empty<Bytes>>),
    Two(http2::SendRequest<Empty<Bytes>>),
}

impl Http {
    /// Speaks `version` (HTTP/1.1 or HTTP/2) over `io`.
    pub async fn over<I>(io: I, version: Version) -> Result<Self, Box<dyn std::error::Error>>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        Ok(if version == Version::HTTP_2 {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
            Self { sender: Sender::Two(sender), connection: tokio::spawn(connection) }
        } else {
            let (sender, connection) = http1::handshake(io).await?;
            Self { sender: Sender::One(sender), connection: tokio::spawn(connection) }
        })
    }

    /// GETs `path` with the request headers `headers` and returns the response with its
    /// whole body.
    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Bytes>, Box<dyn std::error::Error>> {
        // HTTP/2 names the host in `:authority`, from the URI; HTTP/1.1 in `Host`.
        let request = match self.sender {
            Sender::One(_) => Request::get(path).header("host", "localhost"),
            Sender::Two(_) => Request::get(format!("https://localhost{path}")),
        };
        let request = headers.iter().fold(request, |request, (name, value)| request.header(*name, *value));
        let request = request.body(Empty::new())?;
        let response = tokio::time::timeout(PATIENCE, async {
            match &mut self.sender {
                Sender::One(sender) => sender.send_request(request).await,
                Sender::Two(sender) => sender.send_request(request).await,
            }
        })
        .await??;
        let (head, body) = response.into_parts();
        let body = tokio::time::timeout(PATIENCE, body.collect()).await??.to_bytes();
        Ok(Response::from_parts(head, body))
    }
}

pub struct HttpResponse {
    pub status: u16,
    /// The status line and headers, lower-cased.
    pub head: String,
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    }
}

pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Opens the signaling socket at `addr` (a relay, or a balancer in front of relays).
    pub async fn connect(addr: SocketAddr) -> Result<Self, Box<dyn std::error::Error>> {
        let (socket, _) = connect_async(format!("ws://{addr}/ws")).await?;
        Ok(Self { socket })
    }

    pub async fn send(&mut self, message: &ClientMessage) -> TestResult {
        self.send_text(&message.encode()).await
    }

    pub async fn send_text(&mut self, text: &str) -> TestResult {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    pub async fn send_frame(&mut self, frame: Message) -> TestResult {
        self.socket.send(frame).await?;
        Ok(())
    }

    /// The next frame, which must come within [`PATIENCE`]. WebSocket pings are skipped:
    /// the client answers them by itself.
    pub async fn next_frame(&mut self) -> Result<Message, Box<dyn std::error::Error>> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next()).await?.ok_or("socket ended")??;
            if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
                return Ok(frame);
            }
        }
    }

    /// The next message, which must come within [`PATIENCE`].
    pub async fn recv(&mut self) -> Result<ServerMessage, Box<dyn std::error::Error>> {
        match self.next_frame().await? {
            Message::Text(text) => Ok(ServerMessage::decode(text.as_str())?),
            other => Err(format!("expected a text frame, got {other:?}").into()),
        }
    }

    /// The close frame the relay ends the socket with.
    pub async fn closed_with(&mut self) -> Result<Option<CloseFrame>, Box<dyn std::error::Error>> {
        match self.next_frame().await? {
            Message::Close(frame) => Ok(frame),
            other => Err(format!("expected a close frame, got {other:?}").into()),
        }
    }

    /// Fails if any message arrives within [`QUIET`].
    pub async fn expect_nothing(&mut self) -> TestResult {
        match tokio::time::timeout(QUIET, self.next_frame()).await {
            Err(_) => Ok(()),
            Ok(frame) => Err(format!("expected silence, got {frame:?}").into()),
        }
    }

    /// Joins `room` and returns the assigned id and who was there.
    pub async fn join(&mut self, room: &RoomId) -> Result<(PeerId, Vec<PeerId>), Box<dyn std::error::Error>> {
        let joined = self.join_as(room, None).await?;
        Ok((joined.you, joined.peers))
    }

    /// Joins `room`, resuming with `token` if given, and returns the whole answer.
    pub async fn join_as(&mut self, room: &RoomId, resume: Option<&str>) -> Result<Joined, Box<dyn std::error::Error>> {
        self.send(&join_message(room.as_str(), resume)).await?;
        match self.recv().await? {
            ServerMessage::Joined { you, peers, ice_servers, ice_transport_policy, resume, resumed, .. } => {
                Ok(Joined { you, peers, ice_servers, ice_transport_policy, resume, resumed })
            }
            other => Err(format!("expected joined, got {other:?}").into()),
        }
    }

    /// The next message must be an error with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) -> TestResult {
        match self.recv().await? {
            ServerMessage::Error { code: got, .. } if got == code => Ok(()),
            other => Err(format!("expected error {code:?}, got {other:?}").into()),
        }
    }

    pub async fn signal(&mut self, to: PeerId, signal: Signal) -> TestResult {
        self.send(&ClientMessage::Signal { to, signal }).await
    }

    /// Ends the connection without a close frame, as a phone losing its network does (the
    /// relay sees the stream end), and returns once the relay has let go of it: it parks
    /// the seat before it closes its side, so the seat is parked by then.
    pub async fn vanish(mut self) -> TestResult {
        let MaybeTlsStream::Plain(tcp) = self.socket.get_mut() else { return Err("vanish: not plain TCP".into()) };
        tcp.shutdown().await?;
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest)).await??;
        Ok(())
    }

    /// Closes with a close frame carrying `code`, and returns once the relay has let go
    /// of the socket: it tells the room (or parks the seat) before it closes its side.
    pub async fn close_with(mut self, code: u16) -> TestResult {
        let frame = CloseFrame { code: code.into(), reason: "".into() };
        self.socket.close(Some(frame)).await?;
        self.until_let_go().await
    }

    /// Closes without a code (a plain close), and returns once the relay has let go.
    pub async fn close(mut self) -> TestResult {
        self.socket.close(None).await?;
        self.until_let_go().await
    }

    /// Reads until the relay ends the connection.
    async fn until_let_go(&mut self) -> TestResult {
        tokio::time::timeout(PATIENCE, async { while let Some(Ok(_)) = self.socket.next().await {} }).await?;
        Ok(())
    }
}

/// What `joined` said.
#[derive(Debug)]
pub struct Joined {
    pub you: PeerId,
    pub peers: Vec<PeerId>,
    pub ice_servers: Vec<IceServer>,
    pub ice_transport_policy: IceTransportPolicy,
    pub resume: String,
    pub resumed: bool,
}

pub fn join_message(room: &str, resume: Option<&str>) -> ClientMessage {
    ClientMessage::Join { version: PROTOCOL_VERSION, room: room.to_owned(), resume: resume.map(str::to_owned) }
}

/// Two people talking in a room of their own, to prove that an attack elsewhere does not
/// reach them.
pub struct Bystanders {
    one: Client,
    two: Client,
    ids: (PeerId, PeerId),
}

impl Bystanders {
    pub async fn new(relay: &Relay) -> Result<Self, Box<dyn std::error::Error>> {
        let room = room(250);
        let (mut one, mut two) = (relay.client().await?, relay.client().await?);
        let (a, _) = one.join(&room).await?;
        let (b, _) = two.join(&room).await?;
        one.recv().await?;
        Ok(Self { one, two, ids: (a, b) })
    }

    /// Each of the two receives exactly `message` next.
    pub async fn both_hear(&mut self, message: ServerMessage) -> TestResult {
        assert_eq!(self.one.recv().await?, message);
        assert_eq!(self.two.recv().await?, message);
        Ok(())
    }

    /// Both still talk to each other, and heard nothing else in the meantime.
    pub async fn still_fine(&mut self) -> TestResult {
        let (a, b) = self.ids;
        self.one.expect_nothing().await?;
        self.two.expect_nothing().await?;
        self.one.signal(b, offer("still here")).await?;
        assert_eq!(self.two.recv().await?, ServerMessage::Signal { from: a, signal: offer("still here") });
        self.two.signal(a, offer("me too")).await?;
        assert_eq!(self.one.recv().await?, ServerMessage::Signal { from: b, signal: offer("me too") });
        Ok(())
    }
}

/// A fresh, valid room id; `n` makes distinct ones.
pub fn room(n: u8) -> RoomId {
    // Room ids use five bits of each byte: spread `n` over two characters.
    let mut bytes = [7u8; RoomId::LEN];
    bytes[0] = n;
    bytes[1] = n >> 5;
    RoomId::from_random(bytes)
}

pub fn offer(sdp: &str) -> Signal {
    Signal::Offer { sdp: sdp.to_owned() }
}

/// The QR code a computer shows for `url`, drawn as the relay draws it.
pub fn qr_code(url: &str) -> String {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).expect("a link fits a QR code");
    code.render::<qrcode::render::svg::Color>().min_dimensions(176, 176).quiet_zone(true).build()
}
