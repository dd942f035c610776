//! `GET /metrics`: counts in Prometheus format, and never an id. One test in its own
//! binary, because the metrics recorder is global to the process.

mod common;

use common::{Relay, TestResult, offer, room};
use shared::protocol::MAX_FRAME_BYTES;
use shared::room::PeerId;

/// The value of the sample line `name` (with its labels) in a Prometheus text body.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_rooms_peers_messages_errors_and_evictions_but_name_nobody() -> TestResult {
    let relay = Relay::start(&[]).await?;
    let r = room(1);
    let (mut ana, mut bo, mut eve) = (relay.client().await?, relay.client().await?, relay.client().await?);
    ana.join(&r).await?;
    bo.join(&r).await?;
    ana.recv().await?;
    bo.signal(PeerId(1), offer("hello")).await?;
    ana.recv().await?;
    bo.send_text("not json").await?;
    bo.recv().await?;
    eve.join(&room(2)).await?;
    eve.send_text(&"x".repeat(MAX_FRAME_BYTES + 1)).await?;
    eve.closed_with().await?;
    ana.expect_nothing().await?;

    let (status, body) = relay.get("/metrics").await?;
    assert_eq!(status, 200);
    assert_eq!(sample(&body, "relay_rooms"), Some(1.0), "{body}");
    assert_eq!(sample(&body, "relay_peers"), Some(2.0), "{body}");
    assert_eq!(sample(&body, "relay_sockets"), Some(2.0), "{body}");
    // Joins (3), the signal, the bad message; the oversized frame never became a message.
    assert_eq!(sample(&body, "relay_messages_in_total"), Some(5.0), "{body}");
    // Joined (3), peer_joined, the signal, the error.
    assert_eq!(sample(&body, "relay_messages_out_total"), Some(6.0), "{body}");
    assert_eq!(sample(&body, "relay_errors_total{code=\"bad_message\"}"), Some(1.0), "{body}");
    assert_eq!(sample(&body, "relay_evictions_total{reason=\"too_large\"}"), Some(1.0), "{body}");
    for id in [room(1), room(2)] {
        assert!(!body.contains(id.as_str()), "a room id leaked into /metrics");
    }
    assert!(!body.contains("127.0.0.1"), "an address leaked into /metrics");
    relay.stop().await
}
