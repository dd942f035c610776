//! The built frontend as browsers get it: the brotli or gzip twin of each file by
//! `Accept-Encoding`, the file itself to a client that takes neither.

mod common;

use common::{Http, Relay, TestResult};
use hyper::Version;
use tokio::net::TcpStream;

/// A `dist/` of fake files: each twin's bytes say which it is (the relay never looks
/// inside them); the stylesheet has a gzip twin only.
fn dist() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (name, content) in [
        ("index.html", "<!doctype html><title>page</title>"),
        ("index.html.br", "page, brotli"),
        ("index.html.gz", "page, gzip"),
        ("app-0123456789abcdef.js", "export const app = 1;"),
        ("app-0123456789abcdef.js.br", "app, brotli"),
        ("app-0123456789abcdef.js.gz", "app, gzip"),
        ("main-0123456789abcdef.css", "body{}"),
        ("main-0123456789abcdef.css.gz", "style, gzip"),
    ] {
        std::fs::write(dir.path().join(name), content)?;
    }
    Ok(dir)
}

#[tokio::test]
async fn each_browser_gets_the_twin_it_accepts() -> TestResult {
    let dist = dist()?;
    let relay = Relay::serving(dist.path(), &[]).await?;
    let mut http = Http::over(TcpStream::connect(relay.addr).await?, Version::HTTP_11).await?;
    let chrome = "gzip, deflate, br, zstd";
    for (path, accepted, encoding, body) in [
        ("/app-0123456789abcdef.js", Some("br"), Some("br"), "app, brotli"),
        ("/app-0123456789abcdef.js", Some(chrome), Some("br"), "app, brotli"),
        ("/app-0123456789abcdef.js", Some("gzip"), Some("gzip"), "app, gzip"),
        ("/app-0123456789abcdef.js", Some("br;q=0.5, gzip"), Some("gzip"), "app, gzip"),
        ("/app-0123456789abcdef.js", None, None, "export const app = 1;"),
        ("/app-0123456789abcdef.js", Some("identity"), None, "export const app = 1;"),
        // No brotli twin: gzip, for a browser that takes both.
        ("/main-0123456789abcdef.css", Some(chrome), Some("gzip"), "style, gzip"),
        // The page, and a room link that falls back to it.
        ("/", Some(chrome), Some("br"), "page, brotli"),
        ("/r/abcdefghijklmnopqrstuvwxyz", Some(chrome), Some("br"), "page, brotli"),
        ("/r/abcdefghijklmnopqrstuvwxyz", Some("gzip"), Some("gzip"), "page, gzip"),
        ("/r/abcdefghijklmnopqrstuvwxyz", None, None, "<!doctype html><title>page</title>"),
    ] {
        let headers: Vec<_> = accepted.map(|accepted| ("accept-encoding", accepted)).into_iter().collect();
        let response = http.get(path, &headers).await?;
        let case = format!("{path} with {accepted:?}");
        assert_eq!(response.status(), 200, "{case}");
        let content_encoding = response.headers().get("content-encoding").map(|v| v.to_str()).transpose()?;
        assert_eq!(content_encoding, encoding, "{case}");
        assert_eq!(response.body(), body.as_bytes(), "{case}");
        // A cache between must not hand one browser's encoding to another.
        assert_eq!(response.headers()["vary"], "accept-encoding", "{case}");
    }
    relay.stop().await
}

#[tokio::test]
async fn a_room_link_as_a_qr_code_for_the_scheme_and_host_it_was_asked_on() -> TestResult {
    let room = "abcdefghijklmnopqrstuvwxyz";
    let path = format!("/qr/{room}.svg");
    let relay = Relay::start(&["--trust-proxy"]).await?;
    let mut http = Http::over(TcpStream::connect(relay.addr).await?, Version::HTTP_11).await?;
    let code = http.get(&path, &[]).await?;
    assert_eq!(code.status(), 200);
    assert_eq!(code.headers()["content-type"], "image/svg+xml");
    assert_eq!(code.headers()["content-security-policy"], "default-src 'none'");
    assert_eq!(code.body(), common::qr_code(&format!("http://localhost/r/{room}")).as_bytes());
    // Behind a proxy that took HTTPS.
    let code = http.get(&path, &[("x-forwarded-proto", "https")]).await?;
    assert_eq!(code.body(), common::qr_code(&format!("https://localhost/r/{room}")).as_bytes());
    // No code for what is no room.
    for path in ["/qr/abc.svg", &format!("/qr/{room}.png"), &format!("/qr/{room}"), "/qr/..%2Fetc.svg"] {
        assert_eq!(http.get(path, &[]).await?.status(), 404, "{path}");
    }
    relay.stop().await
}
