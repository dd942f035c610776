//! What holds a seat on this relay: a live socket's outbox, or a bounded backlog while the
//! seat waits for a resume. Both room backends keep their members' attachments so.

use tokio::sync::mpsc;

use crate::metrics;

/// How a socket task receives what the room sends its peer: messages already encoded, so
/// a broadcast is encoded once and each queue slot is a pointer, not a whole message.
pub type Outbox = mpsc::Sender<String>;

/// How many messages may wait for one peer, live or parked. Beyond that the peer is not
/// keeping up, and messages for it are dropped rather than held for ever.
pub const OUTBOX_CAPACITY: usize = 64;

/// Where a member's messages go.
#[derive(Debug)]
pub enum Attachment {
    /// A socket serves the seat.
    Live(Outbox),
    /// The socket dropped: messages wait here for a resume.
    Parked(Vec<String>),
}

impl Attachment {
    /// Hands `message` to the socket, or keeps it for a resume; drops it (and counts it)
    /// when the peer is not keeping up.
    pub fn deliver(&mut self, message: String) {
        let delivered = match self {
            Self::Live(outbox) => outbox.try_send(message).is_ok(),
            Self::Parked(backlog) if backlog.len() < OUTBOX_CAPACITY => {
                backlog.push(message);
                true
            }
            Self::Parked(_) => false,
        };
        if !delivered {
            metrics::dropped();
            tracing::warn!("dropped a message for a peer that is not keeping up");
        }
    }

    /// Whether the seat waits for a resume.
    pub fn is_parked(&self) -> bool {
        matches!(self, Self::Parked(_))
    }

    /// Attaches `outbox`, returning what waited while parked (nothing if a socket held the
    /// seat: dropping its outbox cuts it off).
    pub fn attach(&mut self, outbox: Outbox) -> Vec<String> {
        match std::mem::replace(self, Self::Live(outbox)) {
            Self::Parked(backlog) => backlog,
            Self::Live(_) => Vec::new(),
        }
    }
}
