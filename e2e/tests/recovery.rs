//! The relay stops mid-call: the audio keeps flowing peer to peer, both pages say they are
//! reconnecting, and when the relay is back both are in the room and connected again.

use std::time::{Duration, Instant};

use e2e::{Browser, ChromeDriver, Relay, Result, meet};

/// Waits until `browser` has received `more` audio bytes beyond what it had.
async fn audio_keeps_arriving(browser: &Browser, who: &str, more: u64) -> Result<u64> {
    let before = browser.wait_peer(who, |_| true).await?.bytes_received;
    let after = browser.wait_peer(who, |p| p.bytes_received > before + more).await?.bytes_received;
    Ok(after - before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_survives_a_relay_restart_and_the_room_comes_back() -> Result<()> {
    let mut relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    meet(&relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;

    relay.stop().await?;
    ana.wait_state("reconnecting").await?;
    bo.wait_state("reconnecting").await?;
    let ana_got = audio_keeps_arriving(&ana, "audio reaching Ana while the relay is down", 4_000).await?;
    let bo_got = audio_keeps_arriving(&bo, "audio reaching Bo while the relay is down", 4_000).await?;
    println!("with the relay down: Ana received {ana_got} more audio bytes, Bo {bo_got}");
    tokio::time::sleep(Duration::from_secs(3)).await;

    relay.start_again().await?;
    let restarted = Instant::now();
    loop {
        let (a, b) = (ana.call_state().await?, bo.call_state().await?);
        println!("{:>5.1} s after the restart: Ana {a}, Bo {b}", restarted.elapsed().as_secs_f64());
        if (a.as_str(), b.as_str()) == ("connected", "connected") || restarted.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recovered = restarted.elapsed();
    println!("BENCH relay restart to both connected: {:.2} s", recovered.as_secs_f64());
    assert!(recovered < Duration::from_secs(5), "took {recovered:?} to recover");
    audio_keeps_arriving(&ana, "audio reaching Ana after the restart", 4_000).await?;
    audio_keeps_arriving(&bo, "audio reaching Bo after the restart", 4_000).await?;
    ana.close().await?;
    bo.close().await
}
