//! Making invites and accepting other people's (spec §3.2, §8.2).

use std::sync::Arc;
use std::time::Duration;

use kith_protocol::app::{AppError, AppErrorCode, ContactInfo, InviteCreated};
use kith_protocol::consent::validate_circle;
use kith_protocol::invite::DEFAULT_INVITE_LIFETIME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    Invite, InviteError, InviteRedemption, PeerRequest, PeerResponse, Refusal, DEFAULT_CIRCLE,
};
use rand_core::OsRng;

use crate::replies::{contact_info, err};
use crate::shared::Shared;
use crate::store::{AuditEvent, CircleOnConflict, Event, StoredContact, StoredInvite};
use crate::{peers, unix_now};

fn circle_or_default(circle: Option<String>) -> Result<String, AppError> {
    validate_circle(circle.as_deref().unwrap_or(DEFAULT_CIRCLE))
        .map_err(|e| err(AppErrorCode::BadRequest, e))
}

pub(crate) fn create(shared: &Shared, circle: Option<String>) -> Result<InviteCreated, AppError> {
    let circle = circle_or_default(circle)?;
    let now = unix_now();
    let invite = Invite::generate(
        &mut OsRng,
        shared.current_card(),
        now,
        DEFAULT_INVITE_LIFETIME,
    );
    shared
        .store
        .put_invite(&StoredInvite {
            id: invite.id,
            secret: invite.secret.clone(),
            circle: circle.clone(),
            created_at: now,
            expires_at: invite.expires_at,
            used_at: None,
            used_by: None,
        })
        .map_err(|e| err(AppErrorCode::Internal, e))?;
    Ok(InviteCreated {
        code: kith_protocol::app::InviteCode(invite.to_code()),
        expires_at: invite.expires_at,
        circle,
    })
}

fn invite_error(e: InviteError) -> AppError {
    let code = match e {
        InviteError::Expired => AppErrorCode::InviteExpired,
        InviteError::AlreadyUsed => AppErrorCode::InviteUsed,
        InviteError::Unknown => AppErrorCode::InviteUnknown,
        InviteError::OwnInvite => AppErrorCode::BadRequest,
        _ => AppErrorCode::InviteMalformed,
    };
    err(code, e)
}

/// Longest an acceptance may take end to end: connecting to every address in the card and
/// the redemption exchange.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) async fn accept(
    shared: &Arc<Shared>,
    code: &str,
    circle: Option<String>,
) -> Result<ContactInfo, AppError> {
    let explicit_circle = circle.is_some();
    let circle = circle_or_default(circle)?;
    let checked = Invite::from_code(code, unix_now()).map_err(invite_error)?;
    let inviter = checked.inviter.card().clone();
    if inviter.node_id == shared.identity.node_id() {
        return Err(invite_error(InviteError::OwnInvite));
    }
    let request = PeerRequest::Redeem(InviteRedemption {
        invite_id: checked.invite.id,
        proof: checked
            .invite
            .redemption_proof(&inviter.node_id, &shared.identity.node_id()),
        card: shared.current_card(),
    });
    let payload = encode_message(&request);
    let exchange = peers::request(shared, inviter.node_id, &inviter.addresses, &payload);
    let reply = match tokio::time::timeout(ACCEPT_TIMEOUT, exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(err(
                AppErrorCode::Unreachable,
                format!("cannot reach {}'s node: {e}", inviter.name),
            ))
        }
        Err(_) => {
            return Err(err(
                AppErrorCode::Unreachable,
                format!(
                    "{}'s node did not answer within {} s",
                    inviter.name,
                    ACCEPT_TIMEOUT.as_secs()
                ),
            ))
        }
    };
    let now = unix_now();
    let card = match decode_message::<PeerResponse>(&reply) {
        Ok(PeerResponse::Welcome(card)) => card,
        Ok(PeerResponse::Refused(r)) => {
            return Err(match r {
                Refusal::InviteUsed => invite_error(InviteError::AlreadyUsed),
                Refusal::InviteExpired => invite_error(InviteError::Expired),
                Refusal::InviteUnknown => invite_error(InviteError::Unknown),
                Refusal::InviteInvalid => err(
                    AppErrorCode::BadRequest,
                    "the inviter's node rejected the redemption (the code was altered, or our card is invalid)",
                ),
                Refusal::Internal => err(AppErrorCode::Unreachable, "the inviter's node failed; try again later"),
                other => err(AppErrorCode::PeerMisbehaved, format!("inviter refused: {other}")),
            })
        }
        Ok(_) => return Err(err(AppErrorCode::PeerMisbehaved, "inviter sent an unexpected response")),
        Err(e) => return Err(err(AppErrorCode::PeerMisbehaved, format!("inviter: {e}"))),
    };
    // Prefer the inviter's fresh card, but only if it is theirs and valid; otherwise keep the
    // card from the code, which was verified above.
    let card = match card.verify(now) {
        Ok(c) if c.node_id() == inviter.node_id => c,
        _ => {
            tracing::warn!(peer = %inviter.node_id.short(), "inviter sent an invalid card; keeping the one from the code");
            checked.inviter
        }
    };
    let contact = StoredContact {
        node_id: inviter.node_id,
        name: card.card().name.clone(),
        circle,
        card: card.signed().clone(),
        added_at: now,
    };
    let on_conflict = if explicit_circle {
        CircleOnConflict::Replace
    } else {
        CircleOnConflict::Keep
    };
    shared
        .store
        .upsert_contact(&contact, on_conflict)
        .map_err(|e| err(AppErrorCode::Internal, e))?;
    let stored = shared
        .store
        .contact(&contact.node_id)
        .map_err(|e| err(AppErrorCode::Internal, e))?
        .unwrap_or(contact);
    shared.audit(AuditEvent {
        event: Event::ContactAdded,
        peer: Some(stored.node_id),
        peer_name: Some(&stored.name),
        item: None,
        detail: format!("accepted their invite; circle {}", stored.circle),
    });
    Ok(contact_info(&stored))
}
