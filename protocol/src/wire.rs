//! Encoding rules (spec §5): postcard 1.x bodies, a protocol version before every message,
//! and exact decoding (no trailing bytes).

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Incompatible, PeerMisbehaved, WireError};

/// The protocol version this implementation speaks (spec §5.3).
pub const PROTOCOL_VERSION: u16 = 2;

/// postcard-encode a value. Every type kith encodes has a known length, so this cannot fail.
/// Spec: §5.2.
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("kith types always encode")
}

/// Decode exactly one value: any error or leftover byte is the sender's fault (spec §5.2).
pub fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PeerMisbehaved> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| {
        PeerMisbehaved::Malformed(match e {
            postcard::Error::DeserializeUnexpectedEnd => "unexpected end of message",
            postcard::Error::DeserializeBadVarint => "bad varint",
            postcard::Error::DeserializeBadBool => "bad bool",
            postcard::Error::DeserializeBadUtf8 => "bad UTF-8 string",
            postcard::Error::DeserializeBadEnum => "unknown enum variant",
            postcard::Error::DeserializeBadOption => "bad option tag",
            postcard::Error::SerdeDeCustom => {
                "invalid value (unknown variant, or a field out of range)"
            }
            _ => "does not decode",
        })
    })?;
    if !rest.is_empty() {
        return Err(PeerMisbehaved::TrailingBytes);
    }
    Ok(value)
}

/// A message on the wire: `varint(PROTOCOL_VERSION) || postcard(body)` (spec §5.3).
pub fn encode_message<T: Serialize>(body: &T) -> Vec<u8> {
    let mut out = postcard::to_allocvec(&PROTOCOL_VERSION).expect("u16 encodes");
    out.extend_from_slice(&encode_value(body));
    out
}

/// Read the version, refuse any version but ours, then decode the body exactly (spec §5.3).
pub fn decode_message<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (version, rest) = postcard::take_from_bytes::<u16>(bytes)
        .map_err(|_| PeerMisbehaved::Malformed("missing protocol version"))?;
    if version != PROTOCOL_VERSION {
        return Err(Incompatible::UnsupportedVersion(version).into());
    }
    Ok(decode_exact(rest)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        let bytes = encode_message(&(5u8, "hi".to_string()));
        assert_eq!(bytes, [2, 5, 2, b'h', b'i']);
        assert_eq!(
            decode_message::<(u8, String)>(&bytes).unwrap(),
            (5, "hi".into())
        );
        let mut v1 = bytes.clone();
        v1[0] = 1;
        assert_eq!(
            decode_message::<(u8, String)>(&v1),
            Err(WireError::Incompatible(Incompatible::UnsupportedVersion(1))),
            "kith/peer/1 messages are refused"
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            decode_message::<(u8, String)>(&long),
            Err(WireError::PeerMisbehaved(PeerMisbehaved::TrailingBytes))
        );
        assert!(decode_message::<(u8, String)>(&[]).is_err());
    }
}
