//! Endorsements (spec §6.4) and the signed statements that disclose them by name (§8.3).

use serde::{Deserialize, Serialize};

use crate::error::{InvalidInput, PeerMisbehaved};
use crate::identity::{Identity, NodeId, Signature, SigningLabel};
use crate::item::ItemKey;
use crate::message::QueryId;
use crate::wire::{decode_exact, encode_value};

/// Largest unit count an endorsement may carry (spec §6.4).
pub const MAX_COUNT: u32 = 1_000_000;
/// Longest note, in characters (spec §6.4).
pub const MAX_NOTE_CHARS: usize = 280;
/// Version of the statement layout (spec §8.1).
pub const STATEMENT_VERSION: u16 = 1;

/// What the owner records: "I own N of ITEM, R stars, note" (spec §6.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    pub item: ItemKey,
    /// Units owned, 1..=[`MAX_COUNT`].
    pub count: u32,
    /// 1..=5 stars.
    pub rating: Option<u8>,
    /// Free text, at most [`MAX_NOTE_CHARS`] characters.
    pub note: Option<String>,
    /// When it was recorded (Unix seconds).
    pub since: u64,
}

impl Endorsement {
    /// Build an endorsement from user input, checking every field (spec §6.4).
    pub fn new(
        item: ItemKey,
        count: u32,
        rating: Option<u8>,
        note: Option<String>,
        since: u64,
    ) -> Result<Self, InvalidInput> {
        let e = Self {
            item,
            count,
            rating,
            note,
            since,
        };
        e.validate()?;
        Ok(e)
    }

    /// Check field ranges (spec §6.4).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(InvalidInput::Count(MAX_COUNT));
        }
        if matches!(self.rating, Some(r) if !(1..=5).contains(&r)) {
            return Err(InvalidInput::Rating);
        }
        if matches!(&self.note, Some(n) if n.chars().count() > MAX_NOTE_CHARS) {
            return Err(InvalidInput::NoteTooLong(MAX_NOTE_CHARS));
        }
        if matches!(&self.note, Some(n) if !crate::display_text::is_displayable(n)) {
            return Err(InvalidInput::NoteText);
        }
        Ok(())
    }
}

/// A disclosure by name: who endorses what, to whom, in answer to which query (spec §8.3).
///
/// Binding the audience and query id makes the statement a receipt of one disclosure: the
/// asker can show it, but cannot pass it off as given to someone else or at another time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndorsementStatement {
    /// [`STATEMENT_VERSION`].
    pub version: u16,
    pub endorser: NodeId,
    pub audience: NodeId,
    pub query_id: QueryId,
    pub endorsement: Endorsement,
    /// When the statement was signed (Unix seconds).
    pub issued_at: u64,
}

/// A statement exactly as signed, with its signature (spec §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEndorsement {
    /// postcard encoding of an [`EndorsementStatement`].
    pub statement: Vec<u8>,
    /// Ed25519 by `endorser` over `"kith/v1/endorsement" || 0x00 || statement`.
    pub signature: Signature,
}

impl EndorsementStatement {
    /// Sign this statement; `identity` must be the endorser (spec §8.3.2 step 4, §2.3).
    pub fn sign(&self, identity: &Identity) -> SignedEndorsement {
        debug_assert_eq!(identity.node_id(), self.endorser);
        let statement = encode_value(self);
        let signature = identity.sign(SigningLabel::Endorsement, &statement);
        SignedEndorsement {
            statement,
            signature,
        }
    }
}

impl SignedEndorsement {
    /// Verify the signature and decode, without checking who it was for. Apps use this to
    /// check a social-proof line themselves (spec §8.3.3 steps 6.1–6.4).
    pub fn verify_signature(&self) -> Result<EndorsementStatement, PeerMisbehaved> {
        let st: EndorsementStatement = decode_exact(&self.statement)?;
        if st.version != STATEMENT_VERSION {
            return Err(PeerMisbehaved::Malformed(
                "unknown endorsement statement version",
            ));
        }
        st.endorser.verify(
            SigningLabel::Endorsement,
            &self.statement,
            &self.signature,
            "endorsement",
        )?;
        st.endorsement
            .validate()
            .map_err(|_| PeerMisbehaved::Malformed("endorsement fields out of range"))?;
        Ok(st)
    }

    /// Verify as the asker: signed by `endorser`, addressed to `audience`, answering
    /// `query_id`, and about an item within `asked` (spec §8.3.3 step 6).
    pub fn verify_for(
        &self,
        endorser: &NodeId,
        audience: &NodeId,
        query_id: &QueryId,
        asked: &ItemKey,
    ) -> Result<EndorsementStatement, PeerMisbehaved> {
        let st = self.verify_signature()?;
        if st.endorser != *endorser {
            return Err(PeerMisbehaved::Unexpected("endorsement from another node"));
        }
        if st.audience != *audience || st.query_id != *query_id {
            return Err(PeerMisbehaved::Unexpected("endorsement for another query"));
        }
        if !st.endorsement.item.is_within(asked) {
            return Err(PeerMisbehaved::Unexpected(
                "endorsement for an item not asked about",
            ));
        }
        Ok(st)
    }
}

/// How long after an ask its late endorsements are accepted, in seconds (spec §8.5.3).
pub const LATE_WINDOW_SECS: u64 = 30 * 24 * 3600;
/// Most late endorsements an asker keeps from one contact for one ask, as many as one named
/// answer may carry (spec §8.5.3).
pub const MAX_LATE_PER_CONTACT: u32 = 32;

/// Why a late endorsement is refused (spec §8.5.3): `Malformed` for anything the endorser
/// got wrong, `Internal` only for the asker's own failure.
pub type LateRefusal = crate::message::Refusal;

/// The asker's first checks of a late endorsement delivered by `from` (the key the
/// connection authenticated) to `me` (spec §8.5.3 steps 2–3): the signature verifies, the
/// endorser is the sender and the audience is this node. Returns the statement, whose
/// query id names the ask to look up for [`check_late_ask`].
pub fn check_late_statement(
    signed: &SignedEndorsement,
    from: &NodeId,
    me: &NodeId,
) -> Result<EndorsementStatement, LateRefusal> {
    let statement = signed
        .verify_signature()
        .map_err(|_| LateRefusal::Malformed)?;
    if statement.endorser != *from || statement.audience != *me {
        return Err(LateRefusal::Malformed);
    }
    Ok(statement)
}

/// The asker's last check (spec §8.5.3 step 4): the statement answers an ask this node
/// made (`ask`: the item asked about and when, if it made one with that query id), is
/// within the item asked, and arrived within [`LATE_WINDOW_SECS`] of the ask.
pub fn check_late_ask(
    statement: &EndorsementStatement,
    ask: Option<(&ItemKey, u64)>,
    now: u64,
) -> Result<(), LateRefusal> {
    match ask {
        Some((asked, at))
            if statement.endorsement.item.is_within(asked)
                && now <= at.saturating_add(LATE_WINDOW_SECS) =>
        {
            Ok(())
        }
        _ => Err(LateRefusal::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn validation() {
        let item = ItemKey::parse("tag:car").unwrap();
        assert!(Endorsement::new(item.clone(), 0, None, None, 0).is_err());
        assert!(Endorsement::new(item.clone(), 1, Some(6), None, 0).is_err());
        assert!(Endorsement::new(item.clone(), 1, Some(0), None, 0).is_err());
        assert!(Endorsement::new(item.clone(), 1, None, Some("x".repeat(281)), 0).is_err());
        assert!(Endorsement::new(item.clone(), 1, None, Some("line\nbreak".into()), 0).is_err());
        assert!(Endorsement::new(item, 2, Some(5), Some("great".into()), 0).is_ok());
    }

    #[test]
    fn statement_binds_audience_and_query() {
        let me = Identity::generate(&mut OsRng);
        let asker = Identity::generate(&mut OsRng).node_id();
        let item = ItemKey::parse("tag:vehicle/subaru/outback").unwrap();
        let asked = ItemKey::parse("tag:vehicle/subaru").unwrap();
        let st = EndorsementStatement {
            version: STATEMENT_VERSION,
            endorser: me.node_id(),
            audience: asker,
            query_id: QueryId([7; 16]),
            endorsement: Endorsement::new(item, 2, Some(5), None, 10).unwrap(),
            issued_at: 11,
        };
        let signed = st.sign(&me);
        assert_eq!(
            signed
                .verify_for(&me.node_id(), &asker, &QueryId([7; 16]), &asked)
                .unwrap(),
            st
        );
        assert!(signed
            .verify_for(&me.node_id(), &asker, &QueryId([8; 16]), &asked)
            .is_err());
        assert!(signed
            .verify_for(&asker, &asker, &QueryId([7; 16]), &asked)
            .is_err());
        let other = ItemKey::parse("tag:vehicle/subarus").unwrap();
        assert!(signed
            .verify_for(&me.node_id(), &asker, &QueryId([7; 16]), &other)
            .is_err());
        let mut bad = signed.clone();
        bad.signature.0[3] ^= 0x10;
        assert!(bad.verify_signature().is_err());
    }

    #[test]
    fn a_late_endorsement_is_checked_against_its_sender_audience_and_ask() {
        use crate::message::Refusal;
        use rand_core::OsRng;
        let chloe = Identity::generate(&mut OsRng);
        let ana = NodeId([1; 32]);
        let st = EndorsementStatement {
            version: STATEMENT_VERSION,
            endorser: chloe.node_id(),
            audience: ana,
            query_id: QueryId([2; 16]),
            endorsement: Endorsement::new(
                ItemKey::parse("tag:vehicle/subaru/outback").unwrap(),
                1,
                None,
                None,
                0,
            )
            .unwrap(),
            issued_at: 10,
        };
        let signed = st.sign(&chloe);
        let ok = check_late_statement(&signed, &chloe.node_id(), &ana).unwrap();
        assert_eq!(ok, st);
        assert_eq!(
            check_late_statement(&signed, &NodeId([3; 32]), &ana),
            Err(Refusal::Malformed),
            "relayed by someone else"
        );
        assert_eq!(
            check_late_statement(&signed, &chloe.node_id(), &NodeId([3; 32])),
            Err(Refusal::Malformed),
            "meant for another asker"
        );
        let mut tampered = signed.clone();
        tampered.signature.0[0] ^= 1;
        assert!(check_late_statement(&tampered, &chloe.node_id(), &ana).is_err());

        let asked = ItemKey::parse("tag:vehicle/subaru").unwrap();
        let other = ItemKey::parse("tag:book").unwrap();
        assert_eq!(
            check_late_ask(&st, Some((&asked, 100)), 100 + LATE_WINDOW_SECS),
            Ok(())
        );
        assert!(check_late_ask(&st, Some((&asked, 100)), 101 + LATE_WINDOW_SECS).is_err());
        assert!(check_late_ask(&st, Some((&other, 100)), 200).is_err());
        assert!(check_late_ask(&st, None, 200).is_err(), "no such ask");
    }
}
