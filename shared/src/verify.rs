//! The verification code: what two people in a call read to each other to be sure that
//! nobody, not even our relay, sits between their two browsers.
//!
//! Each browser's DTLS certificate is named by its fingerprint in the session descriptions
//! the two exchange (`a=fingerprint:`), and the media is encrypted to exactly those
//! certificates. Someone in the middle (a relay forging descriptions) must put its own
//! fingerprint in each side's view, so the two sides see different pairs. The code hashes
//! the pair, in an order both sides agree on (sorted, so "mine" and "theirs" do not
//! matter), with the room id, through SHA-256, and shows 53 bits of it as 16 digits: a
//! forger who sees the descriptions go by cannot grind a certificate that matches within a
//! call's set-up.

use sha2::{Digest, Sha256};

use crate::room::RoomId;

/// Separates this hash from any other use of the same inputs.
const DOMAIN: &[u8] = b"linkcall verification code v1\n";

/// The certificate fingerprint a session description carries (its first
/// `a=fingerprint:<hash> <hex>` line, at session or media level), as `<hash> <HEX>`.
pub fn fingerprint(sdp: &str) -> Option<String> {
    let line = sdp.lines().find_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))?;
    let (hash, hex) = line.split_once(' ')?;
    let hex = hex.trim();
    let well_formed = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    well_formed.then(|| format!("{} {}", hash.to_ascii_lowercase(), hex.to_ascii_uppercase()))
}

/// The code for a call in `room` between the certificates `ours` and `theirs`
/// ([`fingerprint`]s): 16 digits in four groups, the same on both sides.
pub fn code(room: &RoomId, ours: &str, theirs: &str) -> String {
    let (low, high) = if ours <= theirs { (ours, theirs) } else { (theirs, ours) };
    let mut hash = Sha256::new();
    for part in [DOMAIN, room.as_str().as_bytes(), b"\n", low.as_bytes(), b"\n", high.as_bytes()] {
        hash.update(part);
    }
    let mut first = [0; 8];
    first.copy_from_slice(&hash.finalize()[..8]);
    let digits = format!("{:016}", u64::from_be_bytes(first) % 10_000_000_000_000_000);
    let groups: Vec<&str> = (0..4).map(|i| &digits[i * 4..i * 4 + 4]).collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::{code, fingerprint};
    use crate::room::RoomId;

    const ANA: &str =
        "sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";
    const BO: &str =
        "sha-256 B8:2C:7E:51:9D:1F:77:3A:0E:55:8C:21:A4:90:6D:E3:12:4F:9B:66:C0:0D:2E:71:85:3A:BF:44:19:E2:60:7C";

    fn room() -> RoomId {
        RoomId::from_random([7; RoomId::LEN])
    }

    #[test]
    fn both_sides_get_the_same_code_whichever_is_ours() {
        let code = code(&room(), ANA, BO);
        assert_eq!(code, super::code(&room(), BO, ANA));
        assert_eq!(code.len(), 19, "{code}");
        assert!(code.split(' ').all(|group| group.len() == 4 && group.bytes().all(|b| b.is_ascii_digit())), "{code}");
    }

    #[test]
    fn a_changed_fingerprint_on_either_side_or_another_room_changes_it() {
        let code = code(&room(), ANA, BO);
        let forged = ANA.replace("6B:8B", "6B:8C");
        assert_ne!(code, super::code(&room(), &forged, BO), "our side forged");
        assert_ne!(code, super::code(&room(), ANA, &forged), "their side forged");
        assert_ne!(code, super::code(&RoomId::from_random([8; RoomId::LEN]), ANA, BO), "another room");
    }

    #[test]
    fn the_fingerprint_comes_from_the_description() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=fingerprint:SHA-256 6b:8b:f0:65\r\na=setup:actpass\r\n";
        assert_eq!(fingerprint(sdp).as_deref(), Some("sha-256 6B:8B:F0:65"));
        assert_eq!(fingerprint("v=0\r\na=setup:actpass\r\n"), None);
        assert_eq!(fingerprint("a=fingerprint:sha-256 <script>\r\n"), None);
        assert_eq!(fingerprint("a=fingerprint:sha-256\r\n"), None);
    }
}
