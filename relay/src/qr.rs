//! `GET /qr/<room>.svg`: a room's link as a QR code, for a computer's screen to hand the call
//! to a phone's camera. Drawn here rather than in the page: the encoder was 24 KB of the wasm
//! (12 KB over the wire) that every phone loaded and none shows.

use axum::extract::{Path, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qrcode::render::svg;
use shared::room::RoomId;

/// The QR code of `<scheme>://<host>/r/<room>`, the link as the browser that asks sees it
/// (its `Host`, the scheme it came over). Anything but a well-formed room id is 404; a
/// host that is no host name is 400.
pub async fn room_code(Path(file): Path<String>, https: bool, trust_proxy: bool, request: Request) -> Response {
    let Some(room) = file.strip_suffix(".svg").and_then(|id| RoomId::parse(id).ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let headers = request.headers();
    // HTTP/2 carries the host as the request's authority, HTTP/1.1 as `Host`.
    let host = request.uri().authority().map(|a| a.as_str()).or_else(|| headers.get(HOST)?.to_str().ok());
    let Some(host) = host.filter(|host| is_host(host)) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let secure = https || crate::tls::forwarded_https(headers, trust_proxy);
    let url = format!("{}://{host}/r/{room}", if secure { "https" } else { "http" });
    let Some(code) = draw(&url) else { return StatusCode::BAD_REQUEST.into_response() };
    let mut response = code.into_response();
    set(response.headers_mut());
    response
}

/// The link as an SVG QR code, 176 px or more, with its quiet zone; medium error correction
/// survives a glare on a screen.
fn draw(url: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).ok()?;
    Some(code.render::<svg::Color>().min_dimensions(176, 176).quiet_zone(true).build())
}

fn set(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    // The code is the room's link: only for whoever already has it, and the room ends.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// A host name or address with an optional port, as it may appear in a link.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::is_host;

    #[test]
    fn only_host_names_and_addresses_make_a_link() {
        for host in ["example.com", "call.example.com:8443", "127.0.0.1:8080", "[::1]:8080", "localhost"] {
            assert!(is_host(host), "{host}");
        }
        for host in ["", "a b", "evil.com/phish?", "x@y", "a\"b", &"a".repeat(256)] {
            assert!(!is_host(host), "{host}");
        }
    }
}
