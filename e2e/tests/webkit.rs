//! WebKit, Safari's engine, as far as it runs here: Debian's WebKitGTK has a microphone
//! (a mock one) but no WebRTC. On a phone-sized window it shows the home and room pages,
//! its microphone test moves the meter, and Join says in both languages that this browser
//! cannot call and hands over the link to open in one that can.
//!
//! Screenshots are kept in `target/e2e-artifacts/`.

use e2e::{Relay, Result, webkit};

/// A phone's page, in CSS pixels.
const PHONE: (u32, u32) = (360, 640);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_webkit_shows_the_pages_and_the_microphone_test_moves_the_meter() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let ana = webkit::browser(PHONE.0, PHONE.1).await?;

    ana.open(&relay.url("/")).await?;
    ana.text("create-room").await?;
    ana.fits_width(PHONE.0, "home page").await?;
    println!("ARTEFACT WebKit home page: {}", ana.screenshot("webkit-home").await?.display());

    ana.click("create-room").await?;
    let link = ana.value("share-link").await?;
    assert!(link.starts_with(&relay.url("/r/")), "the room's link: {link}");
    assert!(ana.shows("join").await? && ana.shows("test-sound").await?, "the room page's controls");
    ana.fits_width(PHONE.0, "room page").await?;

    // WebKit's mock microphone is never silent: a steady tone (a meter level of about
    // 0.07) with a louder beep (about 0.36) once a second. The meter follows both.
    ana.click("mic-test").await?;
    ana.wait_mic_level("the meter to rise on a beep", |level| level > 0.2).await?;
    ana.wait_mic_level("the meter to fall after the beep", |level| level < 0.1).await?;
    let hum = ana.number("mic-level", "data-level").await?;
    assert!(hum >= 0.05, "between the beeps the mock microphone hums, the meter says {hum}");
    ana.wait_mic_level("the meter to rise on the next beep", |level| level > 0.2).await?;
    ana.fits_width(PHONE.0, "room page with its microphone on").await?;
    println!("ARTEFACT WebKit room page, microphone on: {}", ana.screenshot("webkit-room").await?.display());
    ana.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tells_webkit_without_webrtc_to_open_the_link_elsewhere_in_both_languages() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let bo = webkit::browser(PHONE.0, PHONE.1).await?;
    let link = relay.url("/r/abcdefghijklmnopqrstuvwxyz");
    bo.open(&link).await?;
    bo.click("mic-test").await?;
    bo.wait_mic_level("the microphone test", |level| level > 0.05).await?;

    bo.click("join").await?;
    assert_eq!(bo.attr("error", "data-error").await?.as_deref(), Some("no_webrtc"));
    let english = bo.text("error").await?;
    assert!(english.contains("cannot make calls") && english.contains("Safari"), "Join says: {english}");
    assert_eq!(bo.value("share-link").await?, link, "the link to open elsewhere");
    assert!(bo.shows("copy-link").await?, "no button to copy the link");
    assert!(!bo.shows("join").await? && !bo.shows("mic-level").await?, "Join and the microphone meter are still shown");
    bo.fits_width(PHONE.0, "explanation").await?;
    println!("ARTEFACT WebKit cannot call (English): {}", bo.screenshot("webkit-cannot-call-en").await?.display());

    bo.click("language").await?;
    let chinese = bo.text("error").await?;
    assert!(chinese.contains("无法进行通话") && chinese.contains("Safari"), "Join says: {chinese}");
    assert_eq!(bo.text("copy-link").await?, "复制链接");
    bo.fits_width(PHONE.0, "explanation in Chinese").await?;
    println!("ARTEFACT WebKit cannot call (Chinese): {}", bo.screenshot("webkit-cannot-call-zh").await?.display());
    bo.close().await
}
