//! The cohort of one aggregation: its roster, its neighbour graph and its public parameters
//! (spec §9.8.1).
//!
//! Every member shares its secrets with, and masks its input against, its **neighbours**
//! only. Up to [`DENSE_MAX`] members the graph is complete (Bonawitz et al., CCS 2017).
//! Above, each member has [`degree`]`(n)` neighbours in a Harary graph over a random
//! cycle (SecAgg+, Bell et al., CCS 2020), so a responder's public-key and field work
//! grows with its neighbourhood, not with the cohort. The cycle is drawn from a seed that
//! hashes every member's signed advertisement: the responders chose the keys inside, so
//! no single party picks the graph (spec §11.16 says what an asker can still do).
//!
//! The **roster** names the cohort: the digests of the members' signed advertisements,
//! strictly ascending. A member's **position** is its place in the roster (0-based); its
//! Shamir share index is `position + 1`.

use std::collections::BTreeMap;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::messages::{AggRequest, MilliEpsilon, SignedAdvertisement};
use crate::identity::NodeId;
use crate::message::QueryId;
use crate::wire::encode_value;

/// Largest cohort one aggregation admits (spec §9.8.1): a member's round-1 request, the
/// roster plus its neighbours' advertisements, must fit one peer frame (§5.1).
pub const MAX_COHORT: usize = 1000;

/// Largest cohort the reference asker aggregates over the complete graph; above it, it
/// uses the sparse graph. An asker policy, not a rule: members accept either graph
/// whenever [`degree_admissible`]. Chosen by measurement (spec §11.16): with a federation
/// of 100 on one 2-core machine, an ask took 1.78 s over the complete graph and 0.53 s
/// over the sparse one (then of degree 32), whose guarantees hold with the probabilities of
/// [`SECURE_DEGREES`]; so the complete graph is kept only where no sparse degree exists.
pub const DENSE_MAX: usize = 50;

/// Smallest cohort that may use a sparse graph (spec §9.8.1).
pub const SPARSE_FROM: usize = 51;

/// Security degrees of sparse cohorts: `(largest n, degree)`. Each is the smallest even
/// degree such that, for every `n` from the row before up to its bound, with a tenth of the
/// cohort colluding with the asker and a tenth dropping out, at random, the chance that
/// some member's neighbourhood holds enough colluders to unmask it (`2t − h − 1`, one fewer
/// than in the complete graph, spec §11.16) is at most 2⁻⁴⁰ and
/// the chance that some neighbourhood keeps too few survivors to unmask at most 2⁻²⁰
/// (spec §11.16; checked by a test). Both bounds are for members sharing with the session
/// threshold `t`; a member that raises its own (spec §9.6.2) trades dropout tolerance for
/// counting its contacts' noise, and tolerates only `h − t_v` missing holders.
pub const SECURE_DEGREES: [(usize, usize); 11] = [
    (75, 22),
    (100, 32),
    (150, 44),
    (200, 62),
    (250, 74),
    (300, 80),
    (400, 92),
    (500, 104),
    (600, 110),
    (750, 116),
    (1000, 122),
];

/// The largest degree a sparse graph uses: the security degree of the largest cohort, so
/// that no member's per-ask work (O(k), spec §11.16) exceeds what a cohort of
/// [`MAX_COHORT`] costs it.
pub const MAX_SPARSE_DEGREE: usize = SECURE_DEGREES[SECURE_DEGREES.len() - 1].1;

/// The noise mass, as a fraction `(numerator, denominator)`, that a sparse graph of
/// members who all know each other may leave in the sum: 5/2. At ε = 1 a mass of at most
/// 5/2 keeps the 90 % range within ±3 (spec §9.6.4; a mass of 3 widens it to ±4). Every
/// member of such a cohort counts its `k` neighbours and keeps `1/(k + 1)` of a draw, so the
/// mass is `n/(k + 1)` (spec §9.8.1).
pub const SPARSE_MASS: (usize, usize) = (5, 2);

/// The smallest degree `k ≡ 2 (mod 6)` with `n/(k + 1)` at most [`SPARSE_MASS`]. With
/// `h = k + 1` a multiple of 3 the session threshold `⌊2h/3⌋ + 1` gives the most colluder
/// margin per holder, so a raised degree never has a worse colluder or dropout tail than
/// the security degree it replaces (spec §9.8.1, §11.16; checked by a test). Every security
/// degree but 22 is of that form too.
fn precision_degree(n: usize) -> usize {
    let (num, den) = SPARSE_MASS;
    let holders = (n * den).div_ceil(num);
    let k = holders.saturating_sub(1);
    k + (8 - k % 6) % 6
}

/// The degree of the sparse graph for a cohort of `n`: the security degree of
/// [`SECURE_DEGREES`], raised to the precision degree (the mass of [`SPARSE_MASS`]) where
/// that is at most [`MAX_SPARSE_DEGREE`]; `None` if `n` is below [`SPARSE_FROM`] or above
/// [`MAX_COHORT`] (spec §9.8.1).
pub fn sparse_degree(n: usize) -> Option<usize> {
    if n < SPARSE_FROM {
        return None;
    }
    let secure = SECURE_DEGREES
        .iter()
        .find(|(max, _)| n <= *max)
        .map(|(_, k)| *k)?;
    Some(secure.max(precision_degree(n).min(MAX_SPARSE_DEGREE)))
}

/// Whether a cohort of `n` may use graphs of this degree: the complete graph (`n − 1`), or
/// the sparse graph of [`sparse_degree`]. Nothing in between, so an asker has at most two
/// graphs to choose from for one roster (spec §9.8.1).
pub fn degree_admissible(n: usize, degree: usize) -> bool {
    (1..=MAX_COHORT).contains(&n) && (degree + 1 == n || Some(degree) == sparse_degree(n))
}

/// The reference asker's choice: complete up to [`DENSE_MAX`], sparse above (spec §9.8.1, §9.8.4).
pub fn reference_degree(n: usize) -> Option<usize> {
    match n {
        0 => None,
        1..=DENSE_MAX => Some(n - 1),
        _ => sparse_degree(n),
    }
}

/// More than two thirds of `m` (spec §9.4).
pub fn two_thirds(m: usize) -> u32 {
    (2 * m / 3 + 1) as u32
}

/// The public parameters of a session, fixed by the asker in round 1 and checked by every
/// member against what it can see (spec §9.8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Neighbours per member: `n − 1` for the complete graph, else the sparse degree.
    pub degree: u32,
    /// Shamir threshold `t`: shares needed to rebuild a member's secret, among the
    /// member and its neighbours.
    pub threshold: u32,
    /// Smallest survivor list members accept (a dropout floor; noise does not depend on it).
    pub min_survivors: u32,
    /// The effective ε the members add noise for (None: no noise).
    pub epsilon: Option<MilliEpsilon>,
    /// Whether units and ratings are aggregated besides `owners` (spec §9.6.1).
    pub detail: bool,
}

impl Params {
    /// What the reference asker chooses for a cohort of `n` (1 ≤ n ≤ [`MAX_COHORT`]) with
    /// its own minimum cohort `min_cohort` (≤ n) and effective ε `epsilon`, owners only.
    /// Spec: §9.4, §9.8.4 step 4.
    pub fn choose(n: usize, min_cohort: u32, epsilon: Option<MilliEpsilon>) -> Params {
        let degree = reference_degree(n).unwrap_or(0);
        Self::with_degree(n, degree, min_cohort, epsilon)
    }

    /// The same with a given degree (see [`degree_admissible`]; spec §9.4).
    pub fn with_degree(
        n: usize,
        degree: usize,
        min_cohort: u32,
        epsilon: Option<MilliEpsilon>,
    ) -> Params {
        let holders = degree + 1;
        Params {
            degree: degree as u32,
            threshold: two_thirds(holders).max(min_cohort.min(holders as u32)),
            min_survivors: two_thirds(n).max(min_cohort),
            epsilon,
            detail: false,
        }
    }
}

/// SHA-256 of `"kith/v1/secagg/advert" || 0x00 || postcard(signed)`: a member's entry in
/// the roster (spec §9.8.1).
pub fn advert_digest(signed: &SignedAdvertisement) -> [u8; 32] {
    labelled_hash(b"kith/v1/secagg/advert\0", &encode_value(signed))
}

/// SHA-256 of `"kith/v1/secagg/cohort" || 0x00 || postcard((roster, params))`: names one
/// session and is bound into every consistency signature (spec §9.7.3).
pub fn cohort_digest(roster: &[[u8; 32]], params: &Params) -> [u8; 32] {
    labelled_hash(b"kith/v1/secagg/cohort\0", &encode_value(&(roster, params)))
}

/// SHA-256 of `"kith/v1/secagg/graph" || 0x00 || roster[0] || … || roster[n−1]` (spec §9.8.1).
pub fn graph_seed(roster: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kith/v1/secagg/graph\0");
    for entry in roster {
        h.update(entry);
    }
    h.finalize().into()
}

fn labelled_hash(label: &[u8], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(body);
    h.finalize().into()
}

/// Uniform draws from the ChaCha20 keystream of a seed (key = seed, nonce 0, counter 0),
/// read as little-endian u32 words.
struct Words {
    cipher: ChaCha20,
    block: [u8; 64],
    used: usize,
}

impl Words {
    fn new(seed: &[u8; 32]) -> Self {
        Words {
            cipher: ChaCha20::new(seed.into(), &[0u8; 12].into()),
            block: [0; 64],
            used: 64,
        }
    }

    fn next(&mut self) -> u32 {
        if self.used == 64 {
            self.block = [0; 64];
            self.cipher.apply_keystream(&mut self.block);
            self.used = 0;
        }
        let w = &self.block[self.used..self.used + 4];
        self.used += 4;
        u32::from_le_bytes([w[0], w[1], w[2], w[3]])
    }

    /// Uniform in `0..bound` by rejection: words at or above the largest multiple of
    /// `bound` that fits in 2³² are drawn again.
    fn below(&mut self, bound: u32) -> u32 {
        let limit = (1u64 << 32) - (1u64 << 32) % bound as u64;
        loop {
            let w = self.next();
            if (w as u64) < limit {
                return w % bound;
            }
        }
    }
}

/// The neighbour graph of a cohort of `n` (spec §9.8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    n: usize,
    degree: usize,
    /// Member position at each place on the cycle (empty for the complete graph).
    cycle: Vec<u32>,
    /// Place on the cycle of each member position.
    place: Vec<u32>,
}

impl Graph {
    /// The graph of a cohort of `n` with graph seed `seed`; `None` unless
    /// [`degree_admissible`] (spec §9.8.1).
    pub fn new(seed: &[u8; 32], n: usize, degree: usize) -> Option<Graph> {
        if !degree_admissible(n, degree) {
            return None;
        }
        if degree + 1 == n {
            return Some(Graph {
                n,
                degree,
                cycle: Vec::new(),
                place: Vec::new(),
            });
        }
        // Fisher–Yates from the last place down.
        let mut cycle: Vec<u32> = (0..n as u32).collect();
        let mut words = Words::new(seed);
        for i in (1..n).rev() {
            let j = words.below(i as u32 + 1) as usize;
            cycle.swap(i, j);
        }
        let mut place = vec![0u32; n];
        for (p, &member) in cycle.iter().enumerate() {
            place[member as usize] = p as u32;
        }
        Some(Graph {
            n,
            degree,
            cycle,
            place,
        })
    }

    /// The cohort size `n` (spec §9.8.1).
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the cohort has no members (spec §9.8.1).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The degree `k`: how many neighbours every member has (spec §9.8.1).
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The member position at each place of the cycle (empty for the complete graph; spec §9.8.1).
    pub fn cycle(&self) -> &[u32] {
        &self.cycle
    }

    /// Whether this is the complete graph, `k = n − 1` (spec §9.8.1).
    pub fn is_complete(&self) -> bool {
        self.cycle.is_empty()
    }

    /// The neighbours of the member at `position`, ascending, without itself (spec §9.8.1).
    pub fn neighbours(&self, position: u32) -> Vec<u32> {
        if self.is_complete() {
            return (0..self.n as u32).filter(|p| *p != position).collect();
        }
        let n = self.n as i64;
        let here = self.place[position as usize] as i64;
        let half = (self.degree / 2) as i64;
        let mut out: Vec<u32> = (1..=half)
            .flat_map(|d| [here + d, here - d])
            .map(|p| self.cycle[p.rem_euclid(n) as usize])
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether the members at positions `a` and `b` (distinct) are neighbours (spec §9.8.1).
    pub fn adjacent(&self, a: u32, b: u32) -> bool {
        if a == b {
            return false;
        }
        if self.is_complete() {
            return true;
        }
        let (pa, pb) = (self.place[a as usize], self.place[b as usize]);
        let d = pa.abs_diff(pb) as usize;
        d.min(self.n - d) <= self.degree / 2
    }
}

/// The survivor list U3 as a bitmap over roster positions (spec §9.7.3): byte `p / 8`, bit
/// `p % 8` (least significant first) is set iff the member at position `p` survived;
/// `⌈n/8⌉` bytes, bits past `n` clear.
pub mod bitmap {
    /// The bitmap of `n` members with the bits of `positions` set (spec §9.7.3).
    pub fn from_positions(n: usize, positions: impl IntoIterator<Item = u32>) -> Vec<u8> {
        let mut bits = vec![0u8; n.div_ceil(8)];
        for p in positions {
            bits[p as usize / 8] |= 1 << (p % 8);
        }
        bits
    }

    /// Whether the bit of position `p` is set (spec §9.7.3).
    pub fn contains(bits: &[u8], p: u32) -> bool {
        bits.get(p as usize / 8)
            .is_some_and(|b| b & (1 << (p % 8)) != 0)
    }

    /// Whether `bits` is a well-formed bitmap for `n` members (spec §9.7.3).
    pub fn is_valid(bits: &[u8], n: usize) -> bool {
        bits.len() == n.div_ceil(8)
            && (n.is_multiple_of(8) || bits.last().is_none_or(|last| last >> (n % 8) == 0))
    }

    /// How many bits are set: the number of survivors named (spec §9.7.3).
    pub fn count(bits: &[u8]) -> u32 {
        bits.iter().map(|b| b.count_ones()).sum()
    }
}

/// The asker's plan of a session (spec §9.8.4): the roster of U1, its graph and parameters,
/// and what each member is sent in round 1. Public so that tests and other askers can build
/// (and tamper with) round-1 requests.
#[derive(Debug, Clone)]
pub struct Plan {
    pub roster: Vec<[u8; 32]>,
    pub graph: Graph,
    pub params: Params,
    /// Node id and signed advertisement of each member, by roster position.
    pub members: Vec<(NodeId, SignedAdvertisement)>,
}

impl Plan {
    /// Order `members` (node id, its signed advertisement) into a roster; `None` when there
    /// are none, more than [`MAX_COHORT`], or two equal advertisements (spec §9.8.1).
    pub fn new(members: Vec<(NodeId, SignedAdvertisement)>, params: Params) -> Option<Plan> {
        let mut entries: Vec<([u8; 32], (NodeId, SignedAdvertisement))> = members
            .into_iter()
            .map(|m| (advert_digest(&m.1), m))
            .collect();
        entries.sort_by_key(|e| e.0);
        if entries.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        let roster: Vec<[u8; 32]> = entries.iter().map(|e| e.0).collect();
        let graph = Graph::new(&graph_seed(&roster), roster.len(), params.degree as usize)?;
        Some(Plan {
            roster,
            graph,
            params,
            members: entries.into_iter().map(|e| e.1).collect(),
        })
    }

    /// The roster position of member `v` (spec §9.8.1).
    pub fn position(&self, v: &NodeId) -> Option<u32> {
        self.members
            .iter()
            .position(|m| m.0 == *v)
            .map(|p| p as u32)
    }

    /// The neighbours of the member at `position`, by node id, in roster order (spec §9.8.1).
    pub fn neighbours(&self, position: u32) -> Vec<NodeId> {
        let ids = self.graph.neighbours(position);
        ids.into_iter()
            .map(|q| self.members[q as usize].0)
            .collect()
    }

    /// The round-1 request for the member at `position` (spec §9.8.4).
    pub fn share_keys(&self, query_id: QueryId, position: u32) -> AggRequest {
        AggRequest::ShareKeys {
            query_id,
            roster: self.roster.clone(),
            params: self.params,
            neighbours: self
                .graph
                .neighbours(position)
                .into_iter()
                .map(|q| self.members[q as usize].1.clone())
                .collect(),
        }
    }

    /// Round 2 as the asker relays it (spec §9.8.4): from each member's round-1 `Shares`
    /// (one sealed pair per neighbour, in the neighbours' roster order), the shares each
    /// member is sent, in ascending order of their senders' positions. The replies must
    /// have passed the asker's round-1 checks (one pair of [`SEALED_PAIR_LEN`] bytes per
    /// neighbour): a reply with fewer pairs is relayed only as far as it goes.
    ///
    /// [`SEALED_PAIR_LEN`]: super::messages::SEALED_PAIR_LEN
    pub fn relay_shares(
        &self,
        replies: &BTreeMap<NodeId, Vec<Vec<u8>>>,
    ) -> BTreeMap<NodeId, Vec<super::messages::SealedShare>> {
        let mut out: BTreeMap<NodeId, Vec<super::messages::SealedShare>> = BTreeMap::new();
        for (p, (u, _)) in self.members.iter().enumerate() {
            let Some(sealed) = replies.get(u) else {
                continue;
            };
            for (v, ciphertext) in self.neighbours(p as u32).into_iter().zip(sealed) {
                out.entry(v)
                    .or_default()
                    .push(super::messages::SealedShare {
                        from: p as u32,
                        ciphertext: ciphertext.clone(),
                    });
            }
        }
        out
    }

    /// The survivor bitmap of `survivors` (spec §9.7.3).
    pub fn survivor_bits<'a>(&self, survivors: impl IntoIterator<Item = &'a NodeId>) -> Vec<u8> {
        let positions: Vec<u32> = survivors
            .into_iter()
            .filter_map(|v| self.position(v))
            .collect();
        bitmap::from_positions(self.roster.len(), positions)
    }

    /// The cohort digest of this roster and these parameters (spec §9.7.3).
    pub fn digest(&self) -> [u8; 32] {
        cohort_digest(&self.roster, &self.params)
    }
}

/// One member of a cohort as a party sees it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub position: u32,
    pub ad: super::messages::Advertisement,
}

/// What one party knows of a session's cohort: the asker knows every member, a responder
/// itself and its neighbours.
#[derive(Debug, Clone)]
pub(crate) struct Cohort {
    pub roster: Vec<[u8; 32]>,
    pub graph: Graph,
    pub params: Params,
    pub digest: [u8; 32],
    pub members: BTreeMap<NodeId, Member>,
}

impl Cohort {
    /// A party's view of a cohort, with the cohort digest computed (spec §9.7.3).
    pub fn new(
        roster: Vec<[u8; 32]>,
        graph: Graph,
        params: Params,
        members: BTreeMap<NodeId, Member>,
    ) -> Cohort {
        let digest = cohort_digest(&roster, &params);
        Cohort {
            roster,
            graph,
            params,
            digest,
            members,
        }
    }

    /// The cohort size `n`: the number of roster entries (spec §9.8.1).
    pub fn n(&self) -> usize {
        self.roster.len()
    }

    /// The member at roster position `p`, if this party knows it (spec §9.8.1).
    pub fn at(&self, p: u32) -> Option<NodeId> {
        self.members
            .iter()
            .find(|(_, m)| m.position == p)
            .map(|(v, _)| *v)
    }

    /// The roster position of member `v`, if this party knows it (spec §9.8.1).
    pub fn position(&self, v: &NodeId) -> Option<u32> {
        self.members.get(v).map(|m| m.position)
    }

    /// Shamir share index of `v` (spec §9.4).
    pub fn index(&self, v: &NodeId) -> Option<u32> {
        self.position(v).map(|p| p + 1)
    }

    /// The survivor bitmap of `survivors` (spec §9.7.3).
    pub fn survivor_bits(&self, survivors: &[NodeId]) -> Vec<u8> {
        bitmap::from_positions(self.n(), survivors.iter().filter_map(|v| self.position(v)))
    }

    /// Whether `v`'s bit is set in the bitmap `bits` (spec §9.7.3).
    pub fn survived(&self, bits: &[u8], v: &NodeId) -> bool {
        self.position(v).is_some_and(|p| bitmap::contains(bits, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every round-1 request of the sparse graph fits one peer frame, for every cohort size
    /// and every advertisement as long as its fields allow (spec §9.7, §9.8.1); the largest
    /// is at `MAX_COHORT`.
    #[test]
    fn every_sparse_share_keys_request_fits_a_peer_frame() {
        use crate::aggregation::messages::{Advertisement, ADVERTISEMENT_VERSION};
        use crate::identity::{Identity, Signature};
        let session = Identity::from_secret_bytes(&[7u8; 64]).unwrap();
        let (qid, asker) = (QueryId([1; 16]), NodeId([2; 32]));
        let longest = Advertisement {
            version: ADVERTISEMENT_VERSION,
            member: session.node_id(),
            contact_tag: [0xff; 32],
            identity_proof: Signature([0xff; 64]),
            share_key: [0xff; 32],
            mask_key: [0xff; 32],
            epsilon: Some(u32::MAX),
            min_cohort: u32::MAX,
        }
        .sign(&session, &qid, &asker);
        let size = |n: usize| {
            let k = sparse_degree(n).unwrap();
            let request = AggRequest::ShareKeys {
                query_id: qid,
                roster: vec![[0xff; 32]; n],
                params: Params::with_degree(n, k, u32::MAX, Some(u32::MAX)),
                neighbours: vec![longest.clone(); k],
            };
            crate::wire::encode_message(&crate::message::PeerRequest::Aggregate(request)).len()
        };
        let largest = (SPARSE_FROM..=MAX_COHORT).map(size).max().unwrap();
        assert_eq!(largest, size(MAX_COHORT));
        assert!(
            largest <= crate::frame::MAX_PEER_FRAME as usize,
            "{largest} bytes"
        );
    }

    #[test]
    fn degrees_cover_every_admissible_cohort() {
        assert_eq!(reference_degree(0), None);
        assert_eq!(reference_degree(1), Some(0));
        assert_eq!(reference_degree(DENSE_MAX), Some(DENSE_MAX - 1));
        assert_eq!(
            reference_degree(DENSE_MAX + 1),
            sparse_degree(DENSE_MAX + 1)
        );
        assert_eq!(DENSE_MAX + 1, SPARSE_FROM);
        assert_eq!(reference_degree(MAX_COHORT), Some(122));
        assert_eq!(reference_degree(MAX_COHORT + 1), None);
        assert_eq!(sparse_degree(SPARSE_FROM - 1), None);
        assert!(degree_admissible(100, 99) && degree_admissible(100, 44));
        assert!(!degree_admissible(100, 32) && !degree_admissible(40, 12));
        assert!(!degree_admissible(0, 0) && !degree_admissible(1001, 116));
        for n in SPARSE_FROM..=MAX_COHORT {
            let k = sparse_degree(n).unwrap();
            assert!(k.is_multiple_of(2) && k + 1 < n, "n = {n}");
            assert_eq!(
                reference_degree(n).unwrap(),
                if n <= DENSE_MAX { n - 1 } else { k }
            );
        }
    }

    #[test]
    fn sparse_graph_is_regular_symmetric_and_seeded() {
        for n in [51usize, 101, 150, 333, 1000] {
            let k = sparse_degree(n).unwrap();
            let g = Graph::new(&[n as u8; 32], n, k).unwrap();
            assert!(!g.is_complete());
            for p in 0..n as u32 {
                let ns = g.neighbours(p);
                assert_eq!(ns.len(), g.degree(), "regular");
                assert!(ns.windows(2).all(|w| w[0] < w[1]) && !ns.contains(&p));
                for q in &ns {
                    assert!(g.adjacent(p, *q) && g.adjacent(*q, p), "symmetric");
                }
            }
            let edges: usize = (0..n as u32)
                .map(|p| (0..n as u32).filter(|q| g.adjacent(p, *q)).count())
                .sum();
            assert_eq!(edges, n * g.degree());
            assert_ne!(g, Graph::new(&[n as u8 + 1; 32], n, k).unwrap());
        }
        assert!(
            Graph::new(&[0; 32], 7, 4).is_none(),
            "7 is too small for a sparse graph"
        );
        let g = Graph::new(&[0; 32], 7, 6).unwrap();
        assert!(g.is_complete());
        assert_eq!(g.neighbours(3), vec![0, 1, 2, 4, 5, 6]);
    }

    #[test]
    fn bitmaps_round_trip_and_reject_padding() {
        let bits = bitmap::from_positions(10, [0, 3, 9]);
        assert_eq!(bits, vec![0b0000_1001, 0b0000_0010]);
        assert!(bitmap::is_valid(&bits, 10));
        assert!(!bitmap::is_valid(&bits, 9), "bit 9 is past n = 9");
        assert!(!bitmap::is_valid(&bits, 17));
        assert!(bitmap::contains(&bits, 9) && !bitmap::contains(&bits, 8));
        assert_eq!(bitmap::count(&bits), 3);
        assert!(bitmap::is_valid(&[0xff], 8));
    }

    #[test]
    fn params_meet_both_floors() {
        let p = Params::choose(31, 5, None);
        assert_eq!((p.threshold, p.min_survivors), (21, 21));
        let p = Params::choose(9, 8, Some(1000));
        assert_eq!((p.threshold, p.min_survivors), (8, 8));
        let p = Params::choose(1000, 5, None);
        assert_eq!((p.threshold, p.min_survivors), (83, 667));
        let p = Params::choose(1000, 200, None);
        assert_eq!(
            (p.threshold, p.min_survivors),
            (123, 667),
            "t is capped at k + 1"
        );
        let p = Params::with_degree(100, 32, 5, None);
        assert_eq!((p.degree, p.threshold, p.min_survivors), (32, 23, 67));
    }

    /// Where the cap allows, a cohort who all know each other leaves at most 5/2 of a draw
    /// in the sum, `n/(k + 1)`, with the smallest degree `≡ 2 (mod 6)` that does (spec
    /// §9.8.1).
    #[test]
    fn sparse_degrees_keep_the_mass_of_a_circle_within_five_halves() {
        let (num, den) = SPARSE_MASS;
        let within = |n: usize, k: usize| n * den <= (k + 1) * num;
        let mut capped = 0;
        for n in SPARSE_FROM..=MAX_COHORT {
            let k = sparse_degree(n).unwrap();
            assert!(k <= MAX_SPARSE_DEGREE);
            let secure = SECURE_DEGREES.iter().find(|r| n <= r.0).unwrap().1;
            if within(n, MAX_SPARSE_DEGREE) {
                assert!(within(n, k), "n = {n}, k = {k}");
                assert!(
                    k == secure || (k % 6 == 2 && !within(n, k - 6)),
                    "n = {n}: {k} is more than the mass needs"
                );
            } else {
                assert_eq!(k, MAX_SPARSE_DEGREE, "n = {n}");
                capped += 1;
            }
        }
        assert_eq!(
            (sparse_degree(60), sparse_degree(100)),
            (Some(26), Some(44))
        );
        assert_eq!(
            (sparse_degree(292), sparse_degree(293)),
            (Some(116), Some(122))
        );
        assert_eq!(capped, MAX_COHORT - 307, "the mass holds up to 307 members");
    }

    /// The degree table meets its stated bounds (spec §11.16): for every sparse `n`, with
    /// `c = ⌊n/10⌋` colluders and `d = ⌊n/10⌋` dropouts placed at random, the union bound over
    /// members of P[a neighbourhood holds ≥ 2t − h − 1 colluders] ≤ 2⁻⁴⁰ and of P[more than
    /// h − t of its neighbours drop out] ≤ 2⁻²⁰, and no smaller even degree meets both.
    #[test]
    fn sparse_degrees_meet_their_bounds() {
        let ln_factorial: Vec<f64> = std::iter::once(0.0)
            .chain((1..=MAX_COHORT).scan(0.0, |acc, i| {
                *acc += (i as f64).ln();
                Some(*acc)
            }))
            .collect();
        let ln_choose =
            |n: usize, k: usize| ln_factorial[n] - ln_factorial[k] - ln_factorial[n - k];
        // P[X ≥ x] for X hypergeometric: k draws from N with K marked.
        let tail = |big_n: usize, big_k: usize, k: usize, x: usize| -> f64 {
            (x..=big_k.min(k))
                .map(|i| {
                    (ln_choose(big_k, i) + ln_choose(big_n - big_k, k - i) - ln_choose(big_n, k))
                        .exp()
                })
                .sum()
        };
        let meets = |n: usize, k: usize| {
            let h = k + 1;
            let t = two_thirds(h) as usize;
            let bad = n / 10;
            let private = n as f64 * tail(n - 1, bad, k, 2 * t - h - 1) <= 2f64.powi(-40);
            let live = n as f64 * tail(n - 1, bad, k, h - t + 1) <= 2f64.powi(-20);
            private && live
        };
        // A raised degree meets the bounds too, and is no worse than the security degree
        // on any tail: colluders (10, 15, 20 %) and dropouts (10, 15 %), at the session
        // threshold and at a circle's counting threshold `⌊(3h + 1)/4⌋ + 1`.
        let colluded = |n: usize, k: usize, share: usize| {
            let (h, t) = (k + 1, two_thirds(k + 1) as usize);
            n as f64 * tail(n - 1, n * share / 100, k, 2 * t - h - 1)
        };
        let stranded = |n: usize, k: usize, share: usize, t: usize| {
            n as f64 * tail(n - 1, n * share / 100, k, k + 1 - t + 1)
        };
        let counting = |k: usize| crate::aggregation::sizing::quarter(k as u32 + 1) as usize;
        for n in SPARSE_FROM..=MAX_COHORT {
            let k = sparse_degree(n).unwrap();
            assert!(meets(n, k), "raised degree {k} fails the bounds at n = {n}");
            let s = SECURE_DEGREES.iter().find(|r| n <= r.0).unwrap().1;
            let no_worse = |a: f64, b: f64| a <= b * (1.0 + 1e-9) + 1e-300;
            for share in [10, 15, 20] {
                assert!(
                    no_worse(colluded(n, k, share), colluded(n, s, share)),
                    "n = {n}, {share} %"
                );
            }
            for share in [10, 15] {
                let (tk, ts) = (two_thirds(k + 1) as usize, two_thirds(s + 1) as usize);
                assert!(no_worse(
                    stranded(n, k, share, tk),
                    stranded(n, s, share, ts)
                ));
                let (ck, cs) = (counting(k), counting(s));
                assert!(
                    no_worse(stranded(n, k, share, ck), stranded(n, s, share, cs)),
                    "n = {n}"
                );
            }
        }
        let mut lower = SPARSE_FROM - 1;
        for (upper, k) in SECURE_DEGREES {
            let mut tight = false;
            for n in lower + 1..=upper {
                assert!(meets(n, k), "degree {k} too small for n = {n}");
                tight |= !meets(n, k - 2);
            }
            assert!(tight, "degree {k} for n ≤ {upper} could be smaller");
            lower = upper;
        }
    }
}
