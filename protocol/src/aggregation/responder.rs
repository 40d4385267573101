//! The responder's side of an aggregation (spec §9.8), as a sans-IO state machine.
//!
//! ```text
//!  start() ──advert──▶ Advertised ──ShareKeys──▶ Shared ──MaskInput──▶ Masked
//!                                                                        │ Consistency
//!            Done ◀──Unmask── Signed ◀───────────────────────────────────┘
//!  any unexpected message, failed check or expiry ─▶ Aborted (state wiped)
//! ```
//!
//! It knows only its neighbours (spec §9.8.1): it checks their advertisements against the
//! roster, shares its secrets with them, masks against them, and counts only their
//! signatures. The invariant that protects its neighbours against a lying asker: for any
//! neighbour `v` whose shares it holds, it reveals the share of `v`'s self-mask seed only
//! if `v` is in the survivor bitmap U3 that at least `t` of its own holders signed, and the
//! share of `v`'s mask-key seed only if `v` is not — and it signs exactly one U3 per query.
//!
//! Its noise is its own business (spec §9.6.2): it draws a whole draw in round 2, and in
//! round 4, once U3 is signed, reveals only what the base noise of the contacts it can
//! vouch for makes up. Nothing the asker chose (cohort size, `s`, the roster) sizes it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::Scalar;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use super::cohort::{
    advert_digest, bitmap, graph_seed, two_thirds, Cohort, Graph, Member, Params, MAX_COHORT,
};
use super::input::{Contribution, VECTOR_LEN};
use super::keys::Context;
use super::messages::{
    consistency_message, contact_tag, member_binding, AbortReason, Advertisement, AggRequest,
    AggResponse, MilliEpsilon, NoiseDeclaration, NoiseRelease, SealedShare, SharePair,
    SignedAdvertisement, SurvivorSignature, Unmasking, ADVERTISEMENT_VERSION,
};
use super::noise::NoiseDraw;
use super::sizing::{holder_union, may_count, NoiseView};
use super::{prg, shamir, CryptoWork};
use crate::identity::{Identity, NodeId, SigningLabel};
use crate::wire::{decode_exact, encode_value};

/// A responder's own aggregation settings (spec §9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderSettings {
    /// Its ε setting; `None` = `off`.
    pub epsilon: Option<MilliEpsilon>,
    /// Fewer co-members it can vouch for than this (itself included), and it keeps its
    /// whole noise in the sum (spec §9.6.2).
    pub min_cohort: u32,
}

/// What the asker asked for in round 0 (spec §9.7, `AggRequest::Advertise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AskTerms {
    /// The asker's requested ε (None: no requirement of its own).
    pub epsilon: Option<MilliEpsilon>,
    /// Units and ratings besides `owners`.
    pub detail: bool,
}

/// The effective ε: the strictest (smallest) of the request and every member's setting;
/// `None` when nobody requires noise (spec §9.6).
pub fn effective_epsilon(
    request: Option<MilliEpsilon>,
    members: impl IntoIterator<Item = Option<MilliEpsilon>>,
) -> Option<MilliEpsilon> {
    members.into_iter().chain([request]).flatten().min()
}

/// Smallest and largest ε (in thousandths) a responder accepts from an asker or a member;
/// anything else would mean no meaningful noise, or a malformed setting (spec §9.6).
pub const EPSILON_RANGE: core::ops::RangeInclusive<MilliEpsilon> = 10..=10_000;

/// The additive sign of `u`'s pairwise mask with `v`: + when u < v (spec §9.8.3 round 2).
pub fn mask_sign_positive(u: &NodeId, v: &NodeId) -> bool {
    u < v
}

/// A share pair sealed from `from` to `to` under the share key `key` (32-byte key, then
/// 12-byte nonce; spec §9.3, §9.7.2): ChaCha20-Poly1305 of `postcard(pair)`, AAD
/// `qid ‖ asker ‖ from ‖ to`.
pub fn seal_pair(
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

/// The share pair sealed by [`seal_pair`] with the same key, sender and recipient; `None`
/// if the ciphertext does not open or holds anything but one canonical pair (spec §9.7.2).
pub fn open_pair(
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

/// Check one relayed advertisement: signed by the session key it names, for this query and
/// asker, with a valid ε, and not the asker's own: the asker is every member's contact, so a
/// member would vouch for it (spec §9.6.2, §9.8.3).
pub(crate) fn check_advert(
    ctx: &Context,
    signed: &SignedAdvertisement,
) -> Result<Advertisement, AbortReason> {
    let ad = signed
        .verify(&ctx.query_id, &ctx.asker)
        .map_err(|_| AbortReason::Inconsistent)?;
    let bad_epsilon = ad.epsilon.is_some_and(|e| !EPSILON_RANGE.contains(&e));
    let asker_itself = ad.contact_tag == contact_tag(&ctx.query_id, &ctx.asker, &ctx.asker);
    if bad_epsilon || asker_itself {
        return Err(AbortReason::Inconsistent);
    }
    Ok(ad)
}

/// Whether `params` meet the floors of spec §9.8.3 for a cohort of `n` and a member with
/// `holders` − 1 neighbours. Members' minimum cohorts are not floors any more: a member
/// below its own keeps its whole noise instead (§9.6.2).
fn params_acceptable(params: &Params, n: usize, holders: usize) -> Result<(), AbortReason> {
    let (t, s) = (params.threshold, params.min_survivors);
    let floors =
        t >= two_thirds(holders) && t as usize <= holders && s >= two_thirds(n) && s as usize <= n;
    if !floors {
        return Err(AbortReason::CohortTooSmall);
    }
    Ok(())
}

/// Whether the session's ε is valid and at least as strict as the request and every
/// setting seen.
fn epsilon_acceptable<'a>(
    params: &Params,
    request: Option<MilliEpsilon>,
    seen: impl Iterator<Item = &'a Advertisement>,
) -> bool {
    let required = effective_epsilon(request, seen.map(|a| a.epsilon));
    match (required, params.epsilon) {
        (_, Some(e)) if !EPSILON_RANGE.contains(&e) => false,
        (Some(r), Some(e)) => e <= r,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// What a member worked out about its noise in round 2 (spec §9.6.2).
#[derive(Debug)]
struct Noise {
    draw: Option<NoiseDraw>,
    declaration: NoiseDeclaration,
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
        survivors: Vec<u8>,
    },
    Finished,
}

/// One responder's part in one aggregation (spec §9.8.2, §9.8.3).
pub struct AggResponder {
    ctx: Context,
    /// The session key that names this member in the session (spec §9.7.1).
    session: Identity,
    me: NodeId,
    settings: ResponderSettings,
    terms: AskTerms,
    /// The owner's contacts by contact tag, until round 1 picks the neighbours among them.
    contacts: BTreeMap<[u8; 32], NodeId>,
    /// Neighbours that are its contacts, by session key (fixed in round 1).
    vouched: BTreeSet<NodeId>,
    noise: Option<Noise>,
    /// Modified software in attack tests: adds no noise at all.
    noiseless: bool,
    /// Modified software in attack tests: the base divisor it declares, whatever it drew.
    declared_base: Option<u32>,
    input: [u32; VECTOR_LEN],
    share_secret: x25519_dalek::StaticSecret,
    mask_seed: Scalar,
    mask_secret: x25519_dalek::StaticSecret,
    self_seed: Scalar,
    own_ad: Advertisement,
    advertisement: SignedAdvertisement,
    /// Shares other members sent to us (and our own), by sender.
    held: BTreeMap<NodeId, SharePair>,
    /// Keys to open the shares each neighbour sends us, derived in round 1 from the same
    /// agreement as the key we seal ours to it with.
    opening_keys: BTreeMap<NodeId, Zeroizing<[u8; 44]>>,
    work: CryptoWork,
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
    /// `contacts` are the owner's contacts: the co-members it can vouch for (§9.6.2).
    /// Spec: §9.8.2 step 9, §9.3.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        identity: &Identity,
        ctx: Context,
        contribution: Contribution,
        settings: ResponderSettings,
        terms: AskTerms,
        contacts: BTreeSet<NodeId>,
        rng: &mut impl CryptoRngCore,
        deadline: Instant,
    ) -> Self {
        let session = Identity::generate(rng);
        let me = session.node_id();
        let mut c = [0u8; 32];
        rng.fill_bytes(&mut c);
        let share_secret = x25519_dalek::StaticSecret::from(c);
        c.zeroize();
        let mask_seed = shamir::random_scalar(rng);
        let mask_secret = ctx.mask_secret(&mask_seed, &me);
        let self_seed = shamir::random_scalar(rng);
        let own_ad = Advertisement {
            version: ADVERTISEMENT_VERSION,
            member: me,
            contact_tag: contact_tag(&ctx.query_id, &ctx.asker, &identity.node_id()),
            identity_proof: identity.sign(
                SigningLabel::SecAggMember,
                &member_binding(&ctx.query_id, &ctx.asker, &me),
            ),
            share_key: x25519_dalek::PublicKey::from(&share_secret).to_bytes(),
            mask_key: x25519_dalek::PublicKey::from(&mask_secret).to_bytes(),
            epsilon: settings.epsilon,
            min_cohort: settings.min_cohort,
        };
        let advertisement = own_ad.sign(&session, &ctx.query_id, &ctx.asker);
        let contacts = contacts
            .into_iter()
            .map(|c| (contact_tag(&ctx.query_id, &ctx.asker, &c), c))
            .collect();
        AggResponder {
            ctx,
            session,
            me,
            settings,
            terms,
            contacts,
            vouched: BTreeSet::new(),
            noise: None,
            noiseless: false,
            declared_base: None,
            input: contribution.to_vector(),
            share_secret,
            mask_seed,
            mask_secret,
            self_seed,
            own_ad,
            advertisement,
            held: BTreeMap::new(),
            opening_keys: BTreeMap::new(),
            work: CryptoWork {
                key_generations: 3,
                signatures: 2,
                ..CryptoWork::default()
            },
            deadline,
            state: State::Advertised,
        }
    }

    /// Modified software for attack tests: this responder adds no noise, as a Sybil the
    /// asker runs would, so that the asker knows everything but the victims' inputs
    /// (spec §11.13).
    #[cfg(feature = "testing")]
    pub fn dangerous_noiseless(mut self) -> Self {
        self.noiseless = true;
        self
    }

    /// Modified software for attack tests: a contact colluding with the asker declares a
    /// base of `1/divisor` in round 3 whatever it added (spec §11.13).
    #[cfg(feature = "testing")]
    pub fn dangerous_declare_base(mut self, divisor: u32) -> Self {
        self.declared_base = Some(divisor);
        self
    }

    /// Modified software for attack tests: the session key, so that a test can play a
    /// colluding member that signs whatever the asker wants (spec §11.13).
    #[cfg(feature = "testing")]
    pub fn dangerous_session_identity(&self) -> &Identity {
        &self.session
    }

    /// The signed keys to send in round 0 (spec §9.7.1).
    pub fn advertisement(&self) -> &SignedAdvertisement {
        &self.advertisement
    }

    /// The public-key operations this session has performed so far.
    /// Benchmark support for the cost figures of §11.16; not part of the protocol.
    pub fn work(&self) -> CryptoWork {
        self.work
    }

    /// When this responder's state must be dropped (spec §9.8.1).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the session is over (finished or aborted) and can be dropped (spec §9.8.2 step 2).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    fn wipe(&mut self) {
        self.contacts.clear();
        self.mask_seed.zeroize();
        self.self_seed.zeroize();
        self.input.zeroize();
        self.held.clear();
        self.opening_keys.clear();
        self.noise = None;
        self.state = State::Finished;
    }

    fn abort(&mut self, reason: AbortReason) -> AggResponse {
        self.wipe();
        AggResponse::Abort(reason)
    }

    /// Handle the asker's request for the next round (spec §9.8.3).
    pub fn handle(
        &mut self,
        request: AggRequest,
        rng: &mut impl CryptoRngCore,
        now: Instant,
    ) -> AggResponse {
        if now >= self.deadline {
            return self.abort(AbortReason::Expired);
        }
        if self
            .terms
            .epsilon
            .is_some_and(|e| !EPSILON_RANGE.contains(&e))
        {
            return self.abort(AbortReason::Inconsistent);
        }
        if let AggRequest::Close { query_id } = request {
            if query_id != self.ctx.query_id {
                return self.abort(AbortReason::UnexpectedRound);
            }
            // The asker is done with this session: nothing more will be revealed.
            self.wipe();
            return AggResponse::Closed;
        }
        let state = std::mem::replace(&mut self.state, State::Finished);
        let result = match (state, request) {
            (
                State::Advertised,
                AggRequest::ShareKeys {
                    query_id,
                    roster,
                    params,
                    neighbours,
                },
            ) if query_id == self.ctx.query_id => self.share_keys(roster, params, &neighbours, rng),
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
            ) if query_id == self.ctx.query_id => self.consistency(cohort, u2, survivors),
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
        roster: Vec<[u8; 32]>,
        params: Params,
        neighbours: &[SignedAdvertisement],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(AggResponse, State), AbortReason> {
        let n = roster.len();
        if n > MAX_COHORT || !roster.windows(2).all(|w| w[0] < w[1]) {
            return Err(AbortReason::Inconsistent);
        }
        let me = roster
            .binary_search(&advert_digest(&self.advertisement))
            .map_err(|_| AbortReason::Inconsistent)? as u32;
        let graph = Graph::new(&graph_seed(&roster), n, params.degree as usize)
            .ok_or(AbortReason::Inconsistent)?;
        let positions = graph.neighbours(me);
        if neighbours.len() != positions.len() {
            return Err(AbortReason::Inconsistent);
        }
        let mut members = BTreeMap::from([(
            self.me,
            Member {
                position: me,
                ad: self.own_ad.clone(),
            },
        )]);
        for (&p, signed) in positions.iter().zip(neighbours) {
            if advert_digest(signed) != roster[p as usize] {
                return Err(AbortReason::Inconsistent);
            }
            self.work.verifications += 1;
            let ad = check_advert(&self.ctx, signed)?;
            if members
                .insert(ad.member, Member { position: p, ad })
                .is_some()
            {
                return Err(AbortReason::Inconsistent);
            }
        }
        // Which neighbours are its contacts: a known tag counts only with that node's proof,
        // and a contact shown twice counts for neither. Anything else is a stranger, as if
        // it carried no tag: aborting on a forged tag would tell the asker that the tag's
        // node is this member's contact, for any node id it likes to try (spec §9.8.3).
        let contacts = std::mem::take(&mut self.contacts);
        let mut proven: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for (v, m) in members.iter().filter(|(v, _)| **v != self.me) {
            if let Some(node) = contacts.get(&m.ad.contact_tag) {
                self.work.verifications += 1;
                if m.ad.is_from(node, &self.ctx.query_id, &self.ctx.asker) {
                    proven.entry(*node).or_default().push(*v);
                }
            }
        }
        drop(contacts);
        self.vouched = proven
            .into_values()
            .filter(|keys| keys.len() == 1)
            .flatten()
            .collect();
        params_acceptable(&params, n, members.len())?;
        let seen = members.values().map(|m| &m.ad);
        if !epsilon_acceptable(&params, self.terms.epsilon, seen)
            || params.detail != self.terms.detail
        {
            return Err(AbortReason::Inconsistent);
        }
        let cohort = Cohort::new(roster, graph, params, members);
        let mut holders: Vec<(&NodeId, &Member)> = cohort.members.iter().collect();
        holders.sort_by_key(|(_, m)| m.position);
        let xs: Vec<u32> = holders.iter().map(|(_, m)| m.position + 1).collect();
        // Its own threshold, from what it can check (spec §9.6.2).
        let own = self.view(&cohort).threshold();
        let t = own as usize;
        let mask_shares =
            shamir::split(&self.mask_seed, t, &xs, rng).map_err(|_| AbortReason::CohortTooSmall)?;
        let self_shares =
            shamir::split(&self.self_seed, t, &xs, rng).map_err(|_| AbortReason::CohortTooSmall)?;
        let mut out = Vec::with_capacity(holders.len() - 1);
        for (i, (v, m)) in holders.iter().enumerate() {
            let pair = SharePair {
                mask_seed: mask_shares[i].to_bytes(),
                self_seed: self_shares[i].to_bytes(),
            };
            if **v == self.me {
                self.held.insert(self.me, pair);
                continue;
            }
            self.work.agreements += 1;
            let (key, opening) = self
                .ctx
                .share_keys(&self.share_secret, &m.ad.share_key, &self.me, v)
                .ok_or(AbortReason::Inconsistent)?;
            self.opening_keys.insert(**v, opening);
            out.push(seal_pair(&self.ctx, &key, &self.me, v, &pair));
        }
        Ok((
            AggResponse::Shares {
                threshold: own,
                pairs: out,
            },
            State::Shared { cohort },
        ))
    }

    fn mask_input(
        &mut self,
        cohort: Cohort,
        shares: &[SealedShare],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(AggResponse, State), AbortReason> {
        let mut u2 = BTreeSet::from([self.me]);
        for s in shares {
            // Only neighbours have opening keys.
            let from = cohort.at(s.from).ok_or(AbortReason::Inconsistent)?;
            let key = self
                .opening_keys
                .get(&from)
                .ok_or(AbortReason::Inconsistent)?;
            if !u2.insert(from) {
                return Err(AbortReason::Inconsistent);
            }
            let pair = open_pair(&self.ctx, key, &from, &self.me, &s.ciphertext)
                .ok_or(AbortReason::Inconsistent)?;
            self.held.insert(from, pair);
        }
        if (u2.len() as u32) < cohort.params.threshold {
            return Err(AbortReason::CohortTooSmall);
        }
        let mut y = self.input;
        if !cohort.params.detail {
            // Owners only: units and ratings carry no noise, so they must carry no data.
            y[1..].fill(0);
        }
        let noise = self.draw_noise(&cohort, rng);
        if let Some(draw) = &noise.draw {
            prg::add_into(&mut y, &draw.total());
        }
        self.noise = Some(noise);
        prg::add_into(
            &mut y,
            &prg::expand(
                &self.ctx.self_mask_seed(&self.self_seed, &self.me),
                VECTOR_LEN,
            ),
        );
        for v in u2.iter().filter(|v| **v != self.me) {
            let ad = &cohort.members[v].ad;
            self.work.agreements += 1;
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
        cohort: Cohort,
        u2: BTreeSet<NodeId>,
        survivors: Vec<u8>,
    ) -> Result<(AggResponse, State), AbortReason> {
        // Survivors must have sent their masked input, so those we can check must be in u2.
        let consistent = bitmap::is_valid(&survivors, cohort.n())
            && cohort.survived(&survivors, &self.me)
            && cohort
                .members
                .keys()
                .all(|v| !cohort.survived(&survivors, v) || u2.contains(v));
        if !consistent {
            return Err(AbortReason::Inconsistent);
        }
        let count = bitmap::count(&survivors);
        if count < cohort.params.min_survivors {
            return Err(AbortReason::CohortTooSmall);
        }
        let noise = self.noise.as_ref().expect("drawn in round 2").declaration;
        let message = consistency_message(
            &self.ctx.query_id,
            &self.ctx.asker,
            &cohort.digest,
            &survivors,
            &noise,
        );
        let signature = self.session.sign(SigningLabel::SecAggConsistency, &message);
        self.work.signatures += 1;
        Ok((
            AggResponse::Consistent { noise, signature },
            State::Signed {
                cohort,
                u2,
                survivors,
            },
        ))
    }

    /// This member's view for sizing its noise (spec §9.6.2).
    fn view(&self, cohort: &Cohort) -> NoiseView {
        NoiseView {
            holders: cohort.members.len(),
            session_threshold: cohort.params.threshold,
            complete: cohort.graph.is_complete(),
            vouched: self.vouched.len(),
            min_cohort: self.settings.min_cohort,
        }
    }

    /// Round 2's noise: the whole mass, with a base of `1/w` if this member is covered and
    /// vouches for enough co-members, else all of it as base (spec §9.6.2).
    fn draw_noise(&self, cohort: &Cohort, rng: &mut impl CryptoRngCore) -> Noise {
        let view = self.view(cohort);
        let draw = cohort
            .params
            .epsilon
            .filter(|_| !self.noiseless)
            .map(|eps| {
                NoiseDraw::draw(
                    rng,
                    eps as f64 / 1000.0,
                    cohort.params.detail,
                    view.base_divisor(),
                )
            });
        let mut declaration = view.declaration(draw.is_some());
        if let Some(base_divisor) = self.declared_base {
            declaration.base_divisor = base_divisor;
        }
        Noise { declaration, draw }
    }

    fn unmask(
        &mut self,
        cohort: &Cohort,
        u2: &BTreeSet<NodeId>,
        survivors: &[u8],
        signatures: &[SurvivorSignature],
    ) -> Result<(AggResponse, State), AbortReason> {
        let mut signers = BTreeSet::new();
        let mut counted = Vec::new();
        let t = cohort.params.threshold as usize;
        let view = self.view(cohort);
        // Counting a contact's noise is safe only once `t_v` members of its own holders
        // signed this bitmap (spec §9.6.2 rule 5): that many signatures are verified.
        let own = view.threshold() as usize;
        let me = cohort.position(&self.me).expect("a member");
        for s in signatures {
            let v = &s.member;
            // Only this member's and its neighbours' signatures count, and only survivors'.
            if !cohort.survived(survivors, v) || !signers.insert(*v) {
                return Err(AbortReason::Inconsistent);
            }
            let vouched = self.vouched.contains(v);
            // `t` valid signatures are what the invariant needs, `t_v` what counting needs,
            // and contacts' are what the noise may count on; others only cost time.
            if signers.len() > t.max(own) && !vouched {
                continue;
            }
            let message = consistency_message(
                &self.ctx.query_id,
                &self.ctx.asker,
                &cohort.digest,
                survivors,
                &s.noise,
            );
            self.work.verifications += 1;
            v.verify(
                SigningLabel::SecAggConsistency,
                &message,
                &s.signature,
                "consistency",
            )
            .map_err(|_| AbortReason::Inconsistent)?;
            if vouched
                && cohort
                    .position(v)
                    .is_some_and(|u| may_count(&view, &s.noise, holder_union(&cohort.graph, me, u)))
            {
                counted.push(s.noise);
            }
        }
        if (signers.len() as u32) < cohort.params.threshold {
            return Err(AbortReason::Inconsistent);
        }
        if signers.len() < own {
            // Fewer of its holders vouch for this bitmap than its own threshold: the asker
            // could reveal its self mask while dropping a contact; count nobody.
            counted.clear();
        }
        let keep = if self.noise.is_some() {
            view.keep(&counted)
        } else {
            1.0
        };
        let (kept, removed) = match self.noise.as_ref().and_then(|n| n.draw.as_ref()) {
            Some(draw) => draw.release(keep),
            None => (0, [0; VECTOR_LEN]),
        };
        let mut reply = Unmasking {
            noise: NoiseRelease {
                kept,
                removed: removed.to_vec(),
            },
            self_seed_shares: Vec::new(),
            mask_seed_shares: Vec::new(),
        };
        for v in u2 {
            let Some(pair) = self.held.get(v) else {
                continue;
            };
            if cohort.survived(survivors, v) {
                reply.self_seed_shares.push((*v, pair.self_seed));
            } else {
                reply.mask_seed_shares.push((*v, pair.mask_seed));
            }
        }
        Ok((AggResponse::Unmasked(reply), State::Finished))
    }
}
