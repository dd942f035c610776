//! When to try the relay again after losing it.
//!
//! Exponential backoff with "equal jitter": the n-th retry waits a random time between half
//! and all of `min(cap, base * 2^n)`. The doubling spares a relay that is coming back up
//! from every client at once, the jitter spreads the herd, and the floor of half keeps
//! retries from bunching at zero. The cap is low (3 s) because people are waiting in a
//! call: after a relay restart everyone should be back within a few seconds.

use std::time::Duration;

/// A backoff schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

/// The schedule the client uses to reconnect to the relay.
pub const RECONNECT: Backoff = Backoff { base: Duration::from_millis(250), cap: Duration::from_secs(3) };

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first), given `unit` drawn
    /// uniformly from `[0, 1)` by the caller (the schedule itself is deterministic).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.base.saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX)).min(self.cap);
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        ceiling / 2 + ceiling.mul_f64(unit) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let ceilings: Vec<_> = (0..8).map(|n| RECONNECT.delay(n, 1.0)).collect();
        assert_eq!(ceilings, [MS(250), MS(500), MS(1000), MS(2000), MS(3000), MS(3000), MS(3000), MS(3000)]);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_ceiling() {
        assert_eq!(RECONNECT.delay(0, 0.0), MS(125));
        assert_eq!(RECONNECT.delay(2, 0.5), MS(750));
        for unit in [-1.0, 0.0, 0.3, 0.999, 7.0, f64::NAN, f64::INFINITY] {
            let delay = RECONNECT.delay(3, unit);
            assert!((MS(1000)..=MS(2000)).contains(&delay), "{unit} -> {delay:?}");
        }
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        assert_eq!(RECONNECT.delay(u32::MAX, 1.0), MS(3000));
        assert_eq!(RECONNECT.delay(40, 0.0), MS(1500));
    }
}
