//! Names and chat, peer to peer: Ana, Bo and Cy (three Chromiums) give their names before
//! joining one room: Ana's in Chinese characters, Bo's with markup in it, which must show
//! as the words he typed; Cy joins without microphone, only to listen, and the others' pages
//! say so. Each page shows the other two by name. Ana and Bo open the chat;
//! Ana writes a message with a link and markup: it reaches Bo and Cy as plain text, from
//! Ana, and is marked delivered on Ana's page once both have it; Cy, whose chat is closed,
//! sees one unread message on the chat button until he opens it. A message over the limit
//! cannot be sent and the page says why. Cy renames himself mid-call: the others see it.
//! Ana's name was kept on her device: a reload shows it again. Bo's chat in Chinese.

use std::collections::BTreeMap;

use e2e::{Browser, ChromeDriver, PATIENCE, Relay, Result, poll, until};
use serde_json::Value;

const ANA: &str = "安娜";
const BO: &str = "<b>x</b> Bo";
const CY: &str = "Cy";
const CY_RENAMED: &str = "Cyrus 赛";
const MESSAGE: &str = "see https://example.com/x and <i>this</i>";

/// The names a page shows for the others, by peer id, and whether any markup became
/// elements inside a participant's row (it must not).
async fn names(page: &Browser) -> Result<(BTreeMap<u32, String>, bool)> {
    let shown = page
        .script(
            r#"const peers = [...document.querySelectorAll('[data-testid="peer"]')];
            return [peers.map(p => [Number(p.dataset.peerId), p.querySelector('[data-testid="peer-name"]').textContent]),
                peers.some(p => p.querySelector('.name b, .name i'))]"#,
        )
        .await?;
    let names = shown[0]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| Some((row[0].as_u64()? as u32, row[1].as_str()?.to_owned())))
        .collect();
    Ok((names, shown[1] == Value::Bool(true)))
}

/// Waits until `page` shows exactly `expected` as the others' names; returns them by id.
async fn wait_names(who: &str, page: &Browser, expected: &[&str]) -> Result<BTreeMap<u32, String>> {
    let mut expected: Vec<&str> = expected.to_vec();
    expected.sort();
    poll(&format!("{who} showing the names {expected:?}"), || async {
        let (shown, markup) = names(page).await?;
        assert!(!markup, "{who}'s page turned a name's markup into elements: {shown:?}");
        let mut now: Vec<&str> = shown.values().map(String::as_str).collect();
        now.sort();
        Ok(if now == expected { Ok(shown) } else { Err(format!("{shown:?}")) })
    })
    .await
}

/// Each participant's `data-listening` on `page`, by id, and whether its badge shows.
async fn listening(page: &Browser) -> Result<BTreeMap<u32, (String, bool)>> {
    let shown = page
        .script(
            r#"return [...document.querySelectorAll('[data-testid="peer"]')].map(p => [Number(p.dataset.peerId),
                p.dataset.listening, !!p.querySelector('[data-testid="peer-listening"]')])"#,
        )
        .await?;
    Ok(shown
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| Some((row[0].as_u64()? as u32, (row[1].as_str()?.to_owned(), row[2].as_bool()?))))
        .collect())
}

/// The id `page` shows for the participant named `name`.
fn id_of(shown: &BTreeMap<u32, String>, name: &str) -> u32 {
    *shown.iter().find(|(_, n)| n.as_str() == name).expect("the name is shown").0
}

/// The chat messages `page` shows: `data-from`, `data-delivered`, the author's name, the
/// text, and whether a delivered mark shows; plus whether the log holds any link or markup
/// element.
async fn messages(page: &Browser) -> Result<(Vec<[String; 5]>, bool)> {
    let shown = page
        .script(
            r#"const log = document.querySelector('[data-testid="chat-log"]');
            const rows = [...document.querySelectorAll('[data-testid="chat-message"]')].map(m => [
                m.dataset.from, m.dataset.delivered ?? '', m.querySelector('.chat-from').textContent,
                m.querySelector('.chat-text').textContent, m.querySelector('.chat-delivered') ? '✓' : '']);
            return [rows, !!log && !!log.querySelector('a, i, b, img')]"#,
        )
        .await?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let rows = shown[0]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| [text(&row[0]), text(&row[1]), text(&row[2]), text(&row[3]), text(&row[4])])
        .collect();
    Ok((rows, shown[1] == Value::Bool(true)))
}

/// Waits until `page` shows exactly the messages `expected`, with no element made of their
/// words.
async fn wait_messages(who: &str, page: &Browser, expected: &[[&str; 5]]) -> Result<()> {
    poll(&format!("{who} showing the messages {expected:?}"), || async {
        let (shown, markup) = messages(page).await?;
        assert!(!markup, "{who}'s chat made elements out of a message: {shown:?}");
        let done = shown.len() == expected.len() && shown.iter().zip(expected).all(|(s, e)| s.iter().eq(e.iter()));
        Ok(if done { Ok(()) } else { Err(format!("{shown:?}")) })
    })
    .await
}

/// The chat button's `aria-expanded` and `data-unread`, and the badge's text if shown.
async fn chat_button(page: &Browser) -> Result<(String, String, Option<String>)> {
    let expanded = page.attr("chat-toggle", "aria-expanded").await?.unwrap_or_default();
    let unread = page.attr("chat-toggle", "data-unread").await?.unwrap_or_default();
    let badge = if page.shows("chat-unread").await? { Some(page.text("chat-unread").await?) } else { None };
    Ok((expanded, unread, badge))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_people_see_each_others_names_and_chat_peer_to_peer() -> Result<()> {
    let relay = Relay::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let (ana, bo, cy) = (driver.browser(&[]).await?, driver.browser(&[]).await?, driver.browser(&[]).await?);

    // Ana creates the room and gives her name; the page keeps it on her device.
    ana.open(&relay.url("/")).await?;
    ana.click("create-room").await?;
    ana.wait_state("idle").await?;
    ana.type_into("display-name", &format!("  {ANA}  ")).await?;
    assert_eq!(ana.value("display-name").await?, ANA, "the name is trimmed");
    ana.reload().await?;
    ana.wait_state("idle").await?;
    assert_eq!(ana.value("display-name").await?, ANA, "the name was not kept on Ana's device");
    ana.click("join").await?;
    ana.wait_state("waiting").await?;
    let link = ana.value("share-link").await?;

    // Bo and Cy open the link, give their names and join, Cy only to listen.
    for (joiner, name, join) in [(&bo, BO, "join"), (&cy, CY, "listen-only")] {
        joiner.open(&link).await?;
        joiner.wait_state("idle").await?;
        joiner.type_into("display-name", name).await?;
        joiner.click(join).await?;
    }
    for (who, page) in [("Ana", &ana), ("Bo", &bo), ("Cy", &cy)] {
        page.wait_peers(2, &format!("{who} connected to the two others"), PATIENCE, |p| p.link == "connected").await?;
    }

    // Each sees the others by name, markup as the words typed.
    let at_ana = wait_names("Ana", &ana, &[BO, CY]).await?;
    let at_bo = wait_names("Bo", &bo, &[ANA, CY]).await?;
    wait_names("Cy", &cy, &[ANA, BO]).await?;
    let (ana_id, bo_id, cy_id) = (id_of(&at_bo, ANA), id_of(&at_ana, BO), id_of(&at_ana, CY));
    assert_eq!(id_of(&at_bo, CY), cy_id, "Ana and Bo disagree on Cy's id");

    // Ana and Bo see that Cy only listens, and that the other one does not.
    for (who, page, other) in [("Ana", &ana, bo_id), ("Bo", &bo, ana_id)] {
        let expected = BTreeMap::from([(cy_id, ("true".to_owned(), true)), (other, ("false".to_owned(), false))]);
        poll(&format!("{who} showing Cy listening only"), || async {
            let listening = listening(page).await?;
            Ok(if listening == expected { Ok(()) } else { Err(format!("{listening:?}")) })
        })
        .await?;
    }

    // Ana and Bo open the chat; Cy's stays closed.
    for page in [&ana, &bo] {
        assert_eq!(chat_button(page).await?, ("false".into(), "0".into(), None));
        page.click("chat-toggle").await?;
        assert_eq!(page.attr("chat-toggle", "aria-expanded").await?.as_deref(), Some("true"));
    }

    // Ana writes; Bo and Cy get it from her, as text; Ana sees it delivered to both.
    ana.type_into("chat-input", MESSAGE).await?;
    ana.click("chat-send").await?;
    let ana_id = ana_id.to_string();
    wait_messages("Bo", &bo, &[[&ana_id, "", ANA, MESSAGE, ""]]).await?;
    until("one unread message on Cy's closed chat", || async {
        Ok(chat_button(&cy).await? == ("false".into(), "1".into(), Some("1".into())))
    })
    .await?;
    wait_messages("Ana", &ana, &[["me", "true", "You", MESSAGE, "✓"]]).await?;
    assert_eq!(ana.value("chat-input").await?, "", "the sent message stays in Ana's input");
    cy.click("chat-toggle").await?;
    wait_messages("Cy", &cy, &[[&ana_id, "", ANA, MESSAGE, ""]]).await?;
    assert_eq!(chat_button(&cy).await?, ("true".into(), "0".into(), None), "Cy's unread count after opening");

    // A message over the limit cannot be sent, and Bo's page says so.
    bo.script(
        r#"const input = document.querySelector('[data-testid="chat-input"]');
        input.value = 'x'.repeat(1001); input.dispatchEvent(new Event('input', { bubbles: true }));"#,
    )
    .await?;
    until("Bo's page refusing a message of 1001 characters", || async {
        let refused = bo.script(
            r#"const count = document.querySelector('[data-testid="chat-count"]');
            return document.querySelector('[data-testid="chat-send"]').disabled && count.classList.contains('over')
                && count.textContent.startsWith('1001/1000')"#,
        );
        Ok(refused.await? == Value::Bool(true))
    })
    .await?;
    let told = bo.text("chat-count").await?;
    assert!(told.contains("Too long"), "Bo was told: {told}");

    // Bo answers; Cy renames himself mid-call and the others see it.
    bo.type_into("chat-input", "好的").await?;
    bo.click("chat-send").await?;
    let bo_id = bo_id.to_string();
    wait_messages("Bo", &bo, &[[&ana_id, "", ANA, MESSAGE, ""], ["me", "true", "You", "好的", "✓"]]).await?;
    wait_messages("Cy", &cy, &[[&ana_id, "", ANA, MESSAGE, ""], [&bo_id, "", BO, "好的", ""]]).await?;
    cy.type_into("display-name", CY_RENAMED).await?;
    wait_names("Ana", &ana, &[BO, CY_RENAMED]).await?;
    wait_names("Bo", &bo, &[ANA, CY_RENAMED]).await?;
    assert_eq!(id_of(&wait_names("Ana", &ana, &[BO, CY_RENAMED]).await?, CY_RENAMED), cy_id);

    // In Chinese, Bo's chat speaks Chinese; the messages stay as written.
    bo.click("language").await?;
    wait_messages("Bo, in Chinese", &bo, &[[&ana_id, "", ANA, MESSAGE, ""], ["me", "true", "你", "好的", "✓"]]).await?;
    assert_eq!(bo.text("chat-send").await?, "发送");
    let badge = cy.script("return document.querySelector('[data-testid=\"peer-listening\"]') === null").await?;
    assert_eq!(badge, Value::Bool(true), "Cy's page shows a listening badge for someone who talks");

    for browser in [ana, bo, cy] {
        browser.close().await?;
    }
    Ok(())
}
