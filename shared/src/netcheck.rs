//! The network check before joining: whether a call across networks will get through,
//! decided from the ICE candidates a browser gathers against the relay's ICE servers
//! ([`crate::protocol::IceConfig`], the relay's `GET /ice`).
//!
//! A relayed candidate means our TURN server answered: a call gets through wherever the
//! browser reaches it, whatever the other side's network. A server-reflexive one without it
//! means a STUN server saw the browser's public address: direct calls work through most
//! home and mobile NATs, not between two strict ones (symmetric NAT, office firewalls).
//! Host candidates alone mean no server answered (UDP blocked, or none configured): only a
//! peer on the same network is in reach.

use crate::stats::CandidateType;

/// How long a check gathers at most, in milliseconds. A TURN server that never answers
/// holds gathering for tens of seconds; a working one answers in a few round trips.
pub const CHECK_TIMEOUT_MS: u32 = 5_000;

/// What the check says of calls across networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Calls get through, through our TURN server if need be.
    Turn,
    /// Direct calls work on most networks; two strict ones may not reach each other.
    Direct,
    /// No way through: calls only work with someone on the same network.
    NoWayThrough,
}

impl Reach {
    /// Its name for programs and tests (the UI's `data-result`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turn => "turn",
            Self::Direct => "direct",
            Self::NoWayThrough => "none",
        }
    }
}

/// What a check has gathered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gathered {
    reflexive: bool,
    relayed: bool,
}

impl Gathered {
    /// Counts one gathered candidate, given as its `candidate:` line.
    pub fn add(&mut self, line: &str) {
        match CandidateType::of_line(line) {
            Some(CandidateType::Relay) => self.relayed = true,
            Some(CandidateType::Srflx | CandidateType::Prflx) => self.reflexive = true,
            Some(CandidateType::Host) | None => {}
        }
    }

    /// Whether the check can stop before gathering ends: nothing that comes later would
    /// change its result.
    pub fn settled(self) -> bool {
        self.relayed
    }

    /// The result, from what was gathered by the end of gathering or the timeout.
    pub fn reach(self) -> Reach {
        match self {
            Self { relayed: true, .. } => Reach::Turn,
            Self { reflexive: true, .. } => Reach::Direct,
            _ => Reach::NoWayThrough,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "candidate:1 1 udp 2122260223 4f1c2a.local 50000 typ host generation 0";
    const SRFLX: &str = "candidate:2 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0";
    const RELAY: &str = "candidate:3 1 udp 41885439 198.51.100.2 49152 typ relay raddr 203.0.113.7 rport 61000";

    fn gathered(lines: &[&str]) -> Gathered {
        let mut gathered = Gathered::default();
        lines.iter().for_each(|line| gathered.add(line));
        gathered
    }

    #[test]
    fn a_relayed_candidate_means_calls_get_through_turn() {
        assert_eq!(gathered(&[HOST, SRFLX, RELAY]).reach(), Reach::Turn);
        assert_eq!(gathered(&[RELAY]).reach(), Reach::Turn, "a relay-only policy gathers nothing else");
    }

    #[test]
    fn a_reflexive_candidate_without_a_relayed_one_means_direct_only() {
        assert_eq!(gathered(&[HOST, SRFLX]).reach(), Reach::Direct);
    }

    #[test]
    fn host_candidates_alone_or_nothing_mean_no_way_through() {
        assert_eq!(gathered(&[HOST, HOST]).reach(), Reach::NoWayThrough);
        assert_eq!(gathered(&[]).reach(), Reach::NoWayThrough);
        assert_eq!(gathered(&["", "candidate:garbage typ"]).reach(), Reach::NoWayThrough);
    }

    #[test]
    fn only_a_relayed_candidate_settles_the_check_early() {
        assert!(!gathered(&[HOST, SRFLX]).settled(), "a relayed candidate may still come");
        assert!(gathered(&[RELAY]).settled());
    }

    #[test]
    fn results_are_named_as_the_page_shows_them() {
        let names = [Reach::Turn, Reach::Direct, Reach::NoWayThrough].map(Reach::as_str);
        assert_eq!(names, ["turn", "direct", "none"]);
    }
}
