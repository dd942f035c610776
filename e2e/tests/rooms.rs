//! A room of several people, browsers mixed: Ana (Chromium) creates a room, Bo (Firefox),
//! Cy and Di (Chromium) open its link and join at once. All four connect, each on its own
//! connection to every other one, and each hears every other one: Di's mute silences Di,
//! and only Di, on the three other pages. Di leaves and the three others see it; Di comes
//! back, Ed and Flo make six; Gus, the seventh, is told the room is full.
//!
//! It prints benchmark figures (not assertions): the time from the first of the three join
//! taps until all four pages show every other person connected, and from Ed's (then Flo's)
//! tap until the newcomer is connected to everyone there.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::{Browser, ChromeDriver, HEARD, PATIENCE, PeerInfo, Relay, Result, SILENT, firefox, open_room};

/// How long the fifth and sixth get to connect. Seven browsers and up to fifteen
/// connections (sixty audio streams, each encoded or decoded) share the test machine's 2
/// cores, where each person has a phone of their own. Measured (per-thread CPU of every
/// browser process) in a room of six on an idle 2-core machine: the audio threads alone
/// (encoders, decoders, mixing, the audio service's echo canceller) take both cores, and
/// the pages' main threads get the rest: a WebDriver call to Flo's page took 6 to 30 s,
/// while her page showed every connection up 15 to 26 s after the tap (its own clock,
/// with twelve busy loops beside it). Flo's figure was 9 to 18 s here, 24 to 56 s with
/// the busy loops, 70 s in a CI run: a slow machine, not a slow call. A link that does not
/// come up prints every page's connection log.
const SIX_PATIENCE: Duration = Duration::from_secs(150);
use futures_util::future::try_join_all;

/// Waits until every one of `pages` shows exactly `count` others, each satisfying `test`,
/// watching them all at once; returns what each showed. `what` finishes "<who> ...".
async fn everyone_shows(
    pages: &[(&str, &Browser)],
    count: usize,
    what: &str,
    patience: Duration,
    test: impl Fn(&PeerInfo) -> bool + Copy,
) -> Result<Vec<Vec<PeerInfo>>> {
    try_join_all(
        pages.iter().map(|(who, browser)| async move {
            browser.wait_peers(count, &format!("{who} {what}"), patience, test).await
        }),
    )
    .await
}

/// Waits until every one of `pages` shows exactly `count` others, all connected.
async fn everyone_connected(
    pages: &[(&str, &Browser)],
    count: usize,
    patience: Duration,
) -> Result<Vec<Vec<PeerInfo>>> {
    everyone_shows(pages, count, &format!("connected to {count} others"), patience, |p| p.link == "connected").await
}

/// The ids `browser` shows.
fn ids(peers: &[PeerInfo]) -> BTreeSet<u32> {
    peers.iter().map(|p| p.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_people_two_browsers_hear_each_other_six_fit_and_the_seventh_is_told_the_room_is_full() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = firefox::browser().await?;
    let (cy, di) = (driver.browser(&[]).await?, driver.browser(&[]).await?);
    // The later three start now, while the machine is idle: seven browsers share 2 cores.
    let (ed, flo, gus) = (driver.browser(&[]).await?, driver.browser(&[]).await?, driver.browser(&[]).await?);
    let four = [("Ana", &ana), ("Bo", &bo), ("Cy", &cy), ("Di", &di)];
    let six = [four[0], four[1], four[2], four[3], ("Ed", &ed), ("Flo", &flo)];
    for (_, browser) in six {
        browser.watch_connections().await?;
    }

    let link = open_room(&relay, &ana).await?;
    for (_, joiner) in &four[1..] {
        joiner.open(&link).await?;
        joiner.wait_state("idle").await?;
    }
    let tapped = Instant::now();
    for (_, joiner) in &four[1..] {
        joiner.click("join").await?;
    }
    let seen: Vec<BTreeSet<u32>> =
        everyone_connected(&four, 3, PATIENCE).await?.iter().map(|peers| ids(peers)).collect();
    let connected = tapped.elapsed();
    println!(
        "BENCH room of four (3 Chromium, 1 Firefox): all connected {:.0} ms after the first join tap",
        connected.as_secs_f64() * 1e3
    );

    // Four people, each shown the three others: every page misses exactly its own id.
    let everyone: BTreeSet<u32> = seen.iter().flatten().copied().collect();
    assert_eq!(everyone.len(), 4, "ids shown: {seen:?}");
    let own: Vec<u32> = seen.iter().map(|shown| *everyone.difference(shown).next().expect("one id missing")).collect();
    assert_eq!(own.iter().collect::<BTreeSet<_>>().len(), 4, "two pages show the same people: {seen:?}");

    // Everyone hears everyone else, each on its own connection: Di mutes, and each other
    // page hears Di, and only Di, go silent.
    everyone_shows(&four, 3, "hearing the three others", PATIENCE, |p| p.level > HEARD).await?;
    let di_id = own[3];
    di.click("mute").await?;
    everyone_shows(&four[..3], 3, "hearing silence from Di only", PATIENCE, |p| {
        if p.id == di_id { p.level < SILENT } else { p.level > HEARD }
    })
    .await?;
    di.click("mute").await?;

    // Di leaves: the three others see it. Di comes back through the link.
    di.click("leave").await?;
    everyone_shows(&four[..3], 2, "seeing Di leave", PATIENCE, |p| p.id != di_id).await?;
    di.reload().await?;
    di.click("join").await?;

    // Ed, then Flo, make six: each newcomer is connected to everyone already there.
    for (count, name, newcomer) in [(4, "Ed", &ed), (5, "Flo", &flo)] {
        newcomer.open(&link).await?;
        let tapped = Instant::now();
        newcomer.click("join").await?;
        if let Err(timeout) = everyone_connected(&[(name, newcomer)], count, SIX_PATIENCE).await {
            for (who, browser) in &six[..count + 1] {
                println!("{who}'s connections:\n{}", browser.connection_log().await?);
            }
            return Err(timeout);
        }
        println!(
            "BENCH room of {}: {name} connected to the {count} others {:.1} s after the join tap",
            count + 1,
            tapped.elapsed().as_secs_f64()
        );
    }

    // Gus, the seventh, is told the room is full, in words, with a way forward; nobody in
    // the room sees him.
    gus.open(&link).await?;
    gus.click("join").await?;
    assert_eq!(gus.attr("error", "data-error").await?.as_deref(), Some("room_full"));
    let told = gus.text("error").await?;
    assert!(told.contains("full") && told.contains("new room"), "Gus was told: {told}");
    assert_eq!(ana.peers().await?.len(), 5, "Ana sees Gus, who was refused");

    for browser in [ana, bo, cy, di, ed, flo, gus] {
        browser.close().await?;
    }
    Ok(())
}
