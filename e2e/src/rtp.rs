//! What Chromium's own `getStats` says of a call's audio, read beside the page: cumulative
//! counters over a whole measurement (concealment, loss, bytes sent, the codec on the
//! wire), where the page shows one second at a time. For benchmarks and the loss test; the
//! product has no hook for it, so the harness keeps a reference to every
//! `RTCPeerConnection` the page makes ([`Browser::watch_connections`]).

use crate::{Browser, Error, Result};

/// Reads the audio counters of the newest open connection the page made.
const READ: &str = r#"const open = (window.__keptConnections || []).filter(pc => pc.connectionState !== 'closed');
    const pc = open[open.length - 1];
    if (!pc) return null;
    return pc.getStats().then(report => {
        let inbound = null, outbound = null;
        const codecs = {};
        report.forEach(s => {
            if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s;
            if (s.type === 'outbound-rtp' && s.kind === 'audio') outbound = s;
            if (s.type === 'codec') codecs[s.id] = s;
        });
        const line = c => c ? (c.mimeType + ' ' + (c.sdpFmtpLine || '')).trim() : '';
        const codec = s => line(s && codecs[s.codecId]);
        // getStats names the Opus inside RED: what the sender sends is its first codec.
        const sender = pc.getSenders().find(s => s.track && s.track.kind === 'audio');
        const sending = sender ? line(sender.getParameters().codecs[0]) : '';
        // How the peer asked us to send Opus: its description's fmtp for opus.
        const sdp = (pc.currentRemoteDescription || {}).sdp || '';
        const pt = (sdp.match(/a=rtpmap:(\d+) opus\/48000/i) || [])[1];
        const opus = pt ? ((sdp.match(new RegExp('a=fmtp:' + pt + ' (.*)')) || [])[1] || '').trim() : '';
        const n = (s, key) => (s && typeof s[key] === 'number') ? s[key] : 0;
        return {
            at_ms: n(inbound, 'timestamp') || n(outbound, 'timestamp'),
            packets_received: n(inbound, 'packetsReceived'),
            packets_lost: n(inbound, 'packetsLost'),
            concealed_samples: n(inbound, 'concealedSamples'),
            silent_concealed_samples: n(inbound, 'silentConcealedSamples'),
            total_samples_received: n(inbound, 'totalSamplesReceived'),
            jitter_buffer_delay_s: n(inbound, 'jitterBufferDelay'),
            jitter_buffer_emitted: n(inbound, 'jitterBufferEmittedCount'),
            fec_packets_received: n(inbound, 'fecPacketsReceived'),
            bytes_received: n(inbound, 'bytesReceived'),
            bytes_sent: n(outbound, 'bytesSent'),
            header_bytes_sent: n(outbound, 'headerBytesSent'),
            packets_sent: n(outbound, 'packetsSent'),
            retransmitted_packets_sent: n(outbound, 'retransmittedPacketsSent'),
            nack_count: n(outbound, 'nackCount'),
            send_codec: sending,
            receive_codec: codec(inbound),
            opus_fmtp: opus,
        };
    });"#;

/// One reading of a connection's audio counters, cumulative since it started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioCounters {
    /// The report's timestamp, ms.
    pub at_ms: f64,
    /// `inbound-rtp` `packetsReceived`.
    pub packets_received: f64,
    /// `inbound-rtp` `packetsLost`: what the network lost of what the peer sent.
    pub packets_lost: f64,
    /// `inbound-rtp` `concealedSamples`: what the decoder had to invent.
    pub concealed_samples: f64,
    /// `inbound-rtp` `silentConcealedSamples`: of those, the ones invented in silence.
    pub silent_concealed_samples: f64,
    /// `inbound-rtp` `totalSamplesReceived`.
    pub total_samples_received: f64,
    /// `inbound-rtp` `jitterBufferDelay`, s.
    pub jitter_buffer_delay_s: f64,
    /// `inbound-rtp` `jitterBufferEmittedCount`.
    pub jitter_buffer_emitted: f64,
    /// `inbound-rtp` `fecPacketsReceived`.
    pub fec_packets_received: f64,
    /// `inbound-rtp` `bytesReceived` (RTP payload).
    pub bytes_received: f64,
    /// `outbound-rtp` `bytesSent` (RTP payload: Opus, and RED's copies when it runs).
    pub bytes_sent: f64,
    /// `outbound-rtp` `headerBytesSent` (RTP headers and padding).
    pub header_bytes_sent: f64,
    /// `outbound-rtp` `packetsSent`.
    pub packets_sent: f64,
    /// `outbound-rtp` `retransmittedPacketsSent`: packets sent again on a NACK.
    pub retransmitted_packets_sent: f64,
    /// `outbound-rtp` `nackCount`: NACKs the peer sent us.
    pub nack_count: f64,
    /// The codec we send: MIME type and `sdpFmtpLine` (`audio/red 111/111`), the first of
    /// our sender's negotiated codecs.
    pub send_codec: String,
    /// The codec we decode (Opus, also when it comes inside RED).
    pub receive_codec: String,
    /// The peer's `a=fmtp` for Opus: how it asked us to send (`useinbandfec=1;usedtx=1`).
    pub opus_fmtp: String,
}

impl AudioCounters {
    /// Reads them from `browser`'s newest open connection (see [`Browser::watch_connections`]).
    pub async fn read(browser: &Browser) -> Result<Self> {
        let value = browser.script(READ).await?;
        if value.is_null() {
            return Err(Error::Unexpected("the page has no open connection (was watch_connections called?)".into()));
        }
        let number = |key: &str| value[key].as_f64().unwrap_or_default();
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            at_ms: number("at_ms"),
            packets_received: number("packets_received"),
            packets_lost: number("packets_lost"),
            concealed_samples: number("concealed_samples"),
            silent_concealed_samples: number("silent_concealed_samples"),
            total_samples_received: number("total_samples_received"),
            jitter_buffer_delay_s: number("jitter_buffer_delay_s"),
            jitter_buffer_emitted: number("jitter_buffer_emitted"),
            fec_packets_received: number("fec_packets_received"),
            bytes_received: number("bytes_received"),
            bytes_sent: number("bytes_sent"),
            header_bytes_sent: number("header_bytes_sent"),
            packets_sent: number("packets_sent"),
            retransmitted_packets_sent: number("retransmitted_packets_sent"),
            nack_count: number("nack_count"),
            send_codec: text("send_codec"),
            receive_codec: text("receive_codec"),
            opus_fmtp: text("opus_fmtp"),
        })
    }
}

/// The audio of one connection between two readings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioSpan {
    /// Seconds between the readings.
    pub seconds: f64,
    /// Share of the samples played that the decoder invented, %: the loss a listener hears.
    pub concealed_pct: f64,
    /// Of the samples played, the share invented in silence, %.
    pub silent_concealed_pct: f64,
    /// Share of the peer's packets the network lost on the way to us, %.
    pub network_loss_pct: f64,
    /// What we sent, RTP payload, headers and padding (the congestion controller's probes
    /// ride on the audio when there is no video), kbit/s.
    pub send_kbps: f64,
    /// Of that, the RTP payload (Opus, and RED's copies), kbit/s.
    pub send_payload_kbps: f64,
    /// Packets we sent per second.
    pub send_packets_per_s: f64,
    /// Packets we sent again per second (on the peer's NACKs).
    pub retransmitted_per_s: f64,
    /// Mean time a sample waited in the jitter buffer, ms.
    pub jitter_buffer_ms: f64,
    /// FEC packets received per second.
    pub fec_packets_per_s: f64,
}

impl AudioSpan {
    /// The span from `before` to `after` (readings of the same connection).
    pub fn between(before: &AudioCounters, after: &AudioCounters) -> Self {
        let seconds = ((after.at_ms - before.at_ms) / 1000.0).max(f64::MIN_POSITIVE);
        let delta = |f: fn(&AudioCounters) -> f64| (f(after) - f(before)).max(0.0);
        let share = |part: f64, whole: f64| if whole > 0.0 { part / whole * 100.0 } else { 0.0 };
        let samples = delta(|c| c.total_samples_received);
        let (lost, received) = (delta(|c| c.packets_lost), delta(|c| c.packets_received));
        let emitted = delta(|c| c.jitter_buffer_emitted);
        Self {
            seconds,
            concealed_pct: share(delta(|c| c.concealed_samples), samples),
            silent_concealed_pct: share(delta(|c| c.silent_concealed_samples), samples),
            network_loss_pct: share(lost, lost + received),
            send_kbps: (delta(|c| c.bytes_sent) + delta(|c| c.header_bytes_sent)) * 8.0 / 1000.0 / seconds,
            send_payload_kbps: delta(|c| c.bytes_sent) * 8.0 / 1000.0 / seconds,
            send_packets_per_s: delta(|c| c.packets_sent) / seconds,
            retransmitted_per_s: delta(|c| c.retransmitted_packets_sent) / seconds,
            jitter_buffer_ms: if emitted > 0.0 { delta(|c| c.jitter_buffer_delay_s) * 1000.0 / emitted } else { 0.0 },
            fec_packets_per_s: delta(|c| c.fec_packets_received) / seconds,
        }
    }
}
