//! An invite redemption (spec §3.2, §8.2): the protocol's checks in their order, then the
//! invite's single use.

use super::{Condition, Contact, Effect, Endpoint, NodeState, Reply};
use crate::invite::{check_redemption, IssuedInvite, Redemption};
use crate::message::{InviteRedemption, PeerResponse, Refusal};
use crate::NodeId;

pub(super) fn decide<S: NodeState>(
    endpoint: &Endpoint<'_>,
    state: &S,
    acceptor: NodeId,
    redemption: &InviteRedemption,
    now: u64,
) -> Result<Reply, S::Error> {
    // Step 1: find the invite.
    let Some(invite) = state.invite(&redemption.invite_id)? else {
        return Ok(Reply::refused(Refusal::InviteUnknown));
    };
    let issued = IssuedInvite {
        id: &invite.id,
        secret: &invite.secret,
        expires_at: invite.expires_at,
        used: invite.used,
    };
    let me = endpoint.node_id();
    // Steps 2–5.
    let card = match check_redemption(&issued, &me, &acceptor, redemption, now) {
        Ok(Redemption::Redeem(card)) => card,
        // Its retry after a lost Welcome, if it is still a contact: one the owner removed
        // must not learn the node's current card (its addresses) by replaying it.
        Ok(Redemption::WelcomeAgain) => {
            return Ok(match state.contact(&acceptor)? {
                Some(_) => welcome(endpoint, None),
                None => Reply::refused(Refusal::InviteUsed),
            })
        }
        Err(refusal) => return Ok(Reply::refused(refusal)),
    };
    // Step 6: mark it used and store the acceptor, atomically. If a concurrent copy of this
    // redemption won, the next decision sees the invite used by the acceptor: WelcomeAgain.
    let contact = Contact {
        node_id: acceptor,
        name: card.card().name.clone(),
        circle: invite.circle,
        card: card.signed().clone(),
        added_at: now,
    };
    let add = Condition::AddContact {
        invite: invite.id,
        contact,
    };
    Ok(welcome(endpoint, Some(add)))
}

fn welcome(endpoint: &Endpoint<'_>, condition: Option<Condition>) -> Reply {
    Reply {
        response: PeerResponse::Welcome(endpoint.card.clone()),
        condition,
        effects: Vec::new(),
        after: vec![Effect::KeepConnection],
    }
}
