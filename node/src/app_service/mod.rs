//! Serving the owner's apps (spec §10).

use std::sync::Arc;
use std::time::Duration;

use kith_client::transport::{self, FrameReadError, CLOSE_SHUTDOWN, CLOSE_UNAUTHORIZED};
use kith_protocol::app::{AppError, AppErrorCode, AppRequest, AppResponse};
use kith_protocol::frame::MAX_APP_FRAME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{NodeId, WireError};

use crate::router::{Handler, Serving};
use crate::shared::Shared;
use crate::store::Principal;
use crate::{approvals, apps, asking, invites};

pub(crate) use crate::replies::{contact_info, err, internal};

mod contacts;
mod owner;
mod policy;
mod shelf;

pub(crate) use contacts::find_contact;

/// Longest ask an app may request.
pub const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(60);
/// Most audit entries returned at once.
pub const MAX_AUDIT_LIMIT: u32 = 1_000;

/// The `kith/app/2` service (spec §10), registered on the node's router.
#[derive(Debug)]
pub(crate) struct AppService;

impl Handler for AppService {
    fn serve(&self, shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) -> Serving {
        Box::pin(accept(shared, conn, key))
    }
}

/// What a key connecting to the app endpoint is (spec §10.1, §10.5).
enum AppKey {
    Known(Principal),
    Revoked,
    /// Not a credential: it may only redeem a pairing code.
    Unknown,
}

fn app_key(shared: &Shared, key: &NodeId) -> Result<AppKey, crate::store::StoreError> {
    Ok(match shared.store.principal(key)? {
        Some(principal) => AppKey::Known(principal),
        None if shared.store.credential_revoked(key)? => AppKey::Revoked,
        None => AppKey::Unknown,
    })
}

/// An app connection authenticated as `key`: served as its credential allows.
async fn accept(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    match app_key(&shared, &key) {
        Ok(AppKey::Revoked) => conn.close(CLOSE_UNAUTHORIZED.into(), b"revoked"),
        Ok(AppKey::Known(principal)) => serve(shared, conn, key, Some(principal)).await,
        Ok(AppKey::Unknown) => serve(shared, conn, key, None).await,
        // Never read a store failure as "unknown": a revoked key would be offered pairing,
        // and its app told it is not paired.
        Err(e) => {
            tracing::error!("store: {e}");
            conn.close(CLOSE_SHUTDOWN.into(), b"internal error")
        }
    }
}

/// Serve an app connection authenticated as `key`: the owner, a paired app, or (when
/// `principal` is `None`) a key that may only redeem a pairing code (spec §10.5).
async fn serve(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    key: NodeId,
    principal: Option<Principal>,
) {
    let principal = match principal {
        Some(p) => p,
        None => match pair(&shared, &conn, key).await {
            Some(p) => p,
            None => return,
        },
    };
    tracing::debug!(app = principal.name(), "app connected");
    // The owner's newest connection replaces its oldest: a CLI that died without closing
    // (a broken pipe, a kill) must not lock its owner out. Apps keep a hard limit.
    if matches!(principal, Principal::Owner { .. }) {
        shared.app_connections.add_closing_oldest(key, conn.clone());
    } else if !shared.app_connections.add(key, conn.clone()) {
        conn.close(
            CLOSE_SHUTDOWN.into(),
            b"too many connections for this credential",
        );
        return;
    }
    // A revocation between the lookup and the registration above would have missed this
    // connection: look again now that it is registered.
    if !matches!(shared.store.principal(&key), Ok(Some(_))) {
        conn.close(CLOSE_UNAUTHORIZED.into(), b"revoked");
        return;
    }
    // Until the connection closes or the node shuts down; then the requests in flight
    // finish (the router bounds how long, at shutdown).
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(Ok((send, recv))) = shared.shutdown.run_until(conn.accept_bi()).await {
        while in_flight.try_join_next().is_some() {}
        let (shared, conn, principal) = (shared.clone(), conn.clone(), principal.clone());
        in_flight.spawn(async move { respond(&shared, &conn, key, &principal, send, recv).await });
    }
    while in_flight.join_next().await.is_some() {}
}

/// An unknown key's one chance: a `Pair` request with a valid code. Anything else closes
/// the connection as before pairing existed.
async fn pair(shared: &Arc<Shared>, conn: &quinn::Connection, key: NodeId) -> Option<Principal> {
    let unknown = || conn.close(CLOSE_UNAUTHORIZED.into(), b"unknown credential");
    // One deadline for the stream and its one small frame.
    let first = tokio::time::timeout(apps::PAIRING_READ_TIMEOUT, async {
        let (send, mut recv) = conn.accept_bi().await.ok()?;
        let bytes = transport::read_frame(&mut recv, apps::MAX_PAIR_FRAME)
            .await
            .ok()?;
        Some((send, bytes))
    })
    .await;
    let Ok(Some((mut send, bytes))) = first else {
        unknown();
        return None;
    };
    let Ok(AppRequest::Pair { code }) = decode_message::<AppRequest>(&bytes) else {
        unknown();
        return None;
    };
    let (response, principal) = match apps::redeem(shared, key, &code) {
        Ok(info) => {
            let principal = Principal::App {
                name: info.name.clone(),
                scope: info.scope.clone(),
            };
            (AppResponse::App(info), Some(principal))
        }
        Err(e) => (AppResponse::Error(e), None),
    };
    let _ = transport::write_frame(&mut send, &encode_message(&response), MAX_APP_FRAME).await;
    if principal.is_none() {
        // Let the refusal reach the app before the connection goes.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        conn.close(CLOSE_UNAUTHORIZED.into(), b"pairing refused");
    }
    principal
}

async fn respond(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    key: NodeId,
    principal: &Principal,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let read = tokio::time::timeout(
        crate::shared::REQUEST_READ_TIMEOUT,
        transport::read_frame(&mut recv, MAX_APP_FRAME),
    )
    .await;
    let response = match read {
        Err(_) => {
            let _ = recv.stop(0u32.into());
            return;
        }
        Ok(Ok(bytes)) => match decode_message::<AppRequest>(&bytes) {
            Ok(req) => match shared.store.principal(&key) {
                // Revoked since the connection opened: refuse, close.
                Ok(None) => {
                    conn.close(CLOSE_UNAUTHORIZED.into(), b"revoked");
                    return;
                }
                // The node's own trouble is not the credential's: the app may come back.
                Err(e) => {
                    tracing::error!("store: {e}");
                    conn.close(CLOSE_SHUTDOWN.into(), b"internal error");
                    return;
                }
                Ok(Some(_)) => authorized(shared, key, principal, req)
                    .await
                    .unwrap_or_else(AppResponse::Error),
            },
            Err(WireError::Incompatible(e)) => AppResponse::Error(err(AppErrorCode::BadRequest, e)),
            Err(WireError::PeerMisbehaved(e)) => {
                AppResponse::Error(err(AppErrorCode::BadRequest, e))
            }
        },
        Ok(Err(FrameReadError::TooLarge(e))) => {
            let _ = recv.stop(0u32.into());
            AppResponse::Error(err(AppErrorCode::BadRequest, e))
        }
        Ok(Err(FrameReadError::Truncated)) => AppResponse::Error(err(
            AppErrorCode::BadRequest,
            "stream ended inside the request frame",
        )),
        Ok(Err(_)) => return,
    };
    let mut bytes = encode_message(&response);
    if bytes.len() > MAX_APP_FRAME as usize {
        tracing::warn!(len = bytes.len(), "response exceeds the app frame cap");
        bytes = encode_message(&AppResponse::Error(err(
            AppErrorCode::Internal,
            format!(
                "the response ({} bytes) exceeds the {MAX_APP_FRAME}-byte frame cap; ask for less",
                bytes.len()
            ),
        )));
    }
    let _ = transport::write_frame(&mut send, &bytes, MAX_APP_FRAME).await;
}

/// A request checked against the principal's scope, and its answer cut down to it.
async fn authorized(
    shared: &Arc<Shared>,
    key: NodeId,
    principal: &Principal,
    req: AppRequest,
) -> Result<AppResponse, AppError> {
    apps::authorize(shared, &key, principal, &req)?;
    let app = matches!(principal, Principal::App { .. }).then_some(key);
    let response = handle(shared, req, app).await?;
    apps::filter(shared, &key, principal, response)
}

/// Answer `req`; `app` is the paired app making it, if it is not the owner. Each kind of
/// request is handled in the file of its domain: those that talk to other nodes here, the
/// rest, store work only, off the async workers ([`handle_in_store`]).
async fn handle(
    shared: &Arc<Shared>,
    req: AppRequest,
    app: Option<NodeId>,
) -> Result<AppResponse, AppError> {
    // Before the change, and again after it: an answer kept between the two would be
    // from before it.
    let changes = changes_answers(&req);
    if changes {
        shared.answered_asks.clear();
    }
    let response = dispatch(shared, req, app).await;
    if changes {
        shared.answered_asks.clear();
    }
    response
}

/// [`handle`] without the cache.
async fn dispatch(
    shared: &Arc<Shared>,
    req: AppRequest,
    app: Option<NodeId>,
) -> Result<AppResponse, AppError> {
    let local = match req {
        AppRequest::AcceptInvite { code, circle } => {
            return Ok(AppResponse::Contact(
                invites::accept(shared, &code.0, circle).await?,
            ))
        }
        AppRequest::Ask {
            item,
            timeout_ms,
            epsilon,
            detail,
        } => {
            let result = ask(shared, item, timeout_ms, epsilon, detail).await?;
            return Ok(AppResponse::AskResult(result));
        }
        AppRequest::Approve { id } => {
            return Ok(AppResponse::Decided(approvals::approve(shared, id).await?))
        }
        AppRequest::SetSetting { key, value } => {
            return Ok(AppResponse::Settings(
                owner::set_setting(shared, &key, value).await?,
            ))
        }
        AppRequest::SetAdvertise { addresses } => {
            let report = crate::card_updates::set_advertise(shared, &addresses).await?;
            return Ok(AppResponse::CardUpdate(report));
        }
        local => local,
    };
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || handle_in_store(&shared, local, app))
        .await
        .map_err(|e| internal(format!("request task failed: {e}")))?
}

/// A request answered from the store alone. Blocking: a write waits for the disk.
fn handle_in_store(
    shared: &Arc<Shared>,
    req: AppRequest,
    app: Option<NodeId>,
) -> Result<AppResponse, AppError> {
    Ok(match req {
        AppRequest::Status => AppResponse::Status(owner::status(shared)?),
        AppRequest::CreateInvite { circle } => {
            AppResponse::Invite(invites::create(shared, circle)?)
        }
        AppRequest::ListInvites => AppResponse::Invites(owner::invites(shared)?),
        AppRequest::RevokeInvite { id } => AppResponse::Removed(owner::revoke_invite(shared, &id)?),
        AppRequest::ListContacts => AppResponse::Contacts(contacts::list(shared)?),
        AppRequest::RemoveContact { contact } => {
            AppResponse::Contact(contacts::remove(shared, &contact)?)
        }
        AppRequest::RenameContact { contact, name } => {
            AppResponse::Contact(contacts::rename(shared, &contact, &name)?)
        }
        AppRequest::Endorse {
            item,
            count,
            rating,
            note,
        } => AppResponse::Endorsement(shelf::endorse(shared, item, count, rating, note)?),
        AppRequest::ListEndorsements => AppResponse::Endorsements(shelf::list(shared)?),
        AppRequest::Unendorse { item } => AppResponse::Removed(shelf::unendorse(shared, &item)?),
        AppRequest::SetPolicy {
            subject,
            items,
            share,
        } => AppResponse::PolicyRule(policy::set(shared, subject, items, share)?),
        AppRequest::ListPolicy => AppResponse::Policy(policy::list(shared)?),
        AppRequest::RemovePolicy { subject, items } => {
            AppResponse::Removed(policy::remove(shared, subject, &items)?)
        }
        AppRequest::ListPending => AppResponse::Pending(approvals::list_pending(shared)?),
        AppRequest::Deny { id } => AppResponse::Decided(approvals::deny(shared, id)?),
        AppRequest::ListUpdates { query_id } => {
            AppResponse::Updates(approvals::updates(shared, query_id.as_ref(), app.as_ref())?)
        }
        AppRequest::CreatePairing { name, scope } => {
            AppResponse::Pairing(apps::create_pairing(shared, name, scope)?)
        }
        AppRequest::Pair { .. } => {
            return Err(err(
                AppErrorCode::Conflict,
                "this credential is already paired with the node",
            ))
        }
        AppRequest::ListApps => AppResponse::Apps(owner::apps(shared)?),
        AppRequest::RevokeApp { name } => AppResponse::App(apps::revoke(shared, &name)?),
        AppRequest::ListPairings => AppResponse::Pairings(owner::pairings(shared)?),
        AppRequest::CancelPairing { name } => {
            AppResponse::Removed(owner::cancel_pairing(shared, &name)?)
        }
        AppRequest::ListSettings => AppResponse::Settings(owner::settings(shared)?),
        AppRequest::AuditPage {
            before,
            contact,
            item,
            limit,
        } => AppResponse::Audit(owner::audit_page(shared, before, contact, item, limit)?),
        AppRequest::Audit { limit } => AppResponse::Audit(owner::audit(shared, limit)?),
        AppRequest::AcceptInvite { .. }
        | AppRequest::Ask { .. }
        | AppRequest::Approve { .. }
        | AppRequest::SetSetting { .. }
        | AppRequest::SetAdvertise { .. } => {
            return Err(internal(
                "a request that talks to other nodes reached the store path",
            ))
        }
    })
}

/// Whether `req` may change what this node answers its contacts: then answers kept for
/// copies of plain asks are forgotten (spec §8.3.2).
fn changes_answers(req: &AppRequest) -> bool {
    matches!(
        req,
        AppRequest::Endorse { .. }
            | AppRequest::Unendorse { .. }
            | AppRequest::SetPolicy { .. }
            | AppRequest::RemovePolicy { .. }
            | AppRequest::RemoveContact { .. }
            | AppRequest::AcceptInvite { .. }
    )
}

/// `Ask`: every contact, at most [`MAX_ASK_TIMEOUT`] (spec §10.2).
async fn ask(
    shared: &Arc<Shared>,
    item: kith_protocol::ItemKey,
    timeout_ms: u32,
    epsilon: Option<u32>,
    detail: bool,
) -> Result<kith_protocol::app::AskResult, AppError> {
    let timeout = Duration::from_millis(timeout_ms as u64).min(MAX_ASK_TIMEOUT);
    if epsilon == Some(0) {
        return Err(err(AppErrorCode::BadRequest, "epsilon must be positive"));
    }
    asking::ask(shared, item, timeout, epsilon, detail)
        .await
        .map_err(internal)
}
