//! Serving the built frontend: hashed assets are cached forever, the page itself never.

use std::path::Path;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::services::{ServeDir, ServeFile};

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

/// Middleware setting `Cache-Control` per [`cache_control`].
pub async fn set_cache_control(request: Request, next: Next) -> Response {
    let policy = cache_control(request.uri().path());
    let mut response = next.run(request).await;
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    response
}

#[cfg(test)]
mod tests {
    use super::cache_control;

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
