//! Two relays sharing rooms through a real `redis-server`, behind a real HAProxy, as
//! `deploy/compose.scaled.yaml` runs them (issue 15), with real Chromium pages that open
//! everything through the balancer.
//!
//! Ana and Bo sit on different relays and call each other; the relays are restarted one
//! after the other (a rolling restart: each stopped as SIGTERM stops it, then started
//! again), and each page moves through the balancer to the relay left standing, takes its
//! seat back, and nobody hears a thing: the audio never stops and neither page ever shows
//! the other leaving. Then Redis stops: the call goes on, and a newcomer, joining the call
//! or opening a room of their own, is told the service is busy until Redis is back, then
//! gets in without a reload.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::cluster::{Haproxy, RedisServer};
use e2e::rtp::{AudioCounters, AudioSpan};
use e2e::{
    Browser, ChromeDriver, Error, HEARD, PATIENCE, Relay, Result, audio_flows_both_ways, open_room_at, poll, until,
};

/// How often the listening pages are read during a restart.
const SAMPLE_EVERY: Duration = Duration::from_millis(300);

/// How long the call is listened to before, between and after the steps of a story.
const BETWEEN: Duration = Duration::from_secs(2);

/// Redis, two relays sharing rooms through it, and HAProxy in front of them.
struct Scaled {
    redis: RedisServer,
    relays: [Relay; 2],
    balancer: Haproxy,
}

impl Scaled {
    async fn start() -> Result<Self> {
        let redis = RedisServer::start().await?;
        let url = redis.url();
        let flags = ["--redis-url", url.as_str()];
        let relays = [Relay::start(&flags).await?, Relay::start(&flags).await?];
        let balancer = Haproxy::start(&[relays[0].addr(), relays[1].addr()]).await?;
        let scaled = Self { redis, relays, balancer };
        for relay in 0..2 {
            scaled.in_the_balancer(relay).await?;
        }
        Ok(scaled)
    }

    /// The open sockets of each relay, as the balancer counts them.
    async fn sockets(&self) -> Result<Vec<u64>> {
        Ok(self.balancer.relays().await?.iter().map(|relay| relay.sessions).collect())
    }

    /// Waits until the balancer counts `sockets` on the relays; returns how long it took.
    async fn wait_sockets(&self, what: &str, sockets: [u64; 2]) -> Result<Duration> {
        let start = Instant::now();
        poll(what, || async {
            let now = self.sockets().await?;
            Ok(if now == sockets { Ok(start.elapsed()) } else { Err(format!("{now:?}")) })
        })
        .await
    }

    /// Waits until the balancer counts `sockets` (the pages of a stopped relay on the one
    /// left standing) and each of `pages` shows the call connected; returns the time since
    /// `since`. Their moment away is too short to watch for (0.2 to 0.4 s).
    async fn moved(&self, what: &str, sockets: [u64; 2], pages: &[&Browser], since: Instant) -> Result<Duration> {
        self.wait_sockets(what, sockets).await?;
        for page in pages {
            page.wait_state("connected").await?;
        }
        Ok(since.elapsed())
    }

    /// Waits until the balancer's health check finds `relay` up; returns how long it took.
    async fn in_the_balancer(&self, relay: usize) -> Result<Duration> {
        let start = Instant::now();
        poll(&format!("relay {relay} up in the balancer"), || async {
            let relays = self.balancer.relays().await?;
            let status = relays.get(relay).map(|r| r.status.clone()).unwrap_or_default();
            Ok(if status == "UP" { Ok(start.elapsed()) } else { Err(status) })
        })
        .await
    }

    /// Ana opens a room through the balancer and joins; Bo opens her link through the
    /// balancer and joins, on the other relay (the operator drains hers meanwhile, through
    /// HAProxy's runtime API). Returns the relay each is on, as the balancer counts them.
    async fn meet_on_two_relays(&self, ana: &Browser, bo: &Browser) -> Result<[usize; 2]> {
        let link = open_room_at(&self.balancer.url("/"), ana).await?;
        let ana_on = poll("Ana's socket on a relay", || async {
            let sockets = self.sockets().await?;
            Ok(match sockets.as_slice() {
                [1, 0] => Ok(0),
                [0, 1] => Ok(1),
                _ => Err(format!("{sockets:?}")),
            })
        })
        .await?;
        self.balancer.set_state(ana_on, "drain").await?;
        bo.open(&link).await?;
        bo.click("join").await?;
        self.wait_sockets("Ana and Bo each on a relay", [1, 1]).await?;
        self.balancer.set_state(ana_on, "ready").await?;
        self.in_the_balancer(ana_on).await?;
        Ok([ana_on, 1 - ana_on])
    }
}

/// What one page showed of the other person while something happened to the relays or
/// Redis.
struct Listener<'a> {
    name: &'static str,
    page: &'a Browser,
    /// The other person's id, which must never change.
    peer: u32,
    bytes: u64,
    last_growth: Instant,
    /// The longest time between two readings that found more audio received.
    longest_gap: Duration,
    readings: usize,
    /// Every reading that did not show the other person with the same id, or showed
    /// someone leave.
    strays: Vec<String>,
}

impl<'a> Listener<'a> {
    async fn new(name: &'static str, page: &'a Browser) -> Result<Self> {
        let peer = page.wait_peer("the other person", |_| true).await?;
        Ok(Self {
            name,
            page,
            peer: peer.id,
            bytes: peer.bytes_received,
            last_growth: Instant::now(),
            longest_gap: Duration::ZERO,
            readings: 0,
            strays: Vec::new(),
        })
    }

    async fn sample(&mut self) -> Result<()> {
        let peers = self.page.peers().await?;
        let left = self.page.shows("peer-left").await?;
        let now = Instant::now();
        match peers.iter().find(|peer| peer.id == self.peer) {
            Some(peer) if !left => {
                if peer.bytes_received > self.bytes {
                    self.longest_gap = self.longest_gap.max(now - self.last_growth);
                    self.last_growth = now;
                    self.bytes = peer.bytes_received;
                }
                self.readings += 1;
            }
            _ => self.strays.push(format!("{} saw {peers:?} (peer-left shown: {left})", self.name)),
        }
        Ok(())
    }

    /// The longest time without new audio, up to now.
    fn gap(&self) -> Duration {
        self.longest_gap.max(self.last_growth.elapsed())
    }
}

/// Prints what `listeners` saw while `what` happened, as a `BENCH` line for the longest
/// time without new audio, and fails unless each kept seeing the other person under the
/// same id, nobody leaving, and kept receiving audio.
fn seen_throughout(listeners: &[Listener<'_>], what: &str) {
    for listener in listeners {
        println!(
            "{what}: {} took {} readings: longest time without new audio {} ms",
            listener.name,
            listener.readings,
            listener.gap().as_millis()
        );
    }
    let gap = listeners.iter().map(Listener::gap).max().unwrap_or_default();
    println!("BENCH {what} audio gap: {} ms", gap.as_millis());
    let strays: Vec<&String> = listeners.iter().flat_map(|listener| &listener.strays).collect();
    assert!(strays.is_empty(), "{what}: a page lost sight of the other person: {strays:?}");
    // The pages read their statistics once a second: a reading every second is no gap.
    assert!(gap < Duration::from_millis(2_500), "{what}: the audio stopped for {gap:?}");
}

/// Each page's audio counters now: its newest connection's ([`Browser::watch_connections`]).
async fn counters(pages: [(&str, &Browser); 2]) -> Result<[AudioCounters; 2]> {
    Ok([AudioCounters::read(pages[0].1).await?, AudioCounters::read(pages[1].1).await?])
}

/// Fails unless each page played the whole time since `before` and its decoder invented
/// (concealed) under 1 % of it: the gap a person would hear, from each connection's own
/// counters (a clean path conceals a few tenths of a percent at most; a second of silence
/// in ten would be 10 %). Prints the figures.
async fn heard_throughout(what: &str, pages: [(&str, &Browser); 2], before: &[AudioCounters; 2]) -> Result<()> {
    for ((name, page), before) in pages.into_iter().zip(before) {
        let after = AudioCounters::read(page).await?;
        let span = AudioSpan::between(before, &after);
        let played = (after.total_samples_received - before.total_samples_received) / 48_000.0;
        println!("BENCH {what}, concealed at {name}'s end: {:.2} % of {played:.1} s played", span.concealed_pct);
        assert!(
            played > span.seconds * 0.9,
            "{what}: {name}'s page played {played:.1} s of audio in {:.1} s",
            span.seconds
        );
        assert!(span.concealed_pct < 1.0, "{what}: {name} heard a gap: {span:?}");
    }
    Ok(())
}

/// Reads every page each [`SAMPLE_EVERY`] until `done`.
async fn listen(listeners: &mut [Listener<'_>], done: &AtomicBool) -> Result<()> {
    while !done.load(Ordering::SeqCst) {
        for listener in listeners.iter_mut() {
            listener.sample().await?;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    Ok(())
}

/// Runs `work` while `listeners` sample the pages; returns what `work` returned.
async fn while_listening<T>(listeners: &mut [Listener<'_>], work: impl Future<Output = Result<T>>) -> Result<T> {
    let done = AtomicBool::new(false);
    let work = async {
        let result = work.await;
        done.store(true, Ordering::SeqCst);
        result
    };
    let (listened, worked) = tokio::join!(listen(listeners, &done), work);
    listened?;
    worked
}

/// Waits until Ana and Bo are connected and each hears the other.
async fn talking(ana: &Browser, bo: &Browser) -> Result<()> {
    for (name, page) in [("Ana", ana), ("Bo", bo)] {
        page.wait_state("connected").await?;
        page.wait_peer(&format!("{name} hearing the other"), |peer| peer.level > HEARD).await?;
    }
    audio_flows_both_ways(ana, bo).await
}

/// Ana's and Bo's browsers, each watching its connections ([`heard_throughout`] reads them).
async fn watched_pair(driver: &ChromeDriver) -> Result<(Browser, Browser)> {
    let (ana, bo) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    for page in [&ana, &bo] {
        page.watch_connections().await?;
    }
    Ok((ana, bo))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_haproxy_keeps_a_call_between_two_relays_and_its_audio() -> Result<()> {
    let mut scaled = Scaled::start().await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = watched_pair(&driver).await?;
    let [ana_on, bo_on] = scaled.meet_on_two_relays(&ana, &bo).await?;
    println!("Ana is on relay {ana_on}, Bo on relay {bo_on}");
    talking(&ana, &bo).await?;

    let mut listeners = [Listener::new("Ana", &ana).await?, Listener::new("Bo", &bo).await?];
    let pages = [("Ana", &ana), ("Bo", &bo)];
    let before = counters(pages).await?;
    let scaled = &mut scaled;
    let (ana_back, ana_relay_up, both_back) = while_listening(&mut listeners, async {
        tokio::time::sleep(BETWEEN).await;
        // Ana's relay stops: she comes back through the balancer to Bo's, in her seat.
        let stopped = Instant::now();
        scaled.relays[ana_on].stop().await?;
        let ana_back = scaled.moved("Ana and Bo both on Bo's relay", sockets_on(bo_on, 2), &[&ana], stopped).await?;
        tokio::time::sleep(BETWEEN).await;
        // It starts again, and the balancer sends sockets to it again.
        scaled.relays[ana_on].start_again().await?;
        let ana_relay_up = scaled.in_the_balancer(ana_on).await?;
        tokio::time::sleep(BETWEEN).await;
        // Then Bo's relay: both come back to the one restarted first.
        let stopped = Instant::now();
        scaled.relays[bo_on].stop().await?;
        let both_back =
            scaled.moved("Ana and Bo both on Ana's first relay", sockets_on(ana_on, 2), &[&ana, &bo], stopped).await?;
        scaled.relays[bo_on].start_again().await?;
        scaled.in_the_balancer(bo_on).await?;
        // Listen a little longer, to a call that no longer has any relay it started on.
        tokio::time::sleep(BETWEEN).await;
        Ok((ana_back, ana_relay_up, both_back))
    })
    .await?;

    seen_throughout(&listeners, "rolling restart");
    heard_throughout("rolling restart", pages, &before).await?;
    println!("BENCH rolling restart, first relay stopped to Ana connected again: {} ms", ana_back.as_millis());
    println!("BENCH rolling restart, stopped relay back in the balancer: {} ms", ana_relay_up.as_millis());
    println!("BENCH rolling restart, second relay stopped to both connected again: {} ms", both_back.as_millis());
    audio_flows_both_ways(&ana, &bo).await?;
    ana.close().await?;
    bo.close().await
}

/// `count` sockets on `relay`, none on the other.
fn sockets_on(relay: usize, count: u64) -> [u64; 2] {
    let mut sockets = [0; 2];
    sockets[relay] = count;
    sockets
}

/// Waits until `page` is in `state` without the busy notice; returns how long after `since`.
async fn gets_in(page: &Browser, state: &str, since: Instant) -> Result<Duration> {
    page.wait_state(state).await?;
    until("the busy notice to go", || async { Ok(!page.shows("service-busy").await?) }).await?;
    Ok(since.elapsed())
}

/// Waits until `page` shows `count` people and has heard each (a level over [`HEARD`] in
/// some reading: not all in the same one, the fake microphones have quiet seconds).
async fn hears_everyone(page: &Browser, what: &str, count: usize) -> Result<()> {
    let start = Instant::now();
    let mut heard = BTreeSet::new();
    loop {
        let peers = page.peers().await?;
        heard.extend(peers.iter().filter(|peer| peer.level > HEARD).map(|peer| peer.id));
        if peers.len() == count && peers.iter().all(|peer| heard.contains(&peer.id)) {
            return Ok(());
        }
        if start.elapsed() > PATIENCE {
            return Err(Error::Timeout { what: format!("{what} (peers shown: {peers:?})"), after: PATIENCE });
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_call_goes_on_and_newcomers_see_the_service_busy_until_it_is_back() -> Result<()> {
    let mut scaled = Scaled::start().await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo) = watched_pair(&driver).await?;
    scaled.meet_on_two_relays(&ana, &bo).await?;
    talking(&ana, &bo).await?;
    let link = ana.value("share-link").await?;

    let (cy, dan) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    let mut listeners = [Listener::new("Ana", &ana).await?, Listener::new("Bo", &bo).await?];
    let pages = [("Ana", &ana), ("Bo", &bo)];
    let before = counters(pages).await?;
    let scaled = &mut scaled;
    let (cy_in, dan_in) = while_listening(&mut listeners, async {
        tokio::time::sleep(BETWEEN).await;
        scaled.redis.stop()?;
        // Cy opens the call's link, Dan a room of his own: both are told to wait.
        cy.open(&link).await?;
        cy.click("join").await?;
        dan.open(&scaled.balancer.url("/")).await?;
        dan.click("create-room").await?;
        dan.click("join").await?;
        for (name, page) in [("Cy", &cy), ("Dan", &dan)] {
            until(&format!("{name}'s page to say the service is busy"), || page.shows("service-busy")).await?;
        }
        // A while without Redis: the call goes on meanwhile.
        tokio::time::sleep(Duration::from_secs(5)).await;
        for (name, page) in [("Cy", &cy), ("Dan", &dan)] {
            if !page.shows("service-busy").await? {
                return Err(Error::Unexpected(format!("{name}'s page stopped saying the service is busy")));
            }
        }

        // Ana and Bo heard each other all along (read before Cy comes in: their newest
        // connections would be Cy's).
        heard_throughout("redis down", pages, &before).await?;
        // Redis is back, empty; the pages get in by themselves.
        scaled.redis.resume().await?;
        let back = Instant::now();
        let (cy_in, dan_in) = tokio::join!(gets_in(&cy, "connected", back), gets_in(&dan, "waiting", back));
        Ok((cy_in?, dan_in?))
    })
    .await?;

    seen_throughout(&listeners, "redis down");
    println!("BENCH redis back to the newcomer in the call: {} ms", cy_in.as_millis());
    println!("BENCH redis back to the newcomer in a room of his own: {} ms", dan_in.as_millis());
    // Cy hears both, and both hear Cy.
    hears_everyone(&cy, "Cy hearing Ana and Bo", 2).await?;
    hears_everyone(&ana, "Ana hearing Bo and Cy", 2).await?;
    hears_everyone(&bo, "Bo hearing Ana and Cy", 2).await?;
    for page in [ana, bo, cy, dan] {
        page.close().await?;
    }
    Ok(())
}
