//! What people expect of a call besides the voices (issue 14), each in real Chromium pages
//! on a real relay: joining only to listen (by choice, or when the microphone is refused)
//! and talking later; a chime and an announcement when someone comes or goes, and the
//! hidden tab's title; one main heading per screen; and audio that autoplay blocked
//! starting at the next tap anywhere on the page; a shared screen in place of the camera,
//! and the others told who shares.

use e2e::{Browser, ChromeDriver, HEARD, PATIENCE, Profile, Relay, Result, SILENT, open_room, until};
use serde_json::json;

/// Whether `page` shows its call as listen-only: the microphone button says so.
async fn listening(page: &Browser) -> Result<bool> {
    Ok(page.attr("mute", "data-listening").await?.as_deref() == Some("true"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_join_without_a_microphone_hear_the_call_and_talk_once_they_turn_it_on() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let link = open_room(&relay, &ana).await?;

    // Bo refused the microphone: Join fails with a way forward, which is to listen.
    let bo = driver.browser_as(Profile { deny_media: true, ..Profile::default() }).await?;
    bo.open(&link).await?;
    bo.click("join").await?;
    bo.wait_state("failed").await?;
    let told = bo.text("error").await?;
    assert!(told.contains("join without microphone"), "no way forward but allowing it: {told}");
    bo.click("listen-only").await?;
    bo.wait_state("connected").await?;
    assert!(listening(&bo).await?, "Bo's page does not say he only listens");
    let ana_id = bo.wait_peer("Bo hearing Ana", |p| p.level > HEARD).await?.id;
    let bo_id = ana.wait_peer("Ana connected to Bo", |p| p.link == "connected").await?.id;
    // Asked again in the call, the microphone is refused again: the call goes on.
    bo.click("mute").await?;
    assert_eq!(bo.attr("error", "data-error").await?.as_deref(), Some("mic_denied"));
    assert_eq!(bo.call_state().await?, "connected");
    assert!(listening(&bo).await?);

    // Cy chooses to listen; Ana hears nothing from Cy until Cy turns the microphone on.
    let cy = driver.browser(&[]).await?;
    cy.open(&link).await?;
    cy.click("listen-only").await?;
    cy.wait_state("connected").await?;
    assert!(listening(&cy).await?);
    assert!(!cy.shows("mic-level").await?, "a microphone meter on a page without a microphone");
    let both = ana.wait_peers(2, "Ana connected to Bo and Cy", PATIENCE, |p| p.link == "connected").await?;
    let cy_id = both.iter().map(|p| p.id).find(|id| *id != bo_id).expect("Cy among Ana's peers");
    cy.wait_peers(2, "Cy hearing Ana", PATIENCE, |p| p.id != ana_id || p.level > HEARD).await?;
    ana.wait_peers(2, "Ana hearing nobody: Bo and Cy only listen", PATIENCE, |p| p.level < SILENT).await?;

    cy.click("mute").await?;
    until("Cy's page talking", || async { Ok(!listening(&cy).await?) }).await?;
    ana.wait_peers(2, "Ana hearing Cy, and still not Bo", PATIENCE, |p| {
        if p.id == cy_id { p.level > HEARD } else { p.level < SILENT }
    })
    .await?;
    assert!(cy.shows("mic-level").await?, "Cy's microphone meter");

    for page in [ana, bo, cy] {
        page.close().await?;
    }
    Ok(())
}

/// Counts the notes the page plays on a running audio context (each chime is two; a
/// context nobody unlocked would be silent) and lets the test hide and show
/// the page, as switching tabs does: headless Chromium keeps every page visible.
const WATCH_THE_PAGE: &str = "window.__notes = 0; window.__hidden = false; \
    const start = AudioScheduledSourceNode.prototype.start; \
    AudioScheduledSourceNode.prototype.start = function (...args) { \
        if (this.context.state === 'running') window.__notes += 1; return start.apply(this, args); }; \
    Object.defineProperty(Document.prototype, 'visibilityState', { get() { return window.__hidden ? 'hidden' : 'visible'; } }); \
    Object.defineProperty(Document.prototype, 'hidden', { get() { return window.__hidden; } });";

/// Hides or shows `page`.
async fn hide(page: &Browser, hidden: bool) -> Result<()> {
    let script =
        format!("window.__hidden = {hidden}; document.dispatchEvent(new Event('visibilitychange')); return 0;");
    page.script(&script).await.map(drop)
}

/// How many elements `selector` finds on `page`.
async fn count(page: &Browser, selector: &str) -> Result<u64> {
    let found = page.script(&format!("return document.querySelectorAll('{selector}').length")).await?;
    Ok(found.as_u64().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comings_and_goings_chime_are_announced_and_counted_in_a_hidden_tabs_title() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let li = driver.browser_as(Profile { language: Some("zh-CN"), ..Profile::default() }).await?;
    let bo = driver.browser(&[]).await?;
    for page in [&ana, &li] {
        page.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": WATCH_THE_PAGE })).await?;
    }

    // One main heading on each screen: the front door, the room, the call.
    ana.open(&relay.url("/")).await?;
    assert_eq!(count(&ana, "h1").await?, 1, "the front door's headings");
    ana.click("create-room").await?;
    ana.wait_state("idle").await?;
    assert_eq!(count(&ana, "h1").await?, 1, "the room page's headings");
    let link = ana.value("share-link").await?;
    ana.click("join").await?;
    ana.wait_state("waiting").await?;
    li.open(&link).await?;
    li.click("join").await?;
    ana.wait_state("connected").await?;
    assert_eq!(count(&ana, "h1").await?, 1, "the call's headings");
    assert_eq!(count(&ana, "h1[aria-live], [aria-live] h1").await?, 1, "the call state is not announced");

    // Li was news to Ana, who was there first; Ana was no news to Li.
    until("Ana told that Li came", || async { Ok(ana.text("room-news").await?.contains("joined")) }).await?;
    let news = ana.text("room-news").await?;
    assert!(news.contains("2 in the call"), "Ana was told: {news}");
    assert_eq!(ana.script("return window.__notes").await?, json!(2), "one chime, two notes");
    assert_eq!(li.script("return window.__notes").await?, json!(0), "a chime for those already there");

    // Ana switches to another tab; Bo comes: her tab's title says so.
    hide(&ana, true).await?;
    let title = "return document.title";
    until("Ana's hidden tab counting two", || async { Ok(ana.script(title).await? == json!("(2) LinkCall")) }).await?;
    bo.open(&link).await?;
    bo.click("join").await?;
    let expected = json!("(3) Someone joined the call · LinkCall");
    until("Ana's hidden tab telling that Bo came", || async { Ok(ana.script(title).await? == expected) }).await?;
    hide(&ana, false).await?;
    until("Ana's tab titled plainly again", || async { Ok(ana.script(title).await? == json!("LinkCall")) }).await?;

    // Li hears of Bo, in Chinese; and of Bo leaving, as Ana does.
    until("Li told that Bo came", || async { Ok(li.text("room-news").await?.contains("有人加入了通话")) }).await?;
    bo.click("leave").await?;
    until("Ana told that Bo left", || async { Ok(ana.text("room-news").await?.contains("left")) }).await?;
    until("Li told that Bo left", || async { Ok(li.text("room-news").await?.contains("有人离开了通话")) }).await?;
    assert_eq!(ana.script("return window.__notes").await?, json!(6), "Ana heard three chimes");
    assert_eq!(li.script("return window.__notes").await?, json!(4), "Li heard two chimes");

    for page in [ana, li, bo] {
        page.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_that_autoplay_blocked_starts_at_the_next_tap_anywhere() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let link = open_room(&relay, &ana).await?;

    // Bo's browser plays sound only after a tap, and Bo joins by a script's click, which is
    // none (as when the first paint's tap is carried out by the app): his audio is blocked.
    let bo = driver.browser(&["--autoplay-policy=document-user-activation-required"]).await?;
    bo.open(&link).await?;
    bo.script("document.querySelector('[data-testid=\"listen-only\"]').click(); return 0;").await?;
    bo.wait_state("connected").await?;
    let paused = "const a = document.querySelector('[data-testid=\"peer\"] audio'); return a ? a.paused : null;";
    until("Bo's page offering a tap to hear", || async { bo.shows("tap-to-hear").await }).await?;
    assert_eq!(bo.script(paused).await?, json!(true), "blocked audio playing");

    // A tap on the call's state, not on the banner, starts it.
    bo.click("call-state").await?;
    until("Bo's audio playing", || async { Ok(bo.script(paused).await? == json!(false)) }).await?;
    assert!(!bo.shows("tap-to-hear").await?, "the banner stays after the audio started");

    ana.close().await?;
    bo.close().await
}

/// Keeps the screen the page shares, and its connections, within the test's reach: to
/// see which picture each connection sends, and to end the screen as the browser's own
/// "stop sharing" does (the track ends).
const KEEP_THE_SCREEN: &str = "const share = MediaDevices.prototype.getDisplayMedia; \
    MediaDevices.prototype.getDisplayMedia = async function (...args) { \
        window.__screen = await share.apply(this, args); return window.__screen; }; \
    window.__connections = []; const Connection = window.RTCPeerConnection; \
    window.RTCPeerConnection = function (...args) { const pc = new Connection(...args); window.__connections.push(pc); return pc; }; \
    window.RTCPeerConnection.prototype = Connection.prototype;";

/// What Ana's open connection sends as its picture: `screen`, `camera` or `none`.
const SENT_PICTURE: &str = "const pc = window.__connections.find(pc => pc.connectionState === 'connected'); \
    const track = pc?.getSenders().map(s => s.track).find(t => t && t.kind === 'video'); \
    if (!track) return 'none'; \
    return track.id === window.__screen?.getVideoTracks()[0].id ? 'screen' : 'camera';";

/// How many frames Bo's page has shown of Ana's picture.
const FRAMES_SHOWN: &str = "const v = document.querySelector('[data-testid=\"remote-video\"]'); \
    return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;";

/// Whether `page` says that the (one) other person shares their screen.
async fn sharing(page: &Browser) -> Result<bool> {
    let said = page.script("return document.querySelector('[data-testid=\"peer\"]')?.dataset.sharing ?? null").await?;
    Ok(said.as_str() == Some("true") && page.shows("peer-sharing").await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_replaces_the_camera_for_the_others_until_the_browser_stops_it() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&["--auto-select-desktop-capture-source=Entire screen"]).await?;
    let bo = driver.browser(&[]).await?;
    ana.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": KEEP_THE_SCREEN })).await?;
    e2e::meet(&relay, &ana, &bo).await?;
    ana.wait_state("connected").await?;
    bo.wait_state("connected").await?;
    let sent =
        || async { Ok::<_, e2e::Error>(ana.script(SENT_PICTURE).await?.as_str().unwrap_or_default().to_owned()) };
    let frames = || async { Ok::<_, e2e::Error>(bo.script(FRAMES_SHOWN).await?.as_u64().unwrap_or_default()) };
    // Bo's page shows frames of Ana's picture, more of them than `since`.
    let showing = |since: u64| async move {
        until("Bo's page showing Ana's picture", || async { Ok(frames().await? > since + 10) }).await?;
        frames().await
    };

    ana.click("video").await?;
    until("Ana sending her camera", || async { Ok(sent().await? == "camera") }).await?;
    let at_camera = showing(0).await?;
    assert_eq!(ana.attr("screen-share", "aria-pressed").await?.as_deref(), Some("false"));
    ana.click("screen-share").await?;
    assert_eq!(ana.attr("screen-share", "aria-pressed").await?.as_deref(), Some("true"));
    until("Ana sending her screen in place of her camera", || async { Ok(sent().await? == "screen") }).await?;
    let at_screen = showing(at_camera).await?;
    until("Bo's page saying that Ana shares her screen", || async { sharing(&bo).await }).await?;
    let hint = ana.script("return window.__screen.getVideoTracks()[0].contentHint").await?;
    assert_eq!(hint.as_str(), Some("detail"), "the screen's text kept sharp rather than its frame rate");

    // The browser's own "stop sharing": the track ends. Ana's camera comes back for Bo.
    ana.script(
        "const t = window.__screen.getVideoTracks()[0]; t.stop(); t.dispatchEvent(new Event('ended')); return 0;",
    )
    .await?;
    until("Ana's toggle off", || async {
        Ok(ana.attr("screen-share", "aria-pressed").await?.as_deref() == Some("false"))
    })
    .await?;
    until("Ana sending her camera again", || async { Ok(sent().await? == "camera") }).await?;
    showing(at_screen).await?;
    until("Bo's page saying that Ana stopped sharing", || async { Ok(!sharing(&bo).await?) }).await?;
    assert_eq!(bo.call_state().await?, "connected");

    ana.close().await?;
    bo.close().await
}
