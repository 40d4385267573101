//! The asker's side of an aggregation (spec §9.8), as a sans-IO state machine in the
//! style of [`crate::AskRound`]: the driver sends what [`AggAsker::poll_transmit`] yields,
//! feeds back replies, failures and timeouts, and reads [`AggAsker::outcome`] at the end.
//!
//! ```text
//!  Advertise ─▶ Share ─▶ Mask ─▶ Consistency ─▶ Unmask ─▶ Done
//!      U1         U2       U3          U4          U5
//! ```
//! A phase ends when every member it waits for has replied, failed, or its deadline
//! passed. Whenever fewer than `t` members remain, the aggregate is withheld.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use curve25519_dalek::Scalar;

use super::input::{AggregateSum, VECTOR_LEN};
use super::keys::Context;
use super::messages::{
    cohort_digest, consistency_message, AbortReason, AggRequest, AggResponse, MilliEpsilon,
    SealedShares, SignedAdvertisement, Unmasking,
};
use super::responder::{
    check_cohort, cohort_threshold, mask_sign_positive, Cohort, EPSILON_RANGE, MAX_COHORT,
};
use super::{prg, shamir};
use crate::ask::{verify_answer, ContactFailure, Named, Transmit};
use crate::identity::{NodeId, Signature, SigningLabel};
use crate::item::ItemKey;
use crate::message::{PeerRequest, PeerResponse, Query, QueryId};
use crate::wire::{decode_message, encode_message};

/// What the asker asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregationParams {
    /// The asker's requested ε (None: no requirement of its own).
    pub epsilon: Option<MilliEpsilon>,
    /// The asker's own minimum cohort.
    pub min_cohort: u32,
    /// How long each round may wait for replies.
    pub round_timeout: Duration,
}

/// Why no aggregate was released (spec §9.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// Fewer members took part than the threshold the cohort requires.
    CohortTooSmall { cohort: u32, needed: u32 },
    /// Too many members dropped out in a round.
    TooFewSurvivors { round: u8, have: u32, needed: u32 },
    /// Shares did not reconstruct consistently (a responder sent bad shares).
    Inconsistent(&'static str),
}

impl core::fmt::Display for Withheld {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Withheld::CohortTooSmall { cohort, needed } => {
                write!(f, "cohort of {cohort} is below the minimum of {needed}")
            }
            Withheld::TooFewSurvivors {
                round,
                have,
                needed,
            } => {
                write!(
                    f,
                    "only {have} of the needed {needed} responders completed round {round}"
                )
            }
            Withheld::Inconsistent(why) => write!(f, "aggregation failed: {why}"),
        }
    }
}

/// Why a member stopped counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberFailure {
    Contact(ContactFailure),
    Aborted(AbortReason),
}

/// Everything the asker learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggOutcome {
    pub asked: u32,
    pub answered: u32,
    pub named: Vec<Named>,
    /// |U1|: members whose keys arrived.
    pub cohort: u32,
    /// |U3|: members whose masked input is in the sum.
    pub survivors: u32,
    pub threshold: u32,
    pub epsilon: Option<MilliEpsilon>,
    pub aggregate: Result<AggregateSum, Withheld>,
    pub failures: Vec<(NodeId, u8, MemberFailure)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Advertise = 0,
    Share = 1,
    Mask = 2,
    Consistency = 3,
    Unmask = 4,
    Done = 5,
}

/// One aggregation, from the asker's side.
#[derive(Debug)]
pub struct AggAsker {
    ctx: Context,
    query: Query,
    params: AggregationParams,
    asked: u32,
    phase: Phase,
    deadline: Instant,
    waiting: BTreeSet<NodeId>,
    transmits: VecDeque<Transmit>,
    answered: u32,
    named: Vec<Named>,
    failures: Vec<(NodeId, u8, MemberFailure)>,
    adverts: BTreeMap<NodeId, SignedAdvertisement>,
    cohort: Option<Cohort>,
    epsilon: Option<MilliEpsilon>,
    shares: BTreeMap<NodeId, Vec<SealedShares>>,
    masked: BTreeMap<NodeId, Vec<u32>>,
    survivors: Vec<NodeId>,
    signatures: BTreeMap<NodeId, Signature>,
    unmaskings: BTreeMap<NodeId, Unmasking>,
    aggregate: Option<Result<AggregateSum, Withheld>>,
}

fn request(r: AggRequest) -> Vec<u8> {
    encode_message(&PeerRequest::Aggregate(r))
}

impl AggAsker {
    /// Ask `contacts` about `item` and aggregate their answers.
    pub fn new(
        me: NodeId,
        query_id: QueryId,
        item: ItemKey,
        contacts: impl IntoIterator<Item = NodeId>,
        params: AggregationParams,
        now: Instant,
    ) -> Self {
        let ctx = Context {
            query_id,
            asker: me,
        };
        let payload = request(AggRequest::Advertise {
            query_id,
            item: item.clone(),
            epsilon: params.epsilon,
        });
        let waiting: BTreeSet<NodeId> = contacts.into_iter().filter(|c| *c != me).collect();
        let transmits = waiting
            .iter()
            .map(|c| Transmit {
                to: *c,
                payload: payload.clone(),
            })
            .collect();
        AggAsker {
            ctx,
            query: Query { query_id, item },
            params,
            asked: waiting.len() as u32,
            phase: Phase::Advertise,
            deadline: now + params.round_timeout,
            waiting,
            transmits,
            answered: 0,
            named: Vec::new(),
            failures: Vec::new(),
            adverts: BTreeMap::new(),
            cohort: None,
            epsilon: None,
            shares: BTreeMap::new(),
            masked: BTreeMap::new(),
            survivors: Vec::new(),
            signatures: BTreeMap::new(),
            unmaskings: BTreeMap::new(),
            aggregate: None,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.phase != Phase::Done).then_some(self.deadline)
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn fail(&mut self, who: NodeId, why: MemberFailure) {
        if self.waiting.remove(&who) {
            self.failures.push((who, self.phase as u8, why));
        }
    }

    /// The transport could not reach `from` in the current round.
    pub fn handle_failure(&mut self, from: NodeId, failure: ContactFailure, now: Instant) {
        self.fail(from, MemberFailure::Contact(failure));
        self.maybe_advance(now);
    }

    /// A reply from `from` for the current round.
    pub fn handle_response(&mut self, from: NodeId, bytes: &[u8], now: Instant) {
        if now >= self.deadline {
            self.handle_timeout(now);
            return;
        }
        if !self.waiting.contains(&from) {
            return; // not waited for in this round: late, duplicate or unsolicited
        }
        let misbehaved = |why: &'static str| {
            MemberFailure::Contact(ContactFailure::Misbehaved(
                crate::PeerMisbehaved::Unexpected(why).into(),
            ))
        };
        let response = match decode_message::<PeerResponse>(bytes) {
            Ok(PeerResponse::Aggregate(r)) => r,
            Ok(PeerResponse::Refused(r)) => {
                return self.settle(
                    from,
                    Err(MemberFailure::Contact(ContactFailure::Refused(r))),
                    now,
                )
            }
            Ok(_) => return self.settle(from, Err(misbehaved("not an aggregation reply")), now),
            Err(e) => {
                return self.settle(
                    from,
                    Err(MemberFailure::Contact(ContactFailure::Misbehaved(e))),
                    now,
                )
            }
        };
        let result = match (self.phase, response) {
            (_, AggResponse::Abort(reason)) => Err(MemberFailure::Aborted(reason)),
            (
                Phase::Advertise,
                AggResponse::Advertised {
                    answer,
                    advertisement,
                },
            ) => {
                match (
                    verify_answer(&self.ctx.asker, &self.query, &from, answer),
                    advertisement.verify(),
                ) {
                    (Ok(named), Ok(ad))
                        if ad.responder == from
                            && ad.query_id == self.ctx.query_id
                            && ad.asker == self.ctx.asker
                            // An out-of-range ε would make every honest member abort
                            // round 1: leave such a member out of U1.
                            && ad.epsilon.is_none_or(|e| EPSILON_RANGE.contains(&e)) =>
                    {
                        self.answered += 1;
                        self.named.extend(named);
                        self.adverts.insert(from, advertisement);
                        Ok(())
                    }
                    (Err(f), _) => Err(MemberFailure::Contact(f)),
                    _ => Err(misbehaved("bad advertisement")),
                }
            }
            (Phase::Share, AggResponse::Shares(shares)) => {
                let cohort = self.cohort.as_ref().expect("cohort set in Share phase");
                let mut targets = BTreeSet::new();
                let ok = shares.len() + 1 == cohort.members.len()
                    && shares.iter().all(|s| {
                        s.from == from
                            && s.to != from
                            && cohort.members.contains_key(&s.to)
                            && targets.insert(s.to)
                    });
                if ok {
                    self.shares.insert(from, shares);
                    Ok(())
                } else {
                    Err(misbehaved("bad share list"))
                }
            }
            (Phase::Mask, AggResponse::Masked(y)) if y.len() == VECTOR_LEN => {
                self.masked.insert(from, y);
                Ok(())
            }
            (Phase::Consistency, AggResponse::Consistent(sig)) => {
                let digest = self.cohort.as_ref().expect("cohort set by round 3").digest;
                let message = consistency_message(
                    &self.ctx.query_id,
                    &self.ctx.asker,
                    &digest,
                    &self.survivors,
                );
                match from.verify(
                    SigningLabel::SecAggConsistency,
                    &message,
                    &sig,
                    "consistency",
                ) {
                    Ok(()) => {
                        self.signatures.insert(from, sig);
                        Ok(())
                    }
                    Err(_) => Err(misbehaved("bad consistency signature")),
                }
            }
            (Phase::Unmask, AggResponse::Unmasked(u)) => {
                self.unmaskings.insert(from, u);
                Ok(())
            }
            _ => Err(misbehaved("reply for another round")),
        };
        self.settle(from, result, now);
    }

    fn settle(&mut self, from: NodeId, result: Result<(), MemberFailure>, now: Instant) {
        match result {
            Ok(()) => {
                self.waiting.remove(&from);
            }
            Err(why) => self.fail(from, why),
        }
        self.maybe_advance(now);
    }

    /// Time passed: at the round's deadline, everyone still awaited has dropped out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Done || now < self.deadline {
            return;
        }
        for who in std::mem::take(&mut self.waiting) {
            self.failures.push((
                who,
                self.phase as u8,
                MemberFailure::Contact(ContactFailure::TimedOut),
            ));
        }
        self.maybe_advance(now);
    }

    fn withhold(&mut self, why: Withheld) {
        self.aggregate = Some(Err(why));
        self.phase = Phase::Done;
        self.transmits.clear();
        self.waiting.clear();
    }

    fn next_round(
        &mut self,
        phase: Phase,
        members: impl IntoIterator<Item = (NodeId, AggRequest)>,
        now: Instant,
    ) {
        self.phase = phase;
        self.deadline = now + self.params.round_timeout;
        for (to, r) in members {
            self.waiting.insert(to);
            self.transmits.push_back(Transmit {
                to,
                payload: request(r),
            });
        }
    }

    fn maybe_advance(&mut self, now: Instant) {
        if !self.waiting.is_empty() || self.phase == Phase::Done {
            return;
        }
        let qid = self.ctx.query_id;
        match self.phase {
            Phase::Advertise => {
                // Beyond MAX_COHORT, the first members by node id are kept. (Advertisements
                // were verified, ε included, when they arrived.)
                let signed: Vec<SignedAdvertisement> =
                    self.adverts.values().take(MAX_COHORT).cloned().collect();
                let members = match check_cohort(&self.ctx, &signed, None) {
                    Ok(m) => m,
                    Err(_) => return self.withhold(Withheld::Inconsistent("advertisements")),
                };
                let n = members.len() as u32;
                let t = cohort_threshold(&members, self.params.min_cohort);
                if n == 0 || t > n {
                    return self.withhold(Withheld::CohortTooSmall {
                        cohort: n,
                        needed: t.max(1),
                    });
                }
                let cohort = Cohort {
                    members,
                    threshold: t,
                    digest: cohort_digest(&signed, t),
                };
                self.epsilon = cohort.epsilon(self.params.epsilon);
                let to: Vec<NodeId> = cohort.members.keys().copied().collect();
                self.cohort = Some(cohort);
                self.next_round(
                    Phase::Share,
                    to.into_iter().map(|v| {
                        (
                            v,
                            AggRequest::ShareKeys {
                                query_id: qid,
                                cohort: signed.clone(),
                                threshold: t,
                            },
                        )
                    }),
                    now,
                );
            }
            Phase::Share => {
                let t = self.threshold();
                let u2: Vec<NodeId> = self.shares.keys().copied().collect();
                if (u2.len() as u32) < t {
                    return self.withhold(Withheld::TooFewSurvivors {
                        round: 1,
                        have: u2.len() as u32,
                        needed: t,
                    });
                }
                let rounds: Vec<(NodeId, AggRequest)> = u2
                    .iter()
                    .map(|v| {
                        let for_v = u2
                            .iter()
                            .filter(|u| *u != v)
                            .filter_map(|u| self.shares[u].iter().find(|s| s.to == *v).cloned())
                            .collect();
                        (
                            *v,
                            AggRequest::MaskInput {
                                query_id: qid,
                                shares: for_v,
                            },
                        )
                    })
                    .collect();
                self.next_round(Phase::Mask, rounds, now);
            }
            Phase::Mask => {
                let t = self.threshold();
                self.survivors = self.masked.keys().copied().collect();
                if (self.survivors.len() as u32) < t {
                    return self.withhold(Withheld::TooFewSurvivors {
                        round: 2,
                        have: self.survivors.len() as u32,
                        needed: t,
                    });
                }
                let survivors = self.survivors.clone();
                self.next_round(
                    Phase::Consistency,
                    survivors.iter().map(|v| {
                        (
                            *v,
                            AggRequest::Consistency {
                                query_id: qid,
                                survivors: survivors.clone(),
                            },
                        )
                    }),
                    now,
                );
            }
            Phase::Consistency => {
                let t = self.threshold();
                if (self.signatures.len() as u32) < t {
                    return self.withhold(Withheld::TooFewSurvivors {
                        round: 3,
                        have: self.signatures.len() as u32,
                        needed: t,
                    });
                }
                let sigs: Vec<(NodeId, Signature)> =
                    self.signatures.iter().map(|(k, v)| (*k, *v)).collect();
                let to: Vec<NodeId> = self.signatures.keys().copied().collect();
                self.next_round(
                    Phase::Unmask,
                    to.into_iter().map(|v| {
                        (
                            v,
                            AggRequest::Unmask {
                                query_id: qid,
                                signatures: sigs.clone(),
                            },
                        )
                    }),
                    now,
                );
            }
            Phase::Unmask => {
                let result = self.reconstruct();
                self.aggregate = Some(result);
                self.phase = Phase::Done;
            }
            Phase::Done => {}
        }
    }

    fn threshold(&self) -> u32 {
        self.cohort
            .as_ref()
            .map(|c| c.threshold)
            .unwrap_or(u32::MAX)
    }

    /// Remove every mask from the survivors' sum (spec §9.8.5).
    fn reconstruct(&self) -> Result<AggregateSum, Withheld> {
        let cohort = self
            .cohort
            .as_ref()
            .expect("cohort known by the last round");
        let t = cohort.threshold as usize;
        let u3: BTreeSet<NodeId> = self.survivors.iter().copied().collect();
        let dropped: Vec<NodeId> = self
            .shares
            .keys()
            .filter(|v| !u3.contains(v))
            .copied()
            .collect();
        // Holders whose reply is complete and canonical: one self-seed share per survivor and
        // one mask-seed share per dropped member, nothing else.
        let parse = |list: &[(NodeId, [u8; 32])], want: &[NodeId]| -> Option<Vec<Scalar>> {
            if list.len() != want.len() {
                return None;
            }
            want.iter()
                .map(|v| {
                    let (_, bytes) = list.iter().find(|(w, _)| w == v)?;
                    Option::from(Scalar::from_canonical_bytes(*bytes))
                })
                .collect()
        };
        let mut holders = Vec::new();
        for (h, u) in &self.unmaskings {
            if let (Some(selfs), Some(masks)) = (
                parse(&u.self_seed_shares, &self.survivors),
                parse(&u.mask_seed_shares, &dropped),
            ) {
                holders.push((cohort.index(h).expect("holder is a member"), selfs, masks));
            }
            if holders.len() == t {
                break;
            }
        }
        if holders.len() < t {
            return Err(Withheld::TooFewSurvivors {
                round: 4,
                have: holders.len() as u32,
                needed: t as u32,
            });
        }
        let xs: Vec<u32> = holders.iter().map(|h| h.0).collect();
        let lambdas =
            shamir::lagrange_at_zero(&xs).map_err(|_| Withheld::Inconsistent("share indices"))?;
        let mut sum = [0u32; VECTOR_LEN];
        for y in self.masked.values() {
            prg::add_into(&mut sum, y);
        }
        for (i, u) in self.survivors.iter().enumerate() {
            let ys: Vec<Scalar> = holders.iter().map(|h| h.1[i]).collect();
            let b = shamir::combine(&lambdas, &ys)
                .map_err(|_| Withheld::Inconsistent("self-mask shares"))?;
            prg::sub_from(
                &mut sum,
                &prg::expand(&self.ctx.self_mask_seed(&b, u), VECTOR_LEN),
            );
        }
        for (j, v) in dropped.iter().enumerate() {
            let ys: Vec<Scalar> = holders.iter().map(|h| h.2[j]).collect();
            let seed = shamir::combine(&lambdas, &ys)
                .map_err(|_| Withheld::Inconsistent("mask-key shares"))?;
            let secret = self.ctx.mask_secret(&seed, v);
            if x25519_dalek::PublicKey::from(&secret).to_bytes() != cohort.members[v].mask_key {
                return Err(Withheld::Inconsistent(
                    "a dropped member's mask key did not reconstruct",
                ));
            }
            for u in &self.survivors {
                let seed = self
                    .ctx
                    .pairwise_seed(&secret, &cohort.members[u].mask_key, v, u)
                    .ok_or(Withheld::Inconsistent("low-order mask key"))?;
                let mask = prg::expand(&seed, VECTOR_LEN);
                // u added +mask when u < v; take back exactly what it added.
                if mask_sign_positive(u, v) {
                    prg::sub_from(&mut sum, &mask);
                } else {
                    prg::add_into(&mut sum, &mask);
                }
            }
        }
        AggregateSum::from_cells(&sum).ok_or(Withheld::Inconsistent("vector length"))
    }

    /// The result; complete once [`AggAsker::is_done`].
    pub fn outcome(&self) -> AggOutcome {
        AggOutcome {
            asked: self.asked,
            answered: self.answered,
            named: self.named.clone(),
            cohort: self
                .cohort
                .as_ref()
                .map(|c| c.members.len() as u32)
                .unwrap_or(self.adverts.len() as u32),
            survivors: self.survivors.len() as u32,
            threshold: self.cohort.as_ref().map(|c| c.threshold).unwrap_or(0),
            epsilon: self.epsilon,
            aggregate: self
                .aggregate
                .clone()
                .unwrap_or(Err(Withheld::Inconsistent("not finished"))),
            failures: self.failures.clone(),
        }
    }
}
