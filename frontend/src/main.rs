//! Entry point: panic messages to the console, then the app in place of the first paint,
//! carrying out the tap the first paint took, if any.

use wasm_bindgen::JsCast;

fn main() {
    console_error_panic_hook::set_once();
    let document = leptos::prelude::document();
    // index.html's first paint, shown while the wasm arrived: the app takes its place.
    if let Some(boot) = document.get_element_by_id("boot") {
        boot.remove();
    }
    leptos::mount::mount_to_body(frontend::App);
    // Its button worked before the app ran: index.html remembered which one was tapped
    // (`data-boot-tap`, the `data-testid` of the app's own). The app's button does it now.
    let tapped = frontend::browser::string(&leptos::prelude::window(), "__bootTap");
    let button = Some(tapped)
        .filter(|tap| !tap.is_empty())
        .and_then(|tap| document.query_selector(&format!("[data-testid=\"{tap}\"]")).ok().flatten());
    match button.and_then(|button| button.dyn_into::<web_sys::HtmlElement>().ok()) {
        Some(button) => button.click(),
        None => frontend::media::release_early_microphone(),
    }
}
