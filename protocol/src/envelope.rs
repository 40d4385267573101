//! Sealed envelopes (spec §7): encryption to a node's X25519 sealing key, for data routed
//! through a party that must not read it. No v1 message carries one yet; the aggregation's
//! shares are sealed under their own per-query keys instead (spec §9.7.2).
//!
//! ```text
//! e        = fresh X25519 secret;  E = X25519(e, 9)
//! Z        = X25519(e, R)                       (abort if all zero)
//! PRK      = HKDF-Extract(salt = "kith/v1/envelope", IKM = Z)
//! OKM      = HKDF-Expand(PRK, info = len(label) || label || E || R, 44)
//! key, n   = OKM[0..32], OKM[32..44]
//! C        = ChaCha20-Poly1305(key, n, aad, plaintext)
//! envelope = { E, C }
//! ```
//! Every envelope has a fresh ephemeral key, so each (key, nonce) pair is used once.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::PeerMisbehaved;
use crate::identity::{Identity, SealingPublicKey};

/// HKDF salt for envelopes (spec §7.1).
pub const ENVELOPE_SALT: &[u8] = b"kith/v1/envelope";
/// Longest label (spec §7.1).
pub const MAX_LABEL_LEN: usize = 255;

/// An encrypted payload for one recipient (spec §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEnvelope {
    /// The sender's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// ChaCha20-Poly1305 ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// Sealing failed because the recipient key is a low-order point (no shared secret; spec §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("recipient sealing key is not a valid X25519 public key")]
pub struct BadRecipientKey;

fn derive(
    shared: &[u8; 32],
    label: &str,
    eph: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; 44]> {
    assert!(label.len() <= MAX_LABEL_LEN, "envelope label too long");
    let hk = Hkdf::<Sha256>::new(Some(ENVELOPE_SALT), shared);
    let mut info = Vec::with_capacity(1 + label.len() + 64);
    info.push(label.len() as u8);
    info.extend_from_slice(label.as_bytes());
    info.extend_from_slice(eph);
    info.extend_from_slice(recipient);
    let mut okm = Zeroizing::new([0u8; 44]);
    hk.expand(&info, okm.as_mut())
        .expect("44 bytes is a valid HKDF-SHA256 length");
    okm
}

/// Seal `plaintext` to `recipient` under a purpose `label`, binding `aad` (spec §7.1).
pub fn seal(
    rng: &mut impl CryptoRngCore,
    recipient: &SealingPublicKey,
    label: &str,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedEnvelope, BadRecipientKey> {
    let mut e = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(e.as_mut());
    let secret = x25519_dalek::StaticSecret::from(*e);
    let eph = x25519_dalek::PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(recipient.0));
    if !shared.was_contributory() {
        return Err(BadRecipientKey);
    }
    let okm = derive(shared.as_bytes(), label, &eph, &recipient.0);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]));
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&okm[32..]),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of an in-memory buffer");
    Ok(SealedEnvelope {
        ephemeral: eph,
        ciphertext,
    })
}

/// Open an envelope addressed to `identity`. Any tampering, wrong label, wrong aad or wrong
/// recipient gives [`PeerMisbehaved::EnvelopeTampered`] (spec §7.1).
pub fn open(
    identity: &Identity,
    label: &str,
    aad: &[u8],
    envelope: &SealedEnvelope,
) -> Result<Zeroizing<Vec<u8>>, PeerMisbehaved> {
    let shared = identity
        .agree(&SealingPublicKey(envelope.ephemeral))
        .ok_or(PeerMisbehaved::EnvelopeTampered)?;
    let recipient = identity.sealing_public_key();
    let okm = derive(&shared, label, &envelope.ephemeral, &recipient.0);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]));
    cipher
        .decrypt(
            Nonce::from_slice(&okm[32..]),
            Payload {
                msg: &envelope.ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| PeerMisbehaved::EnvelopeTampered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_core::OsRng;

    #[test]
    fn round_trip_and_binding() {
        let bob = Identity::generate(&mut OsRng);
        let eve = Identity::generate(&mut OsRng);
        let env = seal(
            &mut OsRng,
            &bob.sealing_public_key(),
            "share",
            b"q1",
            b"secret",
        )
        .unwrap();
        assert_eq!(&open(&bob, "share", b"q1", &env).unwrap()[..], b"secret");
        assert!(open(&eve, "share", b"q1", &env).is_err());
        assert!(open(&bob, "other", b"q1", &env).is_err());
        assert!(open(&bob, "share", b"q2", &env).is_err());
    }

    #[test]
    fn low_order_recipient_refused() {
        assert_eq!(
            seal(&mut OsRng, &SealingPublicKey([0; 32]), "l", b"", b"x"),
            Err(BadRecipientKey)
        );
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_detected(msg in proptest::collection::vec(any::<u8>(), 0..64), bit in 0usize..(8 * 80)) {
            let bob = Identity::generate(&mut OsRng);
            let mut env = seal(&mut OsRng, &bob.sealing_public_key(), "t", b"aad", &msg).unwrap();
            let total = 32 + env.ciphertext.len();
            let bit = bit % (total * 8);
            let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
            if byte < 32 { env.ephemeral[byte] ^= mask } else { env.ciphertext[byte - 32] ^= mask }
            prop_assert!(open(&bob, "t", b"aad", &env).is_err());
        }
    }
}
