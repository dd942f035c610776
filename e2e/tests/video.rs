//! Video is optional and off by default. Ana turns her camera on mid-call: Bo sees her,
//! and the audio never stops or restarts. She turns it off: the picture goes away on both
//! sides and her camera is released.

use e2e::{Browser, ChromeDriver, Relay, Result, meet, until};

/// The audio of the one peer once its counters (cumulative, both ways) have grown past
/// `since`: its id, bytes sent and bytes received.
async fn audio(browser: &Browser, since: (u32, u64, u64)) -> Result<(u32, u64, u64)> {
    let peer =
        browser.wait_peer("audio counters growing", |p| p.bytes_sent > since.1 && p.bytes_received > since.2).await?;
    Ok((peer.id, peer.bytes_sent, peer.bytes_received))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_comes_and_goes_mid_call_without_touching_the_audio() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    meet(&relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;

    // Voice only by default.
    assert_eq!(ana.attr("video", "aria-pressed").await?.as_deref(), Some("false"));
    assert!(!ana.shows("local-video").await? && !bo.shows("remote-video").await?);
    let before = audio(&ana, (0, 0, 0)).await?;

    ana.click("video").await?;
    assert_eq!(ana.attr("video", "aria-pressed").await?.as_deref(), Some("true"));
    until("Ana's own preview", || async { Ok(ana.video_width("local-video").await?.unwrap_or(0) > 0) }).await?;
    until("Bo seeing Ana's camera", || async { Ok(bo.video_width("remote-video").await?.unwrap_or(0) > 0) }).await?;
    println!("Bo sees Ana's camera at {} px wide", bo.video_width("remote-video").await?.unwrap_or(0));
    until("a video tier for Ana's camera", || async {
        Ok(matches!(ana.stats().await?.get("video-tier").map(String::as_str), Some("medium" | "high")))
    })
    .await?;
    let during = audio(&ana, before).await?;

    ana.click("video").await?;
    assert_eq!(ana.attr("video", "aria-pressed").await?.as_deref(), Some("false"));
    until("Ana's preview gone", || async { Ok(!ana.shows("local-video").await?) }).await?;
    until("Ana's picture gone at Bo's", || async { Ok(!bo.shows("remote-video").await?) }).await?;
    until("no video tier once the camera is off", || async {
        Ok(ana.stats().await?.get("video-tier").is_none_or(String::is_empty))
    })
    .await?;
    let after = audio(&ana, during).await?;

    // Same peer connection all along: the same peer, and audio counters that kept growing
    // (a restarted connection would have started them again from zero).
    assert!(before.0 == during.0 && during.0 == after.0, "the peer changed: {before:?} {during:?} {after:?}");
    println!("audio bytes sent by Ana: {} before, {} with video, {} after", before.1, during.1, after.1);
    assert_eq!(ana.call_state().await?, "connected");
    assert_eq!(bo.call_state().await?, "connected");
    ana.close().await?;
    bo.close().await
}
