//! The text form of codes people copy and paste (spec §3.3): a prefix, then RFC 4648 base32
//! (uppercase, no padding) of `payload || checksum`, where the checksum is the first four
//! bytes of SHA-256(payload). The alphabet is a subset of the QR alphanumeric set, so a code
//! fits a QR code in its dense alphanumeric mode.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a text code could not be read (spec §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCodeError {
    Prefix,
    Alphabet,
    Checksum,
    TooLong,
}

/// Encode `payload` as `prefix || base32(payload || checksum)` (spec §3.3).
pub fn encode(prefix: &str, payload: &[u8]) -> String {
    let mut data = payload.to_vec();
    data.extend_from_slice(&Sha256::digest(payload)[..4]);
    let mut out = String::with_capacity(prefix.len() + data.len() * 8 / 5 + 1);
    out.push_str(prefix);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for byte in data {
        acc = (acc << 8) | byte as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decode a code produced by [`encode`]. Whitespace and `-` anywhere are ignored and letters
/// may be lowercase, so codes survive line wrapping and retyping. Input longer than
/// `max_chars` is rejected before any allocation proportional to it (spec §3.3).
pub fn decode(prefix: &str, text: &str, max_chars: usize) -> Result<Vec<u8>, TextCodeError> {
    if text.len() > max_chars * 2 {
        return Err(TextCodeError::TooLong);
    }
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if cleaned.len() > max_chars {
        return Err(TextCodeError::TooLong);
    }
    let body = cleaned.strip_prefix(prefix).ok_or(TextCodeError::Prefix)?;
    let mut out = Vec::with_capacity(body.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in body.bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or(TextCodeError::Alphabet)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // Leftover bits must be zero padding of fewer than 5 bits.
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return Err(TextCodeError::Alphabet);
    }
    if out.len() < 4 {
        return Err(TextCodeError::Checksum);
    }
    let (payload, check) = out.split_at(out.len() - 4);
    if Sha256::digest(payload)[..4] != *check {
        return Err(TextCodeError::Checksum);
    }
    out.truncate(out.len() - 4);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let code = encode("KITH1", &data);
            prop_assert_eq!(decode("KITH1", &code, 1000).unwrap(), data.clone());
            prop_assert_eq!(decode("KITH1", &code.to_lowercase(), 1000).unwrap(), data);
        }

        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = decode("KITH1", &s, 1000);
        }
    }

    #[test]
    fn single_typo_is_caught() {
        let code = encode("KITH1", b"hello world, this is an invite");
        let mut chars: Vec<char> = code.chars().collect();
        let i = 10;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            decode("KITH1", &typo, 1000),
            Err(TextCodeError::Checksum | TextCodeError::Alphabet)
        ));
        assert_eq!(decode("KITH1", "NOPE", 1000), Err(TextCodeError::Prefix));
        assert_eq!(
            decode("KITH1", "KITH1!!", 1000),
            Err(TextCodeError::Alphabet)
        );
    }
}
