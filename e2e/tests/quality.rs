//! Call quality you can see and that adapts: per-peer statistics and MOS on the page; voice
//! that survives packet loss (RED between two Chromiums, Opus held at the bitrate its FEC
//! needs, the listener's decoder concealing under 4 % of what it plays at 10 % loss where
//! plain Opus stepped down to 12 kbit/s concealed 8 to 11 %), and the MOS shown from what
//! is heard.
//!
//! The loss is real: an nftables rule drops 10 % of the UDP packets in the test's
//! loopback-only network namespace. (Chromium's `WebRTC-FakeNetworkSendConfig` field trial
//! was tried first: the Chromium 156 of these machines ignores it, with no loss and no delay.)

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use e2e::rtp::{AudioCounters, AudioSpan};
use e2e::{Browser, ChromeDriver, PacketLoss, Relay, Result, meet};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// How many of a watch's last readings (one a second) its means are over.
const TAIL: usize = 10;

/// A number attribute of a page's `stats` element (0 when absent or empty).
async fn figure(browser: &Browser, name: &str) -> Result<f64> {
    Ok(browser.stats().await?.get(name).and_then(|v| v.parse().ok()).unwrap_or(0.0))
}

/// What Ana's page showed over a watch: the last max and sent bitrates (kbit/s), and the
/// means over the watch's last seconds (up to [`TAIL`]) of the loss she saw (%) and of the
/// MOS: the call as it stands, not as it was before the path changed.
struct Watched {
    max: f64,
    sending: f64,
    mean_loss: f64,
    mean_mos: f64,
}

/// Watches Ana's sender toward Bo, printing a line a second, for at least `span.start()`,
/// then until `settled` says of her maxBitrate (kbit/s) that it is where it should be or
/// `span.end()` has passed.
async fn watch(
    ana: &Browser,
    label: &str,
    span: RangeInclusive<Duration>,
    settled: impl Fn(f64) -> bool,
) -> Result<Watched> {
    let start = Instant::now();
    let mut last = (0.0, 0.0);
    let (mut losses, mut scores) = (Vec::new(), Vec::new());
    while start.elapsed() < *span.start() || (start.elapsed() < *span.end() && !settled(last.0)) {
        tokio::time::sleep(SECS(1)).await;
        let stats = ana.stats().await?;
        let get = |k: &str| stats.get(k).cloned().unwrap_or_default();
        println!(
            "{label} t={:>2}s max {:>5} kbit/s, sending {:>5} kbit/s, loss out {:>5} %, in {:>5} %, rtt {:>4} ms, MOS {}",
            start.elapsed().as_secs(),
            get("max-bitrate-kbps"),
            get("bitrate-kbps"),
            get("send-loss-pct"),
            get("loss-pct"),
            get("rtt-ms"),
            get("mos")
        );
        last = (get("max-bitrate-kbps").parse().unwrap_or(0.0), get("bitrate-kbps").parse().unwrap_or(0.0));
        if let (Ok(loss), Ok(mos)) = (get("loss-pct").parse::<f64>(), get("mos").parse::<f64>())
            && mos > 0.0
        {
            losses.push(loss);
            scores.push(mos);
        }
    }
    let mean = |values: &[f64]| {
        let tail = &values[values.len().saturating_sub(TAIL)..];
        tail.iter().sum::<f64>() / tail.len().max(1) as f64
    };
    Ok(Watched { max: last.0, sending: last.1, mean_loss: mean(&losses), mean_mos: mean(&scores) })
}

/// Ana and Bo in a call, their connections' own statistics readable ([`Browser::watch_connections`]).
async fn connected_pair(driver: &ChromeDriver, relay: &Relay) -> Result<(Browser, Browser)> {
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    for browser in [&ana, &bo] {
        browser.watch_connections().await?;
    }
    meet(relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    Ok((ana, bo))
}

/// What each listener's decoder did between two readings of both pages: Bo hears Ana,
/// Ana hears Bo.
async fn heard(ana: &Browser, bo: &Browser, before: &[AudioCounters; 2]) -> Result<[AudioSpan; 2]> {
    let after = [AudioCounters::read(ana).await?, AudioCounters::read(bo).await?];
    Ok([AudioSpan::between(&before[1], &after[1]), AudioSpan::between(&before[0], &after[0])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_path_keeps_the_voice_bitrate_up_and_shows_good_quality() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = connected_pair(&driver, &relay).await?;
    let before = [AudioCounters::read(&ana).await?, AudioCounters::read(&bo).await?];
    let Watched { max, sending, mean_loss, mean_mos } = watch(&ana, "clean", SECS(15)..=SECS(15), |_| false).await?;
    let [to_bo, to_ana] = heard(&ana, &bo, &before).await?;
    let codec = AudioCounters::read(&ana).await?.send_codec;
    println!(
        "BENCH clean path: maxBitrate {max} kbit/s, sending {sending} kbit/s, over the last {TAIL} s mean loss {mean_loss:.1} %, \
         mean MOS {mean_mos:.2}; concealed {:.2} % (Ana to Bo), {:.2} % (Bo to Ana); codec {codec}",
        to_bo.concealed_pct, to_ana.concealed_pct
    );
    assert!(codec.starts_with("audio/red"), "two Chromiums send RED, Ana sends {codec}");
    // RED's copy doubles the bytes: Opus gets half of the 32 kbit/s budget.
    assert_eq!(max, 16.0, "a clean path must keep Opus at 16 kbit/s under RED");
    let stats = ana.stats().await?;
    assert_eq!(stats.get("path").map(String::as_str), Some("host"));
    assert_eq!(stats.get("bars").map(String::as_str), Some("5"), "{stats:?}");
    assert!(figure(&ana, "mos").await? > 4.0, "{stats:?}");
    assert!(figure(&ana, "rtt-ms").await? < 50.0, "{stats:?}");
    assert!(!ana.shows("hint").await?, "a clean call shows a quality hint");
    for span in [to_bo, to_ana] {
        assert!(span.concealed_pct < 1.0, "a clean path conceals {:.2} %", span.concealed_pct);
    }
    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The loss is recovered and the quality shown is the quality heard. (The name is older
/// than RED: Opus's rung still steps down, 32 to 24 kbit/s, and the details still show the
/// raw loss; kept so the test's id stays the same.)
async fn ten_percent_loss_steps_the_voice_bitrate_down_and_explains_why() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = connected_pair(&driver, &relay).await?;
    // The path degrades once the call is up, as when someone walks away from the router.
    let lossy_network = PacketLoss::start(10)?;
    // Under loss alone Opus goes to the 24 kbit/s its FEC needs (up from RED's 16: FEC
    // inside RED), once the loss is reported; the first reports can lag: on a loaded
    // machine they came 13 s late. Watch 20 s, and on until it gets there.
    let (target, patience) = (24.0, SECS(45));
    let before = [AudioCounters::read(&ana).await?, AudioCounters::read(&bo).await?];
    let Watched { max, sending, mean_loss, mean_mos } =
        watch(&ana, "lossy", SECS(20)..=patience, |max| max == target).await?;
    let [to_bo, to_ana] = heard(&ana, &bo, &before).await?;
    println!(
        "BENCH 10 % loss: maxBitrate {max} kbit/s, sending {sending} kbit/s, over the last {TAIL} s mean loss {mean_loss:.1} %, \
         mean MOS {mean_mos:.2}; over {:.0} s concealed {:.2} % (Ana to Bo, network loss {:.1} %), {:.2} % (Bo to Ana, \
         network loss {:.1} %)",
        to_bo.seconds, to_bo.concealed_pct, to_bo.network_loss_pct, to_ana.concealed_pct, to_ana.network_loss_pct
    );
    assert_eq!(max, target, "under 10 % loss Opus should reach {target} kbit/s in {patience:?}");
    // The raw loss stays in the details; what is heard is nearly all there.
    assert!((5.0..=20.0).contains(&mean_loss), "Ana should see Bo's 10 % loss, sees {mean_loss:.1} % on average");
    for (direction, span) in [("Ana to Bo", to_bo), ("Bo to Ana", to_ana)] {
        assert!(
            (5.0..=20.0).contains(&span.network_loss_pct),
            "{direction}: network loss {:.1} %",
            span.network_loss_pct
        );
        assert!(span.concealed_pct <= 4.0, "{direction}: {:.2} % concealed at 10 % loss", span.concealed_pct);
    }
    assert!(mean_mos >= 3.8, "a recovered call should show good quality, mean MOS {mean_mos:.2}");
    drop(lossy_network);
    ana.close().await?;
    bo.close().await
}
