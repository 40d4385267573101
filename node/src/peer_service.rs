//! Serving other nodes (spec §8): invite redemption and answering queries.

use std::sync::Arc;

use kith_client::transport::{self, FrameReadError};
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::invite::verify_redemption_proof;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    answer_query, InviteRedemption, NodeId, PeerRequest, PeerResponse, Query, Refusal, WireError,
};

use crate::node::Shared;
use crate::store::{AuditEvent, RedeemOutcome, StoredContact};
use crate::{peers, unix_now};

/// Serve an incoming peer connection authenticated as `key`.
pub(crate) async fn serve(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    if matches!(shared.store.contact(&key), Ok(Some(_))) {
        peers::remember(&shared, key, conn.clone());
    }
    serve_streams(shared, conn, key).await;
}

/// Answer each request stream on `conn` until it closes.
pub(crate) async fn serve_streams(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let (shared, conn) = (shared.clone(), conn.clone());
        tokio::spawn(async move { handle_stream(shared, conn, key, send, recv).await });
    }
}

async fn handle_stream(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    key: NodeId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let response = match transport::read_frame(&mut recv, MAX_PEER_FRAME).await {
        Ok(bytes) => match decode_message::<PeerRequest>(&bytes) {
            Ok(PeerRequest::Ask(q)) => answer(&shared, key, q),
            Ok(PeerRequest::Redeem(r)) => redeem(&shared, &conn, key, r),
            Err(WireError::Incompatible(_)) => PeerResponse::Refused(Refusal::UnsupportedVersion),
            Err(WireError::PeerMisbehaved(e)) => {
                tracing::debug!(peer = %key.short(), "malformed request: {e}");
                PeerResponse::Refused(Refusal::Malformed)
            }
        },
        Err(FrameReadError::TooLarge(e)) => {
            tracing::debug!(peer = %key.short(), "{e}");
            let _ = recv.stop(0u32.into());
            PeerResponse::Refused(Refusal::Malformed)
        }
        Err(FrameReadError::Truncated) => PeerResponse::Refused(Refusal::Malformed),
        Err(_) => return,
    };
    let _ = transport::write_frame(&mut send, &encode_message(&response), MAX_PEER_FRAME).await;
}

fn answer(shared: &Shared, asker: NodeId, query: Query) -> PeerResponse {
    let contact = match shared.store.contact(&asker) {
        Ok(Some(c)) => c,
        Ok(None) => {
            // Strangers are not audited (they could fill the log); they learn only a refusal.
            tracing::debug!(peer = %asker.short(), "refused query from a non-contact");
            return PeerResponse::Refused(Refusal::NotAContact);
        }
        Err(e) => {
            tracing::error!("store: {e}");
            return PeerResponse::Refused(Refusal::Internal);
        }
    };
    let (endorsements, policy) = match (shared.store.endorsements(), shared.store.policy()) {
        (Ok(e), Ok(p)) => (e, p),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("store: {e}");
            return PeerResponse::Refused(Refusal::Internal);
        }
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
    shared.audit(AuditEvent {
        event: "answered",
        peer: Some(asker),
        peer_name: Some(&contact.name),
        item: Some(query.item.to_string()),
        detail: disclosure.describe(),
    });
    PeerResponse::Answer(answer)
}

fn redeem(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    acceptor: NodeId,
    r: InviteRedemption,
) -> PeerResponse {
    let now = unix_now();
    let invite = match shared.store.invite(&r.invite_id) {
        Ok(Some(i)) => i,
        Ok(None) => return PeerResponse::Refused(Refusal::InviteUnknown),
        Err(e) => {
            tracing::error!("store: {e}");
            return PeerResponse::Refused(Refusal::Internal);
        }
    };
    if !verify_redemption_proof(
        &invite.secret,
        &invite.id,
        &shared.identity.node_id(),
        &acceptor,
        &r.proof,
    ) {
        return PeerResponse::Refused(Refusal::InviteInvalid);
    }
    if invite.used_at.is_some() {
        // The same acceptor retrying after a lost response is welcomed again.
        if matches!(shared.store.invite_used_by(&invite.id), Ok(Some(by)) if by == acceptor) {
            return PeerResponse::Welcome(shared.card.clone());
        }
        return PeerResponse::Refused(Refusal::InviteUsed);
    }
    if now >= invite.expires_at {
        return PeerResponse::Refused(Refusal::InviteExpired);
    }
    let card = match r.card.verify(now) {
        Ok(c) if c.node_id() == acceptor => c,
        _ => return PeerResponse::Refused(Refusal::InviteInvalid),
    };
    let contact = StoredContact {
        node_id: acceptor,
        name: card.card().name.clone(),
        circle: invite.circle.clone(),
        card: card.signed().clone(),
        added_at: now,
    };
    match shared.store.redeem_invite(&invite.id, &contact, now) {
        Ok(RedeemOutcome::Redeemed) => {
            peers::remember(shared, acceptor, conn.clone());
            shared.audit(AuditEvent {
                event: "contact-added",
                peer: Some(acceptor),
                peer_name: Some(&contact.name),
                item: None,
                detail: format!("redeemed our invite; circle {}", contact.circle),
            });
            PeerResponse::Welcome(shared.card.clone())
        }
        Ok(RedeemOutcome::AlreadyUsed) => PeerResponse::Refused(Refusal::InviteUsed),
        Err(e) => {
            tracing::error!("store: {e}");
            PeerResponse::Refused(Refusal::Internal)
        }
    }
}
