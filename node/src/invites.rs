//! Making invites and accepting other people's (spec §3.2, §8.2).

use std::sync::Arc;

use kith_client::transport;
use kith_protocol::app::{AppError, AppErrorCode, ContactInfo, InviteCreated};
use kith_protocol::consent::validate_circle;
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::invite::DEFAULT_INVITE_LIFETIME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    Invite, InviteError, InviteRedemption, PeerRequest, PeerResponse, Refusal, DEFAULT_CIRCLE,
};
use rand_core::OsRng;

use crate::app_service::{contact_info, err};
use crate::node::Shared;
use crate::store::{AuditEvent, StoredContact, StoredInvite};
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
        shared.card.clone(),
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
        })
        .map_err(|e| err(AppErrorCode::Internal, e))?;
    Ok(InviteCreated {
        code: invite.to_code(),
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

pub(crate) async fn accept(
    shared: &Arc<Shared>,
    code: &str,
    circle: Option<String>,
) -> Result<ContactInfo, AppError> {
    let circle = circle_or_default(circle)?;
    let checked = Invite::from_code(code, unix_now()).map_err(invite_error)?;
    let inviter = checked.inviter.card().clone();
    if inviter.node_id == shared.identity.node_id() {
        return Err(invite_error(InviteError::OwnInvite));
    }
    let conn = peers::connection_to(shared, inviter.node_id, &inviter.addresses)
        .await
        .map_err(|e| {
            err(
                AppErrorCode::Unreachable,
                format!("cannot reach {}: {e}", inviter.name),
            )
        })?;
    let request = PeerRequest::Redeem(InviteRedemption {
        invite_id: checked.invite.id,
        proof: checked
            .invite
            .redemption_proof(&inviter.node_id, &shared.identity.node_id()),
        card: shared.card.clone(),
    });
    let reply = transport::exchange(
        &conn,
        &encode_message(&request),
        MAX_PEER_FRAME,
        MAX_PEER_FRAME,
    )
    .await
    .map_err(|e| err(AppErrorCode::Unreachable, format!("{}: {e}", inviter.name)))?;
    let now = unix_now();
    let card = match decode_message::<PeerResponse>(&reply) {
        Ok(PeerResponse::Welcome(card)) => card,
        Ok(PeerResponse::Refused(r)) => {
            return Err(match r {
                Refusal::InviteUsed => invite_error(InviteError::AlreadyUsed),
                Refusal::InviteExpired => invite_error(InviteError::Expired),
                Refusal::InviteUnknown => invite_error(InviteError::Unknown),
                other => err(
                    AppErrorCode::PeerMisbehaved,
                    format!("inviter refused: {other}"),
                ),
            })
        }
        Ok(_) => {
            return Err(err(
                AppErrorCode::PeerMisbehaved,
                "inviter sent an unexpected response",
            ))
        }
        Err(e) => return Err(err(AppErrorCode::PeerMisbehaved, format!("inviter: {e}"))),
    };
    // Prefer the inviter's fresh card, but only if it is theirs and valid.
    let card = match card.verify(now) {
        Ok(c) if c.node_id() == inviter.node_id => c,
        _ => checked.inviter,
    };
    let contact = StoredContact {
        node_id: inviter.node_id,
        name: card.card().name.clone(),
        circle,
        card: card.signed().clone(),
        added_at: now,
    };
    shared
        .store
        .upsert_contact(&contact)
        .map_err(|e| err(AppErrorCode::Internal, e))?;
    shared.audit(AuditEvent {
        event: "contact-added",
        peer: Some(contact.node_id),
        peer_name: Some(&contact.name),
        item: None,
        detail: format!("accepted their invite; circle {}", contact.circle),
    });
    Ok(contact_info(&contact))
}
