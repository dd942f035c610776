//! Ana creates a room, Bo opens the link, they hear each other, Bo mutes and Ana hears
//! silence, Bo leaves and Ana waits, Bo comes back through the same link. Two separate real
//! Chromium instances, a real relay, real WebRTC audio over loopback.
//!
//! It also prints two benchmark figures (not assertions): the median time from Bo's "join"
//! click to Bo's `connected` over 10 joins, and the compressed weight of the first page load.

use std::time::{Duration, Instant};

use e2e::{ChromeDriver, HEARD, Relay, Result, SILENT, audio_flows_both_ways, median, until};

/// The seconds a page's call timer shows, which must read `m:ss` (or `h:mm:ss`).
async fn call_time(page: &e2e::Browser) -> Result<u64> {
    let shown = page.text("call-timer").await?;
    let parts: Vec<Option<u64>> = shown.split(':').map(|part| part.parse().ok()).collect();
    let well_formed = matches!(parts.len(), 2 | 3) && shown.rsplit(':').next().is_some_and(|s| s.len() == 2);
    match (well_formed, parts.iter().copied().collect::<Option<Vec<u64>>>()) {
        (true, Some(parts)) => Ok(parts.iter().fold(0, |total, part| total * 60 + part)),
        _ => Err(e2e::Error::Unexpected(format!("the call timer shows {shown:?}, not m:ss"))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ana_and_bo_talk_through_a_room_link() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = driver.browser(&[]).await?;

    // Ana opens the app and creates a room; the page shows its link.
    ana.open(&relay.url("/")).await?;
    ana.click("create-room").await?;
    ana.wait_state("idle").await?;
    let link = ana.value("share-link").await?;
    assert!(link.starts_with(&relay.url("/r/")), "share link {link}");
    let weight = ana.page_weight().await?;

    ana.click("join").await?;
    ana.wait_state("waiting").await?;

    // Bo taps the link, checks that his microphone hears him, and joins with one tap.
    bo.open(&link).await?;
    bo.click("mic-test").await?;
    bo.wait_mic_level("Bo's meter moving before he joins", |level| level > HEARD).await?;
    bo.click("join").await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    audio_flows_both_ways(&ana, &bo).await?;
    let heard = ana.wait_peer("Ana hearing Bo's beeps", |p| p.level > HEARD).await?;
    bo.wait_peer("Bo hearing Ana's beeps", |p| p.level > HEARD).await?;
    println!("Ana hears Bo at RMS level {:.3}", heard.level);

    // Each page shows a verification code for the other person (in the details panel), and
    // the two are equal: the certificates each sees are the ones the other has.
    let code = "const c = document.querySelector('[data-testid=\"verification-code\"]'); \
        return c ? [c.dataset.peerId, c.textContent] : null;";
    until("a verification code on both pages", || async {
        Ok(!ana.script(code).await?.is_null() && !bo.script(code).await?.is_null())
    })
    .await?;
    let (ana_code, bo_code) = (ana.script(code).await?, bo.script(code).await?);
    assert_eq!(ana_code[1], bo_code[1], "different codes: Ana {ana_code}, Bo {bo_code}");
    let digits = ana_code[1].as_str().unwrap_or_default();
    assert!(
        digits.len() == 19 && digits.split(' ').all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit())),
        "not four groups of four digits: {digits}"
    );
    let bo_as_ana_sees_him = ana.peers().await?.first().map(|peer| peer.id.to_string());
    assert_eq!(ana_code[0].as_str(), bo_as_ana_sees_him.as_deref(), "Ana's code is not for Bo: {ana_code}");
    let call_began = call_time(&ana).await?;

    // The screen stays on during the call: Chromium grants the wake lock.
    let wake_lock = "return document.querySelector('[data-wake-lock]')?.dataset.wakeLock ?? null;";
    until("the screen wake lock held on Ana's page", || async {
        Ok(ana.script(wake_lock).await?.as_str() == Some("held"))
    })
    .await?;

    // Bo's own meter shows his microphone hearing the beeps in the call too.
    bo.wait_mic_level("Bo's meter moving in the call", |level| level > HEARD).await?;

    // Bo mutes: Ana hears silence, though packets keep flowing. Bo unmutes: Ana hears him.
    bo.click("mute").await?;
    assert_eq!(bo.attr("mute", "aria-pressed").await?.as_deref(), Some("true"));
    bo.wait_mic_level("Bo's meter silent while muted", |level| level < SILENT).await?;
    let silent = ana.wait_peer("silence from muted Bo", |p| p.level < SILENT).await?;
    ana.wait_peer("packets still arriving while Bo is muted", |p| p.bytes_received > silent.bytes_received).await?;
    bo.click("mute").await?;
    assert_eq!(bo.attr("mute", "aria-pressed").await?.as_deref(), Some("false"));
    ana.wait_peer("Bo heard again after unmuting", |p| p.level > HEARD).await?;

    // The call timer ran meanwhile.
    let call_went_on = call_time(&ana).await?;
    assert!(call_went_on > call_began, "the call timer stood at {call_began} s");

    // Bo leaves: his page says so, Ana waits alone and is told Bo can come back.
    bo.click("leave").await?;
    bo.wait_state("ended").await?;
    ana.wait_state("waiting").await?;
    assert!(ana.peers().await?.is_empty(), "Bo still shown after leaving");
    ana.attr("peer-left", "class").await?;

    // Bo reloads the link and the call comes back.
    bo.reload().await?;
    bo.click("join").await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    audio_flows_both_ways(&ana, &bo).await?;

    // Benchmark: Bo joins 10 more times, each from a freshly loaded link.
    let mut joins = Vec::new();
    for _ in 0..10 {
        bo.reload().await?;
        ana.wait_state("waiting").await?;
        bo.wait_state("idle").await?;
        let clicked = Instant::now();
        bo.click("join").await?;
        bo.wait_state("connected").await?;
        joins.push(clicked.elapsed());
    }
    ana.wait_state("connected").await?;

    let median_join = median(joins.clone());
    println!(
        "BENCH join click to connected: median {:.0} ms over {} joins (all: {:?} ms)",
        median_join.as_secs_f64() * 1e3,
        joins.len(),
        joins.iter().map(Duration::as_millis).collect::<Vec<_>>()
    );
    let total: u64 = weight.iter().map(|(_, bytes)| bytes).sum();
    for (name, bytes) in &weight {
        println!("BENCH first load: {bytes:>8} B  {name}");
    }
    println!(
        "BENCH first load total (compressed, html + js + wasm + css): {total} B = {:.1} KiB",
        total as f64 / 1024.0
    );
    assert!(weight.iter().any(|(name, _)| name.ends_with(".wasm")), "the first load fetched no wasm: {weight:?}");

    ana.close().await?;
    bo.close().await?;
    Ok(())
}
