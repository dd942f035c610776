//! The network fails under a call and comes back, and so does the call, by itself: no
//! reload, no tap. Ana and Bo talk through the real relay in a loopback-only network
//! namespace while nftables drops real packets ([`Fault`]): all media for 10 s; everything
//! (media and the relay) for 35 s, as when a phone walks out of Wi-Fi; a fifth of the
//! relay's packets while Bo joins.
//!
//! The promise checked is the person's: each page `connected`, one participant shown, and
//! their audio arriving again (received bytes growing) within 5 s of the network returning.
//! The tests keep watching longer than that, so a late recovery is measured, not only failed.

use std::time::{Duration, Instant};

use e2e::{Browser, ChromeDriver, Error, Fault, PATIENCE, Relay, Result, meet, open_room};

/// How soon after the network returns the call must be back on both sides.
const PROMISE: Duration = Duration::from_secs(5);

/// How long after the network returns the tests watch, to say when the call came back.
const WATCH: Duration = Duration::from_secs(30);

/// Received audio bytes, beyond the fewest seen since a watch began, that show audio
/// arriving: a second or less of the fake microphone's beeps (the pages counted 1 to 4 kB
/// a second), more than a few stray packets.
const FLOWING: u64 = 1_000;

/// What the tests read of one side of the call at one moment.
struct Reading {
    state: String,
    /// The participants shown.
    peers: usize,
    /// The audio bytes received from all of them.
    heard: u64,
}

async fn read(browser: &Browser) -> Result<Reading> {
    let peers = browser.peers().await?;
    Ok(Reading {
        state: browser.call_state().await?,
        peers: peers.len(),
        heard: peers.iter().map(|peer| peer.bytes_received).sum(),
    })
}

/// One side of the call as a watch follows it.
struct Side<'a> {
    name: &'static str,
    browser: &'a Browser,
    /// The fewest received bytes seen since the watch began (a participant set up anew
    /// counts from zero again).
    low: Option<u64>,
    /// When the side was talking again, from the start of the watch.
    back: Option<Duration>,
}

impl<'a> Side<'a> {
    fn new(name: &'static str, browser: &'a Browser) -> Self {
        Self { name, browser, low: None, back: None }
    }

    /// Reads the side; notes when it is first connected to one participant whose audio
    /// arrives. Returns the reading for the log.
    async fn check(&mut self, since: Instant) -> Result<String> {
        let Reading { state, peers, heard } = read(self.browser).await?;
        let low = self.low.map_or(heard, |low| low.min(heard));
        self.low = Some(low);
        if self.back.is_none() && state == "connected" && peers == 1 && heard >= low + FLOWING {
            self.back = Some(since.elapsed());
        }
        Ok(format!("{} {state} ({peers} shown, +{} B)", self.name, heard - low))
    }
}

/// Watches Ana and Bo from `since` until both are talking (connected, one participant
/// shown, audio arriving) or `limit` has passed, a log line a second. Returns when each was
/// talking, counted from `since`; `None` if not within `limit`.
async fn until_talking(
    label: &str,
    ana: &Browser,
    bo: &Browser,
    since: Instant,
    limit: Duration,
) -> Result<[Option<Duration>; 2]> {
    let mut sides = [Side::new("Ana", ana), Side::new("Bo", bo)];
    let mut next_log = Duration::ZERO;
    while since.elapsed() < limit {
        let mut line = Vec::new();
        for side in &mut sides {
            line.push(side.check(since).await?);
        }
        if since.elapsed() >= next_log || sides.iter().all(|side| side.back.is_some()) {
            println!("{label} {:>5.1} s: {}", since.elapsed().as_secs_f64(), line.join(", "));
            next_log += Duration::from_secs(1);
        }
        if sides.iter().all(|side| side.back.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(sides.map(|side| side.back))
}

/// The call is up: both sides talking within [`PATIENCE`] of `since`, or an error.
async fn talking(label: &str, ana: &Browser, bo: &Browser, since: Instant) -> Result<[Duration; 2]> {
    match until_talking(label, ana, bo, since, PATIENCE).await? {
        [Some(ana), Some(bo)] => Ok([ana, bo]),
        [ana, bo] => Err(Error::Timeout {
            what: format!("the call ({label}): Ana talking {ana:?}, Bo talking {bo:?}"),
            after: PATIENCE,
        }),
    }
}

/// What one side showed while the network was down.
#[derive(Debug)]
struct Outage {
    /// Each state shown, in order, once per change.
    states: Vec<String>,
    /// Audio bytes received from the fault's third second to its end: by then what was on
    /// the way has arrived and been counted.
    heard: u64,
}

/// Sits out `span` of a fault, reading both pages once a second; prints what they show.
async fn sit_out(label: &str, ana: &Browser, bo: &Browser, span: Duration) -> Result<[Outage; 2]> {
    let start = Instant::now();
    let mut outages = [(); 2].map(|_| Outage { states: Vec::new(), heard: 0 });
    let mut settled = [None; 2];
    loop {
        let mut line = Vec::new();
        for (side, (name, browser)) in [("Ana", ana), ("Bo", bo)].into_iter().enumerate() {
            let Reading { state, peers, heard } = read(browser).await?;
            line.push(format!("{name} {state} ({peers} shown, {heard} B)"));
            let outage = &mut outages[side];
            if outage.states.last() != Some(&state) {
                outage.states.push(state);
            }
            if start.elapsed() >= Duration::from_secs(3) {
                let from = *settled[side].get_or_insert(heard);
                outage.heard = heard.saturating_sub(from);
            }
        }
        println!("{label} {:>4.1} s: {}", start.elapsed().as_secs_f64(), line.join(", "));
        let left = span.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(outages);
        }
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
}

/// Checks the fault really silenced the call, else the test would prove nothing.
fn check_silenced(outages: &[Outage; 2]) -> Result<()> {
    for (name, outage) in ["Ana", "Bo"].into_iter().zip(outages) {
        if outage.heard >= FLOWING {
            return Err(Error::Unexpected(format!(
                "the fault did not stop the audio: {name} received {} B during it",
                outage.heard
            )));
        }
    }
    Ok(())
}

/// Asserts both sides were talking again within [`PROMISE`] of the network returning.
fn assert_back(what: &str, back: [Option<Duration>; 2]) {
    for (name, back) in ["Ana", "Bo"].into_iter().zip(back) {
        match back {
            Some(after) => assert!(after <= PROMISE, "{what}: {name} took {after:.2?} to be talking again"),
            None => panic!("{what}: {name} was not talking again {WATCH:?} after the network returned"),
        }
    }
}

fn seconds(back: Option<Duration>) -> String {
    back.map_or_else(|| format!("not within {} s", WATCH.as_secs()), |after| format!("{:.2} s", after.as_secs_f64()))
}

/// Ana and Bo in a call with audio arriving both ways.
async fn in_a_call(driver: &ChromeDriver, relay: &Relay) -> Result<(Browser, Browser)> {
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    meet(relay, &ana, &bo).await?;
    talking("call", &ana, &bo, Instant::now()).await?;
    Ok((ana, bo))
}

/// Ana and Bo in a call; `fault` strikes for `lasting`, then the network returns: how long
/// until each is talking again (asserted within the product's promise, printed as `what`).
async fn survive(what: &str, lasting: Duration, fault: impl FnOnce(&Relay) -> Result<Fault>) -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = in_a_call(&driver, &relay).await?;

    let fault = fault(&relay)?;
    let outage = sit_out(what, &ana, &bo, lasting).await?;
    let dropped = fault.dropped()?;
    drop(fault);
    let returned = Instant::now();
    println!("{what}: {dropped} packets dropped; Ana showed {:?}, Bo {:?}", outage[0].states, outage[1].states);
    check_silenced(&outage)?;

    let back = until_talking(what, &ana, &bo, returned, WATCH).await?;
    println!("BENCH {what}, network back to talking: Ana {}, Bo {}", seconds(back[0]), seconds(back[1]));
    assert_back(what, back);
    ana.close().await?;
    bo.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_blackout_recovers_within_five_seconds() -> Result<()> {
    // All UDP goes: the audio and ICE's checks; the relay's socket stays up.
    survive("10 s UDP blackout", Duration::from_secs(10), |_| Fault::all_udp()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_recovers_without_a_tap() -> Result<()> {
    // Everything but the test's own hold on the browsers goes, for longer than the page's
    // 25 s relay timeout and than ICE keeps trying.
    survive("35 s offline", Duration::from_secs(35), |relay| Fault::everything_to(relay.port())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_signaling_during_setup_still_connects() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    let link = open_room(&relay, &ana).await?;

    // Bo's link is poor: a fifth of the packets to and from the relay are lost, the page's
    // own files included; the media path is clean.
    let lossy = Fault::tcp_loss(relay.port(), 20)?;
    let opened = Instant::now();
    bo.open(&link).await?;
    let loaded = opened.elapsed();
    bo.click("join").await?;
    let joined = Instant::now();
    let back = until_talking("lossy setup", &ana, &bo, joined, WATCH).await?;
    let dropped = lossy.dropped()?;
    drop(lossy);
    println!(
        "BENCH 20 % TCP loss to the relay ({dropped} packets dropped): Bo's page loaded in {:.2} s; join to talking: Ana {}, Bo {}",
        loaded.as_secs_f64(),
        seconds(back[0]),
        seconds(back[1])
    );
    assert!(dropped > 0, "the lossy link dropped nothing: the test proved nothing");
    for (name, back) in ["Ana", "Bo"].into_iter().zip(back) {
        assert!(
            back.is_some(),
            "with 20 % of the relay's packets lost, {name} was not talking {WATCH:?} after Bo joined"
        );
    }
    ana.close().await?;
    bo.close().await
}
