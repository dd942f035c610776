//! Audio levels from WebRTC statistics.
//!
//! `RTCInboundRtpStreamStats` carries `totalAudioEnergy` (the sum over samples of the
//! squared level times the sample duration) and `totalSamplesDuration`. Between two
//! readings, `sqrt(Δenergy / Δduration)` is the RMS level of what was heard in that
//! interval, from 0 (silence) to 1 (full scale).

/// Counters read from one `getStats()` report for the audio exchanged with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AudioCounters {
    /// `outbound-rtp` `bytesSent`.
    pub bytes_sent: u64,
    /// `inbound-rtp` `bytesReceived`.
    pub bytes_received: u64,
    /// `inbound-rtp` `totalAudioEnergy`.
    pub total_audio_energy: f64,
    /// `inbound-rtp` `totalSamplesDuration`, in seconds.
    pub total_samples_duration: f64,
}

/// Above this RMS level a remote peer counts as speaking.
pub const SPEAKING: f64 = 0.02;

/// The RMS level heard between two readings; 0 when no audio was played out in between
/// (counters reset when a stream is replaced, so a decrease also reads as 0).
pub fn rms_level(before: &AudioCounters, after: &AudioCounters) -> f64 {
    let duration = after.total_samples_duration - before.total_samples_duration;
    let energy = after.total_audio_energy - before.total_audio_energy;
    if duration <= 0.0 || energy <= 0.0 {
        0.0
    } else {
        (energy / duration).sqrt().min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(energy: f64, duration: f64) -> AudioCounters {
        AudioCounters {
            total_audio_energy: energy,
            total_samples_duration: duration,
            ..Default::default()
        }
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
