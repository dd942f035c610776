//! Short-lived TURN credentials, as coturn's `use-auth-secret` (the "TURN REST API")
//! checks them: no password is stored anywhere, and a leaked one expires on its own.

use std::fmt::Display;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use shared::protocol::IceServer;

/// The TURN part of the configuration.
#[derive(Clone, Debug)]
pub struct Turn {
    /// `turn:` URLs.
    pub urls: Vec<String>,
    /// The secret shared with coturn.
    pub secret: String,
}

impl Turn {
    /// The ICE server entry for `user` (a peer id, or what else asks), valid from `now`
    /// for `ttl`.
    pub fn ice_server(&self, user: impl Display, now: SystemTime, ttl: Duration) -> IceServer {
        let expiry = now.duration_since(UNIX_EPOCH).unwrap_or_default().saturating_add(ttl).as_secs();
        let (username, credential) = credentials(&self.secret, expiry, user);
        IceServer { urls: self.urls.clone(), username: Some(username), credential: Some(credential) }
    }
}

/// `username = "<expiry unix time>:<user>"`, `password = base64(HMAC-SHA1(secret, username))`.
pub fn credentials(secret: &str, expiry_unix: u64, user: impl Display) -> (String, String) {
    let username = format!("{expiry_unix}:{user}");
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let password = STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use shared::room::PeerId;

    use super::*;

    #[test]
    fn credentials_match_an_independent_hmac_sha1() {
        // Python: base64.b64encode(hmac.new(b'north', b'1700000000:7', hashlib.sha1).digest())
        assert_eq!(
            credentials("north", 1_700_000_000, PeerId(7)),
            ("1700000000:7".into(), "PPWz7PpRwxKwGzZCJzS+CZ2BJhk=".into())
        );
    }

    #[test]
    fn the_username_carries_the_expiry() {
        let turn = Turn { urls: vec!["turn:127.0.0.1:3478".into()], secret: "s".into() };
        let server = turn.ice_server(PeerId(2), UNIX_EPOCH + Duration::from_secs(1_000), Duration::from_secs(3600));
        assert_eq!(server.username.as_deref(), Some("4600:2"));
        assert_eq!(server.urls, ["turn:127.0.0.1:3478"]);
        assert_eq!(server.credential, Some(credentials("s", 4600, PeerId(2)).1));
    }
}
