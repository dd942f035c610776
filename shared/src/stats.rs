//! What `getStats()` says about the link to one peer ([`Sample`]), and what follows from
//! two readings a second apart ([`Quality`]): the network's RTT, jitter and loss over that
//! second, bitrates, audio level, and a voice-quality score.
//!
//! Everything here is per peer. Summing over peers would hide the one bad link in a room.

/// One reading of the statistics of the connection to one peer. Counters are cumulative
/// since the connection started, as the browser reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// When the report was taken (`RTCStats.timestamp`, ms).
    pub at_ms: f64,
    /// `outbound-rtp` (audio) `bytesSent`.
    pub bytes_sent: u64,
    /// `inbound-rtp` (audio) `bytesReceived`.
    pub bytes_received: u64,
    /// `inbound-rtp` (audio) `packetsReceived`.
    pub packets_received: u64,
    /// `inbound-rtp` (audio) `packetsLost`: what the peer sent that never reached us.
    pub packets_lost: i64,
    /// `remote-inbound-rtp` (audio) `fractionLost`: the share of what we sent that never
    /// reached the peer, over the interval of its last receiver report (0 to 1). Receiver
    /// reports come every few seconds, so this is steadier than a per-second count. Not
    /// every browser reports it: then [`Self::remote_packets_lost`] and
    /// [`Self::remote_packets_received`] tell the same.
    pub remote_fraction_lost: Option<f64>,
    /// `remote-inbound-rtp` (audio) `packetsLost`: of what we sent, what the peer's
    /// receiver reports say never arrived.
    pub remote_packets_lost: i64,
    /// `remote-inbound-rtp` (audio) `packetsReceived` (Firefox has it, Chromium not).
    pub remote_packets_received: u64,
    /// `inbound-rtp` (audio) `jitter`, in seconds.
    pub jitter_s: f64,
    /// The round-trip time of the selected candidate pair (`currentRoundTripTime`), or of
    /// RTCP (`remote-inbound-rtp` `roundTripTime`), in seconds.
    pub rtt_s: Option<f64>,
    /// `inbound-rtp` `jitterBufferDelay`, in seconds (summed over emitted samples).
    pub jitter_buffer_delay_s: f64,
    /// `inbound-rtp` `jitterBufferEmittedCount`.
    pub jitter_buffer_emitted: u64,
    /// `inbound-rtp` `concealedSamples`: samples invented to hide loss.
    pub concealed_samples: u64,
    /// `inbound-rtp` `totalSamplesReceived`.
    pub total_samples_received: u64,
    /// `inbound-rtp` `totalAudioEnergy`.
    pub total_audio_energy: f64,
    /// `inbound-rtp` `totalSamplesDuration`, in seconds.
    pub total_samples_duration: f64,
    /// The MIME type of the audio codec we receive, e.g. `audio/opus`.
    pub codec: Option<String>,
    /// The MIME type of the audio codec we send (the first of our audio sender's
    /// negotiated codecs: getStats names the Opus inside RED): `audio/red` when our packets
    /// carry redundancy (RFC 2198: each also holds the one before), `audio/opus` when not.
    pub send_codec: Option<String>,
    /// The type of our side of the selected candidate pair, once there is one.
    pub path: Option<CandidateType>,
    /// The selected candidate pair's `availableOutgoingBitrate`, bit/s.
    pub available_outgoing_bps: Option<f64>,
}

/// `RTCIceCandidate.type`: how a candidate reaches the network. The type of the selected
/// local candidate tells whether a call is direct or relayed through TURN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandidateType {
    /// The device's own address (same network, or no NAT).
    Host,
    /// The address a STUN server saw (through NAT).
    Srflx,
    /// An address learnt from the peer's checks (through NAT).
    Prflx,
    /// A TURN server's address: media is relayed.
    Relay,
}

impl CandidateType {
    /// Reads the browser's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "host" => Some(Self::Host),
            "srflx" => Some(Self::Srflx),
            "prflx" => Some(Self::Prflx),
            "relay" => Some(Self::Relay),
            _ => None,
        }
    }

    /// The type of a candidate given as its line, `candidate:… typ <type> …` (RFC 8839).
    pub fn of_line(line: &str) -> Option<Self> {
        let mut words = line.split_ascii_whitespace();
        words.find(|word| *word == "typ")?;
        Self::parse(words.next()?)
    }

    /// The browser's spelling, as the UI's `data-path` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
        }
    }
}

/// RED's MIME type (RFC 2198 redundant audio, with Opus inside).
pub const RED: &str = "audio/red";

/// Above this RMS level a remote peer counts as speaking.
pub const SPEAKING: f64 = 0.02;

/// The link to one peer over the interval between two readings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quality {
    /// Round-trip time, ms.
    pub rtt_ms: f64,
    /// Interarrival jitter of what we receive, ms.
    pub jitter_ms: f64,
    /// Share of the peer's packets lost on the way to us in the interval, percent: the
    /// network's loss, before any recovery.
    pub loss_pct: f64,
    /// Share of our packets lost on the way to the peer, percent, from its latest receiver
    /// report (what the bitrate controller acts on).
    pub send_loss_pct: f64,
    /// What we send, kbit/s.
    pub send_kbps: f64,
    /// What we receive, kbit/s.
    pub receive_kbps: f64,
    /// Average time a sample waited in the jitter buffer, ms.
    pub jitter_buffer_ms: f64,
    /// Share of played samples that were concealment, percent: the loss that remains
    /// after recovery (redundancy, FEC, the jitter buffer waiting for them), the loss a
    /// listener hears. The voice-quality score is computed from it.
    pub concealment_pct: f64,
    /// RMS level heard, 0 to 1.
    pub level: f64,
    /// The browser's estimate of the bandwidth we can send, kbit/s, when it has one.
    pub available_kbps: Option<f64>,
    /// Whether what we send carries redundancy (RED), so the peer recovers most lost
    /// packets.
    pub send_redundancy: bool,
    /// Estimated voice quality, 1 (bad) to 4.5 (excellent), of what we hear: from the RTT,
    /// the jitter and the loss left after recovery ([`Self::concealment_pct`]).
    pub mos: f64,
}

impl Quality {
    /// The quality between `before` and `after` (readings of the same connection).
    pub fn between(before: &Sample, after: &Sample) -> Self {
        let seconds = (after.at_ms - before.at_ms) / 1000.0;
        let kbps = |bytes_before: u64, bytes_after: u64| {
            if seconds > 0.0 { bytes_after.saturating_sub(bytes_before) as f64 * 8.0 / 1000.0 / seconds } else { 0.0 }
        };
        let lost = (after.packets_lost - before.packets_lost).max(0) as f64;
        let received = after.packets_received.saturating_sub(before.packets_received) as f64;
        let emitted = after.jitter_buffer_emitted.saturating_sub(before.jitter_buffer_emitted) as f64;
        let samples = after.total_samples_received.saturating_sub(before.total_samples_received) as f64;
        let concealed = after.concealed_samples.saturating_sub(before.concealed_samples) as f64;
        let rtt_ms = after.rtt_s.unwrap_or(0.0) * 1000.0;
        let jitter_ms = after.jitter_s * 1000.0;
        let loss_pct = percent(lost, lost + received);
        let concealment_pct = percent(concealed, samples);
        Self {
            rtt_ms,
            jitter_ms,
            loss_pct,
            send_loss_pct: send_loss_pct(before, after),
            send_kbps: kbps(before.bytes_sent, after.bytes_sent),
            receive_kbps: kbps(before.bytes_received, after.bytes_received),
            jitter_buffer_ms: if emitted > 0.0 {
                (after.jitter_buffer_delay_s - before.jitter_buffer_delay_s).max(0.0) * 1000.0 / emitted
            } else {
                0.0
            },
            concealment_pct,
            level: rms_level(before, after),
            available_kbps: after.available_outgoing_bps.map(|bps| bps / 1000.0),
            send_redundancy: after.send_codec.as_deref().is_some_and(|codec| codec.eq_ignore_ascii_case(RED)),
            mos: mos(rtt_ms, jitter_ms, concealment_pct),
        }
    }
}

/// The share of our packets lost on the way to the peer: its latest receiver report's
/// `fractionLost` where the browser gives it, else what the reports that came between the
/// two readings counted (0 when none came).
fn send_loss_pct(before: &Sample, after: &Sample) -> f64 {
    match after.remote_fraction_lost {
        Some(fraction) => (fraction * 100.0).clamp(0.0, 100.0),
        None => {
            let lost = (after.remote_packets_lost - before.remote_packets_lost).max(0) as f64;
            let received = after.remote_packets_received.saturating_sub(before.remote_packets_received) as f64;
            percent(lost, lost + received)
        }
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { (part / whole * 100.0).clamp(0.0, 100.0) } else { 0.0 }
}

/// The RMS level heard between two readings: `sqrt(Δenergy / Δduration)`, 0 when nothing
/// was played out in between (counters reset when a stream is replaced, so a decrease also
/// reads as 0).
pub fn rms_level(before: &Sample, after: &Sample) -> f64 {
    let duration = after.total_samples_duration - before.total_samples_duration;
    let energy = after.total_audio_energy - before.total_audio_energy;
    if duration <= 0.0 || energy <= 0.0 { 0.0 } else { (energy / duration).sqrt().min(1.0) }
}

/// The RMS level of a block of samples in `[-1, 1]` (an `AnalyserNode`'s time-domain
/// data): the same scale as the level heard from peers.
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len() as f64).sqrt().min(1.0)
}

/// How much of a meter's shown level is left after one reading period: the needle falls
/// back smoothly instead of flickering between syllables.
pub const METER_DECAY: f64 = 0.8;

/// A level meter's next shown level: the new block's level, or the previous one decayed,
/// whichever is higher (a VU meter's peak hold).
pub fn meter(shown: f64, block: f64) -> f64 {
    block.max(shown * METER_DECAY)
}

/// Voice quality (MOS, 1 to 4.5) from round-trip time, jitter and the loss a listener
/// hears (after recovery: concealment), by the simplified
/// ITU-T G.107 E-model used widely in VoIP and WebRTC monitoring: the one-way delay a
/// listener feels is half the RTT plus twice the jitter (the jitter buffer) plus 10 ms of
/// codec delay; delay up to 160 ms costs little, beyond it a lot; each percent of loss costs
/// 2.5 points of R; then the G.107 mapping from R to MOS.
pub fn mos(rtt_ms: f64, jitter_ms: f64, loss_pct: f64) -> f64 {
    let delay = rtt_ms.max(0.0) / 2.0 + jitter_ms.max(0.0) * 2.0 + 10.0;
    let delay_penalty = if delay < 160.0 { delay / 40.0 } else { (delay - 120.0) / 10.0 };
    let r = 93.2 - delay_penalty - loss_pct.clamp(0.0, 100.0) * 2.5;
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

/// The quality bars shown for a MOS, 1 to 5 (the thresholds of common VoIP practice:
/// 4.0 and above is toll quality).
pub fn bars(mos: f64) -> u8 {
    match mos {
        m if m >= 4.0 => 5,
        m if m >= 3.6 => 4,
        m if m >= 3.1 => 3,
        m if m >= 2.6 => 2,
        _ => 1,
    }
}

/// Why a call sounds bad, in words a person can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// Packets are being lost (weak Wi-Fi or mobile signal).
    Loss,
    /// The round trip is long (distant relay, congested uplink).
    Delay,
    /// Packets arrive unevenly (busy network).
    Jitter,
}

/// The hint to show for a link, if what we hear of it is poor; the worst problem first.
/// Loss counts as it is heard, after recovery: a link whose lost packets are recovered
/// has no loss to explain.
pub fn hint(quality: &Quality) -> Option<Hint> {
    if quality.mos >= 3.6 {
        None
    } else if quality.concealment_pct >= 3.0 {
        Some(Hint::Loss)
    } else if quality.rtt_ms >= 400.0 {
        Some(Hint::Delay)
    } else if quality.jitter_ms >= 40.0 {
        Some(Hint::Jitter)
    } else {
        Some(Hint::Loss)
    }
}

/// Keeps a hint up for a while after the last poor reading: per-second quality is noisy
/// (a lossy link swings between fair and poor), and a hint that flickers is not read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HintHold {
    hint: Option<Hint>,
    until_ms: f64,
}

impl HintHold {
    /// How long a hint stays after the last reading that called for it, ms.
    pub const HOLD_MS: f64 = 5_000.0;

    /// Takes a reading made at `now_ms`; returns the hint to show.
    pub fn update(&mut self, now_ms: f64, quality: &Quality) -> Option<Hint> {
        match hint(quality) {
            Some(hint) => (self.hint, self.until_ms) = (Some(hint), now_ms + Self::HOLD_MS),
            None if now_ms >= self.until_ms => self.hint = None,
            None => {}
        }
        self.hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.005
    }

    #[test]
    fn mos_is_pinned_on_known_points() {
        // Expected values computed independently (Python) from the same formula.
        // A perfect LAN: R = 93.2 - 10/40 = 92.95.
        assert!(close(mos(0.0, 0.0, 0.0), 4.404), "{}", mos(0.0, 0.0, 0.0));
        // 100 ms RTT, 10 ms jitter: delay 80 ms, R = 91.2.
        assert!(close(mos(100.0, 10.0, 0.0), 4.367), "{}", mos(100.0, 10.0, 0.0));
        // 400 ms RTT: delay 210 ms, R = 93.2 - 9 = 84.2.
        assert!(close(mos(400.0, 0.0, 0.0), 4.172), "{}", mos(400.0, 0.0, 0.0));
        // 10 % loss on a LAN: R = 92.95 - 25 = 67.95.
        assert!(close(mos(0.0, 0.0, 10.0), 3.499), "{}", mos(0.0, 0.0, 10.0));
        // Hopeless links bottom out at 1.
        assert_eq!(mos(0.0, 0.0, 60.0), 1.0);
        assert_eq!(mos(5_000.0, 500.0, 0.0), 1.0);
    }

    #[test]
    fn mos_falls_as_any_impairment_grows() {
        let base = mos(50.0, 5.0, 0.0);
        assert!(mos(300.0, 5.0, 0.0) < base);
        assert!(mos(50.0, 60.0, 0.0) < base);
        assert!(mos(50.0, 5.0, 2.0) < base);
        assert!(mos(-5.0, -1.0, -3.0) <= 4.5, "nonsense input stays in range");
    }

    #[test]
    fn rms_of_blocks() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms(&[0.0; 64]), 0.0);
        assert!(close(rms(&[0.5, -0.5, 0.5, -0.5]), 0.5));
        assert!(close(rms(&[1.0, -1.0]), 1.0));
        assert!(close(rms(&[3.0, -3.0]), 1.0), "clipped input stays in range");
    }

    #[test]
    fn the_meter_jumps_up_and_falls_back_slowly() {
        assert_eq!(meter(0.0, 0.5), 0.5);
        assert!(close(meter(0.5, 0.0), 0.4));
        assert!(close(meter(0.5, 0.45), 0.45));
        let mut shown = 1.0;
        for _ in 0..30 {
            shown = meter(shown, 0.0);
        }
        assert!(shown < 0.002, "falls to silence within a second and a half: {shown}");
    }

    #[test]
    fn bars_follow_the_mos_thresholds() {
        assert_eq!([4.4, 3.8, 3.3, 2.8, 1.5].map(bars), [5, 4, 3, 2, 1]);
    }

    #[test]
    fn hints_name_the_worst_problem_of_a_poor_link() {
        let good = Quality { mos: 4.3, ..Quality::default() };
        assert_eq!(hint(&good), None);
        let lossy = Quality { mos: 3.0, loss_pct: 8.0, concealment_pct: 7.5, rtt_ms: 500.0, ..Quality::default() };
        assert_eq!(hint(&lossy), Some(Hint::Loss));
        let far = Quality { mos: 3.0, rtt_ms: 900.0, ..Quality::default() };
        assert_eq!(hint(&far), Some(Hint::Delay));
        let jittery = Quality { mos: 3.4, jitter_ms: 80.0, ..Quality::default() };
        assert_eq!(hint(&jittery), Some(Hint::Jitter));
    }

    #[test]
    fn recovered_loss_costs_no_quality_and_explains_nothing() {
        // 10 % of the peer's packets lost, all but half a percent recovered (RED).
        let before = reading(0.0);
        let after = Sample {
            packets_received: 45,
            packets_lost: 5,
            concealed_samples: 240,
            total_samples_received: 48_000,
            ..reading(1_000.0)
        };
        let q = Quality::between(&before, &after);
        assert!(close(q.loss_pct, 10.0) && close(q.concealment_pct, 0.5), "raw loss is kept: {q:?}");
        assert!(close(q.mos, mos(100.0, 10.0, 0.5)), "{q:?}");
        assert_eq!(bars(q.mos), 5);
        assert_eq!(hint(&q), None);
        // The same loss unrecovered: every lost packet concealed.
        let unrecovered = Quality::between(&before, &Sample { concealed_samples: 4_800, ..after });
        assert!(unrecovered.mos < 3.6, "{unrecovered:?}");
        assert_eq!(hint(&unrecovered), Some(Hint::Loss));
    }

    #[test]
    fn redundancy_is_read_from_the_codec_we_send() {
        let sending = |codec: &str| Sample { send_codec: Some(codec.into()), ..reading(1_000.0) };
        assert!(Quality::between(&reading(0.0), &sending("audio/red")).send_redundancy);
        assert!(Quality::between(&reading(0.0), &sending("audio/RED")).send_redundancy);
        assert!(!Quality::between(&reading(0.0), &sending("audio/opus")).send_redundancy);
        assert!(!Quality::between(&reading(0.0), &reading(1_000.0)).send_redundancy);
    }

    #[test]
    fn a_hint_outlasts_a_good_second_and_fades_after_five() {
        let poor = Quality { mos: 3.0, loss_pct: 10.0, ..Quality::default() };
        let good = Quality { mos: 4.3, ..Quality::default() };
        let mut hold = HintHold::default();
        assert_eq!(hold.update(0.0, &good), None);
        assert_eq!(hold.update(1_000.0, &poor), Some(Hint::Loss));
        assert_eq!(hold.update(2_000.0, &good), Some(Hint::Loss));
        assert_eq!(hold.update(5_900.0, &good), Some(Hint::Loss));
        assert_eq!(hold.update(6_000.0, &good), None);
    }

    fn reading(at_ms: f64) -> Sample {
        Sample { at_ms, rtt_s: Some(0.1), jitter_s: 0.01, ..Sample::default() }
    }

    #[test]
    fn interval_figures_come_from_counter_differences() {
        let before = Sample {
            bytes_sent: 10_000,
            bytes_received: 20_000,
            packets_received: 900,
            packets_lost: 100,
            jitter_buffer_delay_s: 10.0,
            jitter_buffer_emitted: 100_000,
            concealed_samples: 1_000,
            total_samples_received: 100_000,
            total_audio_energy: 1.0,
            total_samples_duration: 10.0,
            ..reading(1_000.0)
        };
        let after = Sample {
            bytes_sent: 14_000,     // 4,000 B in 1 s = 32 kbit/s
            bytes_received: 22_000, // 16 kbit/s
            packets_received: 945,  // 45 received, 5 lost: 10 %
            packets_lost: 105,
            remote_fraction_lost: Some(0.1),
            jitter_buffer_delay_s: 13.0, // 3 s over 48,000 samples: 0.0625 ms each
            jitter_buffer_emitted: 148_000,
            concealed_samples: 5_800, // 4,800 of 48,000: 10 %
            total_samples_received: 148_000,
            total_audio_energy: 1.25, // level 0.5 for 1 s
            total_samples_duration: 11.0,
            ..reading(2_000.0)
        };
        let q = Quality::between(&before, &after);
        assert!(close(q.send_kbps, 32.0) && close(q.receive_kbps, 16.0), "{q:?}");
        assert!(close(q.loss_pct, 10.0) && close(q.send_loss_pct, 10.0), "{q:?}");
        assert!(close(q.rtt_ms, 100.0) && close(q.jitter_ms, 10.0), "{q:?}");
        assert!(close(q.jitter_buffer_ms, 0.0625), "{q:?}");
        assert!(close(q.concealment_pct, 10.0) && close(q.level, 0.5), "{q:?}");
        assert!(close(q.mos, mos(100.0, 10.0, 10.0)), "{q:?}");
    }

    #[test]
    fn without_fraction_lost_send_loss_comes_from_the_receiver_reports_counts() {
        let before = Sample { remote_packets_lost: 10, remote_packets_received: 1_000, ..reading(0.0) };
        let after = Sample { remote_packets_lost: 15, remote_packets_received: 1_095, ..reading(1_000.0) };
        assert!(close(Quality::between(&before, &after).send_loss_pct, 5.0));
        assert_eq!(Quality::between(&after, &after).send_loss_pct, 0.0, "no report in between: nothing lost");
        let reported = Sample { remote_fraction_lost: Some(0.02), ..after };
        assert!(close(Quality::between(&before, &reported).send_loss_pct, 2.0), "fractionLost wins where given");
    }

    #[test]
    fn silence_resets_and_idle_intervals_read_as_zero() {
        let q = Quality::between(&reading(1_000.0), &reading(1_000.0));
        assert_eq!((q.send_kbps, q.loss_pct, q.level, q.concealment_pct), (0.0, 0.0, 0.0, 0.0));
        let energetic = Sample { total_audio_energy: 5.0, total_samples_duration: 10.0, ..reading(0.0) };
        let reset = Sample { total_audio_energy: 0.1, total_samples_duration: 1.0, ..reading(1_000.0) };
        assert_eq!(rms_level(&energetic, &reset), 0.0);
    }

    #[test]
    fn candidate_types_round_trip_and_unknown_ones_are_none() {
        for kind in [CandidateType::Host, CandidateType::Srflx, CandidateType::Prflx, CandidateType::Relay] {
            assert_eq!(CandidateType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            CandidateType::of_line("candidate:1 1 udp 1 192.0.2.1 9 typ srflx raddr 0.0.0.0"),
            Some(CandidateType::Srflx)
        );
        assert_eq!(CandidateType::of_line("candidate:1 1 udp 1 192.0.2.1 9 typ"), None);
        assert_eq!(CandidateType::parse("RELAY"), None);
        assert_eq!(CandidateType::parse(""), None);
    }
}
