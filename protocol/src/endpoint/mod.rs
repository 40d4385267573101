//! The responder endpoint (spec §8): what a node answers a request from another node, and
//! what it must write for it.
//!
//! Like quinn-proto's `Endpoint`, it does no I/O. [`Endpoint::decide`] takes the request,
//! the key its connection authenticated, a read-only view of what the node knows
//! ([`NodeState`]) and `now`, and returns the response with the [`Effect`]s the node
//! applies: [`Reply::effects`] before the response is sent (if one fails, the response is
//! not sent: an answer that cannot be recorded is not given), [`Reply::after`] once it is
//! sent. The node owns the store, the connections and the clock; the rules and their order
//! are all here, tested without sockets.
//!
//! Three writes are conditional, checked and written atomically by the node: a budget
//! charge, an invite's single use and a card's replacement (with the daily move limit). A
//! reply has at most one, its [`Reply::condition`], written before its other effects. When
//! its condition no longer holds (a concurrent request took the last slot, used the invite,
//! stored a later card), the node writes nothing and decides again on fresh state, which
//! sees what the first decision lost to ([`MAX_DECISIONS`]).
//!
//! Aggregation rounds keep per-session state and crypto: a contact's go to the session
//! table ([`crate::aggregation::session`]) as [`Decision::Aggregate`].

mod ask;
mod card_update;
mod late;
mod redeem;
#[cfg(test)]
mod tests;

use crate::budget::{Limits, OverBudget, Usage};
use crate::card::SignedCard;
use crate::consent::ConsentPolicy;
use crate::endorsement::{Endorsement, SignedEndorsement};
use crate::error::WireError;
use crate::identity::{Identity, NodeId};
use crate::invite::{InviteId, InviteSecret};
use crate::item::ItemKey;
use crate::message::{PeerRequest, PeerResponse, Query, QueryId, Refusal};

/// Most decisions for one request: the first, and one more after each conditional effect
/// that lost a race. A request still losing after that is answered `Internal`.
pub const MAX_DECISIONS: usize = 3;

/// A contact as the node holds it (spec §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub node_id: NodeId,
    /// Its display name, as the owner knows it.
    pub name: String,
    /// The circle its consent rules see it in (spec §6.3).
    pub circle: String,
    /// The last card it sent (spec §3.1, §8.6).
    pub card: SignedCard,
    pub added_at: u64,
}

/// What the node's owner shares, and its limits on each asker (spec §6.3, §9.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shelf {
    pub endorsements: Vec<Endorsement>,
    pub policy: ConsentPolicy,
    pub limits: Limits,
}

/// An invite this node issued, as it keeps it (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldInvite {
    pub id: InviteId,
    pub secret: InviteSecret,
    /// The circle its acceptor joins.
    pub circle: String,
    pub expires_at: u64,
    /// Whether it was used, and by whom if known.
    pub used: Option<Option<NodeId>>,
}

/// What the node knows, read only. The reference node reads its store; tests use tables.
/// A read that fails fails the whole request (`Internal` to the sender): nothing is
/// decided on a partial view.
pub trait NodeState {
    type Error;
    /// The contact with this key, if it is one.
    fn contact(&self, key: &NodeId) -> Result<Option<Contact>, Self::Error>;
    /// The endorsements, the consent policy and the budget limits.
    fn shelf(&self) -> Result<Shelf, Self::Error>;
    /// What `asker` used of its budget since `since` (spec §9.10).
    fn usage(&self, asker: &NodeId, since: u64) -> Result<Usage, Self::Error>;
    /// The invite with this id, if this node issued it.
    fn invite(&self, id: &InviteId) -> Result<Option<HeldInvite>, Self::Error>;
    /// The item this node asked about under `query_id`, and when (spec §8.5.3).
    fn ask_record(&self, query_id: &QueryId) -> Result<Option<(ItemKey, u64)>, Self::Error>;
    /// How many moves of `contact` were recorded since `since` (spec §8.6.3).
    fn moves_since(&self, contact: &NodeId, since: u64) -> Result<u32, Self::Error>;
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer it.
    Reply(Box<Reply>),
    /// The request is a contact's aggregation round: its session answers it (spec §9.8).
    Aggregate,
}

/// A response and the writes that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub response: PeerResponse,
    /// Written first, atomically with its check; if the check fails, nothing else is
    /// written and the request is decided again.
    pub condition: Option<Condition>,
    /// Applied in order before the response is sent.
    pub effects: Vec<Effect>,
    /// Applied after the response is sent.
    pub after: Vec<Effect>,
}

impl Reply {
    /// A response with nothing to write.
    pub fn bare(response: PeerResponse) -> Self {
        Reply {
            response,
            condition: None,
            effects: Vec::new(),
            after: Vec::new(),
        }
    }

    /// A refusal with nothing to write.
    pub fn refused(refusal: Refusal) -> Self {
        Reply::bare(PeerResponse::Refused(refusal))
    }
}

/// An answered ask, to be counted against its asker's budget and recorded (spec §8.3.5,
/// §9.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub asker: NodeId,
    pub asker_name: String,
    pub item: ItemKey,
    /// What was disclosed, for the audit entry (never note text).
    pub detail: String,
    pub limits: Limits,
    /// Thousandths of ε charged (0 for a plain ask).
    pub cost: u32,
    /// The aggregation's query id, remembered as used (spec §9.8.2); none for a plain ask.
    pub query_id: Option<QueryId>,
}

/// A write the node checks and makes in one transaction; if its check fails, it writes
/// nothing and the request is decided again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Count and record the answered ask, if it still fits its budget (spec §9.10).
    Charge(Answered),
    /// Mark `invite` used by `contact` and store it, if the invite is still unused
    /// (spec §3.2 step 6).
    AddContact { invite: InviteId, contact: Contact },
    /// Hold `card` as `contact`'s card if the card held is still `held` (a concurrent update
    /// did not store another meanwhile), and, if it `moved`, record the move if fewer than
    /// [`MAX_MOVES_PER_DAY`](crate::card::MAX_MOVES_PER_DAY) were recorded in 24 h
    /// (spec §8.6.3 steps 4–5).
    ReplaceCard {
        contact: NodeId,
        held: SignedCard,
        card: SignedCard,
        moved: Option<Moved>,
    },
}

/// A contact's move, as its audit entry records it (spec §8.6.3 step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub name: String,
    pub addresses: Vec<String>,
}

/// A write the node applies for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// An ask declined for its budget (spec §9.10): the node's coalesced audit (§11.9).
    Declined {
        asker: NodeId,
        asker_name: String,
        item: ItemKey,
        over: OverBudget,
    },
    /// Record a pending request for each of `items`, matches of `query` shared as `ask`
    /// (spec §8.5.1). Always after the reply: an `ask` item answers as fast as `count`.
    RecordPending {
        asker: NodeId,
        asker_name: String,
        query: Query,
        items: Vec<ItemKey>,
    },
    /// The connection is a contact's: keep it for this node's own requests (spec §4.3).
    KeepConnection,
    /// Keep a late endorsement, at most
    /// [`MAX_LATE_PER_CONTACT`](crate::endorsement::MAX_LATE_PER_CONTACT) per contact and
    /// ask; audited when new (spec §8.5.3).
    KeepLate {
        query_id: QueryId,
        from: NodeId,
        from_name: String,
        signed: SignedEndorsement,
        item: ItemKey,
    },
    /// If `contact` has not got this node's current card, send it (spec §8.6.4).
    OfferCard { contact: NodeId },
}

/// What a request that did not decode is answered (spec §8.4).
pub fn refusal_for(error: &WireError) -> Refusal {
    match error {
        WireError::Incompatible(_) => Refusal::UnsupportedVersion,
        WireError::PeerMisbehaved(_) => Refusal::Malformed,
    }
}

/// This node, as the endpoint answers for it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    identity: &'a Identity,
    /// The card this node hands out now (spec §3.1).
    card: &'a SignedCard,
}

impl<'a> Endpoint<'a> {
    pub fn new(identity: &'a Identity, card: &'a SignedCard) -> Self {
        Endpoint { identity, card }
    }

    /// Decide what `sender` (the key its connection authenticated) is answered for
    /// `request` at `now` (Unix seconds), spec §8. Every kind but a redemption and a card
    /// update is refused `NotAContact` to a stranger, before anything else is read.
    pub fn decide<S: NodeState>(
        &self,
        state: &S,
        sender: NodeId,
        request: &PeerRequest,
        now: u64,
    ) -> Result<Decision, S::Error> {
        let reply = match request {
            PeerRequest::Redeem(r) => redeem::decide(self, state, sender, r, now)?,
            PeerRequest::UpdateCard(card) => card_update::decide(state, sender, card, now)?,
            PeerRequest::Ask(query) => match state.contact(&sender)? {
                Some(contact) => ask::decide(self, state, contact, query.clone(), now)?,
                None => Reply::refused(Refusal::NotAContact),
            },
            PeerRequest::Deliver(signed) => match state.contact(&sender)? {
                Some(contact) => late::decide(self, state, contact, signed.clone(), now)?,
                None => Reply::refused(Refusal::NotAContact),
            },
            PeerRequest::Aggregate(_) => match state.contact(&sender)? {
                Some(_) => return Ok(Decision::Aggregate),
                None => Reply::refused(Refusal::NotAContact),
            },
        };
        Ok(Decision::Reply(Box::new(reply)))
    }

    fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }
}
