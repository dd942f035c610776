//! Where our users are: a phone, often inside a chat app's browser, in Chinese or English,
//! sometimes with the microphone refused. Real Chromium instances (one emulating a phone
//! with touch and a phone's user agent), a real relay, real calls.
//!
//! The room page's screenshots, on a phone and on a computer, are kept in
//! `target/e2e-artifacts/`.

use e2e::{ANDROID_CHROME, Browser, ChromeDriver, HEARD, Profile, Relay, Result, meet, open_room, until};
use serde_json::{Value, json};

const WECHAT_ANDROID: &str = "Mozilla/5.0 (Linux; Android 12; M2102J2SC Build/SKQ1.211006.001; wv) \
    AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/86.0.4240.99 XWEB/4317 MMWEBSDK/20220903 Mobile \
    Safari/537.36 MMWEBID/6294 MicroMessenger/8.0.28.2240(0x28001C35) WeChat/arm64 Weixin NetType/WIFI \
    Language/zh_CN ABI/arm64";
const WECHAT_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN";

/// A phone with `user_agent`.
fn phone(user_agent: &str) -> Profile {
    Profile { phone: Some(user_agent.into()), ..Profile::default() }
}

/// Waits until Ana and Bo are in the call and each hears the other.
async fn talking(ana: &Browser, bo: &Browser) -> Result<()> {
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    ana.wait_peer("Ana hearing Bo", |p| p.level > HEARD).await?;
    bo.wait_peer("Bo hearing Ana", |p| p.level > HEARD).await?;
    Ok(())
}

/// Ana creates a room on her computer and returns its link.
async fn create_room(relay: &Relay, ana: &Browser) -> Result<String> {
    ana.open(&relay.url("/")).await?;
    ana.click("create-room").await?;
    ana.value("share-link").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_and_a_computer_talk_and_the_page_fits_the_phone() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = driver.browser_as(phone(ANDROID_CHROME)).await?;

    meet(&relay, &ana, &bo).await?;
    talking(&ana, &bo).await?;

    // On the phone: nothing wider than the screen, every control big enough for a thumb.
    let layout = bo
        .script(
            r#"return {
                width: window.innerWidth,
                scroll: document.documentElement.scrollWidth,
                small: [...document.querySelectorAll('button, a.button, select, summary')]
                    .filter(e => e.offsetParent !== null)
                    .map(e => [e.dataset.testid || e.textContent.trim(), e.getBoundingClientRect().height])
                    .filter(([, height]) => height < 32),
                buttons: [...document.querySelectorAll('button')].filter(e => e.offsetParent !== null)
                    .map(e => e.getBoundingClientRect().height),
            }"#,
        )
        .await?;
    assert_eq!(layout["width"], json!(360), "not a 360 px phone viewport: {layout}");
    assert!(layout["scroll"].as_u64() <= Some(360), "the phone page scrolls sideways: {layout}");
    assert_eq!(layout["small"], json!([]), "controls too small to tap: {layout}");
    let buttons: Vec<f64> = layout["buttons"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
    assert!(buttons.len() >= 3 && buttons.iter().all(|h| *h >= 40.0), "buttons under 40 px: {layout}");

    // The QR code is for handing a call from a computer to a phone: the computer shows it.
    // (drawn by the relay: the image must have loaded, not only be laid out).
    let qr_size = "const q = document.querySelector('[data-testid=\"qr\"] img'); \
        return q && q.offsetParent !== null && q.complete && q.naturalWidth > 0 ? q.getBoundingClientRect().width : 0;";
    until("the QR code on the computer", || async { Ok(ana.script(qr_size).await?.as_f64().unwrap_or(0.0) >= 150.0) })
        .await?;
    assert_eq!(bo.script(qr_size).await?.as_f64(), Some(0.0), "a QR code on the phone");

    let phone_shot = bo.screenshot("room-phone").await?;
    let desktop_shot = ana.screenshot("room-desktop").await?;
    println!("ARTEFACT room page on a phone: {}", phone_shot.display());
    println!("ARTEFACT room page on a computer: {}", desktop_shot.display());

    ana.close().await?;
    bo.close().await
}

/// Taps the first paint's Join as soon as it is in the document, before the app has run,
/// and notes when (and whether the app had run by then).
const TAP_THE_FIRST_PAINT: &str = r#"(function poll() {
    const join = document.querySelector('[data-boot-tap="join"]');
    if (!join) return setTimeout(poll, 0);
    join.click();
    window.__tapped = { at: performance.now(), appRunning: !document.getElementById('boot') };
})();"#;

/// On a slow phone network the page's Join works before the app has arrived: Bo taps the
/// first paint's button while the wasm is still downloading, and the app, once it runs,
/// joins with the microphone that tap asked for; nobody taps the app's own Join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tapped_before_the_app_has_loaded_joins_when_it_has() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = driver.browser_as(phone(ANDROID_CHROME)).await?;
    let link = open_room(&relay, &ana).await?;

    // 256 kbit/s: the wasm takes seconds to arrive.
    bo.devtools("Network.enable", json!({})).await?;
    let slow = json!({ "offline": false, "latency": 0, "downloadThroughput": 32_000, "uploadThroughput": 32_000 });
    bo.devtools("Network.emulateNetworkConditions", slow).await?;
    bo.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": TAP_THE_FIRST_PAINT })).await?;
    bo.open(&link).await?;

    // Bo is heard: the microphone of the first paint's tap.
    talking(&ana, &bo).await?;
    let timing = bo
        .script(
            "const wasm = performance.getEntriesByType('resource').find(e => e.name.endsWith('.wasm')); \
             return { tapped: window.__tapped, wasm: wasm ? wasm.responseEnd : null };",
        )
        .await?;
    let (tapped, wasm) = (timing["tapped"]["at"].as_f64(), timing["wasm"].as_f64());
    assert_eq!(timing["tapped"]["appRunning"], json!(false), "the tap came after the app ran: {timing}");
    assert!(
        tapped.zip(wasm).is_some_and(|(tap, wasm)| tap + 1_000.0 < wasm),
        "the tap was not before the wasm: {timing}"
    );

    ana.close().await?;
    bo.close().await
}

/// The call's code is a wasm module of its own that comes at the first tap: when it cannot
/// be fetched, Join says the call server cannot be reached, and the next tap gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_says_so_when_the_calls_code_cannot_load_and_the_next_tap_joins() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = driver.browser(&[]).await?;
    let link = open_room(&relay, &ana).await?;

    bo.devtools("Network.enable", json!({})).await?;
    bo.devtools("Network.setBlockedURLs", json!({ "urls": ["*/split_call-*"] })).await?;
    bo.open(&link).await?;
    bo.click("join").await?;
    bo.wait_state("failed").await?;
    assert_eq!(bo.attr("error", "data-error").await?.as_deref(), Some("relay_unreachable"));

    bo.devtools("Network.setBlockedURLs", json!({ "urls": [] })).await?;
    bo.click("join").await?;
    talking(&ana, &bo).await?;

    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_without_a_microphone_shows_the_way_out_and_wechat_with_one_calls() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let link = create_room(&relay, &ana).await?;
    ana.click("join").await?;
    ana.wait_state("waiting").await?;

    // WeChat's older Android browser: no getUserMedia, no RTCPeerConnection. Chromium is
    // made to lack them too, before any of the page's scripts run.
    let bo = driver.browser_as(phone(WECHAT_ANDROID)).await?;
    let lacking = "Object.defineProperty(Navigator.prototype, 'mediaDevices', { get: () => undefined }); \
                   delete window.RTCPeerConnection;";
    bo.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": lacking })).await?;
    bo.open(&link).await?;
    assert_eq!(bo.attr("in-app-guide", "data-app").await?.as_deref(), Some("wechat"));
    assert_eq!(bo.attr("in-app-guide", "data-os").await?.as_deref(), Some("android"));
    let guide = bo.text("in-app-guide").await?;
    assert!(guide.contains("浏览器") || guide.contains("browser"), "guide says: {guide}");
    assert!(guide.contains("⋮"), "no Android menu step in: {guide}");
    assert_eq!(bo.value("share-link").await?, link, "the guide's link to copy");
    assert!(!bo.shows("join").await?, "a join button where calls cannot work");
    println!("ARTEFACT the way out of WeChat: {}", bo.screenshot("in-app-guide-wechat").await?.display());
    bo.close().await?;

    // WeChat on an iPhone can call: the page gets out of the way and the call happens.
    let carol = driver.browser_as(phone(WECHAT_IOS)).await?;
    carol.open(&link).await?;
    carol.click("join").await?;
    carol.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    assert!(!carol.shows("in-app-guide").await?, "the guide shown where calls work");

    ana.close().await?;
    carol.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_microphone_says_how_to_allow_it() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let link = create_room(&relay, &ana).await?;
    let bo = driver.browser_as(Profile { deny_media: true, ..Profile::default() }).await?;

    bo.open(&link).await?;
    bo.click("mic-test").await?;
    assert_eq!(bo.attr("error", "data-error").await?.as_deref(), Some("mic_denied"));
    bo.click("join").await?;
    bo.wait_state("failed").await?;
    assert_eq!(bo.attr("error", "data-error").await?.as_deref(), Some("mic_denied"));
    let message = bo.text("error").await?;
    assert!(message.contains("Allow the microphone"), "the way forward is missing: {message}");
    assert!(bo.shows("join").await?, "no way to try again");

    ana.close().await?;
    bo.close().await
}

/// Latin words of three letters or more in `text`, but for names that stay in Latin
/// letters in Chinese too.
fn latin_words(text: &str) -> Vec<&str> {
    const NAMES: &[&str] = &["English", "Wi-Fi", "MOS", "Chrome", "Safari", "Edge", "Firefox"];
    text.split(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
        .filter(|word| word.len() >= 3 && !NAMES.contains(word))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_speaks_chinese_or_english_and_switches() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let li = driver.browser_as(Profile { language: Some("zh-CN"), ..Profile::default() }).await?;
    let ana = driver.browser(&[]).await?;
    let page_text = "return document.body.innerText";
    let lang = "return document.documentElement.lang";

    // A Chinese browser gets Chinese: the front door, the room page, an error.
    li.open(&relay.url("/")).await?;
    assert_eq!(li.text("create-room").await?, "创建房间");
    assert_eq!(li.script(lang).await?, json!("zh-CN"));
    li.click("create-room").await?;
    assert_eq!(li.text("join").await?, "加入通话");
    let room = li.script(page_text).await?.as_str().unwrap_or_default().to_owned();
    assert!(latin_words(&room).is_empty(), "English left in the Chinese room page: {:?}", latin_words(&room));
    li.open(&relay.url("/r/not-a-room")).await?;
    assert_eq!(li.text("error").await?.lines().next(), Some("这个房间链接无效。"));

    // The switch turns it to English, everywhere at once.
    li.click("language").await?;
    assert_eq!(li.script(lang).await?, json!("en"));
    assert_eq!(li.text("error").await?.lines().next(), Some("This room link is not valid."));

    // An English browser gets English, and the switch gives Chinese.
    ana.open(&relay.url("/")).await?;
    assert_eq!(ana.text("create-room").await?, "Create a room");
    ana.click("language").await?;
    assert_eq!(ana.text("create-room").await?, "创建房间");

    li.close().await?;
    ana.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_loads_nothing_from_anywhere_else() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = driver.browser(&[]).await?;
    let record = "window.violations = []; document.addEventListener('securitypolicyviolation', \
                  e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));";
    ana.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": record })).await?;
    // Forget the browser's own start page.
    ana.requested_urls().await?;

    // Everything a call touches: the page, the app, the socket, the microphone, the test
    // sound, the QR code, a second person.
    let link = create_room(&relay, &ana).await?;
    ana.click("test-sound").await?;
    ana.click("mic-test").await?;
    ana.click("join").await?;
    bo.open(&link).await?;
    bo.click("join").await?;
    ana.wait_state("connected").await?;

    let origin = relay.url("");
    let socket_origin = origin.replacen("http://", "ws://", 1);
    let urls = ana.requested_urls().await?;
    assert!(
        urls.iter().any(|u| u.ends_with(".wasm")) && urls.iter().any(|u| u.starts_with(&socket_origin)),
        "{urls:?}"
    );
    let elsewhere: Vec<&String> = urls
        .iter()
        .filter(|url| !(url.starts_with(&format!("{origin}/")) || url.starts_with(&format!("{socket_origin}/"))))
        .filter(|url| !url.starts_with("data:"))
        .collect();
    assert!(elsewhere.is_empty(), "requests to other origins: {elsewhere:?}");
    println!("{} requests, all to {origin}", urls.len());

    // Nothing of ours broke the policy; and it is in force: an injected inline script and a
    // foreign image are refused.
    assert_eq!(ana.script("return window.violations").await?, json!([]), "the page broke its own policy");
    let probe = "const s = document.createElement('script'); s.textContent = 'window.injected = true'; \
        document.head.append(s); const i = new Image(); i.src = 'http://192.0.2.1/pixel.png'; \
        return window.injected === true;";
    assert_eq!(ana.script(probe).await?, json!(false), "an injected inline script ran");
    until("the policy to report the probes", || async {
        let seen = ana.script("return window.violations.join(' ')").await?;
        let seen = seen.as_str().unwrap_or_default();
        Ok(seen.contains("script-src") && seen.contains("img-src"))
    })
    .await?;

    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_mode_serves_a_call_over_https() -> Result<()> {
    // LAN mode's certificate is self-signed: a person accepts the warning once; these
    // browsers are told to.
    let relay = Relay::start(&["--lan"]).await?;
    let driver = ChromeDriver::start().await?;
    let trusting = &["--ignore-certificate-errors"];
    let (ana, bo) = (driver.browser(trusting).await?, driver.browser(trusting).await?);
    meet(&relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    let page = ana.script("return [location.protocol, window.isSecureContext]").await?;
    assert_eq!(page, json!(["https:", true]));
    let urls = ana.requested_urls().await?;
    assert!(urls.iter().any(|url| url.starts_with("wss://")), "no secure socket in {urls:?}");
    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_joining_a_person_picks_a_microphone_and_hears_a_test_sound() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    create_room(&relay, &ana).await?;

    // The meter moves; then the list of microphones appears, named.
    ana.click("mic-test").await?;
    ana.wait_mic_level("the meter to move", |level| level > 0.05).await?;
    let options = "return [...document.querySelectorAll('[data-testid=\"microphone-device\"] option')]\
        .map(o => [o.value, o.textContent])";
    until("two or more named microphones", || async {
        Ok(ana.script(options).await?.as_array().is_some_and(|list| list.len() >= 2))
    })
    .await?;
    let list = ana.script(options).await?;
    let current = ana.value("microphone-device").await?;
    let other = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|option| option[0].as_str())
        .find(|id| *id != current)
        .ok_or_else(|| e2e::Error::Unexpected(format!("no other microphone in {list}")))?
        .to_owned();

    // Picking another one switches to it, and the meter follows the new microphone.
    let pick = format!(
        "const s = document.querySelector('[data-testid=\"microphone-device\"]'); s.value = '{other}'; \
         s.dispatchEvent(new Event('change', {{ bubbles: true }}));"
    );
    ana.script(&pick).await?;
    until("the picked microphone in use", || async { Ok(ana.value("microphone-device").await? == other) }).await?;
    ana.wait_mic_level("the meter to move on the new microphone", |level| level > 0.05).await?;
    assert!(!ana.shows("error").await?, "switching microphones showed an error");

    // The test sound plays and ends.
    ana.click("test-sound").await?;
    assert_eq!(ana.attr("test-sound", "data-playing").await?.as_deref(), Some("true"));
    until("the test sound to end", || async {
        Ok(ana.attr("test-sound", "data-playing").await?.as_deref() == Some("false"))
    })
    .await?;

    // Joining uses the microphone picked.
    ana.click("join").await?;
    ana.wait_state("waiting").await?;
    assert_eq!(ana.value("microphone-device").await?, other);
    ana.close().await
}
