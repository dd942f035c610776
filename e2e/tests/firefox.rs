//! Firefox and Chromium in one call, each way round: Ana creates the room in one browser,
//! Bo joins from the other (Firefox on an Android phone's screen, or Chromium). They hear each other, each one's mute is heard as silence, the
//! stats panel shows real figures on both sides, Bo's leave returns Ana to waiting, and
//! neither page logs an error. Real Firefox (Debian's firefox-esr, geckodriver), real
//! Chromium, a real relay, real WebRTC audio over loopback.

use e2e::{Browser, ChromeDriver, HEARD, Relay, Result, SILENT, audio_flows_both_ways, firefox, open_room};

/// The figures of the one remote participant's stats panel that must be real numbers once
/// audio has flowed for a while, with the least each may read.
const FIGURES: &[(&str, f64)] = &[("rtt-ms", 0.0), ("mos", 3.5), ("bitrate-kbps", 5.0), ("receive-kbps", 5.0)];

/// Waits until `browser`'s stats panel shows every one of [`FIGURES`] above its floor, and
/// the path the audio takes.
async fn stats_show_numbers(browser: &Browser, who: &str) -> Result<()> {
    e2e::until(&format!("{who}'s stats panel showing numbers"), || async {
        let stats = browser.stats().await?;
        let number = |name: &str| stats.get(name).and_then(|v| v.parse::<f64>().ok());
        let shown = FIGURES.iter().all(|&(name, floor)| number(name).is_some_and(|v| v > floor));
        Ok(shown && stats.get("path").map(String::as_str) == Some("host"))
    })
    .await
}

/// `muter` mutes: `listener` hears silence. `muter` unmutes: `listener` hears them again.
async fn mute_is_heard(muter: &Browser, listener: &Browser) -> Result<()> {
    muter.click("mute").await?;
    listener.wait_peer("silence from the muted side", |p| p.level < SILENT).await?;
    muter.click("mute").await?;
    listener.wait_peer("sound again after unmuting", |p| p.level > HEARD).await?;
    Ok(())
}

/// The call story between `ana` (who creates the room) and `bo` (who joins by the link).
async fn story(ana: &Browser, bo: &Browser) -> Result<()> {
    let relay = Relay::start(&[]).await?;
    bo.open(&open_room(&relay, ana).await?).await?;
    bo.click("join").await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    audio_flows_both_ways(ana, bo).await?;
    let heard_by_ana = ana.wait_peer("Ana hearing Bo", |p| p.level > HEARD).await?;
    let heard_by_bo = bo.wait_peer("Bo hearing Ana", |p| p.level > HEARD).await?;
    println!("levels heard: Ana {:.3}, Bo {:.3}", heard_by_ana.level, heard_by_bo.level);

    mute_is_heard(bo, ana).await?;
    mute_is_heard(ana, bo).await?;
    stats_show_numbers(ana, "Ana").await?;
    stats_show_numbers(bo, "Bo").await?;
    println!("Ana's stats: {:?}\nBo's stats: {:?}", ana.stats().await?, bo.stats().await?);

    bo.click("leave").await?;
    bo.wait_state("ended").await?;
    ana.wait_state("waiting").await?;
    assert!(ana.peers().await?.is_empty(), "Bo still shown after leaving");

    for (who, browser) in [("Ana", ana), ("Bo", bo)] {
        let errors = browser.console_errors().await?;
        assert!(errors.is_empty(), "{who}'s page logged errors: {errors:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_creates_and_firefox_on_a_phone_joins() -> Result<()> {
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (driver.browser(&[]).await?, firefox::phone(firefox::ANDROID_FIREFOX).await?);
    story(&ana, &bo).await?;
    bo.fits_width(360, "ended call on Firefox for Android").await?;
    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_creates_and_chromium_joins() -> Result<()> {
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (firefox::browser().await?, driver.browser(&[]).await?);
    story(&ana, &bo).await?;
    ana.close().await?;
    bo.close().await
}
