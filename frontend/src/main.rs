//! Entry point: panic messages to the console, then the app in place of the first paint.

fn main() {
    console_error_panic_hook::set_once();
    // index.html's first paint, shown while the wasm arrived: the app takes its place.
    if let Some(boot) = leptos::prelude::document().get_element_by_id("boot") {
        boot.remove();
    }
    leptos::mount::mount_to_body(frontend::App);
}
