//! Property tests for the wire format (spec §5): every message round-trips through
//! postcard exactly, and no byte string — random, or a valid message mutated — panics a
//! decoder or decodes to something that re-encodes differently.

use kith_protocol::app::{AppRequest, AppResponse, SubjectRef};
use kith_protocol::endorsement::STATEMENT_VERSION;
use kith_protocol::frame::FrameDecoder;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::*;
use proptest::prelude::*;
use rand_core::OsRng;
use serde::{de::DeserializeOwned, Serialize};

fn item_strategy() -> impl Strategy<Value = ItemKey> {
    prop_oneof![
        "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}"
            .prop_map(|t| ItemKey::parse(&format!("tag:{t}")).unwrap()),
        (1u64..1_000_000).prop_map(|q| ItemKey::parse(&format!("wikidata:Q{q}")).unwrap()),
        Just(ItemKey::parse("isbn:9780441013593").unwrap()),
    ]
}

fn endorsement_strategy() -> impl Strategy<Value = Endorsement> {
    (
        item_strategy(),
        1u32..1000,
        proptest::option::of(1u8..=5),
        proptest::option::of(".{0,40}"),
        any::<u64>(),
    )
        .prop_map(|(item, count, rating, note, since)| Endorsement {
            item,
            count,
            rating,
            note,
            since,
        })
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    msg: &T,
) -> Result<(), TestCaseError> {
    let bytes = encode_message(msg);
    let back: T = decode_message(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, msg);
    Ok(())
}

/// Decoding arbitrary bytes must not panic, and whatever decodes re-encodes to a canonical
/// form that decodes to the same value. (postcard accepts overlong varints, so the received
/// bytes need not equal the re-encoding: signatures are always checked over received bytes.)
fn decode_is_total<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(m) = decode_message::<T>(bytes) {
        let canonical = encode_message(&m);
        let again: T =
            decode_message(&canonical).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, m);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn peer_messages_round_trip(qid in any::<[u8; 16]>(), item in item_strategy(), e in endorsement_strategy(), n in 0usize..3) {
        let id = Identity::generate(&mut OsRng);
        round_trip(&PeerRequest::Ask(Query { query_id: QueryId(qid), item: item.clone() }))?;
        let named = (0..n).map(|_| EndorsementStatement {
            version: STATEMENT_VERSION, endorser: id.node_id(), audience: id.node_id(),
            query_id: QueryId(qid), endorsement: e.clone(), issued_at: 5,
        }.sign(&id)).collect();
        round_trip(&PeerResponse::Answer(Answer { query_id: QueryId(qid), named }))?;
        let card = ContactCard::new(&id, "Zoë", vec!["[::1]:7400".into()], 1, 2).unwrap().sign(&id);
        round_trip(&PeerRequest::Redeem(InviteRedemption { invite_id: InviteId(qid), proof: [7; 32], card: card.clone() }))?;
        round_trip(&PeerResponse::Welcome(card))?;
        round_trip(&PeerResponse::Refused(Refusal::InviteUsed))?;
    }

    #[test]
    fn app_messages_round_trip(item in item_strategy(), e in endorsement_strategy(), limit in any::<u32>()) {
        round_trip(&AppRequest::Ask { item: item.clone(), timeout_ms: limit, epsilon: Some(limit), detail: true })?;
        round_trip(&AppRequest::Endorse { item: e.item.clone(), count: e.count, rating: e.rating, note: e.note.clone() })?;
        round_trip(&AppRequest::SetPolicy { subject: SubjectRef::Contact("Ana".into()), items: ItemPattern::parse("tag:a/*").unwrap(), share: Share::Ask })?;
        round_trip(&AppRequest::Audit { limit })?;
        round_trip(&AppResponse::Endorsements(vec![e]))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_is_total::<PeerRequest>(&bytes)?;
        decode_is_total::<PeerResponse>(&bytes)?;
        decode_is_total::<AppRequest>(&bytes)?;
        decode_is_total::<AppResponse>(&bytes)?;
        let mut d = FrameDecoder::new(MAX_PEER_FRAME);
        d.feed(&bytes);
        while let Ok(Some(_)) = d.next_frame() {}
        let text = String::from_utf8_lossy(&bytes);
        let _ = Invite::from_code(&text, 0);
        let _ = ItemKey::parse(&text);
    }

    #[test]
    fn mutated_messages_never_panic(qid in any::<[u8; 16]>(), item in item_strategy(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let id = Identity::generate(&mut OsRng);
        let card = ContactCard::new(&id, "Ana", vec!["127.0.0.1:1".into()], 1, 100).unwrap().sign(&id);
        let messages = [
            encode_message(&PeerRequest::Ask(Query { query_id: QueryId(qid), item })),
            encode_message(&PeerRequest::Redeem(InviteRedemption { invite_id: InviteId(qid), proof: [1; 32], card: card.clone() })),
            encode_message(&PeerResponse::Welcome(card.clone())),
        ];
        for m in messages {
            let mut bad = m.clone();
            for (i, x) in &flips {
                let at = i % bad.len();
                bad[at] ^= x | 1;
            }
            decode_is_total::<PeerRequest>(&bad)?;
            decode_is_total::<PeerResponse>(&bad)?;
            decode_is_total::<PeerRequest>(&m[..cut % m.len()])?;
        }
        // A mutated card body never verifies as the original signer's card with other content.
        let mut body = card.body.clone();
        let at = flips[0].0 % body.len();
        body[at] ^= flips[0].1 | 1;
        let forged = SignedCard { body, signature: card.signature };
        prop_assert!(forged.verify(50).is_err());
    }
}
