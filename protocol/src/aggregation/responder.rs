//! The responder's side of an aggregation (spec §9.8), as a sans-IO state machine.
//!
//! ```text
//!  start() ──advert──▶ Advertised ──ShareKeys──▶ Shared ──MaskInput──▶ Masked
//!                                                                        │ Consistency
//!            Done ◀──Unmask── Signed ◀───────────────────────────────────┘
//!  any unexpected message, failed check or expiry ─▶ Aborted (state wiped)
//! ```
//!
//! The invariant that protects this responder's contribution against a lying asker: for
//! any member `v`, it reveals the share of `v`'s self-mask seed only if `v` is in the
//! survivor list U3 that at least `t` members signed, and the share of `v`'s mask-key seed
//! only if `v` is not — and it signs exactly one U3 per query.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::Scalar;
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

use super::input::{Contribution, VECTOR_LEN};
use super::keys::Context;
use super::messages::{
    cohort_digest, consistency_message, AbortReason, Advertisement, AggRequest, AggResponse,
    MilliEpsilon, SealedShares, SharePair, SignedAdvertisement, Unmasking,
};
use super::{noise, prg, shamir};
use crate::identity::{Identity, NodeId, SigningLabel};
use crate::wire::{decode_exact, encode_value};

/// A responder's own aggregation settings (spec §9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderSettings {
    /// Its ε setting; `None` = `off`.
    pub epsilon: Option<MilliEpsilon>,
    /// It refuses to unmask for fewer survivors than this.
    pub min_cohort: u32,
}

/// The effective ε: the strictest (smallest) of the request and every member's setting;
/// `None` when nobody requires noise.
pub fn effective_epsilon(
    request: Option<MilliEpsilon>,
    members: impl IntoIterator<Item = Option<MilliEpsilon>>,
) -> Option<MilliEpsilon> {
    members.into_iter().chain([request]).flatten().min()
}

/// The threshold for a cohort of `n` whose strictest minimum-cohort setting is
/// `min_cohort`: more than two thirds, and at least the minimum (spec §9.4).
///
/// A lying asker that shows two survivor lists to two halves of the cohort, helped by `c`
/// colluding members who sign both, gets both lists to `t` signatures only if
/// `n + c ≥ 2t`. With `t = ⌊2n/3⌋ + 1` that needs `c > n/3` colluders; the price is that
/// fewer than a third of the members may drop out.
pub fn threshold_for(n: u32, min_cohort: u32) -> u32 {
    (2 * n / 3 + 1).max(min_cohort)
}

/// The threshold of a cohort: [`threshold_for`] its size and the strictest minimum cohort
/// among its members' advertisements and `own` setting.
pub(crate) fn cohort_threshold(members: &BTreeMap<NodeId, Advertisement>, own: u32) -> u32 {
    let strictest = members
        .values()
        .map(|a| a.min_cohort)
        .max()
        .unwrap_or(0)
        .max(own);
    threshold_for(members.len() as u32, strictest)
}

/// Smallest and largest ε (in thousandths) a responder accepts from an asker or a member;
/// anything else would mean no meaningful noise, or a malformed setting (spec §9.6).
pub const EPSILON_RANGE: core::ops::RangeInclusive<MilliEpsilon> = 10..=10_000;

/// Largest cohort one aggregation admits (spec §9.8.1): beyond it the round-1 cohort list
/// no longer fits one peer frame. Lifted by the sparse neighbour graph.
pub const MAX_COHORT: usize = 250;

/// The additive sign of `u`'s pairwise mask with `v`: + when u < v.
pub(crate) fn mask_sign_positive(u: &NodeId, v: &NodeId) -> bool {
    u < v
}

pub(crate) fn seal_pair(
    ctx: &Context,
    key: &[u8; 44],
    from: &NodeId,
    to: &NodeId,
    pair: &SharePair,
) -> Vec<u8> {
    let aad = share_aad(ctx, from, to);
    let plain = zeroize::Zeroizing::new(encode_value(pair));
    ChaCha20Poly1305::new(Key::from_slice(&key[..32]))
        .encrypt(
            Nonce::from_slice(&key[32..]),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .expect("in-memory encryption")
}

pub(crate) fn open_pair(
    ctx: &Context,
    key: &[u8; 44],
    from: &NodeId,
    to: &NodeId,
    ciphertext: &[u8],
) -> Option<SharePair> {
    let aad = share_aad(ctx, from, to);
    let plain = zeroize::Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(&key[..32]))
            .decrypt(
                Nonce::from_slice(&key[32..]),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?,
    );
    decode_exact(&plain).ok()
}

fn share_aad(ctx: &Context, from: &NodeId, to: &NodeId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 96);
    aad.extend_from_slice(&ctx.query_id.0);
    aad.extend_from_slice(ctx.asker.as_bytes());
    aad.extend_from_slice(from.as_bytes());
    aad.extend_from_slice(to.as_bytes());
    aad
}

/// The cohort U1 as both sides check it.
#[derive(Debug, Clone)]
pub(crate) struct Cohort {
    pub members: BTreeMap<NodeId, Advertisement>,
    pub threshold: u32,
    /// [`cohort_digest`] of the relayed list and threshold.
    pub digest: [u8; 32],
}

impl Cohort {
    /// Share index of `v`: its 1-based position in U1 sorted by node id.
    pub fn index(&self, v: &NodeId) -> Option<u32> {
        self.members
            .keys()
            .position(|k| k == v)
            .map(|p| p as u32 + 1)
    }

    pub fn epsilon(&self, request: Option<MilliEpsilon>) -> Option<MilliEpsilon> {
        effective_epsilon(request, self.members.values().map(|a| a.epsilon))
    }
}

/// Verify a relayed cohort: every advertisement signed, for this query and asker, strictly
/// sorted and distinct, and (if given) containing `me` with exactly `mine`.
pub(crate) fn check_cohort(
    ctx: &Context,
    signed: &[SignedAdvertisement],
    mine: Option<(&NodeId, &SignedAdvertisement)>,
) -> Result<BTreeMap<NodeId, Advertisement>, AbortReason> {
    let mut members = BTreeMap::new();
    let mut last: Option<NodeId> = None;
    for s in signed {
        let ad = s.verify().map_err(|_| AbortReason::Inconsistent)?;
        let bad_epsilon = ad.epsilon.is_some_and(|e| !EPSILON_RANGE.contains(&e));
        if ad.query_id != ctx.query_id
            || ad.asker != ctx.asker
            || last.is_some_and(|l| l >= ad.responder)
            || bad_epsilon
        {
            return Err(AbortReason::Inconsistent);
        }
        last = Some(ad.responder);
        members.insert(ad.responder, ad);
    }
    if let Some((me, my_ad)) = mine {
        if !signed.iter().any(|s| s == my_ad) || !members.contains_key(me) {
            return Err(AbortReason::Inconsistent);
        }
    }
    Ok(members)
}

#[derive(Debug)]
enum State {
    Advertised,
    Shared {
        cohort: Cohort,
    },
    Masked {
        cohort: Cohort,
        u2: BTreeSet<NodeId>,
    },
    Signed {
        cohort: Cohort,
        u2: BTreeSet<NodeId>,
        survivors: Vec<NodeId>,
    },
    Finished,
}

/// One responder's part in one aggregation.
pub struct AggResponder {
    ctx: Context,
    me: NodeId,
    settings: ResponderSettings,
    asker_epsilon: Option<MilliEpsilon>,
    input: [u32; VECTOR_LEN],
    share_secret: x25519_dalek::StaticSecret,
    mask_seed: Scalar,
    mask_secret: x25519_dalek::StaticSecret,
    self_seed: Scalar,
    advertisement: SignedAdvertisement,
    /// Shares other members sent to us (and our own), by sender.
    held: BTreeMap<NodeId, SharePair>,
    deadline: Instant,
    state: State,
}

impl core::fmt::Debug for AggResponder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AggResponder")
            .field("query", &self.ctx.query_id)
            .field("state", &self.state)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

impl Drop for AggResponder {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl AggResponder {
    /// Start taking part: fresh keys and seeds, and the signed advertisement to send.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        identity: &Identity,
        ctx: Context,
        contribution: Contribution,
        settings: ResponderSettings,
        asker_epsilon: Option<MilliEpsilon>,
        rng: &mut impl CryptoRngCore,
        deadline: Instant,
    ) -> Self {
        let me = identity.node_id();
        let mut c = [0u8; 32];
        rng.fill_bytes(&mut c);
        let share_secret = x25519_dalek::StaticSecret::from(c);
        c.zeroize();
        let mask_seed = shamir::random_scalar(rng);
        let mask_secret = ctx.mask_secret(&mask_seed, &me);
        let self_seed = shamir::random_scalar(rng);
        let advertisement = Advertisement {
            version: 1,
            query_id: ctx.query_id,
            asker: ctx.asker,
            responder: me,
            share_key: x25519_dalek::PublicKey::from(&share_secret).to_bytes(),
            mask_key: x25519_dalek::PublicKey::from(&mask_secret).to_bytes(),
            epsilon: settings.epsilon,
            min_cohort: settings.min_cohort,
        }
        .sign(identity);
        AggResponder {
            ctx,
            me,
            settings,
            asker_epsilon,
            input: contribution.to_vector(),
            share_secret,
            mask_seed,
            mask_secret,
            self_seed,
            advertisement,
            held: BTreeMap::new(),
            deadline,
            state: State::Advertised,
        }
    }

    /// The signed keys to send in round 0.
    pub fn advertisement(&self) -> &SignedAdvertisement {
        &self.advertisement
    }

    /// When this responder's state must be dropped.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the session is over (finished or aborted) and can be dropped.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    fn wipe(&mut self) {
        self.mask_seed.zeroize();
        self.self_seed.zeroize();
        self.input.zeroize();
        self.held.clear();
        self.state = State::Finished;
    }

    fn abort(&mut self, reason: AbortReason) -> AggResponse {
        self.wipe();
        AggResponse::Abort(reason)
    }

    /// Handle the asker's request for the next round.
    pub fn handle(
        &mut self,
        identity: &Identity,
        request: AggRequest,
        rng: &mut impl CryptoRngCore,
        now: Instant,
    ) -> AggResponse {
        if now >= self.deadline {
            return self.abort(AbortReason::Expired);
        }
        if self
            .asker_epsilon
            .is_some_and(|e| !EPSILON_RANGE.contains(&e))
        {
            return self.abort(AbortReason::Inconsistent);
        }
        let state = std::mem::replace(&mut self.state, State::Finished);
        let result = match (state, request) {
            (
                State::Advertised,
                AggRequest::ShareKeys {
                    query_id,
                    cohort,
                    threshold,
                },
            ) if query_id == self.ctx.query_id => self.share_keys(&cohort, threshold, rng),
            (State::Shared { cohort }, AggRequest::MaskInput { query_id, shares })
                if query_id == self.ctx.query_id =>
            {
                self.mask_input(cohort, &shares, rng)
            }
            (
                State::Masked { cohort, u2 },
                AggRequest::Consistency {
                    query_id,
                    survivors,
                },
            ) if query_id == self.ctx.query_id => self.consistency(identity, cohort, u2, survivors),
            (
                State::Signed {
                    cohort,
                    u2,
                    survivors,
                },
                AggRequest::Unmask {
                    query_id,
                    signatures,
                },
            ) if query_id == self.ctx.query_id => {
                self.unmask(&cohort, &u2, &survivors, &signatures)
            }
            _ => Err(AbortReason::UnexpectedRound),
        };
        match result {
            Ok((response, next)) => {
                self.state = next;
                if matches!(self.state, State::Finished) {
                    self.wipe();
                }
                response
            }
            Err(reason) => self.abort(reason),
        }
    }

    fn share_keys(
        &mut self,
        signed: &[SignedAdvertisement],
        threshold: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(AggResponse, State), AbortReason> {
        let members = check_cohort(&self.ctx, signed, Some((&self.me, &self.advertisement)))?;
        if members.len() > MAX_COHORT {
            return Err(AbortReason::Inconsistent);
        }
        let n = members.len() as u32;
        if threshold > n || threshold < cohort_threshold(&members, self.settings.min_cohort) {
            return Err(AbortReason::CohortTooSmall);
        }
        let cohort = Cohort {
            members,
            threshold,
            digest: cohort_digest(signed, threshold),
        };
        let xs: Vec<u32> = (1..=n).collect();
        let mask_shares = shamir::split(&self.mask_seed, threshold as usize, &xs, rng)
            .map_err(|_| AbortReason::CohortTooSmall)?;
        let self_shares = shamir::split(&self.self_seed, threshold as usize, &xs, rng)
            .map_err(|_| AbortReason::CohortTooSmall)?;
        let mut out = Vec::with_capacity(cohort.members.len().saturating_sub(1));
        for (i, (v, ad)) in cohort.members.iter().enumerate() {
            let pair = SharePair {
                mask_seed: mask_shares[i].to_bytes(),
                self_seed: self_shares[i].to_bytes(),
            };
            if *v == self.me {
                self.held.insert(self.me, pair);
                continue;
            }
            let key = self
                .ctx
                .share_key(&self.share_secret, &ad.share_key, &self.me, v)
                .ok_or(AbortReason::Inconsistent)?;
            out.push(SealedShares {
                from: self.me,
                to: *v,
                ciphertext: seal_pair(&self.ctx, &key, &self.me, v, &pair),
            });
        }
        Ok((AggResponse::Shares(out), State::Shared { cohort }))
    }

    fn mask_input(
        &mut self,
        cohort: Cohort,
        shares: &[SealedShares],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(AggResponse, State), AbortReason> {
        let mut u2 = BTreeSet::from([self.me]);
        for s in shares {
            let ad = cohort
                .members
                .get(&s.from)
                .ok_or(AbortReason::Inconsistent)?;
            if s.to != self.me || s.from == self.me || !u2.insert(s.from) {
                return Err(AbortReason::Inconsistent);
            }
            let key = self
                .ctx
                .share_key(&self.share_secret, &ad.share_key, &s.from, &self.me)
                .ok_or(AbortReason::Inconsistent)?;
            let pair = open_pair(&self.ctx, &key, &s.from, &self.me, &s.ciphertext)
                .ok_or(AbortReason::Inconsistent)?;
            self.held.insert(s.from, pair);
        }
        if (u2.len() as u32) < cohort.threshold {
            return Err(AbortReason::CohortTooSmall);
        }
        let mut y = self.input;
        if let Some(eps) = cohort.epsilon(self.asker_epsilon) {
            let noise = noise::noise_share(rng, eps as f64 / 1000.0, cohort.threshold);
            prg::add_into(&mut y, &noise);
        }
        prg::add_into(
            &mut y,
            &prg::expand(
                &self.ctx.self_mask_seed(&self.self_seed, &self.me),
                VECTOR_LEN,
            ),
        );
        for v in u2.iter().filter(|v| **v != self.me) {
            let ad = &cohort.members[v];
            let seed = self
                .ctx
                .pairwise_seed(&self.mask_secret, &ad.mask_key, &self.me, v)
                .ok_or(AbortReason::Inconsistent)?;
            let mask = prg::expand(&seed, VECTOR_LEN);
            if mask_sign_positive(&self.me, v) {
                prg::add_into(&mut y, &mask);
            } else {
                prg::sub_from(&mut y, &mask);
            }
        }
        self.input.zeroize();
        Ok((
            AggResponse::Masked(y.to_vec()),
            State::Masked { cohort, u2 },
        ))
    }

    fn consistency(
        &mut self,
        identity: &Identity,
        cohort: Cohort,
        u2: BTreeSet<NodeId>,
        survivors: Vec<NodeId>,
    ) -> Result<(AggResponse, State), AbortReason> {
        let sorted = survivors.windows(2).all(|w| w[0] < w[1]);
        if !sorted || !survivors.iter().all(|v| u2.contains(v)) || !survivors.contains(&self.me) {
            return Err(AbortReason::Inconsistent);
        }
        if (survivors.len() as u32) < cohort.threshold
            || (survivors.len() as u32) < self.settings.min_cohort
        {
            return Err(AbortReason::CohortTooSmall);
        }
        let message = consistency_message(
            &self.ctx.query_id,
            &self.ctx.asker,
            &cohort.digest,
            &survivors,
        );
        let signature = identity.sign(SigningLabel::SecAggConsistency, &message);
        Ok((
            AggResponse::Consistent(signature),
            State::Signed {
                cohort,
                u2,
                survivors,
            },
        ))
    }

    fn unmask(
        &mut self,
        cohort: &Cohort,
        u2: &BTreeSet<NodeId>,
        survivors: &[NodeId],
        signatures: &[(NodeId, crate::identity::Signature)],
    ) -> Result<(AggResponse, State), AbortReason> {
        let message = consistency_message(
            &self.ctx.query_id,
            &self.ctx.asker,
            &cohort.digest,
            survivors,
        );
        let mut signers = BTreeSet::new();
        for (v, sig) in signatures {
            if !survivors.contains(v) || !signers.insert(*v) {
                return Err(AbortReason::Inconsistent);
            }
            v.verify(
                SigningLabel::SecAggConsistency,
                &message,
                sig,
                "consistency",
            )
            .map_err(|_| AbortReason::Inconsistent)?;
        }
        if (signers.len() as u32) < cohort.threshold {
            return Err(AbortReason::Inconsistent);
        }
        let in_u3: BTreeSet<&NodeId> = survivors.iter().collect();
        let mut reply = Unmasking {
            self_seed_shares: Vec::new(),
            mask_seed_shares: Vec::new(),
        };
        for v in u2 {
            let Some(pair) = self.held.get(v) else {
                continue;
            };
            if in_u3.contains(v) {
                reply.self_seed_shares.push((*v, pair.self_seed));
            } else {
                reply.mask_seed_shares.push((*v, pair.mask_seed));
            }
        }
        Ok((AggResponse::Unmasked(reply), State::Finished))
    }
}
