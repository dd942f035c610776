//! Usable without sight: axe-core (the accessibility engine browsers' own audits use, from
//! npm) finds no serious or critical violation on the home page, the room page and the
//! call screen, in English and in Chinese.

use e2e::{Browser, ChromeDriver, Error, Relay, Result, meet};

/// axe-core's script, installed by scripts/test.sh (`ensure_axe`) into the tools folder
/// (`$LINKCALL_TOOLS`, by default `~/.local/share/linkcall-tools`, as scripts/common.sh says).
fn axe_source() -> Result<String> {
    let tools = std::env::var("LINKCALL_TOOLS").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".local/share/linkcall-tools")
    });
    let path = tools.join("node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .map_err(|error| Error::Missing(format!("{} ({error}): run `bash scripts/test.sh`", path.display())))
}

/// The serious and critical violations axe finds on `page` as it is now, each as
/// `rule: target (summary)`.
async fn violations(page: &Browser, axe: &str) -> Result<Vec<String>> {
    page.script(&format!("{axe}\nwindow.__axe = null; axe.run(document).then(r => window.__axe = r.violations);"))
        .await?;
    let found = loop {
        let found = page.script("return window.__axe;").await?;
        if !found.is_null() {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut serious = Vec::new();
    for violation in found.as_array().into_iter().flatten() {
        if !matches!(violation["impact"].as_str(), Some("serious" | "critical")) {
            continue;
        }
        for node in violation["nodes"].as_array().into_iter().flatten() {
            serious.push(format!(
                "{}: {} ({})",
                violation["id"].as_str().unwrap_or_default(),
                node["target"],
                node["failureSummary"].as_str().map(|s| s.replace('\n', " ")).unwrap_or_default()
            ));
        }
    }
    Ok(serious)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_nothing_serious_on_the_home_page_the_room_page_and_the_call() -> Result<()> {
    let axe = axe_source()?;
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ana = driver.browser(&[]).await?;
    let bo = driver.browser(&[]).await?;

    let mut found = Vec::new();
    ana.open(&relay.url("/")).await?;
    found.extend(violations(&ana, &axe).await?.into_iter().map(|v| format!("home: {v}")));
    meet(&relay, &ana, &bo).await?;
    bo.wait_state("connected").await?;
    ana.wait_state("connected").await?;
    // The chat panel and the details panel open, with its figures and the security code.
    ana.click("chat-toggle").await?;
    ana.script("document.querySelectorAll('details').forEach(d => d.open = true); return null;").await?;
    found.extend(violations(&ana, &axe).await?.into_iter().map(|v| format!("call: {v}")));
    bo.click("leave").await?;
    bo.wait_state("ended").await?;
    found.extend(violations(&bo, &axe).await?.into_iter().map(|v| format!("room: {v}")));
    bo.click("language").await?;
    found.extend(violations(&bo, &axe).await?.into_iter().map(|v| format!("room, Chinese: {v}")));
    assert!(found.is_empty(), "axe-core found serious or critical violations:\n{}", found.join("\n"));

    ana.close().await?;
    bo.close().await
}
