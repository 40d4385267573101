//! A responder's sessions as a node keeps them (spec §9.8.1, §9.8.2, §9.8.6): each
//! aggregation's [`AggResponder`] with every exchange it answered, so that a copy of any
//! request gets the same reply; when a session counts as open and when it is dropped; and
//! the (asker, query id) pairs already used, so that a query id opens one session only.
//! Sans-IO: time is passed in; the node keeps these in its own tables and locks.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;

use super::messages::{AbortReason, AggRequest, AggResponse};
use super::responder::AggResponder;
use crate::identity::NodeId;
use crate::message::QueryId;

/// What identifies a responder session: the asker and its query id (spec §9.8.1).
pub type SessionKey = (NodeId, QueryId);

/// One admitted session (spec §9.8.2): its responder, every exchange it answered, and what
/// the node wants to remember with it (`C`: for the reference, the asker's name and the
/// item, for the audit entry written when the input is counted).
#[derive(Debug)]
pub struct ResponderSession<C> {
    responder: AggResponder,
    /// Each request answered, as the SHA-256 of its encoding (a round-1 request can be
    /// 64 KiB, and sessions are kept until their deadline), with the reply given: at most
    /// one per round, and the `Advertise` that opened it.
    exchanges: Vec<(RequestDigest, AggResponse)>,
    context: C,
}

/// What a request did to a session (spec §9.8.2 step 3, §9.8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A copy of a request already answered: the same reply again, and nothing changes.
    Replay(AggResponse),
    /// The next round's reply. `counted` when it is round 4's `Unmasked`: only then is the
    /// member's input certainly in a sum the asker can release.
    Reply {
        response: AggResponse,
        counted: bool,
    },
    /// The session ends with this reply (an abort, its expiry, a second `Advertise` with
    /// other parameters): the caller drops it.
    End(AggResponse),
}

impl<C> ResponderSession<C> {
    /// A session just admitted by the `Advertise` whose digest is `advertise`, answered
    /// `advertised` (spec §9.8.2 step 9).
    pub fn admitted(
        responder: AggResponder,
        advertise: RequestDigest,
        advertised: AggResponse,
        context: C,
    ) -> Self {
        ResponderSession {
            responder,
            exchanges: vec![(advertise, advertised)],
            context,
        }
    }

    /// The reply given to the request with this digest, if this session answered it
    /// (spec §9.8.2 step 3.2).
    pub fn replay(&self, digest: &RequestDigest) -> Option<AggResponse> {
        self.exchanges
            .iter()
            .find(|(r, _)| r == digest)
            .map(|(_, answered)| answered.clone())
    }

    /// Handle `request` (whose digest is `digest`) at `now`
    /// (spec §9.8.2 step 3, §9.8.3).
    pub fn handle(
        &mut self,
        request: AggRequest,
        digest: RequestDigest,
        rng: &mut impl CryptoRngCore,
        now: Instant,
    ) -> Step {
        if let Some(answered) = self.replay(&digest) {
            return Step::Replay(answered);
        }
        if self.responder.deadline() <= now {
            return Step::End(AggResponse::Abort(AbortReason::Expired));
        }
        if matches!(request, AggRequest::Advertise { .. }) {
            // The same query id with other parameters: a replay or a lie.
            return Step::End(AggResponse::Abort(AbortReason::UnexpectedRound));
        }
        let response = self.responder.handle(request, rng, now);
        if matches!(response, AggResponse::Abort(_)) {
            return Step::End(response);
        }
        let counted = matches!(response, AggResponse::Unmasked(_));
        self.exchanges.push((digest, response.clone()));
        Step::Reply { response, counted }
    }

    /// Kept until its deadline, finished or not: a copy of its last request (a lost
    /// `Unmasked`) still gets the reply it was given (spec §9.8.6).
    pub fn keep(&self, now: Instant) -> bool {
        self.responder.deadline() > now
    }

    /// Counts among its asker's open sessions (spec §9.10): until it finishes or aborts
    /// (an aborted one is dropped) or its deadline passes.
    pub fn is_open(&self, now: Instant) -> bool {
        self.keep(now) && !self.responder.is_finished()
    }

    /// The node's context kept with the session (spec §9.8.3 round 4: the `counted`
    /// audit entry).
    pub fn context(&self) -> &C {
        &self.context
    }

    /// The responder, for its work counters (spec §11.16).
    pub fn responder(&self) -> &AggResponder {
        &self.responder
    }
}

/// What a session remembers of a request it answered: the SHA-256 of its encoding, the
/// `AggRequest` re-encoded without the version (spec §9.8.1: copies are compared by that
/// encoding). Computed once per request received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDigest([u8; 32]);

impl RequestDigest {
    /// The digest of `request` (spec §9.8.1).
    pub fn of(request: &AggRequest) -> Self {
        use sha2::{Digest, Sha256};
        RequestDigest(Sha256::digest(crate::wire::encode_value(request)).into())
    }
}

/// How long an (asker, query id) pair stays used: a second `Advertise` for it is refused
/// (spec §9.8.2 step 4).
pub const QUERY_ID_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Most remembered pairs; the oldest are forgotten first (spec §9.8.2).
pub const MAX_REMEMBERED: usize = 100_000;

/// The (asker, query id) pairs whose session was admitted in the last 24 hours, forgotten
/// oldest first (spec §9.8.2 step 4): O(1) per admission. The node also stores them, so
/// that a restart does not forget them.
#[derive(Debug, Default)]
pub struct UsedQueries {
    at: HashMap<SessionKey, Instant>,
    order: VecDeque<(SessionKey, Instant)>,
}

impl UsedQueries {
    fn prune(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front().copied() {
            let old = now.checked_duration_since(at).unwrap_or_default() >= QUERY_ID_MEMORY;
            if !old && self.order.len() <= MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            if self.at.get(&key) == Some(&at) {
                self.at.remove(&key);
            }
        }
    }

    /// Whether `key` was used in the 24 hours before `now` (spec §9.8.2 step 4).
    pub fn contains(&mut self, key: &SessionKey, now: Instant) -> bool {
        self.prune(now);
        self.at.contains_key(key)
    }

    /// Record that `key` was used at `at` (at most `now`; earlier for pairs loaded from
    /// storage). Pairs must be inserted oldest first (spec §9.8.2 step 9).
    pub fn insert(&mut self, key: SessionKey, at: Instant, now: Instant) {
        self.at.insert(key, at);
        self.order.push_back((key, at));
        self.prune(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::input::Contribution;
    use crate::aggregation::keys::Context;
    use crate::aggregation::responder::{AskTerms, ResponderSettings};
    use crate::identity::Identity;
    use crate::item::ItemKey;
    use crate::testing::SimRng;

    fn key(n: u8) -> SessionKey {
        (NodeId([n; 32]), QueryId([n; 16]))
    }

    #[test]
    fn a_query_id_is_used_for_a_day_then_forgotten() {
        let t0 = Instant::now();
        let mut used = UsedQueries::default();
        used.insert(key(1), t0, t0);
        assert!(used.contains(&key(1), t0 + QUERY_ID_MEMORY - Duration::from_secs(1)));
        assert!(!used.contains(&key(2), t0));
        assert!(!used.contains(&key(1), t0 + QUERY_ID_MEMORY));
        // Loaded from storage: used an hour before the node started.
        let start = t0 + Duration::from_secs(7200);
        used.insert(key(3), start - Duration::from_secs(3600), start);
        assert!(used.contains(&key(3), start));
        assert!(!used.contains(&key(3), start + QUERY_ID_MEMORY - Duration::from_secs(3599)));
    }

    /// A session answering round 0 of a query, and the `Advertise` that opened it.
    fn session(rng: &mut SimRng, now: Instant) -> (ResponderSession<()>, AggRequest) {
        let identity = Identity::generate(rng);
        let asker = NodeId([9; 32]);
        let qid = QueryId([5; 16]);
        let advertise = AggRequest::Advertise {
            query_id: qid,
            item: ItemKey::parse("tag:x").unwrap(),
            epsilon: None,
            detail: false,
        };
        let responder = AggResponder::start(
            &identity,
            Context {
                query_id: qid,
                asker,
            },
            Contribution::default(),
            ResponderSettings {
                epsilon: Some(1000),
                min_cohort: 2,
            },
            AskTerms::default(),
            Default::default(),
            rng,
            now + Duration::from_secs(60),
        );
        let advertised = AggResponse::Closed; // any reply: only its replay is checked
        let s =
            ResponderSession::admitted(responder, RequestDigest::of(&advertise), advertised, ());
        (s, advertise)
    }

    #[test]
    fn copies_replay_and_a_second_advertise_or_expiry_ends_it() {
        let mut rng = SimRng(1);
        let now = Instant::now();
        let (mut s, advertise) = session(&mut rng, now);
        let copy = RequestDigest::of(&advertise);
        assert_eq!(
            s.handle(advertise.clone(), copy, &mut rng, now),
            Step::Replay(AggResponse::Closed)
        );
        // The same query id with another item: not a copy.
        let other = AggRequest::Advertise {
            query_id: QueryId([5; 16]),
            item: ItemKey::parse("tag:y").unwrap(),
            epsilon: None,
            detail: false,
        };
        let other_bytes = RequestDigest::of(&other);
        assert_eq!(
            s.handle(other, other_bytes, &mut rng, now),
            Step::End(AggResponse::Abort(AbortReason::UnexpectedRound))
        );
        // Past its deadline, a new request ends it, but a copy still gets its reply.
        let late = now + Duration::from_secs(60);
        assert_eq!(
            s.handle(advertise.clone(), copy, &mut rng, late),
            Step::Replay(AggResponse::Closed)
        );
        let close = AggRequest::Close {
            query_id: QueryId([5; 16]),
        };
        let close_bytes = RequestDigest::of(&close);
        assert_eq!(
            s.handle(close, close_bytes, &mut rng, late),
            Step::End(AggResponse::Abort(AbortReason::Expired))
        );
        assert!(s.is_open(now) && s.keep(now));
        assert!(!s.is_open(late) && !s.keep(late));
    }
}
