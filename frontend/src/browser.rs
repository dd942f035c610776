//! Small typed doors into browser APIs that web-sys leaves loosely typed.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `object[key]` as a number (0 when absent: stats fields appear only once data flows).
pub fn number(object: &JsValue, key: &str) -> f64 {
    optional_number(object, key).unwrap_or(0.0)
}

/// `object[key]` as a number, if it is one.
pub fn optional_number(object: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(object, &key.into()).ok().and_then(|v| v.as_f64())
}

/// `object[key]` as a boolean (false when absent).
pub fn flag(object: &JsValue, key: &str) -> bool {
    Reflect::get(object, &key.into()).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

/// `object[key]` as a string (empty when absent).
pub fn string(object: &JsValue, key: &str) -> String {
    Reflect::get(object, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

/// Calls `object.method(...args)`.
pub fn call(object: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let function: Function = Reflect::get(object, &method.into())?.dyn_into()?;
    function.apply(object, &args.iter().copied().collect())
}

/// Calls `object.method(...args)` and awaits the promise it returns.
pub async fn call_async(object: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let promise: Promise = call(object, method, args)?.dyn_into()?;
    JsFuture::from(promise).await
}

/// Whether the global object has `name` (feature detection).
pub fn has_global(name: &str) -> bool {
    has(&js_sys::global(), name)
}

/// Whether `object` has `name`, its own or inherited (feature detection).
pub fn has(object: &JsValue, name: &str) -> bool {
    Reflect::has(object, &name.into()).unwrap_or(false)
}

/// Puts `text` on the clipboard. The async Clipboard API is only exposed by web-sys behind
/// an unstable cfg, so it is reached by name.
pub async fn copy_text(text: &str) -> Result<(), JsValue> {
    let navigator = web_sys::window().ok_or(JsValue::NULL)?.navigator();
    let clipboard = Reflect::get(&navigator, &"clipboard".into())?;
    call_async(&clipboard, "writeText", &[&text.into()]).await.map(drop)
}

/// Whether the browser has a share sheet (`navigator.share`): phones mostly do.
pub fn can_share() -> bool {
    web_sys::window().is_some_and(|w| has(&w.navigator(), "share"))
}

/// Opens the system's share sheet with `url` (the chat apps are in it). Reached by name:
/// web-sys has it only behind an unstable cfg.
pub async fn share(title: &str, url: &str) -> Result<(), JsValue> {
    let navigator = web_sys::window().ok_or(JsValue::NULL)?.navigator();
    let data = js_sys::Object::new();
    Reflect::set(&data, &"title".into(), &title.into())?;
    Reflect::set(&data, &"url".into(), &url.into())?;
    call_async(&navigator, "share", &[&data]).await.map(drop)
}

/// Whether the page is hidden (another tab in front, the app in the background, the screen
/// off).
pub fn hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| string(&d, "visibilityState") == "hidden")
}
