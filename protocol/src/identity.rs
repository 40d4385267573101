//! Node identities (spec §2).
//!
//! A node is identified by its Ed25519 public key ([`NodeId`]). It also holds an X25519 key
//! ([`SealingPublicKey`]) used to receive sealed envelopes; that key is signed into the node's
//! [`ContactCard`](crate::ContactCard). Every signature is made over a domain label followed by
//! the exact bytes being signed ([`SigningLabel`]), so a signature for one purpose can never be
//! replayed as another.

use core::fmt;

use rand_core::CryptoRngCore;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::PeerMisbehaved;

/// An Ed25519 public key: the identity of a node or of an app credential (spec §2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// The 32 key bytes (spec §2.1).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, the form shown to people and used in JSON output (spec §2.1).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parse 64 hex digits (spec §2.1).
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = unhex(s)?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// A short form for humans: the first 8 hex digits (spec §2.1).
    pub fn short(&self) -> String {
        hex(&self.0[..4])
    }

    /// False for the small-order Ed25519 points (and for bytes that are not a point at
    /// all): for those keys anyone can forge signatures, so kith never accepts them as an
    /// identity (spec §2.1).
    pub fn is_valid_key(&self) -> bool {
        curve25519_dalek::edwards::CompressedEdwardsY(self.0)
            .decompress()
            .is_some_and(|p| !p.is_small_order())
    }

    /// Verify an Ed25519 `signature` made by this key over `label || message` (spec §2.3).
    /// Small-order keys never verify.
    pub fn verify(
        &self,
        label: SigningLabel,
        message: &[u8],
        signature: &Signature,
        what: &'static str,
    ) -> Result<(), PeerMisbehaved> {
        if !self.is_valid_key() {
            return Err(PeerMisbehaved::BadSignature(what));
        }
        let signed = label.prefix(message);
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&signed, &signature.0)
            .map_err(|_| PeerMisbehaved::BadSignature(what))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An X25519 public key to which sealed envelopes are addressed (spec §2.1, §7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SealingPublicKey(pub [u8; 32]);

impl fmt::Debug for SealingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingPublicKey({})", hex(&self.0))
    }
}

/// A 64-byte Ed25519 signature. Encoded on the wire as 64 raw bytes (postcard tuple).
/// Spec: §2.3, and `Signature` in §5.2.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex(&self.0[..8]))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = a
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// Domain-separation labels for every Ed25519 signature kith makes (spec §2.3).
///
/// The signed message is the label's ASCII bytes, one zero byte, then the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningLabel {
    /// A [`ContactCard`](crate::ContactCard) body.
    ContactCard,
    /// An [`EndorsementStatement`](crate::EndorsementStatement) body.
    Endorsement,
    /// An aggregation key advertisement (spec §9.7.1).
    SecAggAdvertise,
    /// An aggregation consistency signature over the survivor list (spec §9.7.3).
    SecAggConsistency,
    /// A node's binding of its session key in one aggregation (spec §9.7.1).
    SecAggMember,
}

impl SigningLabel {
    /// The ASCII label (spec §2.3).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningLabel::ContactCard => "kith/v1/contact-card",
            SigningLabel::Endorsement => "kith/v1/endorsement",
            SigningLabel::SecAggAdvertise => "kith/v1/secagg/advertise",
            SigningLabel::SecAggConsistency => "kith/v1/secagg/consistency",
            SigningLabel::SecAggMember => "kith/v1/secagg/member",
        }
    }

    /// `label || 0x00 || message` (spec §2.3).
    pub fn prefix(self, message: &[u8]) -> Vec<u8> {
        let label = self.as_str().as_bytes();
        let mut out = Vec::with_capacity(label.len() + 1 + message.len());
        out.extend_from_slice(label);
        out.push(0);
        out.extend_from_slice(message);
        out
    }
}

/// The secret half of a node's (or app's) identity: an Ed25519 seed and an X25519 secret.
///
/// Zeroized on drop; `Debug` shows only the public key (spec §2.1, §2.2).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    ed25519_seed: [u8; 32],
    x25519_secret: [u8; 32],
    /// Public keys derived once from the secrets above (not secret).
    #[zeroize(skip)]
    public: (NodeId, SealingPublicKey),
}

impl Identity {
    /// Length of [`Identity::to_secret_bytes`] (spec §2.2).
    pub const SECRET_LEN: usize = 64;

    /// A fresh identity from an injected cryptographic RNG (spec §2.1).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut ed25519_seed = [0u8; 32];
        let mut x25519_secret = [0u8; 32];
        rng.fill_bytes(&mut ed25519_seed);
        rng.fill_bytes(&mut x25519_secret);
        Self::from_parts(ed25519_seed, x25519_secret)
    }

    fn from_parts(ed25519_seed: [u8; 32], x25519_secret: [u8; 32]) -> Self {
        let kp = Ed25519KeyPair::from_seed_unchecked(&ed25519_seed).expect("32-byte Ed25519 seed");
        let mut id = [0u8; 32];
        id.copy_from_slice(kp.public_key().as_ref());
        let secret = x25519_dalek::StaticSecret::from(x25519_secret);
        let sealing = SealingPublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self {
            ed25519_seed,
            x25519_secret,
            public: (NodeId(id), sealing),
        }
    }

    /// Rebuild from the 64 secret bytes (seed || X25519 secret), as stored in a key file.
    /// Spec: §2.2.
    pub fn from_secret_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::SECRET_LEN {
            return None;
        }
        let mut ed25519_seed = [0u8; 32];
        let mut x25519_secret = [0u8; 32];
        ed25519_seed.copy_from_slice(&bytes[..32]);
        x25519_secret.copy_from_slice(&bytes[32..]);
        Some(Self::from_parts(ed25519_seed, x25519_secret))
    }

    /// The 64 secret bytes, for writing into a 0600 key file. Zeroized when dropped (spec §2.2).
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(64));
        v.extend_from_slice(&self.ed25519_seed);
        v.extend_from_slice(&self.x25519_secret);
        v
    }

    fn keypair(&self) -> Ed25519KeyPair {
        // The seed is 32 bytes by construction, so this cannot fail.
        Ed25519KeyPair::from_seed_unchecked(&self.ed25519_seed).expect("32-byte Ed25519 seed")
    }

    /// This identity's public key (spec §2.1).
    pub fn node_id(&self) -> NodeId {
        self.public.0
    }

    /// The X25519 public key for sealed envelopes (spec §2.1).
    pub fn sealing_public_key(&self) -> SealingPublicKey {
        self.public.1
    }

    /// X25519 agreement with `their` public key. Returns `None` for a non-contributory
    /// (all-zero) result, which a peer can force with a low-order point (spec §7.1).
    pub fn agree(&self, their: &SealingPublicKey) -> Option<Zeroizing<[u8; 32]>> {
        let secret = x25519_dalek::StaticSecret::from(self.x25519_secret);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(their.0));
        if !shared.was_contributory() {
            return None;
        }
        Some(Zeroizing::new(shared.to_bytes()))
    }

    /// Sign `label || 0x00 || message` (spec §2.3).
    pub fn sign(&self, label: SigningLabel, message: &[u8]) -> Signature {
        let sig = self.keypair().sign(&label.prefix(message));
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        Signature(out)
    }

    /// A 32-byte key for a local purpose, derived from this identity's secrets and stable
    /// across restarts (spec §2.2): HKDF-SHA256 with salt `"kith/v1/derive"`, IKM the two
    /// secrets (seed || X25519 secret), info `label`. Never sent anywhere.
    pub fn derive_key(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let mut ikm = Zeroizing::new([0u8; 64]);
        ikm[..32].copy_from_slice(&self.ed25519_seed);
        ikm[32..].copy_from_slice(&self.x25519_secret);
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"kith/v1/derive"), ikm.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(label.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF length");
        out
    }

    /// The PKCS#8 v1 DER encoding of the Ed25519 key (RFC 8410), for TLS libraries.
    /// Zeroized when dropped (spec §2.2).
    pub fn ed25519_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut v = Zeroizing::new(Vec::with_capacity(48));
        v.extend_from_slice(&PREFIX);
        v.extend_from_slice(&self.ed25519_seed);
        v
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410 §4); the raw public key
/// carried in TLS (RFC 7250) is this prefix followed by the 32 key bytes (spec §4.2).
pub const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl NodeId {
    /// The RFC 7250 SubjectPublicKeyInfo DER for this key (spec §2.1, §4.2).
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut v = ED25519_SPKI_PREFIX.to_vec();
        v.extend_from_slice(&self.0);
        v
    }

    /// Parse an Ed25519 SubjectPublicKeyInfo; anything else, and small-order keys, are
    /// rejected (spec §2.1, §4.2).
    pub fn from_spki_der(der: &[u8]) -> Option<Self> {
        if der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
            return None;
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&der[12..]);
        let id = NodeId(out);
        id.is_valid_key().then_some(id)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn sign_verify_and_label_separation() {
        let id = Identity::generate(&mut OsRng);
        let sig = id.sign(SigningLabel::ContactCard, b"hello");
        id.node_id()
            .verify(SigningLabel::ContactCard, b"hello", &sig, "t")
            .unwrap();
        assert!(id
            .node_id()
            .verify(SigningLabel::Endorsement, b"hello", &sig, "t")
            .is_err());
        assert!(id
            .node_id()
            .verify(SigningLabel::ContactCard, b"hellO", &sig, "t")
            .is_err());
    }

    #[test]
    fn secret_round_trip_and_debug_hides_secret() {
        let id = Identity::generate(&mut OsRng);
        let back = Identity::from_secret_bytes(&id.to_secret_bytes()).unwrap();
        assert_eq!(id.node_id(), back.node_id());
        assert_eq!(id.sealing_public_key(), back.sealing_public_key());
        let dbg = format!("{id:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&hex(&id.to_secret_bytes()[..8])));
    }

    #[test]
    fn small_order_keys_are_refused() {
        // The identity point: with it, (R = identity, S = 0) "verifies" any message under
        // cofactorless verification.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let key = NodeId(identity_point);
        assert!(!key.is_valid_key());
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(key
            .verify(SigningLabel::ContactCard, b"x", &Signature(sig), "t")
            .is_err());
        assert_eq!(NodeId::from_spki_der(&key.to_spki_der()), None);
        assert!(Identity::generate(&mut OsRng).node_id().is_valid_key());
    }

    #[test]
    fn spki_round_trip() {
        let id = Identity::generate(&mut OsRng).node_id();
        assert_eq!(NodeId::from_spki_der(&id.to_spki_der()), Some(id));
        assert_eq!(NodeId::from_spki_der(&id.to_spki_der()[1..]), None);
    }

    #[test]
    fn pkcs8_matches_ring() {
        let id = Identity::generate(&mut OsRng);
        let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&id.ed25519_pkcs8_der()).unwrap();
        assert_eq!(kp.public_key().as_ref(), id.node_id().as_bytes());
    }
}
