//! A WebDriver BiDi connection to one browser session (the `webSocketUrl` the session
//! returned): commands with their answers, and the page's console errors as the browser
//! reports them (`log.entryAdded`), kept from the moment the session started.
//!
//! Only what the tests use: `session.subscribe`, `browsingContext.getTree`,
//! `browsingContext.setViewport`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::{Error, Result};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Answers awaited, by command id.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// An open BiDi connection. The reader task ends with it.
pub(crate) struct Bidi {
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    next_id: Mutex<u64>,
    pending: Pending,
    errors: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl Bidi {
    /// Connects to `url` and subscribes to the console.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let (socket, _) =
            connect_async(url).await.map_err(|e| Error::Unexpected(format!("WebDriver BiDi at {url}: {e}")))?;
        let (sink, mut stream) = socket.split();
        let pending = Pending::default();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let reader = tokio::spawn({
            let (pending, errors) = (pending.clone(), errors.clone());
            async move {
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
                    if let Some(id) = message["id"].as_u64() {
                        if let Some(answer) = pending.lock().expect("not poisoned").remove(&id) {
                            let _ = answer.send(message);
                        }
                    } else if message["method"] == "log.entryAdded" && message["params"]["level"] == "error" {
                        let text = message["params"]["text"].as_str().unwrap_or_default().to_owned();
                        errors.lock().expect("not poisoned").push(text);
                    }
                }
            }
        });
        let bidi = Self { sink: tokio::sync::Mutex::new(sink), next_id: Mutex::new(0), pending, errors, reader };
        bidi.command("session.subscribe", json!({ "events": ["log.entryAdded"] })).await?;
        Ok(bidi)
    }

    /// Sends `method` with `params` and returns its `result`.
    pub(crate) async fn command(&self, method: &str, params: Value) -> Result<Value> {
        let id = {
            let mut next = self.next_id.lock().expect("not poisoned");
            *next += 1;
            *next
        };
        let (answer, answered) = oneshot::channel();
        self.pending.lock().expect("not poisoned").insert(id, answer);
        let command = json!({ "id": id, "method": method, "params": params }).to_string();
        self.sink
            .lock()
            .await
            .send(Message::text(command))
            .await
            .map_err(|e| Error::Unexpected(format!("WebDriver BiDi {method}: {e}")))?;
        let message =
            answered.await.map_err(|_| Error::Unexpected(format!("WebDriver BiDi closed during {method}")))?;
        match message["type"].as_str() {
            Some("success") => Ok(message["result"].clone()),
            _ => Err(Error::Unexpected(format!("WebDriver BiDi {method}: {message}"))),
        }
    }

    /// Makes the top-level page `width`×`height` CSS pixels, as a phone's screen.
    pub(crate) async fn set_viewport(&self, width: u32, height: u32, pixel_ratio: f64) -> Result<()> {
        let tree = self.command("browsingContext.getTree", json!({})).await?;
        let context = tree["contexts"][0]["context"].clone();
        let viewport = json!({ "width": width, "height": height });
        let params = json!({ "context": context, "viewport": viewport, "devicePixelRatio": pixel_ratio });
        self.command("browsingContext.setViewport", params).await.map(drop)
    }

    /// The console errors the page logged so far.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.errors.lock().expect("not poisoned").clone()
    }
}

impl Drop for Bidi {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
