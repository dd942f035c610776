//! One person's browser, whichever engine it runs: the WebDriver session and what a test
//! reads from and does to our page through it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::bidi::Bidi;
use crate::{Error, Result, until, workspace_root};

/// What a page shows of one remote participant (`data-testid="peer"`).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// `data-peer-id`.
    pub id: u32,
    /// `data-bytes-received`: audio RTP payload bytes from this peer.
    pub bytes_received: u64,
    /// `data-bytes-sent`: audio RTP payload bytes to this peer.
    pub bytes_sent: u64,
    /// `data-audio-level`: RMS level heard from this peer over the last second.
    pub level: f64,
    /// `data-path`: the type of our candidate on the selected pair (`host`, `relay`...).
    pub path: String,
    /// `data-link`: the state of the connection to them (`connecting`, `connected`...).
    pub link: String,
}

/// A new WebDriver session at the driver on `url`, with `capabilities` (a JSON object).
pub(crate) async fn session(url: &str, capabilities: Value) -> Result<Client> {
    let Value::Object(capabilities) = capabilities else {
        return Err(Error::Unexpected(format!("capabilities must be an object: {capabilities}")));
    };
    Ok(ClientBuilder::new(HttpConnector::new()).capabilities(capabilities).connect(url).await?)
}

/// One person's browser.
pub struct Browser {
    client: Client,
    /// WebDriver BiDi, where the session has it (Firefox): the console and the viewport.
    bidi: Option<Bidi>,
    /// What must outlive the session: the profile folder, a driver process of its own.
    _keep: Box<dyn Send + Sync>,
}

/// How long a step of the story may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

impl Browser {
    /// A browser driven through `client`; `keep` lives as long as it does.
    pub(crate) fn new(client: Client, keep: impl Send + Sync + 'static) -> Self {
        Self { client, bidi: None, _keep: Box::new(keep) }
    }

    /// This browser, with the BiDi connection to its session.
    pub(crate) fn with_bidi(self, bidi: Bidi) -> Self {
        Self { bidi: Some(bidi), ..self }
    }

    /// The errors the page wrote to the console: every one since the session started
    /// (through BiDi), or since the last call (Chromium's `browser` log).
    pub async fn console_errors(&self) -> Result<Vec<String>> {
        if let Some(bidi) = &self.bidi {
            return Ok(bidi.errors());
        }
        let entries = self.client.issue_cmd(Extension { path: "se/log", body: json!({ "type": "browser" }) }).await?;
        let severe = entries.as_array().into_iter().flatten().filter(|entry| entry["level"] == "SEVERE");
        Ok(severe.map(|entry| entry["message"].as_str().unwrap_or_default().to_owned()).collect())
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) -> Result<()> {
        Ok(self.client.goto(url).await?)
    }

    /// Reloads the page.
    pub async fn reload(&self) -> Result<()> {
        Ok(self.client.refresh().await?)
    }

    fn testid(id: &str) -> String {
        format!("[data-testid=\"{id}\"]")
    }

    /// The element `data-testid=id`, waiting for it to appear.
    async fn element(&self, id: &str) -> Result<fantoccini::elements::Element> {
        Ok(self.client.wait().at_most(PATIENCE).for_element(Locator::Css(&Self::testid(id))).await?)
    }

    /// Clicks the element `data-testid=id`, waiting for it to appear.
    pub async fn click(&self, id: &str) -> Result<()> {
        Ok(self.element(id).await?.click().await?)
    }

    /// An attribute of the element `data-testid=id`, waiting for it to appear.
    pub async fn attr(&self, id: &str, name: &str) -> Result<Option<String>> {
        Ok(self.element(id).await?.attr(name).await?)
    }

    /// The `value` of the input `data-testid=id`.
    pub async fn value(&self, id: &str) -> Result<String> {
        Ok(self.element(id).await?.prop("value").await?.unwrap_or_default())
    }

    /// Types `text` into the input `data-testid=id` in place of what it held, then presses
    /// Enter (which commits a field's change).
    pub async fn type_into(&self, id: &str, text: &str) -> Result<()> {
        let input = self.element(id).await?;
        input.clear().await?;
        Ok(input.send_keys(&format!("{text}\u{E007}")).await?)
    }

    /// The call state shown (`data-state` of `call-state`).
    pub async fn call_state(&self) -> Result<String> {
        Ok(self.attr("call-state", "data-state").await?.unwrap_or_default())
    }

    /// Waits until the call state is `state`; returns how long that took.
    pub async fn wait_state(&self, state: &str) -> Result<Duration> {
        self.wait_state_for(state, PATIENCE).await
    }

    /// Waits up to `patience` until the call state is `state`; returns how long that took.
    pub async fn wait_state_for(&self, state: &str, patience: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < patience {
            last = self.call_state().await?;
            if last == state {
                return Ok(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Error::Timeout { what: format!("call state {state} (still {last})"), after: patience })
    }

    /// The remote participants as the page shows them.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>> {
        let script = r#"return [...document.querySelectorAll('[data-testid="peer"]')].map(e => [
            e.dataset.peerId, e.dataset.bytesReceived, e.dataset.bytesSent, e.dataset.audioLevel, e.dataset.path,
            e.dataset.link])"#;
        let rows = self.client.execute(script, vec![]).await?;
        let parse = |v: &Value| v.as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0);
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let row = row.as_array()?;
                Some(PeerInfo {
                    id: parse(row.first()?) as u32,
                    bytes_received: parse(row.get(1)?) as u64,
                    bytes_sent: parse(row.get(2)?) as u64,
                    level: parse(row.get(3)?),
                    path: row.get(4)?.as_str().unwrap_or_default().to_owned(),
                    link: row.get(5)?.as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// The `data-*` attributes of the one remote participant's `stats` element, without
    /// the `data-` prefix (`rtt-ms`, `loss-pct`, `max-bitrate-kbps`...).
    pub async fn stats(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let script = r#"const e = document.querySelector('[data-testid="stats"]');
            return e ? Object.fromEntries([...e.attributes].filter(a => a.name.startsWith('data-'))
                .map(a => [a.name.slice(5), a.value])) : {};"#;
        let value = self.client.execute(script, vec![]).await?;
        Ok(value
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect())
    }

    /// The width of the video the element `data-testid=id` is playing, if it is on the page.
    pub async fn video_width(&self, id: &str) -> Result<Option<u64>> {
        let script =
            format!("const v = document.querySelector('{}'); return v ? v.videoWidth : null;", Self::testid(id));
        Ok(self.client.execute(&script, vec![]).await?.as_u64())
    }

    /// A number attribute of the element `data-testid=id` (0 when absent).
    pub async fn number(&self, id: &str, attribute: &str) -> Result<f64> {
        Ok(self.attr(id, attribute).await?.and_then(|v| v.parse().ok()).unwrap_or(0.0))
    }

    /// Whether an element `data-testid=id` is on the page now.
    pub async fn shows(&self, id: &str) -> Result<bool> {
        Ok(!self.client.find_all(Locator::Css(&Self::testid(id))).await?.is_empty())
    }

    /// Waits until the one remote participant satisfies `test`, and returns it.
    pub async fn wait_peer(&self, what: &str, test: impl Fn(&PeerInfo) -> bool) -> Result<PeerInfo> {
        let [peer] =
            self.wait_peers(1, what, PATIENCE, test).await?.try_into().expect("wait_peers returns as many as asked");
        Ok(peer)
    }

    /// Waits up to `patience` until the page shows exactly `count` remote participants and
    /// every one satisfies `test`, and returns them.
    pub async fn wait_peers(
        &self,
        count: usize,
        what: &str,
        patience: Duration,
        test: impl Fn(&PeerInfo) -> bool,
    ) -> Result<Vec<PeerInfo>> {
        let start = Instant::now();
        let mut last = Vec::new();
        while start.elapsed() < patience {
            last = self.peers().await?;
            if last.len() == count && last.iter().all(&test) {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Timeout { what: format!("{what} (peers shown: {last:?})"), after: patience })
    }

    /// Fails unless the window is `width` CSS pixels wide (a phone's) and nothing in the
    /// `page` is wider than what the window shows (less a scrollbar where it takes room).
    pub async fn fits_width(&self, width: u32, page: &str) -> Result<()> {
        let layout = self
            .script(
                r#"const shown = document.documentElement.clientWidth;
                return {
                    width: window.innerWidth,
                    shown,
                    scroll: document.documentElement.scrollWidth,
                    sticking_out: [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > shown + 0.5)
                        .map(e => e.dataset.testid || e.className || e.tagName),
                }"#,
            )
            .await?;
        let fits = layout["width"] == json!(width)
            && layout["scroll"].as_u64() <= layout["shown"].as_u64()
            && layout["sticking_out"] == json!([]);
        if !fits {
            return Err(Error::Unexpected(format!("the {page} does not fit a {width} px phone: {layout}")));
        }
        Ok(())
    }

    /// The compressed bytes of the first load of the current page: the document and every
    /// resource it fetched, as the browser's Resource Timing API counted them.
    pub async fn page_weight(&self) -> Result<Vec<(String, u64)>> {
        let script = r#"return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
            .map(e => [e.name, e.encodedBodySize])"#;
        let rows = self.client.execute(script, vec![]).await?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| Some((row.get(0)?.as_str()?.to_owned(), row.get(1)?.as_u64()?)))
            .collect())
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// The text of the element `data-testid=id`, waiting for it to appear.
    pub async fn text(&self, id: &str) -> Result<String> {
        Ok(self.element(id).await?.text().await?)
    }

    /// Waits until the page's own microphone meter (`mic-level`) satisfies `test`.
    pub async fn wait_mic_level(&self, what: &str, test: impl Fn(f64) -> bool) -> Result<()> {
        until(what, || async { Ok(test(self.number("mic-level", "data-level").await?)) }).await
    }

    /// Sends a Chrome DevTools Protocol command through ChromeDriver.
    pub async fn devtools(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({ "cmd": method, "params": params });
        Ok(self.client.issue_cmd(Extension { path: "goog/cdp/execute", body }).await?)
    }

    /// From the next page load on, the page keeps each `RTCPeerConnection` it makes (for
    /// [`crate::rtp`]) and notes what each does, for [`Browser::connection_log`]: what a
    /// test prints when a connection does not come up. A script that runs before the
    /// page's own: WebDriver BiDi's where the session has it (Firefox), DevTools' otherwise.
    pub async fn watch_connections(&self) -> Result<()> {
        match &self.bidi {
            Some(bidi) => {
                let function = format!("() => {{ {WATCH_CONNECTIONS} }}");
                bidi.command("script.addPreloadScript", json!({ "functionDeclaration": function })).await?
            }
            None => {
                self.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": WATCH_CONNECTIONS })).await?
            }
        };
        Ok(())
    }

    /// What the page's connections did ([`Browser::watch_connections`]), one line each.
    pub async fn connection_log(&self) -> Result<String> {
        let lines = self.script("return window.__connectionLog || []").await?;
        let lines = lines.as_array().into_iter().flatten().filter_map(Value::as_str);
        Ok(lines.collect::<Vec<_>>().join("\n"))
    }

    /// Every URL the browser requested or opened a WebSocket to since the last call, from
    /// its DevTools network events (ChromeDriver's performance log).
    pub async fn requested_urls(&self) -> Result<Vec<String>> {
        let entries =
            self.client.issue_cmd(Extension { path: "se/log", body: json!({ "type": "performance" }) }).await?;
        let urls = entries.as_array().into_iter().flatten().filter_map(|entry| {
            let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
            let message = &message["message"];
            match message["method"].as_str()? {
                "Network.requestWillBeSent" => message["params"]["request"]["url"].as_str().map(str::to_owned),
                "Network.webSocketCreated" => message["params"]["url"].as_str().map(str::to_owned),
                _ => None,
            }
        });
        Ok(urls.collect())
    }

    /// Saves a PNG of the page as `target/e2e-artifacts/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = workspace_root().join("target").join("e2e-artifacts");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path.canonicalize()?)
    }

    /// Ends the browser session.
    pub async fn close(self) -> Result<()> {
        Ok(self.client.close().await?)
    }
}

/// A ChromeDriver extension command (`POST /session/<id>/<path>`), which fantoccini does
/// not wrap.
#[derive(Debug)]
struct Extension {
    path: &'static str,
    body: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> std::result::Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// Replaces `RTCPeerConnection` with a subclass (wasm-bindgen looks the constructor up
/// when it calls it: the page's code is none the wiser) that keeps each instance in
/// `window.__keptConnections` and notes in `window.__connectionLog` (seconds since the
/// page loaded) its operations, their outcome and its state changes.
const WATCH_CONNECTIONS: &str = r#"(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const kept = (window.__keptConnections = []);
  const log = (window.__connectionLog = []);
  const note = (id, what) => {
    log.push(`${(performance.now() / 1000).toFixed(1)} s pc${id} ${what}`);
    if (log.length > 2000) log.shift();
  };
  const operations = ["createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate"];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      kept.push(this);
      const id = kept.length;
      note(id, "new");
      for (const event of ["connectionstatechange", "iceconnectionstatechange", "signalingstatechange"]) {
        this.addEventListener(event, () =>
          note(id, `${event}: ${this.connectionState}/${this.iceConnectionState}/${this.signalingState}`));
      }
      for (const name of operations) {
        const original = this[name].bind(this);
        this[name] = (...a) => {
          const what = name + (a[0] && a[0].type ? ` ${a[0].type}` : "") + (a[0] && a[0].iceRestart ? " iceRestart" : "");
          note(id, what);
          return original(...a).then(
            (result) => (note(id, `${what} ok`), result),
            (error) => { note(id, `${what} failed: ${error.message}`); throw error; });
        };
      }
    }
    close() {
      note(kept.indexOf(this) + 1, "close");
      super.close();
    }
  };
})();"#;
