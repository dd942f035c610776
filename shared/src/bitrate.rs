//! The audio bitrate controller: turns each second's [`Quality`] of a link into the
//! `maxBitrate` for our Opus sender on that link.
//!
//! Opus starts at 32 kbit/s (wideband voice with headroom). Under sustained loss or delay
//! it steps down by a quarter at a time toward 12 kbit/s, where Opus is still intelligible
//! and its packets are small enough to get through; when the path is clean for a while it
//! climbs back 4 kbit/s at a time. Hysteresis keeps it from flapping: it needs two bad
//! readings in a row to step down, eight clean ones to step up, and waits between changes
//! (longer before climbing, which risks more than falling).

use crate::stats::Quality;

/// Where Opus voice starts, and its ceiling, bit/s.
pub const AUDIO_START_BPS: u32 = 32_000;
/// The floor, bit/s.
pub const AUDIO_FLOOR_BPS: u32 = 12_000;
/// The climb per step, bit/s.
const STEP_UP_BPS: u32 = 4_000;
/// Bad readings in a row before stepping down.
const BAD_TO_STEP_DOWN: u32 = 2;
/// Clean readings in a row before stepping up.
const CLEAN_TO_STEP_UP: u32 = 8;
/// Least time between two changes down, ms.
const DWELL_DOWN_MS: f64 = 2_000.0;
/// Least time between a change and a step up, ms.
const DWELL_UP_MS: f64 = 8_000.0;

/// What a reading says of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Losing packets or slow: send less.
    Congested,
    /// Neither clearly bad nor clearly good: hold.
    Fair,
    /// No loss to speak of and a short round trip: room to send more.
    Clean,
}

/// Classifies a reading by the loss of what we send and the round-trip time.
pub fn condition(quality: &Quality) -> Condition {
    let (loss, rtt) = (quality.send_loss_pct, quality.rtt_ms);
    if loss >= 5.0 || rtt >= 400.0 {
        Condition::Congested
    } else if loss < 2.0 && rtt < 250.0 {
        Condition::Clean
    } else {
        Condition::Fair
    }
}

/// The controller for one sender.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioBitrate {
    target: u32,
    bad: u32,
    clean: u32,
    last_change_ms: f64,
}

impl AudioBitrate {
    /// A controller at the starting bitrate; `now_ms` is when the link came up.
    pub fn new(now_ms: f64) -> Self {
        Self { target: AUDIO_START_BPS, bad: 0, clean: 0, last_change_ms: now_ms }
    }

    /// The current target, bit/s.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// Takes a reading made at `now_ms` and returns the new target, bit/s.
    pub fn update(&mut self, now_ms: f64, quality: &Quality) -> u32 {
        match condition(quality) {
            Condition::Congested => (self.bad, self.clean) = (self.bad + 1, 0),
            Condition::Clean => (self.bad, self.clean) = (0, self.clean + 1),
            Condition::Fair => (self.bad, self.clean) = (0, 0),
        }
        let since_change = now_ms - self.last_change_ms;
        if self.bad >= BAD_TO_STEP_DOWN && since_change >= DWELL_DOWN_MS && self.target > AUDIO_FLOOR_BPS {
            self.change(now_ms, (self.target * 3 / 4).max(AUDIO_FLOOR_BPS));
        } else if self.clean >= CLEAN_TO_STEP_UP && since_change >= DWELL_UP_MS && self.target < AUDIO_START_BPS {
            self.change(now_ms, (self.target + STEP_UP_BPS).min(AUDIO_START_BPS));
        }
        self.target
    }

    fn change(&mut self, now_ms: f64, target: u32) {
        self.target = target;
        self.last_change_ms = now_ms;
        self.bad = 0;
        self.clean = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(send_loss_pct: f64, rtt_ms: f64) -> Quality {
        Quality { send_loss_pct, rtt_ms, ..Quality::default() }
    }

    /// Feeds one reading a second from `start_s`, returning the target after each.
    fn drive(controller: &mut AudioBitrate, start_s: u32, readings: &[Quality]) -> Vec<u32> {
        readings.iter().zip(start_s..).map(|(q, s)| controller.update(f64::from(s) * 1000.0, q)).collect()
    }

    #[test]
    fn sustained_loss_steps_down_to_the_floor_and_no_further() {
        let mut controller = AudioBitrate::new(0.0);
        let targets = drive(&mut controller, 1, &vec![reading(10.0, 40.0); 12]);
        assert_eq!(
            targets,
            [32_000, 24_000, 24_000, 18_000, 18_000, 13_500, 13_500, 12_000, 12_000, 12_000, 12_000, 12_000]
        );
    }

    #[test]
    fn a_single_bad_second_changes_nothing() {
        let mut controller = AudioBitrate::new(0.0);
        let mut readings = vec![reading(0.0, 40.0); 5];
        readings[2] = reading(30.0, 40.0);
        readings.push(reading(30.0, 40.0));
        readings.push(reading(0.0, 40.0));
        readings.push(reading(30.0, 40.0));
        assert!(drive(&mut controller, 1, &readings).iter().all(|&t| t == AUDIO_START_BPS));
    }

    #[test]
    fn long_round_trips_count_as_congestion() {
        let mut controller = AudioBitrate::new(0.0);
        assert_eq!(drive(&mut controller, 1, &vec![reading(0.0, 600.0); 3]).last(), Some(&24_000));
    }

    #[test]
    fn a_clean_path_climbs_back_slowly_and_fair_readings_hold() {
        let mut controller = AudioBitrate::new(0.0);
        drive(&mut controller, 1, &vec![reading(10.0, 40.0); 8]);
        assert_eq!(controller.target(), 12_000);
        // Fair (3 % loss) holds where it is.
        assert!(drive(&mut controller, 9, &vec![reading(3.0, 40.0); 20]).iter().all(|&t| t == 12_000));
        // Clean: a step of 4 kbit/s after 8 clean seconds, then one every 8 seconds.
        let climb = drive(&mut controller, 29, &vec![reading(0.0, 40.0); 40]);
        assert_eq!(climb[6], 12_000);
        assert_eq!(climb[7], 16_000);
        assert_eq!(climb[15], 20_000);
        assert_eq!(*climb.last().unwrap_or(&0), AUDIO_START_BPS);
        assert!(climb.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] <= STEP_UP_BPS));
    }

    #[test]
    fn alternating_good_and_bad_never_flaps() {
        let mut controller = AudioBitrate::new(0.0);
        let readings: Vec<_> =
            (0..60).map(|i| if i % 2 == 0 { reading(10.0, 40.0) } else { reading(0.0, 40.0) }).collect();
        assert!(drive(&mut controller, 1, &readings).iter().all(|&t| t == AUDIO_START_BPS));
    }

    #[test]
    fn conditions_have_a_dead_band() {
        assert_eq!(condition(&reading(5.0, 0.0)), Condition::Congested);
        assert_eq!(condition(&reading(0.0, 400.0)), Condition::Congested);
        assert_eq!(condition(&reading(1.9, 249.0)), Condition::Clean);
        assert_eq!(condition(&reading(2.0, 100.0)), Condition::Fair);
        assert_eq!(condition(&reading(0.0, 300.0)), Condition::Fair);
    }
}
