//! Taking part in other nodes' aggregate asks (spec §9.8): one [`AggResponder`] per
//! (asker, query), kept until it finishes, aborts or its deadline passes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{AbortReason, AggRequest, AggResponse};
use kith_protocol::aggregation::responder::{
    AggResponder, AskTerms, ResponderSettings, EPSILON_RANGE,
};
use kith_protocol::aggregation::CryptoWork;
use kith_protocol::wire::encode_value;
use kith_protocol::{answer_query, Disclosure, NodeId, PeerResponse, Query, QueryId, Refusal};
use rand_core::OsRng;

use crate::node::Shared;
use crate::store::{AuditEvent, Event};
use crate::{settings, unix_now};
use kith_protocol::budget::OverBudget;

/// How long a responder keeps an aggregation's state after round 0.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60);
/// Most aggregations one asker may have open here at once.
const MAX_OPEN_PER_ASKER: usize = 4;

/// One responder session and every exchange it answered (at most one per round), so that
/// a duplicated request — a retry, or the stale-connection race of §4.5, whose first copy
/// may arrive after the asker moved on to the next round — gets the same reply instead of
/// aborting the session (spec §9.8.1).
#[derive(Debug)]
struct Session {
    responder: AggResponder,
    exchanges: Vec<(Vec<u8>, AggResponse)>,
    /// For the audit entry written when the input is counted: the asker's name, the item.
    asker_name: String,
    item: String,
}

/// How long a (asker, query id) pair stays used: a second Advertise for it is refused.
const QUERY_ID_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Most remembered query ids; the oldest are forgotten first.
const MAX_REMEMBERED: usize = 100_000;

/// A session behind its own lock: the round's crypto runs under it, not under the map's,
/// so sessions of different asks proceed in parallel, and a duplicate of a request waits
/// for the first copy and then gets its reply. `None` while its `Advertise` is being
/// admitted, and after an admission that failed.
///
/// Lock order: a session's lock, then the map's; the map's lock is never held while
/// waiting for a session's (only `try_lock` or a lock nobody else can hold yet).
type SharedSession = Arc<Mutex<Option<Session>>>;

fn lock_session(s: &SharedSession) -> std::sync::MutexGuard<'_, Option<Session>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Query ids whose session was admitted, forgotten oldest first: O(1) per admission.
#[derive(Debug, Default)]
struct UsedIds {
    at: HashMap<(NodeId, QueryId), Instant>,
    order: VecDeque<((NodeId, QueryId), Instant)>,
}

impl UsedIds {
    fn prune(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front().copied() {
            if now.duration_since(at) < QUERY_ID_MEMORY && self.order.len() <= MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            self.at.remove(&key);
        }
    }

    fn contains(&mut self, key: &(NodeId, QueryId), now: Instant) -> bool {
        self.prune(now);
        self.at.contains_key(key)
    }

    fn insert(&mut self, key: (NodeId, QueryId), now: Instant) {
        self.at.insert(key, now);
        self.order.push_back((key, now));
        self.prune(now);
    }
}

/// Open responder sessions, and the query ids already used by each asker.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<(NodeId, QueryId), SharedSession>>,
    used: Mutex<UsedIds>,
    /// Public-key operations done as a responder since the node started.
    work: Mutex<CryptoWork>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(NodeId, QueryId), SharedSession>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn used(&self) -> std::sync::MutexGuard<'_, UsedIds> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drop every session past its deadline, finished, or whose admission failed (secrets
    /// are wiped on drop). A session busy with a round stays until the next sweep.
    pub(crate) fn sweep(&self, now: Instant) {
        self.lock().retain(|_, s| match s.try_lock() {
            Ok(s) => s
                .as_ref()
                .is_some_and(|s| s.responder.deadline() > now && !s.responder.is_finished()),
            Err(_) => true,
        });
    }

    fn remove(&self, key: &(NodeId, QueryId)) {
        self.lock().remove(key);
    }

    /// Add what a session just did to the node's total.
    fn add_work(&self, done: CryptoWork) {
        *self.work.lock().unwrap_or_else(|p| p.into_inner()) += done;
    }

    /// Public-key operations done as a responder since the node started.
    pub(crate) fn work(&self) -> CryptoWork {
        *self.work.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Responder sessions currently held (their secrets included).
    pub(crate) fn open_count(&self) -> usize {
        self.lock().len()
    }
}

fn query_id(r: &AggRequest) -> QueryId {
    match r {
        AggRequest::Advertise { query_id, .. }
        | AggRequest::ShareKeys { query_id, .. }
        | AggRequest::MaskInput { query_id, .. }
        | AggRequest::Consistency { query_id, .. }
        | AggRequest::Unmask { query_id, .. }
        | AggRequest::Close { query_id } => *query_id,
    }
}

/// What the `answered` audit entry says about the aggregate: what this node will add to
/// it, and that it is counted only if the asker releases one (a `counted` entry follows).
fn aggregate_part(contribution: &Contribution, disclosure: &Disclosure) -> String {
    let what = if contribution.owns {
        "as owning it"
    } else {
        "as not owning it"
    };
    let none = disclosure
        .withheld
        .iter()
        .any(|(_, share)| !share.counts_in_aggregate());
    format!(
        "taking part in an aggregate, {what}, counted only if the asker releases one{}",
        if none {
            " (items shared as none are left out of it)"
        } else {
            ""
        }
    )
}

fn abort(reason: AbortReason) -> PeerResponse {
    PeerResponse::Aggregate(AggResponse::Abort(reason))
}

/// Answer one aggregation request from `asker`, a contact.
pub(crate) fn handle(shared: &Arc<Shared>, asker: NodeId, request: AggRequest) -> PeerResponse {
    let now = Instant::now();
    let key = (asker, query_id(&request));
    let encoded = encode_value(&request);
    if matches!(request, AggRequest::Close { .. }) {
        // The asker is done: drop the session now (its secrets are wiped when the last
        // reference goes), so that it no longer counts among the asker's open sessions.
        shared.agg_sessions.remove(&key);
        return PeerResponse::Aggregate(AggResponse::Closed);
    }
    let is_advertise = matches!(request, AggRequest::Advertise { .. });
    if is_advertise {
        shared.agg_sessions.sweep(now);
    }
    // Find the session, or reserve a fresh one for an Advertise, locked before anyone else
    // can see it, so that a copy of the same Advertise waits for our reply.
    let fresh: SharedSession = Arc::new(Mutex::new(None));
    let mut reserved = None;
    let existing = {
        let mut open = shared.agg_sessions.lock();
        match open.get(&key) {
            Some(s) => Some(s.clone()),
            None if !is_advertise => return abort(AbortReason::UnexpectedRound),
            // A query id whose session already ran: a second session could replay its
            // round-3 signatures (spec §9.8.2).
            None if shared.agg_sessions.used().contains(&key, now) => {
                return abort(AbortReason::UnexpectedRound)
            }
            None => {
                reserved = Some(lock_session(&fresh));
                open.insert(key, fresh.clone());
                None
            }
        }
    };
    if let Some(session) = existing {
        return continue_session(shared, key, &session, request, encoded, now);
    }
    let mut slot = reserved.expect("reserved above");
    match admit(shared, asker, request, &encoded, now) {
        Admission::Admitted {
            session,
            response,
            after,
        } => {
            *slot = Some(*session);
            shared.agg_sessions.used().insert(key, now);
            drop(slot);
            after(shared);
            response
        }
        Admission::Declined(response) => {
            shared.agg_sessions.remove(&key);
            response
        }
    }
}

/// A request for a session that exists (or is being admitted by a copy of its Advertise).
fn continue_session(
    shared: &Arc<Shared>,
    key: (NodeId, QueryId),
    session: &SharedSession,
    request: AggRequest,
    encoded: Vec<u8>,
    now: Instant,
) -> PeerResponse {
    let mut guard = lock_session(session);
    let Some(session) = guard.as_mut() else {
        // Its admission failed: the copy that opened it got the real answer.
        return abort(AbortReason::UnexpectedRound);
    };
    if let Some((_, answered)) = session.exchanges.iter().find(|(r, _)| *r == encoded) {
        return PeerResponse::Aggregate(answered.clone());
    }
    if session.responder.deadline() <= now {
        shared.agg_sessions.remove(&key);
        return abort(AbortReason::Expired);
    }
    if matches!(request, AggRequest::Advertise { .. }) {
        // The same query id with other parameters: a replay or a lie.
        shared.agg_sessions.remove(&key);
        return abort(AbortReason::UnexpectedRound);
    }
    let before = session.responder.work();
    let response = session.responder.handle(request, &mut OsRng, now);
    shared
        .agg_sessions
        .add_work(session.responder.work() - before);
    if matches!(response, AggResponse::Abort(_)) {
        shared.agg_sessions.remove(&key);
    } else {
        if matches!(response, AggResponse::Unmasked(_)) {
            // Only now is it certain that this node's input is in a released sum.
            shared.audit(AuditEvent {
                event: Event::Counted,
                peer: Some(key.0),
                peer_name: Some(&session.asker_name),
                item: Some(session.item.clone()),
                detail:
                    "this node's answer is in the sum the asker can now release, with its noise"
                        .into(),
            });
        }
        session.exchanges.push((encoded, response.clone()));
    }
    PeerResponse::Aggregate(response)
}

/// What happens after a session is admitted and unlocked: its pending approvals.
type AfterAdmission = Box<dyn FnOnce(&Arc<Shared>)>;

/// The outcome of round 0 for a reserved session.
enum Admission {
    Admitted {
        session: Box<Session>,
        response: PeerResponse,
        after: AfterAdmission,
    },
    Declined(PeerResponse),
}

/// Round 0 for a reserved session: budget, the named answer and the responder's keys.
fn admit(
    shared: &Arc<Shared>,
    asker: NodeId,
    request: AggRequest,
    encoded: &[u8],
    now: Instant,
) -> Admission {
    let AggRequest::Advertise {
        query_id,
        item,
        epsilon,
        detail,
    } = request
    else {
        unreachable!("only an Advertise opens a session");
    };
    if epsilon.is_some_and(|e| !EPSILON_RANGE.contains(&e)) {
        return Admission::Declined(abort(AbortReason::Inconsistent));
    }
    let contact = match shared.store.contact(&asker) {
        Ok(Some(c)) => c,
        Ok(None) => return Admission::Declined(PeerResponse::Refused(Refusal::NotAContact)),
        Err(e) => {
            tracing::error!("store: {e}");
            return Admission::Declined(PeerResponse::Refused(Refusal::Internal));
        }
    };
    let loaded = (
        shared.store.endorsements(),
        shared.store.policy(),
        settings::load(&shared.store),
    );
    let (endorsements, policy, mine) = match loaded {
        (Ok(e), Ok(p), Ok(s)) => (e, p, s),
        _ => return Admission::Declined(PeerResponse::Refused(Refusal::Internal)),
    };
    // What this ask may cost this node's owner: the ε its noise will be drawn at, at most
    // its own setting or the asker's, whichever is stricter (no noise, no ε to count).
    let cost = [mine.epsilon, epsilon]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
    let limits = crate::budget::limits(&mine);
    let decline = |why: String, reason: AbortReason| {
        shared
            .budget
            .declined(shared, asker, &contact.name, item.to_string(), &why);
        Admission::Declined(abort(reason))
    };
    let over = |over: OverBudget| {
        let reason = match over {
            OverBudget::Privacy { .. } => AbortReason::PrivacyBudget,
            OverBudget::Daily { .. } => AbortReason::RateLimited,
        };
        decline(over.to_string(), reason)
    };
    // Checked before the keys are made, and again when the ask is recorded.
    match crate::budget::precheck(shared, &asker, limits, cost) {
        Ok(Ok(())) => {}
        Ok(Err(o)) => return over(o),
        Err(e) => {
            tracing::error!("store: {e}");
            return Admission::Declined(PeerResponse::Refused(Refusal::Internal));
        }
    }
    // Sessions open for this asker, other than the one being admitted.
    let open_for_asker = shared
        .agg_sessions
        .lock()
        .keys()
        .filter(|(a, q)| *a == asker && *q != query_id)
        .count();
    if open_for_asker >= MAX_OPEN_PER_ASKER {
        return decline(
            format!("{open_for_asker} aggregations already open (limit {MAX_OPEN_PER_ASKER})"),
            AbortReason::TooManyOpen,
        );
    }
    let query = Query {
        query_id,
        item: item.clone(),
    };
    let (answer, disclosure) = answer_query(
        &shared.identity,
        &endorsements,
        &policy,
        &asker,
        &contact.circle,
        &query,
        unix_now(),
    );
    let contribution =
        Contribution::from_shelf(&endorsements, &policy, &asker, &contact.circle, &item);
    // Read only for an admitted ask: a flood of declined ones must not cost a table scan.
    let Ok(contacts) = shared.store.contact_ids() else {
        return Admission::Declined(PeerResponse::Refused(Refusal::Internal));
    };
    let responder = AggResponder::start(
        &shared.identity,
        Context { query_id, asker },
        contribution,
        ResponderSettings {
            epsilon: mine.epsilon,
            min_cohort: mine.min_cohort,
        },
        AskTerms { epsilon, detail },
        contacts,
        &mut OsRng,
        now + shared.options.session_lifetime,
    );
    shared.agg_sessions.add_work(responder.work());
    let response = AggResponse::Advertised {
        answer,
        advertisement: responder.advertisement().clone(),
    };
    // The `answered` entry and the ε charged, in one transaction with the budget check: an
    // ask that cannot be recorded is not answered (the budget fails closed).
    let answered = AuditEvent {
        event: Event::Answered,
        peer: Some(asker),
        peer_name: Some(&contact.name),
        item: Some(item.to_string()),
        detail: format!(
            "{}; {}",
            disclosure.describe(),
            aggregate_part(&contribution, &disclosure)
        ),
    };
    match shared
        .store
        .charge_answer(unix_now(), &answered, limits, cost)
    {
        Ok(Ok(())) => {}
        Ok(Err(o)) => return over(o),
        Err(e) => {
            tracing::error!("store: could not record an answer: {e}");
            return Admission::Declined(PeerResponse::Refused(Refusal::Internal));
        }
    }
    let session = Session {
        responder,
        exchanges: vec![(encoded.to_vec(), response.clone())],
        asker_name: contact.name.clone(),
        item: item.to_string(),
    };
    let after: AfterAdmission = Box::new(move |shared| {
        crate::approvals::record_after_reply(shared, asker, contact.name, query, disclosure)
    });
    Admission::Admitted {
        session: Box::new(session),
        response: PeerResponse::Aggregate(response),
        after,
    }
}
