//! The pages. Every element a test or a screen reader needs has a stable `data-testid` or
//! an `aria-*` label; nothing here exists only for tests.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::agent::{InApp, Os, Verdict};
use shared::bitrate::VideoTier;
use shared::call::{CallState, Session};
use shared::chat::{self, Author, Entry, NAME_MAX_CHARS, TEXT_MAX_CHARS};
use shared::room::{PeerId, RoomId};
use shared::stats::{self, CandidateType, Hint, SPEAKING};
use wasm_bindgen_futures::JsFuture;

use crate::browser;
use crate::call::{Call, CallView};
use crate::error::CallError;
use crate::i18n::{Lang, Text, UiLang, text};
use crate::media::{self, Device, MicSettings};
use crate::netcheck::NetworkCheck;
use crate::peer::PeerView;

/// The whole app: language context and the page for this path. Two paths need no router:
/// `/` and `/r/<room>`, matched by hand (a router was 30 KB of the wasm every phone loads).
#[component]
pub fn App() -> impl IntoView {
    let lang = RwSignal::new(Lang::from_browser());
    provide_context(UiLang(lang));
    let path = RwSignal::new(window().location().pathname().unwrap_or_default());
    provide_context(Path(path));
    let on_back = window_event_listener(leptos::ev::popstate, move |_| {
        path.set(window().location().pathname().unwrap_or_default());
    });
    on_cleanup(move || on_back.remove());
    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.get().tag());
        }
        document().set_title(text().app_name);
    });
    view! {
        <Header />
        {move || match path.get() {
            path if path == "/" => view! { <Home /> }.into_any(),
            path if path.starts_with("/r/") => view! { <RoomPage room=path[3..].to_owned() /> }.into_any(),
            _ => view! { <main class="room"><h1 class="page-message">{move || text().not_found}</h1><NewRoomLink /></main> }.into_any(),
        }}
    }
}

/// The page's path, which the app shows; [`go`] changes it.
#[derive(Clone, Copy)]
struct Path(RwSignal<String>);

/// Opens `to` in this page, as a link would, without loading the page again.
fn go(to: String) {
    if let Ok(history) = window().history() {
        let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&to));
    }
    expect_context::<Path>().0.set(to);
}

#[component]
fn Header() -> impl IntoView {
    let lang = expect_context::<UiLang>().0;
    view! {
        <header class="top">
            <a class="brand" href="/">{move || text().app_name}</a>
            <button class="lang" data-testid="language" on:click=move |_| lang.update(|l| *l = l.other())>
                {move || text().switch_language}
            </button>
        </header>
    }
}

/// The front door: one action, creating a room.
#[component]
fn Home() -> impl IntoView {
    let create = move |_| match new_room_id() {
        Some(room) => go(format!("/r/{room}")),
        None => leptos::logging::error!("no crypto.getRandomValues in this browser"),
    };
    view! {
        <main class="home">
            <h1>{move || text().tagline}</h1>
            <p class="lead">{move || text().how_it_works}</p>
            <button class="primary big" data-testid="create-room" on:click=create>
                {move || text().create_room}
            </button>
        </main>
    }
}

/// A fresh room id from the browser's cryptographic random source.
fn new_room_id() -> Option<RoomId> {
    let mut bytes = [0u8; RoomId::LEN];
    window().crypto().ok()?.get_random_values_with_u8_array(&mut bytes).ok()?;
    Some(RoomId::from_random(bytes))
}

#[component]
fn NewRoomLink() -> impl IntoView {
    view! {
        <a class="button secondary" href="/" data-testid="new-room">
            {move || text().new_room}
        </a>
    }
}

/// `/r/<room>`: a new call for each room id in the URL.
#[component]
fn RoomPage(room: String) -> impl IntoView {
    match RoomId::parse(&room) {
        Ok(room) => view! { <Room room /> }.into_any(),
        Err(_) => view! { <main class="room"><Problem error=CallError::BadRoom /><NewRoomLink /></main> }.into_any(),
    }
}

/// A room link opened here: the call if this browser can make one, else the way out.
#[component]
fn Room(room: RoomId) -> impl IntoView {
    let url = format!("{}/r/{room}", window().location().origin().unwrap_or_default());
    match media::verdict() {
        Verdict::Ready => view! { <CallRoom room url /> }.into_any(),
        Verdict::MicrophoneOnly => view! { <MicrophoneOnlyRoom room url /> }.into_any(),
        Verdict::OpenInBrowser { app, os } => view! { <InAppGuide app os url /> }.into_any(),
        Verdict::Insecure => view! { <CannotCall error=CallError::Insecure url /> }.into_any(),
        Verdict::Unsupported => view! { <CannotCall error=CallError::NoWebRtc url /> }.into_any(),
    }
}

/// This chat app's browser cannot call: how to open the link in the system's browser,
/// with the steps for this phone's system and the link ready to copy.
#[component]
fn InAppGuide(app: InApp, os: Os, url: String) -> impl IntoView {
    view! {
        <main class="room guide" data-testid="in-app-guide" data-app=app.as_str() data-os=os.as_str()>
            <span class="guide-arrow" aria-hidden="true">"↗"</span>
            <h1>{move || text().guide_title}</h1>
            <p class="what">{move || text().guide_why.replace("{app}", text().app(app))}</p>
            <ol class="guide-steps">
                <li>{move || text().guide_steps(os)[0]}</li>
                <li>{move || text().guide_steps(os)[1]}</li>
            </ol>
            <p>{move || text().guide_copy}</p>
            <CopyLink url />
        </main>
    }
}

/// A browser that cannot call at all: why, and the link to open elsewhere.
#[component]
fn CannotCall(error: CallError, url: String) -> impl IntoView {
    view! {
        <main class="room">
            <Problem error />
            <CopyLink url />
        </main>
    }
}

/// A browser with a microphone but no WebRTC: the room as usual, so the person can test
/// their microphone and pass the link on; Join tells them this browser cannot call and
/// gives them the link to open in one that can (the microphone is released then).
#[component]
fn MicrophoneOnlyRoom(room: RoomId, url: String) -> impl IntoView {
    let tried_to_join = RwSignal::new(false);
    move || {
        let url = url.clone();
        if tried_to_join.get() {
            view! { <CannotCall error=CallError::NoWebRtc url /> }.into_any()
        } else {
            let cannot_join = Callback::new(move |()| tried_to_join.set(true));
            view! { <CallRoom room=room.clone() url cannot_join /> }.into_any()
        }
    }
}

/// The call in a room.
#[component]
fn CallRoom(
    room: RoomId,
    url: String,
    /// Where this browser cannot make calls, what Join does instead of joining.
    #[prop(optional)]
    cannot_join: Option<Callback<()>>,
) -> impl IntoView {
    let call = StoredValue::new_local(Call::new(room.clone()));
    on_cleanup(move || call.try_with_value(Call::dispose).unwrap_or_default());
    let join = move |listen: bool| match cannot_join {
        Some(instead) => instead.run(()),
        None if listen => call.with_value(Call::listen),
        None => call.with_value(Call::join),
    };
    let view = call.with_value(Call::view);
    let state = Memo::new(move |_| view.state());
    // The call screen's parts come with the call's code (see `call_screen`).
    let screen = move |part: Screen| move || view.running.get().then(|| call.with_value(|c| c.screen(part)));
    view! {
        <main class="room">
            <ShareLink room url />
            <NameField name=view.name />
            <section class="status" data-testid="call-state" data-state=move || state.get().as_str() aria-live="polite">
                <h1 class="state-label">{move || state_label(state.get())}</h1>
                <Show when=move || view.peer_left.get() && state.get() == CallState::Waiting>
                    <p class="notice" data-testid="peer-left">{move || text().peer_left}</p>
                </Show>
                <Show when=move || view.busy.get()>
                    <p class="notice" data-testid="service-busy">{move || text().service_busy}</p>
                </Show>
                {move || {
                    let unreachable = state.get() == CallState::Failed && view.session.get() == Session::Joined;
                    view.error.get().or(unreachable.then_some(CallError::PeerUnreachable)).map(|error| view! { <Problem error /> })
                }}
            </section>
            {screen(Screen::Peers)}
            <Show when=move || matches!(view.session.get(), Session::Idle | Session::Failed | Session::Ended)>
                <div class="controls">
                    {move || {
                        let first = view.session.get() == Session::Idle;
                        view! {
                            <button class="primary big" data-testid="join" on:click=move |_| join(false)>
                                {move || if first { text().join } else { text().join_again }}
                            </button>
                            <button class="secondary" data-testid="listen-only" on:click=move |_| join(true)>
                                {move || text().listen_only}
                            </button>
                            <Show when=move || !first><NewRoomLink /></Show>
                        }
                    }}
                    <DeviceCheck call />
                    {cannot_join.is_none().then(|| view! { <NetworkCheck /> })}
                </div>
            </Show>
            {screen(Screen::Controls)}
            {screen(Screen::Chat)}
            {screen(Screen::Details)}
            {move || view.device_error.get().map(|error| view! { <Problem error /> })}
        </main>
    }
}

/// A part of the call screen: [`call_screen`] builds it.
#[derive(Clone, Copy)]
pub enum Screen {
    /// The people in the call, and our microphone's level.
    Peers,
    /// Mute, camera and leave, while in the call.
    Controls,
    /// The muted note, the device pickers, our camera, our microphone's settings.
    Details,
    /// The chat, while in the call.
    Chat,
}

/// The call screen's `part`: what shows only once the call's code runs (a person tapped
/// Join or Test microphone), built by that code, so that its views are in the call's part
/// of the wasm (`crate::call::start`), not in what every room link loads.
pub fn call_screen(call: Call, part: Screen) -> AnyView {
    let view = call.view();
    let call = StoredValue::new_local(call);
    let camera_on = move || view.camera_on.get();
    match part {
        Screen::Peers => view! {
            <ul class="peers" aria-label=move || text().participants>
                <For each=move || view.peers.get() key=|peer| peer.key let:peer>
                    <RemotePeer peer />
                </For>
            </ul>
            <Show when=move || view.mic.with(Option::is_some)>
                <MicLevel level=view.mic_level />
            </Show>
            <RoomNews view />
        }
        .into_any(),
        Screen::Controls => {
            let (muted, listening, sharing) = (view.muted, view.listening, view.sharing);
            // A listener's microphone is off, as a muted one is; the button turns it on.
            let silent = move || muted.get() || listening.get();
            view! {
                <Show when=move || matches!(view.session.get(), Session::Joining | Session::Joined | Session::Lost)>
                    <CallTimer view />
                    <div class="controls" data-wake-lock=keep_awake()>
                        <button
                            class="toggle"
                            class:on=silent
                            data-testid="mute"
                            aria-pressed=move || silent().to_string()
                            data-listening=move || listening.get().to_string()
                            on:click=move |_| call.with_value(|c| c.set_muted(!muted.get_untracked() && !listening.get_untracked()))
                        >
                            {move || if listening.get() { text().microphone_on } else if muted.get() { text().unmute } else { text().mute }}
                        </button>
                        <button
                            class="toggle"
                            class:on=move || camera_on()
                            data-testid="video"
                            aria-pressed=move || camera_on().to_string()
                            on:click=move |_| call.with_value(|c| c.set_camera(!camera_on()))
                        >
                            {move || text().camera_on}
                        </button>
                        {media::can_share_screen().then(|| view! {
                            <button
                                class="toggle"
                                class:on=move || sharing.get()
                                data-testid="screen-share"
                                aria-pressed=move || sharing.get().to_string()
                                on:click=move |_| call.with_value(|c| c.set_sharing(!sharing.get_untracked()))
                            >
                                {move || text().share_screen}
                            </button>
                        })}
                        <button class="danger" data-testid="leave" on:click=move |_| call.with_value(Call::leave)>
                            {move || text().leave}
                        </button>
                    </div>
                </Show>
            }
            .into_any()
        }
        Screen::Details => view! {
            <Show when=move || (view.muted.get() || view.listening.get()) && matches!(view.session.get(), Session::Joined)>
                <p class="muted-note" data-testid="muted-note">
                    {move || if view.listening.get() { text().listening_note } else { text().you_are_muted }}
                </p>
            </Show>
            <div class="devices">
                <DevicePicker label=|t| t.microphone_device testid="microphone-device" devices=view.microphones
                    chosen=view.microphone_device choose=move |id| call.with_value(|c| c.choose_microphone(id)) />
                <Show when=move || camera_on() && matches!(view.session.get(), Session::Joined | Session::Lost)>
                    <DevicePicker label=|t| t.camera_device testid="camera-device" devices=view.cameras
                        chosen=view.camera_device choose=move |id| call.with_value(|c| c.choose_camera(id)) />
                </Show>
            </div>
            {move || view.camera.get().map(|stream| view! { <LocalVideo stream /> })}
            {move || view.mic.get().map(|settings| view! { <MicDetails settings /> })}
        }
        .into_any(),
        Screen::Chat => view! {
            <Show when=move || matches!(view.session.get(), Session::Joined | Session::Lost)>
                <ChatPanel view send=move |text| call.with_value(|c| c.send_chat(text)) />
            </Show>
        }
        .into_any(),
    }
}

fn state_label(state: CallState) -> &'static str {
    let text = text();
    match state {
        CallState::Idle => text.state_idle,
        CallState::Waiting => text.state_waiting,
        CallState::Connecting => text.state_connecting,
        CallState::Connected => text.state_connected,
        CallState::Reconnecting => text.state_reconnecting,
        CallState::Failed => text.state_failed,
        CallState::Ended => text.state_ended,
    }
}

/// How long this person's call has been connected (since the first connection while in the
/// room; reconnecting keeps counting, as a phone call does), once it has been: `m:ss`, or
/// `h:mm:ss` past an hour.
#[component]
fn CallTimer(view: CallView) -> impl IntoView {
    let since = RwSignal::new(None::<f64>);
    let now = RwSignal::new(js_sys::Date::now());
    Effect::new(move |_| {
        if view.state() == CallState::Connected && since.get_untracked().is_none() {
            since.set(Some(js_sys::Date::now()));
        }
    });
    let tick = set_interval_with_handle(move || now.set(js_sys::Date::now()), std::time::Duration::from_secs(1));
    on_cleanup(move || {
        if let Ok(tick) = tick {
            tick.clear();
        }
    });
    let shown = move || since.get().map(|since| clock(((now.get() - since).max(0.0) / 1000.0) as u64));
    view! {
        <Show when=move || since.with(Option::is_some)>
            <p class="call-timer" data-testid="call-timer" aria-label=move || text().call_time>{shown}</p>
        </Show>
    }
}

/// What happened in the room: someone came or went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum News {
    Came,
    Went,
}

/// The room's news: a short, quiet chime when someone comes or goes, the same news in
/// words for screen readers (`aria-live`), and while the tab is hidden the page title says
/// how many are in the call and that someone came, as a chat app's tab does.
#[component]
fn RoomNews(view: CallView) -> impl IntoView {
    let hidden = RwSignal::new(browser::hidden());
    let came_unseen = RwSignal::new(false);
    let news = RwSignal::new(None::<News>);
    let seen = StoredValue::new((view.comings.get_untracked(), view.goings.get_untracked()));
    Effect::new(move |_| {
        let now = (view.comings.get(), view.goings.get());
        let (came, went) = seen.get_value();
        seen.set_value(now);
        let latest = if now.0 > came {
            News::Came
        } else if now.1 > went {
            News::Went
        } else {
            return;
        };
        news.set(Some(latest));
        came_unseen.set(came_unseen.get_untracked() || (latest == News::Came && hidden.get_untracked()));
        spawn_local(media::play(if latest == News::Came { &media::CAME } else { &media::WENT }));
    });
    let count = move || view.peers.with(Vec::len) + 1;
    let people = move || text().in_the_call.replace("{n}", &count().to_string());
    Effect::new(move |_| {
        let title = match (hidden.get(), came_unseen.get()) {
            (false, _) => text().app_name.to_owned(),
            (true, false) => format!("({}) {}", count(), text().app_name),
            (true, true) => format!("({}) {} · {}", count(), text().someone_joined, text().app_name),
        };
        document().set_title(&title);
    });
    let visibility = gloo_events::EventListener::new(&document(), "visibilitychange", move |_| {
        let now_hidden = browser::hidden();
        let _ = hidden.try_set(now_hidden);
        if !now_hidden {
            let _ = came_unseen.try_set(false);
        }
    });
    let visibility = StoredValue::new_local(Some(visibility));
    // The context is gone by cleanup time (the room may be torn down from a tap inside it):
    // take the language's signal now.
    let lang = expect_context::<UiLang>().0;
    on_cleanup(move || {
        visibility.try_update_value(Option::take);
        if let Some(lang) = lang.try_get_untracked() {
            document().set_title(lang.text().app_name);
        }
    });
    let said = move || {
        news.get().map(|news| {
            let what = if news == News::Came { text().someone_joined } else { text().someone_left };
            format!("{what}. {}.", people())
        })
    };
    view! { <p class="visually-hidden" data-testid="room-news" aria-live="polite">{said}</p> }
}

/// Keeps the screen on while the calling view lives (a phone that locks itself mid-call
/// ends up in a pocket, muted by the system), where the browser has the Wake Lock API:
/// taken at once, taken again when the page is shown again (the browser lets go of it when
/// the page is hidden), let go when the call ends. Returns how it stands: `held`,
/// `released`, or `none` (no such API, or the browser refused).
fn keep_awake() -> RwSignal<&'static str> {
    let state = RwSignal::new("none");
    let held = StoredValue::new_local(None::<wasm_bindgen::JsValue>);
    let take = move || {
        let lock = js_sys::Reflect::get(&window().navigator(), &"wakeLock".into()).unwrap_or_default();
        if lock.is_undefined() {
            return;
        }
        spawn_local(async move {
            match browser::call_async(&lock, "request", &[&"screen".into()]).await {
                Ok(sentinel) if held.try_set_value(Some(sentinel.clone())).is_none() => {
                    let _ = state.try_set("held");
                }
                // The call ended while the browser answered.
                Ok(sentinel) => drop(browser::call(&sentinel, "release", &[])),
                Err(error) => leptos::logging::log!("no screen wake lock: {error:?}"),
            }
        });
    };
    take();
    let shown = gloo_events::EventListener::new(&document(), "visibilitychange", move |_| {
        let released = held.with_value(|held| held.as_ref().is_none_or(|sentinel| browser::flag(sentinel, "released")));
        if !browser::hidden() && released {
            take();
        } else if released {
            let _ = state.try_set("released");
        }
    });
    let shown = StoredValue::new_local(Some(shown));
    on_cleanup(move || {
        shown.try_update_value(Option::take);
        if let Some(Some(sentinel)) = held.try_update_value(Option::take) {
            let _ = browser::call(&sentinel, "release", &[]);
        }
    });
    state
}

/// `seconds` as a call timer shows them: `m:ss`, or `h:mm:ss` from an hour on.
fn clock(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 { format!("{hours}:{minutes:02}:{seconds:02}") } else { format!("{minutes}:{seconds:02}") }
}

/// Our own microphone's level, so a person sees it hears them.
#[component]
fn MicLevel(
    /// The level, 0 to 1.
    level: RwSignal<f64>,
) -> impl IntoView {
    view! {
        <span
            class="meter mine"
            role="meter"
            data-testid="mic-level"
            data-level=move || fixed(level.get(), 3)
            aria-label=move || text().your_microphone
            aria-valuemin="0"
            aria-valuemax="1"
            aria-valuenow=move || fixed(level.get(), 2)
        >
            <span class="meter-fill" style:width=move || meter_width(level.get())></span>
        </span>
    }
}

/// How the other person gets in: the link to copy, the phone's share sheet where the
/// browser has one (it reaches the chat apps), and on a wide screen a QR code, so a call
/// started on a computer can move to a phone (drawn by the relay: phones never load it).
#[component]
fn ShareLink(room: RoomId, url: String) -> impl IntoView {
    let can_share = browser::can_share();
    let to_share = url.clone();
    let share = move |_| {
        let url = to_share.clone();
        spawn_local(async move {
            // Closing the share sheet rejects the promise too: nothing to say about it.
            if let Err(error) = browser::share(text().app_name, &url).await {
                leptos::logging::log!("share sheet closed: {error:?}");
            }
        });
    };
    let qr = (!media::is_phone()).then(|| format!("/qr/{room}.svg"));
    view! {
        <section class="share">
            <label for="share-link">{move || text().share_label}</label>
            <CopyLink url>
                <Show when=move || can_share>
                    <button class="primary" data-testid="share" on:click=share.clone()>
                        {move || text().share}
                    </button>
                </Show>
            </CopyLink>
            {qr.map(|src| view! {
                <figure class="qr" data-testid="qr">
                    <img class="qr-code" src=src width="176" height="176" alt=move || text().scan_to_join />
                    <figcaption>{move || text().scan_to_join}</figcaption>
                </figure>
            })}
        </section>
    }
}

/// The link, selectable, with a copy button (and any other buttons given as children).
#[component]
fn CopyLink(url: String, #[prop(optional)] children: Option<Children>) -> impl IntoView {
    let copied = RwSignal::new(false);
    let to_copy = url.clone();
    let copy = move |_| {
        let url = to_copy.clone();
        spawn_local(async move {
            match browser::copy_text(&url).await {
                Ok(()) => {
                    copied.set(true);
                    gloo_timers::future::TimeoutFuture::new(2_000).await;
                    copied.set(false);
                }
                Err(error) => leptos::logging::warn!("copy failed: {error:?}"),
            }
        });
    };
    view! {
        <div class="share-row">
            <input
                id="share-link"
                data-testid="share-link"
                readonly
                value=url
                on:focus=move |event| {
                    if let Some(input) = event_target::<web_sys::HtmlInputElement>(&event).into() {
                        input.select();
                    }
                }
            />
            <button class="secondary" data-testid="copy-link" on:click=copy>
                {move || if copied.get() { text().copied } else { text().copy }}
            </button>
            {children.map(|children| children())}
        </div>
    }
}

/// Before joining: a microphone test (the meter moves, and the device names appear for the
/// picker), and a test sound for the speakers.
#[component]
fn DeviceCheck(call: StoredValue<Call, LocalStorage>) -> impl IntoView {
    let view = call.with_value(Call::view);
    let playing = RwSignal::new(false);
    let play = move |_| {
        playing.set(true);
        media::speakers();
        spawn_local(async move {
            media::play(&media::TEST_SOUND).await;
            playing.set(false);
        });
    };
    view! {
        <section class="check" aria-label=move || text().before_you_join>
            <Show when=move || view.mic.with(Option::is_none)>
                <button class="secondary" data-testid="mic-test" on:click=move |_| call.with_value(Call::test_microphone)>
                    {move || text().test_microphone}
                </button>
            </Show>
            <button
                class="secondary"
                data-testid="test-sound"
                data-playing=move || playing.get().to_string()
                disabled=move || playing.get()
                on:click=play
            >
                {move || if playing.get() { text().playing_test_sound } else { text().play_test_sound }}
            </button>
        </section>
    }
}

/// Where this device keeps the name the person gave ([`NameField`]).
const NAME_KEY: &str = "linkcall.name";

/// The name the others see instead of "Guest N": optional, kept on this device for the
/// next call, and changed for everyone when edited during the call (on Enter or when the
/// field is left). Cleaned as [`chat::clean_name`] says; the field takes no more than
/// [`NAME_MAX_CHARS`] UTF-16 units, so never too many characters.
#[component]
fn NameField(
    /// Our name, cleaned.
    name: RwSignal<Option<String>>,
) -> impl IntoView {
    let storage = window().local_storage().ok().flatten();
    if name.get_untracked().is_none()
        && let Some(kept) = storage.as_ref().and_then(|s| s.get_item(NAME_KEY).ok().flatten())
    {
        name.set(chat::clean_name(&kept).ok().flatten());
    }
    let change = move |typed: String| {
        let Ok(cleaned) = chat::clean_name(&typed) else { return };
        if let Some(storage) = &storage {
            let _ = match &cleaned {
                Some(kept) => storage.set_item(NAME_KEY, kept),
                None => storage.remove_item(NAME_KEY),
            };
        }
        name.set(cleaned);
    };
    view! {
        <label class="name-field">
            <span>{move || text().your_name}</span>
            <input
                data-testid="display-name"
                maxlength=NAME_MAX_CHARS
                autocomplete="nickname"
                placeholder=move || text().name_optional
                prop:value=move || name.get().unwrap_or_default()
                on:change:target=move |event| change(event.target().value())
            />
        </label>
    }
}

/// A list of devices of one kind to pick from; hidden until the browser names them.
#[component]
fn DevicePicker(
    /// Picks the label from the current language's strings.
    label: fn(&'static Text) -> &'static str,
    /// The `data-testid` of the `<select>`.
    testid: &'static str,
    /// The devices.
    devices: RwSignal<Vec<Device>>,
    /// The one in use.
    chosen: RwSignal<Option<String>>,
    /// Called with the id of the device picked.
    choose: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let named = move || devices.with(|list| list.iter().any(|d| !d.label.is_empty()));
    view! {
        <Show when=named>
            <label class="device">
                <span>{move || label(text())}</span>
                <select data-testid=testid prop:value=move || chosen.get().unwrap_or_default()
                    on:change:target=move |event| choose(event.target().value())>
                    {move || devices.get().into_iter().enumerate().map(|(n, device)| {
                        let name = if device.label.is_empty() {
                            format!("{} {}", text().device_fallback, n + 1)
                        } else {
                            device.label
                        };
                        let selected = chosen.with(|c| c.as_deref() == Some(device.id.as_str()));
                        view! { <option value=device.id selected=selected>{name}</option> }
                    }).collect_view()}
                </select>
            </label>
        </Show>
    }
}

/// What went wrong and what to do, in the person's language.
#[component]
fn Problem(error: CallError) -> impl IntoView {
    let code = error.code();
    let explain = move || error.explain(text());
    let (what, fix) = (explain.clone(), explain);
    view! {
        <div class="problem" role="alert" data-testid="error" data-error=code>
            <p class="what">{move || what().0}</p>
            <p class="fix">{move || fix().1}</p>
        </div>
    }
}

/// One remote participant: name, speaking meter, quality bars and details, and the
/// `<audio>` that plays them.
#[component]
fn RemotePeer(peer: PeerView) -> impl IntoView {
    let audio = NodeRef::<leptos::html::Audio>::new();
    let blocked = RwSignal::new(false);
    let play = move || {
        let Some(element) = audio.get_untracked() else { return };
        let Ok(playing) = element.play() else { return };
        spawn_local(async move {
            // Autoplay can be refused outside a user gesture: offer a tap to start it.
            blocked.set(JsFuture::from(playing).await.is_err());
        });
    };
    // Blocked audio starts at the next tap or key anywhere on the page, not only on the
    // banner: any of them lets the browser play it.
    let tap = window_event_listener(leptos::ev::click, move |_| {
        if blocked.get_untracked() {
            play()
        }
    });
    let key = window_event_listener(leptos::ev::keydown, move |_| {
        if blocked.get_untracked() {
            play()
        }
    });
    on_cleanup(move || {
        tap.remove();
        key.remove();
    });
    Effect::new(move |_| {
        let stream = peer.stream.get();
        if let Some(element) = audio.get() {
            // iOS plays media full screen unless told otherwise; the view macro does not
            // know this attribute, so it is set here.
            let _ = element.set_attribute("playsinline", "");
            element.set_src_object(stream.as_ref());
            if stream.is_some() {
                play();
            }
        }
    });
    let quality = peer.quality;
    let level = move || quality.with(|q| q.level);
    let path = move || peer.stats.with(|s| s.path.map(CandidateType::as_str).unwrap_or_default());
    let bars = move || stats::bars(quality.with(|q| q.mos));
    let presence = peer.presence;
    let name = move || presence.with(|p| shown_name(peer.id, p.name.as_deref()));
    let listening = move || presence.with(|p| p.listening);
    let sharing = move || presence.with(|p| p.sharing);
    view! {
        <li
            class="peer"
            class:speaking=move || { level() > SPEAKING }
            data-testid="peer"
            data-peer-id=peer.id.0
            data-link=move || peer.link.get().as_str()
            data-bytes-received=move || peer.stats.with(|s| s.bytes_received)
            data-bytes-sent=move || peer.stats.with(|s| s.bytes_sent)
            data-audio-level=move || fixed(level(), 3)
            data-path=path
            data-listening=move || listening().to_string()
            data-sharing=move || sharing().to_string()
        >
            <span class="avatar" aria-hidden="true">{peer.id.0}</span>
            <span class="name" data-testid="peer-name">{name}</span>
            <Show when=listening>
                <span class="badge" data-testid="peer-listening">{move || text().listening_only}</span>
            </Show>
            <Show when=sharing>
                <span class="badge" data-testid="peer-sharing">{move || text().sharing_screen}</span>
            </Show>
            <span class="meter" role="meter" aria-valuemin="0" aria-valuemax="1" aria-valuenow=move || fixed(level(), 2)
                aria-label=move || format!("{}: {}", name(), text().voice_level)>
                <span class="meter-fill" style:width=move || meter_width(level())></span>
            </span>
            <span
                class="bars"
                data-testid="stats"
                data-bars=bars
                data-rtt-ms=move || fixed(quality.with(|q| q.rtt_ms), 0)
                data-jitter-ms=move || fixed(quality.with(|q| q.jitter_ms), 1)
                data-loss-pct=move || fixed(quality.with(|q| q.loss_pct), 1)
                data-send-loss-pct=move || fixed(quality.with(|q| q.send_loss_pct), 1)
                data-bitrate-kbps=move || fixed(quality.with(|q| q.send_kbps), 1)
                data-receive-kbps=move || fixed(quality.with(|q| q.receive_kbps), 1)
                data-max-bitrate-kbps=move || peer.max_bitrate.get().map(|bps| fixed(f64::from(bps) / 1000.0, 1)).unwrap_or_default()
                data-mos=move || fixed(quality.with(|q| q.mos), 2)
                data-video-tier=move || peer.video_tier.get().map(VideoTier::as_str)
                data-path=path
                role="img"
                aria-label=move || format!("{}: {}/5", text().quality, bars())
            >
                {(1..=5u8).map(|n| view! { <span class="bar" class:lit=move || { bars() >= n }></span> }).collect_view()}
            </span>
            <Show when=move || blocked.get()>
                <button class="primary" data-testid="tap-to-hear" on:click=move |_| play()>
                    {move || text().tap_to_hear}
                </button>
            </Show>
            {move || peer.hint.get().map(|hint| view! { <p class="hint" data-testid="hint">{hint_text(hint)}</p> })}
            <details class="peer-details">
                <summary>{move || text().details}</summary>
                <dl>
                    <Row label=|t| t.mos value=move || fixed(quality.with(|q| q.mos), 2) />
                    <Row label=|t| t.rtt value=move || format!("{} ms", fixed(quality.with(|q| q.rtt_ms), 0)) />
                    <Row label=|t| t.jitter value=move || format!("{} ms", fixed(quality.with(|q| q.jitter_ms), 1)) />
                    <Row label=|t| t.loss value=move || quality.with(|q| format!("{} % / {} %", fixed(q.loss_pct, 1), fixed(q.send_loss_pct, 1))) />
                    <Row label=|t| t.bitrate value=move || quality.with(|q| format!("{} / {} kbit/s", fixed(q.send_kbps, 1), fixed(q.receive_kbps, 1))) />
                    <Row label=|t| t.sending_at value=move || peer.max_bitrate.get().map(|bps| format!("{} kbit/s", bps / 1000)).unwrap_or_default() />
                    <Row label=|t| t.codec value=move || peer.stats.with(|s| s.codec.clone().unwrap_or_default()) />
                    <Row label=|t| t.jitter_buffer value=move || format!("{} ms", fixed(quality.with(|q| q.jitter_buffer_ms), 0)) />
                    <Row label=|t| t.concealment value=move || format!("{} %", fixed(quality.with(|q| q.concealment_pct), 1)) />
                    <Row label=|t| t.path value=move || path_label(peer.stats.with(|s| s.path)) />
                </dl>
                {move || peer.verification.get().map(|code| view! {
                    <p class="verify">
                        {move || text().verification_code} ": "
                        <strong data-testid="verification-code" data-peer-id=peer.id.0>{code}</strong>
                    </p>
                    <p>{move || text().verification_explained}</p>
                })}
            </details>
            <Show when=move || peer.showing_video.get()>
                <RemoteVideo stream=peer.video />
            </Show>
            <audio node_ref=audio autoplay></audio>
        </li>
    }
}

/// The name shown for the peer `id`: the one it gave, else "Guest N".
fn shown_name(id: PeerId, name: Option<&str>) -> String {
    name.map_or_else(|| format!("{} {id}", text().guest), str::to_owned)
}

/// The chat: a toggle with the count of unread messages, and when open, the messages (ours
/// marked ✓ once everyone they went to has them) and a line to write one. Everything said
/// is shown as text: markup and links stay words, nothing is loaded.
#[component]
fn ChatPanel(
    /// The call's view, with the chat's log.
    view: CallView,
    /// Sends a message to everyone in the room.
    send: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let log = view.chat;
    let open = move || log.with(|log| log.is_open());
    let unread = move || log.with(|log| log.unread());
    let typed = RwSignal::new(String::new());
    let length = move || typed.with(|t| t.chars().count());
    let too_long = move || length() > TEXT_MAX_CHARS;
    let sendable = move || typed.with(|t| chat::clean_text(t).is_ok());
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if sendable() {
            send(typed.get_untracked());
            typed.set(String::new());
        }
    };
    view! {
        <section class="chat">
            <button
                class="toggle"
                class:on=open
                data-testid="chat-toggle"
                aria-controls="chat-panel"
                aria-expanded=move || open().to_string()
                data-unread=unread
                on:click=move |_| log.update(|log| log.set_open(!log.is_open()))
            >
                {move || text().chat}
                <Show when=move || { unread() > 0 }>
                    <span class="unread" data-testid="chat-unread"
                        aria-label=move || format!("{} {}", unread(), text().unread_messages)>{unread}</span>
                </Show>
            </button>
            <Show when=open>
                <div id="chat-panel" class="chat-panel">
                    <ol class="chat-log" data-testid="chat-log" aria-live="polite" aria-label=move || text().chat>
                        {move || log.with(|log| log.entries().iter().map(chat_message).collect_view())}
                    </ol>
                    <form class="chat-form" on:submit=submit>
                        <input
                            data-testid="chat-input"
                            aria-label=move || text().chat_message
                            placeholder=move || text().chat_message
                            aria-invalid=move || too_long().to_string()
                            aria-describedby="chat-count"
                            autocomplete="off"
                            prop:value=move || typed.get()
                            on:input:target=move |event| typed.set(event.target().value())
                        />
                        <button type="submit" class="primary" data-testid="chat-send" disabled=move || !sendable()>
                            {move || text().send}
                        </button>
                    </form>
                    <p id="chat-count" class="chat-count" class:over=too_long data-testid="chat-count">
                        {move || format!("{}/{TEXT_MAX_CHARS}", length())}
                        <Show when=too_long>" " {move || text().chat_too_long}</Show>
                    </p>
                </div>
            </Show>
        </section>
    }
}

/// One message of the chat: `data-from` is `me` for ours, else the author's peer id, and
/// ours carry `data-delivered`.
fn chat_message(entry: &Entry) -> impl IntoView + use<> {
    let (from, who, delivered) = match entry.author {
        Author::Me => ("me".to_owned(), text().you.to_owned(), Some(entry.delivered)),
        Author::Peer(id) => (id.to_string(), shown_name(id, entry.name.as_deref()), None),
    };
    view! {
        <li class="chat-message" class:mine=delivered.is_some() data-testid="chat-message" data-from=from
            data-delivered=delivered.map(|d| d.to_string())>
            <span class="chat-from">{who}</span>
            <span class="chat-text">{entry.text.clone()}</span>
            {(delivered == Some(true)).then(|| view! {
                <span class="chat-delivered" role="img" aria-label=move || text().delivered>"✓"</span>
            })}
        </li>
    }
}

/// A `<video>` playing `stream`: muted (the sound comes through the `<audio>`), inline.
fn video_element(
    testid: &'static str,
    class: &'static str,
    stream: impl Fn() -> Option<web_sys::MediaStream> + 'static,
) -> impl IntoView {
    let video = NodeRef::<leptos::html::Video>::new();
    Effect::new(move |_| {
        let stream = stream();
        if let Some(element) = video.get() {
            let _ = element.set_attribute("playsinline", "");
            element.set_muted(true);
            element.set_src_object(stream.as_ref());
            let _ = element.play();
        }
    });
    view! { <video node_ref=video class=class data-testid=testid autoplay></video> }
}

/// Our own camera, small.
#[component]
fn LocalVideo(stream: web_sys::MediaStream) -> impl IntoView {
    let stream = StoredValue::new_local(stream);
    video_element("local-video", "local-video", move || Some(stream.get_value()))
}

/// A remote camera, large.
#[component]
fn RemoteVideo(stream: RwSignal<Option<web_sys::MediaStream>, LocalStorage>) -> impl IntoView {
    video_element("remote-video", "remote-video", move || stream.get())
}

/// One line of a details panel.
#[component]
fn Row(
    /// Picks the label from the current language's strings.
    label: fn(&'static Text) -> &'static str,
    /// The value, re-read reactively.
    value: impl Fn() -> String + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <dt>{move || label(text())}</dt>
        <dd>{value}</dd>
    }
}

fn hint_text(hint: Hint) -> &'static str {
    let text = text();
    match hint {
        Hint::Loss => text.hint_loss,
        Hint::Delay => text.hint_delay,
        Hint::Jitter => text.hint_jitter,
    }
}

fn path_label(path: Option<CandidateType>) -> String {
    let text = text();
    match path {
        Some(CandidateType::Relay) => text.path_relayed.to_owned(),
        Some(kind) => format!("{} ({})", text.path_direct, kind.as_str()),
        None => String::new(),
    }
}

/// What the browser did to our microphone: the settings it applied, not the ones asked for.
#[component]
fn MicDetails(settings: MicSettings) -> impl IntoView {
    let flag = |on: Option<bool>| {
        move || match on {
            Some(true) => text().on,
            Some(false) => text().off,
            None => text().unknown,
        }
    };
    let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    let format = format!("{} Hz × {}", number(settings.sample_rate), number(settings.channel_count));
    view! {
        <details class="mic-details" data-testid="mic-details"
            data-echo-cancellation=settings.echo_cancellation.map(|b| b.to_string())
            data-noise-suppression=settings.noise_suppression.map(|b| b.to_string())
            data-auto-gain-control=settings.auto_gain_control.map(|b| b.to_string())>
            <summary>{move || text().your_microphone}</summary>
            <dl>
                <dt>{move || text().echo_cancellation}</dt><dd>{flag(settings.echo_cancellation)}</dd>
                <dt>{move || text().noise_suppression}</dt><dd>{flag(settings.noise_suppression)}</dd>
                <dt>{move || text().auto_gain}</dt><dd>{flag(settings.auto_gain_control)}</dd>
                <dd>{format}</dd>
            </dl>
        </details>
    }
}

/// How much of a level meter (0 to 1) is filled: the CSS width, full at half scale.
fn meter_width(level: f64) -> String {
    format!("{}%", fixed((level * 200.0).min(100.0), 0))
}

/// `x` with `digits` decimals, as `format!("{x:.digits$}")` writes it (halves round away from
/// zero, and a zero has no sign), without the standard library's float formatting: that is 20 KB of the wasm every
/// phone loads, for a handful of figures on the screen.
fn fixed(x: f64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    // Saturates: NaN reads 0, a huge figure the largest u64.
    let scaled = (x.abs() * scale as f64).round() as u64;
    let sign = if x < 0.0 && scaled != 0 { "-" } else { "" };
    let whole = scaled / scale;
    match digits {
        0 => format!("{sign}{whole}"),
        _ => format!("{sign}{whole}.{:0width$}", scaled % scale, width = digits as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::{clock, fixed};

    #[test]
    fn the_call_timer_reads_like_a_phones() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(65), "1:05");
        assert_eq!(clock(3599), "59:59");
        assert_eq!(clock(3600), "1:00:00");
        assert_eq!(clock(36_061), "10:01:01");
    }

    #[test]
    fn fixed_writes_what_format_writes() {
        for (x, digits) in [(0.0, 1), (0.25, 0), (1.23456, 2), (0.0004, 3), (12.05, 1), (99.96, 1), (-1.26, 1)] {
            assert_eq!(fixed(x, digits), format!("{x:.*}", digits as usize), "{x} to {digits}");
        }
        assert_eq!(fixed(0.5, 0), "1");
        assert_eq!(fixed(-0.04, 1), "0.0", "no minus sign on a zero");
        assert_eq!(fixed(f64::NAN, 1), "0.0");
    }
}
