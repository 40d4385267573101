//! Serving other nodes (spec §8): invite redemption and answering queries.

use std::sync::Arc;
use std::time::Duration;

use kith_client::transport::{self, FrameReadError, CLOSE_UNAUTHORIZED};
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::invite::{check_redemption, IssuedInvite, Redemption};
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    answer_query, InviteRedemption, NodeId, PeerRequest, PeerResponse, Query, Refusal, WireError,
};

use crate::shared::Shared;
use crate::store::{AuditEvent, Event, RedeemOutcome, StoredContact};
use crate::{peers, unix_now};
use kith_protocol::budget::OverBudget;

use crate::failure::Failure;

use crate::shared::REQUEST_READ_TIMEOUT;
/// How long a stranger may take to open its one request stream.
pub const STRANGER_GRACE: Duration = Duration::from_secs(10);
/// How long to wait for a stranger to acknowledge our answer before closing.
const STRANGER_LINGER: Duration = Duration::from_secs(2);

/// Serve an incoming peer connection authenticated as `key` (spec §4.3).
///
/// A contact may send any number of requests. A stranger gets exactly one request —
/// normally an invite redemption — and the connection is closed after the answer unless
/// that request made it a contact.
pub(crate) async fn serve(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    shared
        .peer_connections
        .add_closing_oldest(key, conn.clone());
    if is_contact(&shared, &key) {
        peers::remember(&shared, key, conn.clone());
        return serve_streams(shared, conn, key).await;
    }
    let (send, recv) = match tokio::time::timeout(STRANGER_GRACE, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => {
            conn.close(CLOSE_UNAUTHORIZED.into(), b"not a contact");
            return;
        }
    };
    let sent = respond(&shared, &conn, key, send, recv).await;
    if is_contact(&shared, &key) {
        return serve_streams(shared, conn, key).await;
    }
    if let Some(send) = sent {
        let _ = tokio::time::timeout(STRANGER_LINGER, send.stopped()).await;
    }
    conn.close(CLOSE_UNAUTHORIZED.into(), b"not a contact");
}

fn is_contact(shared: &Shared, key: &NodeId) -> bool {
    matches!(shared.store.contact(key), Ok(Some(_)))
}

/// Answer each request stream on `conn` until it closes.
pub(crate) async fn serve_streams(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let (shared, conn) = (shared.clone(), conn.clone());
        tokio::spawn(async move { respond(&shared, &conn, key, send, recv).await });
    }
}

/// Read one request, answer it, and hand back the finished send stream.
async fn respond(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    key: NodeId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Option<quinn::SendStream> {
    let read = tokio::time::timeout(
        REQUEST_READ_TIMEOUT,
        transport::read_frame(&mut recv, MAX_PEER_FRAME),
    )
    .await;
    #[cfg(feature = "peer-extension")]
    if let (Ok(Ok(bytes)), Some(extension)) = (&read, &shared.options.peer_extension) {
        if is_contact(shared, &key) {
            if let Some(reply) = extension(key, bytes) {
                transport::write_frame(&mut send, &reply, MAX_PEER_FRAME)
                    .await
                    .ok()?;
                count_answered(shared, &reply);
                return Some(send);
            }
        }
    }
    let response = match read {
        Err(_) => {
            let _ = recv.stop(0u32.into());
            return None;
        }
        Ok(Ok(bytes)) => match decode_message::<PeerRequest>(&bytes) {
            Ok(PeerRequest::Ask(q)) => {
                // Store reads, up to 32 signatures and the budget lock: off the async workers.
                let shared = shared.clone();
                tokio::task::spawn_blocking(move || answer(&shared, key, q))
                    .await
                    .unwrap_or(PeerResponse::Refused(Refusal::Internal))
            }
            Ok(PeerRequest::Redeem(r)) => redeem(shared, conn, key, r),
            Ok(PeerRequest::Aggregate(r)) if is_contact(shared, &key) => {
                // A round's crypto takes milliseconds to tens of them (spec §11.16): off
                // the async workers, one round per core.
                crate::aggregation_service::serve(shared, key, r).await
            }
            Ok(PeerRequest::Aggregate(_)) => PeerResponse::Refused(Refusal::NotAContact),
            Ok(PeerRequest::Deliver(signed)) if is_contact(shared, &key) => {
                crate::approvals::receive(shared, key, signed)
            }
            Ok(PeerRequest::Deliver(_)) => PeerResponse::Refused(Refusal::NotAContact),
            Ok(PeerRequest::UpdateCard(card)) => crate::card_updates::receive(shared, key, &card),
            Err(WireError::Incompatible(_)) => PeerResponse::Refused(Refusal::UnsupportedVersion),
            Err(WireError::PeerMisbehaved(e)) => {
                tracing::debug!(peer = %key.short(), "malformed request: {e}");
                PeerResponse::Refused(Refusal::Malformed)
            }
        },
        Ok(Err(FrameReadError::TooLarge(e))) => {
            tracing::debug!(peer = %key.short(), "{e}");
            let _ = recv.stop(0u32.into());
            PeerResponse::Refused(Refusal::Malformed)
        }
        Ok(Err(FrameReadError::Truncated)) => PeerResponse::Refused(Refusal::Malformed),
        Ok(Err(_)) => return None,
    };
    let frame = encode_message(&response);
    transport::write_frame(&mut send, &frame, MAX_PEER_FRAME)
        .await
        .ok()?;
    count_answered(shared, &frame);
    Some(send)
}

/// A frame on the wire: its 4-byte length prefix and its body (spec §5.1).
fn count_answered(shared: &Shared, body: &[u8]) {
    shared
        .answered_bytes
        .fetch_add(4 + body.len() as u64, std::sync::atomic::Ordering::Relaxed);
}

fn answer(shared: &Arc<Shared>, asker: NodeId, query: Query) -> PeerResponse {
    // Strangers are not audited (they could fill the log); they learn only a refusal. A
    // copy is answered from the cache only for a contact: the cache is emptied whenever
    // the owner changes contacts, rules or endorsements, so what it holds is what the
    // node would answer now.
    let contact = match shared.store.contact(&asker) {
        Ok(Some(c)) => c,
        Ok(None) => return PeerResponse::Refused(Failure::NotAContact.refusal()),
        Err(e) => return PeerResponse::Refused(Failure::Store(e).refusal()),
    };
    shared.answered_asks.answer(asker, query, |query| {
        answer_plain(shared, contact, query).unwrap_or_else(|f| PeerResponse::Refused(f.refusal()))
    })
}

/// A plain `Ask` from `contact` (spec §8.3.2), or why it is not answered.
fn answer_plain(
    shared: &Arc<Shared>,
    contact: StoredContact,
    query: Query,
) -> Result<PeerResponse, Failure> {
    let asker = contact.node_id;
    let endorsements = shared.store.endorsements()?;
    let policy = shared.store.policy()?;
    let mine = crate::settings::load(&shared.store)?;
    // The same daily budget as aggregations (spec §9.10): checked before the signatures,
    // then again when the answer is recorded, in one transaction with the count.
    let limits = crate::budget::limits(&mine);
    let decline = |over: OverBudget| {
        let item = query.item.to_string();
        shared
            .budget
            .declined(&shared.store, asker, &contact.name, item, &over.to_string());
        Failure::OverBudget(over)
    };
    crate::budget::precheck(&shared.store, &asker, limits, 0)?.map_err(decline)?;
    let (answer, disclosure) = answer_query(
        &shared.identity,
        &endorsements,
        &policy,
        &asker,
        &contact.circle,
        &query,
        unix_now(),
    );
    let answered = AuditEvent {
        event: Event::Answered,
        peer: Some(asker),
        peer_name: Some(&contact.name),
        item: Some(query.item.to_string()),
        detail: disclosure.describe(),
    };
    // An ask that cannot be counted is not answered: the budget fails closed.
    shared
        .store
        .charge_answer(unix_now(), &answered, limits, 0, None)?
        .map_err(decline)?;
    crate::approvals::record_after_reply(shared, asker, contact.name, query, disclosure);
    Ok(PeerResponse::Answer(answer))
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
    let issued = IssuedInvite {
        id: &invite.id,
        secret: &invite.secret,
        expires_at: invite.expires_at,
        used: invite.used_at.map(|_| invite.used_by),
    };
    let me = shared.identity.node_id();
    let card = match check_redemption(&issued, &me, &acceptor, &r, now) {
        Ok(Redemption::Redeem(card)) => card,
        // Its retry after a lost Welcome, if it is still a contact: one the owner removed
        // must not learn the node's current card (its addresses) by replaying it.
        Ok(Redemption::WelcomeAgain) => {
            return match shared.store.contact(&acceptor) {
                Ok(Some(_)) => {
                    peers::remember(shared, acceptor, conn.clone());
                    PeerResponse::Welcome(shared.current_card())
                }
                Ok(None) => PeerResponse::Refused(Refusal::InviteUsed),
                Err(e) => {
                    tracing::error!("store: {e}");
                    PeerResponse::Refused(Refusal::Internal)
                }
            };
        }
        Err(refusal) => return PeerResponse::Refused(refusal),
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
                event: Event::ContactAdded,
                peer: Some(acceptor),
                peer_name: Some(&contact.name),
                item: None,
                detail: format!("redeemed our invite; circle {}", contact.circle),
            });
            PeerResponse::Welcome(shared.current_card())
        }
        // A concurrent retry by the same acceptor lost the race to itself: welcome it.
        Ok(RedeemOutcome::AlreadyUsed) => match shared.store.invite_used_by(&invite.id) {
            Ok(Some(by)) if by == acceptor && is_contact(shared, &acceptor) => {
                PeerResponse::Welcome(shared.current_card())
            }
            _ => PeerResponse::Refused(Refusal::InviteUsed),
        },
        Err(e) => {
            tracing::error!("store: {e}");
            PeerResponse::Refused(Refusal::Internal)
        }
    }
}
