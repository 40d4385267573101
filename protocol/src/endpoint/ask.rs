//! A plain `Ask` from a contact (spec §8.3.2): the budget, the named answer, its record,
//! and the pending requests of `ask` items.

use super::{Answered, Condition, Contact, Effect, Endpoint, NodeState, Reply};
use crate::budget::{self, Limits};
use crate::message::{PeerResponse, Query, Refusal};
use crate::responder::answer_query;

pub(super) fn decide<S: NodeState>(
    endpoint: &Endpoint<'_>,
    state: &S,
    contact: Contact,
    query: Query,
    now: u64,
) -> Result<Reply, S::Error> {
    let shelf = state.shelf()?;
    // The same daily budget as aggregations (spec §9.10), checked before the signatures,
    // and again when the answer is recorded, in one transaction with the count.
    let usage = state.usage(&contact.node_id, budget::window_start(now))?;
    if let Err(over) = budget::check(usage, shelf.limits, 0) {
        return Ok(declined(contact, query, over));
    }
    let (answer, disclosure) = answer_query(
        endpoint.identity,
        &shelf.endorsements,
        &shelf.policy,
        &contact.node_id,
        &contact.circle,
        &query,
        now,
    );
    let pending: Vec<_> = disclosure
        .withheld
        .iter()
        .filter(|(_, share)| share.asks_owner())
        .map(|(item, _)| item.clone())
        .collect();
    let charge = Condition::Charge(answered(
        &contact,
        &query,
        disclosure.describe(),
        shelf.limits,
    ));
    let after = if pending.is_empty() {
        Vec::new()
    } else {
        vec![Effect::RecordPending {
            asker: contact.node_id,
            asker_name: contact.name,
            query,
            items: pending,
        }]
    };
    Ok(Reply {
        response: PeerResponse::Answer(answer),
        condition: Some(charge),
        effects: Vec::new(),
        after,
    })
}

fn answered(contact: &Contact, query: &Query, detail: String, limits: Limits) -> Answered {
    Answered {
        asker: contact.node_id,
        asker_name: contact.name.clone(),
        item: query.item.clone(),
        detail,
        limits,
        cost: 0,
        query_id: None,
    }
}

/// Over budget: the visible decline, and its (coalesced) audit.
fn declined(contact: Contact, query: Query, over: budget::OverBudget) -> Reply {
    Reply {
        response: PeerResponse::Refused(Refusal::RateLimited),
        condition: None,
        effects: vec![Effect::Declined {
            asker: contact.node_id,
            asker_name: contact.name,
            item: query.item,
            over,
        }],
        after: Vec::new(),
    }
}
