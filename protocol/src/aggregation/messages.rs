//! Messages of the aggregation rounds (spec §9.7). The asker sends one request per round
//! to each responder and the responder answers on the same stream:
//!
//! | round | asker → responder | responder → asker |
//! | --- | --- | --- |
//! | 0 advertise | [`AggRequest::Advertise`]: query, ε request | [`AggResponse::Advertised`]: named answer + signed keys |
//! | 1 share keys | [`AggRequest::ShareKeys`]: roster of U1, parameters, the neighbours' signed keys | [`AggResponse::Shares`]: one sealed share pair per neighbour, in roster order |
//! | 2 masked input | [`AggRequest::MaskInput`]: shares addressed to it (from U2), each with its sender's roster position | [`AggResponse::Masked`]: masked vector |
//! | 3 consistency | [`AggRequest::Consistency`]: survivors U3 as a bitmap | [`AggResponse::Consistent`]: noise declaration and signature over U3 and it |
//! | 4 unmask | [`AggRequest::Unmask`]: the neighbours' signatures over U3 (≥ t) | [`AggResponse::Unmasked`]: self-mask shares of U3, key shares of U2∖U3, noise released |
//!
//! Advertisements and consistency signatures are signed by the member's session key (its
//! node identity signs only that key's binding), because the asker relays them to the
//! other responders; everything else travels only
//! between the responder and the asker on their authenticated connection, or sealed
//! responder-to-responder.

use serde::{Deserialize, Serialize};

pub use super::cohort::Params;
use crate::error::PeerMisbehaved;
use crate::identity::{Identity, NodeId, Signature, SigningLabel};
use crate::item::ItemKey;
use crate::message::{Answer, QueryId};
use crate::wire::{decode_exact, encode_value};

/// ε in thousandths (ε = 1.0 is 1000), so that no float crosses the wire (spec §9.6).
pub type MilliEpsilon = u32;

/// A request from the asker in one round (spec §9.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggRequest {
    /// 0: the query; `epsilon` is the asker's requested ε (None: no requirement);
    /// `detail` asks for units and ratings besides `owners`, paid from the same ε (§9.6.1).
    Advertise {
        query_id: QueryId,
        item: ItemKey,
        epsilon: Option<MilliEpsilon>,
        detail: bool,
    },
    /// 1: the cohort U1 as its roster (advertisement digests, ascending), the session's
    /// parameters, and the signed advertisements of the recipient's neighbours in roster
    /// order (spec §9.8.1).
    ShareKeys {
        query_id: QueryId,
        roster: Vec<[u8; 32]>,
        params: Params,
        neighbours: Vec<SignedAdvertisement>,
    },
    /// 2: the sealed shares addressed to this responder, one per neighbour in U2, in
    /// ascending order of their senders' roster positions.
    MaskInput {
        query_id: QueryId,
        shares: Vec<SealedShare>,
    },
    /// 3: the survivors U3 whose masked input arrived, as a bitmap over roster positions.
    Consistency {
        query_id: QueryId,
        survivors: Vec<u8>,
    },
    /// 4: the consistency signatures of the members of U3 among the recipient and its
    /// neighbours, each with the noise declaration it covers, in ascending member order:
    /// every one the asker has, at least t (spec §9.8.4).
    Unmask {
        query_id: QueryId,
        signatures: Vec<SurvivorSignature>,
    },
    /// After the last round, or once the aggregate is withheld: the asker is done with
    /// this session, and the member may drop it now rather than when it expires (spec
    /// §9.8.2): an ask that ends frees its place among the asker's open sessions at once.
    Close { query_id: QueryId },
}

impl AggRequest {
    /// The round it belongs to, 0 to 4 (spec §9.7); 5 for `Close`, which is no round.
    pub fn round(&self) -> u8 {
        match self {
            AggRequest::Advertise { .. } => 0,
            AggRequest::ShareKeys { .. } => 1,
            AggRequest::MaskInput { .. } => 2,
            AggRequest::Consistency { .. } => 3,
            AggRequest::Unmask { .. } => 4,
            AggRequest::Close { .. } => 5,
        }
    }
}

/// A responder's reply (spec §9.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggResponse {
    /// 0: the named part of the answer (§8.3) and this responder's signed keys.
    Advertised {
        answer: Answer,
        advertisement: SignedAdvertisement,
    },
    /// 1: this member's own Shamir threshold `t_v` (at least the session's, at most its
    /// holders; spec §9.6.2) and one sealed share pair ([`SEALED_PAIR_LEN`] bytes) per
    /// neighbour, in ascending order of the neighbours' roster positions. Who each is for is
    /// implied by that order, so no node id travels with it (spec §9.7.2).
    Shares { threshold: u32, pairs: Vec<Vec<u8>> },
    /// 2: the masked, noised input vector.
    Masked(Vec<u32>),
    /// 3: signature over the survivor list and this member's noise declaration.
    Consistent {
        noise: NoiseDeclaration,
        signature: Signature,
    },
    /// 4: the shares that let the asker remove masks.
    Unmasked(Unmasking),
    /// The responder stops taking part in this query.
    Abort(AbortReason),
    /// The reply to [`AggRequest::Close`]: the session is gone.
    Closed,
}

/// Why a responder left a round (spec §9.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbortReason {
    /// 0: the message is for a round this responder is not in (replay, reorder, unknown query).
    UnexpectedRound,
    /// 1: fewer members or survivors than the session's parameters need, or parameters
    ///    below the floors of spec §9.8.3 (a responder's minimum cohort is not one: below
    ///    it, it keeps its whole noise, §9.6.2).
    CohortTooSmall,
    /// 2: a signature, share or list failed its checks; the asker lied or relayed forgeries.
    Inconsistent,
    /// 3: the asker exceeded this responder's `asks-per-day`.
    RateLimited,
    /// 4: the query's time is up and its state was dropped.
    Expired,
    /// 5: this ask would take the asker past this responder's `epsilon-per-day` (spec
    ///    §9.10); `RateLimited` is then only for `asks-per-day`.
    PrivacyBudget,
    /// 6: the asker already has as many aggregations open with this responder as it
    ///    allows at once (spec §9.10).
    TooManyOpen,
}

/// The version every [`Advertisement`] carries (spec §9.7.1).
pub const ADVERTISEMENT_VERSION: u16 = 2;

/// Keys a responder advertises in round 0 (spec §9.7.1).
///
/// A member is named in the session by a fresh Ed25519 key, `member`, not by its node id:
/// co-members learn only which of them are their own contacts (through `contact_tag` and
/// `identity_proof`), never the node ids of the others (spec §9.8.1, §11.13). The session
/// (query id and asker) is not carried but signed: every signature over an advertisement
/// covers it (see [`advert_signing_message`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertisement {
    pub version: u16,
    /// The member's session key: an Ed25519 public key drawn for this session only, which
    /// signs the advertisement and the member's consistency signature, and stands for the
    /// member wherever the key schedule names one (spec §9.3).
    pub member: NodeId,
    /// [`contact_tag`] of the member's node id: whoever knows that id recognises it.
    pub contact_tag: [u8; 32],
    /// The node's identity signature over [`member_binding`]: the session key is its own.
    pub identity_proof: Signature,
    /// X25519 public key `C_u` for share encryption (its secret is `c_u`).
    pub share_key: [u8; 32],
    /// X25519 public key `S_u` for pairwise masks (its secret is `s_u`).
    pub mask_key: [u8; 32],
    /// The responder's own ε setting (None: `off`).
    pub epsilon: Option<MilliEpsilon>,
    /// The responder's minimum cohort setting: fewer members it can vouch for than this,
    /// and it adds its whole noise alone (spec §9.6.2).
    pub min_cohort: u32,
}

/// An advertisement as signed (exact bytes, as everywhere; spec §9.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAdvertisement {
    pub body: Vec<u8>,
    pub signature: Signature,
}

/// The tag by which a member's contacts recognise it among their neighbours (spec §9.7.1):
/// `SHA-256("kith/v1/secagg/contact-tag" || 0x00 || qid || asker || node)`. It depends only
/// on the session and the node id, so a member computes its contacts' tags once and looks
/// each neighbour's up; to anyone who does not know the node id it is a random string.
pub fn contact_tag(query_id: &QueryId, asker: &NodeId, node: &NodeId) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kith/v1/secagg/contact-tag\0");
    h.update(query_id.0);
    h.update(asker.as_bytes());
    h.update(node.as_bytes());
    h.finalize().into()
}

/// What a node's identity signs to own its session key `member` (spec §9.7.1):
/// `qid || asker || member` (16 + 32 + 32 bytes).
pub fn member_binding(query_id: &QueryId, asker: &NodeId, member: &NodeId) -> Vec<u8> {
    let mut m = Vec::with_capacity(80);
    m.extend_from_slice(&query_id.0);
    m.extend_from_slice(asker.as_bytes());
    m.extend_from_slice(member.as_bytes());
    m
}

/// What the session key signs (after the label, spec §2.3): `qid || asker || body`, so that
/// an advertisement is valid for one session only without carrying it.
pub fn advert_signing_message(query_id: &QueryId, asker: &NodeId, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(48 + body.len());
    m.extend_from_slice(&query_id.0);
    m.extend_from_slice(asker.as_bytes());
    m.extend_from_slice(body);
    m
}

impl Advertisement {
    /// Sign this advertisement for session (`query_id`, `asker`) with the member's session
    /// key (spec §9.7.1, §2.3).
    pub fn sign(
        &self,
        session: &Identity,
        query_id: &QueryId,
        asker: &NodeId,
    ) -> SignedAdvertisement {
        let body = encode_value(self);
        let signature = session.sign(
            SigningLabel::SecAggAdvertise,
            &advert_signing_message(query_id, asker, &body),
        );
        SignedAdvertisement { body, signature }
    }

    /// Whether this advertisement is `node`'s in session (`query_id`, `asker`): its tag is
    /// `node`'s and `node`'s identity signed its session key (spec §9.7.1).
    pub fn is_from(&self, node: &NodeId, query_id: &QueryId, asker: &NodeId) -> bool {
        self.contact_tag == contact_tag(query_id, asker, node)
            && node
                .verify(
                    SigningLabel::SecAggMember,
                    &member_binding(query_id, asker, &self.member),
                    &self.identity_proof,
                    "session key binding",
                )
                .is_ok()
    }
}

impl SignedAdvertisement {
    /// Decode and check the signature by the session key named inside, for session
    /// (`query_id`, `asker`) (spec §9.7.1). Whose node it is, is checked by
    /// [`Advertisement::is_from`].
    pub fn verify(
        &self,
        query_id: &QueryId,
        asker: &NodeId,
    ) -> Result<Advertisement, PeerMisbehaved> {
        let ad: Advertisement = decode_exact(&self.body)?;
        if ad.version != ADVERTISEMENT_VERSION {
            return Err(PeerMisbehaved::Malformed("unknown advertisement version"));
        }
        ad.member.verify(
            SigningLabel::SecAggAdvertise,
            &advert_signing_message(query_id, asker, &self.body),
            &self.signature,
            "advertisement",
        )?;
        Ok(ad)
    }
}

impl Advertisement {
    /// Whether both advertised keys are usable, i.e. not of small order. The asker screens
    /// advertisements with this so one member's bad key cannot make every other abort
    /// (spec §9.8.4); members find such a key anyway when they use it.
    pub fn keys_usable(&self) -> bool {
        usable_key(&self.share_key) && usable_key(&self.mask_key)
    }
}

/// Whether an X25519 public key is not of small order: its agreement with any secret is
/// then not all zeros (RFC 7748 §6.1). A fixed secret suffices, since a small-order point
/// gives zero for every clamped scalar.
fn usable_key(public: &[u8; 32]) -> bool {
    x25519_dalek::StaticSecret::from([1u8; 32])
        .diffie_hellman(&x25519_dalek::PublicKey::from(*public))
        .was_contributory()
}

/// What a member tells the others about its noise in round 3 (spec §9.6.2, §9.7.3), signed
/// with the survivor list: the base mass it never removes, and the threshold it shared its
/// own secrets with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NoiseDeclaration {
    /// `w`: its base mass is `1/w`. 0 means "count nothing on my noise": it adds none, or
    /// the asker could learn its masked input alone (it is not *covered*, §9.6.2).
    pub base_divisor: u32,
    /// `t_v`: the threshold it shared its own secrets with.
    pub threshold: u32,
}

/// A consistency signature as the asker relays it in round 4 (spec §9.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurvivorSignature {
    pub member: NodeId,
    pub noise: NoiseDeclaration,
    pub signature: Signature,
}

/// A member's noise after the survivor list is fixed (spec §9.6.2, §9.7.4): the mass it
/// left in the sum, and the values of the components it revealed, which the asker
/// subtracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoiseRelease {
    /// Mass kept, in millionths (at most 1 000 000).
    pub kept: u32,
    /// Per cell, the sum of the revealed components (wrapping, two's complement).
    pub removed: Vec<u32>,
}

/// A share pair as the asker relays it in round 2 (spec §9.7.2): sealed by the member at
/// roster position `from` for the recipient, under their share keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedShare {
    /// The sender's roster position.
    pub from: u32,
    /// ChaCha20-Poly1305 of postcard([`SharePair`]), AAD = qid ‖ asker ‖ from ‖ to (node
    /// ids); [`SEALED_PAIR_LEN`] bytes.
    pub ciphertext: Vec<u8>,
}

/// Bytes of a sealed [`SharePair`]: 64 bytes of plaintext and a 16-byte tag (spec §9.7.2).
pub const SEALED_PAIR_LEN: usize = 64 + 16;

/// The plaintext of a sealed share: the sender's two secrets evaluated at the recipient's
/// index (spec §9.7.2).
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
pub struct SharePair {
    /// Share of the mask-key seed `s_seed_from` (canonical scalar bytes).
    pub mask_seed: [u8; 32],
    /// Share of the self-mask seed `b_from`.
    pub self_seed: [u8; 32],
}

impl core::fmt::Debug for SharePair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharePair(<redacted>)")
    }
}

/// Round-4 reply: for each member, exactly one kind of share, and what this member reveals
/// of its own noise (spec §9.7.4). `Debug` shows only whose shares are present, never their
/// values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmasking {
    /// The noise this member released.
    pub noise: NoiseRelease,
    /// (v, share of b_v) for every v in U3 whose share this responder holds.
    pub self_seed_shares: Vec<(NodeId, [u8; 32])>,
    /// (v, share of s_seed_v) for every v in U2 ∖ U3.
    pub mask_seed_shares: Vec<(NodeId, [u8; 32])>,
}

/// The message a consistency signature covers (spec §9.7.3):
/// `postcard((qid, asker, cohort_digest, survivors, noise))` with `survivors` the bitmap.
/// Binding the cohort digest means a signature from one session can never be replayed into
/// another with the same query id, and that a member counts another's noise only if both
/// saw the same roster and parameters.
pub fn consistency_message(
    query_id: &QueryId,
    asker: &NodeId,
    cohort_digest: &[u8; 32],
    survivors: &[u8],
    noise: &NoiseDeclaration,
) -> Vec<u8> {
    encode_value(&(query_id, asker, cohort_digest, survivors, noise))
}

impl core::fmt::Debug for Unmasking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let who = |l: &[(NodeId, [u8; 32])]| l.iter().map(|(v, _)| v.short()).collect::<Vec<_>>();
        f.debug_struct("Unmasking")
            .field("noise_kept", &self.noise.kept)
            .field("self_seed_shares_of", &who(&self.self_seed_shares))
            .field("mask_seed_shares_of", &who(&self.mask_seed_shares))
            .finish()
    }
}
