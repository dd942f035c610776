//! The first-load benchmark (issue 13): how heavy the page is, and how soon a person who
//! taps a link on a phone network can press Join. It prints figures and judges none.
//!
//! Run through `bash scripts/first_load.sh`, which builds `dist/` as it ships first. It
//! prints, per asset of `dist/`, its raw, gzip (-9) and brotli (quality 11) sizes (the `.gz`
//! and `.br` twins the relay serves, computed where there is none); then, for plain HTTP,
//! HTTPS, and HTTPS with Chromium's HTTP/2 turned off, and for the room link and the home
//! page, five cold opens each in a fresh Chromium (phone emulation, empty profile) through
//! [`e2e::phone_network`] (Lighthouse's mobile profile, with a round trip for each TCP and
//! TLS handshake), and the median and every sample of:
//!
//! - `html`: the document's `responseEnd`;
//! - `first paint`: `first-contentful-paint`;
//! - `tap works`: when the page's button (Join on the room page, create a room on the home
//!   page) is first in the document, visible and enabled: the first paint's (`data-boot-tap`,
//!   a tap on which the app carries out once it runs; `e2e/tests/reach.rs` proves it) or the
//!   app's, whichever comes first;
//! - `app ready`: when the app's own button is, i.e. when the app runs;
//! - `Join → in room` (room page): from a tap on the app's Join, once the rest is measured,
//!   to waiting in the room: the call's part of the wasm (which the first load leaves out),
//!   the microphone, the signaling socket, joining;
//!
//!   both seen by a script the page runs on every animation frame, so no WebDriver round trip
//!   counts;
//! - what the page transferred (Resource Timing's `transferSize`, headers included, and
//!   `encodedBodySize`), the protocol the document came over (`nextHopProtocol`), and how
//!   many connections the browser opened (a speculative one it then left unused counts).
//!
//! Every time is in milliseconds since the navigation started. It fails only when something
//! breaks: a relay that does not serve the page, a button missing after 30 s.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use e2e::phone_network::{LIGHTHOUSE_MOBILE, PhoneNetwork};
use e2e::{ANDROID_CHROME, Browser, ChromeDriver, Error, Profile, Relay, Result, median, workspace_root};
use serde_json::{Value, json};
use shared::room::RoomId;

/// Cold opens per page and protocol.
const OPENS: usize = 5;

/// How long a page may take to show its button before the run fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// How long after the button a first contentful paint may still be reported.
const PAINT_PATIENCE: Duration = Duration::from_secs(5);

/// How the browser reaches the relay.
struct Transport {
    /// In the table.
    name: &'static str,
    /// In `BENCH` lines.
    slug: &'static str,
    /// Through the relay serving HTTPS.
    https: bool,
    /// Chromium's extra flags.
    flags: &'static [&'static str],
}

const TRANSPORTS: [Transport; 3] = [
    Transport { name: "HTTP", slug: "http", https: false, flags: &[] },
    // The certificate is a throwaway self-signed one.
    Transport { name: "HTTPS", slug: "https", https: true, flags: &["--ignore-certificate-errors"] },
    Transport {
        name: "HTTPS, no h2",
        slug: "https-no-h2",
        https: true,
        flags: &["--ignore-certificate-errors", "--disable-http2"],
    },
];

/// A page a person opens first, and the button that makes it usable.
struct Page {
    name: &'static str,
    path: String,
    button: &'static str,
}

/// One cold open.
struct Open {
    html: f64,
    first_paint: Option<f64>,
    tap_works: f64,
    ready: f64,
    /// From a tap on the app's Join to waiting in the room (room page only).
    in_room: Option<f64>,
    transferred: u64,
    bodies: u64,
    protocol: String,
    connections: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    e2e::exit_code("first-load", run().await)
}

async fn run() -> Result<()> {
    print!("{}", asset_table(&workspace_root().join("dist"))?);

    let certificate = tempfile::tempdir()?;
    let (cert, key) = self_signed_certificate(certificate.path())?;
    let plain = Relay::start(&[]).await?;
    let secure = Relay::start(&["--tls-cert", &cert, "--tls-key", &key]).await?;
    let networks = [
        PhoneNetwork::start(([127, 0, 0, 1], plain.port()).into(), LIGHTHOUSE_MOBILE).await?,
        PhoneNetwork::start(([127, 0, 0, 1], secure.port()).into(), LIGHTHOUSE_MOBILE).await?,
    ];
    let driver = ChromeDriver::start().await?;

    // Any well-formed id shows the room page and its Join button; nobody is in the room.
    let room = RoomId::from_random(std::array::from_fn(|i| i as u8 * 7));
    let pages = [
        Page { name: "room", path: format!("/r/{room}"), button: "join" },
        Page { name: "home", path: "/".into(), button: "create-room" },
    ];

    let conditions = LIGHTHOUSE_MOBILE;
    let mut table = format!(
        "\nFirst open on a phone network: {} ms round trip, {} Mbit/s down, {} kbit/s up, a round trip per TCP and \
         TLS handshake, cold cache.\nMedians of {OPENS} opens, each in a fresh Chromium; times in ms from the start \
         of the navigation.\n{:<5} {:<13} {:<9} {:>11} {:>5} {:>11} {:>9} {:>9} {:>15} {:>14}\n",
        conditions.rtt.as_millis(),
        conditions.down_bits_per_second / 1e6,
        conditions.up_bits_per_second / 1e3,
        "page",
        "served over",
        "protocol",
        "connections",
        "html",
        "first paint",
        "tap works",
        "app ready",
        "KiB transferred",
        "Join → in room",
    );
    let mut bench = String::new();
    for page in &pages {
        for transport in &TRANSPORTS {
            let (relay, network) = if transport.https { (&secure, &networks[1]) } else { (&plain, &networks[0]) };
            let url = through(relay, network, &page.path)?;
            let mut opens = Vec::new();
            for n in 1..=OPENS {
                let open = open_cold(&driver, network, transport, &url, page.button).await?;
                eprintln!(
                    "{} over {}, open {n}/{OPENS}: tap works at {:.0} ms, app ready at {:.0} ms ({})",
                    page.name, transport.name, open.tap_works, open.ready, open.protocol
                );
                opens.push(open);
            }
            let summary = Summary::of(&opens);
            writeln!(
                table,
                "{:<5} {:<13} {:<9} {:>11} {:>5} {:>11} {:>9} {:>9} {:>15.1} {:>14}",
                page.name,
                transport.name,
                summary.protocols,
                summary.connections,
                summary.html,
                summary.first_paint.map_or("-".into(), |ms| ms.to_string()),
                summary.tap_works,
                summary.ready,
                kib(summary.transferred),
                summary.in_room.map_or("-".into(), |ms| ms.to_string()),
            )
            .expect("writing to a String");
            writeln!(
                bench,
                "BENCH first-open {} over {} ({}, {} connections): html {} ms, first paint {}, tap works {} ms, \
                 app ready {} ms, {:.1} KiB transferred ({:.1} KiB bodies), Join to in the room {}; samples: html {:?}, \
                 first paint {:?}, tap works {:?}, app ready {:?}, Join to in the room {:?}",
                page.name,
                transport.slug,
                summary.protocols,
                summary.connections,
                summary.html,
                summary.first_paint.map_or("none".into(), |ms| format!("{ms} ms")),
                summary.tap_works,
                summary.ready,
                kib(summary.transferred),
                kib(summary.bodies),
                summary.in_room.map_or("-".into(), |ms| format!("{ms} ms")),
                rounded(opens.iter().map(|o| o.html)),
                rounded(opens.iter().filter_map(|o| o.first_paint)),
                rounded(opens.iter().map(|o| o.tap_works)),
                rounded(opens.iter().map(|o| o.ready)),
                rounded(opens.iter().filter_map(|o| o.in_room)),
            )
            .expect("writing to a String");
        }
    }
    print!("{table}\n{bench}");
    Ok(())
}

/// The sizes of `dist/`'s assets, raw and compressed, as a table and `BENCH` lines.
fn asset_table(dist: &Path) -> Result<String> {
    const KINDS: [&str; 4] = ["html", "js", "wasm", "css"];
    let mut assets = Vec::new();
    for entry in std::fs::read_dir(dist)? {
        let path = entry?.path();
        let kind = path.extension().and_then(|e| e.to_str()).and_then(|e| KINDS.iter().position(|k| *k == e));
        if let (Some(kind), Some(name)) = (kind, path.file_name().and_then(|n| n.to_str())) {
            assets.push((kind, name.to_owned(), path.clone()));
        }
    }
    if assets.is_empty() {
        return Err(Error::Missing(format!("no assets in {}: run `bash scripts/first_load.sh`", dist.display())));
    }
    assets.sort();

    let mut computed = Vec::new();
    let mut out =
        format!("The assets of dist/, KiB:\n{:<40} {:>9} {:>9} {:>9}\n", "asset", "raw", "gzip -9", "brotli 11");
    let mut bench = String::new();
    let mut totals = [0u64; 3];
    for (_, name, path) in &assets {
        // scripts/split_wasm.sh's split modules come at the first tap that needs them.
        let later = name.starts_with("split_");
        let raw = std::fs::read(path)?;
        let mut twin = |extension: &str, compress: fn(&[u8]) -> Result<u64>| -> Result<u64> {
            let twin = path.with_file_name(format!("{name}.{extension}"));
            match std::fs::metadata(&twin) {
                Ok(metadata) => Ok(metadata.len()),
                Err(_) => {
                    computed.push(format!("{name}.{extension}"));
                    compress(&raw)
                }
            }
        };
        let sizes = [raw.len() as u64, twin("gz", gzip)?, twin("br", brotli)?];
        if !later {
            for (total, size) in totals.iter_mut().zip(sizes) {
                *total += size;
            }
        }
        let when = if later { " (at the first tap)" } else { "" };
        writeln!(out, "{name:<40} {:>9.1} {:>9.1} {:>9.1}{when}", kib(sizes[0]), kib(sizes[1]), kib(sizes[2]))
            .expect("writing to a String");
        writeln!(
            bench,
            "BENCH first-open asset {name}{when}: raw {} B, gzip {} B, brotli {} B",
            sizes[0], sizes[1], sizes[2]
        )
        .expect("writing to a String");
    }
    let total = "total of the first load";
    writeln!(out, "{total:<40} {:>9.1} {:>9.1} {:>9.1}", kib(totals[0]), kib(totals[1]), kib(totals[2]))
        .expect("writing to a String");
    if !computed.is_empty() {
        writeln!(out, "(no twin in dist/, computed here: {})", computed.join(", ")).expect("writing to a String");
    }
    writeln!(
        bench,
        "BENCH first-open assets total of the first load: raw {} B, gzip {} B, brotli {} B",
        totals[0], totals[1], totals[2]
    )
    .expect("writing to a String");
    Ok(out + &bench)
}

/// The size of `data` compressed as `gzip -9` does.
fn gzip(data: &[u8]) -> Result<u64> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?.len() as u64)
}

/// The size of `data` compressed as `brotli -q 11` does.
fn brotli(mut data: &[u8]) -> Result<u64> {
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
    let mut compressed = Vec::new();
    brotli::BrotliCompress(&mut data, &mut compressed, &params)?;
    Ok(compressed.len() as u64)
}

/// Writes a self-signed certificate for `localhost` and `127.0.0.1` and its key as PEM
/// files into `dir`; returns their paths.
fn self_signed_certificate(dir: &Path) -> Result<(String, String)> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| Error::Unexpected(format!("cannot make a certificate: {e}")))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    Ok((cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned()))
}

/// `relay`'s URL for `path`, reached through `network`.
fn through(relay: &Relay, network: &PhoneNetwork, path: &str) -> Result<String> {
    let mut url = url::Url::parse(&relay.url(path)).map_err(|e| Error::Unexpected(e.to_string()))?;
    url.set_port(Some(network.addr().port())).map_err(|()| Error::Unexpected(format!("no port in {url}")))?;
    Ok(url.into())
}

/// Stores `performance.now()` in `window.__firstOpenReady` on the first animation frame on
/// which the app's button `APP` is in the document, visible and enabled, and in
/// `window.__firstOpenTappable` on the first on which it or the first paint's `BOOT` is;
/// and, for [`tap_to_in_room`], when the page is first tapped and first waits in the room.
const READY_SCRIPT: &str = r#"(() => {
    const usable = (selector) => {
        const button = document.querySelector(selector);
        if (!button || button.disabled || button.getAttribute('aria-disabled') === 'true') return false;
        const box = button.getBoundingClientRect();
        return box.width > 0 && box.height > 0
            && button.checkVisibility({ opacityProperty: true, visibilityProperty: true });
    };
    const watch = (selector, key) => {
        const poll = () => {
            if (usable(selector)) window[key] ??= performance.now();
            else requestAnimationFrame(poll);
        };
        requestAnimationFrame(poll);
    };
    watch(BOOT, '__firstOpenTappable');
    watch(APP, '__firstOpenTappable');
    watch(APP, '__firstOpenReady');
    addEventListener('click', () => { window.__firstOpenTap ??= performance.now(); }, true);
    watch('[data-testid="call-state"][data-state="waiting"]', '__firstOpenInRoom');
})();"#;

/// What the page measured, once it is ready and loaded.
const MEASURED: &str = r#"const nav = performance.getEntriesByType('navigation')[0];
    const entries = [nav, ...performance.getEntriesByType('resource')].filter(Boolean);
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    return {
        ready: window.__firstOpenReady ?? null,
        tap_works: window.__firstOpenTappable ?? null,
        loaded: document.readyState === 'complete',
        html: nav ? nav.responseEnd : null,
        first_paint: paint ? paint.startTime : null,
        protocol: nav ? nav.nextHopProtocol : '',
        transferred: entries.reduce((sum, e) => sum + e.transferSize, 0),
        bodies: entries.reduce((sum, e) => sum + e.encodedBodySize, 0),
    };"#;

/// Opens `url` in a fresh Chromium on the phone network and measures it, `button` being
/// the `data-testid` of what makes the page usable.
async fn open_cold(
    driver: &ChromeDriver,
    network: &PhoneNetwork,
    transport: &Transport,
    url: &str,
    button: &str,
) -> Result<Open> {
    let profile = Profile {
        flags: transport.flags.iter().map(|flag| flag.to_string()).collect(),
        phone: Some(ANDROID_CHROME.into()),
        ..Profile::default()
    };
    let browser = driver.browser_as(profile).await?;
    network.throttle(&browser).await?;
    let selector = |attribute: &str| json!(format!("[{attribute}=\"{button}\"]")).to_string();
    let script = READY_SCRIPT.replace("APP", &selector("data-testid")).replace("BOOT", &selector("data-boot-tap"));
    browser.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": script })).await?;
    let connections = network.connections();
    browser.open(url).await?;
    let origin = url::Url::parse(url).map_err(|e| Error::Unexpected(e.to_string()))?.origin().ascii_serialization();
    let shown = browser.script("return location.origin").await?;
    if shown != json!(origin) {
        return Err(Error::Unexpected(format!(
            "the relay did not serve {url}: the browser shows {shown} (is the relay up, is dist/ built?)"
        )));
    }
    let measured = measured_once_ready(&browser, url, button).await?;
    let in_room = match button {
        "join" => Some(tap_to_in_room(&browser, url).await?),
        _ => None,
    };
    browser.close().await?;
    let number = |key: &str| measured[key].as_f64();
    let missing = |what: &str| Error::Unexpected(format!("no {what} in the page's timing at {url}: {measured}"));
    Ok(Open {
        html: number("html").ok_or_else(|| missing("navigation entry"))?,
        first_paint: number("first_paint"),
        tap_works: number("tap_works").ok_or_else(|| missing("time a tap works"))?,
        ready: number("ready").ok_or_else(|| missing("ready time"))?,
        in_room,
        transferred: number("transferred").unwrap_or_default() as u64,
        bodies: number("bodies").unwrap_or_default() as u64,
        protocol: measured["protocol"].as_str().unwrap_or_default().to_owned(),
        connections: network.connections() - connections,
    })
}

/// Taps the app's Join (once the first load is measured) and returns how long it took
/// until the page waited in the room: the call's part of the wasm, the microphone, the
/// signaling socket and joining, in ms.
async fn tap_to_in_room(browser: &Browser, url: &str) -> Result<f64> {
    browser.click("join").await?;
    let start = std::time::Instant::now();
    loop {
        let took = browser.script("return window.__firstOpenInRoom - window.__firstOpenTap;").await?;
        if let Some(ms) = took.as_f64().filter(|ms| ms.is_finite()) {
            return Ok(ms);
        }
        if start.elapsed() > PATIENCE {
            return Err(Error::Timeout { what: format!("waiting in the room after Join at {url}"), after: PATIENCE });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page's button has been usable, the page has loaded and its first
/// contentful paint is reported (which comes once the frame is on screen, or never for a
/// page that paints no content: at most [`PAINT_PATIENCE`] later); returns [`MEASURED`].
async fn measured_once_ready(browser: &Browser, url: &str, button: &str) -> Result<Value> {
    let start = std::time::Instant::now();
    let mut ready_since = None;
    loop {
        let measured = browser.script(MEASURED).await?;
        if measured["ready"].is_number() && measured["loaded"] == json!(true) {
            let since = *ready_since.get_or_insert_with(std::time::Instant::now);
            if measured["first_paint"].is_number() || since.elapsed() > PAINT_PATIENCE {
                return Ok(measured);
            }
        }
        if start.elapsed() > PATIENCE {
            return Err(Error::Timeout {
                what: format!("the button data-testid={button} to be visible and enabled at {url} ({measured})"),
                after: PATIENCE,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The medians of some opens, in whole milliseconds and bytes.
struct Summary {
    html: u128,
    /// None when no open reported a contentful paint.
    first_paint: Option<u128>,
    tap_works: u128,
    ready: u128,
    /// None for a page without Join.
    in_room: Option<u128>,
    transferred: u64,
    bodies: u64,
    connections: usize,
    /// Every protocol the documents came over.
    protocols: String,
}

impl Summary {
    fn of(opens: &[Open]) -> Self {
        let ms = |values: Vec<f64>| median(values.into_iter().map(|ms| Duration::from_secs_f64(ms / 1e3)).collect());
        let ms = |values: Vec<f64>| ms(values).as_millis();
        let paints: Vec<f64> = opens.iter().filter_map(|o| o.first_paint).collect();
        let mut protocols: Vec<&str> = opens.iter().map(|o| o.protocol.as_str()).collect();
        protocols.sort();
        protocols.dedup();
        let middle = |mut values: Vec<u64>| {
            values.sort();
            values.get(values.len() / 2).copied().unwrap_or_default()
        };
        Self {
            html: ms(opens.iter().map(|o| o.html).collect()),
            first_paint: (!paints.is_empty()).then(|| ms(paints)),
            tap_works: ms(opens.iter().map(|o| o.tap_works).collect()),
            ready: ms(opens.iter().map(|o| o.ready).collect()),
            in_room: opens.iter().map(|o| o.in_room).collect::<Option<Vec<_>>>().map(ms),
            transferred: middle(opens.iter().map(|o| o.transferred).collect()),
            bodies: middle(opens.iter().map(|o| o.bodies).collect()),
            connections: middle(opens.iter().map(|o| o.connections as u64).collect()) as usize,
            protocols: protocols.join("/"),
        }
    }
}

/// Bytes in KiB.
fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// Milliseconds, rounded.
fn rounded(values: impl Iterator<Item = f64>) -> Vec<u64> {
    values.map(|v| v.round() as u64).collect()
}
