//! Mask expansion (spec §9.5): a 32-byte seed becomes a vector over Z/2³² as the ChaCha20
//! keystream (RFC 8439 block function, key = seed, nonce = 12 zero bytes, counter from 0),
//! read as consecutive little-endian u32 words.
//!
//! Every seed is itself the output of a labelled HKDF bound to one query and one pair (or
//! one responder), so no (key, nonce) pair is ever used for two masks.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use zeroize::Zeroizing;

/// The mask for `seed`, `len` words long (spec §9.5).
pub fn expand(seed: &[u8; 32], len: usize) -> Vec<u32> {
    let mut bytes = Zeroizing::new(vec![0u8; len * 4]);
    let mut cipher = ChaCha20::new(seed.into(), &[0u8; 12].into());
    cipher.apply_keystream(&mut bytes);
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `acc += mask` (wrapping; spec §9.5).
pub fn add_into(acc: &mut [u32], mask: &[u32]) {
    for (a, m) in acc.iter_mut().zip(mask) {
        *a = a.wrapping_add(*m);
    }
}

/// `acc -= mask` (wrapping; spec §9.5).
pub fn sub_from(acc: &mut [u32], mask: &[u32]) {
    for (a, m) in acc.iter_mut().zip(mask) {
        *a = a.wrapping_sub(*m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8439_keystream_and_masks_cancel() {
        // RFC 8439 section 2.3.2 uses a non-zero nonce; with an all-zero key and nonce the first
        // keystream word is the well-known 0xade0b876 (little-endian 76 b8 e0 ad).
        assert_eq!(expand(&[0; 32], 1), vec![0xade0_b876]);
        let seed = [7u8; 32];
        let m = expand(&seed, 9);
        assert_eq!(m.len(), 9);
        assert_eq!(&expand(&seed, 20)[..9], &m[..], "prefix-stable");
        let mut acc = vec![5u32; 9];
        add_into(&mut acc, &m);
        sub_from(&mut acc, &m);
        assert_eq!(acc, vec![5u32; 9]);
    }
}
