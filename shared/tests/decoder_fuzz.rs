//! Property-based fuzzing of the message decoders: whatever bytes a client sends, decoding
//! returns a message or an error, never a panic; every message survives a round trip.

use proptest::prelude::*;
use shared::protocol::{ClientMessage, ServerMessage, Signal};
use shared::room::PeerId;

fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        any::<String>().prop_map(|sdp| Signal::Offer { sdp }),
        any::<String>().prop_map(|sdp| Signal::Answer { sdp }),
        Just(Signal::Renew {}),
        (any::<String>(), any::<Option<String>>(), any::<Option<u16>>()).prop_map(
            |(candidate, sdp_mid, sdp_m_line_index)| Signal::Candidate { candidate, sdp_mid, sdp_m_line_index }
        ),
    ]
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u32>(), any::<String>(), any::<Option<String>>())
            .prop_map(|(version, room, resume)| ClientMessage::Join { version, room, resume }),
        (any::<u32>(), signal()).prop_map(|(to, signal)| ClientMessage::Signal { to: PeerId(to), signal }),
        Just(ClientMessage::Leave {}),
        Just(ClientMessage::Ping {}),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = ClientMessage::decode(&text);
        let _ = ServerMessage::decode(&text);
    }

    #[test]
    fn json_shaped_noise_never_panics(text in r#"[\[\]{}",:0-9a-z_ \\]{0,200}"#) {
        let _ = ClientMessage::decode(&text);
    }

    #[test]
    fn every_client_message_round_trips(message in client_message()) {
        prop_assert_eq!(ClientMessage::decode(&message.encode()).unwrap(), message);
    }

    #[test]
    fn mutated_valid_frames_never_panic(message in client_message(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = message.encode().into_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = ClientMessage::decode(&text);
        }
    }
}
