//! A lying asker against honest responders (spec §9.8): replayed and out-of-order rounds,
//! duplicated members, and split survivor lists. Every attack ends in a clean abort, and no
//! responder ever reveals both the self-mask share and the mask-key share of one member.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{cohort_digest, consistency_message};
use kith_protocol::aggregation::messages::{
    AbortReason, AggRequest, AggResponse, SealedShares, SignedAdvertisement,
};
use kith_protocol::aggregation::responder::{threshold_for, AggResponder, ResponderSettings};
use kith_protocol::{Identity, NodeId, QueryId, SigningLabel};
use rand_core::OsRng;

struct Cohort {
    ctx: Context,
    ids: BTreeMap<NodeId, Identity>,
    sessions: BTreeMap<NodeId, AggResponder>,
    adverts: Vec<SignedAdvertisement>,
    now: Instant,
}

fn setup(n: usize) -> Cohort {
    let asker = Identity::generate(&mut OsRng).node_id();
    let ctx = Context {
        query_id: QueryId([5; 16]),
        asker,
    };
    let now = Instant::now();
    let mut ids = BTreeMap::new();
    let mut sessions = BTreeMap::new();
    for _ in 0..n {
        let id = Identity::generate(&mut OsRng);
        let c = Contribution {
            owns: true,
            units: 1,
            best_rating: Some(4),
        };
        let s = AggResponder::start(
            &id,
            ctx,
            c,
            ResponderSettings {
                epsilon: None,
                min_cohort: 3,
            },
            None,
            &mut OsRng,
            now + Duration::from_secs(60),
        );
        sessions.insert(id.node_id(), s);
        ids.insert(id.node_id(), id);
    }
    let adverts = sessions
        .values()
        .map(|s| s.advertisement().clone())
        .collect();
    Cohort {
        ctx,
        ids,
        sessions,
        adverts,
        now,
    }
}

impl Cohort {
    fn send(&mut self, to: &NodeId, r: AggRequest) -> AggResponse {
        let id = &self.ids[to];
        self.sessions
            .get_mut(to)
            .unwrap()
            .handle(id, r, &mut OsRng, self.now)
    }

    /// Honest rounds 1 and 2 for everyone; returns the threshold.
    fn share_and_mask(&mut self) -> u32 {
        let n = self.ids.len() as u32;
        let t = threshold_for(n, 3);
        let members: Vec<NodeId> = self.ids.keys().copied().collect();
        let mut all: Vec<SealedShares> = Vec::new();
        for m in &members {
            let AggResponse::Shares(s) = self.send(
                m,
                AggRequest::ShareKeys {
                    query_id: self.ctx.query_id,
                    cohort: self.adverts.clone(),
                    threshold: t,
                },
            ) else {
                panic!("shares")
            };
            all.extend(s);
        }
        for m in &members {
            let mine = all.iter().filter(|s| s.to == *m).cloned().collect();
            assert!(matches!(
                self.send(
                    m,
                    AggRequest::MaskInput {
                        query_id: self.ctx.query_id,
                        shares: mine
                    }
                ),
                AggResponse::Masked(_)
            ));
        }
        t
    }
}

#[test]
fn replayed_and_out_of_order_rounds_abort() {
    let mut c = setup(6);
    let first = *c.ids.keys().next().unwrap();
    let qid = c.ctx.query_id;
    // Round 3 before round 1.
    let r = c.send(
        &first,
        AggRequest::Consistency {
            query_id: qid,
            survivors: vec![first],
        },
    );
    assert_eq!(r, AggResponse::Abort(AbortReason::UnexpectedRound));
    // After an abort the session stays dead, even for a correct round-1 message.
    let r = c.send(
        &first,
        AggRequest::ShareKeys {
            query_id: qid,
            cohort: c.adverts.clone(),
            threshold: 5,
        },
    );
    assert_eq!(r, AggResponse::Abort(AbortReason::UnexpectedRound));
    // Replaying round 1 to a responder that already did it.
    let second = *c.ids.keys().nth(1).unwrap();
    let req = AggRequest::ShareKeys {
        query_id: qid,
        cohort: c.adverts.clone(),
        threshold: 5,
    };
    assert!(matches!(
        c.send(&second, req.clone()),
        AggResponse::Shares(_)
    ));
    assert_eq!(
        c.send(&second, req),
        AggResponse::Abort(AbortReason::UnexpectedRound)
    );
    // Another query id.
    let third = *c.ids.keys().nth(2).unwrap();
    let r = c.send(
        &third,
        AggRequest::ShareKeys {
            query_id: QueryId([6; 16]),
            cohort: c.adverts.clone(),
            threshold: 5,
        },
    );
    assert_eq!(r, AggResponse::Abort(AbortReason::UnexpectedRound));
}

#[test]
fn duplicated_members_and_low_thresholds_abort() {
    let mut c = setup(6);
    let qid = c.ctx.query_id;
    let ids: Vec<NodeId> = c.ids.keys().copied().collect();
    let mut dup = c.adverts.clone();
    dup.push(dup[0].clone());
    assert_eq!(
        c.send(
            &ids[0],
            AggRequest::ShareKeys {
                query_id: qid,
                cohort: dup,
                threshold: 4
            }
        ),
        AggResponse::Abort(AbortReason::Inconsistent)
    );
    // A threshold of n/2 or less would let a minority reconstruct.
    assert_eq!(
        c.send(
            &ids[1],
            AggRequest::ShareKeys {
                query_id: qid,
                cohort: c.adverts.clone(),
                threshold: 3
            }
        ),
        AggResponse::Abort(AbortReason::CohortTooSmall)
    );
    // A cohort without the responder's own advertisement (the asker swapped its keys).
    let others: Vec<SignedAdvertisement> = c
        .adverts
        .iter()
        .filter(|a| *a != c.sessions[&ids[2]].advertisement())
        .cloned()
        .collect();
    assert_eq!(
        c.send(
            &ids[2],
            AggRequest::ShareKeys {
                query_id: qid,
                cohort: others,
                threshold: 3
            }
        ),
        AggResponse::Abort(AbortReason::Inconsistent)
    );
}

#[test]
fn split_survivor_lists_reveal_nothing_of_both_kinds() {
    // (n, colluders): colluding members sign every list the asker shows them.
    for (n, colluders) in [(5usize, 0usize), (8, 0), (11, 0), (9, 1), (11, 2), (16, 4)] {
        let mut c = setup(n);
        let qid = c.ctx.query_id;
        let asker = c.ctx.asker;
        let t = c.share_and_mask();
        let members: Vec<NodeId> = c.ids.keys().copied().collect();
        let victim = members[0];
        let (bad, honest) = members[1..].split_at(colluders);
        let with: Vec<NodeId> = members.clone();
        let without: Vec<NodeId> = members[1..].to_vec();
        // The asker tells one half the victim survived, the other half that it dropped.
        let (group_a, group_b) = honest.split_at(honest.len() / 2);
        let sign_as = |c: &Cohort, m: &NodeId, list: &[NodeId]| {
            (
                *m,
                c.ids[m].sign(
                    SigningLabel::SecAggConsistency,
                    &consistency_message(&qid, &asker, &cohort_digest(&c.adverts, t), list),
                ),
            )
        };
        let mut sigs_a: Vec<_> = bad.iter().map(|m| sign_as(&c, m, &with)).collect();
        let mut sigs_b: Vec<_> = bad.iter().map(|m| sign_as(&c, m, &without)).collect();
        for m in group_a.iter().chain([&victim]) {
            if let AggResponse::Consistent(s) = c.send(
                m,
                AggRequest::Consistency {
                    query_id: qid,
                    survivors: with.clone(),
                },
            ) {
                sigs_a.push((*m, s));
            }
        }
        for m in group_b {
            if let AggResponse::Consistent(s) = c.send(
                m,
                AggRequest::Consistency {
                    query_id: qid,
                    survivors: without.clone(),
                },
            ) {
                sigs_b.push((*m, s));
            }
        }
        assert!(
            (sigs_a.len() as u32) < t || (sigs_b.len() as u32) < t,
            "n={n} c={colluders}: both lists cannot reach t={t}"
        );
        let mut revealed_self: BTreeSet<NodeId> = BTreeSet::new();
        let mut revealed_key: BTreeSet<NodeId> = BTreeSet::new();
        let mut padded_a = sigs_a.clone();
        padded_a.extend(sigs_a.iter().cloned());
        let mut mixed = sigs_a.clone();
        mixed.extend(sigs_b.iter().cloned());
        let mut collect = |r: AggResponse| {
            if let AggResponse::Unmasked(u) = r {
                revealed_self.extend(u.self_seed_shares.iter().map(|x| x.0));
                revealed_key.extend(u.mask_seed_shares.iter().map(|x| x.0));
            }
        };
        for m in group_a.iter().chain([&victim]) {
            for attempt in [padded_a.clone(), mixed.clone(), sigs_a.clone()] {
                collect(c.send(
                    m,
                    AggRequest::Unmask {
                        query_id: qid,
                        signatures: attempt,
                    },
                ));
            }
        }
        for m in group_b {
            for attempt in [sigs_b.clone(), mixed.clone()] {
                collect(c.send(
                    m,
                    AggRequest::Unmask {
                        query_id: qid,
                        signatures: attempt,
                    },
                ));
            }
        }
        // Colluders hand over whatever they hold; count it too.
        let honest_overlap: Vec<&NodeId> = revealed_self.intersection(&revealed_key).collect();
        assert!(
            honest_overlap.is_empty(),
            "n={n} c={colluders}: both secrets of {honest_overlap:?} revealed"
        );
        // Shares from honest members plus colluders must stay below t for one of the kinds.
        let self_holders = group_a.len() + 1 + colluders;
        let key_holders = group_b.len() + colluders;
        assert!(
            (self_holders as u32) < t
                || (key_holders as u32) < t
                || revealed_key.is_empty()
                || revealed_self.is_empty()
        );
    }
}

#[test]
fn consistency_signatures_do_not_carry_over_to_another_session() {
    // Session 1: everyone signs the full survivor list.
    let mut first = setup(6);
    let qid = first.ctx.query_id;
    first.share_and_mask();
    let members: Vec<NodeId> = first.ids.keys().copied().collect();
    let mut old_sigs = Vec::new();
    for m in &members {
        if let AggResponse::Consistent(s) = first.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: members.clone(),
            },
        ) {
            old_sigs.push((*m, s));
        }
    }
    assert_eq!(old_sigs.len(), members.len());
    // Session 2: same members, same query id, same asker, fresh keys. The asker replays the
    // old signatures to unlock round 4 without any member signing in this session.
    let mut second = Cohort {
        ctx: first.ctx,
        ids: first
            .ids
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    Identity::from_secret_bytes(&v.to_secret_bytes()).unwrap(),
                )
            })
            .collect(),
        sessions: Default::default(),
        adverts: Vec::new(),
        now: first.now,
    };
    for (k, id) in &second.ids {
        let c = Contribution {
            owns: true,
            units: 1,
            best_rating: None,
        };
        let s = AggResponder::start(
            id,
            second.ctx,
            c,
            ResponderSettings {
                epsilon: None,
                min_cohort: 3,
            },
            None,
            &mut OsRng,
            second.now + Duration::from_secs(60),
        );
        second.sessions.insert(*k, s);
    }
    second.adverts = second
        .sessions
        .values()
        .map(|s| s.advertisement().clone())
        .collect();
    second.share_and_mask();
    for m in &members {
        let _ = second.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: members.clone(),
            },
        );
        let r = second.send(
            m,
            AggRequest::Unmask {
                query_id: qid,
                signatures: old_sigs.clone(),
            },
        );
        assert_eq!(
            r,
            AggResponse::Abort(AbortReason::Inconsistent),
            "old signatures must not verify"
        );
    }
}
