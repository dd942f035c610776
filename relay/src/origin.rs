//! Which pages may open the signaling socket. A browser names the page that opens a
//! WebSocket (`Origin`) and lets any page open one to any site, so without a check any web
//! page could use our relay from its visitors' browsers.
//!
//! With `--allowed-origin`, exactly those origins (and a socket without `Origin` is refused).
//! Without it, the relay's own pages: an `Origin` naming the host the request was sent to
//! (`Host`, or behind a trusted proxy `X-Forwarded-Host`); a page on this machine talking to
//! a relay on this machine (`trunk serve`'s proxy rewrites `Host`); and a client that sends
//! no `Origin` at all, which is no browser (a native app, the Python peer, a bot) and cannot
//! be steered by a web page.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Whether the socket request with `headers` may open, given the configured `allowed`
/// origins (empty: the relay's own).
pub fn allowed(allowed: &[String], headers: &HeaderMap, trust_proxy: bool) -> bool {
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    if !allowed.is_empty() {
        return origin.is_some_and(|origin| allowed.iter().any(|a| a == origin));
    }
    let Some(origin) = origin else { return true };
    let Some(page) = authority(origin) else { return false };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).map(normalized);
    let forwarded = trust_proxy
        .then(|| headers.get("x-forwarded-host")?.to_str().ok()?.rsplit(',').next().map(normalized))
        .flatten();
    host.as_deref() == Some(page.as_str())
        || forwarded.as_deref() == Some(page.as_str())
        || (on_this_machine(&page) && host.as_deref().is_some_and(on_this_machine))
}

/// The `host[:port]` of an origin (`https://call.example.org`), without a default port;
/// `None` for anything else (`null`, a path, another scheme).
fn authority(origin: &str) -> Option<String> {
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.contains(['/', '?', '#', '@'])).then(|| normalized(rest))
}

/// `host[:port]` in lower case, without `:80` or `:443` (a browser leaves them out).
fn normalized(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    match authority.strip_suffix(":443").or_else(|| authority.strip_suffix(":80")) {
        Some(bare) => bare.to_owned(),
        None => authority,
    }
}

/// Whether `authority` names this machine: `localhost`, or a loopback address.
fn on_this_machine(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().expect("a name"), v.parse().expect("a value"))).collect()
    }

    #[test]
    fn by_default_only_the_relays_own_pages_open_sockets() {
        let own = request(&[("host", "call.example.org"), ("origin", "https://call.example.org")]);
        assert!(allowed(&[], &own, false));
        let with_port = request(&[("host", "call.example.org:8443"), ("origin", "https://call.example.org:8443")]);
        assert!(allowed(&[], &with_port, false));
        let default_port = request(&[("host", "call.example.org:443"), ("origin", "https://call.example.org")]);
        assert!(allowed(&[], &default_port, false));
        for origin in
            ["https://evil.example", "https://call.example.org.evil.example", "null", "https://call.example.org/x"]
        {
            let other = request(&[("host", "call.example.org"), ("origin", origin)]);
            assert!(!allowed(&[], &other, false), "{origin}");
        }
    }

    #[test]
    fn clients_without_an_origin_are_no_browser_and_pass() {
        assert!(allowed(&[], &request(&[("host", "call.example.org")]), false));
        assert!(!allowed(&["https://call.example.org".into()], &request(&[("host", "call.example.org")]), false));
    }

    #[test]
    fn behind_a_trusted_proxy_the_forwarded_host_counts() {
        let proxied = request(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "call.example.org"),
            ("origin", "https://call.example.org"),
        ]);
        assert!(allowed(&[], &proxied, true));
        assert!(!allowed(&[], &proxied, false), "a forwarded host is only believed from a trusted proxy");
    }

    #[test]
    fn a_page_on_this_machine_may_use_a_relay_on_this_machine() {
        // `trunk serve` on :8000 proxies /ws to the relay with Host set to the backend.
        let trunk = request(&[("host", "127.0.0.1"), ("origin", "http://localhost:8000")]);
        assert!(allowed(&[], &trunk, false));
        let v6 = request(&[("host", "[::1]:8080"), ("origin", "http://[::1]:8000")]);
        assert!(allowed(&[], &v6, false));
        let remote_page = request(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example")]);
        assert!(!allowed(&[], &remote_page, false));
    }

    #[test]
    fn an_allowed_list_is_exact() {
        let list = ["https://call.example.org".to_owned()];
        assert!(allowed(&list, &request(&[("host", "relay.internal"), ("origin", "https://call.example.org")]), false));
        assert!(!allowed(&list, &request(&[("host", "relay.internal"), ("origin", "https://relay.internal")]), false));
    }
}
