//! A contact's new card (spec §8.6.3): the protocol's check, then the daily move limit.

use super::{Effect, NodeState, Reply};
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
    let offer = vec![Effect::OfferCard { contact: sender }];
    let card = match check_update(update, sender, &contact.card, now) {
        Ok(CardUpdate::Replace(card)) => card,
        // A retry that lost a race to a later card: nothing to store.
        Ok(CardUpdate::KeepHeld) => {
            return Ok(Reply {
                response: PeerResponse::CardUpdated,
                effects: Vec::new(),
                after: offer,
            })
        }
        Err(_) => return Ok(Reply::refused(Refusal::Malformed)),
    };
    let addresses = card.card().addresses.clone();
    let held = contact.card.addresses();
    let mut effects = Vec::new();
    if held != addresses {
        // Each move is an audit entry: at most MAX_MOVES_PER_DAY a day.
        if state.moves_since(&sender, window_start(now))? >= MAX_MOVES_PER_DAY {
            return Ok(Reply::refused(Refusal::RateLimited));
        }
        effects.push(Effect::RecordMove {
            contact: sender,
            name: contact.name,
            addresses,
        });
    }
    effects.push(Effect::ReplaceCard {
        contact: sender,
        card: card.signed().clone(),
    });
    Ok(Reply {
        response: PeerResponse::CardUpdated,
        effects,
        after: offer,
    })
}
