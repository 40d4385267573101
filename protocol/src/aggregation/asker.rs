//! The asker's side of an aggregation (spec §9.8), as a sans-IO state machine in the
//! style of [`crate::AskRound`]: the driver sends what [`AggAsker::poll_transmit`] yields,
//! feeds back replies, failures and timeouts, and reads [`AggAsker::outcome`] at the end.
//!
//! ```text
//!  Advertise ─▶ Share ─▶ Mask ─▶ Consistency ─▶ Unmask ─▶ Done
//!      U1         U2       U3          U4          U5
//! ```
//! A phase ends when every member it waits for has replied, failed, or its deadline
//! passed. The aggregate is withheld when the cohort is empty or smaller than the asker's
//! own minimum cohort after round 0, fewer than `s` in rounds 1–2, or, in rounds 3–4, fewer
//! than `t` signers or holders for some member (spec §9.8.4, §9.9).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use curve25519_dalek::Scalar;

use super::cohort::{sparse_degree, Cohort, Member, Params, Plan, MAX_COHORT};
use super::estimate::{AggregateSum, NoiseLeft};
use super::input::VECTOR_LEN;
use super::keys::Context;
use super::messages::{
    consistency_message, AbortReason, Advertisement, AggRequest, AggResponse, MilliEpsilon,
    NoiseDeclaration, NoiseRelease, SealedShare, SignedAdvertisement, SurvivorSignature, Unmasking,
    SEALED_PAIR_LEN,
};
use super::noise::WHOLE_MASS;
use super::responder::{effective_epsilon, mask_sign_positive, EPSILON_RANGE};
use super::sizing::highest_threshold;
use super::{prg, shamir};
use crate::ask::{verify_answer, ContactFailure, Named, Transmit};
use crate::identity::{NodeId, Signature, SigningLabel};
use crate::item::ItemKey;
use crate::message::{PeerRequest, PeerResponse, Query, QueryId};
use crate::wire::{decode_message, encode_message};

/// What the asker asks for (spec §9.8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregationParams {
    /// The asker's requested ε (None: no requirement of its own).
    pub epsilon: Option<MilliEpsilon>,
    /// The asker's own minimum cohort.
    pub min_cohort: u32,
    /// Ask for units and ratings besides `owners`, from the same ε (spec §9.6.1).
    pub detail: bool,
    /// How long each round may wait for replies.
    pub round_timeout: Duration,
    /// Cohorts up to this size use the complete graph, larger ones the sparse graph
    /// (spec §9.8.1); the reference uses [`super::cohort::DENSE_MAX`]. Above about 220
    /// members a complete graph's `ShareKeys` no longer fits a peer frame (spec §9.7), so
    /// larger values only make sense in one process (benchmarks).
    pub dense_max: usize,
}

/// Why no aggregate was released (spec §9.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// The cohort after round 0 is empty or smaller than the asker's own minimum cohort
    /// `m_A` (`needed = max(m_A, 1)`, spec §9.8.4 round 0 step 3).
    CohortTooSmall { cohort: u32, needed: u32 },
    /// Too many members dropped out in a round.
    TooFewSurvivors { round: u8, have: u32, needed: u32 },
    /// Shares did not reconstruct consistently (a responder sent bad shares).
    Inconsistent(&'static str),
}

impl core::fmt::Display for Withheld {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Withheld::CohortTooSmall { cohort, needed } => write!(
                f,
                "only {cohort} took part, fewer than your minimum cohort of {needed} (setting \
                 min-cohort)"
            ),
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

/// Why a member stopped counting (spec §9.8.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberFailure {
    Contact(ContactFailure),
    Aborted(AbortReason),
    /// Left out of the cohort after round 0 (spec §9.8.4): beyond [`MAX_COHORT`].
    LeftOut(&'static str),
}

impl MemberFailure {
    /// Why, as the app API reports it (spec §10.3).
    pub fn reason(&self) -> crate::app::DeclineReason {
        use crate::app::DeclineReason as R;
        match self {
            MemberFailure::Contact(ContactFailure::Unreachable(_)) => R::Unreachable,
            MemberFailure::Contact(ContactFailure::TimedOut) => R::TimedOut,
            MemberFailure::Contact(ContactFailure::Refused(crate::Refusal::NotAContact)) => {
                R::NotAContact
            }
            MemberFailure::Contact(ContactFailure::Refused(crate::Refusal::RateLimited)) => {
                R::DailyBudget
            }
            MemberFailure::Contact(ContactFailure::Refused(_)) => R::Refused,
            MemberFailure::Contact(ContactFailure::Misbehaved(_)) => R::Misbehaved,
            MemberFailure::Aborted(AbortReason::RateLimited) => R::DailyBudget,
            MemberFailure::Aborted(AbortReason::PrivacyBudget) => R::PrivacyBudget,
            MemberFailure::Aborted(AbortReason::TooManyOpen) => R::TooManyOpenAsks,
            MemberFailure::Aborted(_) => R::Aborted,
            MemberFailure::LeftOut(_) => R::CohortFull,
        }
    }
}

/// Everything the asker learns (spec §9.8.4, §10.3).
#[derive(Debug, Clone, PartialEq)]
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
    /// The sum before release: cells as signed integers, noise that stayed in included.
    /// What an attacker would use; never shown to people.
    pub raw: Option<[i64; VECTOR_LEN]>,
    /// The noise mass the survivors left in the sum (spec §9.6.4).
    pub noise_mass: f64,
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

/// One aggregation, from the asker's side (spec §9.8.4).
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
    /// Round-0 advertisements, by the node id that sent them.
    adverts: BTreeMap<NodeId, (SignedAdvertisement, Advertisement)>,
    /// Their session keys, each taken once.
    session_keys: BTreeSet<NodeId>,
    /// Every contact asked.
    asked_ids: BTreeSet<NodeId>,
    cohort: Option<Cohort>,
    /// From round 1 on, members are named by their session keys (spec §9.7.1); requests
    /// go to, and replies come from, their node ids.
    node_of: BTreeMap<NodeId, NodeId>,
    member_of: BTreeMap<NodeId, NodeId>,
    /// Members (session keys) by roster position.
    ids: Vec<NodeId>,
    /// Round-1 shares: sender → recipient → sealed pair.
    shares: BTreeMap<NodeId, BTreeMap<NodeId, Vec<u8>>>,
    /// Each member's own Shamir threshold, from its round-1 reply.
    thresholds: BTreeMap<NodeId, u32>,
    masked: BTreeMap<NodeId, Vec<u32>>,
    survivors: Vec<NodeId>,
    survivor_bits: Vec<u8>,
    signatures: BTreeMap<NodeId, (NoiseDeclaration, Signature)>,
    unmaskings: BTreeMap<NodeId, Unmasking>,
    aggregate: Option<Result<AggregateSum, Withheld>>,
    raw: Option<[i64; VECTOR_LEN]>,
    noise_mass: f64,
}

fn request(r: AggRequest) -> Vec<u8> {
    encode_message(&PeerRequest::Aggregate(r))
}

impl AggAsker {
    /// Ask `contacts` about `item` and aggregate their answers (spec §9.8.4).
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
            detail: params.detail,
        });
        let waiting: BTreeSet<NodeId> = contacts.into_iter().filter(|c| *c != me).collect();
        let transmits = waiting
            .iter()
            .map(|c| Transmit {
                to: *c,
                payload: payload.clone(),
            })
            .collect();
        let asked_ids = waiting.clone();
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
            session_keys: BTreeSet::new(),
            asked_ids,
            cohort: None,
            node_of: BTreeMap::new(),
            member_of: BTreeMap::new(),
            ids: Vec::new(),
            shares: BTreeMap::new(),
            thresholds: BTreeMap::new(),
            masked: BTreeMap::new(),
            survivors: Vec::new(),
            survivor_bits: Vec::new(),
            signatures: BTreeMap::new(),
            unmaskings: BTreeMap::new(),
            aggregate: None,
            raw: None,
            noise_mass: 0.0,
        }
    }

    /// The next request to send: one per awaited member and round (spec §9.8.4).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The current round's deadline, unless the aggregation is done (spec §9.8.1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.phase != Phase::Done).then_some(self.deadline)
    }

    /// Whether the aggregate was released or withheld (spec §9.8.4).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn fail(&mut self, who: NodeId, why: MemberFailure) {
        if self.waiting.remove(&who) {
            self.failures.push((who, self.phase as u8, why));
        }
    }

    /// The transport could not reach `from` in the current round (spec §9.8.4).
    pub fn handle_failure(&mut self, from: NodeId, failure: ContactFailure, now: Instant) {
        self.fail(from, MemberFailure::Contact(failure));
        self.maybe_advance(now);
    }

    /// A reply from `from` for the current round (spec §9.8.4).
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
        // After round 0 the session names the member by its session key.
        let member = self.member_of.get(&from).copied().unwrap_or(from);
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
                    advertisement.verify(&self.ctx.query_id, &self.ctx.asker),
                ) {
                    (Ok(named), Ok(ad))
                        // A session key already taken would name two members alike.
                        if !self.session_keys.contains(&ad.member)
                            // An out-of-range ε or a small-order key would make every
                            // honest member abort: leave such a member out of U1.
                            && ad.epsilon.is_none_or(|e| EPSILON_RANGE.contains(&e))
                            && ad.keys_usable()
                            && ad.is_from(&from, &self.ctx.query_id, &self.ctx.asker) =>
                    {
                        self.answered += 1;
                        self.named.extend(named);
                        self.session_keys.insert(ad.member);
                        self.adverts.insert(from, (advertisement, ad));
                        Ok(())
                    }
                    (Err(f), _) => Err(MemberFailure::Contact(f)),
                    _ => Err(misbehaved("bad advertisement")),
                }
            }
            (Phase::Share, AggResponse::Shares { threshold, pairs }) => {
                // One sealed pair per neighbour, in the neighbours' roster order, and an own
                // threshold between the session's and the member's holders (spec §9.6.2).
                let expected = self.neighbours_in_order(&member);
                // An honest member leaves about a quarter of its holders free to drop out,
                // unless the session's own threshold already needs them all (spec §9.6.2):
                // one member must not make a few dropouts fatal to everyone.
                let session = self.params().threshold;
                let holders = expected.len() as u32 + 1;
                let highest = highest_threshold(holders, session);
                if pairs.len() == expected.len()
                    && pairs.iter().all(|c| c.len() == SEALED_PAIR_LEN)
                    && (session..=highest).contains(&threshold)
                {
                    self.thresholds.insert(member, threshold);
                    self.shares
                        .insert(member, expected.into_iter().zip(pairs).collect());
                    Ok(())
                } else {
                    Err(misbehaved("bad share list"))
                }
            }
            (Phase::Mask, AggResponse::Masked(y)) if y.len() == VECTOR_LEN => {
                self.masked.insert(member, y);
                Ok(())
            }
            (Phase::Consistency, AggResponse::Consistent { noise, signature }) => {
                let digest = self.cohort.as_ref().expect("cohort set by round 3").digest;
                let message = consistency_message(
                    &self.ctx.query_id,
                    &self.ctx.asker,
                    &digest,
                    &self.survivor_bits,
                    &noise,
                );
                match member.verify(
                    SigningLabel::SecAggConsistency,
                    &message,
                    &signature,
                    "consistency",
                ) {
                    Ok(()) => {
                        self.signatures.insert(member, (noise, signature));
                        Ok(())
                    }
                    Err(_) => Err(misbehaved("bad consistency signature")),
                }
            }
            (Phase::Unmask, AggResponse::Unmasked(u)) => {
                self.unmaskings.insert(member, u);
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

    /// Time passed: at the round's deadline, everyone still awaited has dropped out (spec §9.8.1).
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
        self.close_sessions();
    }

    /// Tell every contact that may still hold a session that the ask is over (spec
    /// §9.8.4): every asked contact, but those whose round-4 reply finished theirs and
    /// those that surely hold none (unreachable, refused or aborted in round 0). Late and
    /// rejected round-0 replies may have opened one. Their replies are not awaited.
    fn close_sessions(&mut self) {
        let mut finished: BTreeSet<NodeId> = self
            .unmaskings
            .keys()
            .filter_map(|m| self.node_of.get(m).copied())
            .collect();
        finished.extend(self.failures.iter().filter_map(|(who, round, why)| {
            let none = matches!(
                why,
                MemberFailure::Contact(ContactFailure::Unreachable(_))
                    | MemberFailure::Contact(ContactFailure::Refused(_))
                    | MemberFailure::Aborted(_)
            );
            (*round == 0 && none).then_some(*who)
        }));
        let payload = request(AggRequest::Close {
            query_id: self.ctx.query_id,
        });
        for to in self.asked_ids.difference(&finished) {
            self.transmits.push_back(Transmit {
                to: *to,
                payload: payload.clone(),
            });
        }
    }

    fn next_round(
        &mut self,
        phase: Phase,
        members: impl IntoIterator<Item = (NodeId, AggRequest)>,
        now: Instant,
    ) {
        self.phase = phase;
        self.deadline = now + self.params.round_timeout;
        for (member, r) in members {
            let to = self.node_of.get(&member).copied().unwrap_or(member);
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
        match self.phase {
            Phase::Advertise => self.start_sharing(now),
            Phase::Share => self.start_masking(now),
            Phase::Mask => self.start_consistency(now),
            Phase::Consistency => self.start_unmasking(now),
            Phase::Unmask => {
                let result = self.reconstruct().map(|raw| self.release(raw));
                self.aggregate = Some(result);
                self.phase = Phase::Done;
                self.close_sessions();
            }
            Phase::Done => {}
        }
    }

    fn cohort(&self) -> &Cohort {
        self.cohort.as_ref().expect("cohort fixed after round 0")
    }

    fn params(&self) -> Params {
        self.cohort.as_ref().map(|c| c.params).unwrap_or(Params {
            degree: 0,
            threshold: u32::MAX,
            min_survivors: u32::MAX,
            epsilon: None,
            detail: false,
        })
    }

    /// `v`'s neighbours in ascending roster position.
    fn neighbours_in_order(&self, v: &NodeId) -> Vec<NodeId> {
        let cohort = self.cohort();
        let p = cohort.position(v).expect("a member");
        cohort
            .graph
            .neighbours(p)
            .into_iter()
            .map(|q| self.ids[q as usize])
            .collect()
    }

    /// The threshold member `v` shared its secrets with (the session's if unknown).
    fn threshold_of(&self, v: &NodeId) -> u32 {
        self.thresholds
            .get(v)
            .copied()
            .unwrap_or(self.params().threshold)
    }

    /// The neighbours of member `v`, as a set.
    fn neighbours(&self, v: &NodeId) -> BTreeSet<NodeId> {
        self.neighbours_in_order(v).into_iter().collect()
    }

    /// After round 0: fix U1, its roster, graph and parameters (spec §9.8.4).
    fn start_sharing(&mut self, now: Instant) {
        // Beyond MAX_COHORT, the first members by node id are kept.
        let mut chosen: Vec<(NodeId, (SignedAdvertisement, Advertisement))> =
            std::mem::take(&mut self.adverts).into_iter().collect();
        for (node, _) in chosen.drain(MAX_COHORT.min(chosen.len())..) {
            self.failures
                .push((node, 0, MemberFailure::LeftOut("cohort full")));
        }
        for (node, (_, ad)) in &chosen {
            self.node_of.insert(ad.member, *node);
            self.member_of.insert(*node, ad.member);
        }
        let chosen: Vec<(SignedAdvertisement, Advertisement)> =
            chosen.into_iter().map(|(_, a)| a).collect();
        let n = chosen.len();
        if n == 0 || self.params.min_cohort as usize > n {
            return self.withhold(Withheld::CohortTooSmall {
                cohort: n as u32,
                needed: self.params.min_cohort.max(1),
            });
        }
        // Members' minimum cohorts are theirs to apply to their own noise (§9.6.2); only the
        // asker's own is a floor here.
        let epsilon = effective_epsilon(self.params.epsilon, chosen.iter().map(|(_, a)| a.epsilon));
        let degree = match sparse_degree(n) {
            Some(k) if n > self.params.dense_max => k,
            _ => n - 1,
        };
        let params = Params {
            detail: self.params.detail,
            ..Params::with_degree(n, degree, self.params.min_cohort, epsilon)
        };
        let signed = chosen.iter().map(|(s, a)| (a.member, s.clone())).collect();
        let plan = Plan::new(signed, params).expect("1 ≤ n ≤ MAX_COHORT, verified members");
        self.ids = plan.members.iter().map(|m| m.0).collect();
        let by_id: BTreeMap<NodeId, Advertisement> =
            chosen.into_iter().map(|(_, a)| (a.member, a)).collect();
        let members = self
            .ids
            .iter()
            .enumerate()
            .map(|(p, v)| {
                let member = Member {
                    position: p as u32,
                    ad: by_id[v].clone(),
                };
                (*v, member)
            })
            .collect();
        let requests: Vec<(NodeId, AggRequest)> = (0..n as u32)
            .map(|p| (self.ids[p as usize], plan.share_keys(self.ctx.query_id, p)))
            .collect();
        let Plan { roster, graph, .. } = plan;
        self.cohort = Some(Cohort::new(roster, graph, params, members));
        self.next_round(Phase::Share, requests, now);
    }

    /// After round 1: U2 is who sent its shares; each gets those its neighbours in U2 sent it.
    fn start_masking(&mut self, now: Instant) {
        let Params { min_survivors, .. } = self.params();
        let u2: Vec<NodeId> = self.shares.keys().copied().collect();
        if (u2.len() as u32) < min_survivors {
            return self.withhold(Withheld::TooFewSurvivors {
                round: 1,
                have: u2.len() as u32,
                needed: min_survivors,
            });
        }
        let requests: Vec<(NodeId, AggRequest)> = u2
            .iter()
            .map(|v| {
                let for_v = self
                    .neighbours_in_order(v)
                    .iter()
                    .filter_map(|u| {
                        Some(SealedShare {
                            from: self.cohort().position(u)?,
                            ciphertext: self.shares.get(u)?.get(v)?.clone(),
                        })
                    })
                    .collect();
                let request = AggRequest::MaskInput {
                    query_id: self.ctx.query_id,
                    shares: for_v,
                };
                (*v, request)
            })
            .collect();
        self.next_round(Phase::Mask, requests, now);
    }

    /// After round 2: U3 is who sent its masked input; each signs the same bitmap of U3.
    fn start_consistency(&mut self, now: Instant) {
        let Params { min_survivors, .. } = self.params();
        self.survivors = self.masked.keys().copied().collect();
        if (self.survivors.len() as u32) < min_survivors {
            return self.withhold(Withheld::TooFewSurvivors {
                round: 2,
                have: self.survivors.len() as u32,
                needed: min_survivors,
            });
        }
        self.survivor_bits = self.cohort().survivor_bits(&self.survivors);
        let requests: Vec<(NodeId, AggRequest)> = self
            .survivors
            .iter()
            .map(|v| {
                let request = AggRequest::Consistency {
                    query_id: self.ctx.query_id,
                    survivors: self.survivor_bits.clone(),
                };
                (*v, request)
            })
            .collect();
        self.next_round(Phase::Consistency, requests, now);
    }

    /// The members whose shares of `v`'s secrets the asker needs: `v` itself if it
    /// survived, and its neighbours.
    fn holders_of(&self, v: &NodeId) -> BTreeSet<NodeId> {
        let mut holders = self.neighbours(v);
        if self.masked.contains_key(v) {
            holders.insert(*v);
        }
        holders
    }

    /// After round 3: U4 is who signed. Every member of U2 needs `t` signers among its
    /// holders; each signer gets its own and its neighbours' signatures.
    fn start_unmasking(&mut self, now: Instant) {
        // Each member of U2 needs its own threshold of signers among its holders.
        let short = self
            .shares
            .keys()
            .map(|v| {
                let holders = self.holders_of(v);
                let signed = holders
                    .iter()
                    .filter(|h| self.signatures.contains_key(h))
                    .count() as u32;
                (signed, self.threshold_of(v))
            })
            .find(|(signed, needed)| signed < needed);
        if let Some((have, needed)) = short {
            return self.withhold(Withheld::TooFewSurvivors {
                round: 3,
                have,
                needed,
            });
        }
        let requests: Vec<(NodeId, AggRequest)> = self
            .signatures
            .keys()
            .map(|w| {
                let mut local = self.neighbours(w);
                local.insert(*w);
                // Every signature: a member verifies `t`, and its contacts' to count their
                // noise, which only it knows (spec §9.8.3, §9.8.4).
                let signatures = local
                    .iter()
                    .filter_map(|v| {
                        let (noise, signature) = *self.signatures.get(v)?;
                        Some(SurvivorSignature {
                            member: *v,
                            noise,
                            signature,
                        })
                    })
                    .collect();
                let request = AggRequest::Unmask {
                    query_id: self.ctx.query_id,
                    signatures,
                };
                (*w, request)
            })
            .collect();
        self.next_round(Phase::Unmask, requests, now);
    }

    /// The released counts of a reconstructed sum, and what stays of it for tests: the raw
    /// cells and the noise mass (spec §9.6.4).
    fn release(&mut self, cells: [u32; VECTOR_LEN]) -> AggregateSum {
        let params = self.params();
        let kept = |u: &NodeId| match self.unmaskings.get(u) {
            Some(r) if noise_release_valid(&r.noise) => r.noise.kept as f64 / WHOLE_MASS as f64,
            _ => 1.0,
        };
        self.noise_mass = match params.epsilon {
            Some(_) => self.survivors.iter().map(kept).sum(),
            None => 0.0,
        };
        self.raw = Some(cells.map(|c| c as i32 as i64));
        let noise = params.epsilon.map(|e| NoiseLeft {
            epsilon: e as f64 / 1000.0,
            detail: params.detail,
            mass: self.noise_mass,
        });
        AggregateSum::release(&cells, self.survivors.len() as u32, params.detail, noise)
    }

    /// Remove every mask, and the noise each survivor revealed, from the survivors' sum
    /// (spec §9.8.5).
    fn reconstruct(&self) -> Result<[u32; VECTOR_LEN], Withheld> {
        let cohort = self.cohort();
        // A holder's reply must be complete and canonical: for each member whose shares it
        // holds (itself, and its neighbours in U2), exactly one share of the right kind.
        let mut valid: BTreeMap<NodeId, (SharesOf, SharesOf)> = BTreeMap::new();
        for (h, reply) in &self.unmaskings {
            let mut held: Vec<NodeId> = self
                .neighbours(h)
                .into_iter()
                .filter(|v| self.shares.contains_key(v))
                .collect();
            held.push(*h);
            let (alive, gone): (Vec<NodeId>, Vec<NodeId>) =
                held.into_iter().partition(|v| self.masked.contains_key(v));
            if let (Some(selfs), Some(masks)) = (
                parse_shares(&reply.self_seed_shares, &alive),
                parse_shares(&reply.mask_seed_shares, &gone),
            ) {
                valid.insert(*h, (selfs, masks));
            }
        }
        let mut lagrange: BTreeMap<Vec<u32>, Vec<Scalar>> = BTreeMap::new();
        let mut rebuild = |v: &NodeId, pick: &dyn Fn(&NodeId) -> Option<Scalar>| {
            let t = self.threshold_of(v) as usize;
            let mut holders: Vec<(u32, Scalar)> = self
                .holders_of(v)
                .iter()
                .filter_map(|h| Some((cohort.index(h)?, pick(h)?)))
                .collect();
            if holders.len() < t {
                return Err(Withheld::TooFewSurvivors {
                    round: 4,
                    have: holders.len() as u32,
                    needed: t as u32,
                });
            }
            holders.sort_by_key(|(x, _)| *x);
            holders.truncate(t);
            let xs: Vec<u32> = holders.iter().map(|(x, _)| *x).collect();
            let ys: Vec<Scalar> = holders.iter().map(|(_, y)| *y).collect();
            if !lagrange.contains_key(&xs) {
                let lambdas = shamir::lagrange_at_zero(&xs)
                    .map_err(|_| Withheld::Inconsistent("share indices"))?;
                lagrange.insert(xs.clone(), lambdas);
            }
            shamir::combine(&lagrange[&xs], &ys).map_err(|_| Withheld::Inconsistent("shares"))
        };
        let mut sum = [0u32; VECTOR_LEN];
        for y in self.masked.values() {
            prg::add_into(&mut sum, y);
        }
        for u in &self.survivors {
            if let Some(r) = self
                .unmaskings
                .get(u)
                .filter(|r| noise_release_valid(&r.noise))
            {
                prg::sub_from(&mut sum, &r.noise.removed);
            }
        }
        for u in &self.survivors {
            let b = rebuild(u, &|h| valid.get(h)?.0.get(u).copied())?;
            prg::sub_from(
                &mut sum,
                &prg::expand(&self.ctx.self_mask_seed(&b, u), VECTOR_LEN),
            );
        }
        for v in self.shares.keys().filter(|v| !self.masked.contains_key(v)) {
            let seed = rebuild(v, &|h| valid.get(h)?.1.get(v).copied())?;
            let secret = self.ctx.mask_secret(&seed, v);
            if x25519_dalek::PublicKey::from(&secret).to_bytes() != cohort.members[v].ad.mask_key {
                return Err(Withheld::Inconsistent(
                    "a dropped member's mask key did not reconstruct",
                ));
            }
            for u in self
                .neighbours(v)
                .iter()
                .filter(|u| self.masked.contains_key(u))
            {
                let seed = self
                    .ctx
                    .pairwise_seed(&secret, &cohort.members[u].ad.mask_key, v, u)
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
        Ok(sum)
    }

    /// The result; complete once [`AggAsker::is_done`] (spec §9.8.4, §9.9).
    pub fn outcome(&self) -> AggOutcome {
        AggOutcome {
            asked: self.asked,
            answered: self.answered,
            named: self.named.clone(),
            cohort: self
                .cohort
                .as_ref()
                .map(|c| c.n() as u32)
                .unwrap_or(self.session_keys.len() as u32),
            survivors: self.survivors.len() as u32,
            threshold: self.cohort.as_ref().map_or(0, |c| c.params.threshold),
            epsilon: self.cohort.as_ref().and_then(|c| c.params.epsilon),
            aggregate: self
                .aggregate
                .clone()
                .unwrap_or(Err(Withheld::Inconsistent("not finished"))),
            raw: self.raw,
            noise_mass: self.noise_mass,
            failures: self.failures.clone(),
        }
    }
}

/// Whether a released noise has one value per cell and keeps at most the whole mass.
fn noise_release_valid(n: &NoiseRelease) -> bool {
    n.removed.len() == VECTOR_LEN && n.kept <= WHOLE_MASS
}

/// One holder's shares, by the member they are shares of.
type SharesOf = BTreeMap<NodeId, Scalar>;

/// One share per member of `want`, each a canonical scalar, and nothing else.
fn parse_shares(list: &[(NodeId, [u8; 32])], want: &[NodeId]) -> Option<SharesOf> {
    if list.len() != want.len() {
        return None;
    }
    let map: BTreeMap<NodeId, Scalar> = list
        .iter()
        .map(|(v, bytes)| Some((*v, Option::from(Scalar::from_canonical_bytes(*bytes))?)))
        .collect::<Option<_>>()?;
    (map.len() == want.len() && want.iter().all(|v| map.contains_key(v))).then_some(map)
}
