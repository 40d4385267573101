//! Peer-to-peer messages (spec §8), exchanged on ALPN `kith/peer/2`.
//!
//! Each exchange is one request frame and one response frame on a fresh bidirectional QUIC
//! stream. Every frame body is a versioned message ([`crate::wire::encode_message`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::card::SignedCard;
use crate::endorsement::SignedEndorsement;
use crate::invite::InviteId;
use crate::item::ItemKey;

/// A random 16-byte query id, fresh for every ask (spec §8.3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueryId(pub [u8; 16]);

impl QueryId {
    /// Lowercase hex, as `kith updates` and the audit log show it (spec §8.5, §8.3.5).
    pub fn to_hex(&self) -> String {
        crate::identity::hex(&self.0)
    }
}

impl fmt::Debug for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryId({})", self.to_hex())
    }
}

/// A request from one node to another (spec §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Become a contact by redeeming an invite (variant 0, spec §8.2).
    Redeem(InviteRedemption),
    /// Ask about an item (variant 1, spec §8.3).
    Ask(Query),
    /// A round of an aggregate ask (variant 2, spec §9.7).
    Aggregate(crate::aggregation::messages::AggRequest),
    /// A named endorsement the endorser's owner approved after the ask (variant 3,
    /// spec §8.5): an update to the answer of the query it names.
    Deliver(crate::endorsement::SignedEndorsement),
    /// The sender's new card, sent to each contact after its owner changed the addresses
    /// it advertises (variant 4, spec §8.6).
    UpdateCard(SignedCard),
}

/// Redeem an invite: sent by the acceptor to the inviter (spec §8.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRedemption {
    pub invite_id: InviteId,
    /// [`crate::Invite::redemption_proof`] for (inviter, acceptor).
    pub proof: [u8; 32],
    /// The acceptor's signed card; its key must be the one the TLS handshake authenticated.
    pub card: SignedCard,
}

/// "Do you own anything within `item`?" (spec §8.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Query {
    pub query_id: QueryId,
    pub item: ItemKey,
}

/// A response (spec §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerResponse {
    /// Invite accepted; the inviter's current card (variant 0).
    Welcome(SignedCard),
    /// The answer to a query (variant 1).
    Answer(Answer),
    /// The request was refused (variant 2).
    Refused(Refusal),
    /// A reply in an aggregation round (variant 3, spec §9.7).
    Aggregate(crate::aggregation::messages::AggResponse),
    /// A delivered endorsement was recorded (variant 4, spec §8.5).
    Received,
    /// The card update was checked: the responder holds this card or a later one
    /// (variant 5, spec §8.6).
    CardUpdated,
}

/// The answer to a [`Query`] (spec §8.3).
///
/// When the responder names nothing (it owns nothing, or its owner allows only `count`,
/// `ask` or `none`) the answer has an empty list: the bytes are identical whatever the
/// reason, so the asker cannot tell a refusal from "owns nothing".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub query_id: QueryId,
    /// At most [`MAX_NAMED_PER_ANSWER`] signed endorsements.
    pub named: Vec<SignedEndorsement>,
}

/// Most endorsements one answer may carry (spec §8.1).
pub const MAX_NAMED_PER_ANSWER: usize = 32;

/// Why a request was refused (spec §8.4). Codes are the postcard variant indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// 0: the sender is not a contact, and the request is not an invite redemption.
    NotAContact,
    /// 1: the invite id is unknown to this node.
    InviteUnknown,
    /// 2: the invite has expired.
    InviteExpired,
    /// 3: the invite was already used.
    InviteUsed,
    /// 4: the redemption proof or the acceptor's card is invalid.
    InviteInvalid,
    /// 5: the request did not decode, its frame was oversize or truncated, or a delivered
    /// statement failed the asker's checks (spec §8.4, §8.5.3).
    Malformed,
    /// 6: the request's protocol version is not supported.
    UnsupportedVersion,
    /// 7: the node failed internally; try again later.
    Internal,
    /// 8: the sender has used up its budget of asks with this node (spec §9.10).
    RateLimited,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAContact => "not a contact",
            Refusal::InviteUnknown => "invite unknown",
            Refusal::InviteExpired => "invite expired",
            Refusal::InviteUsed => "invite already used",
            Refusal::InviteInvalid => "invite proof or card invalid",
            Refusal::Malformed => "malformed request",
            Refusal::UnsupportedVersion => "unsupported protocol version",
            Refusal::Internal => "internal error",
            Refusal::RateLimited => "too many asks; try again later",
        })
    }
}
