//! A contact's new card (spec §8.6.3): the protocol's check, then the daily move limit.

use super::{Condition, Effect, Moved, NodeState, Reply};
use crate::budget::window_start;
use crate::card::{check_update, CardUpdate, SignedCard, MAX_MOVES_PER_DAY};
use crate::message::{PeerResponse, Refusal};
use crate::NodeId;

pub(super) fn decide<S: NodeState>(
    state: &S,
    sender: NodeId,
    update: &SignedCard,
    now: u64,
) -> Result<Reply, S::Error> {
    let Some(contact) = state.contact(&sender)? else {
        return Ok(Reply::refused(Refusal::NotAContact));
    };
    let card = match check_update(update, sender, &contact.card, now) {
        Ok(CardUpdate::Replace(card)) => card,
        // A retry that lost a race to a later card: nothing to store.
        Ok(CardUpdate::KeepHeld) => return Ok(updated(sender, None)),
        Err(_) => return Ok(Reply::refused(Refusal::Malformed)),
    };
    let addresses = card.card().addresses.clone();
    let moved = if contact.card.addresses() != addresses {
        // Each move is an audit entry: at most MAX_MOVES_PER_DAY a day. Counted here, and
        // again when it is recorded, in one transaction with the count.
        if state.moves_since(&sender, window_start(now))? >= MAX_MOVES_PER_DAY {
            return Ok(Reply::refused(Refusal::RateLimited));
        }
        Some(Moved {
            name: contact.name,
            addresses,
        })
    } else {
        None
    };
    Ok(updated(
        sender,
        Some(Condition::ReplaceCard {
            contact: sender,
            held: contact.card,
            card: card.signed().clone(),
            moved,
        }),
    ))
}

/// `CardUpdated`, then the sender is offered this node's card if it waits for it.
fn updated(sender: NodeId, condition: Option<Condition>) -> Reply {
    Reply {
        response: PeerResponse::CardUpdated,
        condition,
        effects: Vec::new(),
        after: vec![Effect::OfferCard { contact: sender }],
    }
}
