//! Serving the built frontend: hashed assets are cached forever, the page itself never,
//! and a Content-Security-Policy lets the page load nothing from anywhere else.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tower_http::services::{ServeDir, ServeFile};

/// What the page may load, and from where: this origin only. Scripts are ours plus the
/// inline loader trunk writes into `index.html` (allowed by its hash, not by
/// `'unsafe-inline'`), and WebAssembly compilation; the socket is same-origin `ws(s):`.
/// Chat apps' browsers can be slow to reach CDNs, or blocked from them: we use none.
const POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; \
    img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The headers every page and asset carries.
#[derive(Clone, Debug)]
pub struct Headers {
    content_security_policy: HeaderValue,
    /// Served over HTTPS with a real certificate: say so with `Strict-Transport-Security`.
    strict: bool,
    /// Believe `X-Forwarded-Proto` (a reverse proxy terminates TLS).
    trust_proxy: bool,
}

impl Headers {
    /// The headers for the page `index_html` (empty when not built yet), served over
    /// certified HTTPS (`strict`) or behind a proxy to be believed (`trust_proxy`).
    pub fn for_page(index_html: &str, strict: bool, trust_proxy: bool) -> Self {
        let hashes: String = inline_scripts(index_html)
            .map(|script| {
                format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script)))
            })
            .collect();
        let policy = POLICY.replace("{hashes}", &hashes);
        // Base64 and the fixed text are visible ASCII: the value is always valid.
        let content_security_policy =
            HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"));
        Self { content_security_policy, strict, trust_proxy }
    }
}

/// The text of each `<script>` element without a `src` in `html`, as the browser hashes it.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (tag, rest) = rest.split_once('>')?;
        let (body, _) = rest.split_once("</script>")?;
        (!tag.contains("src=")).then_some(body)
    })
}

/// Files whose name carries a content hash (trunk writes `name-<16 hex digits>.ext`) never
/// change, so browsers may keep them; everything else (the page, room links) must be
/// revalidated so a new release reaches everyone at once.
pub fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    let hashed =
        stem.rsplit_once('-').is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    if hashed { "public, max-age=31536000, immutable" } else { "no-cache" }
}

/// `dist/`, with `.gz` twins served to browsers that accept gzip, and `index.html` for
/// every other path so that `/r/<room>` opens the app.
pub fn service(dir: &Path) -> ServeDir<ServeFile> {
    let index = ServeFile::new(dir.join("index.html")).precompressed_gzip();
    ServeDir::new(dir).precompressed_gzip().fallback(index)
}

/// Middleware setting `Cache-Control` per [`cache_control`], the Content-Security-Policy,
/// and headers that keep the room link (the key to the room) out of `Referer`s and stop
/// content sniffing and framing.
pub async fn set_headers(State(page): State<Arc<Headers>>, request: Request, next: Next) -> Response {
    let cache = cache_control(request.uri().path());
    let strict = page.strict || crate::tls::forwarded_https(request.headers(), page.trust_proxy);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if strict {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(CONTENT_SECURITY_POLICY, page.content_security_policy.clone());
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("microphone=(self), camera=(self), geolocation=(), payment=(), usb=()"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::{Headers, cache_control, inline_scripts};

    #[test]
    fn the_policy_allows_exactly_the_inline_loader_by_hash() {
        let page = "<head><script type=\"module\">\nimport init from '/a.js';\n</script>\
            <script src=\"/b.js\"></script><script>x()</script></head>";
        assert_eq!(inline_scripts(page).collect::<Vec<_>>(), ["\nimport init from '/a.js';\n", "x()"]);
        let policy = Headers::for_page(page, false, false).content_security_policy;
        let policy = policy.to_str().unwrap();
        // echo -n 'x()' | openssl dgst -sha256 -binary | base64
        assert!(policy.contains("'sha256-D6IGS8VMvCoyaR/l0h9tERrBTATY01CoPS7l6xDv0kI='"), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.starts_with("default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-"), "{policy}");
    }

    #[test]
    fn only_content_hashed_files_are_immutable() {
        for path in
            ["/frontend-caf88a76575c5582.js", "/frontend-caf88a76575c5582_bg.wasm", "/main-9ab5bea917425b74.css"]
        {
            assert_eq!(cache_control(path), "public, max-age=31536000, immutable", "{path}");
        }
        for path in
            ["/", "/index.html", "/r/abcdefghijklmnopqrstuvwxyz", "/main-9ab5bea9174.css", "/x-zzzzzzzzzzzzzzzz.js"]
        {
            assert_eq!(cache_control(path), "no-cache", "{path}");
        }
    }
}
