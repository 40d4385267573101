//! A lying asker against honest responders (spec §9.8): replayed and out-of-order rounds,
//! duplicated members, and split survivor lists. Every attack ends in a clean abort, and no
//! responder ever reveals both the self-mask share and the mask-key share of one member.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kith_protocol::aggregation::cohort::{advert_digest, Params, Plan};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::consistency_message;
use kith_protocol::aggregation::messages::{
    AbortReason, Advertisement, AggRequest, AggResponse, NoiseDeclaration, SealedShare,
    SignedAdvertisement, SurvivorSignature,
};
use kith_protocol::aggregation::responder::{AggResponder, AskTerms, ResponderSettings};

/// What a colluder declares: nothing to count on.
const NO_NOISE: NoiseDeclaration = NoiseDeclaration {
    base_divisor: 0,
    threshold: 0,
};
use kith_protocol::{Identity, NodeId, QueryId, SigningLabel};
use rand_core::OsRng;

struct Cohort {
    /// Members who know each other (`setup_with`).
    circle: Vec<NodeId>,
    ctx: Context,
    ids: BTreeMap<NodeId, Identity>,
    sessions: BTreeMap<NodeId, AggResponder>,
    plan: Plan,
    now: Instant,
}

fn plan_of(sessions: &BTreeMap<NodeId, AggResponder>) -> Plan {
    plan_at(sessions, None)
}

fn plan_at(sessions: &BTreeMap<NodeId, AggResponder>, epsilon: Option<u32>) -> Plan {
    let members = sessions
        .iter()
        .map(|(k, s)| (*k, s.advertisement().clone()))
        .collect();
    Plan::new(members, Params::choose(sessions.len(), 3, epsilon)).unwrap()
}

fn setup(n: usize) -> Cohort {
    setup_with(n, 0, None)
}

/// `n` members of which the first `circle` (by generation order) know each other; noise at
/// `epsilon` (thousandths) if any, minimum cohort 2.
fn setup_with(n: usize, circle: usize, epsilon: Option<u32>) -> Cohort {
    let asker = Identity::generate(&mut OsRng).node_id();
    let ctx = Context {
        query_id: QueryId([5; 16]),
        asker,
    };
    let now = Instant::now();
    let mut ids = BTreeMap::new();
    let mut sessions = BTreeMap::new();
    let all: Vec<Identity> = (0..n).map(|_| Identity::generate(&mut OsRng)).collect();
    let friends: BTreeSet<NodeId> = all[..circle].iter().map(|i| i.node_id()).collect();
    for (i, id) in all.into_iter().enumerate() {
        let c = Contribution {
            owns: true,
            units: 1,
            best_rating: Some(4),
        };
        let mut contacts = if i < circle {
            friends.clone()
        } else {
            BTreeSet::new()
        };
        contacts.remove(&id.node_id());
        let s = AggResponder::start(
            &id,
            ctx,
            c,
            ResponderSettings {
                epsilon,
                min_cohort: if circle > 0 { 2 } else { 3 },
            },
            AskTerms::default(),
            contacts,
            &mut OsRng,
            now + Duration::from_secs(60),
        );
        sessions.insert(id.node_id(), s);
        ids.insert(id.node_id(), id);
    }
    Cohort {
        circle: friends.into_iter().collect(),
        ctx,
        ids,
        plan: plan_at(&sessions, epsilon),
        sessions,
        now,
    }
}

impl Cohort {
    /// The session key that names member `m` in the session (spec §9.7.1).
    fn key(&self, m: &NodeId) -> NodeId {
        self.sessions[m]
            .advertisement()
            .verify(&self.ctx.query_id, &self.ctx.asker)
            .unwrap()
            .member
    }

    /// What signs for member `m`: a test playing a colluder uses it (spec §11.13).
    fn signer(&self, m: &NodeId) -> &Identity {
        self.sessions[m].dangerous_session_identity()
    }

    fn send(&mut self, to: &NodeId, r: AggRequest) -> AggResponse {
        self.sessions
            .get_mut(to)
            .unwrap()
            .handle(r, &mut OsRng, self.now)
    }

    fn share_keys(&self, to: &NodeId) -> AggRequest {
        let p = self.plan.position(to).unwrap();
        self.plan.share_keys(self.ctx.query_id, p)
    }

    fn bits(&self, list: &[NodeId]) -> Vec<u8> {
        self.plan.survivor_bits(list)
    }

    /// Honest round 1 for everyone; the round-2 shares each member is to be sent.
    fn share(&mut self) -> BTreeMap<NodeId, Vec<SealedShare>> {
        let members: Vec<NodeId> = self.ids.keys().copied().collect();
        let mut replies = BTreeMap::new();
        for m in &members {
            let AggResponse::Shares { pairs: s, .. } = self.send(m, self.share_keys(m)) else {
                panic!("shares")
            };
            replies.insert(*m, s);
        }
        self.plan.relay_shares(&replies)
    }

    /// Honest rounds 1 and 2 for everyone; returns the threshold.
    fn share_and_mask(&mut self) -> u32 {
        let t = self.plan.params.threshold;
        let members: Vec<NodeId> = self.ids.keys().copied().collect();
        let mut relayed = self.share();
        for m in &members {
            let mine = relayed.remove(m).unwrap();
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
            survivors: c.bits(&[first]),
        },
    );
    assert_eq!(r, AggResponse::Abort(AbortReason::UnexpectedRound));
    // After an abort the session stays dead, even for a correct round-1 message.
    let r = c.send(&first, c.share_keys(&first));
    assert_eq!(r, AggResponse::Abort(AbortReason::UnexpectedRound));
    // Replaying round 1 to a responder that already did it.
    let second = *c.ids.keys().nth(1).unwrap();
    let req = c.share_keys(&second);
    assert!(matches!(
        c.send(&second, req.clone()),
        AggResponse::Shares { .. }
    ));
    assert_eq!(
        c.send(&second, req),
        AggResponse::Abort(AbortReason::UnexpectedRound)
    );
    // Another query id.
    let third = *c.ids.keys().nth(2).unwrap();
    let AggRequest::ShareKeys {
        roster,
        params,
        neighbours,
        ..
    } = c.share_keys(&third)
    else {
        unreachable!()
    };
    let r = c.send(
        &third,
        AggRequest::ShareKeys {
            query_id: QueryId([6; 16]),
            roster,
            params,
            neighbours,
        },
    );
    assert_eq!(r, AggResponse::Abort(AbortReason::UnexpectedRound));
}

type Edit = fn(&Cohort, &mut Vec<[u8; 32]>, &mut Params, &mut Vec<SignedAdvertisement>);

#[test]
fn forged_rosters_and_low_parameters_abort() {
    let cases: [(&str, Edit, AbortReason); 9] = [
        (
            "a member listed twice",
            |_, r, _, _| r.insert(1, r[1]),
            AbortReason::Inconsistent,
        ),
        (
            "roster out of order",
            |_, r, _, _| r.swap(0, 5),
            AbortReason::Inconsistent,
        ),
        (
            // The asker swapped the responder's keys out of the cohort.
            "own advertisement missing",
            |c, r, _, _| {
                let mine = advert_digest(c.sessions.values().next().unwrap().advertisement());
                r.retain(|d| *d != mine);
            },
            AbortReason::Inconsistent,
        ),
        (
            "a neighbour's advertisement replaced by another member's",
            |_, _, _, n| n[1] = n[0].clone(),
            AbortReason::Inconsistent,
        ),
        (
            "a neighbour left out",
            |_, _, _, n| {
                n.pop();
            },
            AbortReason::Inconsistent,
        ),
        (
            // A threshold of n/2 or less would let a minority reconstruct.
            "threshold 3 of 6",
            |_, _, p, _| p.threshold = 3,
            AbortReason::CohortTooSmall,
        ),
        (
            "threshold above the holders",
            |_, _, p, _| p.threshold = 7,
            AbortReason::CohortTooSmall,
        ),
        (
            "survivor floor 3 of 6",
            |_, _, p, _| p.min_survivors = 3,
            AbortReason::CohortTooSmall,
        ),
        (
            "ε out of range",
            |_, _, p, _| p.epsilon = Some(0),
            AbortReason::Inconsistent,
        ),
    ];
    for (what, edit, reason) in cases {
        let mut c = setup(6);
        let to = *c.ids.keys().next().unwrap();
        let AggRequest::ShareKeys {
            query_id,
            mut roster,
            mut params,
            mut neighbours,
        } = c.share_keys(&to)
        else {
            unreachable!()
        };
        edit(&c, &mut roster, &mut params, &mut neighbours);
        let request = AggRequest::ShareKeys {
            query_id,
            roster,
            params,
            neighbours,
        };
        assert_eq!(c.send(&to, request), AggResponse::Abort(reason), "{what}");
    }
}

#[test]
fn a_weaker_epsilon_than_a_member_requires_aborts() {
    let mut c = setup(6);
    let to = *c.ids.keys().next().unwrap();
    // Rebuild one responder with ε = 0.5 required; the asker claims 1.0 for the session.
    let strict = AggResponder::start(
        &c.ids[&to],
        c.ctx,
        Contribution::default(),
        ResponderSettings {
            epsilon: Some(500),
            min_cohort: 3,
        },
        AskTerms::default(),
        BTreeSet::new(),
        &mut OsRng,
        c.now + Duration::from_secs(60),
    );
    c.sessions.insert(to, strict);
    let members = c
        .sessions
        .iter()
        .map(|(k, s)| (*k, s.advertisement().clone()))
        .collect();
    c.plan = Plan::new(members, Params::choose(6, 3, Some(1000))).unwrap();
    assert_eq!(
        c.send(&to, c.share_keys(&to)),
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
        let sign_as = |c: &Cohort, m: &NodeId, list: &[NodeId]| SurvivorSignature {
            member: c.key(m),
            noise: NO_NOISE,
            signature: c.signer(m).sign(
                SigningLabel::SecAggConsistency,
                &consistency_message(&qid, &asker, &c.plan.digest(), &c.bits(list), &NO_NOISE),
            ),
        };
        let mut sigs_a: Vec<_> = bad.iter().map(|m| sign_as(&c, m, &with)).collect();
        let mut sigs_b: Vec<_> = bad.iter().map(|m| sign_as(&c, m, &without)).collect();
        for m in group_a.iter().chain([&victim]) {
            if let AggResponse::Consistent { noise, signature } = c.send(
                m,
                AggRequest::Consistency {
                    query_id: qid,
                    survivors: c.bits(&with),
                },
            ) {
                sigs_a.push(SurvivorSignature {
                    member: c.key(m),
                    noise,
                    signature,
                });
            }
        }
        for m in group_b {
            if let AggResponse::Consistent { noise, signature } = c.send(
                m,
                AggRequest::Consistency {
                    query_id: qid,
                    survivors: c.bits(&without),
                },
            ) {
                sigs_b.push(SurvivorSignature {
                    member: c.key(m),
                    noise,
                    signature,
                });
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
        if let AggResponse::Consistent { noise, signature } = first.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: first.bits(&members),
            },
        ) {
            old_sigs.push(SurvivorSignature {
                member: first.key(m),
                noise,
                signature,
            });
        }
    }
    assert_eq!(old_sigs.len(), members.len());
    // Session 2: same members, same query id, same asker, fresh keys. The asker replays the
    // old signatures to unlock round 4 without any member signing in this session.
    let mut second = Cohort {
        circle: Vec::new(),
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
        plan: first.plan.clone(),
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
            AskTerms::default(),
            BTreeSet::new(),
            &mut OsRng,
            second.now + Duration::from_secs(60),
        );
        second.sessions.insert(*k, s);
    }
    second.plan = plan_of(&second.sessions);
    second.share_and_mask();
    for m in &members {
        let _ = second.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: second.bits(&members),
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

/// The same split-list attack in a sparse graph (spec §9.8.1): every member outside the
/// victim's neighbourhood colludes (signs both lists), as do `c` of the victim's
/// neighbours; the victim's honest neighbours are split between the lists. The asker gets
/// `t` shares of both kinds of the victim's secrets exactly when `c ≥ 2t − h`, so the test
/// can fail either way. (A sharper attack that also shrinks the victim's own view of U2
/// needs one colluder fewer, `2t − h − 1`; the degree table is computed for that, §11.16.)
#[test]
fn split_survivor_lists_in_a_sparse_graph_stay_below_the_threshold() {
    let n = 60usize;
    let degree = kith_protocol::aggregation::cohort::sparse_degree(n).unwrap();
    let h = degree as u32 + 1;
    for colluders in [0usize, 4, 8, 10] {
        let mut c = setup(n);
        let members: Vec<(NodeId, _)> = c.plan.members.clone();
        c.plan = Plan::new(members, Params::with_degree(n, degree, 3, None)).unwrap();
        let t = c.share_and_mask();
        let (qid, asker) = (c.ctx.query_id, c.ctx.asker);
        let victim = c.plan.members[0].0;
        let victim_key = c.key(&victim);
        let neighbours = c.plan.neighbours(0);
        let (bad_neighbours, honest) = neighbours.split_at(colluders);
        let (group_a, group_b) = honest.split_at(honest.len() / 2);
        let everyone: Vec<NodeId> = c.plan.members.iter().map(|m| m.0).collect();
        let bad: Vec<NodeId> = everyone
            .iter()
            .filter(|v| **v != victim && (!neighbours.contains(v) || bad_neighbours.contains(v)))
            .copied()
            .collect();
        let with = c.bits(&everyone);
        let without = c
            .plan
            .survivor_bits(everyone.iter().filter(|v| **v != victim));
        let shown_with: Vec<NodeId> = group_a.iter().chain([&victim]).copied().collect();
        let shown_without: Vec<NodeId> = group_b.to_vec();
        let digest = c.plan.digest();
        let forge = |m: &NodeId, bits: &[u8]| {
            let message = consistency_message(&qid, &asker, &digest, bits, &NO_NOISE);
            (
                NO_NOISE,
                c.signer(m).sign(SigningLabel::SecAggConsistency, &message),
            )
        };
        let mut sigs_with: BTreeMap<NodeId, _> =
            bad.iter().map(|m| (*m, forge(m, &with))).collect();
        let mut sigs_without: BTreeMap<NodeId, _> =
            bad.iter().map(|m| (*m, forge(m, &without))).collect();
        for (group, bits, sigs) in [
            (&shown_with, &with, &mut sigs_with),
            (&shown_without, &without, &mut sigs_without),
        ] {
            for m in group {
                let request = AggRequest::Consistency {
                    query_id: qid,
                    survivors: bits.clone(),
                };
                if let AggResponse::Consistent { noise, signature } = c.send(m, request) {
                    sigs.insert(*m, (noise, signature));
                }
            }
        }
        // Each honest member gets the signatures of its own neighbourhood for its list.
        let (mut self_shares, mut key_shares) = (0u32, 0u32);
        for (group, sigs) in [(&shown_with, &sigs_with), (&shown_without, &sigs_without)] {
            for m in group {
                let mut local = c.plan.neighbours(c.plan.position(m).unwrap());
                local.push(*m);
                let signatures = local
                    .iter()
                    .filter_map(|v| {
                        let (noise, signature) = *sigs.get(v)?;
                        Some(SurvivorSignature {
                            member: c.key(v),
                            noise,
                            signature,
                        })
                    })
                    .collect();
                let request = AggRequest::Unmask {
                    query_id: qid,
                    signatures,
                };
                if let AggResponse::Unmasked(u) = c.send(m, request) {
                    self_shares += u.self_seed_shares.iter().any(|x| x.0 == victim_key) as u32;
                    key_shares += u.mask_seed_shares.iter().any(|x| x.0 == victim_key) as u32;
                }
            }
        }
        // Colluding neighbours hand over shares of both kinds.
        let c_u = colluders as u32;
        let both = self_shares + c_u >= t && key_shares + c_u >= t;
        assert_eq!(
            both,
            c_u >= 2 * t - h,
            "c={colluders}: {self_shares} self-mask and {key_shares} mask-key shares, t={t}, h={h}"
        );
    }
}

/// A lie about who sent a share in round 2, given the victim's own roster position and
/// the shares relayed to another member.
type Misattribution = fn(&mut [SealedShare], u32, &[SealedShare]);

/// Round 2 names a share's sender only by roster position (spec §9.7.2), but the AEAD binds
/// both node ids: a share relayed under another position, to another recipient, twice, or
/// under a position that is not a neighbour's never opens, and the member aborts without
/// taking part further.
#[test]
fn misattributed_shares_abort() {
    let lies: [(&str, Misattribution); 6] = [
        ("two senders swapped", |l, _, _| {
            let (a, b) = (l[0].from, l[1].from);
            (l[0].from, l[1].from) = (b, a);
        }),
        ("its own position", |l, me, _| l[0].from = me),
        ("a position beyond the roster", |l, _, _| {
            l[0].from = u32::MAX
        }),
        ("one sender twice", |l, _, _| l[1].from = l[0].from),
        ("one ciphertext under two senders", |l, _, _| {
            l[1].ciphertext = l[0].ciphertext.clone()
        }),
        ("a share sealed for another member", |l, me, other| {
            let foreign = other.iter().find(|s| s.from != me).expect("another sender");
            let slot = l
                .iter_mut()
                .find(|s| s.from == foreign.from)
                .expect("same sender");
            *slot = foreign.clone();
        }),
    ];
    for (what, lie) in lies {
        let mut c = setup(6);
        let members: Vec<NodeId> = c.ids.keys().copied().collect();
        let mut relayed = c.share();
        let (victim, other) = (members[0], members[1]);
        let others = relayed[&other].clone();
        let mut mine = relayed.remove(&victim).unwrap();
        assert_eq!(mine.len(), 5, "dense: every other member");
        lie(&mut mine, c.plan.position(&victim).unwrap(), &others);
        let qid = c.ctx.query_id;
        let r = c.send(
            &victim,
            AggRequest::MaskInput {
                query_id: qid,
                shares: mine,
            },
        );
        assert_eq!(r, AggResponse::Abort(AbortReason::Inconsistent), "{what}");
        let r = c.send(
            &victim,
            AggRequest::Consistency {
                query_id: qid,
                survivors: c.bits(&members),
            },
        );
        assert_eq!(
            r,
            AggResponse::Abort(AbortReason::UnexpectedRound),
            "{what}"
        );
    }
}

/// The split-bitmap attack on counting (spec §9.6.2 rule 5): in a complete graph of 20, a
/// victim and 9 contacts who know each other raise their own thresholds to 16; the other
/// 10 members are the asker's. The asker shows the victim, 3 of its contacts and its own
/// members the full bitmap (14 signers: the session's `t`), and the other 6 contacts a
/// bitmap without those 3, so that their mask-key seeds could be rebuilt. The victim sees
/// the 3 contacts' signatures over its own bitmap, but only 14 of its holders signed it,
/// fewer than its own threshold: it counts nobody and keeps its whole draw.
#[test]
fn a_bitmap_signed_by_fewer_than_the_own_threshold_counts_nobody() {
    let mut c = setup_with(20, 10, Some(1000));
    let qid = c.ctx.query_id;
    c.share_and_mask();
    let all: Vec<NodeId> = c.plan.members.iter().map(|m| m.0).collect();
    let (victim, a, b, sybils) = split_roles(&c, 10);
    let full = c.bits(&all);
    let without_a: Vec<NodeId> = all.iter().filter(|m| !a.contains(m)).copied().collect();
    let partial = c.bits(&without_a);
    let mut on_full = Vec::new();
    for m in [victim].iter().chain(&a).chain(&sybils) {
        let r = c.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: full.clone(),
            },
        );
        let AggResponse::Consistent { noise, signature } = r else {
            panic!("{r:?}")
        };
        on_full.push(SurvivorSignature {
            member: c.key(m),
            noise,
            signature,
        });
    }
    for m in &b {
        let _ = c.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: partial.clone(),
            },
        );
    }
    assert_eq!(on_full.len(), 14);
    on_full.sort_by_key(|s| s.member);
    let r = c.send(
        &victim,
        AggRequest::Unmask {
            query_id: qid,
            signatures: on_full,
        },
    );
    let AggResponse::Unmasked(u) = r else {
        panic!("{r:?}")
    };
    assert_eq!(u.noise.kept, 1_000_000, "it counted nobody");
    assert_eq!(u.noise.removed, vec![0; 7]);
}

/// The victim, 3 and 6 of its contacts, and the 10 strangers, for the split attack.
fn split_roles(c: &Cohort, circle: usize) -> (NodeId, Vec<NodeId>, Vec<NodeId>, Vec<NodeId>) {
    let members: Vec<NodeId> = c.circle.clone();
    assert_eq!(members.len(), circle);
    let victim = members[0];
    let a = members[1..4].to_vec();
    let b = members[4..].to_vec();
    let sybils = c
        .ids
        .keys()
        .filter(|k| !members.contains(k))
        .copied()
        .collect();
    (victim, a, b, sybils)
}

/// The asker lists itself as a member of its own cohort (spec §9.8.3): it is every
/// member's contact, so a member would vouch for its noise declaration and count noise the
/// asker never added. Members refuse a roster that holds the asker.
#[test]
fn an_asker_in_its_own_cohort_is_refused() {
    let asker = Identity::generate(&mut OsRng);
    let ctx = Context {
        query_id: QueryId([8; 16]),
        asker: asker.node_id(),
    };
    let now = Instant::now();
    let start = |id: &Identity, contacts: BTreeSet<NodeId>| {
        AggResponder::start(
            id,
            ctx,
            Contribution::default(),
            ResponderSettings {
                epsilon: Some(1000),
                min_cohort: 2,
            },
            AskTerms::default(),
            contacts,
            &mut OsRng,
            now + Duration::from_secs(60),
        )
    };
    let victim = Identity::generate(&mut OsRng);
    let other = Identity::generate(&mut OsRng);
    let mut sessions = BTreeMap::from([
        (victim.node_id(), start(&victim, [asker.node_id()].into())),
        (asker.node_id(), start(&asker, BTreeSet::new())),
        (other.node_id(), start(&other, BTreeSet::new())),
    ]);
    let plan = plan_at(&sessions, Some(1000));
    let to = plan.position(&victim.node_id()).unwrap();
    let reply = sessions.get_mut(&victim.node_id()).unwrap().handle(
        plan.share_keys(ctx.query_id, to),
        &mut OsRng,
        now,
    );
    assert_eq!(reply, AggResponse::Abort(AbortReason::Inconsistent));
}

/// Per-region parameters (spec §9.6.2 rule 2, §11.13): the asker gives the victim one
/// parameter set (ε = 0.5) and its five contacts another (ε = 1), over the same roster, so
/// that the contacts add noise at another α. Their consistency signatures cover the other
/// cohort digest, so the victim can neither count them nor find `t` signatures over its
/// own: it never reveals a share, nor its noise.
#[test]
fn per_region_parameters_are_never_counted() {
    for own_region_only in [false, true] {
        let r = per_region_round_4(own_region_only);
        assert_eq!(
            r,
            AggResponse::Abort(AbortReason::Inconsistent),
            "own region only: {own_region_only}"
        );
    }
}

/// The victim's round-4 reply in the per-region attack, shown every member's consistency
/// signature or only those of its own region.
fn per_region_round_4(own_region_only: bool) -> AggResponse {
    let mut c = setup_with(8, 6, Some(1000));
    let qid = c.ctx.query_id;
    let members: Vec<(NodeId, SignedAdvertisement)> = c.plan.members.clone();
    let strict = Plan::new(members.clone(), Params::choose(8, 3, Some(500))).unwrap();
    let loose = Plan::new(members, Params::choose(8, 3, Some(1000))).unwrap();
    assert_ne!(strict.digest(), loose.digest());
    let victim = c.circle[0];
    let contacts: Vec<NodeId> = c.circle[1..].to_vec();
    let everyone: Vec<NodeId> = c.ids.keys().copied().collect();
    // Round 1 from the plan of each member's region; the graph is the same.
    let mut replies = BTreeMap::new();
    for m in &everyone {
        let plan = if contacts.contains(m) {
            &loose
        } else {
            &strict
        };
        let request = plan.share_keys(qid, plan.position(m).unwrap());
        let AggResponse::Shares { pairs, .. } = c.send(m, request) else {
            panic!("shares")
        };
        replies.insert(*m, pairs);
    }
    let mut relayed = strict.relay_shares(&replies);
    for m in &everyone {
        let shares = relayed.remove(m).unwrap();
        let r = c.send(
            m,
            AggRequest::MaskInput {
                query_id: qid,
                shares,
            },
        );
        assert!(matches!(r, AggResponse::Masked(_)), "{r:?}");
    }
    let bits = c.bits(&everyone);
    let mut signatures = Vec::new();
    for m in &everyone {
        let r = c.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: bits.clone(),
            },
        );
        let AggResponse::Consistent { noise, signature } = r else {
            panic!("{r:?}")
        };
        if !(own_region_only && contacts.contains(m)) {
            signatures.push(SurvivorSignature {
                member: c.key(m),
                noise,
                signature,
            });
        }
    }
    signatures.sort_by_key(|s| s.member);
    c.send(
        &victim,
        AggRequest::Unmask {
            query_id: qid,
            signatures,
        },
    )
}

/// What a member learns of the asker's other contacts (spec §9.7.1, §11.13): in a complete
/// graph every advertisement reaches every member, yet no member's node id travels in any
/// request to another member — each is named by a fresh session key — and a member still
/// recognises exactly its own contacts (it counts them in its noise declaration).
#[test]
fn members_see_session_keys_not_node_ids_and_recognise_their_contacts() {
    let n = 7;
    let mut c = setup_with(n, n, Some(1000));
    let qid = c.ctx.query_id;
    let members: Vec<NodeId> = c.ids.keys().copied().collect();
    for m in &members {
        let bytes = kith_protocol::wire::encode_value(&c.share_keys(m));
        for other in &members {
            let id = other.as_bytes();
            assert!(
                !bytes.windows(32).any(|w| w == id),
                "a node id reached another member in round 1"
            );
        }
    }
    c.share_and_mask();
    for m in &members {
        let r = c.send(
            m,
            AggRequest::Consistency {
                query_id: qid,
                survivors: c.bits(&members),
            },
        );
        let AggResponse::Consistent { noise, .. } = r else {
            panic!("{r:?}")
        };
        // Itself and its n − 1 neighbours, all recognised as contacts.
        assert_eq!(noise.base_divisor, n as u32);
    }
}

/// A Sybil that copies a contact's tag and identity proof onto its own session key is not
/// vouched for, and tells the asker nothing: the member answers exactly as it does to a
/// Sybil with a tag of nobody it knows. (Aborting on the forgery would let the asker test
/// whether any node id it likes is the member's contact; spec §9.8.3.)
#[test]
fn a_sybil_wearing_a_contacts_tag_is_a_stranger_and_learns_nothing() {
    let wearing = round_1_with_a_sybil(true);
    let plain = round_1_with_a_sybil(false);
    let (AggResponse::Shares { threshold: a, .. }, AggResponse::Shares { threshold: b, .. }) =
        (&wearing, &plain)
    else {
        panic!("{wearing:?} / {plain:?}")
    };
    assert_eq!(a, b);
    // And they are not counted: with two contacts fewer and two strangers, the member's
    // own threshold is above the one it uses among seven who all know each other.
    let c = setup_with(7, 7, Some(1000));
    let mut c = c;
    let victim = *c.ids.keys().next().unwrap();
    let AggResponse::Shares { threshold, .. } = c.send(&victim, c.share_keys(&victim)) else {
        panic!("shares")
    };
    assert_ne!(threshold, *a, "the forged contact was vouched for");
}

/// Round 1 of a seven-member circle in which two of the victim's friends are replaced by
/// Sybils that wear their tags and proofs (`wears`) or tags of nobody.
fn round_1_with_a_sybil(wears: bool) -> AggResponse {
    let c = setup_with(7, 7, Some(1000));
    let members: Vec<NodeId> = c.ids.keys().copied().collect();
    let victim = members[0];
    let (qid, asker) = (c.ctx.query_id, c.ctx.asker);
    let mut entries: Vec<(NodeId, SignedAdvertisement)> = c
        .sessions
        .iter()
        .map(|(k, s)| (*k, s.advertisement().clone()))
        .collect();
    for e in entries.iter_mut().filter(|e| members[1..3].contains(&e.0)) {
        let genuine = e.1.verify(&qid, &asker).unwrap();
        let sybil = Identity::generate(&mut OsRng);
        e.1 = Advertisement {
            member: sybil.node_id(),
            contact_tag: if wears { genuine.contact_tag } else { [7; 32] },
            ..genuine
        }
        .sign(&sybil, &qid, &asker);
    }
    let plan = Plan::new(entries, Params::choose(7, 3, Some(1000))).unwrap();
    let to = plan.position(&victim).unwrap();
    let mut sessions = c.sessions;
    sessions.get_mut(&victim).unwrap().handle(
        plan.share_keys(c.ctx.query_id, to),
        &mut OsRng,
        c.now,
    )
}
