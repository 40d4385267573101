//! Consent `ask` (spec §8.5). When a matching endorsement's share is `ask`, the responder
//! answers exactly as for `count` and records a pending request. If its owner approves, a
//! named endorsement bound to the original asker and query is delivered to the asker's
//! node, which records it as an update to that answer; if the owner denies, nothing is sent.

use std::sync::Arc;

use kith_protocol::app::{
    AnswerUpdate, AppError, AppErrorCode, NamedEndorsement, PendingRequest, PendingStatus,
};
use kith_protocol::endorsement::STATEMENT_VERSION;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    Disclosure, EndorsementStatement, ItemKey, NodeId, PeerRequest, PeerResponse, Query, Refusal,
    SignedEndorsement,
};

use crate::replies::{err, internal};
use crate::shared::Shared;
use crate::store::{AuditEvent, Event};
use crate::{peers, unix_now};

/// Longest an approval waits for the asker's node.
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long after an ask its late endorsements are accepted (and a pending request for
/// it may still be approved).
use kith_protocol::endorsement::LATE_WINDOW_SECS as UPDATE_WINDOW_SECS;

/// Record pending requests for `items` off the reply path: the reply for an `ask` item
/// must not take longer than for `count` (each write here is an fsync), or the asker could
/// tell them apart by latency (spec §8.5.1).
pub(crate) fn record_pending(
    shared: &Arc<Shared>,
    asker: NodeId,
    asker_name: String,
    query: Query,
    items: Vec<ItemKey>,
) {
    if items.is_empty() {
        return;
    }
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        for item in &items {
            record(&shared, &asker, &asker_name, &query, item);
        }
    });
}

/// [`record_pending`] for the matching items of `disclosure` shared as `ask`.
pub(crate) fn record_after_reply(
    shared: &Arc<Shared>,
    asker: NodeId,
    asker_name: String,
    query: Query,
    disclosure: Disclosure,
) {
    let items = disclosure
        .withheld
        .into_iter()
        .filter(|(_, share)| share.asks_owner())
        .map(|(item, _)| item)
        .collect();
    record_pending(shared, asker, asker_name, query, items);
}

/// Record a pending request for `item`, audited when new.
fn record(shared: &Shared, asker: &NodeId, asker_name: &str, query: &Query, item: &ItemKey) {
    match shared
        .store
        .add_pending(asker, &query.query_id, item, &query.item, unix_now())
    {
        Ok(true) => shared.audit(AuditEvent {
            event: Event::Pending,
            peer: Some(*asker),
            peer_name: Some(asker_name),
            item: Some(item.to_string()),
            detail: "waiting for approval (kith pending)".into(),
        }),
        Ok(false) => {}
        Err(e) => tracing::error!("store: {e}"),
    }
}

/// Mark requests older than the asker's update window as `expired` (spec §8.5.1): an
/// approval could no longer be delivered.
pub(crate) fn expire_old(shared: &Shared) -> Result<(), AppError> {
    let now = unix_now();
    shared
        .store
        .expire_pending(now.saturating_sub(UPDATE_WINDOW_SECS), now)
        .map_err(internal)?;
    Ok(())
}

/// `ListPending`: every request, newest first, after expiring the old ones.
pub(crate) fn list_pending(shared: &Shared) -> Result<Vec<PendingRequest>, AppError> {
    expire_old(shared)?;
    shared.store.pending_requests().map_err(internal)
}

fn pending(shared: &Shared, id: u64) -> Result<PendingRequest, AppError> {
    expire_old(shared)?;
    let p = shared
        .store
        .pending_request(id)
        .map_err(internal)?
        .ok_or_else(|| err(AppErrorCode::NotFound, format!("no pending request {id}")))?;
    if p.status != PendingStatus::Pending {
        return Err(err(
            AppErrorCode::Conflict,
            format!("request {id} was already {}", p.status),
        ));
    }
    Ok(p)
}

/// Approve: sign the endorsement for the original asker and query and deliver it.
pub(crate) async fn approve(shared: &Arc<Shared>, id: u64) -> Result<PendingRequest, AppError> {
    let p = pending(shared, id)?;
    let no_longer = |what: String| {
        err(
            AppErrorCode::Conflict,
            format!("{what}; deny the request instead"),
        )
    };
    let endorsement = shared
        .store
        .endorsements()
        .map_err(internal)?
        .into_iter()
        .find(|e| e.item == p.item)
        .ok_or_else(|| no_longer(format!("{} is no longer endorsed", p.item)))?;
    let contact = shared
        .store
        .contact(&p.asker)
        .map_err(internal)?
        .ok_or_else(|| no_longer("the asker is no longer a contact".into()))?;
    let statement = EndorsementStatement {
        version: STATEMENT_VERSION,
        endorser: shared.identity.node_id(),
        audience: p.asker,
        query_id: p.query_id,
        endorsement,
        issued_at: unix_now(),
    };
    let signed = statement.sign(&shared.identity);
    // Claim the decision first, so that a concurrent Deny or second Approve cannot also
    // act; give it back if the delivery fails.
    if !shared
        .store
        .decide_pending(id, PendingStatus::Approved, unix_now())
        .map_err(internal)?
    {
        return Err(err(
            AppErrorCode::Conflict,
            format!("request {id} was decided meanwhile"),
        ));
    }
    if let Err(e) = deliver(shared, &p, &contact.name, &contact.card, signed).await {
        shared.store.reopen_pending(id).map_err(internal)?;
        return Err(e);
    }
    shared.audit(AuditEvent {
        event: Event::Approved,
        peer: Some(p.asker),
        peer_name: Some(&contact.name),
        item: Some(p.item.to_string()),
        detail: "named endorsement delivered".into(),
    });
    shared
        .store
        .pending_request(id)
        .map_err(internal)?
        .ok_or_else(|| internal("request vanished"))
}

async fn deliver(
    shared: &Arc<Shared>,
    p: &PendingRequest,
    name: &str,
    card: &kith_protocol::SignedCard,
    signed: SignedEndorsement,
) -> Result<(), AppError> {
    let addresses = card.addresses();
    let payload = encode_message(&PeerRequest::Deliver(signed));
    let exchange = peers::request(shared, p.asker, &addresses, &payload);
    let reply = tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()))
        .map_err(|e| {
            err(
                AppErrorCode::Unreachable,
                format!("cannot reach {name}'s node ({e}); the request stays pending"),
            )
        })?;
    match decode_message::<PeerResponse>(&reply) {
        Ok(PeerResponse::Received) => Ok(()),
        Ok(PeerResponse::Refused(Refusal::Internal)) => Err(err(
            AppErrorCode::Unreachable,
            format!("{name}'s node failed; the request stays pending"),
        )),
        Ok(PeerResponse::Refused(r)) => Err(err(
            AppErrorCode::PeerMisbehaved,
            format!("{name} refused the endorsement: {r}"),
        )),
        _ => Err(err(
            AppErrorCode::PeerMisbehaved,
            format!("{name} sent an unexpected reply"),
        )),
    }
}

/// Deny: nothing is sent; the asker never learns there was anything to approve.
pub(crate) fn deny(shared: &Shared, id: u64) -> Result<PendingRequest, AppError> {
    let p = pending(shared, id)?;
    // Only the call that moves the request out of `pending` decides it: a concurrent
    // Approve that claimed it first wins, and this Deny is a conflict, not a second entry.
    if !shared
        .store
        .decide_pending(id, PendingStatus::Denied, unix_now())
        .map_err(internal)?
    {
        return Err(err(
            AppErrorCode::Conflict,
            format!("request {id} was decided meanwhile"),
        ));
    }
    shared.audit(AuditEvent {
        event: Event::Denied,
        peer: Some(p.asker),
        peer_name: Some(&p.asker_name),
        item: Some(p.item.to_string()),
        detail: "nothing sent".into(),
    });
    shared
        .store
        .pending_request(id)
        .map_err(internal)?
        .ok_or_else(|| internal("request vanished"))
}

/// Late endorsements as app-visible updates.
pub(crate) fn updates(
    shared: &Shared,
    query_id: Option<&kith_protocol::QueryId>,
    app: Option<&NodeId>,
) -> Result<Vec<AnswerUpdate>, AppError> {
    let contacts = shared.store.contacts().map_err(internal)?;
    shared
        .store
        .late_endorsements(query_id, app)
        .map_err(internal)?
        .into_iter()
        .filter_map(|(qid, endorser, signed, received_at)| {
            let statement = signed.verify_signature().ok()?;
            let name = contacts
                .iter()
                .find(|c| c.node_id == endorser)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            Some(Ok(AnswerUpdate {
                query_id: qid,
                received_at,
                named: NamedEndorsement {
                    name,
                    node: endorser,
                    endorsement: statement.endorsement,
                    signed,
                },
            }))
        })
        .collect()
}
