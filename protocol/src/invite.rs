//! Invites (spec §3.2): a one-time code that lets a stranger become a contact.
//!
//! The inviter's node makes an [`Invite`]: its signed card (which lists its addresses), a
//! random 16-byte invite id, a random 32-byte one-time secret and an expiry. The code is
//! shown as text ([`Invite::to_code`]). The acceptor connects to the inviter pinned to the key
//! in the card and proves knowledge of the secret with [`Invite::redemption_proof`]; the
//! inviter's node accepts each invite id once.

use core::fmt;

use rand_core::CryptoRngCore;
use ring::hmac;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::card::{SignedCard, VerifiedCard};
use crate::error::InviteError;
use crate::identity::NodeId;
use crate::text_code::{self, TextCodeError};
use crate::wire::{decode_exact, encode_value};

/// Text prefix of an invite code; the digit is the invite layout version (spec §3.2, §3.3).
pub const INVITE_PREFIX: &str = "KITH1";
/// Invite layout version carried in the payload (spec §3.2).
pub const INVITE_VERSION: u8 = 1;
/// Default lifetime: 7 days, in seconds (spec §3.2).
pub const DEFAULT_INVITE_LIFETIME: u64 = 7 * 24 * 3600;
/// Longest invite code accepted, in characters. The largest valid invite (a 64-character
/// name of 4-byte characters and four 262-byte addresses) is about 2,460 characters; this
/// stays within one QR code in alphanumeric mode (4,296). Spec: §3.3.
pub const MAX_INVITE_CODE_CHARS: usize = 4000;
/// Label of the redemption proof MAC (spec §3.2).
pub const REDEMPTION_LABEL: &[u8] = b"kith/v1/invite-redemption";

/// A random 16-byte invite id (spec §3.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InviteId(pub [u8; 16]);

impl fmt::Debug for InviteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InviteId({})", crate::identity::hex(&self.0))
    }
}

/// The invite's one-time secret. Zeroized on drop, hidden from `Debug`, compared in
/// constant time (spec §3.2).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct InviteSecret(pub [u8; 32]);

impl PartialEq for InviteSecret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for InviteSecret {}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(<redacted>)")
    }
}

/// The payload of an invite code (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// [`INVITE_VERSION`].
    pub version: u8,
    /// The inviter's signed card: keys, name and addresses.
    pub card: SignedCard,
    /// Identifies the invite at the inviter's node.
    pub id: InviteId,
    /// The one-time secret.
    pub secret: InviteSecret,
    /// Unix seconds from which on (`now >= expires_at`) the code is refused.
    pub expires_at: u64,
}

/// An invite whose card signature and expiry were checked; made only by [`Invite::from_code`].
/// Spec: §3.2.
#[derive(Debug, Clone)]
pub struct CheckedInvite {
    pub invite: Invite,
    pub inviter: VerifiedCard,
}

impl Invite {
    /// A new invite carrying `card`, valid until `now + lifetime` (spec §3.2).
    pub fn generate(
        rng: &mut impl CryptoRngCore,
        card: SignedCard,
        now: u64,
        lifetime: u64,
    ) -> Self {
        let mut id = [0u8; 16];
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        Self {
            version: INVITE_VERSION,
            card,
            id: InviteId(id),
            secret: InviteSecret(secret),
            expires_at: now.saturating_add(lifetime),
        }
    }

    /// The copy-pasteable text code (spec §3.2, §3.3).
    pub fn to_code(&self) -> String {
        text_code::encode(INVITE_PREFIX, &encode_value(self))
    }

    /// Read a code typed or pasted by a person, check the inviter's signature and the expiry.
    /// Spec: §3.2, "Reading a code", steps 1–7; step 8 (own invite) is the caller's.
    pub fn from_code(code: &str, now: u64) -> Result<CheckedInvite, InviteError> {
        let payload =
            text_code::decode(INVITE_PREFIX, code, MAX_INVITE_CODE_CHARS).map_err(|e| {
                InviteError::Malformed(match e {
                    TextCodeError::Prefix => "it does not start with KITH1",
                    TextCodeError::Alphabet => "it contains characters that are not in a kith code",
                    TextCodeError::Checksum => {
                        "checksum mismatch (a character was mistyped or lost)"
                    }
                    TextCodeError::TooLong => "too long",
                })
            })?;
        match payload.first() {
            None => return Err(InviteError::Malformed("empty")),
            Some(&v) if v != INVITE_VERSION => return Err(InviteError::UnsupportedVersion(v)),
            _ => {}
        }
        let invite: Invite =
            decode_exact(&payload).map_err(|_| InviteError::Malformed("unreadable contents"))?;
        // Signature first: a forged code is reported as forged, not as expired. The card is
        // checked as of the invite's last valid second, so a card that expires before its
        // invite is reported as an expired invite.
        let inviter = invite
            .card
            .verify(now.min(invite.expires_at.saturating_sub(1)))
            .map_err(|e| match e {
                crate::PeerMisbehaved::CardExpired => InviteError::Expired,
                crate::PeerMisbehaved::BadSignature(_) => InviteError::BadSignature,
                _ => InviteError::Malformed("the inviter's card inside is unreadable"),
            })?;
        if now >= invite.expires_at {
            return Err(InviteError::Expired);
        }
        Ok(CheckedInvite { invite, inviter })
    }

    /// The proof an acceptor sends to redeem the invite (spec §3.2):
    /// `HMAC-SHA256(secret, label || 0x00 || invite_id || inviter_id || acceptor_id)`.
    pub fn redemption_proof(&self, inviter: &NodeId, acceptor: &NodeId) -> [u8; 32] {
        redemption_proof(&self.secret, &self.id, inviter, acceptor)
    }
}

/// See [`Invite::redemption_proof`]; used by the inviter to check a proof in constant time.
/// Spec: §3.2.
pub fn redemption_proof(
    secret: &InviteSecret,
    id: &InviteId,
    inviter: &NodeId,
    acceptor: &NodeId,
) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(REDEMPTION_LABEL);
    ctx.update(&[0]);
    ctx.update(&id.0);
    ctx.update(inviter.as_bytes());
    ctx.update(acceptor.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Constant-time check of a redemption proof (spec §3.2, "Checking a redemption" step 2).
pub fn verify_redemption_proof(
    secret: &InviteSecret,
    id: &InviteId,
    inviter: &NodeId,
    acceptor: &NodeId,
    proof: &[u8; 32],
) -> bool {
    use subtle::ConstantTimeEq;
    redemption_proof(secret, id, inviter, acceptor)
        .ct_eq(proof)
        .into()
}

/// An issued invite as its inviter's node keeps it, for checking a redemption (spec §3.2).
#[derive(Debug)]
pub struct IssuedInvite<'a> {
    pub id: &'a InviteId,
    pub secret: &'a InviteSecret,
    /// From this instant on (`now >= expires_at`) it is refused; a revoked invite's expiry
    /// is the moment it was revoked.
    pub expires_at: u64,
    /// Whether it was used, and by whom if known.
    pub used: Option<Option<NodeId>>,
}

/// What the inviter does with a redemption that passed its checks (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Store the acceptor with this card and mark the invite used (step 6).
    Redeem(Box<VerifiedCard>),
    /// The acceptor that used the invite, retrying after a lost `Welcome`: welcome it again,
    /// whatever the time (step 3).
    WelcomeAgain,
}

/// Check a redemption of `invite` by `acceptor` (the key its connection authenticated)
/// at `now`, in the order of spec §3.2 "Checking a redemption", steps 2 to 5: the proof,
/// whether it was used, its expiry, the acceptor's card. Step 1 (finding the invite) and
/// step 6 (marking it used, atomically) are the node's.
pub fn check_redemption(
    invite: &IssuedInvite<'_>,
    inviter: &NodeId,
    acceptor: &NodeId,
    redemption: &crate::message::InviteRedemption,
    now: u64,
) -> Result<Redemption, crate::message::Refusal> {
    use crate::message::Refusal;
    if !verify_redemption_proof(
        invite.secret,
        invite.id,
        inviter,
        acceptor,
        &redemption.proof,
    ) {
        return Err(Refusal::InviteInvalid);
    }
    match invite.used {
        Some(Some(by)) if by == *acceptor => return Ok(Redemption::WelcomeAgain),
        Some(_) => return Err(Refusal::InviteUsed),
        None => {}
    }
    if now >= invite.expires_at {
        return Err(Refusal::InviteExpired);
    }
    match redemption.card.verify(now) {
        Ok(card) if card.node_id() == *acceptor => Ok(Redemption::Redeem(Box::new(card))),
        _ => Err(Refusal::InviteInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::ContactCard;
    use crate::identity::Identity;
    use rand_core::OsRng;

    fn invite(now: u64) -> (Identity, Invite) {
        let id = Identity::generate(&mut OsRng);
        let card = ContactCard::new(&id, "Ana", vec!["127.0.0.1:7000".into()], now, 1 << 30)
            .unwrap()
            .sign(&id);
        let inv = Invite::generate(&mut OsRng, card, now, DEFAULT_INVITE_LIFETIME);
        (id, inv)
    }

    #[test]
    fn code_round_trip_and_fits_qr() {
        let (id, inv) = invite(1000);
        let code = inv.to_code();
        assert!(code.len() < 600, "{} chars", code.len());
        let checked = Invite::from_code(&code, 1001).unwrap();
        assert_eq!(checked.invite, inv);
        assert_eq!(checked.inviter.node_id(), id.node_id());
        // Wrapped and lower-cased still reads.
        let wrapped: String = code
            .to_lowercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 40 == 39 { vec![c, '\n'] } else { vec![c] })
            .collect();
        assert!(Invite::from_code(&wrapped, 1001).is_ok());
    }

    #[test]
    fn distinct_errors() {
        let (_, inv) = invite(1000);
        let code = inv.to_code();
        assert_eq!(
            Invite::from_code(&code, 1000 + DEFAULT_INVITE_LIFETIME).unwrap_err(),
            InviteError::Expired
        );
        assert!(matches!(
            Invite::from_code("hello", 0),
            Err(InviteError::Malformed(_))
        ));
        let mut typo: Vec<char> = code.chars().collect();
        typo[20] = if typo[20] == 'Q' { 'R' } else { 'Q' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            Invite::from_code(&typo, 1001),
            Err(InviteError::Malformed(_))
        ));
        // A version-2 payload with a valid checksum.
        let mut payload = encode_value(&inv);
        payload[0] = 2;
        let future = text_code::encode(INVITE_PREFIX, &payload);
        assert_eq!(
            Invite::from_code(&future, 1001).unwrap_err(),
            InviteError::UnsupportedVersion(2)
        );
        // A forged card with a valid checksum.
        let mut forged = inv.clone();
        forged.card.signature.0[0] ^= 1;
        assert_eq!(
            Invite::from_code(&forged.to_code(), 1001).unwrap_err(),
            InviteError::BadSignature
        );
    }

    #[test]
    fn proof_binds_parties() {
        let (id, inv) = invite(0);
        let a = Identity::generate(&mut OsRng).node_id();
        let b = Identity::generate(&mut OsRng).node_id();
        let p = inv.redemption_proof(&id.node_id(), &a);
        assert!(verify_redemption_proof(
            &inv.secret,
            &inv.id,
            &id.node_id(),
            &a,
            &p
        ));
        assert!(!verify_redemption_proof(
            &inv.secret,
            &inv.id,
            &id.node_id(),
            &b,
            &p
        ));
        assert!(format!("{inv:?}").contains("redacted"));
    }

    #[test]
    fn a_redemption_is_checked_in_the_order_of_the_spec() {
        use crate::message::{InviteRedemption, Refusal};
        let (inviter, invite) = invite(1000);
        let acceptor = Identity::generate(&mut OsRng);
        let other = Identity::generate(&mut OsRng);
        let card = |who: &Identity| {
            ContactCard::new(who, "Bo", vec![], 1000, 100)
                .unwrap()
                .sign(who)
        };
        let redemption = |who: &Identity, card_of: &Identity| InviteRedemption {
            invite_id: invite.id,
            proof: invite.redemption_proof(&inviter.node_id(), &who.node_id()),
            card: card(card_of),
        };
        let issued = |expires_at, used| IssuedInvite {
            id: &invite.id,
            secret: &invite.secret,
            expires_at,
            used,
        };
        let check = |i: &IssuedInvite<'_>, r: &InviteRedemption, who: &Identity, now| {
            check_redemption(i, &inviter.node_id(), &who.node_id(), r, now)
        };
        let good = redemption(&acceptor, &acceptor);
        let open = issued(2000, None);
        match check(&open, &good, &acceptor, 1010).unwrap() {
            Redemption::Redeem(c) => assert_eq!(c.node_id(), acceptor.node_id()),
            other => panic!("{other:?}"),
        }
        // 2: a proof for another acceptor (a stolen code replayed by a third key).
        assert_eq!(
            check(&open, &good, &other, 1010),
            Err(Refusal::InviteInvalid)
        );
        // 3: used — by this acceptor (welcomed again, even past the expiry), by another.
        let mine = issued(2000, Some(Some(acceptor.node_id())));
        assert_eq!(
            check(&mine, &good, &acceptor, 5000),
            Ok(Redemption::WelcomeAgain)
        );
        let theirs = issued(2000, Some(Some(other.node_id())));
        assert_eq!(
            check(&theirs, &good, &acceptor, 1010),
            Err(Refusal::InviteUsed)
        );
        // The proof comes first: a wrong proof on a used invite is invalid, not used.
        assert_eq!(
            check(&theirs, &good, &other, 1010),
            Err(Refusal::InviteInvalid)
        );
        // 4: expired (or revoked), before the card is looked at.
        let bad_card = redemption(&acceptor, &other);
        assert_eq!(
            check(&open, &bad_card, &acceptor, 2000),
            Err(Refusal::InviteExpired)
        );
        // 5: a card of another key, or one that does not verify.
        assert_eq!(
            check(&open, &bad_card, &acceptor, 1010),
            Err(Refusal::InviteInvalid)
        );
        assert_eq!(
            check(&open, &good, &acceptor, 1100),
            Err(Refusal::InviteInvalid)
        );
    }
}
