//! Who offers first, and who yields when both offer at once.
//!
//! We use the *perfect negotiation* pattern of the WebRTC specification: each side of a
//! pair is either *polite* (on an offer collision it rolls back its own offer and accepts
//! the other's) or *impolite* (it ignores the colliding offer and waits for its answer).
//! Both sides must agree on who is which without talking, so the roles come from the
//! relay-assigned ids: the earlier member of the room (lower id) is impolite.
//!
//! To avoid collisions in the common case, only the newcomer offers: a peer that receives
//! [`crate::protocol::ServerMessage::Joined`] offers to every peer listed there, and a peer
//! told [`crate::protocol::ServerMessage::PeerJoined`] waits for the newcomer's offer.

use crate::room::PeerId;

/// How this side behaves towards one remote peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// Yield on an offer collision.
    pub polite: bool,
    /// Send the first offer (otherwise wait for one).
    pub offers_first: bool,
}

/// How we learned of the remote peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Met {
    /// It was already in the room when we joined (listed in `joined`).
    WasThere,
    /// It joined after us (`peer_joined`), or its first signal reached us before we knew.
    Arrived,
}

/// Our role towards `them`.
pub fn role(me: PeerId, them: PeerId, met: Met) -> Role {
    Role { polite: me > them, offers_first: met == Met::WasThere }
}

/// What to do with an incoming offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferAction {
    /// Apply it (rolling back our own pending offer, if any) and answer.
    Accept,
    /// Drop it: our own offer wins this collision, and so do its candidates.
    Ignore,
}

/// The collision rule of perfect negotiation. `stable` is whether our signaling state is
/// `stable` when the offer is taken up; the engine runs one browser operation at a time, so
/// no offer of ours is half made then (the pattern's `makingOffer` is always false).
pub fn on_offer(role: Role, stable: bool) -> OfferAction {
    if !stable && !role.polite { OfferAction::Ignore } else { OfferAction::Accept }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_sides_of_a_pair_always_disagree_on_politeness_and_agree_on_who_offers() {
        for (a, b) in [(1, 2), (2, 1), (7, 30)] {
            let (a, b) = (PeerId(a), PeerId(b));
            // b joined while a was there: b offers, a waits.
            let ra = role(a, b, Met::Arrived);
            let rb = role(b, a, Met::WasThere);
            assert_ne!(ra.polite, rb.polite);
            assert!(rb.offers_first && !ra.offers_first);
        }
        assert!(!role(PeerId(1), PeerId(2), Met::Arrived).polite, "the earlier member is impolite");
    }

    #[test]
    fn only_the_impolite_side_ignores_a_colliding_offer() {
        let polite = Role { polite: true, offers_first: false };
        let impolite = Role { polite: false, offers_first: true };
        assert_eq!(on_offer(impolite, false), OfferAction::Ignore);
        assert_eq!(on_offer(impolite, true), OfferAction::Accept);
        assert_eq!(on_offer(polite, false), OfferAction::Accept);
        assert_eq!(on_offer(polite, true), OfferAction::Accept);
    }
}
