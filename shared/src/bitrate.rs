//! The bitrate controllers: turn each second's [`Quality`] of a link into what our senders
//! on that link may use, the Opus `maxBitrate` ([`AudioBitrate`]) and, when the camera is
//! on, a video tier ([`VideoLadder`]).
//!
//! Opus starts at 32 kbit/s (wideband voice with headroom). Where the peer takes RED (RFC
//! 2198; Chromium does), each packet also carries the one before, so a lost packet is
//! recovered from the next; that copy doubles the bytes, so on a clean path Opus runs at
//! 16 kbit/s under RED and the call costs what plain Opus did.
//!
//! Under loss the controller spends bits on recovery instead of only stepping down: loss
//! alone (a weak radio link, short round trip) takes Opus to 24 kbit/s and no lower.
//! libopus codes its in-band FEC (LBRR) for wideband speech only above 16 kbit/s times
//! (1.25 - loss), 18.4 kbit/s at 10 % loss, 20 at 20 % (`decide_fec`, `opus_encoder.c`;
//! below that it narrows the band, and at 12 kbit/s gives FEC up): the old floor
//! of 12 kbit/s turned FEC off just when it was needed. Under RED that is Opus with its
//! FEC inside RED's copies, two layers of recovery. A long round trip (a queue, which
//! fewer bits drain) steps on down by a quarter at a time to 12 kbit/s, where Opus is
//! still intelligible. When the path is clean for a while it climbs back 4 kbit/s at a
//! time.
//!
//! Measured between two Chromium 156 pages (`scripts/loss_bench.sh`; README), the share of
//! the listener's audio concealed: at 10 % loss, plain Opus stepped down to 12 kbit/s 8.8 to
//! 10.2 %, plain Opus held at 24 kbit/s 2.8 to 6.9 % (FEC alone), RED with Opus at 12 or 16
//! kbit/s 0.7 to 1 %, RED at 24 kbit/s 0.2 to 1.6 %; at 20 % loss plain Opus at 12 kbit/s
//! 18 to 19 %, RED at 12 or 16 kbit/s 2.7 to 3.4 %, RED at 24 kbit/s 1.0 to 3.4 %.
//!
//! Hysteresis keeps it from flapping: it needs two bad readings in a row to step down,
//! eight clean ones to step up, and waits between changes (longer before climbing, which
//! risks more than falling).

use crate::stats::Quality;

/// Where plain Opus starts, and the ceiling, bit/s.
pub const AUDIO_START_BPS: u32 = 32_000;
/// Opus under RED on a clean path, bit/s: with the copy, what plain Opus at
/// [`AUDIO_START_BPS`] costs.
pub const RED_CLEAN_BPS: u32 = 16_000;
/// Opus under loss alone, with or without RED, and no lower, bit/s: its in-band FEC
/// still protects wideband speech at 10 to 20 % loss.
pub const FEC_BPS: u32 = 24_000;
/// The floor under congestion (a long round trip), bit/s.
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
/// From this round trip a path counts as congested, ms.
const LONG_RTT_MS: f64 = 400.0;

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
    if loss >= 5.0 || rtt >= LONG_RTT_MS {
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

/// The Opus controller for one sender: a rung of the ladder 32, 24, 18, 13.5, 12 kbit/s,
/// stepped by the hysteresis, and the Opus bitrate it means with or without RED
/// ([`opus_bitrate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AudioBitrate {
    rung: u32,
    /// The last step down was for loss alone: the bits buy recovery.
    protecting: bool,
    hysteresis: Hysteresis,
}

impl AudioBitrate {
    /// A controller on the top rung; `now_ms` is when the link came up.
    pub fn new(now_ms: f64) -> Self {
        Self { rung: AUDIO_START_BPS, protecting: false, hysteresis: Hysteresis::new(now_ms) }
    }

    /// Takes a reading made at `now_ms` and returns the new Opus `maxBitrate`, bit/s.
    pub fn update(&mut self, now_ms: f64, quality: &Quality) -> u32 {
        let rung = self.rung;
        // Loss alone is repaired by FEC and RED, which need their bits; a long round trip
        // is a queue, which fewer bits drain.
        let loss_alone = quality.rtt_ms < LONG_RTT_MS;
        let floor = if loss_alone { FEC_BPS } else { AUDIO_FLOOR_BPS };
        let can_go = |step| match step {
            Step::Down => rung > floor,
            Step::Up => rung < AUDIO_START_BPS,
        };
        match self.hysteresis.step(now_ms, condition(quality), can_go) {
            Some(Step::Down) => (self.rung, self.protecting) = ((rung * 3 / 4).max(floor), loss_alone),
            Some(Step::Up) => (self.rung, self.protecting) = ((rung + STEP_UP_BPS).min(AUDIO_START_BPS), false),
            None => {}
        }
        opus_bitrate(self.rung, quality.send_redundancy, self.protecting)
    }
}

/// The Opus `maxBitrate` on a rung of the ladder, bit/s: the rung itself for plain Opus;
/// under RED at most [`RED_CLEAN_BPS`] (its copy doubles the bytes), except while
/// `protecting` against loss, when Opus keeps the rung ([`FEC_BPS`]) for its FEC.
pub fn opus_bitrate(rung: u32, redundancy: bool, protecting: bool) -> u32 {
    if redundancy && !protecting { rung.min(RED_CLEAN_BPS) } else { rung }
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

    /// A reading of a link whose packets carry RED.
    fn redundant(send_loss_pct: f64, rtt_ms: f64) -> Quality {
        Quality { send_redundancy: true, ..reading(send_loss_pct, rtt_ms) }
    }

    #[test]
    fn sustained_loss_steps_down_once_and_keeps_the_bits_fec_needs() {
        let mut controller = AudioBitrate::new(0.0);
        let targets = drive(&mut controller, 1, &vec![reading(10.0, 40.0); 12]);
        assert_eq!(targets[0], 32_000, "a single bad second changes nothing");
        assert!(targets[1..].iter().all(|&t| t == FEC_BPS), "{targets:?}");
    }

    #[test]
    fn long_round_trips_step_down_to_the_floor_and_no_further() {
        let mut controller = AudioBitrate::new(0.0);
        let targets = drive(&mut controller, 1, &vec![reading(0.0, 600.0); 12]);
        assert_eq!(
            targets,
            [32_000, 24_000, 24_000, 18_000, 18_000, 13_500, 13_500, 12_000, 12_000, 12_000, 12_000, 12_000]
        );
        // Loss on a long round trip is congestion too.
        let mut controller = AudioBitrate::new(0.0);
        assert_eq!(drive(&mut controller, 1, &vec![reading(10.0, 600.0); 12]).last(), Some(&AUDIO_FLOOR_BPS));
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
    fn a_clean_path_climbs_back_slowly_and_fair_readings_hold() {
        let mut controller = AudioBitrate::new(0.0);
        assert_eq!(drive(&mut controller, 1, &vec![reading(10.0, 600.0); 8]).last(), Some(&12_000));
        // Fair (3 % loss) holds where it is; so does loss alone below its floor.
        assert!(drive(&mut controller, 9, &vec![reading(3.0, 40.0); 20]).iter().all(|&t| t == 12_000));
        assert!(drive(&mut controller, 29, &vec![reading(10.0, 40.0); 20]).iter().all(|&t| t == 12_000));
        // Clean: a step of 4 kbit/s after 8 clean seconds, then one every 8 seconds.
        let climb = drive(&mut controller, 49, &vec![reading(0.0, 40.0); 40]);
        assert_eq!(climb[6], 12_000);
        assert_eq!(climb[7], 16_000);
        assert_eq!(climb[15], 20_000);
        assert_eq!(*climb.last().unwrap_or(&0), AUDIO_START_BPS);
        assert!(climb.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] <= STEP_UP_BPS));
    }

    #[test]
    fn with_red_a_clean_path_sends_half_and_loss_buys_fec_inside_red() {
        let mut controller = AudioBitrate::new(0.0);
        assert_eq!(drive(&mut controller, 1, &vec![redundant(0.0, 40.0); 3]), [RED_CLEAN_BPS; 3]);
        // Loss: Opus goes up to the rate its FEC needs, and holds.
        let lossy = drive(&mut controller, 4, &vec![redundant(10.0, 40.0); 12]);
        assert_eq!(lossy[0], RED_CLEAN_BPS);
        assert!(lossy[1..].iter().all(|&t| t == FEC_BPS), "{lossy:?}");
        // A long round trip steps on down to the floor.
        assert_eq!(drive(&mut controller, 16, &vec![redundant(0.0, 600.0); 12]).last(), Some(&AUDIO_FLOOR_BPS));
        // A clean path climbs back, never above what RED's copy leaves for Opus.
        let climb = drive(&mut controller, 28, &vec![redundant(0.0, 40.0); 80]);
        assert!(climb.windows(2).all(|w| w[1] >= w[0] && w[1] <= RED_CLEAN_BPS), "{climb:?}");
        assert_eq!(climb.last(), Some(&RED_CLEAN_BPS));
        // Loss after the climb buys FEC again.
        assert_eq!(drive(&mut controller, 108, &vec![redundant(20.0, 40.0); 3]).last(), Some(&FEC_BPS));
    }

    #[test]
    fn redundancy_negotiated_or_lost_takes_effect_at_once() {
        let mut controller = AudioBitrate::new(0.0);
        let readings = [reading(0.0, 40.0), redundant(0.0, 40.0), reading(0.0, 40.0)];
        assert_eq!(drive(&mut controller, 1, &readings), [AUDIO_START_BPS, RED_CLEAN_BPS, AUDIO_START_BPS]);
    }

    #[test]
    fn the_policy_at_the_measured_loss_levels() {
        // What a sender settles on after 30 s at 0, 3, 10 and 20 % loss with a 40 ms round
        // trip, and under congestion (600 ms), without and with RED.
        for (loss, rtt, plain, red) in [
            (0.0, 40.0, 32_000, 16_000),
            (3.0, 40.0, 32_000, 16_000),
            (10.0, 40.0, 24_000, 24_000),
            (20.0, 40.0, 24_000, 24_000),
            (10.0, 600.0, 12_000, 12_000),
        ] {
            let settled = |redundancy| {
                let mut controller = AudioBitrate::new(0.0);
                let reading = Quality { send_redundancy: redundancy, ..reading(loss, rtt) };
                *drive(&mut controller, 1, &vec![reading; 30]).last().unwrap_or(&0)
            };
            assert_eq!((settled(false), settled(true)), (plain, red), "at {loss} % loss, {rtt} ms");
        }
    }

    #[test]
    fn opus_bitrate_is_the_rung_but_capped_by_red_unless_it_buys_recovery() {
        assert_eq!(opus_bitrate(32_000, false, false), 32_000);
        assert_eq!(opus_bitrate(32_000, true, false), RED_CLEAN_BPS);
        assert_eq!(opus_bitrate(24_000, true, true), 24_000);
        assert_eq!(opus_bitrate(24_000, false, true), 24_000);
        assert_eq!(opus_bitrate(13_500, true, false), 13_500);
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
