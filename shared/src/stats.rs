//! What one `getStats()` reading says about the link to one peer, and what follows from
//! two readings: audio levels and the kind of network path.
//!
//! `RTCInboundRtpStreamStats` carries `totalAudioEnergy` (the sum over samples of the
//! squared level times the sample duration) and `totalSamplesDuration`. Between two
//! readings, `sqrt(Δenergy / Δduration)` is the RMS level of what was heard in that
//! interval, from 0 (silence) to 1 (full scale).

/// Counters read from one `getStats()` report for the audio exchanged with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// `outbound-rtp` `bytesSent`.
    pub bytes_sent: u64,
    /// `inbound-rtp` `bytesReceived`.
    pub bytes_received: u64,
    /// `inbound-rtp` `totalAudioEnergy`.
    pub total_audio_energy: f64,
    /// `inbound-rtp` `totalSamplesDuration`, in seconds.
    pub total_samples_duration: f64,
    /// The type of our side of the selected candidate pair, once there is one.
    pub path: Option<CandidateType>,
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

/// Above this RMS level a remote peer counts as speaking.
pub const SPEAKING: f64 = 0.02;

/// The RMS level heard between two readings; 0 when no audio was played out in between
/// (counters reset when a stream is replaced, so a decrease also reads as 0).
pub fn rms_level(before: &Sample, after: &Sample) -> f64 {
    let duration = after.total_samples_duration - before.total_samples_duration;
    let energy = after.total_audio_energy - before.total_audio_energy;
    if duration <= 0.0 || energy <= 0.0 { 0.0 } else { (energy / duration).sqrt().min(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(energy: f64, duration: f64) -> Sample {
        Sample { total_audio_energy: energy, total_samples_duration: duration, ..Default::default() }
    }

    #[test]
    fn level_is_the_rms_over_the_interval() {
        // A constant level of 0.5 for one second adds 0.25 of energy.
        assert!((rms_level(&at(1.0, 10.0), &at(1.25, 11.0)) - 0.5).abs() < 1e-12);
        assert!((rms_level(&at(0.0, 0.0), &at(0.01, 1.0)) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn silence_and_resets_read_as_zero() {
        assert_eq!(rms_level(&at(1.0, 10.0), &at(1.0, 11.0)), 0.0);
        assert_eq!(rms_level(&at(1.0, 10.0), &at(1.0, 10.0)), 0.0);
        assert_eq!(rms_level(&at(5.0, 10.0), &at(0.1, 1.0)), 0.0);
        assert!(rms_level(&at(0.0, 0.0), &at(0.0001, 1.0)) < SPEAKING);
    }
}

#[cfg(test)]
mod path_tests {
    use super::CandidateType;

    #[test]
    fn candidate_types_round_trip_and_unknown_ones_are_none() {
        for kind in [CandidateType::Host, CandidateType::Srflx, CandidateType::Prflx, CandidateType::Relay] {
            assert_eq!(CandidateType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(CandidateType::parse("RELAY"), None);
        assert_eq!(CandidateType::parse(""), None);
    }
}
