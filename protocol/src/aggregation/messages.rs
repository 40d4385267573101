//! Messages of the aggregation rounds (spec §9.7). The asker sends one request per round
//! to each responder and the responder answers on the same stream:
//!
//! | round | asker → responder | responder → asker |
//! | --- | --- | --- |
//! | 0 advertise | [`AggRequest::Advertise`]: query, ε request | [`AggResponse::Advertised`]: named answer + signed keys |
//! | 1 share keys | [`AggRequest::ShareKeys`]: signed cohort U1, threshold | [`AggResponse::Shares`]: one sealed share pair per member |
//! | 2 masked input | [`AggRequest::MaskInput`]: shares addressed to it (from U2) | [`AggResponse::Masked`]: masked vector |
//! | 3 consistency | [`AggRequest::Consistency`]: survivors U3 | [`AggResponse::Consistent`]: signature over U3 |
//! | 4 unmask | [`AggRequest::Unmask`]: ≥ t signatures over U3 | [`AggResponse::Unmasked`]: self-mask shares of U3, key shares of U2∖U3 |
//!
//! Advertisements and consistency signatures are signed by the responder's identity,
//! because the asker relays them to the other responders; everything else travels only
//! between the responder and the asker on their authenticated connection, or sealed
//! responder-to-responder.

use serde::{Deserialize, Serialize};

use crate::error::PeerMisbehaved;
use crate::identity::{Identity, NodeId, Signature, SigningLabel};
use crate::item::ItemKey;
use crate::message::{Answer, QueryId};
use crate::wire::{decode_exact, encode_value};

/// ε in thousandths (ε = 1.0 is 1000), so that no float crosses the wire.
pub type MilliEpsilon = u32;

/// A request from the asker in one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggRequest {
    /// 0: the query; `epsilon` is the asker's requested ε (None: no requirement).
    Advertise {
        query_id: QueryId,
        item: ItemKey,
        epsilon: Option<MilliEpsilon>,
    },
    /// 1: the cohort U1 (sorted by node id) and the threshold t.
    ShareKeys {
        query_id: QueryId,
        cohort: Vec<SignedAdvertisement>,
        threshold: u32,
    },
    /// 2: the sealed shares addressed to this responder, one per member of U2.
    MaskInput {
        query_id: QueryId,
        shares: Vec<SealedShares>,
    },
    /// 3: the survivors U3 whose masked input arrived (sorted).
    Consistency {
        query_id: QueryId,
        survivors: Vec<NodeId>,
    },
    /// 4: consistency signatures of at least t members of U3.
    Unmask {
        query_id: QueryId,
        signatures: Vec<(NodeId, Signature)>,
    },
}

/// A responder's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggResponse {
    /// 0: the named part of the answer (§8.3) and this responder's signed keys.
    Advertised {
        answer: Answer,
        advertisement: SignedAdvertisement,
    },
    /// 1: one sealed share pair per other member of U1.
    Shares(Vec<SealedShares>),
    /// 2: the masked, noised input vector.
    Masked(Vec<u32>),
    /// 3: signature over the survivor list.
    Consistent(Signature),
    /// 4: the shares that let the asker remove masks.
    Unmasked(Unmasking),
    /// The responder stops taking part in this query.
    Abort(AbortReason),
}

/// Why a responder left a round (spec §9.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbortReason {
    /// 0: the message is for a round this responder is not in (replay, reorder, unknown query).
    UnexpectedRound,
    /// 1: fewer members than the threshold, or the threshold is below ⌊2n/3⌋ + 1 or the
    ///    responder's minimum cohort.
    CohortTooSmall,
    /// 2: a signature, share or list failed its checks; the asker lied or relayed forgeries.
    Inconsistent,
    /// 3: the asker exceeded this responder's per-day budget of asks, or has too many
    ///    aggregations open with it at once.
    RateLimited,
    /// 4: the query's time is up and its state was dropped.
    Expired,
}

/// Keys a responder advertises in round 0 (spec §9.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertisement {
    pub version: u16,
    pub query_id: QueryId,
    pub asker: NodeId,
    pub responder: NodeId,
    /// X25519 public key for share encryption (c_u).
    pub share_key: [u8; 32],
    /// X25519 public key for pairwise masks (s_u).
    pub mask_key: [u8; 32],
    /// The responder's own ε setting (None: `off`).
    pub epsilon: Option<MilliEpsilon>,
    /// The responder's minimum cohort setting.
    pub min_cohort: u32,
}

/// An advertisement as signed (exact bytes, as everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAdvertisement {
    pub body: Vec<u8>,
    pub signature: Signature,
}

impl Advertisement {
    pub fn sign(&self, identity: &Identity) -> SignedAdvertisement {
        let body = encode_value(self);
        let signature = identity.sign(SigningLabel::SecAggAdvertise, &body);
        SignedAdvertisement { body, signature }
    }
}

impl SignedAdvertisement {
    /// Decode and check the signature by the responder named inside.
    pub fn verify(&self) -> Result<Advertisement, PeerMisbehaved> {
        let ad: Advertisement = decode_exact(&self.body)?;
        if ad.version != 1 {
            return Err(PeerMisbehaved::Malformed("unknown advertisement version"));
        }
        ad.responder.verify(
            SigningLabel::SecAggAdvertise,
            &self.body,
            &self.signature,
            "advertisement",
        )?;
        Ok(ad)
    }
}

/// Shares from `from` to `to`, sealed under their share keys (spec §9.7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedShares {
    pub from: NodeId,
    pub to: NodeId,
    /// ChaCha20-Poly1305 of postcard([`SharePair`]), AAD = qid ‖ asker ‖ from ‖ to.
    pub ciphertext: Vec<u8>,
}

/// The plaintext of [`SealedShares`]: `from`'s two secrets evaluated at `to`'s index.
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

/// Round-4 reply: for each member, exactly one kind of share (spec §9.7.4). `Debug` shows
/// only whose shares are present, never their values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmasking {
    /// (v, share of b_v) for every v in U3 whose share this responder holds.
    pub self_seed_shares: Vec<(NodeId, [u8; 32])>,
    /// (v, share of s_seed_v) for every v in U2 ∖ U3.
    pub mask_seed_shares: Vec<(NodeId, [u8; 32])>,
}

/// A digest of one session's round-1 cohort (spec §9.7.3): SHA-256 of
/// `"kith/v1/secagg/cohort" || 0x00 || postcard((cohort, threshold))`, over the signed
/// advertisements exactly as relayed. The advertisements carry fresh per-session keys, so
/// the digest names one session; it also proves every signer saw the same cohort.
pub fn cohort_digest(cohort: &[SignedAdvertisement], threshold: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kith/v1/secagg/cohort\0");
    h.update(encode_value(&(cohort, threshold)));
    h.finalize().into()
}

/// The message a consistency signature covers (spec §9.7.3):
/// `postcard((qid, asker, cohort_digest, survivors))`. Binding the cohort digest means a
/// signature from one session can never be replayed into another with the same query id.
pub fn consistency_message(
    query_id: &QueryId,
    asker: &NodeId,
    cohort_digest: &[u8; 32],
    survivors: &[NodeId],
) -> Vec<u8> {
    encode_value(&(query_id, asker, cohort_digest, survivors))
}

impl core::fmt::Debug for Unmasking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let who = |l: &[(NodeId, [u8; 32])]| l.iter().map(|(v, _)| v.short()).collect::<Vec<_>>();
        f.debug_struct("Unmasking")
            .field("self_seed_shares_of", &who(&self.self_seed_shares))
            .field("mask_seed_shares_of", &who(&self.mask_seed_shares))
            .finish()
    }
}
