//! Taking part in other nodes' aggregate asks (spec §9.8): one [`AggResponder`] per
//! (asker, query), kept until it finishes, aborts or its deadline passes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{AbortReason, AggRequest, AggResponse};
use kith_protocol::aggregation::responder::{AggResponder, ResponderSettings, EPSILON_RANGE};
use kith_protocol::wire::encode_value;
use kith_protocol::{answer_query, NodeId, PeerResponse, Query, QueryId, Refusal};
use rand_core::OsRng;

use crate::node::Shared;
use crate::store::AuditEvent;
use crate::{settings, unix_now};

/// How long a responder keeps an aggregation's state after round 0.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60);
/// Most aggregations one asker may have open here at once.
const MAX_OPEN_PER_ASKER: usize = 4;

/// One responder session and its last exchange, so that a duplicated request (a retry, or
/// the stale-connection race of §4.5) gets the same reply instead of aborting the session.
#[derive(Debug)]
struct Session {
    responder: AggResponder,
    last: Option<(Vec<u8>, AggResponse)>,
}

/// How long a (asker, query id) pair stays used: a second Advertise for it is refused.
const QUERY_ID_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Most remembered query ids; the oldest are forgotten first.
const MAX_REMEMBERED: usize = 100_000;

/// A session behind its own lock: the round's crypto runs under it, not under the map's,
/// so sessions of different asks proceed in parallel, and a duplicate of a request waits
/// for the first copy and then gets its reply.
type SharedSession = Arc<Mutex<Session>>;

fn lock_session(s: &SharedSession) -> std::sync::MutexGuard<'_, Session> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open responder sessions, and the query ids already used by each asker.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<(NodeId, QueryId), SharedSession>>,
    used: Mutex<HashMap<(NodeId, QueryId), Instant>>,
    /// Held from the budget check to the session insert and its `answered` audit entry, so
    /// that concurrent asks cannot all pass the check before any of them is counted.
    admission: Mutex<()>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(NodeId, QueryId), SharedSession>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mark (asker, query id) as used; false if it already was (a second session for the
    /// same query could replay round-3 signatures, spec §9.8.2).
    fn first_use(&self, key: (NodeId, QueryId), now: Instant) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, at| now.duration_since(*at) < QUERY_ID_MEMORY);
        if used.contains_key(&key) {
            return false;
        }
        if used.len() >= MAX_REMEMBERED {
            if let Some(oldest) = used.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                used.remove(&oldest);
            }
        }
        used.insert(key, now);
        true
    }

    /// Drop every session past its deadline or finished (secrets are wiped on drop). A
    /// session busy with a round stays until the next sweep.
    fn sweep(&self, now: Instant) {
        self.lock().retain(|_, s| match s.try_lock() {
            Ok(s) => s.responder.deadline() > now && !s.responder.is_finished(),
            Err(_) => true,
        });
    }

    fn remove(&self, key: &(NodeId, QueryId)) {
        self.lock().remove(key);
    }
}

fn query_id(r: &AggRequest) -> QueryId {
    match r {
        AggRequest::Advertise { query_id, .. }
        | AggRequest::ShareKeys { query_id, .. }
        | AggRequest::MaskInput { query_id, .. }
        | AggRequest::Consistency { query_id, .. }
        | AggRequest::Unmask { query_id, .. } => *query_id,
    }
}

fn abort(reason: AbortReason) -> PeerResponse {
    PeerResponse::Aggregate(AggResponse::Abort(reason))
}

/// Answer one aggregation request from `asker`, a contact.
pub(crate) fn handle(shared: &Arc<Shared>, asker: NodeId, request: AggRequest) -> PeerResponse {
    let now = Instant::now();
    let qid = query_id(&request);
    let encoded = encode_value(&request);
    let key = (asker, qid);
    let existing = shared.agg_sessions.lock().get(&key).cloned();
    if let Some(session) = existing {
        let mut session = lock_session(&session);
        if let Some((last_request, last_response)) = &session.last {
            if *last_request == encoded {
                return PeerResponse::Aggregate(last_response.clone());
            }
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
        let response = session
            .responder
            .handle(&shared.identity, request, &mut OsRng, now);
        if matches!(response, AggResponse::Abort(_)) {
            shared.agg_sessions.remove(&key);
        } else {
            session.last = Some((encoded, response.clone()));
        }
        return PeerResponse::Aggregate(response);
    }
    shared.agg_sessions.sweep(now);
    let AggRequest::Advertise {
        query_id,
        item,
        epsilon,
    } = request
    else {
        return abort(AbortReason::UnexpectedRound);
    };
    if epsilon.is_some_and(|e| !EPSILON_RANGE.contains(&e)) {
        return abort(AbortReason::Inconsistent);
    }
    if !shared.agg_sessions.first_use((asker, query_id), now) {
        return abort(AbortReason::UnexpectedRound);
    }
    let contact = match shared.store.contact(&asker) {
        Ok(Some(c)) => c,
        Ok(None) => return PeerResponse::Refused(Refusal::NotAContact),
        Err(e) => {
            tracing::error!("store: {e}");
            return PeerResponse::Refused(Refusal::Internal);
        }
    };
    let _admission = shared
        .agg_sessions
        .admission
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let since = unix_now().saturating_sub(24 * 3600);
    let loaded = (
        shared.store.endorsements(),
        shared.store.policy(),
        settings::load(&shared.store),
        shared.store.count_audit_since("answered", &asker, since),
    );
    let (endorsements, policy, mine, asked_today) = match loaded {
        (Ok(e), Ok(p), Ok(s), Ok(n)) => (e, p, s, n),
        _ => return PeerResponse::Refused(Refusal::Internal),
    };
    let open_for_asker = shared
        .agg_sessions
        .lock()
        .keys()
        .filter(|(a, _)| *a == asker)
        .count();
    let limit = if asked_today >= mine.asks_per_day {
        Some(format!(
            "{asked_today} asks in 24 h (limit {})",
            mine.asks_per_day
        ))
    } else if open_for_asker >= MAX_OPEN_PER_ASKER {
        Some(format!(
            "{open_for_asker} aggregations already open (limit {MAX_OPEN_PER_ASKER})"
        ))
    } else {
        None
    };
    if let Some(why) = limit {
        shared.audit(AuditEvent {
            event: "rate-limited",
            peer: Some(asker),
            peer_name: Some(&contact.name),
            item: Some(item.to_string()),
            detail: format!("declined: {why}"),
        });
        return abort(AbortReason::RateLimited);
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
    let responder = AggResponder::start(
        &shared.identity,
        Context { query_id, asker },
        contribution,
        ResponderSettings {
            epsilon: mine.epsilon,
            min_cohort: mine.min_cohort,
        },
        epsilon,
        &mut OsRng,
        now + SESSION_LIFETIME,
    );
    let response = AggResponse::Advertised {
        answer,
        advertisement: responder.advertisement().clone(),
    };
    {
        let mut open = shared.agg_sessions.lock();
        if let Some(first) = open.get(&(asker, query_id)) {
            // A copy of this Advertise raced us here: the first session stands, and its
            // reply is the reply (no second session, no second audit entry).
            return match &lock_session(first).last {
                Some((req, resp)) if *req == encoded => PeerResponse::Aggregate(resp.clone()),
                _ => abort(AbortReason::UnexpectedRound),
            };
        }
        let last = Some((encoded, response.clone()));
        let session = Arc::new(Mutex::new(Session { responder, last }));
        open.insert((asker, query_id), session);
    }
    shared.audit(AuditEvent {
        event: "answered",
        peer: Some(asker),
        peer_name: Some(&contact.name),
        item: Some(item.to_string()),
        detail: format!("{}; counted in an aggregate", disclosure.describe()),
    });
    crate::approvals::record_after_reply(shared, asker, contact.name, query, disclosure);
    PeerResponse::Aggregate(response)
}
