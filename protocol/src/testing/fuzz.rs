//! Entry points for fuzzing: each takes arbitrary bytes, drives one decoder or state machine
//! with them, and checks what must hold for any input (no panic; a decoded value encodes
//! back to a value that decodes to itself). The cargo-fuzz targets in `protocol/fuzz/` call
//! these, and `tests/fuzz_corpora.rs` replays the committed corpora and seeded random
//! inputs through them on every `cargo test`, without libFuzzer or nightly.
//!
//! Not part of the protocol API.
//!
//! Test support for the decoding rules of §5, the text codes of §3.3 and the responder of
//! §9.8.3; not part of the protocol.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::aggregation::input::Contribution;
use crate::aggregation::messages::AggRequest;
use crate::aggregation::responder::ResponderSettings;
use crate::app::{AppRequest, AppResponse};
use crate::frame::{encode_frame, FrameDecoder};
use crate::identity::{Identity, NodeId};
use crate::invite::Invite;
use crate::item::{ItemKey, ItemPattern};
use crate::message::{PeerRequest, PeerResponse, QueryId};
use crate::pairing::PairingCode;
use crate::wire::{decode_message, encode_message};

use super::SimRng;

/// Feed `data` to a frame decoder in chunks whose sizes come from the data itself; every
/// frame decoded must re-encode to the bytes it came from.
/// Test support for the framing of §5.1; not part of the protocol.
pub fn frames(data: &[u8]) {
    let Some((&chunking, rest)) = data.split_first() else {
        return;
    };
    let cap = 64 * 1024;
    let mut decoder = FrameDecoder::new(cap);
    let step = 1 + chunking as usize % 17;
    for chunk in rest.chunks(step) {
        decoder.feed(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(body)) => {
                    let frame = encode_frame(&body, cap).expect("a decoded body fits its cap");
                    assert_eq!(&frame[4..], &body[..]);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = decode_message::<T>(data) {
        let again: T = decode_message(&encode_message(&value)).expect("re-encoded decodes");
        assert_eq!(again, value);
    }
}

/// Every versioned message type, peer and app, as received.
/// Test support for the decoding rules of §5.2 and §5.3; not part of the protocol.
pub fn messages(data: &[u8]) {
    round_trip::<PeerRequest>(data);
    round_trip::<PeerResponse>(data);
    round_trip::<AppRequest>(data);
    round_trip::<AppResponse>(data);
}

/// Every text form people paste: item keys and patterns, invite codes, pairing codes.
/// Test support for the texts of §6.1, §6.2, §3.2 and §10.5; not part of the protocol.
pub fn texts(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(item) = ItemKey::parse(text) {
        let again = ItemKey::parse(&item.to_string()).expect("a normal form parses");
        assert_eq!(again, item, "the normal form is a fixed point");
    }
    if let Ok(pattern) = ItemPattern::parse(text) {
        let again = ItemPattern::parse(&pattern.to_string()).expect("a pattern's text parses");
        assert_eq!(again, pattern);
    }
    let _ = Invite::from_code(text, 1_790_000_000);
    if let Ok(code) = PairingCode::from_text(text) {
        assert_eq!(
            PairingCode::from_text(&code.to_text()).expect("round trip"),
            code
        );
    }
}

/// A responder in an aggregation, fed a sequence of round requests from `data` (each
/// prefixed by a one-byte length unit): whatever arrives, it answers without panicking.
/// Test support for the responder checks of §9.8.3; not part of the protocol.
pub fn rounds(data: &[u8]) {
    let mut rng = SimRng(7);
    let identity = Identity::generate(&mut rng);
    let asker = NodeId([9; 32]);
    let now = Instant::now();
    let mut member = super::sim::SimMember::new(identity, Contribution::default())
        .with_settings(ResponderSettings {
            epsilon: Some(1000),
            min_cohort: 2,
        })
        .knowing([NodeId([3; 32])]);
    let advertise = AggRequest::Advertise {
        query_id: QueryId([5; 16]),
        item: crate::ItemKey::parse("tag:x").expect("a tag"),
        epsilon: None,
        detail: false,
    };
    member.answer(
        asker,
        advertise,
        &mut rng,
        now,
        now + Duration::from_secs(60),
    );
    let responder = member.session_mut().expect("advertised");
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let take = (len as usize * 8).min(tail.len());
        let (message, next) = tail.split_at(take);
        rest = next;
        if let Ok(PeerRequest::Aggregate(request)) = decode_message::<PeerRequest>(message) {
            let _ = responder.handle(request, &mut rng, now);
        } else if let Ok(request) = crate::wire::decode_exact::<AggRequest>(message) {
            let _ = responder.handle(request, &mut rng, now);
        }
    }
}
