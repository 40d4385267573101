//! Key schedule of one aggregation (spec §9.3). Every derived key is HKDF-SHA256 with a
//! distinct salt, and info binding the query, the asker and the responders concerned, so
//! no key or mask seed is ever reused across queries, pairs or purposes.
//!
//! | key | salt | IKM | info |
//! | --- | --- | --- | --- |
//! | mask key `s_u` (X25519 secret) | `kith/v1/secagg/mask-key` | `s_seed_u` (32-byte scalar) | `qid ‖ asker ‖ u` |
//! | self-mask seed | `kith/v1/secagg/self-mask` | `b_u` (32-byte scalar) | `qid ‖ asker ‖ u` |
//! | pairwise mask seed | `kith/v1/secagg/pairwise` | `X25519(s_u, S_v)` | `qid ‖ asker ‖ min(u,v) ‖ max(u,v)` |
//! | share-encryption key ‖ nonce | `kith/v1/secagg/share` | `X25519(c_from, C_to)` | `qid ‖ asker ‖ from ‖ to` |

use curve25519_dalek::Scalar;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// An AEAD key (32 bytes) and nonce (12 bytes) for one direction of share sealing (spec §9.3).
pub type ShareKey = Zeroizing<[u8; 44]>;

use crate::identity::NodeId;
use crate::message::QueryId;

/// Everything an aggregation's keys are bound to (spec §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub query_id: QueryId,
    pub asker: NodeId,
}

impl Context {
    fn info(&self, parties: &[&NodeId]) -> Vec<u8> {
        let mut info = Vec::with_capacity(16 + 32 * (1 + parties.len()));
        info.extend_from_slice(&self.query_id.0);
        info.extend_from_slice(self.asker.as_bytes());
        for p in parties {
            info.extend_from_slice(p.as_bytes());
        }
        info
    }

    fn derive<const N: usize>(
        &self,
        salt: &str,
        ikm: &[u8],
        parties: &[&NodeId],
    ) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        Hkdf::<Sha256>::new(Some(salt.as_bytes()), ikm)
            .expand(&self.info(parties), out.as_mut())
            .expect("N <= 255 * 32");
        out
    }

    /// The X25519 mask secret of responder `u`, from its shared seed scalar (spec §9.3).
    pub fn mask_secret(&self, seed: &Scalar, u: &NodeId) -> x25519_dalek::StaticSecret {
        let bytes = self.derive::<32>("kith/v1/secagg/mask-key", seed.as_bytes(), &[u]);
        x25519_dalek::StaticSecret::from(*bytes)
    }

    /// The PRG seed of responder `u`'s self mask (spec §9.3).
    pub fn self_mask_seed(&self, b: &Scalar, u: &NodeId) -> Zeroizing<[u8; 32]> {
        self.derive("kith/v1/secagg/self-mask", b.as_bytes(), &[u])
    }

    /// The PRG seed of the pairwise mask between `u` and `v`, from their agreement.
    /// `None` when the agreement is all zeros (a low-order key; spec §9.3).
    pub fn pairwise_seed(
        &self,
        my_secret: &x25519_dalek::StaticSecret,
        their_public: &[u8; 32],
        u: &NodeId,
        v: &NodeId,
    ) -> Option<Zeroizing<[u8; 32]>> {
        let shared = my_secret.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        if !shared.was_contributory() {
            return None;
        }
        let (lo, hi) = if u < v { (u, v) } else { (v, u) };
        Some(self.derive("kith/v1/secagg/pairwise", shared.as_bytes(), &[lo, hi]))
    }

    /// AEAD keys and nonces for the shares `u` sends `v` and those `v` sends `u`, from one
    /// agreement. `None` when the agreement is all zeros (a low-order key; spec §9.3, §9.7.2).
    pub fn share_keys(
        &self,
        my_secret: &x25519_dalek::StaticSecret,
        their_public: &[u8; 32],
        u: &NodeId,
        v: &NodeId,
    ) -> Option<(ShareKey, ShareKey)> {
        let shared = my_secret.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        if !shared.was_contributory() {
            return None;
        }
        Some((
            self.derive("kith/v1/secagg/share", shared.as_bytes(), &[u, v]),
            self.derive("kith/v1/secagg/share", shared.as_bytes(), &[v, u]),
        ))
    }

    /// AEAD key and nonce for the shares `from` sends `to` (spec §9.3, §9.7.2).
    pub fn share_key(
        &self,
        my_secret: &x25519_dalek::StaticSecret,
        their_public: &[u8; 32],
        from: &NodeId,
        to: &NodeId,
    ) -> Option<Zeroizing<[u8; 44]>> {
        let shared = my_secret.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        if !shared.was_contributory() {
            return None;
        }
        Some(self.derive("kith/v1/secagg/share", shared.as_bytes(), &[from, to]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_seeds_agree_and_are_bound() {
        let ctx = Context {
            query_id: QueryId([1; 16]),
            asker: NodeId([9; 32]),
        };
        let (u, v) = (NodeId([1; 32]), NodeId([2; 32]));
        let su = ctx.mask_secret(&Scalar::from(5u64), &u);
        let sv = ctx.mask_secret(&Scalar::from(6u64), &v);
        let pu = x25519_dalek::PublicKey::from(&su).to_bytes();
        let pv = x25519_dalek::PublicKey::from(&sv).to_bytes();
        let a = ctx.pairwise_seed(&su, &pv, &u, &v).unwrap();
        let b = ctx.pairwise_seed(&sv, &pu, &v, &u).unwrap();
        assert_eq!(*a, *b);
        let other = Context {
            query_id: QueryId([2; 16]),
            ..ctx
        };
        assert_ne!(*a, *other.pairwise_seed(&su, &pv, &u, &v).unwrap());
        assert!(ctx.pairwise_seed(&su, &[0; 32], &u, &v).is_none());
        assert_ne!(
            *ctx.share_key(&su, &pv, &u, &v).unwrap(),
            *ctx.share_key(&sv, &pu, &v, &u).unwrap()
        );
    }
}
