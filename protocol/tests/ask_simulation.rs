//! Deterministic simulation of ask rounds (spec §8.3) with a virtual clock and a fault
//! schedule: every contact is delayed, dropped, corrupted or made to lie, and the asker's
//! outcome must be exactly what the honest, timely contacts consented to reveal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kith_protocol::consent::{PolicyRule, Subject};
use kith_protocol::message::Answer;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::*;
use rand_core::RngCore;

mod common;
use common::SimRng;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Answer arrives after this delay.
    Delay(Duration),
    /// Never answers.
    Silent,
    /// Transport reports the contact unreachable.
    Unreachable,
    /// Flips a byte of the answer.
    Corrupt,
    /// Signs an endorsement for a different asker.
    WrongAudience,
    /// Answers twice (the second copy must be ignored).
    Duplicate,
}

struct Contact {
    identity: Identity,
    endorsements: Vec<Endorsement>,
    policy: ConsentPolicy,
    fault: Fault,
}

fn item(s: &str) -> ItemKey {
    ItemKey::parse(s).unwrap()
}

fn run(seed: u64) {
    let mut rng = SimRng(seed);
    let timeout = Duration::from_secs(5);
    let start = Instant::now();
    let asker = Identity::generate(&mut rng);
    let n = 1 + (rng.next_u32() % 40) as usize;
    let asked = item("tag:vehicle/subaru");
    let catalogue = [
        "tag:vehicle/subaru/outback",
        "tag:vehicle/subaru",
        "tag:vehicle/subarus",
        "tag:book/dune",
    ];
    let shares = [Share::None, Share::Count, Share::Ask, Share::Name];
    let faults = |r: &mut SimRng| match r.next_u32() % 10 {
        0 => Fault::Delay(Duration::from_millis(r.next_u64() % 10_000)),
        1 => Fault::Silent,
        2 => Fault::Unreachable,
        3 => Fault::Corrupt,
        4 => Fault::WrongAudience,
        5 => Fault::Duplicate,
        _ => Fault::None,
    };
    let contacts: Vec<Contact> = (0..n)
        .map(|_| {
            let identity = Identity::generate(&mut rng);
            let mut endorsements = Vec::new();
            for s in catalogue {
                if rng.next_u32().is_multiple_of(2) {
                    let count = 1 + rng.next_u32() % 3;
                    endorsements.push(Endorsement::new(item(s), count, Some(5), None, 1).unwrap());
                }
            }
            let share = shares[(rng.next_u32() % 4) as usize];
            let policy = ConsentPolicy::new(vec![PolicyRule {
                subject: Subject::Circle("friends".into()),
                items: ItemPattern::parse("tag:vehicle/*").unwrap(),
                share,
            }]);
            Contact {
                identity,
                endorsements,
                policy,
                fault: faults(&mut rng),
            }
        })
        .collect();
    let by_id: BTreeMap<NodeId, &Contact> =
        contacts.iter().map(|c| (c.identity.node_id(), c)).collect();

    let mut round = AskRound::new(
        asker.node_id(),
        QueryId([9; 16]),
        asked.clone(),
        by_id.keys().copied(),
        start,
        timeout,
    );
    // Deliver each transmit according to the fault schedule, in virtual time order.
    let mut arrivals: Vec<(Instant, NodeId, Vec<u8>)> = Vec::new();
    let mut expected_named = 0usize;
    let mut expected_answered = 0u32;
    while let Some(t) = round.poll_transmit() {
        let c = by_id[&t.to];
        let Ok(PeerRequest::Ask(q)) = decode_message::<PeerRequest>(&t.payload) else {
            panic!("bad request")
        };
        let (answer, disclosure) = answer_query(
            &c.identity,
            &c.endorsements,
            &c.policy,
            &asker.node_id(),
            "friends",
            &q,
            100,
        );
        // The same bytes whatever the reason for naming nothing.
        if disclosure.named.is_empty() {
            let empty = Answer {
                query_id: q.query_id,
                named: vec![],
            };
            assert_eq!(
                encode_message(&PeerResponse::Answer(answer.clone())),
                encode_message(&PeerResponse::Answer(empty))
            );
        }
        let honest = encode_message(&PeerResponse::Answer(answer.clone()));
        let rtt = Duration::from_millis(10);
        match c.fault {
            Fault::None | Fault::Duplicate => {
                arrivals.push((start + rtt, t.to, honest.clone()));
                if c.fault == Fault::Duplicate {
                    arrivals.push((start + rtt * 2, t.to, honest));
                }
                expected_named += disclosure.named.len();
                expected_answered += 1;
            }
            Fault::Delay(d) => {
                arrivals.push((start + d, t.to, honest));
                if d < timeout {
                    expected_named += disclosure.named.len();
                    expected_answered += 1;
                }
            }
            Fault::Silent => {}
            Fault::Unreachable => {
                round.handle_failure(t.to, ContactFailure::Unreachable("sim".into()))
            }
            Fault::Corrupt => {
                let mut bad = honest;
                let i = (rng.next_u32() as usize) % bad.len();
                bad[i] ^= 0x40;
                // A flip may land in a signature, a length or the query id: it must never be
                // accepted as a different valid answer with endorsements.
                arrivals.push((start + rtt, t.to, bad));
            }
            Fault::WrongAudience => {
                let other = Identity::generate(&mut rng).node_id();
                let (lie, d) = answer_query(
                    &c.identity,
                    &c.endorsements,
                    &c.policy,
                    &other,
                    "friends",
                    &q,
                    100,
                );
                arrivals.push((
                    start + rtt,
                    t.to,
                    encode_message(&PeerResponse::Answer(lie)),
                ));
                if d.named.is_empty() {
                    expected_answered += 1; // an empty lie is indistinguishable from the truth
                }
            }
        }
    }
    arrivals.sort_by_key(|a| a.0);
    for (at, from, bytes) in arrivals {
        if let Some(deadline) = round.poll_timeout() {
            if at >= deadline {
                round.handle_timeout(deadline);
            }
        }
        round.handle_response(from, &bytes, at);
    }
    if let Some(deadline) = round.poll_timeout() {
        round.handle_timeout(deadline);
    }
    assert!(round.is_done(), "seed {seed}");
    let out = round.into_outcome();
    assert_eq!(out.asked as usize, n);
    assert_eq!(
        out.answered as usize + out.failures.len(),
        n,
        "seed {seed}: every contact settled once"
    );
    // Corrupted answers may still decode (a flip inside a name's note, say, breaks the
    // signature; a flip in padding-free postcard rarely survives), so count them apart.
    let corrupt = contacts
        .iter()
        .filter(|c| c.fault == Fault::Corrupt)
        .count() as u32;
    assert!(
        out.answered >= expected_answered && out.answered <= expected_answered + corrupt,
        "seed {seed}"
    );
    for named in &out.named {
        assert_eq!(named.statement.audience, asker.node_id());
        assert!(named.statement.endorsement.item.is_within(&asked));
        let c = by_id[&named.from];
        assert_eq!(
            c.policy.evaluate(
                &asker.node_id(),
                "friends",
                &named.statement.endorsement.item
            ),
            Share::Name
        );
        assert!(
            c.endorsements.contains(&named.statement.endorsement),
            "seed {seed}: invented endorsement"
        );
    }
    let honest_named = out
        .named
        .iter()
        .filter(|n| by_id[&n.from].fault != Fault::Corrupt)
        .count();
    assert_eq!(honest_named, expected_named, "seed {seed}");
}

#[test]
fn thousand_seeded_rounds_with_faults() {
    for seed in 0..1000 {
        run(seed);
    }
}
