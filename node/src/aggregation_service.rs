//! Taking part in other nodes' aggregate asks (spec §9.8): one [`AggResponder`] per
//! (asker, query), kept until it finishes, aborts or its deadline passes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{AbortReason, AggRequest, AggResponse};
use kith_protocol::aggregation::responder::{
    AggResponder, AskTerms, ResponderSettings, EPSILON_RANGE,
};
use kith_protocol::aggregation::session::{RequestDigest, SessionKey, Step};

use crate::sessions::{lock_session, Audited, Session, SharedSession};
use kith_protocol::{
    answer_query, Disclosure, ItemKey, NodeId, PeerResponse, Query, QueryId, Refusal,
};
use rand_core::OsRng;

use crate::failure::Failure;
use crate::shared::Shared;
use crate::store::{AuditEvent, Event, StoredContact};
use crate::{settings, unix_now};

/// Most aggregations one asker may have open here at once.
const MAX_OPEN_PER_ASKER: usize = 4;
/// Longest wait for a free crypto slot (one per core) before a round is refused as busy.
const CRYPTO_WAIT: Duration = Duration::from_secs(10);

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

/// Answer one aggregation request from `asker`, a contact. `Close` and copies of requests
/// already answered are answered at once; anything else waits (at most [`CRYPTO_WAIT`]) for
/// one of the node's crypto slots and runs off the async workers.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    asker: NodeId,
    request: AggRequest,
) -> PeerResponse {
    let key = (asker, query_id(&request));
    if matches!(request, AggRequest::Close { .. }) {
        // The asker is done: drop the session now (its secrets are wiped when the last
        // reference goes), so that it no longer counts among the asker's open sessions.
        shared.agg_sessions.remove(&key);
        return PeerResponse::Aggregate(AggResponse::Closed);
    }
    // Hashed once: a round-1 request can be 64 KiB.
    let digest = RequestDigest::of(&request);
    if let Some(reply) = replay(shared, &key, &digest).await {
        return reply;
    }
    let busy = || {
        tracing::warn!(peer = %asker.short(), "aggregation round refused: node busy");
        PeerResponse::Refused(Refusal::Internal)
    };
    let waited = tokio::time::timeout(CRYPTO_WAIT, async {
        // One Advertise of an asker at a time, from before its slot is reserved until its
        // session is in place, so that the open sessions counted in its admission never
        // include another slot of its own still waiting; taken before a crypto slot, so
        // that one asker's waiting Advertises hold none.
        let admission = match request {
            AggRequest::Advertise { .. } => {
                Some(shared.agg_sessions.admission_lock(asker).lock_owned().await)
            }
            _ => None,
        };
        let slot = shared.round_slots.clone().acquire_owned().await;
        (admission, slot)
    });
    let (admission, slot) = match waited.await {
        Ok((admission, Ok(slot))) => (admission, slot),
        _ => return busy(),
    };
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let _held = (admission, slot);
        handle(&shared, key, request, digest)
    })
    .await
    .unwrap_or(PeerResponse::Refused(Refusal::Internal))
}

/// The stored reply to a copy of a request its session already answered. A session busy
/// with a round is waited for off the async workers and without a crypto slot, so that
/// requests waiting on one session never hold the slots other askers need.
async fn replay(shared: &Shared, key: &SessionKey, digest: &RequestDigest) -> Option<PeerResponse> {
    let session = shared.agg_sessions.lock().get(key)?.clone();
    if let Ok(guard) = session.try_lock() {
        return guard.as_ref()?.replay(digest).map(PeerResponse::Aggregate);
    }
    let digest = *digest;
    tokio::task::spawn_blocking(move || {
        lock_session(&session)
            .as_ref()?
            .replay(&digest)
            .map(PeerResponse::Aggregate)
    })
    .await
    .ok()
    .flatten()
}

/// A request that needs the session's lock, and perhaps its crypto.
fn handle(
    shared: &Arc<Shared>,
    key: SessionKey,
    request: AggRequest,
    digest: RequestDigest,
) -> PeerResponse {
    let now = Instant::now();
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
        return continue_session(shared, key, &session, request, digest, now);
    }
    let mut slot = reserved.expect("reserved above");
    match admit(shared, key.0, request, digest, now) {
        Ok(Admitted {
            session,
            response,
            after,
        }) => {
            *slot = Some(*session);
            shared.agg_sessions.used().insert(key, now, now);
            drop(slot);
            after(shared);
            response
        }
        Err(failure) => {
            shared.agg_sessions.remove(&key);
            failure.aggregate_response()
        }
    }
}

/// A request for a session that exists (or is being admitted by a copy of its Advertise).
fn continue_session(
    shared: &Arc<Shared>,
    key: SessionKey,
    session: &SharedSession,
    request: AggRequest,
    digest: RequestDigest,
    now: Instant,
) -> PeerResponse {
    let mut guard = lock_session(session);
    let Some(session) = guard.as_mut() else {
        // Its admission failed: the copy that opened it got the real answer.
        return abort(AbortReason::UnexpectedRound);
    };
    let before = session.responder().work();
    let step = session.handle(request, digest, &mut OsRng, now);
    shared
        .agg_sessions
        .add_work(session.responder().work() - before);
    match step {
        Step::Replay(response) => PeerResponse::Aggregate(response),
        Step::End(response) => {
            shared.agg_sessions.remove(&key);
            PeerResponse::Aggregate(response)
        }
        Step::Reply { response, counted } => {
            if counted {
                // Only now is it certain that this node's input is in a released sum.
                let context = session.context();
                shared.audit(AuditEvent {
                    event: Event::Counted,
                    peer: Some(key.0),
                    peer_name: Some(&context.asker_name),
                    item: Some(context.item.clone()),
                    detail:
                        "this node's answer is in the sum the asker can now release, with its noise"
                            .into(),
                });
            }
            PeerResponse::Aggregate(response)
        }
    }
}

/// What happens after a session is admitted and unlocked: its pending approvals.
type AfterAdmission = Box<dyn FnOnce(&Arc<Shared>)>;

/// Round 0 of a reserved session, admitted.
struct Admitted {
    session: Box<Session>,
    response: PeerResponse,
    after: AfterAdmission,
}

/// What round 0 reads from the store about the asker and this node's shelf.
struct Shelf {
    contact: StoredContact,
    endorsements: Vec<kith_protocol::Endorsement>,
    policy: kith_protocol::ConsentPolicy,
    mine: settings::AggSettings,
}

/// The asker as a contact, the endorsements, the policy and the settings.
fn load_shelf(shared: &Shared, asker: &NodeId) -> Result<Shelf, Failure> {
    let contact = shared.store.contact(asker)?.ok_or(Failure::NotAContact)?;
    Ok(Shelf {
        contact,
        endorsements: shared.store.endorsements()?,
        policy: shared.store.policy()?,
        mine: settings::load(&shared.store)?,
    })
}

/// What an `Advertise` asks for (spec §9.7.1).
struct Advertised {
    query_id: QueryId,
    item: ItemKey,
    terms: AskTerms,
}

/// Round 0 for a reserved session (spec §9.8.2 steps 5–9). A decline for one of the
/// owner's limits is audited (coalesced, spec §11.9).
fn admit(
    shared: &Arc<Shared>,
    asker: NodeId,
    request: AggRequest,
    digest: RequestDigest,
    now: Instant,
) -> Result<Admitted, Failure> {
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
        return Err(Failure::Aborted(AbortReason::Inconsistent));
    }
    let shelf = load_shelf(shared, &asker)?;
    let name = shelf.contact.name.clone();
    let item_text = item.to_string();
    let terms = AskTerms { epsilon, detail };
    let ask = Advertised {
        query_id,
        item,
        terms,
    };
    let admitted = admit_contact(shared, asker, ask, shelf, digest, now);
    if let Some(why) = admitted.as_ref().err().and_then(Failure::decline) {
        shared
            .budget
            .declined(&shared.store, asker, &name, item_text, &why);
    }
    admitted
}

/// Round 0 for a contact: the limits, the named answer, the responder's keys, and the
/// record of the answer.
fn admit_contact(
    shared: &Arc<Shared>,
    asker: NodeId,
    ask: Advertised,
    shelf: Shelf,
    digest: RequestDigest,
    now: Instant,
) -> Result<Admitted, Failure> {
    let name = shelf.contact.name.clone();
    // What this ask may cost this node's owner: the ε its noise will be drawn at, at most
    // its own setting or the asker's, whichever is stricter (no noise, no ε to count).
    let cost = [shelf.mine.epsilon, ask.terms.epsilon]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
    let limits = crate::budget::limits(&shelf.mine);
    // Checked before the keys are made, and again when the ask is recorded.
    crate::budget::precheck(&shared.store, &asker, limits, cost)?.map_err(Failure::OverBudget)?;
    // Sessions open for this asker, other than the one being admitted: admitted ones only
    // (its admissions run one at a time, so none can be half-way).
    let open = shared.agg_sessions.open_for(&asker, &ask.query_id, now);
    if open >= MAX_OPEN_PER_ASKER {
        let limit = MAX_OPEN_PER_ASKER;
        return Err(Failure::TooManyOpen { open, limit });
    }
    let query_id = ask.query_id;
    let started = start(shared, asker, ask, shelf, now)?;
    // The `answered` entry and the ε charged, in one transaction with the budget check: an
    // ask that cannot be recorded is not answered (the budget fails closed).
    shared
        .store
        .charge_answer(
            unix_now(),
            &started.answered(asker, &name),
            limits,
            cost,
            Some(&query_id),
        )?
        .map_err(Failure::OverBudget)?;
    Ok(started.admitted(asker, name, digest))
}

/// A responder started for an admitted ask, before its answer is recorded.
struct Started {
    query: Query,
    responder: AggResponder,
    response: AggResponse,
    disclosure: Disclosure,
    contribution: Contribution,
}

/// The named answer, the input, and the responder's keys (spec §9.8.2 steps 8–9).
fn start(
    shared: &Shared,
    asker: NodeId,
    ask: Advertised,
    shelf: Shelf,
    now: Instant,
) -> Result<Started, Failure> {
    let Shelf {
        contact,
        endorsements,
        policy,
        mine,
    } = shelf;
    let Advertised {
        query_id,
        item,
        terms,
    } = ask;
    let query = Query { query_id, item };
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
        Contribution::from_shelf(&endorsements, &policy, &asker, &contact.circle, &query.item);
    // Read only for an admitted ask: a flood of declined ones must not cost a table scan.
    let contacts = shared.store.contact_ids()?;
    let responder = AggResponder::start(
        &shared.identity,
        Context { query_id, asker },
        contribution,
        ResponderSettings {
            epsilon: mine.epsilon,
            min_cohort: mine.min_cohort,
        },
        terms,
        contacts,
        &mut OsRng,
        now + shared.options.session_lifetime,
    );
    shared.agg_sessions.add_work(responder.work());
    let response = AggResponse::Advertised {
        answer,
        advertisement: responder.advertisement().clone(),
    };
    Ok(Started {
        query,
        responder,
        response,
        disclosure,
        contribution,
    })
}

impl Started {
    /// The `answered` audit entry (spec §8.3.5).
    fn answered<'a>(&self, asker: NodeId, name: &'a str) -> AuditEvent<'a> {
        AuditEvent {
            event: Event::Answered,
            peer: Some(asker),
            peer_name: Some(name),
            item: Some(self.query.item.to_string()),
            detail: format!(
                "{}; {}",
                self.disclosure.describe(),
                aggregate_part(&self.contribution, &self.disclosure)
            ),
        }
    }

    /// The session to put in its slot, its reply, and the pending requests to record once
    /// the slot is released.
    fn admitted(self, asker: NodeId, name: String, digest: RequestDigest) -> Admitted {
        let session = Session::admitted(
            self.responder,
            digest,
            self.response.clone(),
            Audited {
                asker_name: name.clone(),
                item: self.query.item.to_string(),
            },
        );
        let (query, disclosure) = (self.query, self.disclosure);
        let after: AfterAdmission = Box::new(move |shared| {
            crate::approvals::record_after_reply(shared, asker, name, query, disclosure)
        });
        Admitted {
            session: Box::new(session),
            response: PeerResponse::Aggregate(self.response),
            after,
        }
    }
}
