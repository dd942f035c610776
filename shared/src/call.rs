//! The one call state a person sees, derived from the signaling session and the links to
//! each remote peer.

use std::fmt;

/// Where the local signaling session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// The person has not pressed "join" yet.
    Idle,
    /// Asking for the microphone, opening the socket, waiting for `joined`.
    Joining,
    /// In the room.
    Joined,
    /// Lost the relay after having joined; trying to get back.
    Lost,
    /// Something the person must act on (permission denied, room full, relay unreachable).
    Failed,
    /// The person left.
    Ended,
}

/// The state of the media link to one remote peer (`RTCPeerConnection.connectionState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Negotiating or gathering candidates.
    Connecting,
    /// Media can flow.
    Connected,
    /// The path dropped; ICE may still recover it.
    Disconnected,
    /// ICE gave up.
    Failed,
}

impl Link {
    /// Reads `RTCPeerConnectionState` as the browser spells it.
    pub fn from_connection_state(state: &str) -> Self {
        match state {
            "connected" => Self::Connected,
            "disconnected" => Self::Disconnected,
            "failed" | "closed" => Self::Failed,
            _ => Self::Connecting,
        }
    }

    /// The link as the UI's `data-link` attribute spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
        }
    }
}

/// What the call looks like to the person: the `data-state` of `call-state` in the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Not joined yet.
    Idle,
    /// In the room alone, waiting for someone to open the link.
    Waiting,
    /// Setting up the call.
    Connecting,
    /// Talking with at least one person.
    Connected,
    /// A connection dropped and is being recovered.
    Reconnecting,
    /// Stopped by a problem the person must act on.
    Failed,
    /// The person left.
    Ended,
}

impl CallState {
    /// The state as the UI's `data-state` attribute spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Waiting => "waiting",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Failed => "failed",
            Self::Ended => "ended",
        }
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A link still connecting after this long is given up as failed: the networks of the
/// two sides cannot reach each other (or the TURN server refused us).
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The call state for a session and the links to the peers in the room.
///
/// Anyone connected makes the call `connected`: in a room of three, one slow newcomer does
/// not hide that two people are talking.
pub fn call_state(session: Session, links: impl IntoIterator<Item = Link>) -> CallState {
    match session {
        Session::Idle => CallState::Idle,
        Session::Failed => CallState::Failed,
        Session::Ended => CallState::Ended,
        Session::Lost => CallState::Reconnecting,
        Session::Joining => CallState::Connecting,
        Session::Joined => {
            let (mut any, mut connected, mut dropped, mut trying) = (false, false, false, false);
            for link in links {
                any = true;
                connected |= link == Link::Connected;
                dropped |= link == Link::Disconnected;
                trying |= link == Link::Connecting;
            }
            match (any, connected, dropped, trying) {
                (false, ..) => CallState::Waiting,
                (true, true, ..) => CallState::Connected,
                (true, false, true, _) => CallState::Reconnecting,
                (true, false, false, true) => CallState::Connecting,
                // Every link gave up: the person must act (another network, leave).
                (true, false, false, false) => CallState::Failed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Link::*;

    #[test]
    fn a_joined_session_reads_its_links() {
        let joined = |links: &[Link]| call_state(Session::Joined, links.iter().copied());
        assert_eq!(joined(&[]), CallState::Waiting);
        assert_eq!(joined(&[Connecting]), CallState::Connecting);
        assert_eq!(joined(&[Connected]), CallState::Connected);
        assert_eq!(joined(&[Connecting, Connected]), CallState::Connected);
        assert_eq!(joined(&[Disconnected]), CallState::Reconnecting);
        assert_eq!(joined(&[Failed, Connecting]), CallState::Connecting);
        assert_eq!(joined(&[Failed, Disconnected]), CallState::Reconnecting);
        assert_eq!(joined(&[Failed, Connected]), CallState::Connected);
        assert_eq!(joined(&[Failed]), CallState::Failed);
        assert_eq!(joined(&[Failed, Failed]), CallState::Failed);
    }

    #[test]
    fn the_session_overrides_links_outside_a_joined_room() {
        for (session, state) in [
            (Session::Idle, CallState::Idle),
            (Session::Joining, CallState::Connecting),
            (Session::Lost, CallState::Reconnecting),
            (Session::Failed, CallState::Failed),
            (Session::Ended, CallState::Ended),
        ] {
            assert_eq!(call_state(session, [Connected]), state);
        }
    }

    #[test]
    fn browser_connection_states_map_to_links() {
        assert_eq!(Link::from_connection_state("new"), Connecting);
        assert_eq!(Link::from_connection_state("connecting"), Connecting);
        assert_eq!(Link::from_connection_state("connected"), Connected);
        assert_eq!(Link::from_connection_state("disconnected"), Disconnected);
        assert_eq!(Link::from_connection_state("failed"), Failed);
        assert_eq!(Link::from_connection_state("closed"), Failed);
    }

    #[test]
    fn states_are_spelled_as_the_ui_contract_says() {
        let all = [
            CallState::Idle,
            CallState::Waiting,
            CallState::Connecting,
            CallState::Connected,
            CallState::Reconnecting,
            CallState::Failed,
            CallState::Ended,
        ];
        let names: Vec<_> = all.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["idle", "waiting", "connecting", "connected", "reconnecting", "failed", "ended"]);
    }
}
