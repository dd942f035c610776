//! Calls through Debian's real coturn, with the relay handing out short-lived credentials
//! and telling the browsers to use relayed candidates only.

use std::time::Duration;

use e2e::{ChromeDriver, Coturn, Relay, Result, meet};
use shared::call::CONNECT_TIMEOUT;

const SECRET: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_connects_through_coturn_when_only_relayed_paths_are_allowed() -> Result<()> {
    let coturn = Coturn::start(SECRET).await?;
    let url = coturn.url();
    let flags = ["--turn-url", &url, "--turn-secret", SECRET, "--ice-transport-policy", "relay"];
    let relay = Relay::start(&flags).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    meet(&relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    for (who, browser) in [("Ana", &ana), ("Bo", &bo)] {
        let peer = browser
            .wait_peer(&format!("{who}'s audio flowing over a TURN relay"), |p| {
                p.path == "relay" && p.bytes_received > 2_000
            })
            .await?;
        println!("{who}: path {}, {} audio bytes received", peer.path, peer.bytes_received);
    }
    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_turn_secret_fails_to_connect_and_the_page_says_so() -> Result<()> {
    let coturn = Coturn::start(SECRET).await?;
    let url = coturn.url();
    let flags = ["--turn-url", &url, "--turn-secret", "not the secret", "--ice-transport-policy", "relay"];
    let relay = Relay::start(&flags).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    meet(&relay, &ana, &bo).await?;
    let patience = CONNECT_TIMEOUT + Duration::from_secs(10);
    let took = bo.wait_state_for("failed", patience).await?;
    ana.wait_state_for("failed", patience).await?;
    println!("gave up after {:.1} s", took.as_secs_f64());
    for browser in [&ana, &bo] {
        assert_eq!(browser.attr("error", "data-error").await?.as_deref(), Some("peer_unreachable"));
        assert!(browser.peers().await?.iter().all(|p| p.bytes_received == 0), "audio flowed without TURN");
    }
    ana.close().await?;
    bo.close().await
}
