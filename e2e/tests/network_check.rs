//! The network check on the room page: before anyone joins, the page gathers candidates
//! against the relay's ICE servers and says, in plain words and in both languages, whether
//! a call across networks will get through. It asks for no microphone and blocks nothing.
//!
//! In the test namespace the browser's only address is the veth's 10.99.0.1, and no STUN
//! server can see it from outside: with our TURN server (Debian's coturn) the check finds
//! a relayed candidate; with no ICE server it finds the host candidate alone.

use std::time::{Duration, Instant};

use e2e::{Browser, ChromeDriver, Coturn, Error, PATIENCE, Relay, Result};

const SECRET: &str = "correct horse battery staple";

/// What Ana's room page says of her network, once the check is done.
struct Said {
    /// `data-result`.
    result: String,
    /// The words in English.
    english: String,
    /// The words in Chinese, after the language switch.
    chinese: String,
}

/// Ana opens a new room on `relay` (`setting` names its ICE servers, for the log) and reads
/// what the check says once it knows, with no error on the console; her browser stays open.
async fn room_page_says(relay: &Relay, setting: &str) -> Result<(ChromeDriver, Browser, Said)> {
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    ana.open(&relay.url("/")).await?;
    ana.click("create-room").await?;
    let start = Instant::now();
    let result = loop {
        let shown = ana.attr("network-check", "data-result").await?.unwrap_or_default();
        if !matches!(shown.as_str(), "" | "checking") {
            break shown;
        }
        if start.elapsed() > PATIENCE {
            return Err(Error::Timeout { what: "the network check's result".into(), after: PATIENCE });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("{setting}: {result} after {:.2} s", start.elapsed().as_secs_f64());
    let english = ana.text("network-check").await?;
    ana.click("language").await?;
    let chinese = ana.text("network-check").await?;
    assert_eq!(ana.console_errors().await?, Vec::<String>::new());
    Ok((driver, ana, Said { result, english, chinese }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_our_turn_server_the_room_page_says_calls_get_through() -> Result<()> {
    let coturn = Coturn::start(SECRET).await?;
    let url = coturn.url();
    let relay = Relay::start(&["--turn-url", &url, "--turn-secret", SECRET]).await?;
    let (_driver, ana, said) = room_page_says(&relay, "with coturn").await?;
    assert_eq!(said.result, "turn");
    assert!(said.english.contains("calls get through"), "{}", said.english);
    assert!(said.chinese.contains("通话可以接通"), "{}", said.chinese);
    assert!(ana.shows("mic-test").await?, "the check opened no microphone");
    assert_eq!(ana.call_state().await?, "idle", "nobody joined");
    ana.click("join").await?;
    ana.wait_state("waiting").await?;
    assert!(!ana.shows("network-check").await?, "the check is for before joining");
    ana.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_ice_server_the_room_page_says_calls_stay_on_this_network() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let (_driver, ana, said) = room_page_says(&relay, "with no ICE server").await?;
    assert_eq!(said.result, "none");
    assert!(said.english.contains("only reach people on the same network"), "{}", said.english);
    assert!(said.english.contains("Wi-Fi and mobile data"), "a way forward: {}", said.english);
    assert!(said.chinese.contains("同一网络"), "{}", said.chinese);
    ana.close().await
}
