//! Contact cards (spec §3.1): a node's public keys, display name and addresses, signed by the
//! node's own Ed25519 key.

use serde::{Deserialize, Serialize};

use crate::error::{InvalidInput, PeerMisbehaved};
use crate::identity::{Identity, NodeId, SealingPublicKey, Signature, SigningLabel};
use crate::wire::{decode_exact, encode_value};

/// Longest display name, in characters (spec §3.1).
pub const MAX_NAME_CHARS: usize = 64;
/// Most addresses a card may list (spec §3.1).
pub const MAX_ADDRESSES: usize = 4;
/// Longest address, in bytes (spec §3.1).
pub const MAX_ADDRESS_LEN: usize = 262;
/// Default lifetime of a card: one year, in seconds (spec §3.1).
pub const DEFAULT_CARD_LIFETIME: u64 = 365 * 24 * 3600;
/// Version of the card body layout (spec §3.1).
pub const CARD_VERSION: u16 = 1;

/// The signed content of a contact card (spec §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    /// Card layout version; [`CARD_VERSION`].
    pub version: u16,
    /// The node's Ed25519 identity key.
    pub node_id: NodeId,
    /// The node's X25519 key for sealed envelopes.
    pub sealing_key: SealingPublicKey,
    /// The display name the owner chose.
    pub name: String,
    /// Where the node listens, as `host:port` strings, in order of preference.
    pub addresses: Vec<String>,
    /// When the card was made (Unix seconds).
    pub issued_at: u64,
    /// From this instant on (Unix seconds, `now >= expires_at`) the card is refused.
    pub expires_at: u64,
}

/// A card body exactly as signed, with its signature (spec §3.1). The body bytes are kept so that
/// signatures are checked over the bytes received, never over a re-encoding (spec §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCard {
    /// postcard encoding of a [`ContactCard`].
    pub body: Vec<u8>,
    /// Ed25519 signature by `body.node_id` over `"kith/v1/contact-card" || 0x00 || body`.
    pub signature: Signature,
}

/// A card whose signature and expiry were checked; only [`SignedCard::verify`] makes one.
/// Spec: §3.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCard {
    card: ContactCard,
    signed: SignedCard,
}

impl VerifiedCard {
    /// The checked card content (spec §3.1).
    pub fn card(&self) -> &ContactCard {
        &self.card
    }
    /// The signed form, to store or forward (spec §3.1).
    pub fn signed(&self) -> &SignedCard {
        &self.signed
    }
    /// The node this card belongs to (spec §3.1).
    pub fn node_id(&self) -> NodeId {
        self.card.node_id
    }
}

/// Check a display name: 1..=64 characters, trimmed, nothing that is not displayable
/// ([`crate::display_text`]; spec §3.1).
pub fn validate_name(name: &str) -> Result<String, InvalidInput> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || !crate::display_text::is_displayable(name) {
        return Err(InvalidInput::Name(MAX_NAME_CHARS));
    }
    Ok(name.to_string())
}

/// Check an address (spec §3.1): `host:port`, where host is a DNS name or IPv4 address of
/// ASCII letters, digits, `-` and `.`, or an IPv6 address in brackets; port is 1..=65535 in
/// decimal without sign or leading zeros.
pub fn validate_address(addr: &str) -> Result<(), InvalidInput> {
    let bad = || InvalidInput::Address(addr.chars().take(80).collect());
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(bad());
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.starts_with('0')
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !port_ok || !host_ok {
        return Err(bad());
    }
    Ok(())
}

impl ContactCard {
    /// A new card for `identity`, valid from `now` for `lifetime` seconds (spec §3.1).
    pub fn new(
        identity: &Identity,
        name: &str,
        addresses: Vec<String>,
        now: u64,
        lifetime: u64,
    ) -> Result<Self, InvalidInput> {
        let name = validate_name(name)?;
        if addresses.len() > MAX_ADDRESSES {
            return Err(InvalidInput::TooManyAddresses(MAX_ADDRESSES));
        }
        for a in &addresses {
            validate_address(a)?;
        }
        Ok(Self {
            version: CARD_VERSION,
            node_id: identity.node_id(),
            sealing_key: identity.sealing_public_key(),
            name,
            addresses,
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
        })
    }

    /// Sign this card with `identity`, which must be the card's own key (spec §3.1, §2.3).
    pub fn sign(&self, identity: &Identity) -> SignedCard {
        debug_assert_eq!(identity.node_id(), self.node_id);
        let body = encode_value(self);
        let signature = identity.sign(SigningLabel::ContactCard, &body);
        SignedCard { body, signature }
    }
}

impl SignedCard {
    /// The addresses in the body as held (spec §3.1), unchecked; none if it does not
    /// decode.
    pub fn addresses(&self) -> Vec<String> {
        decode_exact::<ContactCard>(&self.body)
            .map(|card| card.addresses)
            .unwrap_or_default()
    }

    /// Decode the body, verify the signature by the key inside it, and check that the
    /// card is well formed and not expired at `now` (spec §3.1).
    pub fn verify(&self, now: u64) -> Result<VerifiedCard, PeerMisbehaved> {
        let card: ContactCard = decode_exact(&self.body)?;
        if card.version != CARD_VERSION {
            return Err(PeerMisbehaved::Malformed("unknown card version"));
        }
        card.node_id.verify(
            SigningLabel::ContactCard,
            &self.body,
            &self.signature,
            "contact card",
        )?;
        if validate_name(&card.name).ok().as_deref() != Some(card.name.as_str())
            || card.addresses.len() > MAX_ADDRESSES
            || card.addresses.iter().any(|a| validate_address(a).is_err())
        {
            return Err(PeerMisbehaved::Malformed("contact card fields"));
        }
        if now >= card.expires_at {
            return Err(PeerMisbehaved::CardExpired);
        }
        Ok(VerifiedCard {
            card,
            signed: self.clone(),
        })
    }
}

/// Most moves of one contact (card updates that change its addresses) a node records in
/// 24 hours; each is an audit entry (spec §8.6.3).
pub const MAX_MOVES_PER_DAY: u32 = 24;

/// What a node does with a contact's card update (spec §8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardUpdate {
    /// Store this card in place of the one held.
    Replace(Box<VerifiedCard>),
    /// The card held was issued later than the one sent: keep it (a retry that lost a race).
    KeepHeld,
}

/// Check a card update (spec §8.6) that arrived from `sender`, the key the connection
/// authenticated, which is a contact whose stored card is `held`. The update must verify at
/// `now`, belong to `sender`, and keep the sealing key of `held`: a node that changes that
/// key is a new identity and needs a new invite. Any failure is the responder's
/// `Refused(Malformed)`.
pub fn check_update(
    update: &SignedCard,
    sender: NodeId,
    held: &SignedCard,
    now: u64,
) -> Result<CardUpdate, PeerMisbehaved> {
    let new = update.verify(now)?;
    if new.node_id() != sender {
        return Err(PeerMisbehaved::Malformed("card update for another node"));
    }
    let held: ContactCard = decode_exact(&held.body)?;
    if new.card().sealing_key != held.sealing_key {
        return Err(PeerMisbehaved::Malformed(
            "card update changes the sealing key",
        ));
    }
    if new.card().issued_at < held.issued_at {
        return Ok(CardUpdate::KeepHeld);
    }
    Ok(CardUpdate::Replace(Box::new(new)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn card(id: &Identity) -> ContactCard {
        ContactCard::new(id, "Chloe", vec!["127.0.0.1:7400".into()], 1000, 100).unwrap()
    }

    #[test]
    fn sign_and_verify() {
        let id = Identity::generate(&mut OsRng);
        let signed = card(&id).sign(&id);
        let v = signed.verify(1050).unwrap();
        assert_eq!(v.card().name, "Chloe");
        assert_eq!(v.node_id(), id.node_id());
        assert_eq!(signed.verify(1100), Err(PeerMisbehaved::CardExpired));
    }

    #[test]
    fn tampered_body_or_foreign_signature_rejected() {
        let id = Identity::generate(&mut OsRng);
        let other = Identity::generate(&mut OsRng);
        let mut signed = card(&id).sign(&id);
        let last = signed.body.len() - 1;
        signed.body[last] ^= 1;
        assert!(signed.verify(1001).is_err());
        // A card claiming id's key but signed by someone else.
        let body = encode_value(&card(&id));
        let forged = SignedCard {
            signature: other.sign(SigningLabel::ContactCard, &body),
            body,
        };
        assert_eq!(
            forged.verify(1001),
            Err(PeerMisbehaved::BadSignature("contact card"))
        );
    }

    #[test]
    fn input_validation() {
        let id = Identity::generate(&mut OsRng);
        assert!(ContactCard::new(&id, "", vec![], 0, 1).is_err());
        assert!(ContactCard::new(&id, "a\nb", vec![], 0, 1).is_err());
        assert!(ContactCard::new(&id, "ok", vec!["nope".into()], 0, 1).is_err());
        assert!(ContactCard::new(&id, "ok", vec!["h:0".into()], 0, 1).is_err());
        assert!(ContactCard::new(&id, "ok", vec!["[::1]:7".into()], 0, 1).is_ok());
        assert!(ContactCard::new(&id, "ok", vec!["host.example:07".into()], 0, 1).is_err());
        assert!(ContactCard::new(&id, "ok", vec!["host.example:+7".into()], 0, 1).is_err());
        assert!(ContactCard::new(&id, "ok", vec!["a b:7".into()], 0, 1).is_err());
        assert!(ContactCard::new(&id, "ok", vec!["host.example:65536".into()], 0, 1).is_err());
        assert!(ContactCard::new(&id, "evil\u{202E}", vec![], 0, 1).is_err());
    }
    #[test]
    fn a_card_update_replaces_only_a_card_of_the_same_node_issued_no_earlier() {
        let id = Identity::generate(&mut OsRng);
        let other = Identity::generate(&mut OsRng);
        let at = |t: u64, addr: &str| {
            ContactCard::new(&id, "Chloe", vec![addr.into()], t, 100)
                .unwrap()
                .sign(&id)
        };
        let held = at(1000, "127.0.0.1:7400");
        let moved = at(1010, "192.0.2.7:7400");
        match check_update(&moved, id.node_id(), &held, 1020).unwrap() {
            CardUpdate::Replace(v) => assert_eq!(v.card().addresses, ["192.0.2.7:7400"]),
            other => panic!("{other:?}"),
        }
        // An older card (a retry overtaken by a later change) leaves the held one.
        assert_eq!(
            check_update(&held, id.node_id(), &moved, 1020).unwrap(),
            CardUpdate::KeepHeld
        );
        // Sent by another node, expired, or with another sealing key: refused.
        assert!(check_update(&moved, other.node_id(), &held, 1020).is_err());
        assert_eq!(
            check_update(&moved, id.node_id(), &held, 1110),
            Err(PeerMisbehaved::CardExpired)
        );
        let mut card = ContactCard::new(&id, "Chloe", vec![], 1010, 100).unwrap();
        card.sealing_key = other.sealing_public_key();
        assert!(check_update(&card.sign(&id), id.node_id(), &held, 1020).is_err());
    }
}
