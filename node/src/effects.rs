//! Driving the protocol's responder endpoint ([`kith_protocol::endpoint`]): decide on the
//! store's state, apply the effects before the reply, and decide again when a conditional
//! effect lost a race. The rules are the protocol's; this file only writes.

use std::sync::Arc;

use kith_protocol::card::MAX_MOVES_PER_DAY;
use kith_protocol::endorsement::MAX_LATE_PER_CONTACT;
use kith_protocol::endpoint::{Answered, Condition, Decision, Effect, Endpoint, MAX_DECISIONS};
use kith_protocol::{NodeId, PeerRequest, PeerResponse, Refusal};

use crate::failure::Failure;
use crate::node_state::StoreState;
use crate::shared::Shared;
use crate::store::{AuditEvent, Event, RedeemOutcome};
use crate::unix_now;

/// Where a request came from: the key its connection authenticated, and the connection.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub key: NodeId,
    pub conn: quinn::Connection,
}

/// What to do with a request once its effects are written.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send `response`, then apply `after`.
    Reply {
        response: PeerResponse,
        after: Vec<Effect>,
    },
    /// A contact's aggregation round: its session answers it.
    Aggregate,
}

impl Outcome {
    pub(crate) fn refused(refusal: Refusal) -> Self {
        Outcome::Reply {
            response: PeerResponse::Refused(refusal),
            after: Vec::new(),
        }
    }
}

/// Whether a condition held when it was written.
enum Applied {
    Done,
    Lost,
}

/// Decide `request` and write what must be written before its reply. Blocking (store
/// writes, signatures): call it off the async workers.
pub(crate) fn decide(shared: &Arc<Shared>, origin: &Origin, request: &PeerRequest) -> Outcome {
    for _ in 0..MAX_DECISIONS {
        let now = unix_now();
        let card = shared.current_card();
        let endpoint = Endpoint::new(&shared.identity, &card);
        let reply = match endpoint.decide(&StoreState(&shared.store), origin.key, request, now) {
            Ok(Decision::Reply(reply)) => *reply,
            Ok(Decision::Aggregate) => return Outcome::Aggregate,
            Err(e) => return Outcome::refused(Failure::Store(e).refusal()),
        };
        match commit(shared, origin, reply.condition, reply.effects, now) {
            Ok(Applied::Done) => {
                return Outcome::Reply {
                    response: reply.response,
                    after: reply.after,
                }
            }
            Ok(Applied::Lost) => continue,
            Err(failure) => return Outcome::refused(failure.refusal()),
        }
    }
    tracing::warn!(peer = %origin.key.short(), "a request kept losing races; refused");
    Outcome::refused(Refusal::Internal)
}

/// Apply the effects that come after a reply was sent (or could not be). Failures are
/// logged: the reply is out.
pub(crate) fn apply_after(shared: &Arc<Shared>, origin: &Origin, after: Vec<Effect>) {
    if after.is_empty() {
        return;
    }
    if let Err(failure) = apply_all(shared, origin, after, unix_now()) {
        failure.log();
    }
}

/// Write `condition` if it still holds, then `effects`: what must be written before a
/// reply is sent.
fn commit(
    shared: &Arc<Shared>,
    origin: &Origin,
    condition: Option<Condition>,
    effects: Vec<Effect>,
    now: u64,
) -> Result<Applied, Failure> {
    if let Some(condition) = condition {
        if let Applied::Lost = write(shared, origin, condition, now)? {
            return Ok(Applied::Lost);
        }
    }
    apply_all(shared, origin, effects, now)?;
    Ok(Applied::Done)
}

/// Apply `effects` in order, stopping at the first that fails.
fn apply_all(
    shared: &Arc<Shared>,
    origin: &Origin,
    effects: Vec<Effect>,
    now: u64,
) -> Result<(), Failure> {
    for effect in effects {
        apply(shared, origin, effect, now)?;
    }
    Ok(())
}

/// Write `condition` if it still holds, in one transaction with its check.
fn write(
    shared: &Arc<Shared>,
    origin: &Origin,
    condition: Condition,
    now: u64,
) -> Result<Applied, Failure> {
    let store = &shared.store;
    let holds = match condition {
        Condition::Charge(answered) => charge(shared, &answered, now)?,
        Condition::AddContact { invite, contact } => {
            let (name, circle) = (contact.name.clone(), contact.circle.clone());
            let redeemed = store.redeem_invite(&invite, &contact, now)?;
            if redeemed == RedeemOutcome::Redeemed {
                shared.audit(AuditEvent {
                    event: Event::ContactAdded,
                    peer: Some(origin.key),
                    peer_name: Some(&name),
                    item: None,
                    detail: format!("redeemed our invite; circle {circle}"),
                });
            }
            redeemed == RedeemOutcome::Redeemed
        }
        Condition::ReplaceCard {
            contact,
            held,
            card,
            moved,
        } => {
            let entry = moved.as_ref().map(|m| AuditEvent {
                event: Event::ContactMoved,
                peer: Some(contact),
                peer_name: Some(&m.name),
                item: None,
                detail: format!("now reached at {}", m.addresses.join(", ")),
            });
            store.replace_contact_card(
                &contact,
                &held,
                &card,
                entry.as_ref(),
                now,
                MAX_MOVES_PER_DAY,
            )?
        }
    };
    Ok(if holds { Applied::Done } else { Applied::Lost })
}

fn apply(shared: &Arc<Shared>, origin: &Origin, effect: Effect, now: u64) -> Result<(), Failure> {
    let store = &shared.store;
    match effect {
        Effect::Declined {
            asker,
            asker_name,
            item,
            over,
        } => shared.budget.declined(
            store,
            asker,
            &asker_name,
            item.to_string(),
            &over.to_string(),
        ),
        Effect::RecordPending {
            asker,
            asker_name,
            query,
            items,
        } => crate::approvals::record_pending(shared, asker, asker_name, query, items),
        Effect::KeepConnection => crate::peers::remember(shared, origin.key, origin.conn.clone()),
        Effect::KeepLate {
            query_id,
            from,
            from_name,
            signed,
            item,
        } => {
            if store.add_late_endorsement(&query_id, &from, &signed, now, MAX_LATE_PER_CONTACT)? {
                shared.audit(AuditEvent {
                    event: Event::LateEndorsement,
                    peer: Some(from),
                    peer_name: Some(&from_name),
                    item: Some(item.to_string()),
                    detail: format!("approved after ask {}", query_id.to_hex()),
                });
            }
        }
        Effect::OfferCard { contact } => crate::card_updates::offer(shared, contact)?,
    }
    Ok(())
}

/// Count and record an answered ask, if it still fits its budget (spec §9.10).
fn charge(shared: &Shared, answered: &Answered, now: u64) -> Result<bool, Failure> {
    let entry = AuditEvent {
        event: Event::Answered,
        peer: Some(answered.asker),
        peer_name: Some(&answered.asker_name),
        item: Some(answered.item.to_string()),
        detail: answered.detail.clone(),
    };
    let charged = shared.store.charge_answer(
        now,
        &entry,
        answered.limits,
        answered.cost,
        answered.query_id.as_ref(),
    )?;
    Ok(charged.is_ok())
}
