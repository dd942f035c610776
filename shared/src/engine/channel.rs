//! Reliable, ordered delivery of signals to one peer over a relay that may lose them.
//!
//! See the protocol's module docs for the wire rules: `seq` per message from 1, a
//! cumulative `ack`, receivers apply only the next message in order, senders keep what is
//! not acknowledged and send it again. This is go-back-N on a tiny scale: a pair exchanges a
//! few dozen messages in a call, so resending all that is outstanding costs nothing and
//! keeps the receiver trivial.

use std::collections::VecDeque;

use crate::protocol::{ClientMessage, Signal};
use crate::room::PeerId;

/// Resend what is outstanding when no acknowledgement came for this long; the wait doubles
/// with each resend that brings none, up to 16 times this.
pub const RESEND_AFTER_MS: u64 = 2_000;
/// Candidates wait this long for company, so a burst of them goes out as one message.
pub const CANDIDATE_BATCH_MS: u64 = 20;
/// An acknowledgement waits this long for a message of ours to ride on.
pub const ACK_DELAY_MS: u64 = 150;
/// The answer to a duplicate or a gap waits only this long, so that a burst of resent
/// messages gets one answer.
const NACK_DELAY_MS: u64 = 30;
/// The most signals in one message (an SDP is a few KiB, a candidate about 150 bytes; the
/// relay takes 64 KiB a frame).
const MAX_SIGNALS: usize = 8;

/// One direction pair of numbered messages with one peer.
#[derive(Debug)]
pub struct Channel {
    peer: PeerId,
    /// Signals not yet given a number, and since when the oldest has waited.
    pending: Vec<Signal>,
    pending_since: u64,
    /// Whether a pending signal may not wait (an offer or an answer).
    urgent: bool,
    /// Numbered messages not yet acknowledged, oldest first, with when each was last sent.
    unacked: VecDeque<(u32, Vec<Signal>, u64)>,
    next_seq: u32,
    /// The highest seq handed to the socket since the last resend.
    sent_upto: u32,
    /// Resends in a row that brought no acknowledgement.
    backoff: u32,
    /// Acknowledgements in a row that acknowledged nothing new while we had sent more.
    dup_acks: u32,
    /// When an acknowledgement last made us send everything again: the next one that does
    /// waits a while, or a burst of old acknowledgements would send it all many times.
    fast_resent_at: Option<u64>,
    /// An acknowledgement alone must go out, before any data: the peer learns where we
    /// stand even if it has nothing to send us.
    sync_due: bool,
    /// The next seq we expect from the peer.
    expected: u32,
    /// We owe the peer an acknowledgement, due then.
    ack_due: Option<u64>,
}

/// What a received message means for the negotiation.
pub enum Received {
    /// The next signals in order: apply them.
    Deliver(Vec<Signal>),
    /// Nothing new (a duplicate, a message after a gap, or an acknowledgement alone).
    Nothing,
}

impl Channel {
    /// A fresh channel to `peer`: nothing sent, nothing received.
    pub fn new(peer: PeerId) -> Self {
        Self {
            peer,
            pending: Vec::new(),
            pending_since: 0,
            urgent: false,
            unacked: VecDeque::new(),
            next_seq: 1,
            sent_upto: 0,
            backoff: 0,
            dup_acks: 0,
            fast_resent_at: None,
            sync_due: false,
            expected: 1,
            ack_due: None,
        }
    }

    /// Queues `signal` for the peer.
    pub fn push(&mut self, signal: Signal, now: u64) {
        if self.pending.is_empty() {
            self.pending_since = now;
        }
        self.urgent |= !matches!(signal, Signal::Candidate { .. });
        self.pending.push(signal);
    }

    /// Reads a numbered message from the peer.
    pub fn receive(&mut self, seq: u32, ack: u32, signals: Vec<Signal>, now: u64) -> Received {
        self.acknowledged(ack, seq == 0, now);
        if seq == 0 {
            return Received::Nothing;
        }
        self.ack_due.get_or_insert(now + ACK_DELAY_MS);
        if seq != self.expected {
            // A duplicate or a message past a gap: say soon where we are.
            self.ack_due = self.ack_due.map(|due| due.min(now + NACK_DELAY_MS));
            return Received::Nothing;
        }
        self.expected += 1;
        Received::Deliver(signals)
    }

    fn acknowledged(&mut self, ack: u32, alone: bool, now: u64) {
        let mut progress = false;
        while self.unacked.front().is_some_and(|(seq, ..)| *seq <= ack) {
            self.unacked.pop_front();
            progress = true;
        }
        if progress {
            self.backoff = 0;
            self.dup_acks = 0;
        }
        // Sent messages still outstanding and an acknowledgement alone, or three that
        // brought nothing: the peer is behind (it resumed, or something was lost), so send
        // them again now.
        if self.unacked.front().is_some_and(|(seq, ..)| *seq <= self.sent_upto) {
            self.dup_acks += u32::from(!progress);
            let calm = self.fast_resent_at.is_none_or(|at| now >= at + RESEND_AFTER_MS / 2);
            if (alone || self.dup_acks >= 3) && calm {
                self.resend();
                self.fast_resent_at = Some(now);
            }
        }
    }

    /// Sends everything outstanding again (after a resume, or when acknowledgements stay away).
    pub fn resend(&mut self) {
        self.backoff = 0;
        self.dup_acks = 0;
        self.sent_upto = self.unacked.front().map_or(self.sent_upto, |(seq, ..)| seq - 1);
    }

    /// Asks the peer to tell us where it stands (we may have missed messages): an
    /// acknowledgement alone goes out at once.
    pub fn sync(&mut self) {
        self.sync_due = true;
    }

    /// Whether everything we numbered has been acknowledged and nothing waits.
    pub fn idle(&self) -> bool {
        self.unacked.is_empty() && self.pending.is_empty()
    }

    /// The next message to put on the socket at `now`, if any is due.
    pub fn next_message(&mut self, now: u64) -> Option<ClientMessage> {
        if !self.pending.is_empty() && (self.urgent || now >= self.pending_since + CANDIDATE_BATCH_MS) {
            while !self.pending.is_empty() {
                let take = self.pending.len().min(MAX_SIGNALS);
                let signals: Vec<Signal> = self.pending.drain(..take).collect();
                self.unacked.push_back((self.next_seq, signals, 0));
                self.next_seq += 1;
            }
            self.urgent = false;
        }
        if self.resend_at().is_some_and(|at| now >= at) {
            let backoff = self.backoff + 1;
            self.resend();
            self.backoff = backoff.min(4);
        }
        let ack = self.expected - 1;
        if std::mem::take(&mut self.sync_due) {
            self.ack_due = None;
            return Some(ClientMessage::Signals { to: self.peer, seq: 0, ack, signals: Vec::new() });
        }
        let sent_upto = self.sent_upto;
        if let Some((seq, signals, sent_at)) = self.unacked.iter_mut().find(|(seq, ..)| *seq > sent_upto) {
            self.sent_upto = *seq;
            *sent_at = now;
            self.ack_due = None;
            return Some(ClientMessage::Signals { to: self.peer, seq: *seq, ack, signals: signals.clone() });
        }
        if self.ack_due.is_some_and(|due| now >= due) {
            self.ack_due = None;
            return Some(ClientMessage::Signals { to: self.peer, seq: 0, ack, signals: Vec::new() });
        }
        None
    }

    /// When the oldest message sent and not acknowledged is due again.
    fn resend_at(&self) -> Option<u64> {
        let (seq, _, sent_at) = self.unacked.front()?;
        (*seq <= self.sent_upto).then_some(sent_at + (RESEND_AFTER_MS << self.backoff))
    }

    /// When [`Channel::next_message`] may have something to say without new input.
    pub fn deadline(&self) -> Option<u64> {
        let batch = (!self.pending.is_empty()).then_some(self.pending_since + CANDIDATE_BATCH_MS);
        let sync = self.sync_due.then_some(0);
        let unsent = self.unacked.back().filter(|(seq, ..)| *seq > self.sent_upto).map(|_| 0);
        [batch, self.resend_at(), self.ack_due, sync, unsent].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(n: u32) -> Signal {
        Signal::Offer { sdp: format!("offer {n}") }
    }

    fn candidate(n: u32) -> Signal {
        Signal::Candidate { candidate: format!("c{n}"), sdp_mid: None, sdp_m_line_index: None }
    }

    fn unpack(message: Option<ClientMessage>) -> (u32, u32, Vec<Signal>) {
        match message {
            Some(ClientMessage::Signals { seq, ack, signals, .. }) => (seq, ack, signals),
            other => panic!("expected signals, got {other:?}"),
        }
    }

    #[test]
    fn offers_go_at_once_and_candidates_in_batches() {
        let mut ana = Channel::new(PeerId(2));
        ana.push(offer(1), 0);
        assert_eq!(unpack(ana.next_message(0)), (1, 0, vec![offer(1)]));
        ana.push(candidate(1), 5);
        ana.push(candidate(2), 10);
        assert!(ana.next_message(20).is_none(), "candidates wait for company");
        assert_eq!(ana.deadline(), Some(25));
        assert_eq!(unpack(ana.next_message(25)), (2, 0, vec![candidate(1), candidate(2)]));
    }

    #[test]
    fn a_receiver_applies_each_message_once_and_in_order() {
        let mut bo = Channel::new(PeerId(1));
        assert!(matches!(bo.receive(2, 0, vec![offer(2)], 0), Received::Nothing), "past a gap");
        assert!(matches!(bo.receive(1, 0, vec![offer(1)], 0), Received::Deliver(s) if s == [offer(1)]));
        assert!(matches!(bo.receive(1, 0, vec![offer(1)], 0), Received::Nothing), "a duplicate");
        assert!(matches!(bo.receive(2, 0, vec![offer(2)], 0), Received::Deliver(_)));
        // Duplicates and gaps are answered soon; in-order messages after a longer wait.
        assert!(bo.next_message(0).is_none());
        assert_eq!(unpack(bo.next_message(30)), (0, 2, vec![]));
        bo.receive(3, 0, vec![offer(3)], 10);
        assert!(bo.next_message(100).is_none());
        assert_eq!(unpack(bo.next_message(160)), (0, 3, vec![]));
    }

    #[test]
    fn what_is_not_acknowledged_goes_again() {
        let mut ana = Channel::new(PeerId(2));
        ana.push(offer(1), 0);
        ana.next_message(0);
        ana.push(offer(2), 100);
        ana.next_message(100);
        assert!(ana.next_message(1_000).is_none());
        // No acknowledgement for a while: both go again, in order.
        assert_eq!(unpack(ana.next_message(2_100)).0, 1);
        assert_eq!(unpack(ana.next_message(2_100)).0, 2);
        // The first arrived; an acknowledgement alone says so and that 2 is missing.
        ana.receive(0, 1, vec![], 2_200);
        assert_eq!(unpack(ana.next_message(2_200)), (2, 0, vec![offer(2)]));
        ana.receive(0, 2, vec![], 2_300);
        assert!(ana.idle());
        assert!(ana.next_message(10_000).is_none());
    }

    #[test]
    fn a_sync_asks_the_peer_where_it_stands() {
        let mut bo = Channel::new(PeerId(1));
        bo.sync();
        assert_eq!(unpack(bo.next_message(0)), (0, 0, vec![]));
    }
}
