//! The bitrate controllers: turn each second's [`Quality`] of a link into what our senders
//! on that link may use, the Opus `maxBitrate` ([`AudioBitrate`]) and, when the camera is
//! on, a video tier ([`VideoLadder`]).
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

/// Which way a controller should move, if at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Down,
    Up,
}

/// The hysteresis both controllers share: counts bad and clean readings in a row, and says
/// when to step, given the time since the last change.
#[derive(Clone, Debug, PartialEq)]
struct Hysteresis {
    bad: u32,
    clean: u32,
    last_change_ms: f64,
}

impl Hysteresis {
    fn new(now_ms: f64) -> Self {
        Self { bad: 0, clean: 0, last_change_ms: now_ms }
    }

    /// Takes a reading's condition; `can_go` says which steps are still possible.
    fn step(&mut self, now_ms: f64, condition: Condition, can_go: impl Fn(Step) -> bool) -> Option<Step> {
        match condition {
            Condition::Congested => (self.bad, self.clean) = (self.bad + 1, 0),
            Condition::Clean => (self.bad, self.clean) = (0, self.clean + 1),
            Condition::Fair => (self.bad, self.clean) = (0, 0),
        }
        let since_change = now_ms - self.last_change_ms;
        let step = if self.bad >= BAD_TO_STEP_DOWN && since_change >= DWELL_DOWN_MS && can_go(Step::Down) {
            Step::Down
        } else if self.clean >= CLEAN_TO_STEP_UP && since_change >= DWELL_UP_MS && can_go(Step::Up) {
            Step::Up
        } else {
            return None;
        };
        *self = Self::new(now_ms);
        Some(step)
    }
}

/// The Opus controller for one sender.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioBitrate {
    target: u32,
    hysteresis: Hysteresis,
}

impl AudioBitrate {
    /// A controller at the starting bitrate; `now_ms` is when the link came up.
    pub fn new(now_ms: f64) -> Self {
        Self { target: AUDIO_START_BPS, hysteresis: Hysteresis::new(now_ms) }
    }

    /// Takes a reading made at `now_ms` and returns the new target, bit/s.
    pub fn update(&mut self, now_ms: f64, quality: &Quality) -> u32 {
        let target = self.target;
        let can_go = |step| match step {
            Step::Down => target > AUDIO_FLOOR_BPS,
            Step::Up => target < AUDIO_START_BPS,
        };
        match self.hysteresis.step(now_ms, condition(quality), can_go) {
            Some(Step::Down) => self.target = (target * 3 / 4).max(AUDIO_FLOOR_BPS),
            Some(Step::Up) => self.target = (target + STEP_UP_BPS).min(AUDIO_START_BPS),
            None => {}
        }
        self.target
    }
}

/// A rung of the video ladder: what the camera sender may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VideoTier {
    /// No video: the path cannot carry it, the call goes on audio-only.
    Off,
    /// 180p at 150 kbit/s.
    Low,
    /// 360p at 500 kbit/s.
    Medium,
    /// 720p at 1.5 Mbit/s.
    High,
}

impl VideoTier {
    /// The tier's `maxBitrate`, bit/s (0 when off).
    pub fn max_bitrate(self) -> u32 {
        match self {
            Self::Off => 0,
            Self::Low => 150_000,
            Self::Medium => 500_000,
            Self::High => 1_500_000,
        }
    }

    /// The tier's frame height, pixels (0 when off); the sender scales the camera down to it.
    pub fn height(self) -> u32 {
        match self {
            Self::Off => 0,
            Self::Low => 180,
            Self::Medium => 360,
            Self::High => 720,
        }
    }

    /// `scaleResolutionDownBy` for a camera capturing `camera_height` pixels high (at
    /// least 1: the sender never scales up).
    pub fn scale_down_from(self, camera_height: u32) -> f64 {
        if self.height() == 0 { 1.0 } else { (f64::from(camera_height) / f64::from(self.height())).max(1.0) }
    }

    fn below(self) -> Self {
        match self {
            Self::High => Self::Medium,
            Self::Medium => Self::Low,
            Self::Low | Self::Off => Self::Off,
        }
    }

    fn above(self) -> Self {
        match self {
            Self::Off => Self::Low,
            Self::Low => Self::Medium,
            Self::Medium | Self::High => Self::High,
        }
    }

    /// The name used in the UI's `data-video-tier`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// The video controller for one camera sender: one rung down per congestion step (to
/// audio-only below the lowest), one rung up per clean step, up to `ceiling` (720p on a
/// computer, 360p on a phone). A path whose estimated outgoing bandwidth cannot carry the
/// current rung counts as congested.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoLadder {
    tier: VideoTier,
    ceiling: VideoTier,
    hysteresis: Hysteresis,
}

impl VideoLadder {
    /// A ladder starting at the middle rung (or `ceiling`, if lower).
    pub fn new(now_ms: f64, ceiling: VideoTier) -> Self {
        Self { tier: VideoTier::Medium.min(ceiling), ceiling, hysteresis: Hysteresis::new(now_ms) }
    }

    /// Takes a reading made at `now_ms` and returns the new tier.
    pub fn update(&mut self, now_ms: f64, quality: &Quality) -> VideoTier {
        let carries =
            |tier: VideoTier| quality.available_kbps.is_none_or(|kbps| kbps * 1000.0 >= f64::from(tier.max_bitrate()));
        let condition = if carries(self.tier) { condition(quality) } else { Condition::Congested };
        let (tier, ceiling) = (self.tier, self.ceiling);
        let can_go = |step| match step {
            Step::Down => tier > VideoTier::Off,
            // Never climb onto a rung the estimated bandwidth cannot carry: it would only
            // fall back, and flap.
            Step::Up => tier < ceiling && carries(tier.above()),
        };
        match self.hysteresis.step(now_ms, condition, can_go) {
            Some(Step::Down) => self.tier = tier.below(),
            Some(Step::Up) => self.tier = tier.above().min(ceiling),
            None => {}
        }
        self.tier
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
        assert_eq!(drive(&mut controller, 1, &vec![reading(10.0, 40.0); 8]).last(), Some(&12_000));
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
    fn video_steps_down_to_audio_only_and_climbs_back_to_its_ceiling() {
        let mut ladder = VideoLadder::new(0.0, VideoTier::High);
        let tiers: Vec<_> = (1..=8).map(|s| ladder.update(f64::from(s) * 1000.0, &reading(10.0, 40.0))).collect();
        use VideoTier::*;
        // It starts at 360p; the first bad reading alone changes nothing.
        assert_eq!(tiers, [Medium, Low, Low, Off, Off, Off, Off, Off]);
        let climb: Vec<_> = (9..=60).map(|s| ladder.update(f64::from(s) * 1000.0, &reading(0.0, 40.0))).collect();
        assert_eq!(climb[7], Low);
        assert_eq!(climb[15], Medium);
        assert_eq!(climb[23], High);
        assert_eq!(climb.last(), Some(&High), "never above the ceiling");
        let mut phone = VideoLadder::new(0.0, Medium);
        let top = (1..=60).map(|s| phone.update(f64::from(s) * 1000.0, &reading(0.0, 40.0))).max();
        assert_eq!(top, Some(Medium), "a phone stays at 360p");
    }

    #[test]
    fn video_steps_down_when_the_estimated_bandwidth_cannot_carry_the_tier() {
        let mut ladder = VideoLadder::new(0.0, VideoTier::High);
        let thin = Quality { available_kbps: Some(300.0), ..reading(0.0, 20.0) };
        let tiers: Vec<_> = (1..=4).map(|s| ladder.update(f64::from(s) * 1000.0, &thin)).collect();
        // 360p needs 500 kbit/s: down to 180p (150 kbit/s), which 300 kbit/s carries.
        assert_eq!(tiers.last(), Some(&VideoTier::Low));
        assert!((5..=30).all(|s| ladder.update(f64::from(s) * 1000.0, &thin) == VideoTier::Low));
    }

    #[test]
    fn scaling_follows_the_camera_height() {
        assert_eq!(VideoTier::Medium.scale_down_from(720), 2.0);
        assert_eq!(VideoTier::Low.scale_down_from(720), 4.0);
        assert_eq!(VideoTier::High.scale_down_from(480), 1.0, "never scale up");
        assert_eq!(VideoTier::Off.scale_down_from(720), 1.0);
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
