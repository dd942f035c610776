//! Serving the built frontend: hashed assets are cached forever, the page itself never,
//! and a Content-Security-Policy lets the page load nothing from anywhere else.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tower_http::services::{ServeDir, ServeFile};

/// What the page may load, and from where: this origin only. Scripts are ours plus the
/// inline loader trunk writes into `index.html`, and WebAssembly compilation; styles are
/// ours plus the inline `<style>` of the first paint; inline ones are allowed by their
/// hashes (`{scripts}`, `{styles}`), never by `'unsafe-inline'`. The socket is same-origin
/// `ws(s):`. Chat apps' browsers can be slow to reach CDNs, or blocked from them: we use none.
const POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{scripts}; style-src 'self'{styles}; \
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
        let policy = POLICY
            .replace("{scripts}", &hashes(inline(index_html, "script")))
            .replace("{styles}", &hashes(inline(index_html, "style")));
        // Base64 and the fixed text are visible ASCII: the value is always valid.
        let content_security_policy =
            HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"));
        Self { content_security_policy, strict, trust_proxy }
    }
}

/// The text of each `<element>` (`script`, `style`) without a `src` in `html`, as the
/// browser hashes it.
fn inline<'a>(html: &'a str, element: &str) -> impl Iterator<Item = &'a str> {
    let (open, close) = (format!("<{element}"), format!("</{element}>"));
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let (tag, after) = rest.split_once(open.as_str())?.1.split_once('>')?;
            rest = after;
            // `<styles>` or `<script-x>` is another element.
            if !tag.chars().next().is_none_or(char::is_whitespace) {
                continue;
            }
            let (body, after) = rest.split_once(close.as_str())?;
            rest = after;
            if !tag.contains("src=") {
                return Some(body);
            }
        }
    })
}

/// ` 'sha256-<base64>'` for each of `texts`, as a CSP source list names them.
fn hashes<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    texts
        .map(|text| format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text))))
        .collect()
}

/// Files whose name carries a content hash never change, so browsers may keep them;
/// everything else (the page, room links) must be revalidated so a new release reaches
/// everyone at once. Trunk names its files `name-<hash>.ext`, the hash a 64-bit number in
/// hex without leading zeros (so one build in sixteen has 15 digits; fewer than 12, one in
/// 65,536, is taken for no hash); scripts/split_wasm.sh names its own with 16.
pub fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    let hashed = stem
        .rsplit_once('-')
        .is_some_and(|(_, hash)| (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    if hashed { "public, max-age=31536000, immutable" } else { "no-cache" }
}

/// `dist/`, with `.br` and `.gz` twins chosen by `Accept-Encoding` (brotli when a browser
/// takes both, as every current one does over HTTPS: a fifth fewer bytes for the wasm), and
/// `index.html` for every other path so that `/r/<room>` opens the app.
pub fn service(dir: &Path) -> ServeDir<ServeFile> {
    let index = ServeFile::new(dir.join("index.html")).precompressed_br().precompressed_gzip();
    ServeDir::new(dir).precompressed_br().precompressed_gzip().fallback(index)
}

/// Middleware setting `Cache-Control` per [`cache_control`], `Vary: Accept-Encoding` (the
/// bytes depend on it: a cache must not hand brotli to a browser that asked for gzip), the
/// Content-Security-Policy, and headers that keep the room link (the key to the room) out
/// of `Referer`s and stop content sniffing and framing.
pub async fn set_headers(State(page): State<Arc<Headers>>, request: Request, next: Next) -> Response {
    let cache = cache_control(request.uri().path());
    let strict = page.strict || crate::tls::forwarded_https(request.headers(), page.trust_proxy);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if strict {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(VARY, HeaderValue::from_name(ACCEPT_ENCODING));
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
    use super::{Headers, cache_control, inline};

    #[test]
    fn the_policy_allows_exactly_the_inline_loader_by_hash() {
        let page = "<head><script type=\"module\">\nimport init from '/a.js';\n</script>\
            <script src=\"/b.js\"></script><script>x()</script></head>";
        assert_eq!(inline(page, "script").collect::<Vec<_>>(), ["\nimport init from '/a.js';\n", "x()"]);
        let policy = Headers::for_page(page, false, false).content_security_policy;
        let policy = policy.to_str().unwrap();
        // echo -n 'x()' | openssl dgst -sha256 -binary | base64
        assert!(policy.contains("'sha256-D6IGS8VMvCoyaR/l0h9tERrBTATY01CoPS7l6xDv0kI='"), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.starts_with("default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-"), "{policy}");
        assert!(policy.contains("; style-src 'self'; "), "no inline style, none allowed: {policy}");
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_styles_by_hash() {
        let page = "<head><style>body{margin:0}</style><link rel=\"stylesheet\" href=\"/main.css\">\
            <style media=\"screen\">\n.join{}\n</style><styles>not a style</styles><script>x()</script></head>";
        assert_eq!(inline(page, "style").collect::<Vec<_>>(), ["body{margin:0}", "\n.join{}\n"]);
        let policy = Headers::for_page(page, false, false).content_security_policy;
        let policy = policy.to_str().unwrap();
        let style_src = policy.split("; ").find(|directive| directive.starts_with("style-src ")).unwrap();
        // echo -n 'body{margin:0}' | openssl dgst -sha256 -binary | base64
        assert!(style_src.contains("'sha256-IAdwN3biDCQ3brrgp1m8kBEsPQYyqfREKOEfeoREopc='"), "{policy}");
        assert_eq!(style_src.matches("'sha256-").count(), 2, "{policy}");
        assert!(style_src.starts_with("style-src 'self' 'sha256-"), "{policy}");
        // Each list holds its own elements' hashes: the script's is not a style's.
        assert_eq!(policy.matches("'sha256-").count(), 3, "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }

    #[test]
    fn only_content_hashed_files_are_immutable() {
        for path in [
            "/frontend-caf88a76575c5582.js",
            "/frontend-caf88a76575c5582_bg.wasm",
            "/main-9ab5bea917425b74.css",
            "/frontend-c73a2dd2ed28fcf.js",
            "/split_call-a6b2a6e5085b88b9.wasm",
            "/__wasm_split-0921600954073612.js",
        ] {
            assert_eq!(cache_control(path), "public, max-age=31536000, immutable", "{path}");
        }
        for path in
            ["/", "/index.html", "/r/abcdefghijklmnopqrstuvwxyz", "/main-9ab5bea91.css", "/x-zzzzzzzzzzzzzzzz.js"]
        {
            assert_eq!(cache_control(path), "no-cache", "{path}");
        }
    }
}
