//! The asker's side of a named ask (spec §8.3), as a sans-IO state machine.
//!
//! The driver (the node) feeds it events and moves bytes; it never touches a socket or a
//! clock:
//!
//! ```text
//!            new(contacts, now, timeout)
//!                     │
//!   poll_transmit() ──┼──> (contact, request bytes)   send each on its own stream
//!   handle_response(contact, bytes, now)              an answer arrived
//!   handle_failure(contact, why)                      transport could not deliver
//!   poll_timeout() / handle_timeout(now)              the deadline
//!                     │
//!            is_done() → outcome()
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::endorsement::{EndorsementStatement, SignedEndorsement};
use crate::error::WireError;
use crate::identity::NodeId;
use crate::item::ItemKey;
use crate::message::{PeerRequest, PeerResponse, Query, QueryId, Refusal, MAX_NAMED_PER_ANSWER};
use crate::wire::{decode_message, encode_message};

/// Default time an ask waits for answers (spec §8.3).
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes to send to one contact (spec §8.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: NodeId,
    pub payload: Vec<u8>,
}

/// Why a contact contributed nothing (spec §8.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactFailure {
    /// Not reachable (connection failed or reset).
    Unreachable(String),
    /// No answer before the deadline.
    TimedOut,
    /// The contact refused (e.g. it no longer has us as a contact).
    Refused(Refusal),
    /// The answer was malformed or forged; nothing from it was kept.
    Misbehaved(WireError),
}

/// A verified named endorsement (spec §8.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub from: NodeId,
    pub statement: EndorsementStatement,
    pub signed: SignedEndorsement,
}

/// The result of a finished round (spec §8.3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AskOutcome {
    pub asked: u32,
    pub answered: u32,
    pub named: Vec<Named>,
    pub failures: Vec<(NodeId, ContactFailure)>,
}

#[derive(Debug)]
enum ContactState {
    Waiting,
    Answered,
    Failed,
}

/// One ask, from the asker's side (spec §8.3.1, §8.3.3).
#[derive(Debug)]
pub struct AskRound {
    me: NodeId,
    query: Query,
    deadline: Instant,
    contacts: BTreeMap<NodeId, ContactState>,
    transmits: VecDeque<Transmit>,
    outcome: AskOutcome,
}

impl AskRound {
    /// Start asking `contacts` about `item`; answers after `now + timeout` are ignored.
    /// Spec: §8.3.1.
    pub fn new(
        me: NodeId,
        query_id: QueryId,
        item: ItemKey,
        contacts: impl IntoIterator<Item = NodeId>,
        now: Instant,
        timeout: Duration,
    ) -> Self {
        let query = Query { query_id, item };
        let payload = encode_message(&PeerRequest::Ask(query.clone()));
        let mut map = BTreeMap::new();
        let mut transmits = VecDeque::new();
        for c in contacts {
            if c != me && map.insert(c, ContactState::Waiting).is_none() {
                transmits.push_back(Transmit {
                    to: c,
                    payload: payload.clone(),
                });
            }
        }
        let outcome = AskOutcome {
            asked: map.len() as u32,
            ..Default::default()
        };
        Self {
            me,
            query,
            deadline: now + timeout,
            contacts: map,
            transmits,
            outcome,
        }
    }

    /// The query sent to every contact: its query id and item (spec §8.3.1).
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The next request to send (spec §8.3.1 step 3).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`AskRound::handle_timeout`] must next be called, if the round is not done.
    /// Spec: §8.3.1 step 4.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_done()).then_some(self.deadline)
    }

    /// An answer's bytes arrived from `from` (spec §8.3.3).
    pub fn handle_response(&mut self, from: NodeId, bytes: &[u8], now: Instant) {
        if now >= self.deadline {
            self.handle_timeout(now);
            return;
        }
        if !matches!(self.contacts.get(&from), Some(ContactState::Waiting)) {
            return; // not asked, or already settled: ignore duplicates
        }
        match self.check_answer(&from, bytes) {
            Ok(named) => {
                self.contacts.insert(from, ContactState::Answered);
                self.outcome.answered += 1;
                self.outcome.named.extend(named);
            }
            Err(failure) => self.fail(from, failure),
        }
    }

    fn check_answer(&self, from: &NodeId, bytes: &[u8]) -> Result<Vec<Named>, ContactFailure> {
        let answer =
            match decode_message::<PeerResponse>(bytes).map_err(ContactFailure::Misbehaved)? {
                PeerResponse::Answer(a) => a,
                PeerResponse::Refused(r) => return Err(ContactFailure::Refused(r)),
                PeerResponse::Welcome(_)
                | PeerResponse::Aggregate(_)
                | PeerResponse::Received
                | PeerResponse::CardUpdated => {
                    return Err(ContactFailure::Misbehaved(
                        crate::PeerMisbehaved::Unexpected("not an answer to a query").into(),
                    ))
                }
            };
        verify_answer(&self.me, &self.query, from, answer)
    }

    /// The transport could not deliver to, or read from, `from` (spec §8.3.3).
    pub fn handle_failure(&mut self, from: NodeId, failure: ContactFailure) {
        if matches!(self.contacts.get(&from), Some(ContactState::Waiting)) {
            self.fail(from, failure);
        }
    }

    fn fail(&mut self, from: NodeId, failure: ContactFailure) {
        self.contacts.insert(from, ContactState::Failed);
        self.outcome.failures.push((from, failure));
    }

    /// Time passed; at the deadline every contact still waiting is marked timed out.
    /// Spec: §8.3.1 step 5.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.deadline {
            return;
        }
        let waiting: Vec<NodeId> = self
            .contacts
            .iter()
            .filter(|(_, s)| matches!(s, ContactState::Waiting))
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.fail(id, ContactFailure::TimedOut);
        }
        self.transmits.clear();
    }

    /// Every contact answered or failed (spec §8.3.1 step 5).
    pub fn is_done(&self) -> bool {
        !self
            .contacts
            .values()
            .any(|s| matches!(s, ContactState::Waiting))
    }

    /// What was learned so far (complete once [`AskRound::is_done`]; spec §8.3.3).
    pub fn outcome(&self) -> &AskOutcome {
        &self.outcome
    }

    /// The outcome, consuming the round (spec §8.3.3).
    pub fn into_outcome(self) -> AskOutcome {
        self.outcome
    }
}

/// Check a named answer from `from` to `me` for `query` (spec §8.3.3): right query id, at
/// most [`MAX_NAMED_PER_ANSWER`] endorsements, every one signed by `from`, addressed to
/// `me`, for this query and within its item. All or nothing: one bad endorsement
/// discards the whole answer.
pub fn verify_answer(
    me: &NodeId,
    query: &Query,
    from: &NodeId,
    answer: crate::message::Answer,
) -> Result<Vec<Named>, ContactFailure> {
    let bad = |e: crate::PeerMisbehaved| ContactFailure::Misbehaved(e.into());
    if answer.query_id != query.query_id {
        return Err(bad(crate::PeerMisbehaved::Unexpected(
            "answer to another query",
        )));
    }
    if answer.named.len() > MAX_NAMED_PER_ANSWER {
        return Err(bad(crate::PeerMisbehaved::Unexpected(
            "too many endorsements",
        )));
    }
    answer
        .named
        .into_iter()
        .map(|signed| {
            let statement = signed
                .verify_for(from, me, &query.query_id, &query.item)
                .map_err(bad)?;
            Ok(Named {
                from: *from,
                statement,
                signed,
            })
        })
        .collect()
}
